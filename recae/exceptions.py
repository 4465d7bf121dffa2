"""Exception types raised by recae's public API.

Every error recae raises on bad input derives from :class:`RecaeError` and from the
built-in type a caller would otherwise catch (``ValueError``, ``KeyError`` is avoided on
purpose: its ``repr``-quoted message is hard to read).
"""


class RecaeError(Exception):
    """Base class of all recae errors."""


class DataError(RecaeError, ValueError):
    """Input data is malformed: missing columns, non-finite values, empty logs, bad dtypes.

    ``row`` is the 0-based row of the input table where the problem was found, when there
    is one (file loaders turn it into a line number of the file).
    """

    def __init__(self, *args, row: int | None = None):
        super().__init__(*args)
        self.row = row


class ShapeError(DataError):
    """A matrix or array has the wrong shape (e.g. an item×user matrix where user×item was expected)."""


class UnknownIdError(DataError):
    """A raw user or item id is not known to the model or the dataset."""


class NotFittedError(RecaeError, ValueError, AttributeError):
    """A model was used before ``fit`` (or ``load``)."""


class ModelFileError(RecaeError, ValueError):
    """A model file is not a recae model, is corrupt, or was written by a newer format."""


class MemoryBudgetError(RecaeError, MemoryError):
    """An operation would need more memory than the configured budget allows."""


class DatasetNotFoundError(RecaeError, FileNotFoundError):
    """A dataset's files are not in the data directory (and could not be downloaded)."""


class TrainingError(RecaeError, RuntimeError):
    """Training diverged (non-finite loss or scores) or could not continue."""


class ConversionWarning(UserWarning):
    """Input was accepted after a conversion that costs a copy (e.g. a COO or CSC matrix made CSR)."""


class DataWarning(UserWarning):
    """Input was accepted but probably not as meant: most entries dropped, ids ignored, a transposed matrix."""
