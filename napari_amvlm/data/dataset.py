"""Image-text(-mask) datasets over folders holding a CSV with ``image,mask,text`` columns.

Layouts (paths in the CSV are relative to the folder):
- QaTa-COV19: ``<split>/text.csv`` with ``images/x.png`` and ``masks/mask_x.png``;
- MoNuSeg: ``<Split>_Folder/<split>_text.csv`` with ``img/x.png`` and ``labelcol/x.png``;
- any folder with exactly one CSV holding those columns.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..io import read_image, read_mask
from .pixels import to_model_input

REQUIRED_COLUMNS = ("image", "mask", "text")

Transform = Callable[[torch.Tensor, torch.Tensor, str], tuple[torch.Tensor, torch.Tensor, str]]


@dataclass
class Record:
    """One CSV row: ``index`` is the 0-based data row (the file line is ``index + 2``)."""

    index: int
    image: Path
    mask: Path | None
    text: str
    name: str


def _csv_columns(path: Path) -> list[str]:
    """Lower-cased, stripped header of a CSV file (empty list when unreadable)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError):
        return []
    return [c.strip().lower() for c in header]


def _has_columns(path: Path) -> bool:
    return all(c in _csv_columns(path) for c in REQUIRED_COLUMNS)


def find_csv(root: str | Path) -> Path:
    """The ``image,mask,text`` CSV of a dataset folder (``text.csv``, ``<split>_text.csv`` or a lone CSV).

    A path to a CSV file is returned as is (after checking its columns).
    """
    root = Path(root)
    if root.is_file():
        if not _has_columns(root):
            raise ValueError(f"{root} lacks the columns {', '.join(REQUIRED_COLUMNS)}")
        return root
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    found = sorted(root.glob("*.csv"))
    valid = [p for p in found if _has_columns(p)]
    for p in valid:
        if p.name.lower() == "text.csv":
            return p
    split = [p for p in valid if p.name.lower().endswith("_text.csv")]
    if len(split) > 1:  # several splits in one folder: take the one named like the folder
        split = [p for p in split if root.name.lower().startswith(p.name.lower()[: -len("_text.csv")])]
    if len(split) == 1:
        return split[0]
    if len(valid) == 1:
        return valid[0]
    names = ", ".join(p.name for p in found) or "none"
    raise ValueError(
        f"cannot choose the dataset CSV in {root}: expected text.csv, <split>_text.csv or exactly one CSV "
        f"with columns {', '.join(REQUIRED_COLUMNS)}; CSV files found: {names}"
    )


def _row_error(csv_path: Path, i: int, image: str, what: str) -> ValueError:
    return ValueError(f"{csv_path}: row {i + 1} (line {i + 2}, image {image!r}): {what}")


def _record(csv_path: Path, i: int, row: dict, require_masks: bool) -> Record:
    """Validate one CSV row and turn it into a Record (paths resolved against the CSV's folder)."""
    root = csv_path.parent
    image_name = (row.get("image") or "").strip()
    mask_name = (row.get("mask") or "").strip()
    text = " ".join((row.get("text") or "").split())
    if not image_name:
        raise _row_error(csv_path, i, image_name, "empty image path")
    image = root / image_name
    if not image.is_file():
        raise _row_error(csv_path, i, image_name, f"image file not found: {image}")
    if not text:
        raise _row_error(csv_path, i, image_name, "empty text")
    mask = root / mask_name if mask_name else None
    if mask is None and require_masks:
        raise _row_error(csv_path, i, image_name, "no mask given but masks are required")
    if mask is not None and not mask.is_file():
        raise _row_error(csv_path, i, image_name, f"mask file not found: {mask}")
    return Record(index=i, image=image, mask=mask, text=text, name=Path(image_name).stem)


def read_records(root: str | Path, require_masks: bool = False) -> list[Record]:
    """Read and validate every row of a dataset folder's CSV (see :func:`find_csv`)."""
    csv_path = find_csv(root)
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        reader.fieldnames = [c.strip().lower() for c in reader.fieldnames or []]
        records = [_record(csv_path, i, row, require_masks) for i, row in enumerate(reader)]
    if not records:
        raise ValueError(f"{csv_path} has no data rows")
    return records


