"""Which images are labeled, and which held-out images the selection scripts score."""

import pytest

from napari_amvlm.data.split import labeled_split, spread_sample, subject, unseen_subjects


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


def test_subject_reads_the_bids_entity_only():
    assert subject("sub-s12020_ses-e23592_run-1_bp-chest_vp-ap_dx") == "s12020"
    assert subject("img_sub-A7_x") == "A7"
    assert subject("covid_1234") is None
    assert subject("mysub-3") is None


def test_unseen_subjects_drops_patients_with_a_labeled_image_and_unknown_patients():
    names = ["sub-a_ses-1", "sub-a_ses-2", "sub-b_ses-1", "sub-c_ses-1", "sub-c_ses-2", "covid_1"]
    assert unseen_subjects(names, labeled=[0], candidates=[1, 2, 3, 4, 5]) == [2, 3, 4]
    assert unseen_subjects(names, labeled=[0, 3], candidates=[1, 2, 4, 5]) == [2]
    assert unseen_subjects(names, labeled=[], candidates=[5]) == []
