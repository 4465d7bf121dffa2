"""The CUDA path: device batching, mixed precision, CPU/GPU agreement. Skips without CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import recae
from recae.data.batching import DeviceCSR

from test_conformance import checkerboard

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")


def test_device_csr_on_gpu_and_pinned_host():
    X = sp.random(300, 120, density=0.05, format="csr", random_state=0, dtype=np.float32)
    rows = torch.tensor([5, 0, 299, 5])
    expected = X[rows.numpy()].toarray()
    on_gpu = DeviceCSR(X, torch.device("cuda"))
    assert on_gpu.indptr.is_cuda
    np.testing.assert_array_equal(on_gpu.gather(rows).cpu().numpy(), expected)
    pinned = DeviceCSR(X, torch.device("cuda"), memory_budget_gb=0.0)  # too big for the budget: host memory
    assert not pinned.indptr.is_cuda and pinned.indptr.is_pinned()
    out = pinned.gather(rows)
    assert out.is_cuda
    np.testing.assert_array_equal(out.cpu().numpy(), expected)


@pytest.mark.parametrize("make", [
    lambda d, amp: recae.MultDAE(hidden_dims=(32,), epochs=5, batch_size=16, device=d, amp=amp),
    lambda d, amp: recae.MultVAE(hidden_dims=(32,), latent_dim=8, epochs=5, batch_size=16, device=d, amp=amp),
    lambda d, amp: recae.RecVAE(hidden_dim=32, latent_dim=8, epochs=3, batch_size=16, device=d, amp=amp),
    lambda d, amp: recae.CDAE(hidden_dim=32, epochs=5, batch_size=16, device=d, amp=amp),
])
def test_gpu_training_matches_cpu_ranking(make):
    board = checkerboard(40)
    gpu = make("cuda", False).fit(board)
    cpu = make("cpu", False).fit(board)
    assert next(gpu.module_.parameters()).is_cuda
    # different kernels and RNG streams: compare the learned ranking, not bits
    g_ids, g_scores = gpu.recommend(board.user_ids, n=1)
    c_ids, _ = cpu.recommend(board.user_ids, n=1)
    assert np.isfinite(g_scores).all()
    assert (g_ids[:, 0] == c_ids[:, 0]).mean() >= 0.9
    amp = make("cuda", True).fit(board)
    assert np.isfinite(amp.score(board.matrix)).all()


def test_gpu_determinism_and_save_load(tmp_path):
    board = checkerboard(40)
    a = recae.MultVAE(hidden_dims=(32,), latent_dim=8, epochs=4, batch_size=16, device="cuda", amp=False).fit(board)
    b = recae.MultVAE(hidden_dims=(32,), latent_dim=8, epochs=4, batch_size=16, device="cuda", amp=False).fit(board)
    np.testing.assert_allclose(a.score(board.matrix), b.score(board.matrix), rtol=1e-4, atol=1e-5)
    a.save(tmp_path / "m.recae")
    on_cpu = recae.load(tmp_path / "m.recae", device="cpu")
    np.testing.assert_allclose(on_cpu.score(board.matrix), a.score(board.matrix), rtol=1e-3, atol=1e-4)


def test_ease_on_gpu_matches_cpu():
    board = checkerboard(40)
    g = recae.EASE(l2=1.0, device="cuda").fit(board)
    c = recae.EASE(l2=1.0, device="cpu").fit(board)
    np.testing.assert_allclose(g.B_.cpu().numpy(), c.B_.numpy(), rtol=1e-3, atol=1e-4)


def test_linear_ae_on_gpu_matches_cpu():
    import scipy.sparse as sp
    from test_ease import random_matrix

    X = sp.csr_matrix(random_matrix())  # a spectrum without ties, so the rank-5 subspace is unique
    g = recae.LinearAE(rank=5, l2=2.0, device="cuda").fit(X)
    c = recae.LinearAE(rank=5, l2=2.0, device="cpu").fit(X)
    V, W = g.item_factors_.cpu().double(), c.item_factors_.double()
    np.testing.assert_allclose((V @ V.T).numpy(), (W @ W.T).numpy(), rtol=0, atol=1e-4)  # B, not sign-ambiguous factors
