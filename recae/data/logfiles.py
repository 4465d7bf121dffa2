"""Reading an interaction-log file (delimited text or Parquet) into a DataFrame.

The one place where recae calls :func:`pandas.read_csv` or :func:`pandas.read_parquet` on
a user's log: :meth:`Interactions.from_csv <recae.data.Interactions.from_csv>` and
``from_parquet`` read through it, and so do :func:`recae.datasets.load_log` and the
``recae`` command. Every failure is a :class:`~recae.exceptions.DataError` naming the file
(and, where it can be known, the line).
"""

from __future__ import annotations

import contextlib
import csv
import os
import re

import pandas as pd

from ..exceptions import DataError

#: read_csv options under which data row ``i`` can be traced back to a line of the file.
TRACEABLE_OPTIONS = {"sep", "delimiter", "encoding", "dtype", "usecols", "engine", "quotechar", "header"}


def parser_message(path: str, exc: Exception, kwargs: dict) -> str:
    """pandas' parser message, with the line number when the engine did not give one.

    The C and python engines name the line; pyarrow only quotes the row, so re-parse with the
    C engine (on the error path only) to find it.
    """
    msg = str(exc).strip()
    if "line" in msg.lower() or kwargs.get("engine") != "pyarrow":
        return msg
    try:
        pd.read_csv(path, **{**kwargs, "engine": "c"})
    except pd.errors.ParserError as exc2:
        return f"{msg} ({str(exc2).strip()})"
    except Exception:
        pass
    return msg


def line_of_row(path: str, row: int, kwargs: dict) -> int | None:
    """1-based line of the file where data row ``row`` starts, or None when that cannot be known.

    Only for plain files (one header line, single-character separator, no skipped or comment
    lines): pandas then skips blank lines only, the ``csv`` module follows the same quoting
    rules and ``line_num`` counts physical lines (quoted fields may span several).
    """
    sep = kwargs.get("sep", kwargs.get("delimiter", ","))
    if set(kwargs) - TRACEABLE_OPTIONS or not isinstance(sep, str) or len(sep) != 1 \
            or kwargs.get("header", "infer") not in ("infer", 0):
        return None
    try:
        with open(path, newline="", encoding=kwargs.get("encoding") or "utf-8") as f:
            reader = csv.reader(f, delimiter=sep, quotechar=kwargs.get("quotechar", '"'))
            seen = -1  # the header
            for fields in reader:
                if not fields:
                    continue  # blank line, skipped by pandas too
                if seen == row:
                    return reader.line_num - "".join(fields).count("\n")
                seen += 1
    except (OSError, UnicodeError, LookupError, csv.Error):
        return None
    return None


def read_csv_frame(path: str, read_csv_kwargs: dict) -> pd.DataFrame:
    """:func:`pandas.read_csv` of an existing file, every failure a DataError naming it."""
    if not os.path.exists(path):
        raise DataError(f"no such file: {path!r}")
    if os.path.isdir(path):
        raise DataError(f"{path!r} is a directory, not a file")
    encoding = read_csv_kwargs.get("encoding") or "utf-8"
    read_csv_kwargs = _separator(read_csv_kwargs)
    try:
        df = pd.read_csv(path, **read_csv_kwargs)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path!r} holds no data ({exc})") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"could not parse {path!r}: {parser_message(path, exc, read_csv_kwargs)}") from None
    except UnicodeError as exc:
        where = f" ({exc.reason} at byte {exc.start})" if isinstance(exc, UnicodeDecodeError) else f" ({exc})"
        raise DataError(f"{path!r} is not valid {encoding} text{where}; pass encoding='latin-1' or the "
                        "file's encoding") from None
    except LookupError as exc:  # an encoding name Python does not know
        raise DataError(f"unknown encoding {encoding!r} ({exc}); pass a codec name such as 'utf-8' or "
                        "'latin-1'") from None
    except OSError as exc:
        raise DataError(f"could not read {path!r}: {exc}") from None
    except (ValueError, TypeError) as exc:  # a dtype= the values do not fit, an option read_csv does not take
        raise DataError(f"could not read {path!r}: {exc}") from None
    names = [str(c) for c in df.columns]
    repeated = sorted({m.group(1) for c in names if (m := re.fullmatch(r"(.+)\.\d+", c)) and m.group(1) in names})
    if repeated and "names" not in read_csv_kwargs:  # pandas renamed the second one 'user.1' and went on
        raise DataError(f"{path!r}: the header names the column(s) {repeated} more than once; which one holds the "
                        "data is ambiguous, so rename the others")
    if "index_col" not in read_csv_kwargs and not df.index.equals(pd.RangeIndex(len(df))):
        # pandas makes the first field the row index when rows have one more field than the header
        line = line_of_row(path, 0, read_csv_kwargs)
        raise DataError(f"{path!r}: the data rows have more fields than the header's {len(df.columns)} "
                        f"({list(map(str, df.columns))}){f', from line {line}' if line else ''}; every column would "
                        "be shifted by one. Name every column in the header (or pass names=[...])")
    return df


