"""Slipstream: a workflow orchestrator that runs on serverless AWS."""

__version__ = "0.1.0"
