"""Ranking fingerprints of every model on ML-100K with fixed seeds: the behaviour freeze of a refactor.

For each model (and the Blend) it fits on one strong-generalization split of ML-100K
(ratings > 3.5, users with ≥ 5 positives; the explicit models on the raw ratings of a holdout
split) and hashes:

- ``recommend``: the top-100 ids for every training user, and their scores rounded to 1e-5;
- ``recommend_new``: the same for the test users' fold-in histories (the fold-in path);
- ``similar``: the top-20 similar items of the first 100 items;
- ``predict`` (explicit models): predicted ratings of the test pairs, rounded to 1e-5;
- ``image``: reconstructions and anomaly scores of 1,000 MNIST test images (ImageAutoencoder);
- ``validation``: the per-epoch validation history, rounded to 1e-6, where there is one.

A model reloaded from its file must rank alike (checked, not hashed). Run
with one torch thread (set here) so float reductions run in one order::

    python benchmarks/ranking_hashes.py --out benchmarks/results/ranking_hashes_before.json

Two runs of the same code give the same file; ``--compare OTHER.json`` prints the models whose
hashes differ and exits 1 if any do.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch

import recae
from recae import (CDAE, EASE, AutoRec, BiasedMF, Blend, ImplicitALS, ImplicitBPR, LinearAE, MultDAE, MultVAE,
                   Popularity, RecVAE, holdout_split, strong_generalization_split)
from recae.datasets import load_movielens


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        if a.dtype.kind == "f":
            a = np.round(a.astype(np.float64), 5)
            a[a == 0] = 0.0  # -0.0 and 0.0 round alike
        elif a.dtype == object:
            a = np.array([str(x) for x in a.ravel()])
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def ranking_hashes(model, split, explicit: bool) -> dict:
    out = {}
    users = model.user_ids_
    if explicit:
        ids, scores = model.recommend(users, n=100)
        out["recommend"] = digest(ids, scores)
        test = split.test
        coo = test.matrix.tocoo()
        pred = model.predict(test.user_ids[coo.row], test.item_ids[coo.col])
        out["predict"] = digest(pred)
        hist = {int(i): float(r) for i, r in zip(split.train.item_ids[split.train.matrix[0].indices],
                                                 split.train.matrix[0].data)}
        out["recommend_new"] = digest(*model.recommend_new(hist, n=100))
    else:
        out["recommend"] = digest(*model.recommend(users, n=100))
        out["recommend_new"] = digest(*model.recommend_new(split.test_fold_in, n=100))
    out["similar"] = digest(*model.similar_items(model.item_ids_[:100], n=20))
    history = getattr(model, "history_", None)
    if history:
        keys = sorted(k for k in history[0] if k not in ("seconds", "epoch"))
        out["validation"] = digest(np.array([[h.get(k, np.nan) for k in keys] for h in history], dtype=np.float64))
    return out


def check_reload(model, split, explicit: bool) -> None:
    """The reloaded model must rank alike: the same ids, scores within 1e-5 (not hashed: a
    score 1e-8 from a rounding boundary would flip its hash)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.recae")
        model.save(path)
        again = recae.load(path)
    history = split.test_fold_in if not explicit else {
        int(i): float(r) for i, r in zip(split.train.item_ids[split.train.matrix[0].indices], split.train.matrix[0].data)}
    for name, call in {"recommend": lambda m: m.recommend(m.user_ids_, n=100),
                       "recommend_new": lambda m: m.recommend_new(history, n=100)}.items():
        (a_ids, a_s), (b_ids, b_s) = call(model), call(again)
        if not (np.array_equal(a_ids, b_ids) and np.allclose(a_s, b_s, atol=1e-5)):
            raise SystemExit(f"{type(model).__name__}: the reloaded model's {name} differs")


