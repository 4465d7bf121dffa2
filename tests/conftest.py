"""Shared fixtures. Real data comes from $RECAE_DATA_DIR, else ../shared/data beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def real_data_dir() -> Path:
    env = os.environ.get("RECAE_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def require_data(*relpath: str) -> Path:
    """Path to a real data file or folder, or skip the test with the reason."""
    path = real_data_dir().joinpath(*relpath)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is missing (set RECAE_DATA_DIR to the data directory)")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return real_data_dir()


@pytest.fixture(scope="session")
def ml100k(data_dir):
    """MovieLens 100K ratings as Interactions (skips when absent)."""
    require_data("ml-100k", "u.data")
    from recae.datasets import load_movielens

    return load_movielens("100k", data_dir=data_dir, download=False)


@pytest.fixture
def one_thread():
    """Run with one torch thread, restored afterwards.

    On an oversubscribed CPU (e.g. parallel test sessions on a 2-core box) MKL's threaded
    Cholesky inverse spin-waits at its barriers and one EASE fit on ~1,400 items can take
    10 s instead of 0.1 s; a single thread keeps these tests fast and changes no result.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Undo a test's (or a module fixture's) torch.set_num_threads, so no setting leaks into the next test."""
    before = torch.get_num_threads()
    yield
    if torch.get_num_threads() != before:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def planted():
    """A small synthetic log with planted structure (400 users × 120 items), for the search tests."""
    from recae.datasets import synthetic

    return synthetic(n_users=400, n_items=120, random_state=3)


@pytest.fixture(scope="session")
def planted_split(planted):
    """``planted`` split for strong generalization with the bench's first seed."""
    from recae.bench.protocols import make_split

    return make_split(planted, "strong", 98765)
