"""`recae tune` on the bench's own splits: is a time-budgeted search as good as the committed bench tables?

For each split seed, ``recae.tune`` searches on that split's training and validation users
(the same split ``recae bench`` makes: strong generalization, seeds 98765, 1, 2), with the
given budget on ``--threads`` torch threads (default one), and the chosen trial's model (fitted
on the training users, ``refit=False``, as the bench's are) is tested on the split's test users.
The committed bench table's best model on the same split is the bar.

    python benchmarks/tune_movielens.py --dataset ml-1m --budget 20m --seeds 98765
    python benchmarks/tune_movielens.py --dataset ml-100k --budget 5m --seeds 98765 1 2

Results: the full tune report of each seed (``tune_<dataset>_<budget>_seed<seed>.md/.json/.png``)
and ``tune_<dataset>_<budget>.md`` / ``.json``, one row per seed report present (``--render-only``
rebuilds it; seeds may run one at a time).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
from pathlib import Path

from _env import environment, header_markdown

from recae.bench import load_dataset, make_split
from recae.tuning import tune, write

RESULTS = Path(__file__).resolve().parent / "results"


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "load " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_best(dataset: str, seed: int) -> tuple[str, float, str, float]:
    """(best model, its test NDCG@100, best single model, its NDCG@100) of the committed bench table on ``seed``."""
    rows = [r for r in json.loads((RESULTS / f"bench_{dataset}_strong.json").read_text())["rows"] if r["seed"] == seed]
    best = max(rows, key=lambda r: r["ndcg@100"])
    single = max((r for r in rows if r["model"] != "blend"), key=lambda r: r["ndcg@100"])
    return best["model"], best["ndcg@100"], single["model"], single["ndcg@100"]


def stem_of(dataset: str, budget: str, tag: str = "") -> str:
    """The result files' common name: ``tune_<dataset>_<budget>[_<tag>]``."""
    return f"tune_{dataset}_{budget}" + (f"_{tag}" if tag else "")


def threads_of(runs: list) -> str:
    """The searches' torch threads, e.g. ``1`` or ``2`` (reports from before it was recorded ran on one)."""
    return "/".join(str(t) for t in dict.fromkeys(run["info"].get("threads", 1) for _, run in runs))


def blend_pairs(runs: list) -> list[str]:
    """Markdown lines: the two Blend candidates of each run side by side (none before runs had both)."""
    pairs = []
    for seed, run in runs:
        blends = [r for r in run["leaderboard"] if r["model"] == "blend"]
        one = [r for r in blends if "settings" not in r["params"]]
        several = [r for r in blends if "settings" in r["params"]]
        if one and several:
            pairs.append((seed, one[0], several[0]))
    if not pairs:
        return []
    out = ["", "The two Blend candidates of each search (same trials): each member's best trial, and neural "
           "members averaging up to `blend_trials` of their best trials (validation picks between them).", "",
           "| split seed | one trial each: valid / test | averaged: valid / test | averaged members | test difference |",
           "|---|---|---|---|---|"]
    for seed, one, several in pairs:
        members = several["params"]["members"]
        counts = ", ".join(f"{m} ×{members.count(m)}" for m in dict.fromkeys(members) if members.count(m) > 1)
        out.append(f"| {seed} | {one['valid_ndcg@100']:.4f} / {one['test']['ndcg@100']:.4f} | "
                   f"{several['valid_ndcg@100']:.4f} / {several['test']['ndcg@100']:.4f} | {counts} | "
                   f"{several['test']['ndcg@100'] - one['test']['ndcg@100']:+.4f} |")
    return out


def cut_short(run: dict) -> tuple[int, float]:
    """Trials stopped at their time share that did not become their model's best: how many, their seconds."""
    best = {}
    for t in run["trials"]:
        if t["state"] in ("complete", "stopped") and t["valid_ndcg@100"] > best.get(t["model"], (-1.0, None))[0]:
            best[t["model"]] = (t["valid_ndcg@100"], t["trial"])
    wasted = [t["seconds"] for t in run["trials"]
              if t["state"] == "stopped" and best.get(t["model"], (None, None))[1] != t["trial"]]
    return len(wasted), sum(wasted)


