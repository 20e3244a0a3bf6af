"""The project's image list: one row per image with its name, status and mean uncertainty, sortable by any
column (click a header); double-click or Enter shows the image."""

from __future__ import annotations

from qtpy.QtCore import QSize, Qt, Signal
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

ID_ROLE = Qt.ItemDataRole.UserRole
COLUMNS = ("Image", "Status", "Uncertainty")
MIN_ROWS = 8  # rows visible without scrolling in the smallest dock (a 1280x800 window)


class _Number(QTableWidgetItem):
    """A cell that sorts by its number (unknown last) and shows it with three decimals."""

    def __init__(self, value: float | None) -> None:
        super().__init__("" if value is None else f"{value:.3f}")
        self.value = value
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        unknown = float("inf")  # unscored images sort after the scored ones
        a, b = self.value, getattr(other, "value", None)
        return (unknown if a is None else a) < (unknown if b is None else b)


class ImageTable(QTableWidget):
    """Rows of (image id, name, status, uncertainty); ``activated(id)`` when the user picks one."""

    activated = Signal(str)

    def __init__(self) -> None:
        super().__init__(0, len(COLUMNS))
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)  # a name's start tells the images apart
        self.setWordWrap(False)
        self.verticalHeader().hide()
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # the order added, until a header is clicked
        self.setSortingEnabled(True)
        self.cellActivated.connect(lambda row, _: self.activated.emit(self.item(row, 0).data(ID_ROLE)))

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        """Tall enough for MIN_ROWS rows under the header, whatever the style's margins."""
        rows = MIN_ROWS * self.verticalHeader().defaultSectionSize()
        height = self.horizontalHeader().sizeHint().height() + rows + 2 * self.frameWidth()
        return QSize(super().minimumSizeHint().width(), height)

    def ids(self) -> list[str]:
        """Image ids in the order shown (the user's sort)."""
        return [self.item(r, 0).data(ID_ROLE) for r in range(self.rowCount())]

    def show_rows(self, rows: list[tuple[str, str, str, float | None]], current: str | None) -> None:
        """Show ``rows`` (id, name, status, uncertainty), keeping the user's sort; only what changed is redrawn."""
        if sorted(self.ids()) == sorted(r[0] for r in rows):
            by_id = {r[0]: r for r in rows}
            self.setSortingEnabled(False)  # (a sorted table moves rows while cells change)
            for k in range(self.rowCount()):
                _, name, status, unc = by_id[self.item(k, 0).data(ID_ROLE)]
                if self.item(k, 1).text() != status:
                    self.setItem(k, 1, QTableWidgetItem(status))
                if self.item(k, 2).value != unc:
                    self.setItem(k, 2, _Number(unc))
            self.setSortingEnabled(True)
            return
        self.setSortingEnabled(False)
        self.setRowCount(len(rows))
        for k, (image_id, name, status, unc) in enumerate(rows):
            item = QTableWidgetItem(name)
            item.setData(ID_ROLE, image_id)
            item.setToolTip(name)
            self.setItem(k, 0, item)
            self.setItem(k, 1, QTableWidgetItem(status))
            self.setItem(k, 2, _Number(unc))
        self.setSortingEnabled(True)
        self.select(current)

    def set_status(self, image_id: str, status: str) -> None:
        """Change one image's status cell."""
        for k, i in enumerate(self.ids()):
            if i == image_id and self.item(k, 1).text() != status:
                self.setSortingEnabled(False)
                self.setItem(k, 1, QTableWidgetItem(status))
                self.setSortingEnabled(True)

    def select(self, image_id: str | None) -> None:
        """Highlight the row of ``image_id`` (without emitting ``activated``)."""
        for k, i in enumerate(self.ids()):
            if i == image_id:
                self.blockSignals(True)
                self.selectRow(k)
                self.blockSignals(False)
                self.scrollToItem(self.item(k, 0))
                return
        self.clearSelection()
