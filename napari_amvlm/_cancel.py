"""Cooperative cancellation of long work on a worker thread: the owner of the work sets a
:class:`threading.Event` (the viewer or the project is closing), and the work checks it between planes or images
and stops with :class:`Cancelled`, leaving the project as its last commit left it."""

from __future__ import annotations

import threading


class Cancelled(Exception):
    """The work was stopped on request before it finished."""


def check(stop: threading.Event | None) -> None:
    """Raise :class:`Cancelled` if ``stop`` is set (``None``: the work cannot be cancelled)."""
    if stop is not None and stop.is_set():
        raise Cancelled("stopped on request")
