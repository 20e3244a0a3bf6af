"""napari's progress bar (in the viewer's status bar) for work the widget runs on a worker thread."""

from __future__ import annotations

from napari.utils import progress
from qtpy.QtCore import QObject, Signal


class WorkProgress(QObject):
    """A napari progress bar of ``total`` steps. Create and close it on the GUI thread; :meth:`report` may be
    called from any thread (the step reaches the bar through a queued signal)."""

    stepped = Signal(int)

    def __init__(self, total: int, desc: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bar = progress(total=total, desc=desc)
        self.stepped.connect(self._show)

    def report(self, done: int) -> None:
        """``done`` steps are finished (any thread; once the widget is gone, nobody is left to tell)."""
        try:
            self.stepped.emit(done)
        except RuntimeError:  # the Qt side was deleted (the viewer closed while the work ran)
            pass

    def _show(self, done: int) -> None:
        if self.bar is not None and done > self.bar.n:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
