"""Training loops, each a generator of typed progress events (see ``events.py``)."""
