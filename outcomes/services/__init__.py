"""Writes of the outcomes app, one module per sub-domain."""
