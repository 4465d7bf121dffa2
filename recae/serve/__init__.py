"""Serving recae models: a :class:`Session` in Python, and an HTTP app (``recae serve``).

``Session`` needs only the core install. :func:`app` builds a FastAPI application and needs the
``serve`` extra (``pip install 'recae[serve]'``); fastapi is imported only when it is called,
so ``import recae`` and ``import recae.serve`` stay fast and work without it.
"""

from __future__ import annotations

from ..exceptions import RecaeError
from .journal import Journal, JournalError
from .session import Session
from .state import ModelState, load_model

__all__ = ["Session", "Journal", "JournalError", "ModelState", "load_model", "app", "require_fastapi"]

INSTALL = "pip install 'recae[serve]'"


def require_fastapi() -> None:
    """Raise a RecaeError that says how to install the server's dependencies when they are missing."""
    missing = []
    for name in ("fastapi", "uvicorn"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise RecaeError(f"serving over HTTP needs {' and '.join(missing)}, which are not installed: {INSTALL}")


def app(model, *, journal=None, admin_token: str | None = None, max_body_bytes: int = 1 << 20,
        device: str | None = None, explain_n: int = 5):
    """A FastAPI application serving a model, to run with uvicorn or mount in another app.

    Parameters
    ----------
    model : fitted Recommender, path of a recae model file, or a :class:`Session`
    journal : str or os.PathLike, optional
        SQLite journal for ``POST /interactions`` (replayed if it exists); None keeps them in memory.
    admin_token : str, optional
        Token for ``/admin/*`` (default: ``$RECAE_ADMIN_TOKEN``; none: admin endpoints answer 403).
    max_body_bytes : int, default 1 MiB
        Larger request bodies answer 413.
    device : str, optional
        Device to load model files on.
    explain_n : int, default 5
        History items per explanation.

    Returns
    -------
    fastapi.FastAPI
        ``app.state.session`` is the :class:`Session` behind it.
    """
    try:
        from .web import create_app
    except ImportError:
        require_fastapi()
        raise
    return create_app(model, journal=journal, admin_token=admin_token, max_body_bytes=max_body_bytes,
                      device=device, explain_n=explain_n)
