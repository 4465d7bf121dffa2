"""`recae bench`: recae's models against matrix factorization on the same splits, tuned alike.

>>> from recae.bench import load_dataset, run_bench, write
>>> result = run_bench(load_dataset("ml-100k"), protocol="strong", seeds=3, budget=4)
>>> write(result, "bench-results", "ml-100k_strong", command="...")
"""

from .protocols import DATASETS, PROTOCOLS, load_dataset, make_split, seed_list
from .report import console_table, markdown, write
from .runner import BenchResult, load_result, run_bench
from .spaces import DEFAULT_MODELS, MODELS, SPACES, trials

__all__ = ["run_bench", "BenchResult", "load_result", "load_dataset", "make_split", "seed_list", "write", "console_table",
           "markdown", "trials", "SPACES", "MODELS", "DEFAULT_MODELS", "DATASETS", "PROTOCOLS"]
