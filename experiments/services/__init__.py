"""Writes of the experiments app, one module per sub-domain."""
