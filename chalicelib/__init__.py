"""Slipstream: a workflow orchestrator that runs on serverless AWS."""

__version__ = "0.1.0"

import logging

# A library leaves log output to the application: without a handler configured
# (a quiet CLI run, a test), task logs go nowhere instead of to stderr.
logging.getLogger("slipstream").addHandler(logging.NullHandler())
