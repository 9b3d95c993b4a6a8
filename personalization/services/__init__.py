"""Writes of the personalization app, one module per sub-domain."""
