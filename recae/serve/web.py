"""The FastAPI application: JSON endpoints over a :class:`~recae.serve.session.Session`.

Raw ids in and out; a ranking answers ``{"items": [...], "scores": [...]}`` (plus
``"explanations"`` with ``explain=true``). Only :mod:`recae.serve` imports this module, and only
when an app is asked for, so ``import recae`` never needs fastapi.
"""

from __future__ import annotations

import hmac
import logging
import os
import signal
import threading
from contextlib import asynccontextmanager
from typing import Annotated, Literal, Optional, Union

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from ..exceptions import DataError, RecaeError
from ..version import __version__
from .http import BodyLimit, Metrics, Registry, install_error_handlers
from .page import PAGE
from .session import Session

logger = logging.getLogger(__name__)

__all__ = ["create_app", "TOKEN_ENV"]

#: Environment variable holding the admin token when none is passed.
TOKEN_ENV = "RECAE_ADMIN_TOKEN"
MAX_N = 1000
MAX_USERS = 1000

Id = Union[StrictInt, StrictStr]
#: A rating or count: a JSON number, not "5" or true (the session checks that float32 can hold it).
Finite = Annotated[float, Field(allow_inf_nan=False, strict=True)]
N = Annotated[StrictInt, Field(ge=1, le=MAX_N, description="How many items to return (1 to 1000).")]
IDS = "Raw ids, as in the training data: repeat the parameter (`&exclude=1&exclude=2`) or separate with commas."


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BatchRequest(_Body):
    users: list[Id] = Field(min_length=1, max_length=MAX_USERS, description="Raw user ids (1 to 1000).")
    n: N = 10
    exclude: Optional[list[Id]] = Field(None, description="Items never to recommend.")
    items: Optional[list[Id]] = Field(None, description="Rank only these candidate items.")
    explain: StrictBool = Field(False, description="Add the history items behind each recommendation.")


class NewUserRequest(_Body):
    history: Union[list[Id], dict[str, Finite]] = Field(
        description="Item ids the user interacted with, or an object item id → rating.",
        examples=[[50, 181, 1], {"50": 5.0, "181": 3.0}])
    n: N = 10
    exclude: Optional[list[Id]] = None
    items: Optional[list[Id]] = None
    unknown: Literal["raise", "ignore"] = Field("raise", description="Unknown history items: 404, or leave them out.")
    explain: StrictBool = False


class InteractionsRequest(_Body):
    user: Id = Field(description="A training user, or a new id (a new user starts from these events).")
    items: list[Id] = Field(min_length=1, max_length=10_000, description="Items the user just interacted with.")
    ratings: Optional[list[Finite]] = Field(None, description="One value per item (default 1.0 each).")


class ReloadRequest(_Body):
    path: Optional[str] = Field(None, description="Model file to serve (default: the current file, re-read).")


def _ids(values: list[str] | None) -> list[str] | None:
    """Query-string ids: repeated parameters and comma-separated lists both work."""
    if values is None:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _once(*names: str, hint: str = ""):
    """A dependency refusing any of the route's single-valued query ``names`` given twice (``?user=1&user=2``),
    which FastAPI would read as its last value; parameters the route does not read are left alone."""
    def check(request: Request) -> None:
        for name in names:
            given = request.query_params.getlist(name)
            if len(given) > 1:
                raise DataError(f"query parameter {name} is given {len(given)} times; give it once{hint}")
    return Depends(check)


