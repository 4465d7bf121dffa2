"""Building blocks of the neural models: sparse-input layers, MLPs, noise drawn from one generator."""

from __future__ import annotations

import torch
from torch import nn

from .. import distributed
from ..exceptions import DataError


def activation(name: str) -> nn.Module:
    """``nn.Module`` for ``"tanh"``, ``"relu"``, ``"sigmoid"``, ``"selu"``, ``"swish"``/``"silu"``, ``"identity"``."""
    table = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "selu": nn.SELU, "swish": nn.SiLU,
             "silu": nn.SiLU, "identity": nn.Identity}
    if not isinstance(name, str) or name not in table:
        raise DataError(f"activation must be one of {sorted(table)}; got {name!r}")
    return table[name]()


def dropout(x: torch.Tensor, p: float, generator) -> torch.Tensor:
    """Inverted dropout drawing from ``generator`` (``F.dropout`` would use the global RNG).

    ``generator`` may also be a :class:`recae.distributed.BatchSlice` (a rank's rows of a
    global batch), whose mask is this rank's rows of the global batch's mask.
    """
    if p <= 0 or generator is None:
        return x
    keep = distributed.rand(x.shape, generator, x.device) >= p
    return x * keep / (1.0 - p)


def gaussian_like(x: torch.Tensor, generator) -> torch.Tensor:
    """Standard normal noise shaped like ``x`` from a generator or a ``BatchSlice``."""
    return distributed.randn(x.shape, generator, x.device)


class SparseInputLinear(nn.Module):
    """``x @ W + b`` for mostly-zero input rows, computed over the nonzeros only.

    Interaction rows are ~97% zeros, so the first layer runs as a weighted ``embedding_bag``
    (gather the rows of W for each nonzero, scale, sum per row): the same result as a dense
    matmul at a fraction of the work, forward and backward. Dense inputs fall back to matmul.

    Parameters
    ----------
    in_features, out_features : int
    """

    #: Above this share of nonzeros a dense matmul is cheaper than the gather.
    max_density = 0.25

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = x.nonzero(as_tuple=True)
        if len(rows) > self.max_density * x.numel():
            return x @ self.weight.to(x.dtype) + self.bias
        counts = torch.bincount(rows, minlength=x.shape[0])
        offsets = torch.cumsum(counts, 0) - counts
        out = nn.functional.embedding_bag(cols, self.weight, offsets, mode="sum",
                                          per_sample_weights=x[rows, cols].float())
        return out + self.bias


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def mlp(sizes, act: str, last_act: bool = False, sparse_input: bool = False) -> nn.Sequential:
    """Linear layers with activations between them; the first reads sparse rows when asked."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(SparseInputLinear(a, b) if sparse_input and i == 0 else nn.Linear(a, b))
        if i < len(sizes) - 2 or last_act:
            layers.append(activation(act))
    return nn.Sequential(*layers)


def init_weights(module: nn.Module) -> None:
    """Xavier-uniform weights and small normal biases, as in the reference implementation."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, SparseInputLinear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.normal_(m.bias, std=0.001)
