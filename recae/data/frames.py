"""From a pandas DataFrame of interactions (one row each) to the arrays of an Interactions.

:meth:`Interactions.from_pandas <recae.data.Interactions.from_pandas>` is
:func:`check_frame` + :func:`frame_to_csr`; the column checks name the file row of a bad
value (``DataError.row``), which the file readers turn into a line number.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import warnings

import numpy as np
import pandas as pd

from ..exceptions import DataError, DataWarning
from .dates import date_objects, dates_from_text
from .ids import normalize_id_column, plain
from .sparse import build_csr
from .validate import check_choice

logger = logging.getLogger(__name__)

#: How repeated (user, item) rows may be resolved (the ``duplicates=`` of from_pandas).
DUPLICATE_RULES = ("last", "sum", "first", "raise")
#: Epoch seconds of 3000-01-01: later numeric timestamps are likely milliseconds (or microseconds).
EPOCH_YEAR_3000 = 32_503_680_000.0


def column_hint(col, columns: list) -> str:
    """A likely intended column: a byte-order mark, a case difference or a close spelling."""
    names = [c for c in columns if isinstance(c, str)]
    if any(c.startswith("\ufeff") for c in names):
        return " The first column name starts with a byte-order mark: read the file with encoding='utf-8-sig'."
    if isinstance(col, str):
        same_case = [c for c in names if c.lower() == col.lower()]
        close = same_case or difflib.get_close_matches(col, names, n=1, cutoff=0.6)
        if close:
            return f" Did you mean {close[0]!r}?"
    return ""


def misread_hint(columns: list) -> str:
    """Why no column name fits when the file itself was misread: another separator (one column whose
    name holds one) or no header row (names that read as data); "" when neither shows."""
    names = [c for c in columns if isinstance(c, str)]
    if len(names) == 1 == len(columns):
        seps = [s for s in ("::", "\t", "|", ";", ",", " ") if s in names[0]]  # "::": MovieLens .dat files
        if seps:
            return (" The whole header is one column name, so the file is separated by something else: "
                    f"pass sep={seps[0]!r}.")
    if names and len(names) == len(columns) and all(_reads_as_number(c) for c in names):
        return (f" The header {names} reads as data: the file seems to have no header row; add one naming the "
                "columns (e.g. user,item,rating).")
    return ""


def _reads_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def require_columns(df: pd.DataFrame, wanted: dict[str, str | None]) -> None:
    """DataError unless each role's column (``{"user": "userId", ...}``) is present exactly once."""
    partial = [c for c in wanted.values() if c is not None and not (isinstance(c, tuple) and len(c) == df.columns.nlevels)]
    if isinstance(df.columns, pd.MultiIndex) and partial:  # df["a"] would be a frame of the columns under "a"
        raise DataError(f"the frame's columns are a MultiIndex ({list(df.columns)[:4]}), so {partial[0]!r} is not one "
                        "column; name each column by its full tuple, or give one level of names, e.g. "
                        "df.columns = ['_'.join(map(str, c)) for c in df.columns]")
    for role, col in wanted.items():
        if col is None and role in ("user", "item"):
            raise DataError(f"{role} must name the {role} id column; got None (columns: {list(df.columns)})")
        try:
            hash(col)
        except TypeError:
            raise DataError(f"{role} must be a column name; got {type(col).__name__} {col!r}") from None
        if col is not None and col not in df.columns:
            columns = list(df.columns)
            # a misread file needs another reading, not another column name
            advice = misread_hint(columns) or f" Pass {role}=<column name>.{column_hint(col, columns)}"
            if col in (df.index.names or ()):  # set_index, or a groupby's result
                advice = f" {col!r} is the frame's index, not a column: call df.reset_index() first."
            raise DataError(f"column {col!r} (the {role} column) not found; available columns: {columns}.{advice}")
        if col is not None and int((df.columns == col).sum()) > 1:
            raise DataError(f"column {col!r} (the {role} column) appears more than once in {list(df.columns)}")
    named = [(role, col) for role, col in wanted.items() if col is not None]  # all hashable column names by now
    for i, (role, col) in enumerate(named):
        other = next((r for r, c in named[:i] if c == col), None)
        if other is not None:  # one column cannot be two roles: users would be their own items
            raise DataError(f"the {other} and {role} columns are both {col!r}; name a different column for each")


