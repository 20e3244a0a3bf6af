"""Losses: one module per loss, each returning a dict of named terms plus ``loss``."""