def _as_roots(roots: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(roots, (str, Path)):
        return [Path(roots)]
    return [Path(r) for r in roots]


def check_files(roots: str | Path | Sequence[str | Path], require_masks: bool = False,
                limit: int | None = None) -> int:  # fmt: skip
    """Read every image and mask the folders' CSVs name (the first ``limit`` rows), so that a command stops on
    a bad file, with one error naming it, before it writes anything. Returns the number of rows checked."""
    records = [r for root in _as_roots(roots) for r in read_records(root, require_masks)][:limit]
    for rec in records:
        read_image(rec.image)
        if rec.mask is not None:
            read_mask(rec.mask)
    return len(records)


def _is_gray(raw: np.ndarray) -> bool:
    return raw.ndim == 2 or (raw.ndim == 3 and raw.shape[-1] == 1)


def _encode_image(raw: np.ndarray, size: int) -> np.ndarray:
    """Model input in a compact stored form: uint8 for 8-bit sources, float16 otherwise; gray as 1 channel.

    3,500 gray QaTa images at 224² take 176 MB this way.
    """
    x = to_model_input(raw, size)
    if _is_gray(raw):
        x = x[:1]
    if raw.dtype == np.uint8:
        return np.round(x * 255.0).astype(np.uint8)
    return x.astype(np.float16)


def _decode_image(stored: np.ndarray) -> torch.Tensor:
    """float32 (3, H, W) in [0, 1] from :func:`_encode_image`'s output.

    Done in NumPy (single-threaded): torch's intra-op threads cost milliseconds on such small tensors
    when the CPU is busy with training.
    """
    x = stored.astype(np.float32)
    if stored.dtype == np.uint8:
        x /= 255.0
    if x.shape[0] == 1:
        x = np.repeat(x, 3, axis=0)
    return torch.from_numpy(x)


def _encode_mask(mask: np.ndarray) -> np.ndarray:
    """A bool mask packed 8 pixels per byte."""
    return np.packbits(mask, axis=None)


def _decode_mask(packed: np.ndarray, size: int) -> torch.Tensor:
    """float32 (1, size, size) in {0, 1} from :func:`_encode_mask`'s output."""
    bits = np.unpackbits(packed, count=size * size).reshape(1, size, size)
    return torch.from_numpy(bits.astype(np.float32))


class ImageTextDataset(Dataset):
    """Image, mask and caption triples from one or several dataset folders.

    Items are dicts: ``image`` float32 (3, size, size) in [0, 1]; ``mask`` float32 (1, size, size) in {0, 1}
    (zeros when the row has no mask); ``has_mask``; ``text``; ``index`` (position in this dataset); ``name``
    (image file stem). Images are stored as uint8 (8-bit sources) or float16 (gray as one channel) and
    masks as packed bits, with or without ``cache``, so cached and uncached items are identical. With
    DataLoader workers each worker keeps its own cache. ``transform(image, mask, text)`` returns the same triple.
    """

    def __init__(
        self,
        roots: str | Path | Sequence[str | Path],
        size: int = 224,
        transform: Transform | None = None,
        require_masks: bool = False,
        cache: bool = True,
    ) -> None:
        self.roots = _as_roots(roots)
        if not self.roots:
            raise ValueError("no dataset folder given")
        self.size = int(size)
        self.transform = transform
        self.cache = cache
        self.records: list[Record] = [r for root in self.roots for r in read_records(root, require_masks)]
        self._images: list[np.ndarray | None] = [None] * len(self.records)
        self._masks: list[np.ndarray | None] = [None] * len(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def keep(self, indices: Sequence[int]) -> None:
        """Restrict the dataset to the given items (in that order); cached arrays are kept."""
        idx = list(indices)
        self.records = [self.records[i] for i in idx]
        self._images = [self._images[i] for i in idx]
        self._masks = [self._masks[i] for i in idx]

    def preload(self, indices: Sequence[int]) -> None:
        """Read and cache the given items now (no effect without ``cache``)."""
        if self.cache:
            for i in indices:
                self._load(i)

    @property
    def texts(self) -> list[str]:
        """Caption of every item, in order."""
        return [r.text for r in self.records]

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Stored image and mask of item ``i`` (from the cache when present)."""
        if self._images[i] is not None:
            return self._images[i], self._masks[i]
        rec = self.records[i]
        image = _encode_image(read_image(rec.image), self.size)
        mask = _encode_mask(read_mask(rec.mask, self.size)) if rec.mask is not None else None
        if self.cache:
            self._images[i], self._masks[i] = image, mask
        return image, mask

    def __getitem__(self, i: int) -> dict:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        stored_image, stored_mask = self._load(i)
        image = _decode_image(stored_image)
        has_mask = stored_mask is not None
        if has_mask:
            mask = _decode_mask(stored_mask, self.size)
        else:
            mask = torch.from_numpy(np.zeros((1, self.size, self.size), np.float32))
        text = self.records[i].text
        if self.transform is not None:
            image, mask, text = self.transform(image, mask, text)
        return {
            "image": image,
            "mask": mask,
            "has_mask": has_mask,
            "text": text,
            "index": i,
            "name": self.records[i].name,
        }


def collate(batch: list[dict]) -> dict:
    """Stack a list of items: tensors stacked, ``has_mask``/``index`` as tensors, ``text``/``name`` lists."""
    if not batch:
        raise ValueError("cannot collate an empty batch")
    return {
        "image": torch.stack([b["image"] for b in batch]),
        "mask": torch.stack([b["mask"] for b in batch]),
        "has_mask": torch.tensor([bool(b["has_mask"]) for b in batch]),
        "text": [b["text"] for b in batch],
        "index": torch.tensor([int(b["index"]) for b in batch]),
        "name": [b["name"] for b in batch],
    }