def render(dataset: str, budget: str, tag: str = "") -> None:
    """The summary table from every per-seed report of this dataset, budget and tag (seeds may run one at a time)."""
    stem = stem_of(dataset, budget, tag)
    runs = sorted(((int(p.stem.rsplit("_seed", 1)[1]), json.loads(p.read_text()))
                   for p in RESULTS.glob(f"{stem}_seed*.json")), key=lambda r: (r[0] != 98765, r[0]))
    rows = []
    for seed, run in runs:
        model, ndcg, single, single_ndcg = bench_best(dataset, seed)
        load = run["info"].get("load", "")
        rows.append({"seed": seed, "chosen": run["chosen"]["model"], "params": run["chosen"]["params"],
                     "valid": run["chosen"]["valid_ndcg@100"], "test_ndcg@100": run["chosen"]["test"]["ndcg@100"],
                     "test_se": run["chosen"]["test"]["ndcg@100_se"], "bench_best": model,
                     "bench_best_ndcg@100": ndcg, "bench_best_single": single, "bench_best_single_ndcg@100": single_ndcg,
                     "trials": len(run["trials"]), "search_seconds": run["info"]["search_seconds"],
                     "cut_short": cut_short(run),
                     "command": run["env"]["command"], "date": run["env"]["date"],
                     "load": " / ".join(part.split("load average:")[-1].strip() for part in load.split(";"))})
    lines = [f"# recae tune on {dataset} (strong generalization, the bench's splits), budget {budget}\n",
             header_markdown(runs[-1][1]["env"]).replace("- command:", "- command (last run):"),
             f"- torch threads: {threads_of(runs)}; searched models: {runs[-1][1]['info']['models']}",
             "- test NDCG@100 of the chosen trial's model (fitted on the split's training users, as in the bench) "
             "against the committed bench table's best on the same split "
             f"(benchmarks/results/bench_{dataset}_strong.md); load: `uptime` load averages before / after each search; "
             "cut short: trials stopped at their time share that did not become their model's best, and their seconds",
             "", "| split seed | chosen | valid NDCG@100 | test NDCG@100 ± se | bench best (test) | × bench best "
             "| bench best single (test) | trials | search s | cut short: trials, s | date | load before / after |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['seed']} | {r['chosen']} | {r['valid']:.4f} | {r['test_ndcg@100']:.4f} ± {r['test_se']:.4f} | "
              f"{r['bench_best']} {r['bench_best_ndcg@100']:.4f} | {r['test_ndcg@100'] / r['bench_best_ndcg@100']:.3f} | "
              f"{r['bench_best_single']} {r['bench_best_single_ndcg@100']:.4f} | {r['trials']} | "
              f"{r['search_seconds']:.0f} | {r['cut_short'][0]}, {r['cut_short'][1]:.0f} | {r['date']} | {r['load']} |"
              for r in rows]
    lines += blend_pairs(runs)
    lines += ["", "Chosen settings: " + "; ".join(f"seed {r['seed']}: `{json.dumps(r['params'])}`" for r in rows),
              "", f"Per-seed reports: `{stem}_seed<seed>.md` (table, search history, PNG)."]
    md = RESULTS / f"{stem}.md"
    # a hand-written reading of the results, below the generated part, survives a re-render
    reading = md.read_text().partition("\nReading:")[2] if md.exists() else ""
    md.write_text("\n".join(lines) + "\n" + (f"\nReading:{reading}" if reading else ""))
    (RESULTS / f"{stem}.json").write_text(json.dumps({"rows": rows}, indent=1, default=float))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="ml-1m")
    p.add_argument("--budget", default="20m")
    p.add_argument("--seeds", type=int, nargs="+", default=[98765, 1, 2])
    p.add_argument("--models", nargs="+")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tag", default="", help="a suffix for the result files, so a rerun keeps the others")
    p.add_argument("--render-only", action="store_true", help="rebuild the summary from the per-seed reports")
    args = p.parse_args()
    if args.render_only:
        render(args.dataset, args.budget, args.tag)
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    env = environment()
    data = load_dataset(args.dataset)
    stem = stem_of(args.dataset, args.budget, args.tag)
    for seed in args.seeds:
        before = uptime()
        split = make_split(data, "strong", seed)
        result = tune(data, models=args.models, budget=args.budget, split=split, refit=False, threads=args.threads,
                      random_state=0)
        result.info.update(dataset=f"{args.dataset} strong split {seed}", split_seed=seed,
                           load=f"before: {before}; after: {uptime()}")
        write(result, RESULTS, f"{stem}_seed{seed}", env["command"], env)
        render(args.dataset, args.budget, args.tag)
        model, ndcg, _, _ = bench_best(args.dataset, seed)
        print(f"seed {seed}: {result.name} test {result.test['ndcg@100']:.4f} vs bench best {model} {ndcg:.4f}",
              flush=True)


if __name__ == "__main__":
    main()
