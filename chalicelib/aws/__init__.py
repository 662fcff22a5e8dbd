"""How Slipstream talks to AWS, whatever the service: one retry policy for every
client (``retries``) and one reading of which errors are the environment's
rather than the code's (``errors``)."""
