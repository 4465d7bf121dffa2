"""Mult-VAE settings on ML-1M validation (strong generalization, the bench's split seeds).

Fits ``MultVAE(**config)`` (the library defaults plus each config) on one user split of
``recae bench``'s strong protocol and prints validation and test NDCG@100 as JSON lines.
Defaults are chosen on validation; test is printed for the record only. One torch thread.

    python benchmarks/multvae_tuning.py --seed 98765 --configs '[{}, {"dropout": 0.7}]'

``results/multvae_tuning_ml1m.md`` records the runs behind MultVAE's defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from recae import MultVAE
from recae.bench.protocols import FIRST_SEED, load_dataset, make_split
from recae.evaluate import evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("RECAE_DATA_DIR", "../shared/data"))
    ap.add_argument("--seed", type=int, default=FIRST_SEED)
    ap.add_argument("--configs", default="[{}]", help="JSON list of MultVAE keyword-argument dicts")
    args = ap.parse_args()
    torch.set_num_threads(1)
    split = make_split(load_dataset("ml-1m", args.data_dir), "strong", args.seed)
    for config in json.loads(args.configs):
        t = time.perf_counter()
        model = MultVAE(device="cpu", **config).fit(split.train, valid=split)
        scores = {part: float(evaluate(model, split, k=100, metrics=("ndcg",), part=part).loc["ndcg@100", "mean"])
                  for part in ("valid", "test")}
        print(json.dumps({"seed": args.seed, "config": config, "valid": round(scores["valid"], 4),
                          "test": round(scores["test"], 4), "best_epoch": model.best_epoch_,
                          "seconds": round(time.perf_counter() - t)}), flush=True)


if __name__ == "__main__":
    main()
