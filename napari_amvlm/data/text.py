"""Rewrite positional words in captions when the image is flipped.

In the AMVLM datasets "left/right/upper/lower" name the *image's* sides as displayed (GUIDE §2.6), so a
horizontal flip must swap left and right in the caption and a vertical flip must swap upper and lower.
"""

from __future__ import annotations

import re

_HORIZONTAL = {
    "left": "right",
    "right": "left",
    "leftmost": "rightmost",
    "rightmost": "leftmost",
}
_VERTICAL = {
    "upper": "lower",
    "lower": "upper",
    "top": "bottom",
    "bottom": "top",
    "uppermost": "lowermost",
    "lowermost": "uppermost",
    "topmost": "bottommost",
    "bottommost": "topmost",
    "above": "below",
    "below": "above",
}
# Words that tie a caption to a place in the image: geometry that cannot be rewritten must be skipped.
_POSITIONAL = set(_HORIZONTAL) | set(_VERTICAL) | {"middle", "center", "centre", "central"}
# QaTa lists lung zones top to bottom ("upper middle lower left lung"); keep that order after a flip.
_ZONE_ORDER = {"upper": 0, "middle": 1, "lower": 2}

_ZONE_RUN_RE = re.compile(r"\b(?:upper|middle|lower)(?:\s+(?:upper|middle|lower))+\b", re.IGNORECASE)


def _match_case(template: str, word: str) -> str:
    """Return ``word`` written in the case pattern of ``template`` (lower, UPPER or Title)."""
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _words_re(words) -> re.Pattern:
    """Case-insensitive whole-word alternation (longest first)."""
    return re.compile(r"\b(" + "|".join(sorted(words, key=len, reverse=True)) + r")\b", re.IGNORECASE)


_HORIZONTAL_RE = _words_re(_HORIZONTAL)
_VERTICAL_RE = _words_re(_VERTICAL)
_POSITIONAL_RE = _words_re(_POSITIONAL)


def _swap(s: str, pattern: re.Pattern, table: dict[str, str]) -> str:
    """Swap every whole word of ``s`` matched by ``pattern`` through ``table`` (case-preserving)."""
    return pattern.sub(lambda m: _match_case(m.group(0), table[m.group(0).lower()]), s)


def _canonical_zone_order(s: str) -> str:
    """Sort runs of zone words into upper, middle, lower order ("lower middle upper" -> "upper middle lower")."""

    def fix(m: re.Match) -> str:
        words = m.group(0).split()
        ordered = sorted(words, key=lambda w: _ZONE_ORDER[w.lower()])
        return " ".join(_match_case(old, new.lower()) for old, new in zip(words, ordered))

    return _ZONE_RUN_RE.sub(fix, s)


def flip_text_horizontal(s: str) -> str:
    """Caption of the horizontally flipped image: swap left <-> right (whole words, case kept).

    >>> flip_text_horizontal("upper left lung")
    'upper right lung'
    """
    return _swap(s, _HORIZONTAL_RE, _HORIZONTAL)


def flip_text_vertical(s: str) -> str:
    """Caption of the vertically flipped image: swap upper <-> lower, top <-> bottom, above <-> below.

    "middle" stays. Runs of lung zones are re-sorted top to bottom so the caption keeps the dataset's
    grammar: "upper middle left lung" -> "middle lower left lung".
    """
    return _canonical_zone_order(_swap(s, _VERTICAL_RE, _VERTICAL))


def is_positional(s: str) -> bool:
    """Whether the caption names a place in the image (left/right/upper/lower/top/bottom/middle/center...)."""
    return _POSITIONAL_RE.search(s) is not None


_SIDE_RE = re.compile(r"\b(left|right)\b", re.IGNORECASE)


def sides(s: str) -> set[str]:
    """The horizontal sides a sentence names: a subset of {"left", "right"}."""
    return {m.lower() for m in _SIDE_RE.findall(s)}


# The image regions position words can name: the side (left/right half of the image) and the zone (upper,
# middle, lower third) as QaTa writes them, "lower left lung", "upper middle lower right lung".
POSITION_CELLS = tuple(f"{zone} {side}" for side in ("left", "right") for zone in ("upper", "middle", "lower"))
_CELL_RE = re.compile(r"\b((?:(?:upper|middle|lower)\s+)*)(left|right)\b", re.IGNORECASE)


def position_cells(s: str) -> list[int]:
    """Indices into :data:`POSITION_CELLS` of the regions a sentence names, sorted. Zone words apply to the side
    word that follows them; a side without zone words names its whole side ("left lung": three cells). A
    sentence without left/right names no cell."""
    cells: set[int] = set()
    for zones, side in _CELL_RE.findall(s):
        named = {z.lower() for z in zones.split()} or {"upper", "middle", "lower"}
        cells.update(POSITION_CELLS.index(f"{z} {side.lower()}") for z in named)
    return sorted(cells)


_SIDE_THEN_ZONES_RE = re.compile(r"\b(left|right)\s+((?:upper|middle|lower)(?:\s+(?:upper|middle|lower))*)\b",
                                 re.IGNORECASE)


def zones_before_side(s: str) -> str:
    """Zone words moved in front of the side they follow, as the datasets write them: "left lower lung" ->
    "lower left lung" (radiologists often name the side first)."""
    return _SIDE_THEN_ZONES_RE.sub(lambda m: f"{m.group(2)} {m.group(1)}", s)
