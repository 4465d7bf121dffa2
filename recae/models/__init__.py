"""recae models; every one follows :class:`recae.models.base.Recommender`."""

from .base import MODEL_REGISTRY, Recommender
from .als import ImplicitALS
from .autorec import AutoRec
from .biased_mf import BiasedMF
from .blend import Blend
from .bpr import ImplicitBPR
from .cdae import CDAE
from .dae import MultDAE
from .ease import EASE
from .factor_ease import FactorEASE
from .linear_ae import LinearAE
from .peers import ELSA, SANSA
from .popularity import Popularity
from .recvae import RecVAE
from .sparse_ease import SparseEASE
from .vae import MultVAE

__all__ = ["Recommender", "MODEL_REGISTRY", "AutoRec", "BiasedMF", "EASE", "FactorEASE", "LinearAE", "Popularity", "MultDAE", "MultVAE", "CDAE", "RecVAE", "SparseEASE", "Blend", "ImplicitALS", "ImplicitBPR"]
