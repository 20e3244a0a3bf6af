"""What the model reads for a typed prompt: the side convention, words it cannot read (with the notices naming
them), the token limit, and the training vocabulary of a model folder."""

from __future__ import annotations

import re

import pytest

from napari_amvlm.data.text import zones_before_side
from napari_amvlm.inference.prompts import (
    convert_sides,
    folder_sentences,
    is_latin,
    prepare_prompt,
    read_vocabulary,
    write_vocabulary,
)

from ..conftest import SAMPLE_DATA

QATA_WORDS = ("and area areas bilateral five four infected infection left lower lung middle one pulmonary right six "
              "three two unilateral upper").split()


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from napari_amvlm.model.text import default_text_encoder_path

    return AutoTokenizer.from_pretrained(str(default_text_encoder_path()), local_files_only=True)


@pytest.mark.parametrize("typed, sides, read", [
    ("lower left lung", "image", "lower left lung"),
    ("lower left lung", "patient", "lower right lung"),
    ("Upper RIGHT lung and lower left lung.", "patient", "Upper LEFT lung and lower right lung."),
    ("left lower lung", "image", "lower left lung"),  # the side first, as radiologists often write it
    ("right upper middle lung", "patient", "upper middle left lung"),
])
def test_sides_and_zone_order(typed, sides, read):
    p = prepare_prompt(typed, sides)
    assert p.text == read and p.sides == sides and p.notices == []


def test_convert_sides_between_conventions():
    assert convert_sides("left lung", "image", "image") == "left lung"
    assert convert_sides("left lung", "patient", "image") == "right lung"
    assert convert_sides(convert_sides("upper left lung", "image", "patient"), "patient", "image") == "upper left lung"
    with pytest.raises(ValueError, match="sides must be one of image, patient"):
        prepare_prompt("left lung", "radiological")


def test_non_latin_words_are_ignored_and_named():
    p = prepare_prompt("肺部感染 left lung")
    assert p.text == "left lung" and p.non_latin == ["肺部感染"]
    assert p.notices == ["ignored words not in the Latin alphabet (the model reads English): '肺部感染'"]
    assert is_latin("infección") and is_latin("Lung2") and not is_latin("лёгкое")


def test_words_outside_the_vocabulary_are_ignored_and_named():
    p = prepare_prompt("Opacity in the left lower lung, please.", vocabulary=QATA_WORDS)
    assert p.text == "lower left lung." and p.unknown == ["Opacity", "in", "the", "please"]
    assert p.notices == ["ignored words the model was not trained on: 'Opacity', 'in', 'the', 'please'"]
    assert prepare_prompt("opacity, left lung").text == "opacity, left lung"  # no vocabulary: every word read


def test_negation_is_named_as_something_the_model_cannot_follow():
    p = prepare_prompt("no infection in the lower left lung", vocabulary=QATA_WORDS)
    assert p.text == "infection lower left lung" and p.negations == ["no"] and p.unknown == ["in", "the"]
    assert p.notices[0] == ("the model cannot follow negation ('no'): it segments what the other words name, as "
                            "if the negation were not there")
    kept = prepare_prompt("left lung without infection, not the right")  # no vocabulary: read, but named
    assert kept.negations == ["without", "not"] and "without" in kept.text and len(kept.notices) == 1
    assert prepare_prompt("lower left lung", vocabulary=QATA_WORDS).negations == []


def test_a_prompt_is_cut_at_the_token_limit_on_a_word_boundary(tokenizer):
    typed = "unilateral pulmonary infection, one infected area, lower left lung. " * 200
    p = prepare_prompt(typed, tokenizer=tokenizer, max_length=40)
    n_tokens = len(tokenizer(p.text)["input_ids"])
    assert n_tokens <= 40 and typed.startswith(p.text)
    assert p.cut == re.findall(r"\w+", typed[len(p.text):])  # every word is either read or named as cut
    shown = ", ".join(f"'{w}'" for w in p.cut[:8])
    assert p.notices == [f"prompt cut at the model's 40-token limit; ignored {len(p.cut):,} words: {shown} and "
                         f"{len(p.cut) - 8:,} more"]
    assert prepare_prompt("lower left lung", tokenizer=tokenizer, max_length=40).cut == []


def test_notices_list_every_kind_and_at_most_eight_words(tokenizer):
    typed = "Ωμέγα 肺 " + " ".join(f"w{i}" for i in range(20)) + " lower left lung " * 30
    p = prepare_prompt(typed, "patient", QATA_WORDS, tokenizer, 24)
    assert p.non_latin == ["Ωμέγα", "肺"] and len(p.unknown) == 20 and p.cut
    assert p.text.startswith("lower right lung lower right lung")
    assert len(p.notices) == 3 and "'w7' and 12 more" in p.notices[1]


@pytest.mark.parametrize("typed, message", [
    ("肺部感染", "cannot read any word of the prompt (it ignores '肺部感染'); it knows: and, area"),
    ("please segment this", "cannot read any word of the prompt (it ignores 'please', 'segment', 'this')"),
    ("  ", "the prompt is empty"),
    ("!!! ...", "the prompt has no words"),
])
def test_nothing_readable_is_an_error(typed, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prepare_prompt(typed, vocabulary=QATA_WORDS)


def test_zone_words_move_in_front_of_their_side_only():
    assert zones_before_side("left lower lung and right upper middle lung") == \
        "lower left lung and upper middle right lung"
    assert zones_before_side("lower left lung") == "lower left lung"


def test_vocabulary_of_a_model_folder(tmp_path):
    assert read_vocabulary(tmp_path) is None
    sentences = folder_sentences(SAMPLE_DATA / "qata")
    assert len(sentences) == 10
    write_vocabulary(tmp_path, sentences, keep=["nuclei"])
    vocab = read_vocabulary(tmp_path)
    assert vocab == {"nuclei", "bilateral", "unilateral", "pulmonary", "infection", "one", "two", "four", "six",
                     "infected", "area", "areas", "upper", "middle", "lower", "left", "right", "lung", "and"}
