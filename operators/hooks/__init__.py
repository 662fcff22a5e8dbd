"""Hooks: connection-aware clients operators (and task code) use to reach outside systems."""
