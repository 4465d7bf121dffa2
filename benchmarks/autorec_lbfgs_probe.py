"""I-AutoRec settings on one ML-100K fold's validation (the probe behind the ML-100K grid).

Splits u<fold>.base as ``autorec_ratings.py`` does (10% of the ratings for validation), fits
``AutoRec(**config)`` with early stopping on validation RMSE (up to 100 epochs), and prints
the best validation RMSE and the test RMSE of that early-stopped model (no refit) as JSON.

    python benchmarks/autorec_lbfgs_probe.py --fold 1 --configs '[{"optimizer": "lbfgs", "lr": 1.0, "l2": 200}]'
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from recae.data.splits import HoldoutSplit
from recae.datasets.movielens import movielens_official_split
from recae.metrics import rmse
from recae.models.autorec import AutoRec

from autorec_ratings import random_entries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("RECAE_DATA_DIR", "../shared/data"))
    ap.add_argument("--fold", type=int, default=1)
    ap.add_argument("--configs", default="[{}]", help="JSON list of AutoRec keyword-argument dicts")
    args = ap.parse_args()
    torch.set_num_threads(1)
    train, test = movielens_official_split(args.fold, data_dir=args.data_dir, download=False, unseen="keep")
    fit_part, valid_part = random_entries(train, 0.1, np.random.default_rng(10_000 + args.fold))
    t_df = test.to_pandas()
    for config in json.loads(args.configs):
        t = time.perf_counter()
        model = AutoRec(device="cpu", random_state=args.fold, epochs=100, **config)
        model.fit(fit_part, valid=HoldoutSplit(fit_part, test, valid_part))
        pred = model.predict(t_df["user"].to_numpy(), t_df["item"].to_numpy())
        print(json.dumps({"fold": args.fold, "config": config, "valid_rmse": round(min(h["rmse"] for h in model.history_), 4),
                          "test_rmse_no_refit": round(float(rmse(t_df["rating"], pred)), 4),
                          "best_epoch": model.best_epoch_, "seconds": round(time.perf_counter() - t)}), flush=True)


if __name__ == "__main__":
    main()
