"""How the committed `recae tune` searches' neural trials cut short at their time share scored.

The evidence behind the search's ``MIN_EPOCHS`` (recae/bench/search.py): every trial stopped at
its time share before epoch ``--below``, after its model had a full trial (the trials the rule
would not start), against its model's best usable score in the same search.

    python benchmarks/cut_short_trials.py --out benchmarks/results/cut_short_trials.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from _env import environment, header_markdown, publish

RESULTS = Path(__file__).resolve().parent / "results"


def cut_short(trials: list, below: int) -> list[dict]:
    """The trials stopped before epoch ``below`` after a complete trial of their model, with their model's best."""
    best = {}
    for t in trials:
        if t["state"] in ("complete", "stopped"):
            best[t["model"]] = max(best.get(t["model"], -np.inf), t["valid_ndcg@100"])
    out = []
    for t in trials:
        full_before = any(u["model"] == t["model"] and u["state"] == "complete" and u["order"] < t["order"]
                          for u in trials)
        if t["state"] == "stopped" and t["stopped_at_epoch"] < below and full_before:
            out.append({"model": t["model"], "epoch": t["stopped_at_epoch"], "seconds": t["seconds"],
                        "ratio": t["valid_ndcg@100"] / best[t["model"]],
                        "was_best": t["valid_ndcg@100"] >= best[t["model"]]})
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--below", type=int, default=5, help="epochs (MIN_EPOCHS)")
    p.add_argument("--out")
    args = p.parse_args()
    env = environment()
    files = sorted(RESULTS.glob("tune_ml-*_seed*.json"))
    rows = [dict(r, file=f.name) for f in files for r in cut_short(json.loads(f.read_text())["trials"], args.below)]
    ratios = np.array([r["ratio"] for r in rows])
    text = "\n".join([
        f"# Neural trials cut short before epoch {args.below} in the committed tune searches\n",
        header_markdown(env),
        f"- searches read: {len(files)} (`benchmarks/results/tune_ml-*_seed*.json`)",
        f"- trials stopped at their time share before epoch {args.below}, after a full trial of their model: "
        f"**{len(rows)}**",
        f"- their validation NDCG@100 over their model's best in the same search: median **{np.median(ratios):.2f}**, "
        f"min {ratios.min():.2f}, max {ratios.max():.3f}",
        f"- trials among them that were their model's best: **{sum(r['was_best'] for r in rows)}**",
        f"- their seconds in all: {sum(r['seconds'] for r in rows):.0f}", ""])
    return publish(args.out, text, env, rows)


if __name__ == "__main__":
    raise SystemExit(main())
