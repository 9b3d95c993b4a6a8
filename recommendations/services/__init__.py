"""Writes of the recommendations app, one module per sub-domain."""
