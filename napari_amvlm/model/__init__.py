"""Model modules: each takes a config and returns a typed output dataclass (see ``outputs.py``)."""
