"""What a typed prompt means to the model, and what of it the model cannot read.

:func:`prepare_prompt` turns the text a user typed into the text the model reads, once, before the text encoder:

1. Words in a non-Latin script are dropped: the models here learned from English sentences only.
2. Words outside the model's training vocabulary (``vocabulary.txt`` in the model folder, one word a line; see
   :func:`write_vocabulary`) are dropped. A folder without that file drops nothing at this step.
3. Text past the text encoder's token limit is cut at a word boundary (the encoder would drop it anyway).
4. Zone words that follow a side are moved in front of it ("left lower lung" -> "lower left lung"), the order
   the training sentences use. Then left and right are rewritten into the model's convention. The datasets'
   sentences, and so every model trained on them, name the *image's* sides as displayed (:data:`MODEL_SIDES`); a
   prompt written in the patient's convention (``sides="patient"``: on a frontal chest film the patient's left is
   on the image's right) has its left and right swapped.

Every dropped word is named in :attr:`PreparedPrompt.notices`, which the CLI prints as warnings and the widget
shows in its status line; the prompt still segments. A prompt with no readable word left is an error.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .._atomic import atomic_write_text
from ..data.text import flip_text_horizontal, zones_before_side

SIDE_CONVENTIONS = ("image", "patient")
SIDE_HELP = {
    "image": "left/right are the image's sides as displayed (the datasets' convention)",
    "patient": "left/right are the patient's sides, as a radiologist reads a frontal chest film: the patient's "
               "left lung is on the image's right",
}
MODEL_SIDES = "image"  # the convention of the training sentences, hence of every model trained on them
VOCABULARY_NAME = "vocabulary.txt"
MAX_VOCABULARY_BYTES = 8 << 20  # a model folder's vocabulary.txt (the shipped models' hold a few dozen words)
SHOWN_WORDS = 8  # a notice names at most this many words, then says how many more
# Words that negate what follows: the training sentences never negate, so a model reads "no infection" as
# "infection". A prompt with one of them gets a notice (and the word is not listed again as unknown).
NEGATIONS = frozenset({"no", "not", "without", "absent", "absence", "negative", "none", "neither", "nor",
                       "except", "excluding"})

_WORD_RE = re.compile(r"\w+")


def to_model_sides(text: str, sides: str) -> str:
    """``text`` written in the ``sides`` convention, rewritten into the model's (image) convention."""
    return convert_sides(text, sides, MODEL_SIDES)


def convert_sides(text: str, src: str, dst: str) -> str:
    """Rewrite left/right of ``text`` from the ``src`` side convention into ``dst`` (a no-op when they agree)."""
    for s in (src, dst):
        if s not in SIDE_CONVENTIONS:
            raise ValueError(f"sides must be one of {', '.join(SIDE_CONVENTIONS)}, not {s!r}")
    return text if src == dst else flip_text_horizontal(text)


def is_latin(word: str) -> bool:
    """Whether every letter of ``word`` is a Latin letter (digits and marks pass)."""
    return all(not ch.isalpha() or unicodedata.name(ch, "").startswith("LATIN") for ch in word)


def words_of(text: str) -> list[str]:
    """The words of a sentence, lower-cased (what a vocabulary holds)."""
    return [w.lower() for w in _WORD_RE.findall(text)]


def read_vocabulary(folder: str | Path) -> frozenset[str] | None:
    """The training vocabulary stored in a model folder, or None when the folder has none."""
    path = Path(folder) / VOCABULARY_NAME
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_VOCABULARY_BYTES:
        raise ValueError(f"{path} is {path.stat().st_size / 2**20:.0f} MiB, more than the "
                         f"{MAX_VOCABULARY_BYTES >> 20} MiB a model's vocabulary may have")
    return frozenset(w.strip().lower() for w in path.read_text(encoding="utf-8").splitlines() if w.strip())


def write_vocabulary(folder: str | Path, sentences: Iterable[str], keep: Iterable[str] = ()) -> Path:
    """Write the words of ``sentences`` (plus ``keep``) as the model folder's training vocabulary."""
    vocab = sorted(set(keep) | {w for s in sentences for w in words_of(s)})
    path = Path(folder) / VOCABULARY_NAME
    atomic_write_text(path, "".join(f"{w}\n" for w in vocab))
    return path


def folder_sentences(folder: str | Path) -> list[str]:
    """The sentences of a data folder's ``image,mask,text`` CSV (any ``*.csv`` with a ``text`` column)."""
    out: list[str] = []
    for csv_path in sorted(Path(folder).glob("*.csv")):
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames and "text" in reader.fieldnames:
                out += [row["text"] or "" for row in reader]
    return out


