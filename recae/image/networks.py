"""The image autoencoders' networks (MLP and convolutional) and their per-image errors."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import distributed
from ..exceptions import ShapeError
from ..models.layers import activation, mlp


def build_autoencoder(arch: str, shape, latent: int, hidden, channels, act: str) -> nn.ModuleDict:
    """``encoder`` (image → code) and ``decoder`` (code → logits) for images of ``shape`` (C, H, W).

    ``"mlp"``: fully connected D → hidden → latent and back. ``"conv"``: stride-2 3×3
    convolutions over ``channels`` → a linear code, mirrored by transposed convolutions.
    """
    c, h, w = shape
    if arch == "mlp":
        dims = [c * h * w, *hidden, latent]
        encoder = nn.Sequential(nn.Flatten(), mlp(dims, act))
        decoder = nn.Sequential(mlp(dims[::-1], act), nn.Unflatten(1, (c, h, w)))
    else:
        chans = [c, *(int(k) for k in channels)]
        down = 2 ** (len(chans) - 1)
        inner = (chans[-1], h // down, w // down)
        enc: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:]):
            enc += [nn.Conv2d(a, b, 3, stride=2, padding=1), activation(act)]
        encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(int(np.prod(inner)), latent))
        dec: list[nn.Module] = [nn.Linear(latent, int(np.prod(inner))), activation(act),
                                nn.Unflatten(1, inner)]
        rev = chans[::-1]
        for i, (a, b) in enumerate(zip(rev[:-1], rev[1:])):
            dec.append(nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1))
            if i < len(rev) - 2:
                dec.append(activation(act))
        decoder = nn.Sequential(*dec)
    return nn.ModuleDict({"encoder": encoder, "decoder": decoder})  # the decoder outputs logits


def per_sample_error(recon: torch.Tensor, x: torch.Tensor, metric: str, logits: torch.Tensor | None = None) -> torch.Tensor:
    """Mean reconstruction error of each image, shape (N,): MSE, binary cross-entropy or L1."""
    dims = tuple(range(1, x.ndim))
    if metric == "mse":
        return ((recon - x) ** 2).mean(dim=dims)
    if metric == "l1":
        return (recon - x).abs().mean(dim=dims)
    if logits is not None:
        return nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").mean(dim=dims)
    return nn.functional.binary_cross_entropy(recon.clamp(1e-7, 1 - 1e-7), x, reduction="none").mean(dim=dims)


def check_conv_size(arch: str, channels, shape) -> None:
    """The conv architecture halves height and width once per layer: they must divide evenly."""
    if arch != "conv":
        return
    step = 2 ** len(channels)
    if shape[1] % step or shape[2] % step:
        raise ShapeError(f"the conv architecture with {len(channels)} stride-2 layers needs a height and width "
                         f"divisible by {step}; got {shape[1]}×{shape[2]} images (crop or pad them, or use arch='mlp')")


def corrupt(x: torch.Tensor, noise: float, noise_type: str, source) -> torch.Tensor:
    """Training input corruption: Gaussian noise clipped to [0, 1], or pixels masked to 0.

    ``source``: a ``torch.Generator``, or under torchrun this rank's slice of the global batch's
    noise (:class:`recae.distributed.BatchSlice`), so the ranks' generators stay in step.
    """
    if not noise:
        return x
    if noise_type == "masking":
        return x * (distributed.rand(x.shape, source, x.device) >= noise)
    return (x + distributed.randn(x.shape, source, x.device) * noise).clamp(0.0, 1.0)
