"""``recae serve``: being built in this session (the helper that owns this file replaces it)."""

from __future__ import annotations

from ..exceptions import RecaeError


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="(being built)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    raise RecaeError("recae serve is not built yet")
