"""Blend: recae's hybrid, a validation-weighted mixture of a linear and non-linear autoencoders.

The published models fail in different places: EASE (a linear, full-rank item-item
autoencoder) is strong on items with many co-occurrences, while the VAEs' low-dimensional
non-linear code generalises across sparse users. Blend fits its members on the same data,
standardises each member's scores per user (z-score over the catalogue, so a softmax logit
and a linear score become comparable), and adds them with non-negative weights summing to
one. With validation data the weights are chosen to maximise the validation metric: an
exhaustive simplex grid for up to three members, coordinate ascent beyond (from the better of
equal weights and the best member alone). The search runs on ``bags`` bootstrap resamples of
the validation users and the weights are the mean of their picks (bagged ensemble selection),
which fits the particular validation users less than one search does; the result never scores
under the best single member on validation. Without validation data the ``weights``
hyper-parameter is used (its default was tuned on ML-1M).

``recae bench`` blends the better of EASE and EDLAE, a low-rank :class:`~recae.LinearAE`, and
every neural autoencoder. The low-rank member is weak alone but adds factor-like scores that
the full-rank linear model and the non-linear ones miss, so it joins with the setting chosen on
the Blend's validation score, not its own (:data:`MEMBER_SETTINGS`; the measured gains are in
``benchmarks/results/blend_members_ml1m.md``).

Folding in a new user is exact for every member that folds in exactly, so Blend inherits
``recommend_new`` without retraining.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..data.batching import row_chunks
from ..data.interactions import Interactions
from ..metrics import RANKING_METRICS
from ..exceptions import DataError, NotFittedError
from .base import MODEL_REGISTRY, Recommender
from .blend_weights import search_weights
from .inputs import validation_pair
from .params import store_params
from .settings import check_settings
from .validation import check_valid_metric, scored_rows

logger = logging.getLogger(__name__)


#: The default members and the settings they join a Blend with: chosen on the Blend's validation
#: score (three ML-1M strong splits), not each model's own best; ``recae bench`` reads them here.
MEMBER_SETTINGS = {"EASE": {"l2": 500.0}, "LinearAE": {"l2": 200.0}, "RecVAE": {}}
#: Their weights without validation data (``benchmarks/results/blend_members_ml1m.md``).
DEFAULT_WEIGHTS = (0.1, 0.1, 0.8)


#: Standardised member scores held at once by the weight search (members × users × items floats).
STACK_ELEMENTS = 1 << 26


def _same_entries(a, b) -> bool:
    """Whether two training matrices hold the same entries, stored zeros included (cheap when shared)."""
    if a is b:
        return True
    if a.shape != b.shape or a.nnz != b.nnz:
        return False
    a, b = a.sorted_indices(), b.sorted_indices()
    return bool(np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
                and np.array_equal(a.data, b.data))


def _standardize(s: torch.Tensor) -> torch.Tensor:
    s = s.float()
    return (s - s.mean(dim=1, keepdim=True)) / s.std(dim=1, keepdim=True, unbiased=False).clamp_min(1e-8)


class Blend(Recommender):
    """Hybrid of several recae models with weights learned on validation.

    Parameters
    ----------
    members : sequence of Recommender or (class name, params) pairs, optional
        Unfitted models to combine. Default: EASE, LinearAE and RecVAE with :data:`MEMBER_SETTINGS`.
    weights : sequence of float, optional
        Used when ``fit`` gets no validation data. Default for the default members:
        :data:`DEFAULT_WEIGHTS`, the best shared weights on the mean validation NDCG@100 of
        three ML-1M strong splits (``benchmarks/blend_members.py`` reproduces them); otherwise
        equal weights.
    grid_step : float, default 0.05
        Resolution of the weight search. The exhaustive grid (up to three groups) uses 1/round(1/step),
        so 0.3 searches thirds; coordinate ascent (more groups) moves by the step itself.
    bags : int, default 30
        The weights are the mean of those chosen on this many bootstrap resamples of the
        validation users (bagged ensemble selection, Caruana et al., ICDM 2006): less fitted to
        the particular validation users than one search. 0: one search on all of them.
    groups : sequence of int, optional
        One label per member: members with the same label share one weight in the search, split
        equally among them (several settings of one model, averaged as one member). Default:
        every member its own weight.
    valid_metric : str, default "ndcg@100"
    random_state : int, default 0
        Seeds the resamples.
    device : {"auto", "cpu", "cuda", "cuda:N"}, default "auto"
        Passed to members that take a device.

    Attributes
    ----------
    members_ : list of fitted Recommender
    weights_ : ndarray of shape (n_members,)
    valid_score_ : float or None
        Validation metric of the chosen weights (None without validation, and on a loaded Blend).
    """

    DEFAULT_MEMBERS = tuple(MEMBER_SETTINGS.items())
    DEFAULT_WEIGHTS = DEFAULT_WEIGHTS

    def __init__(self, members=None, weights=None, grid_step=0.05, bags=30, valid_metric="ndcg@100", random_state=0,
                 device="auto", groups=None):
        store_params(self, locals())

    # ------------------------------------------------------------------ members
    def _member_specs(self) -> list[tuple[str, dict]]:
        specs = []
        if self.members is not None and not isinstance(self.members, (list, tuple)):
            raise DataError(f"members must be a list of Recommender instances or (class name, params) pairs; "
                            f"got {self.members!r}")
        for m in self.members if self.members is not None else self.DEFAULT_MEMBERS:
            if isinstance(m, Blend) or (isinstance(m, (tuple, list)) and m and m[0] == "Blend"):
                raise DataError("a Blend cannot be a member of a Blend: list its members instead")
            if isinstance(m, Recommender):
                specs.append((type(m).__name__, m.get_params()))
            elif isinstance(m, (tuple, list)) and len(m) == 2 and isinstance(m[0], str):
                if m[0] not in MODEL_REGISTRY:
                    names = sorted(k for k in MODEL_REGISTRY if k != "Blend")
                    same = [k for k in names if k.lower() == m[0].lower()]
                    raise DataError(f"unknown member model {m[0]!r}; "
                                    + (f"member names are class names: did you mean {same[0]!r}?" if same
                                       else f"choose from {names}"))
                if not isinstance(m[1], dict) or not all(isinstance(k, str) for k in m[1]):
                    raise DataError(f"member {m[0]!r}: its settings must be a dict of parameter names to values; "
                                    f"got {m[1]!r}")
                MODEL_REGISTRY[m[0]]().set_params(**m[1])  # an unknown parameter is named here, before any fit
                specs.append((m[0], dict(m[1])))
            else:
                raise DataError(f"members must be Recommender instances or (class name, params) pairs; got {m!r}")
        if not specs:
            raise DataError("Blend needs at least one member")
        return specs

    def _new_members(self) -> list[Recommender]:
        """Unfitted members; a Blend's members all run on the Blend's device."""
        out = []
        for name, params in self._member_specs():
            model = MODEL_REGISTRY[name](**params)
            if "device" in model.get_params():
                model.set_params(device=self.device)
            out.append(model)
        return out

    def export_params(self) -> dict:
        params = self.get_params()
        params["members"] = [[name, p] for name, p in self._member_specs()]
        return params

    def _default_weights(self, n: int) -> np.ndarray:
        if self.weights is not None:  # checked by _check_params before any member was fitted
            w = np.asarray(self.weights, dtype=np.float64)
            return w / w.sum()
        if self.members is None:
            return np.asarray(self.DEFAULT_WEIGHTS)
        return np.full(n, 1.0 / n)

    @classmethod
    def from_models(cls, models, valid=None, weights=None, grid_step=0.05, valid_metric="ndcg@100", bags=30,
                    random_state=0, groups=None, start=None) -> "Blend":
        """Blend models that are already fitted on the same data, without refitting them.

        Parameters
        ----------
        models : sequence of fitted Recommender
            All fitted on the same log (same user and item ids).
        valid : StrongSplit, HoldoutSplit or (fold_in, target) pair, optional
            Learn the weights on it; otherwise ``weights`` (or equal weights) are used.
        groups : sequence of int, optional
            Members sharing a label share one weight (see the class's ``groups``).
        start : sequence of float, optional
            One weight per group (per member without ``groups``), in the order the groups first
            appear: a further starting point of the weight search, e.g. the weights of a Blend
            of similar members (the search starts from the best-scoring of it, equal weights
            and each group alone).

        Returns
        -------
        Blend
            Fitted; ``members`` holds the models' classes and hyper-parameters.
        """
        models = list(models)
        if not models:
            raise DataError("from_models needs at least one fitted model")
        first = models[0]
        for m in models:
            if not isinstance(m, Recommender) or isinstance(m, Blend):
                raise DataError(f"from_models takes fitted recae models (not Blends); got {type(m).__name__} {m!r:.80}")
            if not m.is_fitted:
                raise NotFittedError(f"from_models takes fitted models; this {type(m).__name__} is not fitted yet")
            if not (np.array_equal(m.item_ids_, first.item_ids_) and np.array_equal(m.user_ids_, first.user_ids_)):
                raise DataError(f"{type(m).__name__} was fitted on other users or items than {type(first).__name__}; "
                                "blend models fitted on the same data")
            if not _same_entries(m.user_items_, first.user_items_):  # evaluate and seen items read the first's
                raise DataError(f"{type(m).__name__} was fitted on other entries than {type(first).__name__} (the same "
                                "users and items, other interactions); blend models fitted on the same data")
            if m.device_ != first.device_:
                raise DataError(f"{type(m).__name__} runs on {m.device_} but {type(first).__name__} on {first.device_}; "
                                "blend models on one device")
        blend = cls(members=[[type(m).__name__, {k: v for k, v in m.get_params().items() if k != "device"}]
                             for m in models], weights=weights, grid_step=grid_step, bags=bags,
                    valid_metric=valid_metric, random_state=random_state, device=str(first.device_),
                    groups=None if groups is None else list(groups))
        blend._check_params(len(models))
        if groups is not None:  # numpy labels become plain ints, so the saved parameters stay JSON
            blend.groups = [int(g) for g in groups]
        blend.adopt(first.user_items_, first.user_ids_, first.item_ids_, device=first.device_)
        blend.members_ = models
        blend._choose_weights(validation_pair(valid, blend.item_ids_), start)
        return blend

    # ------------------------------------------------------------------ fitting
    def _choose_weights(self, valid, start=None) -> None:
        self.valid_score_ = None
        if valid is None:
            self.weights_ = self._default_weights(len(self.members_))
            return
        self.weights_, self.valid_score_ = self._search_weights(*valid, start=start)
        logger.info("Blend weights %s (validation %s %.4f)", np.round(self.weights_, 3), self.valid_metric,
                    self.valid_score_)

    def _check_params(self, n_members: int) -> None:
        """Every setting, before any member is fitted."""
        check_valid_metric(self.valid_metric)
        check_settings(self)
        if self.weights is not None:
            try:
                w = np.asarray(self.weights, dtype=np.float64)
            except (TypeError, ValueError):
                w = np.full(1, np.nan)
            if w.shape != (n_members,) or not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
                raise DataError(f"weights must be {n_members} finite non-negative numbers with a positive sum; "
                                f"got {self.weights!r}")
        if self.groups is not None and not isinstance(self.groups, (list, tuple, np.ndarray)):
            raise DataError(f"groups must be one integer label per member ({n_members} members); got {self.groups!r}")
        if isinstance(self.grid_step, bool) or not isinstance(self.grid_step, (int, float, np.integer, np.floating)) \
                or not 0 < self.grid_step <= 1:
            raise DataError(f"grid_step must be in (0, 1]; got {self.grid_step!r}")
        if isinstance(self.bags, bool) or not isinstance(self.bags, (int, np.integer)) or self.bags < 0:
            raise DataError(f"bags must be a non-negative integer (0: no resampling); got {self.bags!r}")
        if self.groups is not None and (
                len(self.groups) != n_members
                or not all(isinstance(g, (int, np.integer)) and not isinstance(g, bool) for g in self.groups)):
            raise DataError(f"groups must be one integer label per member ({n_members} members); got {self.groups!r}")

    def _group_matrix(self) -> np.ndarray:
        """groups × members: a group's weight split equally among its members (identity without groups)."""
        n = len(self.members_)
        if self.groups is None:
            return np.eye(n)
        labels = list(dict.fromkeys(int(g) for g in self.groups))
        share = np.array([[float(int(g) == label) for g in self.groups] for label in labels])
        return share / share.sum(axis=1, keepdims=True)

    def _fit(self, X, valid=None):
        self.members_ = self._new_members()
        self._check_params(len(self.members_))
        # members see the same raw ids and entries as the Blend (stored zeros too: seen, and left out
        # of what each learns by its own fit), so each one is usable on its own
        data = Interactions(self.user_items_, self.user_ids_, self.item_ids_)
        for m in self.members_:
            m.fit(data, valid=valid)  # neural members also early-stop on the validation data
        self._choose_weights(valid)

    def _search_weights(self, fold_in, target, start=None) -> tuple[np.ndarray, float]:
        rows = scored_rows((fold_in, target))
        X, T = fold_in[rows], target[rows]
        name, _, k = self.valid_metric.partition("@")
        k = min(int(k or 100), T.shape[1])  # a small catalogue caps the cutoff
        # the members' standardised scores, members × users × items, are held whole when they fit in
        # one block; past that each block of users is scored again for every evaluation
        blocks = list(row_chunks(len(rows), len(self.members_) * self.n_items_, STACK_ELEMENTS))
        stack: dict = {}
        per_user: dict = {}  # weights → each validation user's metric, shared by all resamples

        def stacked(a: int, b: int) -> torch.Tensor:
            if (a, b) in stack:
                return stack[a, b]
            out = torch.stack([_standardize(m.score_rows(X[a:b])) for m in self.members_])
            if len(blocks) == 1:
                stack[a, b] = out
            return out

        def users(w: np.ndarray) -> np.ndarray:
            key = tuple(np.round(w, 9))
            if key not in per_user:
                parts = []
                for a, b in blocks:
                    s = stacked(a, b)
                    weights = torch.as_tensor(w @ expand, dtype=s.dtype, device=s.device)
                    top, _ = self.top_k(lambda lo, hi: torch.tensordot(weights, s[:, lo:hi], dims=1), X[a:b],
                                        b - a, k)
                    parts.append(np.asarray(RANKING_METRICS[name](top, T[a:b], k), dtype=np.float64))
                per_user[key] = np.concatenate(parts)
            return per_user[key]

        expand = self._group_matrix()  # the search moves group weights; members get equal parts of theirs
        n = expand.shape[0]
        if start is not None:
            start = np.asarray(start, dtype=np.float64)
            if start.shape != (n,) or not np.all(np.isfinite(start)) or np.any(start < 0) or start.sum() <= 0:
                raise DataError(f"start must be {n} finite non-negative weights (one per group) with a positive sum; "
                                f"got {start.tolist()}")
            start = start / start.sum()
        w, value = search_weights(users, n, self.grid_step, self.bags, self.random_state, start)
        return w @ expand, value

    # ------------------------------------------------------------------ scoring
    def score_rows(self, X):
        parts = [w * _standardize(m.score_rows(X)) for w, m in zip(self.weights_, self.members_) if w > 0]
        return sum(parts[1:], parts[0])

    def score_users(self, rows):
        parts = [w * _standardize(m.score_users(rows)) for w, m in zip(self.weights_, self.members_) if w > 0]
        return sum(parts[1:], parts[0])

    def get_state(self):
        state = {"weights": torch.as_tensor(self.weights_)}
        for i, m in enumerate(self.members_):
            state.update({f"m{i}.{k}": v for k, v in m.get_state().items()})
        return state

    def set_state(self, tensors):
        self.weights_ = tensors["weights"].cpu().numpy()
        self.valid_score_ = None
        self.members_ = self._new_members()
        for i, m in enumerate(self.members_):
            m.adopt(self.user_items_, self.user_ids_, self.item_ids_)  # each on its own (the Blend's) device
            prefix = f"m{i}."
            m.set_state({k[len(prefix):]: v.to(m.device_) for k, v in tensors.items() if k.startswith(prefix)})
