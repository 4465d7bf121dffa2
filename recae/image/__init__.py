"""Dense mode: autoencoders on images (reconstruction, compression, denoising, anomaly scores).

>>> from recae.image import ImageAutoencoder, load_mnist
>>> train, _ = load_mnist("train")
>>> model = ImageAutoencoder(arch="conv", latent_dim=32, epochs=10).fit(train)
>>> errors = model.anomaly_score(load_mnist("test")[0])

The names below are imported on first use (``import recae.image`` alone loads nothing
else); plotting (:mod:`recae.image.plots`) needs matplotlib and is imported only when used.
"""

import importlib

#: Public name -> the module defining it, imported on first use.
LAZY = {"ImageAutoencoder": "recae.image.model", "load_mnist": "recae.image.mnist", "load_images": "recae.image.data",
        "as_images": "recae.image.data", "DenseLoader": "recae.image.data"}

__all__ = ["ImageAutoencoder", "load_mnist", "load_images", "as_images", "DenseLoader"]


def __getattr__(name: str):
    if name not in LAZY:
        raise AttributeError(f"module 'recae.image' has no attribute {name!r}")
    value = getattr(importlib.import_module(LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(LAZY))