def check_frame(df, user, item, rating, timestamp) -> None:
    """DataError unless ``df`` is a non-empty DataFrame holding the named columns."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame; got {type(df).__name__}")
    if len(df) == 0:
        raise DataError(f"the interaction log is empty (0 rows; columns: {list(df.columns)})")
    require_columns(df, {"user": user, "item": item, "rating": rating, "timestamp": timestamp})
    if rating is None:
        warn_unused_ratings(df, user, item)


#: Column names that usually hold ratings: left unused, they are worth a word.
RATING_NAMES = ("rating", "ratings", "score", "stars")


def _outside_recae() -> int:
    """The ``stacklevel`` of the first caller outside recae (from_pandas, from_csv, load_log all call here)."""
    here = inspect.currentframe()
    # level 1 is the function that warns; frame starts at its caller
    level, frame = 1, here.f_back.f_back if here is not None else None
    while frame is not None and frame.f_globals.get("__name__", "").startswith("recae."):
        level, frame = level + 1, frame.f_back
    return level + 1


def warn_unused_ratings(df: pd.DataFrame, user, item) -> None:
    """A DataWarning when a numeric ratings-like column is left out (every row then counts as one positive)."""
    for c in df.columns:
        if (str(c).lower() in RATING_NAMES and c not in (user, item) and pd.api.types.is_numeric_dtype(df[c])
                and not pd.api.types.is_bool_dtype(df[c]) and bool((df[c] != 1).any())):
            warnings.warn(f"column {c!r} looks like ratings but is not used: every row counts as one positive, "
                          f"whatever its {c}; pass rating={str(c)!r} to read it", DataWarning,
                          stacklevel=_outside_recae())
            return


def numeric_column(s: pd.Series, name: str, allow_datetime: bool = False) -> np.ndarray:
    """A column as finite float64 values; datetimes (when allowed) become epoch seconds.

    With ``allow_datetime``, a text column of dates (``"2024-03-01T12:00:00Z"``) is parsed
    first (see :func:`dates_from_text`).
    """
    if allow_datetime:
        dates = dates_from_text(s, name)
        s = s if dates is None else dates
        s = date_objects(s, name)
    if pd.api.types.is_complex_dtype(s) or pd.api.types.is_timedelta64_dtype(s) or isinstance(s.dtype, pd.PeriodDtype) \
            or (allow_datetime and pd.api.types.is_bool_dtype(s)):
        what = "dates or epoch seconds" if allow_datetime else "real numbers"
        raise DataError(f"column {name!r} must hold {what}; got dtype {s.dtype}")
    if pd.api.types.is_datetime64_any_dtype(s) and not allow_datetime:
        raise DataError(f"column {name!r} must be numeric; got dtype {s.dtype} (dates belong in the timestamp column)")
    if pd.api.types.is_datetime64_any_dtype(s):
        if s.isna().any():
            row = int(np.flatnonzero(s.isna().to_numpy())[0])
            raise DataError(f"column {name!r} has {int(s.isna().sum())} missing timestamp(s); first at row {row}",
                            row=row)
        # datetimes become seconds since the epoch (UTC for time-zone aware columns);
        # the unit of the column does not matter
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        # through integer microseconds: subtracting a nanosecond Timestamp overflows past 2262
        micros = s.to_numpy().astype("datetime64[us]").astype(np.int64)
        return micros.astype(np.float64) / 1e6
    if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
        # an object column may still hold plain numbers (e.g. built from Python lists)
        is_text = s.map(lambda v: isinstance(v, (str, bytes)), na_action="ignore").fillna(False).astype(bool)
        try:
            coerced = pd.to_numeric(s.mask(is_text), errors="coerce")
        except (TypeError, ValueError):  # containers and other objects pandas cannot coerce
            coerced = pd.Series(np.nan, index=s.index)
        bad = ((coerced.isna() & s.notna()) | is_text).to_numpy()
        if bad.any():
            # numbers stored as text ("5") are refused too, but point first at values that are
            # not numbers even as text ("five"): those are why a file's column was read as text
            try:
                hopeless = (pd.to_numeric(s, errors="coerce").isna() & s.notna()).to_numpy()
            except (TypeError, ValueError):
                hopeless = bad
            shown = hopeless if hopeless.any() else bad
            first = s[shown].iloc[:3].tolist()
            row = int(np.flatnonzero(shown)[0])
            dates = " or dates pandas.to_datetime can read (all of them)" if allow_datetime else ""
            what = (f"numbers stored as text, such as {first} (first at row {row}); convert them with "
                    f"df[{name!r}] = pd.to_numeric(df[{name!r}])") if not hopeless.any() \
                else f"non-numeric values such as {first} (first at row {row})"
            raise DataError(f"column {name!r} must be numeric{dates}; got dtype {s.dtype} with {what}", row=row)
        s = coerced
    arr = s.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"column {name!r} has {int(bad.sum())} NaN or infinite value(s); first at row {i} "
            f"(value {arr[i]}). Drop or fill them before building Interactions.", row=i
        )
    return arr


def frame_to_csr(df: pd.DataFrame, user, item, rating, timestamp, duplicates):
    """``(matrix, user_ids, item_ids, timestamps)`` of a checked log (see :func:`check_frame`).

    Ids are sorted; repeated (user, item) rows are resolved by ``duplicates`` (default
    ``"last"``: the latest by timestamp, else the last row; without ratings every value is
    1.0, so that is one 1.0 per pair stamped with its latest time); ``timestamps`` (or None)
    follow the CSR entry order. How many rows were merged is logged at INFO.
    """
    duplicates = check_choice("last" if duplicates is None else duplicates, "duplicates", DUPLICATE_RULES)
    users = normalize_id_column(df[user], user)
    items = normalize_id_column(df[item], item)
    values = numeric_column(df[rating], rating) if rating is not None else np.ones(len(df))
    ts = numeric_column(df[timestamp], timestamp, allow_datetime=True) if timestamp is not None else None
    if ts is not None and len(ts) and ts.max() > EPOCH_YEAR_3000:  # order is kept: splits are right, dates are not
        warnings.warn(f"timestamp column {timestamp!r} holds epoch values past the year 3000 (up to {ts.max():.4g}): "
                      "if they are milliseconds, divide them by 1000 for dates that read right", DataWarning,
                      stacklevel=_outside_recae())
    ucodes, uids = pd.factorize(users, sort=True)
    icodes, iids = pd.factorize(items, sort=True)
    ucodes = ucodes.astype(np.int64)
    icodes = icodes.astype(np.int64)
    n_users, n_items = len(uids), len(iids)
    key = ucodes * n_items + icodes
    rowpos = np.arange(len(df))
    if duplicates == "sum":
        ukey, inv = np.unique(key, return_inverse=True)
        values = np.bincount(inv, weights=values, minlength=len(ukey))
        most = int(np.bincount(inv).max())
        if ts is not None:
            latest = np.full(len(ukey), -np.inf)
            np.maximum.at(latest, inv, ts)
            ts = latest
    else:
        # order entries by key, then time, then row; keep the last (or first) of each key
        order = np.lexsort((rowpos, ts if ts is not None else rowpos, key))
        sk = key[order]
        boundary = np.ones(len(sk), dtype=bool)
        if duplicates in ("last", "raise"):
            boundary[:-1] = sk[1:] != sk[:-1]
        else:
            boundary[1:] = sk[1:] != sk[:-1]
        if duplicates == "raise" and not boundary.all():
            dup = order[np.flatnonzero(~boundary)[0]]
            raise DataError(
                f"duplicate (user, item) row: user {plain(users[dup])!r}, item {plain(items[dup])!r} "
                f"(row {int(dup)}); "
                "pass duplicates='last' or 'sum' to resolve repeats", row=int(dup)
            )
        kept = np.flatnonzero(boundary)  # the first or the last row of each pair's run
        most = int(np.diff(np.r_[kept, len(sk)] if duplicates == "first" else np.r_[-1, kept]).max())
        keep = order[boundary]
        ukey, values = key[keep], values[keep]
        ts = ts[keep] if ts is not None else None
    if len(ukey) < len(df):
        logger.info("merged %d repeated (user, item) rows of %d into %d entries (duplicates=%r%s; up to %d rows "
                    "per pair)", len(df) - len(ukey), len(df), len(ukey), duplicates,
                    ", 1.0 per pair" if rating is None and duplicates != "sum" else "", most)
    m, order = build_csr(ukey // n_items, ukey % n_items, values, (n_users, n_items))
    return m, np.asarray(uids), np.asarray(iids), None if ts is None else ts[order]
