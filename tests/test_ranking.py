"""The item-chunked top-k against a whole-row top-k, on random score blocks with ties and masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recae.exceptions import TrainingError
from recae.models.ranking import _chunked_topk, check_scores


class Dense:
    """A FactoredScores stand-in that hands out column slices of a fixed block."""

    def __init__(self, s: torch.Tensor):
        self.s = self.hidden = s

    def chunk(self, lo: int, hi: int, out: torch.Tensor | None = None) -> torch.Tensor:
        return self.s[:, lo:hi].clone() if out is None else out.copy_(self.s[:, lo:hi])


@settings(max_examples=200, deadline=None, derandomize=True)
@given(rows=st.integers(1, 6), items=st.integers(1, 60), k=st.integers(1, 70), chunk=st.integers(1, 25),
       levels=st.sampled_from([3, 1000]), masked=st.floats(0.0, 0.9), seed=st.integers(0, 2**16))
def test_chunked_topk_equals_the_whole_row_topk(rows, items, k, chunk, levels, masked, seed):
    rng = np.random.default_rng(seed)
    s = torch.as_tensor(rng.integers(0, levels, size=(rows, items)).astype(np.float32))  # 3 levels: many ties
    s[torch.as_tensor(rng.random((rows, items)) < masked)] = -torch.inf  # as seen items are masked
    k = min(k, items)
    v, i = _chunked_topk(Dense(s), k, items, chunk, None, None, lambda block: None)
    want = torch.topk(s, k, dim=1).values
    torch.testing.assert_close(v, want, rtol=0, atol=0)  # the same k values, sorted descending
    assert torch.equal(torch.gather(s, 1, i), v)  # each index holds its value
    assert all(len(set(row.tolist())) == k for row in i)  # no item twice in a row


def test_check_scores_finds_nan_and_plus_inf_but_allows_minus_inf():
    s = torch.zeros(4, 9)
    s[1, 2] = -torch.inf
    check_scores(s, "Model", 0)
    for bad in (torch.nan, torch.inf):
        t = s.clone()
        t[2, 5] = bad
        with pytest.raises(TrainingError, match=r"1 NaN or \+inf score\(s\) \(first in row 12\)"):
            check_scores(t, "Model", 10)
    big = torch.full((2, 3), 3e38)  # the sum overflows to +inf, but every score is finite
    check_scores(big, "Model", 0)
