"""Argument checks shared by the public entry points.

Each check turns a wrong-typed or out-of-range argument into a documented recae exception
whose message names the expected and the actual value, instead of letting it reach NumPy
or pandas and come back as a bare ``TypeError``/``IndexError`` from deep inside them.

This module imports nothing else from :mod:`recae.data`, so every data module can use it;
the check that needs the :class:`~recae.data.Interactions` class,
:func:`~recae.data.interactions.check_interactions`, lives with that class.
"""

from __future__ import annotations

import math
import os
from numbers import Integral, Real

import numpy as np

from ..exceptions import DataError, MemoryBudgetError


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def as_path(path, what: str = "path", error: type = DataError) -> str:
    """``os.fspath(path)`` or ``error`` naming the type that was passed instead."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    try:
        out = os.fspath(path)
    except TypeError:
        raise error(f"{what} must be a str or os.PathLike file path; got {type(path).__name__} {_show(path)}") from None
    if not out:
        raise error(f"{what} must be a non-empty file path; got ''")
    return out


def check_choice(value, name: str, choices) -> str:
    """``value`` when it is one of the string ``choices``; DataError listing them otherwise."""
    if not isinstance(value, str) or value not in choices:
        raise DataError(f"{name} must be one of {list(choices)}; got {_show(value)}")
    return value


def check_int(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """A Python int from an integer (not bool, not float) within ``[minimum, maximum]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise DataError(f"{name} must be an integer; got {type(value).__name__} {_show(value)}")
    value = int(value)
    if minimum is not None and value < minimum or maximum is not None and value > maximum:
        low = "-inf" if minimum is None else minimum
        high = "inf" if maximum is None else maximum
        raise DataError(f"{name} must be an integer in [{low}, {high}]; got {value}")
    return value


def check_real(value, name: str, low: float | None = None, high: float | None = None, *,
               low_open: bool = False, high_open: bool = False) -> float:
    """A finite float from a real number (not bool) in the interval given by the bounds."""
    try:
        finite = not isinstance(value, (bool, np.bool_)) and isinstance(value, Real) and math.isfinite(float(value))
    except OverflowError:  # an int past float64
        finite = False
    if not finite:
        raise DataError(f"{name} must be a finite number; got {type(value).__name__} {_show(value)}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        interval = (("(" if low_open else "[") + ("-inf" if low is None else f"{low:g}") + ", "
                    + ("inf" if high is None else f"{high:g}") + (")" if high_open else "]"))
        raise DataError(f"{name} must lie in {interval}; got {value:g}")
    return value


def as_array(values, what: str, dtype=None) -> np.ndarray:
    """``np.asarray`` that reports ragged or unconvertible input as a DataError."""
    try:
        return np.asarray(values, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(f"{what} must be a flat sequence of scalars; got {type(values).__name__} {_show(values)} "
                        f"({exc})") from None


def as_positions(values, what: str) -> np.ndarray:
    """A 1-D int64 array of integer positions (callers check the bounds)."""
    arr = as_array(values, what)
    if arr.ndim != 1:
        raise DataError(f"{what} must be a 1-D array of positions; got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iu":
        raise DataError(f"{what} must hold integer positions; got dtype {arr.dtype} (e.g. {arr[:3].tolist()})")
    if arr.dtype.kind == "u" and arr.max() > np.iinfo(np.int64).max:  # would wrap to a negative position
        raise DataError(f"{what} must be positions below 2**63; got {int(arr.max())}")
    return arr.astype(np.int64)


def make_rng(random_state, name: str = "random_state") -> np.random.Generator:
    """``np.random.default_rng(random_state)`` for None, a non-negative int, a SeedSequence or a Generator."""
    try:
        return np.random.default_rng(random_state)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be None, a non-negative integer or a numpy Generator; got "
                        f"{type(random_state).__name__} {_show(random_state)} ({exc})") from None


def check_fits_in_memory(need: int, what: str, advice: str) -> None:
    """Refuse, before allocating, work that needs more bytes than this machine's physical memory.

    Raises
    ------
    MemoryBudgetError
        Naming ``what``, the GiB it needs and has, and ``advice``.
    """
    try:
        have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not a POSIX system: nothing to check against
        return
    if need > have:
        raise MemoryBudgetError(f"{what} needs about {need / 2**30:.1f} GiB, over this machine's {have / 2**30:.1f} GiB; "
                                f"{advice}")