def _separator(kwargs: dict) -> dict:
    """Refuse an empty separator; read a longer one (a regular expression to pandas) without its warning.

    pandas' C engine takes only one character; for more it falls back to the python engine with
    a warning, which naming that engine avoids (``'::'`` in MovieLens 1M's ``.dat`` files).
    """
    for key in ("sep", "delimiter"):
        sep = kwargs.get(key)
        if sep is None:
            continue
        if not isinstance(sep, str) or not sep:
            raise DataError(f"{key} must be a non-empty string, the field separator (such as ',' or '\\t'); "
                            f"got {sep!r}")
        if len(sep) > 1 and "engine" not in kwargs and sep != "\\s+":
            kwargs = {**kwargs, "engine": "python"}
    return kwargs


def exact_ids(df: pd.DataFrame, columns) -> pd.DataFrame:
    """Id columns read as text, made numbers as pandas would, unless that would merge ids.

    pandas reads ``01`` and ``1`` both as the number 1, so two users become one, and ``00095``
    comes back as 95; ``1.0``, ``+1`` and ``1e0`` would be 1 too, and a 17-digit id passes through
    a float. A column becomes integers only when every id is an integer written plainly (no
    leading zero, sign or exponent, at most 18 digits, spaces around it allowed); otherwise every
    id stays exactly as written.
    """
    for col in columns:
        if col not in df or not pd.api.types.is_string_dtype(df[col]) or df[col].isna().any():
            continue  # not text, or missing ids, which the column check names
        stripped = df[col].str.strip()
        if stripped.str.fullmatch(r"0|-?[1-9][0-9]{0,17}").all():
            df[col] = stripped.astype("int64")
    return df


@contextlib.contextmanager
def rows_as_lines(path: str, read_csv_kwargs: dict):
    """Re-raise a DataError about data row ``i`` of a text log as one naming the file and line."""
    try:
        yield
    except DataError as exc:
        line = None if exc.row is None else line_of_row(path, exc.row, read_csv_kwargs)
        if line is None:
            raise
        raise DataError(f"{path}, line {line}: {exc}", row=exc.row) from None


def read_parquet_frame(path: str, columns: list) -> pd.DataFrame:
    """The ``columns`` of a Parquet log (needs ``pyarrow``); all of them when some are missing.

    Reading every column when the wanted ones are not all there lets the column check name
    what is missing and what the file has. A missing ``pyarrow`` raises ImportError.
    """
    if not os.path.exists(path):
        raise DataError(f"no such file: {path!r}")
    try:
        return pd.read_parquet(path, columns=columns)
    except ImportError:
        raise
    except Exception:
        try:
            return pd.read_parquet(path)
        except ImportError:
            raise
        except Exception as exc:
            raise DataError(f"could not read {path!r} as Parquet: {exc}") from None
