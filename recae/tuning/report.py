"""The report of a :func:`recae.tune.tune` run: Markdown (table, chosen setting, history), JSON, PNG."""

from __future__ import annotations

import json

import numpy as np

from ..bench.report import environment, environment_lines, write_files


def _f(v, fmt=".4f") -> str:
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, fmt)


def label(row: dict) -> str:
    """A leaderboard row's name: the Blend whose members average several trials is told apart."""
    return f"{row['model']} (averaged trials)" if "settings" in row.get("params", {}) else row["model"]


def markdown(result, env: dict, plot_name: str | None = None) -> str:
    """The report as Markdown: setup, the per-model table, the chosen setting and every trial."""
    info = result.info
    budget = (f"{info['budget']} ({info['budget_seconds']:.0f} s of search)" if info["budget_seconds"]
              else f"{info['n_trials']} trials")
    out = [f"# recae tune: {info.get('dataset', 'data')}\n", *environment_lines(env),
           f"- data: {info['users']} users × {info['items']} items, {info['nnz']} positives; protocol "
           f"{info['protocol']}, " + ("split by time" if info["split_seed"] is None else
                                        f"split seed {info['split_seed']}") + f", random_state {info['random_state']}",
           f"- budget: {budget}; search ran {info['search_seconds']:.0f} s on {info['threads']} torch thread(s)"
           + (f"; {info['load']}" if info.get("load") else ""),
           f"- chosen: **{result.name}** `{json.dumps(result.params)}`, validation NDCG@100 {result.valid:.4f}, "
           f"test NDCG@100 {_f(result.test.get('ndcg@100'))} ± {_f(result.test.get('ndcg@100_se'))}",
           f"- the saved model is fitted on {info['refit_on']}",
           *(["- left the rotation: " + "; ".join(f"{m} ({why})" for m, why in info["left"].items())]
             if info.get("left") else []),
           *(["- **not among the results**: " + "; ".join(f"{m} ({why})" for m, why in info["not_run"].items())]
             if info.get("not_run") else []), "",
           "Validation picks (NDCG@100 on the split's validation users); test is the split's test users, which "
           "the search never looked at. `default`: the model's default setting (its first trial).", "",
           "| model | valid NDCG@100 | default's valid | test NDCG@100 | trials (pruned) | seconds | best setting |",
           "|---|---|---|---|---|---|---|"]
    out += [f"| {label(r)} | {r['valid_ndcg@100']:.4f} | {_f(r['default_valid_ndcg@100'])} | "
            f"{r['test']['ndcg@100']:.4f} | {r['trials']} ({r['pruned']}) | {r['seconds']:.0f} | "
            f"`{json.dumps(r['params'])}`" + (f" epoch {r['best_epoch']}" if r.get("best_epoch") else "") + " |"
            for r in result.leaderboard]
    if plot_name:
        out += ["", f"![validation NDCG@100 against elapsed search time]({plot_name})"]
    out += ["", "## Search history", "", "| # | elapsed s | model | state | valid NDCG@100 | fit s | setting |",
            "|---|---|---|---|---|---|---|"]
    out += [f"| {i} | {t['elapsed']:.0f} | {t['model']} | {t['state']}"
            + (f" at epoch {t['stopped_at_epoch']}" if t.get("stopped_at_epoch") else "")
            + f" | {t['valid_ndcg@100']:.4f} | {t['seconds']:.1f} | `{json.dumps(t['params'])}` |"
            for i, t in enumerate(result.trials)]
    return "\n".join(out) + "\n"


def plot(result, path) -> None:
    """Validation NDCG@100 against elapsed search time: each model's trials and its best so far."""
    import matplotlib  # lazy: optional (the `tune` and `bench` extras)

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    colors = plt.get_cmap("tab10").colors
    for i, name in enumerate(dict.fromkeys(t["model"] for t in result.trials)):
        ts = [t for t in result.trials if t["model"] == name and np.isfinite(t["valid_ndcg@100"])]
        if not ts:
            continue
        x = np.array([t["elapsed"] for t in ts])
        y = np.array([t["valid_ndcg@100"] for t in ts])
        # a trial stopped at its time share keeps its best epoch: a usable result, like a complete one
        usable = np.array([t["state"] in ("complete", "stopped") for t in ts])
        stopped = np.array([t["state"] == "stopped" for t in ts])
        c = colors[i % len(colors)]
        ax.scatter(x[usable & ~stopped], y[usable & ~stopped], color=c, s=14, label=name)
        ax.scatter(x[stopped], y[stopped], color=c, s=18, marker="^")
        ax.scatter(x[~usable], y[~usable], color=c, s=14, marker="x")
        if usable.any():
            ax.step(x[usable], np.maximum.accumulate(y[usable]), where="post", color=c, alpha=0.7)
    ax.set_xlabel("elapsed search time (s)")
    ax.set_ylabel("validation NDCG@100")
    ax.set_title(f"recae tune: {result.info.get('dataset', '')} (dots: trials, ^: stopped at their time share, "
                 "x: pruned, line: best so far)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write(result, out_dir, stem: str, command: str, env: dict | None = None) -> dict:
    """Write ``<stem>.md``, ``.json`` and ``.png`` (with matplotlib) under ``out_dir``; their paths."""
    env = env or environment(command)
    return write_files(out_dir, stem, lambda path: plot(result, path), lambda name: markdown(result, env, name),
                       {"env": env, "info": result.info, "chosen": {"model": result.name, "params": result.params,
                                                                   "valid_ndcg@100": result.valid, "test": result.test},
                        "leaderboard": result.leaderboard, "trials": result.trials}, "tune")
