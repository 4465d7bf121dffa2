"""Dense mode: autoencoders on images (reconstruction, compression, denoising, anomaly scores).

>>> from recae.image import ImageAutoencoder, load_mnist
>>> train, _ = load_mnist("train")
>>> model = ImageAutoencoder(arch="conv", latent_dim=32, epochs=10).fit(train)
>>> errors = model.anomaly_score(load_mnist("test")[0])

Plotting (:mod:`recae.image.plots`) needs matplotlib and is imported only when used.
"""

from .data import DenseLoader, as_images, load_images
from .mnist import load_mnist
from .model import ImageAutoencoder

__all__ = ["ImageAutoencoder", "load_mnist", "load_images", "as_images", "DenseLoader"]
