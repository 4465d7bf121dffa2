"""``recae tune``: being built in this session (the helper that owns this file replaces it)."""

from __future__ import annotations

from ..exceptions import RecaeError


def add_parser(sub) -> None:
    p = sub.add_parser("tune", help="(being built)")
    p.set_defaults(func=cmd_tune)


def cmd_tune(args) -> int:
    raise RecaeError("recae tune is not built yet")