def _listed(words: list[str]) -> str:
    shown = ", ".join(f"'{w}'" for w in words[:SHOWN_WORDS])
    more = len(words) - SHOWN_WORDS
    return shown + (f" and {more:,} more" if more > 0 else "")


@dataclass
class PreparedPrompt:
    """A typed prompt and the text the model reads for it."""

    typed: str  # as the user wrote it
    text: str  # what the text encoder (and the position prior) read
    sides: str = "image"  # the side convention ``typed`` is written in
    non_latin: list[str] = field(default_factory=list)  # dropped: not in a Latin script
    unknown: list[str] = field(default_factory=list)  # dropped: outside the training vocabulary
    negations: list[str] = field(default_factory=list)  # negating words: the model cannot follow them
    cut: list[str] = field(default_factory=list)  # dropped: past the text encoder's token limit
    max_tokens: int | None = None

    @property
    def notices(self) -> list[str]:
        """One line per kind of dropped word, naming the words."""
        out = []
        if self.negations:
            out.append(f"the model cannot follow negation ({_listed(self.negations)}): it segments what the other "
                       "words name, as if the negation were not there")
        if self.non_latin:
            out.append(f"ignored words not in the Latin alphabet (the model reads English): {_listed(self.non_latin)}")
        if self.unknown:
            out.append(f"ignored words the model was not trained on: {_listed(self.unknown)}")
        if self.cut:
            out.append(f"prompt cut at the model's {self.max_tokens}-token limit; ignored {len(self.cut):,} "
                       f"word{'s' if len(self.cut) != 1 else ''}: {_listed(self.cut)}")
        return out


def prepare_prompt(typed: str, sides: str = "image", vocabulary: Iterable[str] | None = None, tokenizer=None,
                   max_length: int | None = None) -> PreparedPrompt:
    """The text the model reads for ``typed`` (see the module docstring for the four steps).

    ``tokenizer`` (a HuggingFace tokenizer) and ``max_length`` (tokens, special ones included) enable the cut at
    the token limit. Raises ValueError for an empty prompt or one with no word the model can read.
    """
    if sides not in SIDE_CONVENTIONS:
        raise ValueError(f"sides must be one of {', '.join(SIDE_CONVENTIONS)}, not {sides!r}")
    if typed is None or not str(typed).strip():
        raise ValueError("the prompt is empty: describe what to segment")
    typed = str(typed)
    vocab = None if vocabulary is None else {w.lower() for w in vocabulary}
    out = PreparedPrompt(typed=typed, text="", sides=sides)

    def keep(m: re.Match) -> str:
        word = m.group(0)
        if not is_latin(word):
            out.non_latin.append(word)
            return ""
        negation = word.lower() in NEGATIONS
        if negation:
            out.negations.append(word)
        if vocab is not None and word.lower() not in vocab:
            if not negation:
                out.unknown.append(word)
            return ""
        return word

    text = _tidy(_WORD_RE.sub(keep, typed))
    if not _WORD_RE.search(text):
        dropped = out.non_latin + out.unknown + [w for w in out.negations if vocab is not None]
        if not dropped:
            raise ValueError("the prompt has no words: describe what to segment")
        known = f"; it knows: {', '.join(sorted(vocab))}" if vocab else ""
        raise ValueError(f"the model cannot read any word of the prompt (it ignores {_listed(dropped)}){known}")
    if tokenizer is not None and max_length:
        out.max_tokens = max_length
        text, out.cut = _cut_at_token_limit(text, tokenizer, max_length)
    out.text = to_model_sides(zones_before_side(text), sides)
    return out


def _tidy(text: str) -> str:
    """Whitespace and punctuation left tidy after words were removed: "a ,  , b" -> "a, b"."""
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,;:.!?])", r"\1", text)
    text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)
    text = re.sub(r"[,;:]+([.!?])", r"\1", text)
    return text.strip(" ,;:")


def _cut_at_token_limit(text: str, tokenizer, max_length: int) -> tuple[str, list[str]]:
    """(the longest run of whole words of ``text`` that fits in ``max_length`` tokens, the words cut off)."""
    budget = max_length - tokenizer.num_special_tokens_to_add()
    used = 0
    for m in re.finditer(r"\S+", text):
        used += len(tokenizer.tokenize(m.group(0)))
        if used > budget:
            return text[: m.start()].rstrip(" ,;:"), _WORD_RE.findall(text[m.start():])
    return text, []
