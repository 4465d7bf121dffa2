"""Tables and the plot of a bench run: console text, Markdown, JSON and PNG."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
from pathlib import Path

import numpy as np
import pandas
import scipy
import torch

from ..exceptions import DataError
from ..version import __version__
from .runner import BenchResult

logger = logging.getLogger(__name__)

#: The console table's width limit; the Markdown table keeps every column.
CONSOLE_WIDTH = 100

def machine() -> str:
    """CPU model, core count and GPU of this machine, in one line."""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return f"{cpu}, {os.cpu_count()} cores, GPU: {gpu}"


def versions() -> dict:
    """Versions of Python, recae and the libraries it runs on (implicit when installed)."""
    out = {"python": platform.python_version(), "recae": __version__, "torch": torch.__version__,
           "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pandas.__version__}
    try:
        import implicit  # lazy: an optional dependency (the `bench` extra)

        out["implicit"] = implicit.__version__
    except ImportError:
        pass
    return out


def environment(command: str) -> dict:
    """Command, date, machine and library versions, recorded in every results file."""
    return {"command": command, "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(), "versions": versions()}


def environment_lines(env: dict) -> list[str]:
    """The Markdown list items of an :func:`environment`: command, date, machine, versions."""
    v = ", ".join(f"{k} {x}" for k, x in env["versions"].items())
    return [f"- command: `{env['command']}`", f"- date: {env['date']}", f"- machine: {env['machine']}",
            f"- versions: {v}"]


def _recall(s: dict, k: int) -> tuple[float, float]:
    """Truncated Recall@k and its se: hits / min(k, |target|) (older runs stored it as ``recall@k``)."""
    key = f"truncated_recall@{k}" if f"truncated_recall@{k}" in s else f"recall@{k}"
    return s[key], s[f"{key}_se"]


def _ratio(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{value:.3f}"  # no implicit model ran: nothing to compare with


def _cells(s: dict, ks) -> list[str]:
    std = s["ndcg@100_split_std"]
    cells = [s["label"], f"{s['ndcg@100']:.4f} ± {s['ndcg@100_se']:.4f}", "—" if np.isnan(std) else f"{std:.4f}"]
    cells += ["{:.4f} ± {:.4f}".format(*_recall(s, k)) for k in ks if k != 100]
    cells += [_ratio(s["vs_best_mf"]), f"{s['fit_seconds']:.1f}", f"{s['tune_seconds']:.0f}",
              f"{s['users_per_second']:.0f}", f"{s['peak_rss_mib']:.0f}"]
    return cells


def _header(ks) -> list[str]:
    return (["model", "NDCG@100 ± se", "split std"] + [f"trunc. Recall@{k} ± se" for k in ks if k != 100]
            + ["× best MF", "fit s", "tuning s", "test users/s", "peak RSS MiB"])


def _short(label: str, width: int) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def console_table(result: BenchResult, width: int = CONSOLE_WIDTH) -> str:
    """The summary in at most ``width`` columns: NDCG@100 ± se, × best MF, truncated recalls, times, memory.

    The split std, the recalls' standard errors and the tuning time are left to the Markdown
    table; long model labels are cut to fit.
    """
    ks = [k for k in result.info["k"] if k != 100]
    header = ["NDCG@100 ± se", "× MF"] + [f"tR@{k}" for k in ks] + ["fit s", "users/s", "RSS MiB"]
    summary = result.summary()
    body = [[f"{s['ndcg@100']:.4f} ± {s['ndcg@100_se']:.4f}", _ratio(s["vs_best_mf"])]
            + [f"{_recall(s, k)[0]:.4f}" for k in ks]
            + [f"{s['fit_seconds']:.1f}", f"{s['users_per_second']:.0f}", f"{s['peak_rss_mib']:.0f}"] for s in summary]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    room = max(12, width - sum(widths) - 2 * len(widths))
    labels = [_short(s["label"], room) for s in summary]
    rows = [["model"] + header] + [[label] + cells for label, cells in zip(labels, body)]
    widths = [max(len(r[0]) for r in rows)] + widths
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("× MF: NDCG@100 over the best implicit model's; tR@k: truncated recall, hits / min(k, |target|)")
    return "\n".join(lines)


def markdown(result: BenchResult, env: dict, plot_name: str | None = None) -> str:
    info, ks = result.info, result.info["k"]
    out = [f"# recae bench: {info.get('dataset', 'data')}, {info['protocol']} protocol\n",
           *environment_lines(env), f"- torch threads: {info['torch_threads']}; implicit: its own OpenMP pool, BLAS pinned to 1",
           f"- data: {info['users']} users × {info['items']} items, {info['nnz']} positives",
           f"- seeds: {', '.join(map(str, info['seeds']))}; budget: " + (
               f"{info['budget']} trials per model (equal trial count: default setting + random grid points)"
               if info.get("budget_seconds") is None else
               f"{info['budget_seconds']:g} s per model (equal wall-clock budget, every model on one thread: "
               "default setting, then Optuna TPE, neural trials pruned per epoch)")
           + ", tuned on validation of "
           f"{'the first split' if info['tune'] == 'first' else 'every split'}"
           + (f"; neural epochs capped at {info['max_epochs']}" if info.get("max_epochs") else ""),
           f"- whole run: {info.get('seconds', float('nan')):.0f} s, process peak RSS "
           f"{info.get('lifetime_peak_rss_mib', float('nan')):.0f} MiB",
           *(f"- {m} is absent: {why}" for m, why in info.get("absent", {}).items()), "",
           "Means over splits. `± se`: mean standard error over test users within a split; `split std`: "
           "std of NDCG@100 over splits. trunc. Recall@k = hits / min(k, |target|) (the Recall@k of the autoencoder papers; "
           "`recae.metrics.truncated_recall_at_k`). `× best MF`: NDCG@100 over the "
           "best tuned implicit model's. `fit s`: the chosen setting's fit (with early stopping); `tuning s`: "
           "all trials on the split the search ran on. Peak RSS: highest resident memory while fitting or scoring the model.", "",
           "| " + " | ".join(_header(ks)) + " |", "|" + "---|" * len(_header(ks))]
    out += ["| " + " | ".join(_cells(s, ks)) + " |" for s in result.summary()]
    if plot_name:
        out += ["", f"![NDCG@100 against fit time]({plot_name})"]
    out += ["", "## Chosen settings per split", "", "| seed | model | valid NDCG@100 | test NDCG@100 | setting |",
            "|---|---|---|---|---|"]
    out += [f"| {r['seed']} | {r['label']} | {r['valid_ndcg@100']:.4f} | {r['ndcg@100']:.4f} | "
            f"`{json.dumps(r['params'])}`" + (f" best epoch {r['best_epoch']}" if "best_epoch" in r else "") + " |"
            for r in result.rows]
    out += ["", "## Tuning trials", "", "| seed | model | setting | valid NDCG@100 | fit s |", "|---|---|---|---|---|"]
    out += [f"| {t['seed']} | {t['model']} | `{json.dumps(t['params'])}` | {t['valid_ndcg@100']:.4f}"
            + (f" ({t['state']})" if t.get("state", "complete") != "complete" else "") + f" | {t['fit_seconds']:.1f} |"
            for t in result.trials]
    return "\n".join(out) + "\n"


def plot(result: BenchResult, path) -> None:
    """NDCG@100 against fit time (log scale): one marker per model, named in the legend, ± se over test users."""
    # lazy: matplotlib is optional (the `bench` extra) and slow to import; write() skips the plot without it
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    summary = result.summary()
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    markers = "osD^v<>pPXh*"
    colors = [c for j, c in enumerate(plt.get_cmap("tab10").colors) if j != 3]  # red marks the implicit models
    for i, s in enumerate(summary):
        implicit = s["model"] in ("als", "bpr")
        err = s.get("ndcg@100_se", float("nan"))
        # markers and a legend, not text labels: models of similar speed and quality (EASE/EDLAE,
        # CDAE/MultDAE) sit on top of each other
        ax.errorbar(max(s["fit_seconds"], 1e-2), s["ndcg@100"], yerr=0.0 if not np.isfinite(err) else err,
                    fmt="*" if s["model"] == "blend" else markers[i % len(markers)], markersize=9 if s["model"] == "blend" else 6,
                    color=colors[i % len(colors)] if not implicit else "tab:red", capsize=3,
                    markeredgecolor="black" if implicit else None, label=_short(s["label"], 30))
    ax.set_xscale("log")
    ax.set_xlabel("fit time of the chosen setting (s, log scale)")
    ax.set_ylabel("test NDCG@100 (± se over test users)")
    ax.set_title(f"{result.info.get('dataset', '')} {result.info['protocol']}: quality vs training time "
                 "(red, black edge: implicit)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _finite(value):
    """``value`` with NaN and infinities as None: strict JSON (``null``), which every parser reads."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    return value


