"""All recae models against EASE and tuned `implicit` ALS on ML-1M, strong generalization.

Protocol (../shared/docs/evaluation.md): ratings > 3.5 are positives, users with >= 5
positives, 10% / 10% held-out users, 80/20 fold-in/target, one fit per model per user
split. Everything is chosen on validation NDCG@100 only: EASE's λ (and EDLAE's dropout),
ALS's factors/regularization/alpha grid, the neural models' best epoch (early stopping),
and the Blend weights. Test is evaluated once per chosen setting.

    python benchmarks/neural_ml1m.py --seeds 98765 1 2 [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

from recae import EASE, Blend, CDAE, MultDAE, MultVAE, Popularity, RecVAE, evaluate, strong_generalization_split
from recae.datasets import load_movielens
from recae.models import ImplicitALS

from _env import environment, header_markdown

OUT = Path(__file__).resolve().parent / "results"
EASE_GRID = [(l2, 0.0) for l2 in (200.0, 500.0, 1000.0)]
EDLAE_GRID = [(l2, p) for l2 in (150.0, 300.0, 500.0) for p in (0.33, 0.5, 0.67)]
ALS_GRID = list(itertools.product((64, 128, 256), (1.0, 10.0, 50.0, 100.0), (2.0, 5.0, 10.0)))
NEURAL = {"MultDAE": MultDAE, "MultVAE": MultVAE, "CDAE": CDAE, "RecVAE": RecVAE}


def valid_ndcg(model, split) -> float:
    return float(evaluate(model, split, k=100, metrics=("ndcg",), part="valid").loc["ndcg@100", "mean"])


def test_row(name, model, split, fit_s, params) -> dict:
    t = time.perf_counter()
    r = evaluate(model, split, k=(20, 50, 100), metrics=("ndcg", "truncated_recall"))
    score_s = time.perf_counter() - t
    return {"model": name, "ndcg100": r.loc["ndcg@100", "mean"], "ndcg100_se": r.loc["ndcg@100", "se"],
            "recall20": r.loc["truncated_recall@20", "mean"], "recall20_se": r.loc["truncated_recall@20", "se"],
            "recall50": r.loc["truncated_recall@50", "mean"], "recall50_se": r.loc["truncated_recall@50", "se"],
            "valid_ndcg100": valid_ndcg(model, split), "fit_seconds": fit_s,
            "test_users_per_second": int(r.loc["ndcg@100", "n_users"]) / score_s, "params": params}


def tune(split, make, grid, label):
    """Fit every setting, keep the best on validation; returns (model, params, seconds of the chosen fit)."""
    best = None
    for setting in grid:
        t = time.perf_counter()
        model = make(*setting).fit(split.train)
        secs = time.perf_counter() - t
        v = valid_ndcg(model, split)
        if best is None or v > best[0]:
            best = (v, model, setting, secs)
    print(f"  {label}: best {best[2]} valid {best[0]:.4f}", flush=True)
    return best[1], best[2], best[3]


def run_seed(data, seed: int, models: list[str]) -> list[dict]:
    split = strong_generalization_split(data, 0.1, random_state=seed)
    rows, fitted = [], {}
    t = time.perf_counter()
    pop = Popularity().fit(split.train)
    rows.append(test_row("Popularity", pop, split, time.perf_counter() - t, {}))
    t = time.perf_counter()
    ease500 = EASE(l2=500.0).fit(split.train)
    rows.append(test_row("EASE (λ=500)", ease500, split, time.perf_counter() - t, {"l2": 500.0}))
    ease, (l2, _), secs = tune(split, lambda l2, p: EASE(l2=l2), EASE_GRID, "EASE")
    rows.append(test_row("EASE (tuned λ)", ease, split, secs, {"l2": l2}))
    edlae, (l2, p), secs = tune(split, lambda l2, p: EASE(l2=l2, dropout=p), EDLAE_GRID, "EDLAE")
    rows.append(test_row("EDLAE (EASE + dropout)", edlae, split, secs, {"l2": l2, "dropout": p}))
    fitted["EDLAE"] = edlae
    als, (f, reg, alpha), secs = tune(split, lambda f, r, a: ImplicitALS(factors=f, regularization=r, alpha=a),
                                      ALS_GRID, "ALS")
    rows.append(test_row("implicit ALS (tuned)", als, split, secs,
                         {"factors": f, "regularization": reg, "alpha": alpha, "iterations": 15}))
    for name in models:
        t = time.perf_counter()
        model = NEURAL[name]().fit(split.train, valid=split)
        secs = time.perf_counter() - t
        rows.append(test_row(name, model, split, secs, {**model.get_params(), "best_epoch": model.best_epoch_}))
        fitted[name] = model
        print(f"  {name}: valid {rows[-1]['valid_ndcg100']:.4f} test {rows[-1]['ndcg100']:.4f} "
              f"({secs:.0f} s, best epoch {model.best_epoch_})", flush=True)
    fitted["ALS"] = als
    fit_seconds = {r["model"].split(" ")[0]: r["fit_seconds"] for r in rows}
    fit_seconds["ALS"] = fit_seconds.pop("implicit")
    neural = [m for m in ("RecVAE", "MultDAE", "MultVAE") if m in fitted]
    # the recae hybrid (linear EDLAE + autoencoders), then the same with ALS added, labelled as such
    for members in (["EDLAE", *neural], ["EDLAE", *neural, "ALS"]):
        t = time.perf_counter()
        blend = Blend.from_models([fitted[m] for m in members], valid=split)
        secs = time.perf_counter() - t + sum(fit_seconds[m] for m in members)
        rows.append(test_row(f"Blend ({' + '.join(members)})", blend, split, secs,
                             {"members": members, "weights": np.round(blend.weights_, 3).tolist()}))
        print(f"  {rows[-1]['model']}: valid {rows[-1]['valid_ndcg100']:.4f} test {rows[-1]['ndcg100']:.4f} "
              f"weights {rows[-1]['params']['weights']}", flush=True)
    for r in rows:
        r["seed"] = seed
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    out = []
    for name in dict.fromkeys(r["model"] for r in rows):
        rs = [r for r in rows if r["model"] == name]
        nd = np.array([r["ndcg100"] for r in rs])
        out.append({"model": name, "seeds": len(rs), "ndcg100": nd.mean(),
                    "ndcg100_split_std": nd.std(ddof=1) if len(nd) > 1 else float("nan"),
                    "ndcg100_user_se": np.mean([r["ndcg100_se"] for r in rs]),
                    "recall20": np.mean([r["recall20"] for r in rs]), "recall20_se": np.mean([r["recall20_se"] for r in rs]),
                    "recall50": np.mean([r["recall50"] for r in rs]), "recall50_se": np.mean([r["recall50_se"] for r in rs]),
                    "fit_seconds": np.mean([r["fit_seconds"] for r in rs]),
                    "test_users_per_second": np.mean([r["test_users_per_second"] for r in rs])})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[98765, 1, 2])
    ap.add_argument("--models", nargs="+", default=list(NEURAL), choices=list(NEURAL))
    ap.add_argument("--dataset", choices=("1m", "100k"), default="1m")
    ap.add_argument("--out", default=None, help="results file stem (default neural_ml<dataset>)")
    args = ap.parse_args()
    env = environment()
    args.out = args.out or f"neural_ml{args.dataset}"
    data = load_movielens(args.dataset, data_dir=args.data_dir, download=False).binarize(3.5).filter(min_user=5)
    rows = []
    for seed in args.seeds:
        print(f"seed {seed}", flush=True)
        rows += run_seed(data, seed, args.models)
        OUT.mkdir(exist_ok=True)
        (OUT / f"{args.out}.json").write_text(json.dumps({"env": env, "rows": rows, "summary": summarize(rows)},
                                                         indent=1, default=float))
    summary = summarize(rows)
    ease = next(s["ndcg100"] for s in summary if s["model"] == "EASE (λ=500)")
    als = next(s["ndcg100"] for s in summary if s["model"].startswith("implicit ALS"))
    lines = [f"# recae models vs EASE and tuned implicit ALS on ML-{args.dataset.upper()} (strong generalization, {len(args.seeds)} user splits)\n",
             header_markdown(env), f"- torch threads: {torch.get_num_threads()}\n",
             "\nMean over user splits (seeds " + ", ".join(map(str, args.seeds)) + "). NDCG@100 ± the std over "
             "splits; `se` is the mean standard error over test users within a split. Recall@k = hits / min(k, |target|). "
             "Fit seconds include early-stopping validation; for tuned rows it is the chosen setting's fit alone.\n",
             "| model | NDCG@100 | ± split std | user se | ×EASE(λ=500) | ×ALS | Recall@20 ± se | Recall@50 ± se | fit s | test users/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        lines.append(f"| {s['model']} | {s['ndcg100']:.4f} | {s['ndcg100_split_std']:.4f} | {s['ndcg100_user_se']:.4f} | "
                     f"{s['ndcg100'] / ease:.3f} | {s['ndcg100'] / als:.3f} | {s['recall20']:.4f} ± {s['recall20_se']:.4f} | "
                     f"{s['recall50']:.4f} ± {s['recall50_se']:.4f} | {s['fit_seconds']:.1f} | {s['test_users_per_second']:.0f} |")
    lines += ["\n## Per split\n", "| seed | model | NDCG@100 | valid NDCG@100 | Recall@20 | Recall@50 | fit s | chosen setting |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        params = {k: v for k, v in r["params"].items() if k not in ("device", "show_progress", "amp", "valid_metric")}
        lines.append(f"| {r['seed']} | {r['model']} | {r['ndcg100']:.4f} | {r['valid_ndcg100']:.4f} | {r['recall20']:.4f} | "
                     f"{r['recall50']:.4f} | {r['fit_seconds']:.1f} | `{json.dumps(params, default=str)}` |")
    (OUT / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
