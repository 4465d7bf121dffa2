"""Bad hyper-parameters get a DataError naming the setting, before any training (recae.models.settings)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import recae
from recae.exceptions import DataError
from recae.models.settings import CHECKS

FAST = dict(epochs=1, device="cpu")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user": rng.integers(0, 60, 600), "item": rng.integers(0, 40, 600),
                          "r": rng.integers(1, 6, 600).astype(float)})
    return (recae.Interactions.from_pandas(frame, user="user", item="item"),
            recae.Interactions.from_pandas(frame, user="user", item="item", rating="r"))


CASES = [
    (lambda: recae.ImplicitBPR(factors=-1, iterations=2), "factors must be an integer in [1, inf]; got -1"),
    (lambda: recae.ImplicitALS(factors=None), "factors must be an integer; got NoneType None"),
    (lambda: recae.ImplicitALS(factors=0), "factors must be an integer in [1, inf]; got 0"),
    (lambda: recae.ImplicitALS(regularization=float("nan")), "regularization must be a finite number; got float nan"),
    (lambda: recae.ImplicitBPR(learning_rate=-1.0, iterations=2), "learning_rate must lie in (0, inf]; got -1"),
    (lambda: recae.ImplicitALS(random_state="abc"), "random_state must be an integer; got str 'abc'"),
    (lambda: recae.ImplicitALS(alpha=0.0), "alpha must lie in (0, inf]; got 0"),  # c = alpha·x: 0 zeroes every factor
    (lambda: recae.MultDAE(hidden_dims=(16.5,), **FAST), "hidden_dims must be a non-empty sequence of positive integers"),
    (lambda: recae.MultDAE(hidden_dims=(), **FAST), "hidden_dims must be a non-empty sequence"),
    (lambda: recae.MultVAE(latent_dim=0, **FAST), "latent_dim must be an integer in [1, inf]; got 0"),
    (lambda: recae.MultDAE(dropout=1.0, **FAST), "dropout must lie in [0, 1); got 1"),
    (lambda: recae.MultDAE(dropout=None, **FAST), "dropout must be a finite number; got NoneType None"),
    (lambda: recae.MultVAE(weight_decay=-1, **FAST), "weight_decay must lie in [0, inf]; got -1"),
    (lambda: recae.MultVAE(beta_cap="2", **FAST), "beta_cap must be a finite number; got str '2'"),
    (lambda: recae.CDAE(user_l2=float("inf"), **FAST), "user_l2 must be a finite number; got float inf"),
    (lambda: recae.RecVAE(mixture_weights=None, **FAST), "mixture_weights must be a sequence of finite non-negative"),
    (lambda: recae.CDAE(random_state=1.5, **FAST), "random_state must be an integer; got float 1.5"),
    (lambda: recae.MultDAE(optimizer=["adam"], **FAST), "optimizer must be one of"),
    (lambda: recae.MultVAE(sampled_softmax=float("inf"), **FAST), "sampled_softmax must be None or a positive finite"),
    (lambda: recae.FactorEASE(negatives=float("inf"), **FAST), "negatives must be None or a positive finite number"),
    (lambda: recae.MultDAE(amp="yes", **FAST), "amp must be one of [True, False, 'auto']; got 'yes'"),
    (lambda: recae.MultDAE(show_progress="no", **FAST), "show_progress must be one of [None, True, False]; got 'no'"),
    (lambda: recae.MultDAE(activation=["tanh"], **FAST), "activation must be one of"),
    (lambda: recae.EASE(dtype=["float32"]), "dtype must be one of ['float32', 'float64']; got ['float32']"),
    (lambda: recae.Blend(members=[("EASE", {}), ("Popularity", {})], weights=(float("nan"), 1)),
     "weights must be 2 finite non-negative numbers with a positive sum; got (nan, 1)"),
    (lambda: recae.Blend(members=5), "members must be a list of Recommender instances"),
    (lambda: recae.MultDAE(epochs=1, device="meta"), "got 'meta': recae runs on CPUs and CUDA GPUs, not on 'meta'"),
    (lambda: recae.EASE(device="mps"), "got 'mps': recae runs on CPUs and CUDA GPUs, not on 'mps'"),
    (lambda: recae.Blend(members=[("EASE", {}), ("Popularity", {})], valid_metric="foo"), "valid_metric must look like"),
    (lambda: recae.Blend(members=[("EASE", {}), ("Popularity", {})], groups=5), "groups must be one integer label"),
]


@pytest.mark.parametrize("make, message", CASES, ids=[m for _, m in CASES])
def test_a_bad_setting_is_named_before_training(data, make, message):
    with pytest.raises(DataError) as err:
        make().fit(data[0])
    assert message in str(err.value)


@pytest.mark.parametrize("make, message", [
    (lambda: recae.AutoRec(hidden=0, **FAST), "hidden must be a positive integer; got 0"),
    (lambda: recae.BiasedMF(init_std=None, **FAST), "init_std must be a finite number; got NoneType None"),
    (lambda: recae.BiasedMF(factors=2.5, **FAST), "factors must be an integer; got float 2.5"),
])
def test_rating_models_too(data, make, message):
    with pytest.raises(DataError) as err:
        make().fit(data[1])
    assert message in str(err.value)


def test_a_name_with_another_meaning_is_checked_by_its_model(data):
    model = recae.BiasedMF(factors=0, init_std=0.0, **FAST).fit(data[1])  # biases only: the shared rule says >= 1
    assert model.is_fitted and "factors" in recae.BiasedMF.own_checks


def test_every_default_passes_the_shared_checks():
    for cls in (recae.MultDAE, recae.MultVAE, recae.CDAE, recae.RecVAE, recae.AutoRec, recae.BiasedMF,
                recae.FactorEASE, recae.ImplicitALS, recae.ImplicitBPR, recae.Blend):
        own = getattr(cls, "own_checks", ())
        for name, value in cls().get_params().items():
            if name in CHECKS and name not in own:
                CHECKS[name](name, value)


def test_implicits_own_failures_name_the_settings(data):
    """Before, a raw numpy MemoryError or implicit's ModelFitError came out, naming no setting."""
    from recae.exceptions import MemoryBudgetError, TrainingError
    pytest.importorskip("implicit")
    # 60 users × 10¹² float32 factors: 218 TiB, past any address space, so numpy refuses at once
    with pytest.raises(MemoryBudgetError, match=r"ImplicitALS with factors=1000000000000 does not fit in this "
                                                r"machine's memory .*; lower factors"):
        recae.ImplicitALS(factors=10**12, device="cpu").fit(data[0])
    with pytest.raises(TrainingError, match=r"ImplicitALS diverged \(NaN encountered in factors\) with .*: lower alpha, "
                                            r"or raise regularization"):
        recae.ImplicitALS(alpha=1e30, iterations=2, device="cpu").fit(data[0])
