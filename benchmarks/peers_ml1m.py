"""recae's large-catalogue models beside their published peers on ML-1M (3 splits) or the ML-20M shape (1 split).

SparseEASE against the ``sansa`` package (recae.models.SANSA) over the same densities, each at
its best density on validation; FactorEASE against the ``elsarec`` package (recae.models.ELSA) at
the same rank, both with early stopping on validation NDCG@100 (patience 5); dense EASE as the
reference. Data and splits as ``recae bench --dataset ml-1m --protocol strong`` (ratings > 3.5,
users with >= 5 positives, ``make_split`` seeds 98765, 1, 2). Each (model, split) is fitted in
its own process, one torch thread; fit wall and CPU seconds and the fit's peak RSS (sampled,
data included) are reported, test NDCG@100 read once per fit.

    python benchmarks/peers_ml1m.py --data-dir ../shared/data --out benchmarks/results/peers_ml1m.md

``--dataset synthetic-ml20m`` runs the same comparison on the generated ML-20M-shaped log (136,677
users × 20,108 items × 10M positives, ``recae bench --dataset synthetic-ml20m``) on split 98765,
with the trained models capped at 10 epochs (ELSA's epoch is several times FactorEASE's here):

    python benchmarks/peers_ml1m.py --dataset synthetic-ml20m --out benchmarks/results/peers_ml20m_shape.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _env import environment, header_markdown, write_results

SEEDS = (98765, 1, 2)
DENSITIES = (0.01, 0.02, 0.05)
RANK = 256
RUNS = ([("EASE", {"l2": 500.0})]
        + [("SparseEASE", {"l2": 500.0, "density": d}) for d in DENSITIES]
        + [("SANSA", {"l2": 500.0, "density": d}) for d in DENSITIES]
        + [("FactorEASE", {"rank": RANK}), ("ELSA", {"rank": RANK, "epochs": 50, "patience": 5})])
TRAINED = ("FactorEASE", "ELSA")
#: The ML-20M shape: one split, and the trained models at the same epoch cap
RUNS_ML20M = ([("EASE", {"l2": 500.0})]
              + [("SparseEASE", {"l2": 500.0, "density": d}) for d in DENSITIES]
              + [("SANSA", {"l2": 500.0, "density": d}) for d in DENSITIES]
              + [("FactorEASE", {"rank": RANK, "epochs": 10}), ("ELSA", {"rank": RANK, "epochs": 10, "patience": 5})])
SETUPS = {"ml-1m": (SEEDS, RUNS, "ML-1M"), "synthetic-ml20m": ((98765,), RUNS_ML20M, "ML-20M-shaped synthetic log")}


def one(name: str, params: dict, seed: int, data_dir, dataset: str = "ml-1m", threads: int = 1,
        epoch_log: str | None = None) -> dict:
    import logging
    import warnings

    import torch

    import recae
    from recae.bench.memory import PeakRSS
    from recae.bench.protocols import load_dataset, make_split
    from recae.datasets import load_movielens

    torch.set_num_threads(threads)
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)  # sansa's factorization notices
    if epoch_log:  # the trainer's per-epoch lines, to watch a fit of an hour or more
        logging.disable(logging.NOTSET)
        logging.getLogger().setLevel(logging.ERROR)
        train_log = logging.getLogger("recae.train")
        train_log.setLevel(logging.DEBUG)
        train_log.addHandler(logging.FileHandler(epoch_log))
    if dataset == "ml-1m":
        data = load_movielens("1m", data_dir=data_dir, download=False).binarize(3.5).filter(min_user=5)
    else:  # generated counts as presence (0/1), as `recae bench --dataset synthetic-ml20m --binarize 0`
        data = load_dataset(dataset, data_dir)
    split = make_split(data, "strong", seed)
    model = recae.models.MODEL_REGISTRY[name](**params)
    if name == "SANSA":  # numba compiles sansa's kernels on first use: not part of a fit
        recae.models.SANSA(**params).fit(split.train.take_users(np.arange(200)))
    with PeakRSS() as mem:
        t, c = time.perf_counter(), time.process_time()
        model.fit(split.train, **({"valid": split} if name in TRAINED else {}))
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    test = recae.evaluate(model, split, k=(20, 100), metrics=("ndcg", "truncated_recall"))
    valid = recae.evaluate(model, split, k=100, metrics=("ndcg",), part="valid")
    return {"model": name, "params": params, "seed": seed, "fit_s": wall, "fit_cpu_s": cpu,
            "peak_rss_mib": mem.peak / 2**20, "test_ndcg100": float(test.loc["ndcg@100", "mean"]),
            "test_recall20": float(test.loc["truncated_recall@20", "mean"]),
            "valid_ndcg100": float(valid.loc["ndcg@100", "mean"]),
            "epochs": len(getattr(model, "history_", []) or []) or None, "best_epoch": getattr(model, "best_epoch_", None),
            **({"threads": threads} if threads != 1 else {})}


def mean(rows, key):
    return float(np.mean([r[key] for r in rows]))


def threads(group: list[dict]) -> str:
    """A note for rows fitted on more than the table's one torch thread."""
    n = group[0].get("threads", 1)
    return f" on {n} threads" if n != 1 else ""


