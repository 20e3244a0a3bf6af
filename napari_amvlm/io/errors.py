"""One clear error for an image file that cannot be read (truncated, not an image at all, a format no reader
knows), shared by every place that reads image or mask files: the commands, the project store, the sample data
and the widget. The error is a ``ValueError`` naming the file and the reason in one line, so the command line
prints it without a traceback and the widget shows it in its status line."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


class UnreadableImageError(ValueError):
    """An image or mask file that exists but cannot be read."""

    def __init__(self, source: str | os.PathLike, reason: str) -> None:
        self.source, self.reason = str(source), reason
        super().__init__(f"cannot read {self.source}: {reason}")


def describe(err: BaseException) -> str:
    """The reason an image reader gave, in the words of this project (one line)."""
    text = (str(err).strip().splitlines() or [""])[0]
    low = text.lower()
    if "could not find a backend" in low or "cannot identify image file" in low or "not a tiff file" in low:
        return "not an image file (no image reader recognises its content)"
    if "truncated" in low or "failed to read" in low or isinstance(err, EOFError):
        return "the image file is truncated (it ends before the image does)"
    return text or type(err).__name__


@contextlib.contextmanager
def reading(source: str | os.PathLike) -> Iterator[None]:
    """Turn any error of the image reading inside the block into :class:`UnreadableImageError` naming
    ``source`` (a missing file stays ``FileNotFoundError``)."""
    try:
        yield
    except (FileNotFoundError, UnreadableImageError):
        raise
    except Exception as err:  # the readers raise many types (OSError, ValueError, SyntaxError, ...)
        raise UnreadableImageError(source, describe(err)) from err
