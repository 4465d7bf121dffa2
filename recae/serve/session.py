"""A serving session: a model, the interactions appended since it was fitted, and reloads.

The same operations the HTTP server answers, for users with a service of their own::

    from recae.serve import Session
    s = Session("ease.recae", journal="ease.recae.journal")
    s.update_history(42, [50, 181])          # durable before it returns; used at once
    s.recommend(42, n=10, explain=True)      # {"user", "items", "scores", "explanations"}

Appended interactions fold in: a user with appended events is ranked from their training row
(if any) merged with the events (a later value for an item replaces the earlier one), through
``recommend_new``; no refit. Results are JSON-ready dicts with raw ids.
"""

from __future__ import annotations

import logging
import os
import threading

import numpy as np
import scipy.sparse as sp

from ..data.ids import plain
from ..data.sparse import take_rows
from ..exceptions import DataError, RecaeError, TrainingError, UnknownIdError
from ..models.explain import explain as explain_items
from ..models.explicit import ExplicitRecommender
from ..models.inputs import check_n, interaction_value
from .journal import Journal
from .state import ModelState, check_successor, load_model

logger = logging.getLogger(__name__)

__all__ = ["Session"]

#: Appended values at least this large are checked by scoring the history once: they can overflow
#: float32 scores (squares in a neural model's normalisation, sums in a linear one).
LARGE_VALUE = 1e6


def _ranking(ids, scores) -> dict:
    keep = np.isfinite(scores)  # the 2-D form pads short rankings with -inf
    return {"items": [plain(x) for x in np.asarray(ids)[keep]], "scores": [float(s) for s in scores[keep]]}


