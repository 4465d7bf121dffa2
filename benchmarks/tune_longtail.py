"""`recae tune` on a log unlike MovieLens: does the tuned pick beat every model's default?

The long-tail generator (``synthetic(..., popularity="longtail")``, the generator of the
``synthetic-longtail`` dataset) at a smaller shape, 3,000 users × 3,000 items × 60,000
positives, so every model fits in minutes. On one strong-generalization split (seed 98765):
every searched model with its default setting, fitted on the training users and tested; then
``recae.tune`` with the budget on the same split (``refit=False``), its pick tested the same way.

    python benchmarks/tune_longtail.py --budget 5m [--scale 3]

Results: ``benchmarks/results/tune_longtail_<budget>.md`` / ``.json`` and the tune report
``tune_longtail_<budget>_search.md/.json/.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import time
from pathlib import Path

import torch
from _env import environment, header_markdown

from recae.bench import make_split
from recae.bench.fitting import fit_model, valid_ndcg
from recae.bench.spaces import DEFAULT_MODELS, start
from recae.datasets import synthetic
from recae.evaluate import evaluate
from recae.tuning import tune, write

RESULTS = Path(__file__).resolve().parent / "results"
SHAPE = {"n_users": 3000, "n_items": 3000, "n_interactions": 60_000, "popularity": "longtail", "random_state": 0,
         "timestamps": False}


def test_ndcg(model, split) -> tuple[float, float]:
    t = evaluate(model, split, k=100, metrics=("ndcg",))
    return float(t.loc["ndcg@100", "mean"]), float(t.loc["ndcg@100", "se"])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--budget", default="5m")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    p.add_argument("--scale", type=float, default=1.0,
                   help="users and positives × this (items too, by its square root): more test users, less noise")
    p.add_argument("--suffix", default="", help="appended to the result files' names, so a rerun keeps the others")
    args = p.parse_args()
    shape = dict(SHAPE)
    if args.scale != 1.0:
        shape.update(n_users=int(SHAPE["n_users"] * args.scale), n_interactions=int(SHAPE["n_interactions"] * args.scale),
                     n_items=int(SHAPE["n_items"] * args.scale ** 0.5))
    tag = args.budget + ("" if args.scale == 1.0 else f"_x{args.scale:g}") + (f"_{args.suffix}" if args.suffix else "")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    env = environment()
    load = [subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()]
    data = synthetic(**shape)
    split = make_split(data, "strong", 98765)
    defaults = []
    for name in (m for m in args.models if m != "blend"):
        model, secs = fit_model(name, start(name), split)
        nd, se = test_ndcg(model, split)
        defaults.append({"model": name, "valid": valid_ndcg(model, split), "test": nd, "se": se, "seconds": secs})
        print(f"default {name}: test {nd:.4f} ({secs:.0f} s)", flush=True)
    t = time.perf_counter()
    result = tune(data, models=args.models, budget=args.budget, split=split, refit=False, threads=1)
    wall = time.perf_counter() - t
    load.append(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    result.info.update(dataset=f"synthetic long-tail {data.n_users} × {data.n_items} × {data.nnz}, strong split 98765",
                       load=" / ".join(load))
    write(result, RESULTS, f"tune_longtail_{tag}_search", env["command"], env)
    best_default = max(defaults, key=lambda d: d["test"])
    lines = [f"# recae tune on the long-tail generator, budget {args.budget}\n", header_markdown(env),
             f"- data: `synthetic(**{shape})`: {data.n_users} users × {data.n_items} items, {data.nnz} positives; "
             "strong generalization split 98765; one torch thread",
             f"- load: {' / '.join(load)}", "",
             "| model | default: valid NDCG@100 | default: test NDCG@100 ± se | fit s |", "|---|---|---|---|"]
    lines += [f"| {d['model']} | {d['valid']:.4f} | {d['test']:.4f} ± {d['se']:.4f} | {d['seconds']:.1f} |"
              for d in defaults]
    lines += ["", f"`recae.tune` ({args.budget}, {len(result.trials)} trials, search {result.info['search_seconds']:.0f} s, "
              f"whole call {wall:.0f} s) chose **{result.name}** `{json.dumps(result.params)}`: valid "
              f"{result.valid:.4f}, test {result.test['ndcg@100']:.4f} ± {result.test['ndcg@100_se']:.4f}, "
              f"{result.test['ndcg@100'] / best_default['test']:.3f} × the best default ({best_default['model']}, "
              f"{best_default['test']:.4f}).", "", f"Search report: `tune_longtail_{tag}_search.md`."]
    (RESULTS / f"tune_longtail_{tag}.md").write_text("\n".join(lines) + "\n")
    (RESULTS / f"tune_longtail_{tag}.json").write_text(json.dumps(
        {"env": env, "shape": shape, "defaults": defaults, "chosen": {"model": result.name, "params": result.params,
         "valid": result.valid, "test": result.test}, "load": load}, indent=1, default=float))
    print(f"tuned {result.name}: test {result.test['ndcg@100']:.4f} vs best default {best_default['model']} "
          f"{best_default['test']:.4f}", flush=True)


if __name__ == "__main__":
    main()
