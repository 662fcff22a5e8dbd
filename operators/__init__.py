"""The operator library: loaded by workers and authoring tools, never by the control plane."""
