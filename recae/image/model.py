"""Autoencoders for dense images: reconstruction, compression, denoising, anomaly scores.

Hinton & Salakhutdinov, "Reducing the dimensionality of data with neural networks",
Science 313, 2006 (deep autoencoders on MNIST); Vincent, Larochelle, Bengio, Manzagol,
"Extracting and composing robust features with denoising autoencoders", ICML 2008 (input
corruption). The anomaly score is the per-image reconstruction error: a model trained on
one kind of image reconstructs other kinds worse.

The model runs on the same trainer as the recommenders (:class:`recae.train.Trainer`): one
seeded generator for shuffling and noise, early stopping on validation MSE, progress bars,
crash-safe checkpoints and ``resume=True``. It shares the recommenders' parameter contract
(:class:`~recae.models.params.Params`) and training settings (:class:`~recae.models.trained.Trained`),
and its files open with ``recae.load``.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from ..anomaly import choose_threshold
from ..device import resolve_device
from ..exceptions import DataError, ModelFileError, NotFittedError, ShapeError
from ..io import write_model_file
from ..models.layers import activation
from ..models.params import Params, file_device, file_params, store_params
from ..models.trained import Trained, positive_int
from ..train import TrainSpec
from .data import DenseLoader, as_images, restore_layout
from .networks import build_autoencoder, check_conv_size, corrupt, per_sample_error

logger = logging.getLogger(__name__)

ARCHS = ("mlp", "conv")
LOSSES = ("mse", "bce")
NOISE_TYPES = ("gaussian", "masking")
ERRORS = ("mse", "bce", "l1")

#: The classic tutorial widths (784→128→64→12→3); those not wider than the code are dropped.
CLASSIC_HIDDEN = (128, 64, 12)

_CHUNK = 2048  # images per inference batch


class ImageAutoencoder(Trained, Params):
    """An MLP or convolutional autoencoder for images with pixels in [0, 1].

    Parameters
    ----------
    arch : {"mlp", "conv"}, default "mlp"
        ``"mlp"``: fully connected D → hidden_dims → latent_dim and back.
        ``"conv"``: stride-2 3×3 convolutions (``channels``) → linear code, mirrored by
        transposed convolutions; image height and width must be divisible by 2**len(channels).
    latent_dim : int, default 32
        Size of the code.
    hidden_dims : tuple of int, optional
        MLP layer widths. Default: the classic 128, 64, 12, keeping those wider than
        ``latent_dim`` (784→128→64→12→3 for a 3-d code, 784→128→64→32 for 32).
    channels : tuple of int, default (16, 32)
        Convolution channels (conv only).
    activation : str, default "relu"
        Hidden activation; the code is linear and the output a sigmoid.
    loss : {"mse", "bce"}, default "mse"
        Squared error or binary cross-entropy between output and clean input.
    noise : float, default 0.0
        Input corruption while training (denoising): the Gaussian standard deviation, or
        the masking probability.
    noise_type : {"gaussian", "masking"}, default "gaussian"
        Gaussian noise clipped to [0, 1], or pixels set to 0 at random.
    code_l1 : float, default 0.0
        L1 penalty on the code activations (a sparse autoencoder).
    epochs, batch_size, lr, optimizer, weight_decay, l1
        Training settings: ``weight_decay`` is the optimizer's L2 penalty, ``l1`` an L1
        penalty on the weights. Optimizers: adam, adamw, sgd, rmsprop.
    patience : int or None, default None
        Early stopping on validation MSE (needs ``fit(valid=...)``); the best epoch's weights
        are kept whenever validation data is given.
    amp : {"auto", True, False}
        bfloat16 autocast on CUDA for training.
    device : {"auto", "cpu", "cuda", "cuda:N"}, default "auto"
    random_state : int or None, default 0
    show_progress : bool or None, default None
        A progress bar; None shows one when stderr is a terminal (tqdm's rule).

    Attributes
    ----------
    image_shape_ : tuple (C, H, W)
    module_ : torch.nn.ModuleDict with ``encoder`` and ``decoder``
    history_ : list of dict (epoch, loss, mse on validation when given, seconds)
    best_epoch_ : int
    threshold_ : float or None
        Set by :meth:`fit_threshold`.
    """

    def __init__(self, arch="mlp", latent_dim=32, hidden_dims=None, channels=(16, 32), activation="relu", loss="mse",
                 noise=0.0, noise_type="gaussian", code_l1=0.0, epochs=20, batch_size=128, lr=1e-3, optimizer="adam",
                 weight_decay=0.0, l1=0.0, patience=None, amp="auto", device="auto", random_state=0,
                 show_progress=None):
        store_params(self, locals())

    # shared with the recommenders, not forked: parameters, seeding, training settings, AMP, the L1 penalty
    _fitted_attr = "module_"
    model_kind = "image model"
    _fit_call = "fit(images)"
    tuple_params = ("hidden_dims", "channels")
    own_checks = ("hidden_dims",)  # None: widths chosen from the image size
    fit_options = ("checkpoint_dir", "resume", "callbacks")

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        if self.arch not in ARCHS:
            raise DataError(f"arch must be one of {ARCHS}; got {self.arch!r}")
        if self.loss not in LOSSES:
            raise DataError(f"loss must be one of {LOSSES}; got {self.loss!r}")
        if self.noise_type not in NOISE_TYPES:
            raise DataError(f"noise_type must be one of {NOISE_TYPES}; got {self.noise_type!r}")
        self._check_training_settings()
        if not positive_int(self.latent_dim):
            raise DataError(f"latent_dim must be a positive integer; got {self.latent_dim!r}")
        for name in ("hidden_dims", "channels"):
            value = getattr(self, name)
            if value is None and name == "hidden_dims":
                continue
            if not isinstance(value, (tuple, list)) or not value or not all(positive_int(v) for v in value):
                raise DataError(f"{name} must be a non-empty tuple of positive integers; got {value!r}")
        for name in ("noise", "code_l1", "weight_decay", "l1"):
            value = getattr(self, name)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not (np.isfinite(value) and value >= 0):
                raise DataError(f"{name} must be a finite number >= 0; got {value!r}")
        if self.noise_type == "masking" and self.noise >= 1:
            raise DataError(f"a masking noise is a probability below 1; got {self.noise!r}")
        activation(self.activation)  # raises on an unknown name

    # ------------------------------------------------------------------ modules
    def _hidden(self) -> tuple[int, ...]:
        if self.hidden_dims is not None:
            return tuple(int(h) for h in self.hidden_dims)
        return tuple(h for h in CLASSIC_HIDDEN if h > int(self.latent_dim))

    def _build(self, shape) -> nn.Module:
        return build_autoencoder(self.arch, shape, int(self.latent_dim), self._hidden(), self.channels,
                                 self.activation)

    # ------------------------------------------------------------------ training
    def _loss(self, ctx, x: torch.Tensor, rows) -> torch.Tensor:
        z = self.module_["encoder"](corrupt(x, self.noise, self.noise_type, ctx.noise))
        logits = self.module_["decoder"](z).float()
        if self.loss == "bce":
            loss = nn.functional.binary_cross_entropy_with_logits(logits, x)
        else:
            loss = nn.functional.mse_loss(torch.sigmoid(logits), x)
        if self.code_l1:
            loss = loss + self.code_l1 * z.float().abs().mean()
        return loss

    def fit(self, images, *, valid=None, checkpoint_dir=None, resume=False, callbacks=()) -> "ImageAutoencoder":
        """Train on images.

        Parameters
        ----------
        images : array-like of shape (N, H, W), (N, C, H, W) or (N, H*W)
            Pixels in [0, 1]; e.g. MNIST as (N, 28, 28), (N, 1, 28, 28) or (N, 784).
        valid : array-like of the same image size, optional
            Validation images: the weights of the epoch with the lowest validation MSE are
            kept, and ``patience`` stops training early.
        checkpoint_dir : str or os.PathLike, optional
            Write a checkpoint after every epoch; ``resume=True`` continues from it.
        callbacks : iterable of callables ``cb(model, epoch, logs) -> bool``
            Called after each epoch; returning True stops training.

        Returns
        -------
        self
        """
        self._check_params()
        x, _ = as_images(images)
        check_conv_size(self.arch, self.channels, x.shape[1:])
        v = as_images(valid, x.shape[1:], "validation images")[0] if valid is not None else None
        self._forget()
        try:
            self.device_ = resolve_device(self.device)
            self.image_shape_ = tuple(int(s) for s in x.shape[1:])
            self.threshold_ = None
            valid_t = torch.from_numpy(v).to(self.device_) if v is not None else None
            # a resumed run scored on other validation images (or none) would pick among incomparable scores
            seen = (np.asarray(x.shape, np.int64), x) + (() if v is None else (np.asarray(v.shape, np.int64), v))

            def spec(trainer) -> TrainSpec:
                return self._spec(
                    DenseLoader(torch.from_numpy(x), self.device_), self._fingerprint(*seen),
                    (lambda: float(self._errors(valid_t, "mse").mean())) if valid_t is not None else None,
                    metric="mse", higher_is_better=False)

            self._train(self.image_shape_, spec, checkpoint_dir=checkpoint_dir, resume=resume, callbacks=callbacks)
            self._note_fitted_params()
        except BaseException:
            self._forget()  # a failed fit leaves no half-fitted model behind
            raise
        return self

    # ------------------------------------------------------------------ inference
    def _input(self, images, what="images") -> tuple[torch.Tensor, str]:
        self._check_fitted()
        x, layout = as_images(images, self.image_shape_, what)
        return torch.from_numpy(x), layout

    @torch.no_grad()
    def _chunks(self, x: torch.Tensor, fn) -> torch.Tensor:
        self.module_.eval()
        out = [fn(x[i:i + _CHUNK].to(self.device_)).float().cpu() for i in range(0, len(x), _CHUNK)]
        return torch.cat(out)

    def _errors(self, x: torch.Tensor, metric: str) -> torch.Tensor:
        def err(batch):
            logits = self.module_["decoder"](self.module_["encoder"](batch)).float()
            return per_sample_error(torch.sigmoid(logits), batch, metric, logits)

        return self._chunks(x, err)

    def encode(self, images) -> np.ndarray:
        """Codes of images.

        Parameters
        ----------
        images : array-like of shape (N, H, W), (N, C, H, W) or (N, D), the fitted size

        Returns
        -------
        ndarray of float32, shape (N, latent_dim)
        """
        x, _ = self._input(images)
        return self._chunks(x, self.module_["encoder"]).numpy()

    def decode(self, codes) -> np.ndarray:
        """Images from codes.

        Parameters
        ----------
        codes : array-like of shape (N, latent_dim)

        Returns
        -------
        ndarray of float32 in [0, 1], shape (N, H, W) for grey images, else (N, C, H, W)
        """
        self._check_fitted()
        try:
            z = np.asarray(codes, dtype=np.float32) if not torch.is_tensor(codes) else codes.detach().cpu().float().numpy()
        except (TypeError, ValueError) as exc:
            raise DataError(f"codes must be numbers of shape (N, {self.latent_dim}); got {type(codes).__name__} ({exc})") \
                from None
        if z.ndim != 2 or z.shape[1] != int(self.latent_dim):
            raise ShapeError(f"codes must have shape (N, {self.latent_dim}); got {z.shape}")
        if not np.all(np.isfinite(z)):
            raise DataError("codes hold NaN or infinite values")
        out = self._chunks(torch.from_numpy(z), lambda b: torch.sigmoid(self.module_["decoder"](b).float())).numpy()
        return out[:, 0] if out.shape[1] == 1 else out

    def reconstruct(self, images) -> np.ndarray:
        """Decoded codes of images, in the input's layout.

        Parameters
        ----------
        images : array-like of shape (N, H, W), (N, C, H, W) or (N, D), the fitted size

        Returns
        -------
        ndarray of float32 in [0, 1], the shape of ``images``
        """
        x, layout = self._input(images)
        out = self._chunks(x, lambda b: torch.sigmoid(self.module_["decoder"](self.module_["encoder"](b)).float()))
        return restore_layout(out.numpy(), layout)

    def anomaly_score(self, images, metric: str = "mse") -> np.ndarray:
        """Per-image reconstruction error: higher means less like the training images.

        Parameters
        ----------
        images : array-like of shape (N, H, W), (N, C, H, W) or (N, D), the fitted size
        metric : {"mse", "bce", "l1"}, default "mse"
            Mean squared error, binary cross-entropy or mean absolute error over pixels.

        Returns
        -------
        ndarray of float32, shape (N,)
        """
        if metric not in ERRORS:
            raise DataError(f"metric must be one of {ERRORS}; got {metric!r}")
        x, _ = self._input(images)
        return self._errors(x, metric).numpy()

    def fit_threshold(self, images, labels=None, *, max_false_positive_rate: float = 0.01,
                      metric: str = "mse") -> "ImageAutoencoder":
        """Choose ``threshold_`` from validation images (see :func:`recae.anomaly.choose_threshold`).

        Parameters
        ----------
        images : array-like, the fitted size
            Normal validation images (``labels=None``), or a labelled mix.
        labels : array-like of bool of shape (N,), optional
            True for anomalies; the threshold then maximises F1.
        max_false_positive_rate : float, default 0.01
            Without labels: the share of normal images allowed above the threshold.

        Returns
        -------
        self
        """
        scores = self.anomaly_score(images, metric)
        self.threshold_ = choose_threshold(scores, labels, max_false_positive_rate=max_false_positive_rate)
        self.threshold_metric_ = metric
        return self

    def predict_anomaly(self, images) -> np.ndarray:
        """True for images whose score exceeds ``threshold_``; shape (N,)."""
        self._check_fitted()
        if getattr(self, "threshold_", None) is None:
            raise NotFittedError("no anomaly threshold yet; call fit_threshold(validation_images) first")
        return self.anomaly_score(images, getattr(self, "threshold_metric_", "mse")) > self.threshold_

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write weights (safetensors) and JSON metadata to one file; never pickles."""
        self._check_fitted()
        meta = {"class": type(self).__name__, "params": self._params_to_save(), "image_shape": list(self.image_shape_),
                "threshold": self.threshold_, "threshold_metric": getattr(self, "threshold_metric_", "mse"),
                "best_epoch": self.best_epoch_, "history": self.history_}
        write_model_file(path, meta, {f"state.{k}": v for k, v in self.module_.state_dict().items()}, kind="image")

    @classmethod
    def from_file(cls, meta: dict, tensors: dict, device: str | None = None, where: str = "") -> "ImageAutoencoder":
        """Rebuild a model from a parsed model file (see :func:`recae.io.read_model_file`)."""
        model = cls(**file_params(cls, meta, device, where))
        model.device_ = file_device(model, where)
        try:
            model._restore(meta, {k[len("state."):]: v.to(model.device_) for k, v in tensors.items()
                                  if k.startswith("state.")})
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise ModelFileError(f"{where!r} is an incomplete or inconsistent image model file "
                                 f"({type(exc).__name__}: {exc})") from None
        return model

    def _restore(self, meta: dict, state: dict) -> None:
        self.image_shape_ = tuple(int(s) for s in meta["image_shape"])
        self._load_module(self.image_shape_, state)
        self.threshold_ = meta.get("threshold")
        self.threshold_metric_ = meta.get("threshold_metric", "mse")
        self.best_epoch_ = meta.get("best_epoch")
        self.history_ = meta.get("history", [])
        self._note_fitted_params()
