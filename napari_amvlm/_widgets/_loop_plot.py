"""The loop at a glance, in the dock's Training box: per Retrain round, the held-back Dice of the weights in use
(a line; a hollow dot where the guard kept the previous weights) and how much of the model's masks the user changed
on the images corrected before it (bars). The numbers are in the tooltip and in one line under the plot."""

from __future__ import annotations

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

from ..training.loop import LoopRound, history_table

DICE_COLOR = QColor(80, 170, 255)
CHANGED_COLOR = QColor(255, 170, 60, 150)


def summary(rows: list[LoopRound], pending: tuple[int, float | None]) -> str:
    """One line: the weights in use after the last round, and what the user changed since."""
    n, changed = pending
    since = (f"{n} corrected since, {changed:.1f} % of their masks changed" if changed is not None
             else f"{n} corrected since")
    if not rows:
        return f"No Retrain round yet ({since})." if n else "No Retrain round yet."
    last = rows[-1]
    dice = f"held-back Dice {last.dice_in_use:.1f}" if last.dice_in_use is not None else "held-back Dice unknown"
    what = "new weights in use" if last.installed else "previous weights kept"
    return f"Round {last.index}: {what}, {dice}; {since}."


class LoopPlot(QWidget):
    """A small chart of :func:`napari_amvlm.training.loop.loop_history` (empty until the first round)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[LoopRound] = []
        self.setMinimumHeight(60)
        self.setMaximumHeight(80)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Retrain rounds: held-back Dice of the weights in use (line) and the share of the model's "
                        "mask you changed on the images corrected before each round (bars).")

    def set_rows(self, rows: list[LoopRound]) -> None:
        self.rows = list(rows)
        self.setToolTip("<pre>" + history_table(self.rows) + "</pre>")
        self.setVisible(bool(self.rows))  # (no room taken before the first round)
        self.update()

    def points(self) -> list[tuple[float, float | None, float | None, bool]]:
        """(x in [0, 1], Dice in use as a height in [0, 1], changed as a height in [0, 1], installed) per round."""
        n = len(self.rows)
        top = max([r.changed or 0.0 for r in self.rows] + [1.0])
        out = []
        for k, r in enumerate(self.rows):
            x = (k + 0.5) / n
            dice = None if r.dice_in_use is None else r.dice_in_use / 100.0
            out.append((x, dice, None if r.changed is None else r.changed / top, r.installed))
        return out

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if not self.rows:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width() - 8.0, self.height() - 8.0
        bar = max(3.0, w / len(self.rows) * 0.4)
        line = []
        for x, dice, changed, installed in self.points():
            cx = 4 + x * w
            if changed is not None:
                p.fillRect(QRectF(cx - bar / 2, 4 + h * (1 - changed), bar, h * changed), CHANGED_COLOR)
            if dice is not None:
                line.append((QPointF(cx, 4 + h * (1 - dice)), installed))
        p.setPen(QPen(DICE_COLOR, 2))
        for (a, _), (b, _) in zip(line, line[1:]):
            p.drawLine(a, b)
        for pt, installed in line:
            p.setBrush(DICE_COLOR if installed else Qt.BrushStyle.NoBrush)
            p.drawEllipse(pt, 3.0, 3.0)
        p.end()
