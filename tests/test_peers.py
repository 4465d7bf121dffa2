"""The peer models (sansa's SANSA, elsarec's ELSA) behind the recae contract; each skips, naming its install command, without its package."""

from __future__ import annotations

import builtins
import importlib.util
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import recae
from recae.exceptions import DataError, RecaeError
from recae.models.peers import ELSA, ELSA_INSTALL, SANSA, SANSA_INSTALL

from test_conformance import checkerboard

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore::UserWarning")]  # elsarec's sparse-tensor notices

needs_sansa = pytest.mark.skipif(importlib.util.find_spec("sansa") is None or importlib.util.find_spec("sksparse") is None,
                                 reason=f"sansa is not installed: {SANSA_INSTALL}")
needs_elsa = pytest.mark.skipif(importlib.util.find_spec("elsa") is None, reason=f"elsarec is not installed: {ELSA_INSTALL}")
N = 40
ELSA_SMALL = dict(rank=4, epochs=30, batch_size=8, lr=0.05, random_state=0, device="cpu")


@pytest.fixture(scope="module")
def board():
    return checkerboard(N)


@pytest.fixture(scope="module")
def log():
    rng = np.random.default_rng(0)
    return sp.csr_matrix((rng.random((300, 60)) < 0.15).astype(np.float32))


def planted_first(model, board) -> bool:
    ids, _ = model.recommend(board.user_ids, n=1)
    return np.array_equal(ids[:, 0], np.array([f"i{u:02d}" for u in range(N)], dtype=object))


@pytest.mark.parametrize("model, package", [(SANSA(), "sansa"), (ELSA(rank=4), "elsa")])
def test_missing_package_names_the_install_command(board, monkeypatch, model, package):
    real = builtins.__import__

    def absent(name, *args, **kwargs):
        if name == package or name.startswith(package + "."):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", absent)
    with pytest.raises(RecaeError, match="pip install") as err:
        model.fit(board)
    assert (SANSA_INSTALL if package == "sansa" else ELSA_INSTALL) in str(err.value)


@needs_sansa
def test_sansa_at_full_density_is_ease(log):
    ease = recae.EASE(l2=5.0).fit(log)
    sansa = SANSA(l2=5.0, density=1.0).fit(log)
    np.testing.assert_allclose(sansa.score(log[:50]), ease.score(log[:50]), atol=1e-4)
    B = sansa.similarity_rows(np.arange(60)).numpy()
    np.testing.assert_allclose(B.diagonal(), 0.0, atol=1e-4)  # EASE's zero diagonal, from the + x
    sparse = SANSA(l2=5.0, density=0.2).fit(log)
    assert sum(w.nnz for w in sparse.weights_) < sum(w.nnz for w in sansa.weights_)
    assert np.abs(sparse.score(log[:50]) - ease.score(log[:50])).max() > 1e-3  # sparsified: an approximation


@needs_sansa
@pytest.mark.parametrize("factorizer", ["cholmod", "icf"])
def test_sansa_learns_the_checkerboard_and_roundtrips(board, tmp_path, factorizer):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SANSA(l2=1.0, density=0.5, factorizer=factorizer).fit(board)
    assert planted_first(model, board)
    model.save(tmp_path / "s.recae")
    loaded = recae.load(tmp_path / "s.recae")
    assert type(loaded) is SANSA and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.score(board.matrix), model.score(board.matrix))
    a, _ = model.recommend_new(board.take_users(np.arange(5)), n=3)
    b, _ = model.recommend(board.user_ids[:5], n=3)
    np.testing.assert_array_equal(a, b)  # fold-in is the same product as for training users


@needs_sansa
@pytest.mark.parametrize("params", [dict(density=0), dict(density=1.5), dict(l2=0), dict(factorizer="lu")])
def test_sansa_bad_settings(board, params):
    with pytest.raises(DataError):
        SANSA(**params).fit(board)


@needs_elsa
def test_elsa_learns_the_checkerboard_with_unit_factors(board):
    model = ELSA(**ELSA_SMALL).fit(board)
    assert planted_first(model, board)
    A = model.item_factors_
    torch.testing.assert_close(A.norm(dim=1), torch.ones(N), rtol=0, atol=1e-6)
    x = torch.as_tensor(board.matrix[:7].toarray())
    torch.testing.assert_close(model.score(board.matrix[:7]), (x @ A @ A.T - x).numpy(), rtol=1e-5, atol=1e-5)


@needs_elsa
def test_elsa_is_seeded_and_leaves_the_global_rng_alone(board):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = ELSA(**dict(ELSA_SMALL, epochs=3)).fit(board)
    assert torch.equal(torch.get_rng_state(), before)
    b = ELSA(**dict(ELSA_SMALL, epochs=3)).fit(board)
    torch.testing.assert_close(a.item_factors_, b.item_factors_, rtol=0, atol=0)
    c = ELSA(**dict(ELSA_SMALL, epochs=3, random_state=1)).fit(board)
    assert not torch.equal(a.item_factors_, c.item_factors_)


@needs_elsa
def test_elsa_keeps_the_best_validation_epoch(board, tmp_path):
    split = recae.strong_generalization_split(board, n_heldout=6, random_state=0)
    model = ELSA(**dict(ELSA_SMALL, epochs=12, patience=3)).fit(split.train, valid=split)
    scores = [h["ndcg@100"] for h in model.history_]
    assert model.best_epoch_ == int(np.argmax(scores)) + 1
    kept = recae.models.validation.validation_score(
        model, recae.models.inputs.validation_pair(split, model.item_ids_), "ndcg@100")
    assert kept == pytest.approx(max(scores))
    model.save(tmp_path / "e.recae")
    torch.testing.assert_close(recae.load(tmp_path / "e.recae").item_factors_, model.item_factors_)


@needs_elsa
@pytest.mark.parametrize("params", [dict(rank=0), dict(rank=N + 1), dict(epochs=0), dict(batch_size=1.5)])
def test_elsa_bad_settings(board, params):
    with pytest.raises(DataError):
        ELSA(**dict(ELSA_SMALL, **params)).fit(board)


def test_elsa_names_a_bad_setting_before_its_reference_runs():
    from recae.exceptions import DataError
    from recae.models.peers import ELSA

    for kwargs, message in (({"lr": -1}, "lr must be a finite number > 0; got -1"),
                            ({"rank": 0}, "rank must be a positive integer; got 0"),
                            ({"patience": 0}, "patience must be a positive integer or None; got 0"),
                            ({"patience": "5"}, "patience must be a positive integer or None; got '5'"),
                            ({"random_state": -1}, r"random_state must be an integer in \[0, "),
                            ({"random_state": "a"}, "random_state must be an integer; got str 'a'")):
        with pytest.raises(DataError, match=message):
            ELSA(epochs=1, **kwargs).check_params()  # the checks fit and loading run, without the package