def report(rows: list[dict], env: dict, runs=RUNS, title: str = "ML-1M") -> str:
    groups: dict[str, list] = {}
    for r in rows:
        groups.setdefault(f"{r['model']} {json.dumps(r['params'])}", []).append(r)
    ease = mean(groups[f"EASE {json.dumps(runs[0][1])}"], "test_ndcg100")
    best = {}
    for key, g in groups.items():
        name = key.split()[0]
        if name not in best or mean(g, "valid_ndcg100") > mean(groups[best[name]], "valid_ndcg100"):
            best[name] = key
    n_splits = len({r["seed"] for r in rows})
    lines = [f"# Large-catalogue models beside sansa and elsarec: {title}, strong generalization, "
             f"{n_splits} split{'s' if n_splits > 1 else ''}", "",
             header_markdown(env),
             f"Means over splits {', '.join(str(s) for s in dict.fromkeys(r['seed'] for r in rows))}; `× EASE`: test NDCG@100 over EASE(l2=500)'s mean. "
             "Densities: SparseEASE's is the share of nonzero weights in B, sansa's the `weight_matrix_density` of "
             "each of its two factors. The setting each model keeps (best mean validation NDCG@100) is **bold**. "
             "One process per fit, one torch thread; wall seconds on a shared 2-core machine, the fit's CPU "
             "seconds beside them.", "",
             "| model | settings | valid NDCG@100 | test NDCG@100 | × EASE | Recall@20 | epochs | fit s (CPU s) | "
             "peak RSS MiB |", "|---|---|---|---|---|---|---|---|---|"]
    for key, g in groups.items():
        name, params = key.split(" ", 1)
        label = f"**{name}**" if best.get(name) == key else name
        epochs = "/".join(str(r["epochs"]) for r in g) if g[0]["epochs"] else "–"
        lines.append(f"| {label} | `{params}` | {mean(g, 'valid_ndcg100'):.4f} | {mean(g, 'test_ndcg100'):.4f} | "
                     f"{mean(g, 'test_ndcg100') / ease:.3f} | {mean(g, 'test_recall20'):.4f} | {epochs} | "
                     f"{mean(g, 'fit_s'):.1f} ({mean(g, 'fit_cpu_s'):.1f}){threads(g)} | {max(r['peak_rss_mib'] for r in g):.0f} |")
    lines.append("")
    for ours, peer in (("SparseEASE", "SANSA"), ("FactorEASE", "ELSA")):
        if ours in best and peer in best:
            a, b = groups[best[ours]], groups[best[peer]]
            per = [x["test_ndcg100"] - y["test_ndcg100"] for x, y in zip(a, b)]
            lines.append(f"- {ours} (kept setting) − {peer} (kept setting), test NDCG@100 per split: "
                         + ", ".join(f"{d:+.4f}" for d in per)
                         + f"; fit CPU s {mean(a, 'fit_cpu_s'):.1f} against {mean(b, 'fit_cpu_s'):.1f}.")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--dataset", choices=sorted(SETUPS), default="ml-1m")
    ap.add_argument("--models", nargs="+", help="fit only these (e.g. two processes on two cores); rows go to --rows")
    ap.add_argument("--out")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of a --one fit (the table's rows use 1)")
    ap.add_argument("--epoch-log", help="with --one: append the trainer's per-epoch lines to this file")
    ap.add_argument("--rows", help="append JSON rows here as they finish, and resume from it")
    ap.add_argument("--report-only", action="store_true", help="write the report from --rows, fitting nothing")
    args = ap.parse_args()
    if args.one:
        name, params, seed = json.loads(args.one)
        print(json.dumps(one(name, params, seed, args.data_dir, args.dataset, args.threads, args.epoch_log)), flush=True)
        return 0
    env = environment()
    from importlib.metadata import PackageNotFoundError, version
    for package in ("sansa", "scikit-sparse", "elsarec"):  # the peers' own versions beside recae's list
        try:
            env["versions"][package] = version(package)
        except PackageNotFoundError:
            env["versions"][package] = "absent"
    path = Path(args.rows) if args.rows else None
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path and path.exists() else []
    done = {(r["model"], json.dumps(r["params"]), r["seed"]) for r in rows}
    seeds, runs, title = SETUPS[args.dataset]
    for seed in () if args.report_only else seeds:
        for name, params in runs:
            if (name, json.dumps(params), seed) in done or args.models and name not in args.models:
                continue
            cmd = [sys.executable, __file__, "--dataset", args.dataset, "--one", json.dumps([name, params, seed])]
            if args.data_dir:
                cmd += ["--data-dir", args.data_dir]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"{name} {params} seed {seed} failed:\n{proc.stderr[-2000:]}")
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
            if path:
                with path.open("a") as f:
                    f.write(json.dumps(rows[-1]) + "\n")
    complete = [s for s in seeds if sum(r["seed"] == s for r in rows) == len(runs)]  # a partial split would skew means
    if not complete:
        print(f"no split has all {len(runs)} rows yet; nothing to report")
        return 0
    text = report([r for r in rows if r["seed"] in complete], env, runs, title)
    print(text)
    if args.out:
        write_results(args.out, text, env, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
