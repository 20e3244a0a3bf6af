"""Training progress events as one JSON object per line, and back (``amvlm train --progress-json``).

A training process started by the plugin prints every event of the training generator on its own line of
stdout; the parent process reads the lines and gets the same typed events back, without pickling anything.
Lines that are not progress JSON (log text, warnings) are ignored by :func:`parse_event_line`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from .events import CheckpointEvent, DoneEvent, MetricsEvent, StartEvent, StepEvent

EVENT_TYPES: dict[str, type] = {
    "start": StartEvent,
    "step": StepEvent,
    "metrics": MetricsEvent,
    "checkpoint": CheckpointEvent,
    "done": DoneEvent,
}
_NAMES = {cls: name for name, cls in EVENT_TYPES.items()}
KEY = "amvlm_event"  # the field that marks a line as a progress event


def _plain(value: Any) -> Any:
    """JSON-safe copy: paths become strings, non-finite floats become None."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def event_to_json(event: object) -> str | None:
    """One line of JSON for a training event (None for an unknown object). Tensors are never written:
    ``DoneEvent.state`` is dropped."""
    name = _NAMES.get(type(event))
    if name is None:
        return None
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    fields.pop("state", None)
    return json.dumps({KEY: name, **_plain(fields)}, allow_nan=False)


def parse_event_line(line: str) -> object | None:
    """The event a line of ``--progress-json`` output describes, or None for any other line."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    cls = EVENT_TYPES.get(str(data.pop(KEY, "")))
    if cls is None:
        return None
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in known}
    for key in ("path", "out"):
        if isinstance(kwargs.get(key), str):
            kwargs[key] = Path(kwargs[key])
    for key in ("losses", "metrics"):
        if isinstance(kwargs.get(key), dict):
            kwargs[key] = {k: (float("nan") if v is None else float(v)) for k, v in kwargs[key].items()}
    try:
        return cls(**kwargs)
    except TypeError:
        return None
