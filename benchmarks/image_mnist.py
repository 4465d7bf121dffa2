"""Dense mode on MNIST: reconstruction MSE, one-class anomaly AUROC, CPU training time.

Runs with one torch thread (the machine is shared). Writes benchmarks/results/image_mnist.md
and .json plus three small PNGs (reconstructions, 2-D codes, training curve).

    python benchmarks/image_mnist.py            # the full run (~20-30 min on 2 cores)
    python benchmarks/image_mnist.py --quick    # a smoke run on subsets (not for the results)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _env import environment, header_markdown  # noqa: E402

from recae.anomaly import auroc  # noqa: E402
from recae.image import ImageAutoencoder, load_mnist  # noqa: E402
from recae.image import plots  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")

RECON_RUNS = {
    # name: (settings, target MSE or None)
    "conv-32": (dict(arch="conv", latent_dim=32, channels=(16, 32), epochs=10, batch_size=128, lr=1e-3), 0.010),
    "mlp-32": (dict(arch="mlp", latent_dim=32, epochs=20, batch_size=128, lr=1e-3), 0.015),
    "mlp-3": (dict(arch="mlp", latent_dim=3, epochs=20, batch_size=128, lr=1e-3), None),
}

ONE_CLASS = {
    "mlp-16": dict(arch="mlp", latent_dim=16, epochs=10, batch_size=32, lr=3e-3),
    "conv-16": dict(arch="conv", latent_dim=16, channels=(16, 32), epochs=5, batch_size=32, lr=3e-3),
}


def timed_fit(settings, x, seed=0):
    model = ImageAutoencoder(device="cpu", random_state=seed, **settings)
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(x)
    return model, time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", default=None, help="data directory holding mnist/ (default: $RECAE_DATA_DIR, ./datasets)")
    ap.add_argument("--quick", action="store_true", help="subsets and 1 epoch, to check the script; writes nothing")
    args = ap.parse_args()
    torch.set_num_threads(1)
    env = environment()
    train, train_y = load_mnist("train", data_dir=args.data_dir)
    test, test_y = load_mnist("test", data_dir=args.data_dir)
    if args.quick:
        train, train_y, test, test_y = train[:3000], train_y[:3000], test[:1000], test_y[:1000]

    recon = {}
    models = {}
    for name, (settings, target) in RECON_RUNS.items():
        settings = dict(settings, epochs=1) if args.quick else settings
        model, wall, cpu = timed_fit(settings, train)
        mse = float(model.anomaly_score(test).mean())
        recon[name] = {"settings": settings, "test_mse": mse, "target_mse": target,
                       "meets_target": None if target is None else mse <= target, "fit_wall_s": wall,
                       "fit_cpu_s": cpu, "epoch_wall_s": [h["seconds"] for h in model.history_],
                       "train_loss": [h["loss"] for h in model.history_]}
        models[name] = model
        print(f"{name}: test MSE {mse:.5f} (target {target}), fit {wall:.0f} s wall / {cpu:.0f} s CPU", flush=True)

    one_class = {}
    for name, settings in ONE_CLASS.items():
        settings = dict(settings, epochs=1) if args.quick else settings
        rows = {}
        for digit in range(10):
            model, wall, cpu = timed_fit(settings, train[train_y == digit])
            rows[digit] = {"auroc": auroc(model.anomaly_score(test), test_y != digit), "n_train": int((train_y == digit).sum()),
                           "fit_wall_s": wall, "fit_cpu_s": cpu}
            print(f"one-class {name} digit {digit}: AUROC {rows[digit]['auroc']:.4f} ({wall:.0f} s)", flush=True)
        mean = float(np.mean([r["auroc"] for r in rows.values()]))
        one_class[name] = {"settings": settings, "per_digit": rows, "mean_auroc": mean}
        print(f"one-class {name}: mean AUROC {mean:.4f}", flush=True)

    if args.quick:
        return 0
    figures = {
        "reconstructions": plots.plot_reconstructions(models["conv-32"], test[:12], os.path.join(RESULTS, "image_mnist_reconstructions.png"), n=12),
        "codes": plots.plot_codes(models["mlp-3"].encode(test[:3000]), test_y[:3000], os.path.join(RESULTS, "image_mnist_codes.png")),
        "history": plots.plot_history(models["conv-32"].history_, os.path.join(RESULTS, "image_mnist_history.png")),
    }
    out = {"environment": env, "threads": 1, "reconstruction": recon, "one_class": one_class,
           "figures": {k: os.path.relpath(v, RESULTS) for k, v in figures.items()}}
    with open(os.path.join(RESULTS, "image_mnist.json"), "w") as f:
        json.dump(out, f, indent=2, default=float)
    with open(os.path.join(RESULTS, "image_mnist.md"), "w") as f:
        f.write(markdown(out))
    return 0


def markdown(out: dict) -> str:
    lines = ["# Dense mode on MNIST: reconstruction and one-class anomaly detection", "",
             header_markdown(out["environment"]), "- torch threads: 1 (the machine is shared with other jobs, so wall "
             "times include waiting for a core; CPU seconds are the process's own)", "",
             "## Test-set reconstruction MSE (pixels in [0, 1]), trained on all 60,000 training images", "",
             "| model | code | epochs | test MSE | target | fit wall s | fit CPU s |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in out["reconstruction"].items():
        s = r["settings"]
        target = "—" if r["target_mse"] is None else f"≤ {r['target_mse']:.3f} ({'met' if r['meets_target'] else 'missed'})"
        arch = f"{s['arch']}" + (f" {s['channels']}" if s["arch"] == "conv" else "")
        lines.append(f"| {arch} | {s['latent_dim']} | {s['epochs']} | {r['test_mse']:.5f} | {target} | "
                     f"{r['fit_wall_s']:.0f} | {r['fit_cpu_s']:.0f} |")
    lines += ["", "Settings: Adam, MSE loss, batch 128, lr 1e-3, ReLU, sigmoid output, seed 0. MLP widths: "
              "784→128→64→32 for the 32-d code, 784→128→64→12→3 for the 3-d one; conv: two stride-2 3×3 "
              "convolutions (16, 32 channels) → linear code, mirrored by transposed convolutions.", "",
              "## One-class anomaly detection (train on one digit, AUROC against the other nine on the 10,000 test images)", "",
              "| model | " + " | ".join(str(d) for d in range(10)) + " | mean |", "|---|" + "---:|" * 11]
    for name, r in out["one_class"].items():
        vals = " | ".join(f"{r['per_digit'][d]['auroc']:.3f}" for d in range(10))
        lines.append(f"| {name} | {vals} | **{r['mean_auroc']:.4f}** |")
    lines += ["", "Each one-class model is fit on the ~6,000 training images of its digit "
              "(MLP: 16-d code, 10 epochs; conv: 16-d code, 5 epochs; batch 32, lr 3e-3); the score is the "
              "per-image reconstruction MSE. Target: mean ≥ 0.90 (stretch ≥ 0.95).", "",
              "## Figures", "", "- `image_mnist_reconstructions.png`: test images (top) and conv-32 reconstructions",
              "- `image_mnist_codes.png`: 3-d MLP codes of 3,000 test images, first two principal components, by digit",
              "- `image_mnist_history.png`: conv-32 training loss per epoch", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
