"""What ``recae tune``'s refit adds: the chosen setting refitted on the search's training and validation users.

``tune(refit=True)`` (the default, what ``recae tune --out`` saves) fits the chosen setting
again on all of the data it was given, neural models for the epochs their best trial kept.
``tune_movielens.py`` tests the trial's model instead (``refit=False``: training users only,
as the bench's models are), so that the two tables compare like with like. This script
replays the documented refit on committed tune reports with the test users held back:
``TuneResult.refit`` on the split's training users plus its validation users (fold-in and
target together), on the training items, then tested on the split's test users, which neither
the search nor the refit saw. The same as running ``recae.tune(train + validation users,
split=split)``, without searching again.

    python benchmarks/tune_refit.py --dataset ml-1m --stem tune_ml-1m_20m_threads2 --seeds 98765 1 2 --threads 2

``--users train`` replays on the split's training users only instead: the chosen trial's model
and, with ``--bench-refit``, the bench's best as the bench fitted them, so the committed tune
table's figure gets a paired standard error against the bench's best over the same test users
(the replay's test scores should reproduce both committed figures).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from _env import environment, header_markdown, publish

import recae
from recae.bench import load_dataset, make_split
from recae.data import Interactions
from recae.tuning import TuneResult

RESULTS = Path(__file__).resolve().parent / "results"


def without_test_users(split) -> Interactions:
    """The split's training users and its validation users' whole histories, on the training items."""
    valid = (split.valid_fold_in.matrix + split.valid_target.matrix).tocsr()
    valid.data[:] = 1.0
    matrix = sp.vstack([split.train.matrix, valid], format="csr").astype(split.train.matrix.dtype)
    users = np.concatenate([split.train.user_ids, split.valid_fold_in.user_ids])
    return Interactions(matrix, users, split.train.item_ids)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="ml-1m")
    p.add_argument("--stem", required=True, help="the tune reports' name before _seed<seed>.json")
    p.add_argument("--seeds", type=int, nargs="+", default=[98765, 1, 2])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--bench-refit", action="store_true",
                   help="also refit the committed bench table's best model the same way (the control)")
    p.add_argument("--users", choices=["train+valid", "train"], default="train+valid",
                   help="refit on the training and validation users (what tune saves), or replay on the "
                        "training users only (the trial's model and the bench's, as committed)")
    p.add_argument("--out")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    replay = args.users == "train"  # the trial's model as committed, not what tune saves
    env = environment()
    data = load_dataset(args.dataset)
    bench = json.loads((RESULTS / f"bench_{args.dataset}_strong.json").read_text())["rows"]
    rows = []
    for seed in args.seeds:
        report = json.loads((RESULTS / f"{args.stem}_seed{seed}.json").read_text())
        chosen = report["chosen"]
        result = TuneResult(model=None, name=chosen["model"], params=chosen["params"], valid=chosen["valid_ndcg@100"],
                            leaderboard=report["leaderboard"])
        split = make_split(data, "strong", seed)
        refit_data = split.train if replay else without_test_users(split)
        t = time.perf_counter()
        model = result.refit(refit_data)
        secs = time.perf_counter() - t
        summary, users = recae.evaluate(model, split, k=100, metrics=("ndcg",), per_user=True)
        test = summary.loc["ndcg@100"]
        board = [r for r in bench if r["seed"] == seed]
        best = max(board, key=lambda r: r["ndcg@100"])
        row = {"seed": seed, "users": args.users, "chosen": result.name, "refit_users": refit_data.n_users,
               "train_users": split.train.n_users, "trial_test": chosen["test"]["ndcg@100"],
               "refit_test": float(test["mean"]), "refit_se": float(test["se"]), "refit_s": secs,
               "bench_best": best["model"], "bench_best_test": best["ndcg@100"]}
        if args.bench_refit:  # the control: the bench's best refitted the same way, on the same users
            control = TuneResult(model=None, name=best["model"], params=best["params"], valid=best["valid_ndcg@100"],
                                 leaderboard=board).refit(refit_data)
            c_summary, c_users = recae.evaluate(control, split, k=100, metrics=("ndcg",), per_user=True)
            row["bench_refit_test"] = float(c_summary.loc["ndcg@100", "mean"])
            # paired over the same test users: most of the per-user spread is shared by the two models
            diff = (users["ndcg@100"] - c_users["ndcg@100"].reindex(users.index)).dropna().to_numpy()
            row["paired_diff"] = float(diff.mean())
            row["paired_se"] = float(diff.std(ddof=1) / np.sqrt(len(diff)))
        rows.append(row)
        print(json.dumps(rows[-1]), flush=True)
    control = all("bench_refit_test" in r for r in rows)
    legend = ("`trial`: the chosen trial's model, fitted on the split's training users (the committed tune table's "
              "figure, like with like against the bench). `refit`: the chosen setting refitted by "
              "`TuneResult.refit` (what `tune(refit=True)` saves) on the training and validation users, the test "
              "users held back; both tested on the split's test users.")
    header = ("| split | chosen | refit users (training) | trial test NDCG@100 | refit test NDCG@100 ± se | refit s "
              "| bench best (test) | trial × bench | refit × bench |")
    rule = "|---|---|---|---|---|---|---|---|---|"
    if control:
        legend += (" `bench best refitted`: the control, the committed bench table's best (for a Blend: its members "
                   "at their bench settings and epochs, the bench's weights) refitted the same way on the same users. "
                   "`refit − bench refitted`: the mean per-user difference over the same test users, with its "
                   "paired standard error.")
        header += " bench best refitted | refit × bench refitted | refit − bench refitted ± paired se |"
        rule += "---|---|---|"
    title = "trial replayed on the training users" if replay else "refit on the search's users"
    if replay:
        legend += (" Here `refit` is a replay on the training users only (`--users train`): it should reproduce the "
                   "trial's figure, and `bench best refitted` the bench's, so the last column is the committed "
                   "tune table's comparison with a paired standard error.")
    lines = [f"# recae tune's {title}: {args.dataset}, reports `{args.stem}_seed<seed>`\n",
             header_markdown(env), legend + "\n", header, rule]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['chosen']} | {r['refit_users']} ({r['train_users']}) | {r['trial_test']:.4f} | "
                     f"{r['refit_test']:.4f} ± {r['refit_se']:.4f} | {r['refit_s']:.0f} | {r['bench_best']} "
                     f"{r['bench_best_test']:.4f} | {r['trial_test'] / r['bench_best_test']:.3f} | "
                     f"{r['refit_test'] / r['bench_best_test']:.3f} |"
                     + (f" {r['bench_refit_test']:.4f} | {r['refit_test'] / r['bench_refit_test']:.3f} | "
                        f"{r['paired_diff']:+.4f} ± {r['paired_se']:.4f} |" if control else ""))
    keys = ("trial_test", "refit_test", "bench_best_test") + (("bench_refit_test",) if control else ())
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    lines += ["", "Means: " + ", ".join(f"{k.replace('_test', '').replace('_', ' ')} {v:.4f}" for k, v in mean.items())
              + "."]
    default = f"tune_paired_{args.stem.removeprefix('tune_')}.md" if replay else f"tune_refit_{args.dataset}.md"
    out = Path(args.out) if args.out else RESULTS / default
    publish(out, "\n".join(lines) + "\n", env, rows)


if __name__ == "__main__":
    main()