class Session:
    """Serve one model with live, journalled history updates and atomic reloads.

    Parameters
    ----------
    model : fitted Recommender, or str / os.PathLike of a recae model file
    journal : str or os.PathLike, optional
        SQLite journal of appended interactions (created if missing, replayed if present).
        Without one, appended interactions live in memory only.
    device : str, optional
        Device to load model files on (default: the one saved).
    explain_n : int, default 5
        History items listed per explained item.
    """

    def __init__(self, model, journal=None, *, device: str | None = None, explain_n: int = 5):
        self.device, self.explain_n = device, check_n(explain_n)
        self._lock = threading.RLock()  # guards the overlay and the journal cursor
        self._reload_lock = threading.Lock()
        self._overlay: dict = {}  # raw user id -> {raw item id: value}; inner dicts are replaced, never mutated
        self._seq, self._version = 0, None
        self._following = False
        self.stats = {"interactions": 0, "replayed": 0, "reloads": 0, "reloads_refused": 0}
        self._journal = Journal(journal) if journal is not None else None
        generation = self._journal.generation()[0] if self._journal is not None else 0
        self._state = self._new_state(model, generation)
        self.sync()
        self.stats["replayed"] = self.stats.pop("interactions")
        self.stats["interactions"] = 0

    def _new_state(self, model, generation: int) -> ModelState:
        if isinstance(model, (str, os.PathLike)):
            loaded, meta = load_model(model, self.device)
            return ModelState(loaded, meta, os.fspath(model), generation)
        return ModelState(model, {}, None, generation)

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> ModelState:
        """The model being served now (replaced, never changed, by a reload)."""
        return self._state

    @property
    def model(self):
        return self._state.model

    def sync(self, force: bool = False) -> None:
        """Apply journal records other processes appended, and follow their reloads."""
        if self._journal is None:
            return
        with self._lock:
            version = self._journal.version()
            if version == self._version and not force:
                return  # nobody else wrote since the last look: skip the reads (every request calls this)
            self._version = version
            for seq, record in self._journal.since(self._seq):
                self._apply(record)
                self._seq = seq
            generation, path = self._journal.generation()
        if generation > self._state.generation and path and not self._following:
            self._following = True
            threading.Thread(target=self._follow, args=(generation, path), daemon=True).start()

    def _follow(self, generation: int, path: str) -> None:
        try:
            state = self._new_state(path, generation)
            with self._lock:
                if generation > self._state.generation:
                    self._state = state
            logger.info("followed a reload to %s (generation %d)", path, generation)
        except RecaeError as exc:  # keep serving the old model
            logger.error("could not follow the reload to %s: %s", path, exc)
        finally:
            self._following = False

    def _apply(self, record: dict) -> None:
        user, items, ratings = record["user"], record["items"], record.get("ratings")
        values = [1.0] * len(items) if ratings is None else ratings
        self._overlay[user] = {**self._overlay.get(user, {}), **dict(zip(items, values))}
        self.stats["interactions"] += len(items)

    def _row(self, state: ModelState, user, known: int, extra: dict | None = None) -> sp.csr_matrix | None:
        """The user's history row (training row merged with appended events, or with ``extra``), or None for no events."""
        extra = self._overlay.get(user) if extra is None else extra
        if extra is None:
            return None
        model = state.model
        merged = {}
        if known >= 0:
            base = take_rows(model.user_items_, np.array([known]))
            merged.update(zip(base.indices.tolist(), base.data.tolist()))
        cols = model.item_columns(list(extra), unknown="ignore")  # a reloaded model may lack some items
        merged.update((int(c), float(v)) for c, v in zip(cols, extra.values()) if c >= 0)
        cols = np.fromiter(merged, dtype=np.int64, count=len(merged))
        vals = np.fromiter(merged.values(), dtype=np.float32, count=len(merged))
        return sp.csr_matrix((vals, (np.zeros(len(cols), np.int64), cols)), shape=(1, model.n_items_))

    def _history(self, state: ModelState, user) -> tuple[int, sp.csr_matrix | None]:
        known = state.user_pos(user)
        row = self._row(state, user, known)
        if known < 0 and row is None:
            raise UnknownIdError(f"unknown user id {user!r}: not in the model's training data and no "
                                 "interactions appended for it (POST /interactions adds some)")
        return known, row

    # ------------------------------------------------------------------ rankings
    def recommend(self, user, n: int = 10, *, exclude=None, items=None, explain: bool = False) -> dict:
        """Top-``n`` for one user (training user or one with appended interactions)."""
        return self.recommend_many([user], n, exclude=exclude, items=items, explain=explain)[0]

    def recommend_many(self, users, n: int = 10, *, exclude=None, items=None, explain: bool = False) -> list[dict]:
        """Top-``n`` for each user, in order; an UnknownIdError names every unknown user."""
        self.sync()
        state, n = self._state, check_n(n)
        model = state.model
        users = [state.user_id(u) for u in users]
        exclude, items = state.item_list(exclude), state.item_list(items)
        found, missing = [], []
        for u in users:
            try:
                found.append(self._history(state, u))
            except UnknownIdError:
                missing.append(u)
        if missing:
            raise UnknownIdError(f"unknown user id(s) {missing[:10]}: not in the model's training data and no "
                                 "interactions appended for them")
        out = [None] * len(users)
        plain_rows = [i for i, (_, row) in enumerate(found) if row is None]
        if plain_rows:  # training users without appended events: the model's own path
            ids, scores = model.recommend([users[i] for i in plain_rows], n, items=items, exclude=exclude)
            rows = take_rows(model.user_items_, np.array([found[i][0] for i in plain_rows]))
            unfolded = set(model.unfolded_rows(rows).tolist()) if model.empty_history_fallback else set()
            for k, i in enumerate(plain_rows):
                out[i] = _ranking(ids[k], scores[k])
                if k in unfolded:  # an empty training row: ranked by popularity, as recommend says
                    out[i]["fallback"] = model.empty_history_ranking
        live = [i for i, (_, row) in enumerate(found) if row is not None]
        if live:
            X = sp.vstack([found[i][1] for i in live], format="csr")
            ids, scores = model.recommend_new(X, n, items=items, exclude=exclude)
            unfolded = set(model.unfolded_rows(X).tolist())
            for k, i in enumerate(live):
                out[i] = _ranking(ids[k], scores[k])
                if k in unfolded:  # only zeros appended to no training row: not a personal ranking
                    out[i]["fallback"] = model.empty_history_ranking
        for i, u in enumerate(users):
            out[i] = {"user": u, **out[i]}
            if explain:
                known, row = found[i]
                row = row if row is not None else take_rows(model.user_items_, np.array([known]))
                out[i]["explanations"] = explain_items(model, row, out[i]["items"], self.explain_n)
        return out

    def recommend_new(self, history, n: int = 10, *, exclude=None, items=None, unknown: str = "raise",
                      explain: bool = False) -> dict:
        """Top-``n`` for a history (list of item ids, or dict item → rating) that no user owns.

        With ``unknown="ignore"``, ``"ignored"`` lists the history items left out; a history with no
        known item is not personal: ``"fallback"`` says what ranked it (``"popularity"``; a rating model's
        ``"item means"``).
        """
        if unknown not in ("raise", "ignore"):
            raise DataError(f"unknown must be 'raise' or 'ignore'; got {unknown!r}")
        self.sync()
        state, n = self._state, check_n(n)
        if isinstance(history, dict):
            history = {state.item_id(k): v for k, v in history.items()}
        elif isinstance(history, (list, tuple)):
            history = [state.item_id(k) for k in history]
        else:
            raise DataError(f"history must be a list of item ids or an object item → rating; got {type(history).__name__}")
        keys, model = list(history), state.model
        known = model.item_columns(keys, unknown="ignore") >= 0 if keys else np.zeros(0, bool)
        if unknown == "raise" and not known.all():
            model.item_columns(keys)  # an UnknownIdError names them
        if not known.all():  # left out here, so the library has nothing to warn about
            history = ({k: history[k] for k, ok in zip(keys, known) if ok} if isinstance(history, dict)
                       else [k for k, ok in zip(keys, known) if ok])
        X, _ = model.history_rows(history)
        ids, scores = model.recommend_new(X, n, items=state.item_list(items), exclude=state.item_list(exclude))
        out = _ranking(ids[0], scores[0])
        if explain:
            out["explanations"] = explain_items(model, history, out["items"], self.explain_n)
        if not known.all():
            out["ignored"] = [plain(k) for k, ok in zip(keys, known) if not ok]
        if len(model.unfolded_rows(X)):
            out["fallback"] = model.empty_history_ranking  # nothing was folded in: not a personal ranking
        return out

    def similar(self, item, n: int = 10) -> dict:
        """Items most similar to ``item`` (the query item left out)."""
        self.sync()
        state = self._state
        item = state.item_id(item)
        ids, scores = state.model.similar_items(item, check_n(n))
        return {"item": item, **_ranking(ids, scores)}

    def explain(self, user_or_history, item_ids, n: int | None = None) -> list[dict]:
        """:func:`recae.models.explain.explain` on the user's current history (appended events included)."""
        self.sync()
        state = self._state
        target = user_or_history
        if not isinstance(user_or_history, (list, tuple, dict)):
            known, row = self._history(state, state.user_id(user_or_history))
            target = row if row is not None else take_rows(state.model.user_items_, np.array([known]))
        return explain_items(state.model, target, [state.item_id(i) for i in item_ids], n or self.explain_n)

    def history(self, user) -> dict:
        """A user's current history: ``{"user", "items", "values", "appended"}``, training items first."""
        self.sync()
        state = self._state
        user = state.user_id(user)
        known, row = self._history(state, user)
        row = row if row is not None else take_rows(state.model.user_items_, np.array([known]))
        return {"user": user, "items": [plain(state.model.item_ids_[c]) for c in row.indices],
                "values": [float(v) for v in row.data], "appended": len(self._overlay.get(user, {}))}

    def popular(self, n: int = 50) -> dict:
        """The most popular training items (by how many users have each), to pick a history from."""
        self.sync()
        state, n = self._state, check_n(n)
        top = np.argsort(-state.popularity, kind="stable")[:n]
        return {"items": [plain(state.model.item_ids_[i]) for i in top], "counts": state.popularity[top].tolist()}

    # ------------------------------------------------------------------ updates
    def update_history(self, user, items, ratings=None) -> dict:
        """Append interactions of a known or new user: journalled (durable) first, then used at once.

        Parameters
        ----------
        user : raw user id
        items : list of raw item ids the model knows
        ratings : list of float, optional
            One value per item (default 1.0 each: a click or view); a later value for an item
            replaces the earlier one.

        Returns
        -------
        dict: ``{"user", "appended", "history_size", "new_user", "seq"}``
        """
        state = self._state
        user = state.user_id(user)
        if not isinstance(items, (list, tuple)) or not items:
            raise DataError(f"items must be a non-empty list of item ids; got {items!r}")
        items, model = state.item_list(items), state.model
        if ratings is None and isinstance(model, ExplicitRecommender):  # 1.0 would be its lowest star, not a click
            raise DataError(f"{type(model).__name__} folds in ratings, not bare item ids: send \"ratings\", "
                            f"one number per item ({len(items)})")
        if ratings is not None:
            if not isinstance(ratings, (list, tuple)) or len(ratings) != len(items):
                raise DataError(f"ratings must be a list with one number per item ({len(items)}); got {ratings!r}")
            ratings = [interaction_value(r, item) for r, item in zip(ratings, items)]
            model.history_rows(dict(zip(items, ratings)))  # the model's own checks: its scale, negatives
        record = {"user": user, "items": items, "ratings": ratings}
        with self._lock:
            seq = 0
            if ratings is not None and max(map(abs, ratings)) >= LARGE_VALUE:
                self._check_scores(state, user, record)
            if self._journal is not None:
                seq = self._journal.append(record)  # on disk before the caller hears back
                self.sync(force=True)
            else:
                self._apply(record)
            known = state.user_pos(user)
            size = self._row(state, user, known).nnz
        return {"user": user, "appended": len(items), "history_size": int(size), "new_user": known < 0, "seq": seq}

    def _check_scores(self, state: ModelState, user, record: dict) -> None:
        """Refuse (before journalling) values that would leave the user's scores non-finite for good."""
        extra = {**self._overlay.get(user, {}), **dict(zip(record["items"], record["ratings"]))}
        row = self._row(state, user, state.user_pos(user), extra)
        try:
            state.model.recommend_new(row, 1)
        except TrainingError:  # the model's own check: NaN or +inf scores
            raise DataError(f"the values appended for user {user!r} (largest {max(map(abs, record['ratings'])):.3g}) "
                            f"make {type(state.model).__name__}'s scores overflow float32; send smaller values "
                            "(a rating or a count per item)") from None

    # ------------------------------------------------------------------ reloads
    def reload(self, model=None) -> dict:
        """Swap in a model (a file path, default: the current file, or a fitted model) atomically.

        The new model is loaded and checked before the swap; if it is refused (ModelFileError:
        corrupt, foreign, a pickle) the old model keeps serving. Requests in flight finish on the
        model they started with.
        """
        with self._reload_lock:
            current = self._state
            source = current.path if model is None else model
            if source is None:
                raise DataError("this session serves an in-memory model; pass the model or a file path to reload")
            try:
                generation = max(current.generation, self._journal.generation()[0] if self._journal else 0) + 1
                state = self._new_state(source, generation)
                with self._lock:  # the overlay may grow meanwhile
                    appended = {i for events in self._overlay.values() for i in events}
                lost = check_successor(current, state, appended)
            except RecaeError:
                self.stats["reloads_refused"] += 1
                raise
            with self._lock:
                self._state = state
                if self._journal is not None and state.path is not None:
                    self._journal.set_generation(generation, state.path)
            self.stats["reloads"] += 1
        logger.info("reloaded %s (generation %d)", state.path, generation)
        if lost:
            logger.warning("%d appended item(s) are not in the new model's catalogue: left out of their users' "
                           "histories", lost)
        return {"reloaded": True, "class": type(state.model).__name__, "path": state.path, "generation": generation,
                "appended_items_unknown": lost}

    def info(self) -> dict:
        """The model's description (see :meth:`ModelState.info`) and the live state's."""
        self.sync()
        return {**self._state.info(), "live": {"users_with_appended_history": len(self._overlay),
                                               "journal": None if self._journal is None else self._journal.path,
                                               "journal_records": self._seq, **self.stats}}

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
