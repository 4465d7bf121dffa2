"""Mult-VAE training speed on ML-1M against the machine's matrix-multiply ceiling.

FLOP floor: a dense Mult-VAE step costs 2·(I·h + h·2d + d·h + h·I) multiply-adds per user
forward (I items, h = 600 hidden, d = 200 latent), three times that with the backward pass.
Dividing an epoch's FLOPs by the measured GEMM throughput (same shapes, same run) gives the
fastest an epoch could be; "% of ceiling" = floor / measured. recae's default first layer
reads only the nonzeros (SparseInputLinear), so it does less work than that dense count: the
"dense path" row forces the plain matmul to show how close the dense arithmetic itself runs.

    python benchmarks/speed_cpu.py [--epochs 5] [--threads N]

The batch is MultVAE's default batch size, so the measured epoch is what ``MultVAE().fit``
does (weight averaging included).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from recae import MultVAE, strong_generalization_split
from recae.datasets import load_movielens
from recae.models.layers import SparseInputLinear

from _env import environment, header_markdown

OUT = Path(__file__).resolve().parent / "results"


def gemm_gflops(m: int, k: int, n: int, repeats: int = 30) -> float:
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(5):
        a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return repeats * 2 * m * k * n / (time.perf_counter() - t) / 1e9


def epoch_seconds(train, epochs: int) -> float:
    model = MultVAE(epochs=epochs, random_state=0).fit(train)
    times = [h["seconds"] for h in model.history_]
    return sorted(times)[len(times) // 2]  # median epoch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    env = environment()
    data = load_movielens("1m", data_dir=args.data_dir, download=False).binarize(3.5).filter(min_user=5)
    train = strong_generalization_split(data, 0.1, random_state=98765).train
    users, items = train.shape
    h, d, batch = 600, 200, MultVAE().batch_size
    per_user = 2 * (items * h + h * 2 * d + d * h + h * items) * 3
    flops = per_user * users
    gflops = gemm_gflops(batch, items, h)
    floor = flops / (gflops * 1e9)
    sparse_s = epoch_seconds(train, args.epochs)
    SparseInputLinear.max_density = -1.0  # force the dense matmul in the first layer
    dense_s = epoch_seconds(train, args.epochs)
    SparseInputLinear.max_density = 0.25
    result = {"env": env, "users": users, "items": items, "threads": torch.get_num_threads(),
              "gemm_gflops": gflops, "epoch_gflop_dense": flops / 1e9, "floor_seconds": floor,
              "epoch_seconds_default": sparse_s, "epoch_seconds_dense_path": dense_s}
    OUT.mkdir(exist_ok=True)
    (OUT / "speed_cpu.json").write_text(json.dumps(result, indent=1, default=float))
    md = ["# Mult-VAE training speed on this CPU (ML-1M)\n", header_markdown(env),
          f"- torch threads: {torch.get_num_threads()}\n",
          f"\nTraining matrix: {users} users × {items} items; Mult-VAE I-600-200-600-I, batch {batch}; median of "
          f"{args.epochs} epochs. GEMM throughput measured in the same run ({batch}×{items} · {items}×{h}): "
          f"**{gflops:.1f} GFLOP/s**. Dense FLOPs per epoch: {flops / 1e9:.1f} GFLOP → floor {floor:.2f} s.\n",
          "| first layer | s / epoch | % of ceiling (floor / measured) | users / s |", "|---|---|---|---|",
          f"| dense matmul (what the floor counts) | {dense_s:.2f} | {100 * floor / dense_s:.0f}% | {users / dense_s:.0f} |",
          f"| sparse input (recae default) | {sparse_s:.2f} | {100 * floor / sparse_s:.0f}% | {users / sparse_s:.0f} |", ""]
    (OUT / "speed_cpu.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
