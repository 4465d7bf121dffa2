"""Does the tuned Blend gain from the tuned matrix factorization as a member? Replayed on committed tune runs.

``recae tune`` forms its Blend after the search, from each searched model's best trial, so
the Blend's members can change without rerunning the search: this script refits the best
trial of every model of a committed tune report (its setting, on the split's training users,
neural models up to the epoch the trial kept, validating on the split as the trial did),
checks each refit against the validation score the report recorded, and weighs two Blends
on the same fitted members (``Blend.from_models``, bagged weights as in tune):

- ``autoencoders``: tune's members before this study (the best full-rank linear model,
  LinearAE, every neural one), which must reproduce the report's Blend;
- ``+ best MF``: the same and the better of ALS and BPR on validation;
- or, with ``--member NAME``, the same and that model instead: its best trial when the report
  searched it, else fitted with ``--member-params`` (neural ones early-stopped on validation
  as a trial is), e.g. the factored linear autoencoder, which tune does not search by default.

Validation picks; test is for the record.

    python benchmarks/tune_blend_mf.py --dataset ml-1m --stem tune_ml-1m_20m_threads2 --seeds 98765 1 2 --threads 2
    python benchmarks/tune_blend_mf.py --dataset ml-1m --stem tune_ml-1m_20m_threads2 --threads 2 --member factorease
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from _env import environment, header_markdown, publish

import recae
from recae.bench import load_dataset, make_split
from recae.bench.fitting import fit_model, valid_ndcg
from recae.datasets import synthetic
from recae.models import Blend
from tune_longtail import SHAPE

RESULTS = Path(__file__).resolve().parent / "results"
LINEAR = ("edlae", "ease", "sparseease")
NEURAL = ("multdae", "multvae", "cdae", "recvae", "factorease")
MF = ("als", "bpr")


def refit(row: dict, split):
    """The model of a leaderboard row, fitted again on the split's training users."""
    params = dict(row["params"])
    if row["model"] in NEURAL and row.get("best_epoch"):
        params["epochs"] = int(row["best_epoch"])
    model, _ = fit_model(row["model"], params, split)
    return model


def blend_row(seed, rule, names, fitted, split) -> dict:
    blend = Blend.from_models([fitted[n] for n in names], valid=split)
    test = recae.evaluate(blend, split, k=100, metrics=("ndcg",)).loc["ndcg@100"]
    return {"seed": seed, "rule": rule, "members": names, "weights": np.round(blend.weights_, 3).tolist(),
            "valid": valid_ndcg(blend, split), "test": float(test["mean"]), "se": float(test["se"])}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="ml-1m")
    p.add_argument("--stem", required=True, help="the tune reports' name before _seed<seed>.json")
    p.add_argument("--seeds", type=int, nargs="+", default=[98765, 1, 2])
    p.add_argument("--report", help="one report file instead (its split seed: --seeds' first)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--member", help="a model to add instead of the best MF (default: the better of ALS and BPR)")
    p.add_argument("--member-params", default="{}", help="--member's setting (JSON) when the report did not search it")
    p.add_argument("--out")
    args = p.parse_args()
    added = f"+ {args.member}" if args.member else "+ best MF"
    member_params = json.loads(args.member_params)
    torch.set_num_threads(args.threads)
    env = environment()
    # "longtail": tune_longtail.py's generated log
    data = synthetic(**SHAPE) if args.dataset == "longtail" else load_dataset(args.dataset)
    rows, checks = [], []
    for seed in args.seeds:
        report = json.loads((Path(args.report) if args.report else RESULTS / f"{args.stem}_seed{seed}.json").read_text())
        # in the search's model order, as tune's Blend takes them (the weight search is order-sensitive)
        rank = {m: i for i, m in enumerate(report["info"]["models"])}
        board = {r["model"]: r for r in sorted(report["leaderboard"], key=lambda r: rank[r["model"]])
                 if r["model"] != "blend"}
        split = make_split(data, "strong", seed)
        wanted = [m for m in board if m in LINEAR + ("linearae",) + NEURAL + MF]
        fitted = {m: refit(board[m], split) for m in wanted}
        for m in wanted:
            checks.append({"seed": seed, "model": m, "recorded": board[m]["valid_ndcg@100"],
                           "refit": valid_ndcg(fitted[m], split)})
            print(json.dumps(checks[-1]), flush=True)
        linear = [m for m in LINEAR if m in board]
        base = ([max(linear, key=lambda m: board[m]["valid_ndcg@100"])] if linear else []) \
            + [m for m in ("linearae",) if m in board] + [m for m in board if m in NEURAL]
        extra = args.member or max((m for m in MF if m in board), key=lambda m: board[m]["valid_ndcg@100"])
        if extra not in board:
            fitted[extra], _ = fit_model(extra, member_params, split)
            checks.append({"seed": seed, "model": extra, "params": member_params,
                           "valid": valid_ndcg(fitted[extra], split)})
            print(json.dumps(checks[-1]), flush=True)
        chosen = report["chosen"]
        rows.append({"seed": seed, "rule": "committed report", "members": chosen["params"].get("members"),
                     "weights": chosen["params"].get("weights"), "valid": chosen["valid_ndcg@100"],
                     "test": chosen["test"]["ndcg@100"], "se": chosen["test"]["ndcg@100_se"]})
        for rule, names in (("autoencoders", base), (added, base + [extra])):
            rows.append(blend_row(seed, rule, names, fitted, split))
            print(json.dumps(rows[-1]), flush=True)
    worst = max(abs(c["refit"] - c["recorded"]) for c in checks if "refit" in c)
    what = f"{args.member} as a member" if args.member else "the tuned matrix factorization"
    lines = [f"# The tuned Blend with and without {what}: {args.dataset}, {args.stem}\n",
             header_markdown(env),
             f"Replayed on the committed reports `{args.stem}_seed<seed>.json`: every model's best trial refitted on "
             "the split's training users (largest difference from the recorded validation NDCG@100: "
             f"{worst:.1e}), then two Blends weighed on the same members (bagged weights, as tune does).\n",
             "| split | Blend | members | weights | valid NDCG@100 | test NDCG@100 ± se |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['seed']} | {r['rule']} | {', '.join(r['members'] or [])} | {r['weights']} | {r['valid']:.4f} | "
              f"{r['test']:.4f} ± {r['se']:.4f} |" for r in rows]
    fresh = [c for c in checks if "refit" not in c]  # the added member, where the report did not search it
    if fresh:
        lines += ["", f"`{args.member}` was not searched by the report: fitted with `{args.member_params}` on each split, "
                  "validation NDCG@100 " + ", ".join(f"{c['valid']:.4f}" for c in fresh) + "."]
    means = {rule: float(np.mean([r["test"] for r in rows if r["rule"] == rule])) for rule in ("autoencoders", added)}
    lines += ["", "Mean test NDCG@100: " + ", ".join(f"{k} {v:.4f}" for k, v in means.items()) + "."]
    out = Path(args.out) if args.out else RESULTS / f"tune_blend_{args.member or 'mf'}_{args.dataset}.md"
    publish(out, "\n".join(lines) + "\n", env, rows + checks)


if __name__ == "__main__":
    main()
