"""A QTimer that records the largest gap between its ticks: how long the event loop was blocked."""

from __future__ import annotations

import time

from qtpy.QtCore import QTimer


class GapProbe:
    """Tick every ``interval_ms``; ``max_gap_s`` is the longest time between two ticks while running."""

    def __init__(self, interval_ms: int = 10) -> None:
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.last: float | None = None
        self.max_gap_s = 0.0
        self.ticks = 0

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            self.max_gap_s = max(self.max_gap_s, now - self.last)
        self.last = now
        self.ticks += 1

    def start(self) -> GapProbe:
        self.last, self.max_gap_s, self.ticks = None, 0.0, 0
        self.timer.start()
        return self

    def stop(self) -> float:
        self.timer.stop()
        return self.max_gap_s
