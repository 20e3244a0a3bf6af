"""Which images are labeled, and which held-out images the selection scripts score."""

import pytest

from napari_amvlm.data.split import labeled_split, spread_sample


def test_labeled_split_is_a_seeded_partition():
    names = [f"img{i:03d}" for i in range(40)]
    lab, unl = labeled_split(names, 0.25, seed=3)
    assert len(lab) == 10 and sorted(lab + unl) == list(range(40))
    assert labeled_split(names, 0.25, seed=3) == (lab, unl)
    assert labeled_split(names, 0.25, seed=4)[0] != lab


def test_spread_sample_draws_from_every_part_of_a_sorted_list():
    # Two sources of 300 files each, listed one after the other as a folder sorted by name lists them.
    names = [f"covid_{i:03d}" for i in range(300)] + [f"sub-{i:03d}" for i in range(300)]
    picked = spread_sample(range(len(names)), 100, seed=0)
    assert len(picked) == len(set(picked)) == 100 and picked == sorted(picked)
    from_second = sum(names[i].startswith("sub") for i in picked)
    assert 30 <= from_second <= 70  # the first 100 would hold none
    assert spread_sample(range(len(names)), 100, seed=0) == picked
    assert spread_sample(range(len(names)), 100, seed=1) != picked


def test_spread_sample_keeps_everything_without_a_smaller_limit():
    assert spread_sample([5, 2, 9], None) == [5, 2, 9]
    assert spread_sample([5, 2, 9], 3) == [5, 2, 9]
    assert spread_sample([5, 2, 9], 2, seed=0) in ([5, 2], [5, 9], [2, 9])
    with pytest.raises(ValueError, match="at least 1"):
        spread_sample([1, 2], 0)
