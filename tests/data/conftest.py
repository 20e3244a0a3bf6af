"""Fixtures locating the real data: ``<x>/shared/data`` beside the checkout and the repo's ``sample_data/``."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE_DATA = REPO / "sample_data"


@pytest.fixture
def shared_data() -> Path:
    """The read-only real data folder; tests using it skip when it is not there (e.g. from a wheel)."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA} (../shared/data beside the checkout)")
    return SHARED_DATA


@pytest.fixture
def sample_data() -> Path:
    """The real images shipped with the repository."""
    if not SAMPLE_DATA.is_dir():
        pytest.skip(f"repository sample_data/ not found at {SAMPLE_DATA}")
    return SAMPLE_DATA
