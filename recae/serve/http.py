"""The HTTP plumbing around the routes: error bodies, the body-size limit, Prometheus counters.

Every error a client can cause answers a 4xx JSON body ``{"error": message, "status": code}``
whose message names what was expected and what came; nothing answers a stack trace. Imports
fastapi/starlette, so only :mod:`recae.serve.web` imports this module.
"""

from __future__ import annotations

import json
import logging
import time

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..exceptions import DataError, ModelFileError, RecaeError, UnknownIdError
from .journal import JournalError

logger = logging.getLogger(__name__)

__all__ = ["BodyLimit", "Metrics", "Registry", "install_error_handlers", "error"]

#: Latency histogram bucket bounds, in seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


#: Longer error messages are cut: one may echo a client's id of any length.
MAX_MESSAGE = 2000


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    if len(message) > MAX_MESSAGE:
        message = f"{message[:MAX_MESSAGE]}… (cut; {len(message)} characters)"
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def _methods(request: Request) -> str:
    """Every method some route answers on the request's path (the framework's 405 names only one route's)."""
    methods = {m for route in request.app.router.routes if getattr(route, "path", None) == request.url.path
               for m in getattr(route, "methods", None) or ()}
    return ", ".join(sorted(methods))


def _where(loc) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("query", "body", "header", "path"):
        kind, rest = parts[0], parts[1:]
        return f"{'query parameter' if kind == 'query' else kind} {'.'.join(rest)}".strip()
    return ".".join(parts)


def validation_message(exc: RequestValidationError) -> tuple[int, str]:
    """(status, one readable line) for a request FastAPI could not parse or validate."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        e = next(e for e in errors if e.get("type") == "json_invalid")
        return 400, f"request body is not valid JSON ({e.get('ctx', {}).get('error', e.get('msg'))})"
    lines = []
    for e in errors[:5]:
        got = f" (got {json.dumps(e['input'], default=str)[:80]})" if "input" in e and e["type"] != "missing" else ""
        lines.append(f"{_where(e.get('loc', ()))}: {e.get('msg')}{got}")
    more = f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
    return 422, "invalid request: " + "; ".join(lines) + more


def install_error_handlers(app) -> None:
    """Map recae's errors and the framework's to 4xx JSON bodies (unexpected ones to a bare 500)."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        # a JSON body sent without its content type reaches validation as raw bytes (e.g. curl -d)
        if any(tuple(e.get("loc", ())) == ("body",) and isinstance(e.get("input"), (bytes, str))
               for e in exc.errors()):
            kind = request.headers.get("content-type") or "none"
            if kind.split(";")[0].strip().lower() == "application/json":  # JSON, but a string: encoded twice
                return error(400, "the request body must be a JSON object; got a JSON string (was the body "
                                  "JSON-encoded twice?)")
            return error(400, f"send the request body as JSON with the header Content-Type: application/json "
                              f"(this request's Content-Type: {kind})")
        return error(*validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no endpoint {request.url.path!r}; see /docs for the API"
        elif exc.status_code == 400 and message == "There was an error parsing the body":
            message = "the request body could not be read as JSON (send UTF-8 JSON text)"
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": _methods(request) or (headers or {}).get("Allow", "")}
            message = f"{request.method} is not allowed on {request.url.path}; allowed: {headers['Allow']}"
        return error(exc.status_code, message, headers)

    @app.exception_handler(UnknownIdError)
    async def _unknown(request: Request, exc: UnknownIdError):
        return error(404, str(exc))

    @app.exception_handler(ModelFileError)
    async def _model_file(request: Request, exc: ModelFileError):
        return error(422, f"model file refused, the current model keeps serving: {exc}")

    @app.exception_handler(JournalError)
    async def _journal(request: Request, exc: JournalError):
        logger.error("journal: %s", exc)
        return error(503, f"the interaction journal is not usable: {exc}")

    @app.exception_handler(RecaeError)
    async def _recae(request: Request, exc: RecaeError):
        return error(422 if isinstance(exc, (DataError, ValueError)) else 400, str(exc))

    @app.exception_handler(ValueError)
    async def _value(request: Request, exc: ValueError):
        # input is checked into RecaeErrors above, so a bare ValueError is a fault on this side (a model
        # file that does not hold together, an answer that cannot be written as JSON): not the client's
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error(500, "the server could not answer this request; its log has the details")


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with a 413 (declared or streamed)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        limit = f"request body over the {self.max_bytes}-byte limit"
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await error(413, f"{limit} (Content-Length {int(declared)})")(scope, receive, send)
        seen, started = 0, False

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # an HTTPException, so the framework's body parsing passes it on
                raise StarletteHTTPException(413, f"{limit} (streamed)")
            return message

        async def watched(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except StarletteHTTPException as exc:  # raised outside a route's error handling
            if started or exc.status_code != 413:
                raise
            await error(413, exc.detail)(scope, receive, send)


class Registry:
    """Request counts by route and status, and a latency histogram by route.

    Counters are per process (with ``--workers N`` each worker counts its own requests).
    """

    def __init__(self):
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[str, list] = {}  # route -> [cumulative bucket counts..., sum, count]

    def record(self, route: str, method: str, status: int, took: float) -> None:
        key = (route, method, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        cell = self.latency.setdefault(route, [0] * len(BUCKETS) + [0.0, 0])
        for i, bound in enumerate(BUCKETS):
            cell[i] += took <= bound
        cell[-2] += took
        cell[-1] += 1

    def render(self, gauges: dict[str, tuple[str, float]], counters: dict[str, tuple[str, float]]) -> str:
        """Prometheus text exposition format (version 0.0.4)."""
        out = ["# HELP recae_requests_total HTTP requests answered, by route, method and status.",
               "# TYPE recae_requests_total counter"]
        for (route, method, status), n in sorted(self.requests.items()):
            out.append(f'recae_requests_total{{route="{route}",method="{method}",status="{status}"}} {n}')
        out += ["# HELP recae_request_seconds Time to answer a request, by route.",
                "# TYPE recae_request_seconds histogram"]
        for route, cell in sorted(self.latency.items()):
            for bound, n in zip(BUCKETS, cell):
                out.append(f'recae_request_seconds_bucket{{route="{route}",le="{bound}"}} {n}')
            out.append(f'recae_request_seconds_bucket{{route="{route}",le="+Inf"}} {cell[-1]}')
            out.append(f'recae_request_seconds_sum{{route="{route}"}} {cell[-2]:.6f}')
            out.append(f'recae_request_seconds_count{{route="{route}"}} {cell[-1]}')
        for kind, table in (("counter", counters), ("gauge", gauges)):
            for name, (help_text, value) in table.items():
                out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value:g}"]
        return "\n".join(out) + "\n"


class Metrics:
    """ASGI middleware feeding a :class:`Registry`; the route is in the scope once the router matched."""

    def __init__(self, app, registry: Registry):
        self.app, self.registry = app, registry

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status, start = 500, time.perf_counter()

        async def watched(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.registry.record(route, scope.get("method", ""), status, time.perf_counter() - start)
