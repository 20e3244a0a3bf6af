"""Training events as JSON lines (what a round's process prints and the plugin reads back)."""

from __future__ import annotations

import math
from pathlib import Path

from napari_amvlm.training.events import CheckpointEvent, DoneEvent, MetricsEvent, StartEvent, StepEvent
from napari_amvlm.training.progress import event_to_json, parse_event_line


def test_progress_json_round_trip():
    events = [StartEvent(10, 0, "cpu", 5), StepEvent(3, 10, 1, {"loss": 0.5, "ramp": math.nan}, 1e-3, 2.0),
              MetricsEvent(4, {"val_dice": 0.7}), CheckpointEvent(4, Path("out/x"), "model"),
              DoneEvent(10, 1.5, Path("out"), state={"w": object()})]
    back = [parse_event_line(event_to_json(e)) for e in events]
    assert [type(b) for b in back] == [type(e) for e in events]
    assert back[1].losses["loss"] == 0.5 and math.isnan(back[1].losses["ramp"])
    assert back[3].path == Path("out/x") and back[4].state is None and back[4].out == Path("out")
    for line in ("epoch 1 step 3/10 loss=0.5", "{not json", '{"a": 1}', '{"amvlm_event": "step", "bogus": 1}', ""):
        assert parse_event_line(line) is None