def image_hashes() -> dict:
    from recae import ImageAutoencoder
    from recae.image import load_mnist

    x, _ = load_mnist("train")
    xt, _ = load_mnist("test")
    out = {}
    for name, params in {"mlp": {}, "conv": {"arch": "conv"}}.items():
        m = ImageAutoencoder(epochs=2, random_state=0, **params).fit(x[:3000], valid=x[3000:3500])
        out[f"ImageAutoencoder-{name}"] = {
            "image": digest(m.reconstruct(xt[:1000]), m.anomaly_score(xt[:1000])),
            "validation": digest(np.array([h.get("mse", np.nan) for h in m.history_])),
        }
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="write the hashes here (JSON)")
    p.add_argument("--compare", help="compare with this earlier output")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    data = load_movielens("100k", data_dir=args.data_dir, download=False)
    positives = data.binarize(3.5).filter(min_user=5)
    split = strong_generalization_split(positives, 0.1, random_state=98765)
    ratings = holdout_split(data, test_size=0.1, valid_size=0.1, random_state=0)

    implicit_models = {
        "Popularity": lambda: Popularity(),
        "EASE": lambda: EASE(l2=500.0),
        "EASE-float64": lambda: EASE(l2=200.0, dtype="float64"),
        "EDLAE": lambda: EASE(l2=500.0, dropout=0.5),
        "LinearAE": lambda: LinearAE(rank=256, l2=200.0),
        "MultDAE": lambda: MultDAE(epochs=4, patience=2),
        "MultDAE-sampled": lambda: MultDAE(epochs=3, sampled_softmax=300),
        "MultVAE": lambda: MultVAE(epochs=4),
        "MultVAE-noavg": lambda: MultVAE(epochs=3, weight_averaging=None, anneal_steps=100),
        "CDAE": lambda: CDAE(epochs=4),
        "RecVAE": lambda: RecVAE(epochs=2),
        "ImplicitALS": lambda: ImplicitALS(factors=64, iterations=5),
        "ImplicitBPR": lambda: ImplicitBPR(factors=32, iterations=20, num_threads=1),
    }
    explicit_models = {
        "AutoRec-item": lambda: AutoRec(epochs=4),
        "AutoRec-user": lambda: AutoRec(orient="user", epochs=3),
        "AutoRec-lbfgs": lambda: AutoRec(epochs=2, optimizer="lbfgs", lr=1.0),
        "BiasedMF": lambda: BiasedMF(epochs=4),
        "BiasedMF-bias": lambda: BiasedMF(factors=0, epochs=3),
    }
    out = {"_about": {"recae": recae.__version__, "torch": torch.__version__, "numpy": np.__version__,
                      "date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv)}}
    neural_valid = (MultDAE, MultVAE, CDAE, RecVAE)
    fitted = {}
    for name, make in implicit_models.items():
        t0 = time.perf_counter()
        model = make()
        model.fit(split.train, valid=split) if isinstance(model, neural_valid) else model.fit(split.train)
        fitted[name] = model
        out[name] = ranking_hashes(model, split, explicit=False)
        check_reload(model, split, False)
        if name == "MultDAE":  # the item-chunked ranking path of large catalogues, on a small one
            model.item_chunk = 300
            out["MultDAE-chunked"] = ranking_hashes(model, split, explicit=False)
            del model.item_chunk
        print(f"{name:16s} {time.perf_counter() - t0:6.1f}s {out[name]}", flush=True)
    t0 = time.perf_counter()
    blend = Blend.from_models([fitted["EASE"], fitted["LinearAE"], fitted["MultDAE"]], valid=split)
    out["Blend"] = ranking_hashes(blend, split, explicit=False)
    out["Blend"]["weights"] = digest(blend.weights_)
    check_reload(blend, split, False)
    print(f"{'Blend':16s} {time.perf_counter() - t0:6.1f}s {out['Blend']}", flush=True)
    for name, make in explicit_models.items():
        t0 = time.perf_counter()
        model = make().fit(ratings.train, valid=ratings)
        out[name] = ranking_hashes(model, ratings, explicit=True)
        check_reload(model, ratings, True)
        print(f"{name:16s} {time.perf_counter() - t0:6.1f}s {out[name]}", flush=True)
    for name, h in image_hashes().items():
        out[name] = h
        print(f"{name:16s} {h}", flush=True)

    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1, sort_keys=True)
            f.write("\n")
    if args.compare:
        with open(args.compare) as f:
            other = json.load(f)
        diff = sorted(k for k in set(out) | set(other) if k != "_about" and out.get(k) != other.get(k))
        for k in diff:
            print(f"DIFFERS {k}: {other.get(k)} -> {out.get(k)}")
        print("same hashes for every model" if not diff else f"{len(diff)} model(s) differ")
        return 1 if diff else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
