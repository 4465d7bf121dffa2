"""``recae tune`` (``recae.tune``): the best model and setting for one's own data within a budget (Optuna search).

>>> from recae import tune
>>> result = tune(positives, budget="20m")          # or budget=50 trials
>>> result.model.recommend(user_id, n=10); result.save("best.recae")
"""

from .api import TuneResult, parse_budget, tune
from .report import markdown, write

__all__ = ["tune", "TuneResult", "parse_budget", "write", "markdown"]
