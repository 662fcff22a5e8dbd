"""The pure domain: specs, schedules, states, trigger rules and scheduling decisions.

Nothing here performs I/O or imports an AWS library; adapters call in.
"""
