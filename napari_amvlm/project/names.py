"""Names that a project holds and that become file names, folder names or command-line words: image ids and
names, array names, model ids. A project may come from anyone, so every such name is checked against a narrow
pattern before it is used: it is data, never a path (no separator, no ``..``) and never an option (no leading
``-``)."""

from __future__ import annotations

import re

# one path component: letters, digits, '.', '_', '-'; first character a letter, digit or '_' (so never '.', '..',
# a hidden file or an option); at most 128 characters
FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
FILE_NAME_RULE = ("letters, digits, '.', '_' and '-' only, starting with a letter, a digit or '_', at most 128 "
                  "characters")
ARRAY_KINDS = ("img", "human", "prediction", "pseudo_label")  # "<kind>-<uuid4 hex>": what the store writes
ARRAY_NAME = re.compile(r"(img|human|prediction|pseudo_label)-[0-9a-f]{32}")
ARRAY_NAME_RULE = "<kind>-<32 hex digits> with kind img, human, prediction or pseudo_label"
SHA256 = re.compile(r"[0-9a-f]{64}")


def is_file_name(name: object) -> bool:
    """Whether ``name`` can be used as a file name as it is (see :data:`FILE_NAME`)."""
    return isinstance(name, str) and FILE_NAME.fullmatch(name) is not None


def check_file_name(name: object, what: str) -> str:
    """``name`` if it is a safe file name, else a ValueError naming ``what`` and the rule."""
    if not is_file_name(name):
        raise ValueError(f"{what} {shown(name)} cannot be used as a file name ({FILE_NAME_RULE})")
    return name  # type: ignore[return-value]


def is_array_name(name: object, kind: str | None = None) -> bool:
    """Whether ``name`` is an array name the store could have written (of ``kind``, when given)."""
    if not isinstance(name, str) or ARRAY_NAME.fullmatch(name) is None:
        return False
    return kind is None or name.rsplit("-", 1)[0] == kind


def shown(value: object, limit: int = 60) -> str:
    """``value`` as an error message shows it: its repr, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
