"""FactorEASE's popularity exponent γ: one fit per log, then every γ scored on validation and test.

γ multiplies item j's scores by (1 + nⱼ)^γ (nⱼ: its training users) and changes no weight, so
one fit (early stopping at γ = 0) serves every γ through ``set_params``. A reference model's
test NDCG@100 on the same split stands beside the rows (dense EASE on ML-1M, implicit ALS's
setting from ``large_catalogue_250k.md`` on the long-tail logs, Mult-VAE's default on the
``tune_longtail --scale 3`` log). One torch thread.

    python benchmarks/factor_ease_popularity.py --data-dir ../shared/data \\
        --out benchmarks/results/factor_ease_popularity.md
"""

from __future__ import annotations

import argparse
import json
import time

from _env import environment, header_markdown, publish

GAMMAS = (0.0, 0.1, 0.2, 0.3, 0.4)
LOGS = {  # name: (how to build it, FactorEASE's setting, reference model and setting)
    "ML-1M strong, split 98765": ("ml-1m", {}, ("EASE", {"l2": 500.0})),
    "long-tail 9,000 × 5,196 × 180k (tune_longtail --scale 3)": ("tune-x3", {}, ("MultVAE", {})),
    "long-tail 10k × 25k × 200k (large_catalogue --scale 0.1)": (
        "longtail-0.1", {"rank": 256, "epochs": 12, "patience": 2, "batch_size": 2048, "lr": 0.001},
        ("ImplicitALS", {"factors": 128, "regularization": 50.0, "alpha": 2.0, "iterations": 15})),
}


def load(kind: str, data_dir):
    from recae.bench.protocols import make_split
    from recae.datasets import SYNTHETIC_LONGTAIL, load_movielens, synthetic
    from recae import strong_generalization_split

    if kind == "ml-1m":
        data = load_movielens("1m", data_dir=data_dir, download=False).binarize(3.5).filter(min_user=5)
        return make_split(data, "strong", 98765)
    if kind == "tune-x3":  # benchmarks/tune_longtail.py's log at --scale 3
        data = synthetic(n_users=9000, n_items=5196, n_interactions=180_000, popularity="longtail",
                         random_state=0, timestamps=False)
        return make_split(data, "strong", 98765)
    shape = dict(SYNTHETIC_LONGTAIL)  # benchmarks/large_catalogue.py's log and split at --scale 0.1
    for k in ("n_users", "n_items", "n_interactions"):
        shape[k] = int(shape[k] * 0.1)
    return strong_generalization_split(synthetic(**shape, random_state=0), 0.1, random_state=98765)


def test_ndcg(model, split) -> float:
    from recae import evaluate

    return float(evaluate(model, split, k=100, metrics=("ndcg",)).loc["ndcg@100", "mean"])


def run(label: str, data_dir) -> list[dict]:
    import recae
    from recae.models.inputs import validation_pair
    from recae.models.validation import validation_score

    kind, params, (ref_name, ref_params) = LOGS[label]
    split = load(kind, data_dir)
    t = time.process_time()
    model = recae.FactorEASE(**params, show_progress=False).fit(split.train, valid=split)
    fit_cpu = time.process_time() - t
    ref_model = getattr(recae, ref_name)(**ref_params)
    ref_model.fit(split.train, **({"valid": split} if ref_name == "MultVAE" else {}))
    ref = test_ndcg(ref_model, split)
    pair = validation_pair(split, model.item_ids_)
    rows = []
    for gamma in GAMMAS:
        model.set_params(popularity_exponent=gamma)
        rows.append({"log": label, "gamma": gamma, "params": params, "best_epoch": model.best_epoch_,
                     "fit_cpu_s": fit_cpu, "valid_ndcg100": validation_score(model, pair, "ndcg@100"),
                     "ndcg100": test_ndcg(model, split), "reference": f"{ref_name} {json.dumps(ref_params)}",
                     "reference_ndcg100": ref})
        print(rows[-1], flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--out")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    env = environment()
    rows = [r for label in LOGS for r in run(label, args.data_dir)]
    lines = ["# FactorEASE's popularity exponent γ: scores × (1 + item's training users)^γ", "", header_markdown(env),
             "One fit per log (FactorEASE's setting in the table, early stopping on validation at γ = 0), then "
             "each γ set on the fitted model. `× ref`: test NDCG@100 over the reference model's on the same split. "
             "The γ with the best validation score is **bold**.", "",
             "| log | FactorEASE setting | γ | valid NDCG@100 | test NDCG@100 | reference | ref test | × ref |",
             "|---|---|---|---|---|---|---|---|"]
    for label in LOGS:
        mine = [r for r in rows if r["log"] == label]
        best = max(mine, key=lambda r: r["valid_ndcg100"])
        for r in mine:
            g = f"**{r['gamma']:g}**" if r is best else f"{r['gamma']:g}"
            lines.append(f"| {label} | `{json.dumps(r['params'])}` | {g} | {r['valid_ndcg100']:.4f} | "
                         f"{r['ndcg100']:.4f} | {r['reference']} | {r['reference_ndcg100']:.4f} | "
                         f"{r['ndcg100'] / r['reference_ndcg100']:.3f} |")
    return publish(args.out, "\n".join(lines) + "\n", env, rows)


if __name__ == "__main__":
    raise SystemExit(main())
