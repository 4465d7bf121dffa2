"""``recae demo``: EASE on MovieLens 100K (or the synthetic log), top 10 for a user, against popularity."""

from __future__ import annotations

import argparse
import os

import pandas as pd

from ..data import strong_generalization_split
from ..datasets import find_dataset_dir, load_movielens, load_movielens_items, registry
from ..datasets.paths import candidate_dirs
from ..evaluate import evaluate
from ..exceptions import RecaeError
from ..models import EASE, Popularity
from .common import print_table

DEMO_EPILOG = """examples:
  recae demo                                   MovieLens 100K if found, else a seeded synthetic log
  recae demo --data-dir ../shared/data         look for ml-100k/u.data there
"""


def add_parser(sub) -> None:
    d = sub.add_parser("demo", help="fit EASE on MovieLens 100K (or a synthetic log), recommend, compare with popularity",
                       epilog=DEMO_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--data-dir", help="folder holding ml-100k/ (default: $RECAE_DATA_DIR, then ./datasets)")
    d.add_argument("--seed", type=int, default=98765, help="user split seed")
    d.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        raise RecaeError(f"--data-dir {args.data_dir!r} is not a folder (leave it out to use $RECAE_DATA_DIR, "
                         "then ./datasets, else a synthetic log)")
    titles = None
    folder = find_dataset_dir("ml-100k", ["u.data"], args.data_dir)
    if folder is not None:  # ratings and titles from the one copy found
        data = load_movielens("100k", data_dir=folder.parent, download=False)
        if (folder / "u.item").is_file():
            titles = load_movielens_items("100k", data_dir=folder.parent, download=False).set_index("item")["title"]
        print(f"Dataset: MovieLens 100K from {folder} ({data.n_users} users, {data.n_items} items, {data.nnz} ratings"
              + ("" if titles is not None else "; no u.item beside u.data, so no titles") + ")")
    else:
        looked = ", ".join(str(d / "ml-100k") for d in candidate_dirs(args.data_dir))
        data, _ = registry.load("synthetic", random_state=0)
        print(f"Dataset: synthetic log (MovieLens 100K's u.data not found in {looked}; "
              f"{data.n_users} users, {data.n_items} items, {data.nnz} interactions)")
    positives = data.binarize(3.5).filter(min_user=5)
    split = strong_generalization_split(positives, 0.1, random_state=args.seed)
    print(f"Protocol: strong generalization, {split.test_fold_in.n_users} test users held out, ratings >= 4 as positives")

    ease = EASE().fit(split.train)
    user = split.train.user_ids[0]
    ids, scores = ease.recommend(user, n=10)
    print(f"\nTop 10 for training user {user} (EASE, l2={ease.l2}):")
    for rank, (item, score) in enumerate(zip(ids, scores), 1):
        label = titles.get(item, "") if titles is not None else ""
        print(f"  {rank:2d}. item {item!s:>6}  score {score:7.4f}  {label}")
    rows = []
    for name, model in (("Popularity", Popularity().fit(split.train)), ("EASE", ease)):
        t = evaluate(model, split, k=(20, 50, 100), metrics=("ndcg", "truncated_recall"))
        rows.append({"model": name, "NDCG@100": t.loc["ndcg@100", "mean"], "± se": t.loc["ndcg@100", "se"],
                     "trunc. Recall@20": t.loc["truncated_recall@20", "mean"],
                     "trunc. Recall@50": t.loc["truncated_recall@50", "mean"]})
    print("\nTest quality (± se: standard error over test users; trunc. Recall@k = hits / min(k, |target|)):")
    print_table(pd.DataFrame(rows).set_index("model"))
    return 0