def write_files(out_dir, stem: str, plot_to, render, payload: dict, extra: str) -> dict:
    """``<stem>.png`` by ``plot_to(path)`` (when matplotlib is installed), ``<stem>.md`` by
    ``render(plot_name)`` and ``<stem>.json`` of ``payload`` under ``out_dir``; their paths."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"the report folder {str(out_dir)!r} is a file; pass a folder (it is made if missing)")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{stem}.json", "md": out_dir / f"{stem}.md"}
    plot_name = None
    try:
        plot_to(out_dir / f"{stem}.png")
        paths["png"], plot_name = out_dir / f"{stem}.png", f"{stem}.png"
    except ImportError as exc:  # matplotlib is optional; tables are still written
        logger.warning("no plot written: %s is not installed (pip install 'recae[%s]' adds matplotlib); "
                       "the Markdown and JSON results are", exc.name or "matplotlib", extra)
    paths["md"].write_text(render(plot_name))
    paths["json"].write_text(json.dumps(_finite(payload), indent=1, default=float, allow_nan=False))
    return paths


def write(result: BenchResult, out_dir, stem: str, command: str, env: dict | None = None) -> dict:
    """Write ``<stem>.md``, ``.json`` and ``.png`` (when matplotlib is installed) under ``out_dir``.

    ``env`` (command, date, machine, versions) defaults to this process's; pass a loaded
    run's to re-render it.
    """
    env = env or environment(command)
    return write_files(out_dir, stem, lambda path: plot(result, path), lambda name: markdown(result, env, name),
                       {"env": env, "info": result.info, "summary": result.summary(), "rows": result.rows,
                        "trials": result.trials}, "bench")