def _known_query(request: Request) -> None:
    """Refuse query parameters the route does not read (JSON bodies refuse unknown fields alike):
    a typo such as ``exlude`` would otherwise change nothing, silently."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema:  # the explorer page takes any
        return
    known, todo = set(), [route.dependant]
    while todo:  # the route's own parameters and its dependencies'
        dependant = todo.pop()
        known.update(p.alias for p in dependant.query_params)
        todo.extend(dependant.dependencies)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise DataError(f"unknown query parameter(s) {unknown} for {request.method} {route.path}; "
                        f"it reads {sorted(known) if known else 'none'}")


def create_app(model, *, journal=None, admin_token: str | None = None, max_body_bytes: int = 1 << 20,
               device: str | None = None, sighup: bool = False, explain_n: int = 5) -> FastAPI:
    """A FastAPI app serving ``model`` (see :func:`recae.serve.app` for the parameters)."""
    session = model if isinstance(model, Session) else Session(model, journal, device=device, explain_n=explain_n)
    token = admin_token if admin_token is not None else os.environ.get(TOKEN_ENV) or None

    def reload_logged():
        try:
            session.reload()
        except RecaeError as exc:
            logger.error("reload refused, the old model keeps serving: %s", exc)

    @asynccontextmanager
    async def lifespan(app):
        if sighup and threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
            import asyncio

            asyncio.get_running_loop().add_signal_handler(
                signal.SIGHUP, lambda: threading.Thread(target=reload_logged, daemon=True).start())
        yield
        session.close()

    app = FastAPI(title="recae", version=__version__, lifespan=lifespan, dependencies=[Depends(_known_query)],
                  description="Recommendations from a recae model: raw ids in and out. Rankings answer "
                              '`{"items": [...], "scores": [...]}`; errors answer `{"error": message, '
                              '"status": code}` (404 for unknown ids, 4xx for bad requests).')
    app.state.session = session
    install_error_handlers(app)
    metrics = Registry()
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(Metrics, registry=metrics)  # outermost: counts the 413s too

    def admin(authorization: Annotated[Optional[str], Header(description="`Bearer TOKEN`")] = None,
              x_recae_token: Annotated[Optional[str], Header()] = None):
        if token is None:
            raise HTTPException(403, f"admin endpoints are off: start the server with --admin-token or ${TOKEN_ENV}")
        scheme, _, credentials = (authorization or "").partition(" ")
        given = x_recae_token or (credentials.strip() if scheme.lower() == "bearer" else "")  # schemes ignore case
        if not hmac.compare_digest(given.encode(), token.encode()):  # constant time: no guessing by timing
            raise HTTPException(401, "admin endpoint: send the admin token as 'Authorization: Bearer TOKEN'",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def explorer():
        return PAGE

    @app.get("/recommend", summary="Top-n items for one user",
             dependencies=[_once("user", "n", "explain", hint=" (POST /recommend ranks several users)")])
    def recommend(user: Annotated[str, Query(description="Raw user id (training user or one with appended events).")],
                  n: Annotated[int, Query(ge=1, le=MAX_N, description="How many items (1 to 1000).")] = 10,
                  exclude: Annotated[Optional[list[str]], Query(description="Never recommend these. " + IDS)] = None,
                  items: Annotated[Optional[list[str]], Query(description="Rank only these. " + IDS)] = None,
                  explain: Annotated[bool, Query(description="Add explanations.")] = False):
        """Unseen items ranked for a user; uses interactions appended through `POST /interactions` at once.

        404 names an unknown user or item id."""
        return session.recommend(user, n, exclude=_ids(exclude), items=_ids(items), explain=explain)

    @app.post("/recommend", summary="Top-n items for several users")
    def recommend_batch(body: BatchRequest):
        """One `{"user", "items", "scores"}` object per user, in request order, under `"results"`."""
        return {"results": session.recommend_many(body.users, body.n, exclude=body.exclude, items=body.items,
                                                   explain=body.explain)}

    @app.post("/recommend_new", summary="Top-n items for a history no user owns")
    def recommend_new(body: NewUserRequest):
        """Folds the history in (no refit). `"ignored"` lists the unknown items left out (`"unknown": "ignore"`);
        a history with nothing to fold in gets the most popular items (a rating model: the item means) and
        `"fallback"` says which."""
        return session.recommend_new(body.history, body.n, exclude=body.exclude, items=body.items,
                                     unknown=body.unknown, explain=body.explain)

    @app.get("/similar", summary="Items similar to one item", dependencies=[_once("item", "n")])
    def similar(item: Annotated[str, Query(description="Raw item id.")],
                n: Annotated[int, Query(ge=1, le=MAX_N)] = 10):
        """The model's item-to-item neighbours (the query item left out)."""
        return session.similar(item, n)

    @app.get("/history", summary="A user's current history", dependencies=[_once("user")])
    def history(user: Annotated[str, Query(description="Raw user id.")]):
        """Training items and values, with appended interactions merged in."""
        return session.history(user)

    @app.get("/items", summary="Most popular training items", dependencies=[_once("n")])
    def popular(n: Annotated[int, Query(ge=1, le=MAX_N)] = 50):
        """Item ids by how many training users have each (to pick a history from)."""
        return session.popular(n)

    @app.post("/interactions", summary="Append interactions of a user")
    def interactions(body: InteractionsRequest):
        """Written to the journal (durable) before the answer; later requests for the user use them at once."""
        return session.update_history(body.user, body.items, body.ratings)

    @app.api_route("/health", methods=["GET", "HEAD"], summary="Liveness")  # HEAD: uptime probes
    def health():
        session.sync()  # another worker's reload
        state = session.state
        return {"status": "ok", "model": type(state.model).__name__, "generation": state.generation}

    @app.get("/model", summary="The model being served")
    def model_info():
        """Class, hyper-parameters, sizes, training-data fingerprint, file checksum, stored quality figures."""
        return session.info()

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus counters")
    def prometheus():
        session.sync()
        stats, state = session.stats, session.state
        counters = {"recae_interactions_appended_total": ("Interactions appended since start.", stats["interactions"]),
                    "recae_reloads_total": ("Model reloads done.", stats["reloads"]),
                    "recae_reloads_refused_total": ("Model reloads refused (bad file).", stats["reloads_refused"])}
        gauges = {"recae_model_generation": ("Reloads behind the model now served.", state.generation),
                  "recae_journal_replayed_interactions": ("Interactions replayed at start.", stats["replayed"]),
                  "recae_process_resident_bytes": ("Resident memory of this process.", _rss())}
        return metrics.render(gauges, counters)

    @app.post("/admin/reload", summary="Swap in a model file (admin)", dependencies=[Depends(admin)])
    def reload(body: Optional[ReloadRequest] = None):
        """Loads and checks the file, then swaps atomically; a refused file (422) leaves the old model serving.

        Needs the admin token (`Authorization: Bearer TOKEN`)."""
        if body is not None and body.path is not None and not body.path.strip():
            raise DataError('path must name a model file, or be left out to re-read the current one; got ""')
        return session.reload(body.path if body and body.path else None)

    app.state.metrics = metrics
    return app


def _rss() -> float:
    try:
        with open("/proc/self/statm") as f:
            return float(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return float("nan")
