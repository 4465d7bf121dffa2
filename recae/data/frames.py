"""From a pandas DataFrame of interactions (one row each) to the arrays of an Interactions.

:meth:`Interactions.from_pandas <recae.data.Interactions.from_pandas>` is
:func:`check_frame` + :func:`frame_to_csr`; the column checks name the file row of a bad
value (``DataError.row``), which the file readers turn into a line number.
"""

from __future__ import annotations

import datetime
import difflib
import inspect
import logging
import re
import warnings

import numpy as np
import pandas as pd

from ..exceptions import DataError, DataWarning
from .ids import normalize_id_column, plain
from .sparse import build_csr
from .validate import check_choice

logger = logging.getLogger(__name__)

#: How repeated (user, item) rows may be resolved (the ``duplicates=`` of from_pandas).
DUPLICATE_RULES = ("last", "sum", "first", "raise")


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
        seps = [s for s in ("\t", "|", ";", ",", " ") if s in names[0]]
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


def _unambiguous_mixed(s: pd.Series, name: str) -> pd.Series | None:
    """Dates read value by value, where that is unambiguous, else None (not all of them parse).

    Read alone, 01/02/2020 would be January and 13/02/2020 February: a value that reads
    differently day-first is refused, naming both readings.
    """
    try:
        out = pd.to_datetime(s, utc=True, format="mixed")
        other = pd.to_datetime(s, utc=True, format="mixed", dayfirst=True)
    except (ValueError, TypeError, OverflowError):
        return None
    # ISO 8601 values are never day-first (dateutil would read 2024-03-01 as 3 January)
    iso = pd.to_datetime(s, utc=True, format="ISO8601", errors="coerce").notna()
    found = _two_readings(s, out, other, ((out != other) & ~iso & s.notna()).to_numpy())
    if found:
        raise DataError(f"column {name!r} holds text dates in more than one format, and {found[1]} depending on "
                        "whether the day comes first; write the dates as ISO 8601 (2020-02-13 or "
                        "2020-02-13T08:30:00Z) or as epoch seconds", row=found[0])
    return out


def _two_readings(s: pd.Series, out: pd.Series, other: pd.Series, differ: np.ndarray) -> tuple[int, str] | None:
    """The first row that ``out`` and ``other`` read differently (``differ``), and its value with both readings."""
    if not differ.any():
        return None
    row = int(np.flatnonzero(differ)[0])
    return row, f"{s.iloc[row]!r} (row {row}) reads as {out.iloc[row]:%Y-%m-%d} or {other.iloc[row]:%Y-%m-%d}"


def _refuse_swappable(s: pd.Series, text: pd.Series, out: pd.Series, name: str) -> None:
    """Refuse dates such as 05/03/2024 when every value reads as a date both day-first and month-first
    (no day past 12 settles the order) and the two readings differ: either could be meant."""
    if not re.match(r"\s*\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}", text.iloc[0]):
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas' notes on inferring the format
            other = pd.to_datetime(s, utc=True, dayfirst=not _day_first(text.iloc[0], out.iloc[0]))
    except (ValueError, TypeError, OverflowError):
        return  # some value reads only one way: the order is settled
    found = _two_readings(s, out, other, ((out != other) & s.notna()).to_numpy())
    if found:
        raise DataError(f"column {name!r} holds dates such as {found[1]}, and no value has a day past 12 to tell "
                        "whether the day or the month comes first; write the dates as ISO 8601 (2024-03-05) or as "
                        "epoch seconds", row=found[0])


def _day_first(value: str, parsed) -> bool:
    """Whether ``value``'s first number was read as the day."""
    return int(re.match(r"\s*(\d{1,2})", value).group(1)) == parsed.day


def dates_from_text(s: pd.Series, name: str) -> pd.Series | None:
    """A text column of dates (ISO 8601 or another format pandas reads) as UTC datetimes, else None.

    Only a column of strings that are not all numbers qualifies, and every value must parse;
    dates without a zone are read as UTC, zoned ones converted to it.
    """
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
        return None
    text = s.dropna()
    if not len(text) or not text.map(lambda v: isinstance(v, str)).all():
        return None
    if pd.to_numeric(text, errors="coerce").notna().all():
        return None  # numbers stored as text: not dates
    # ISO 8601, else the one format pandas infers from the first value (a day-first one included)
    for fmt in ("ISO8601", None):
        try:
            with warnings.catch_warnings():
                # "could not infer format" means value by value, which the mixed reading below handles
                warnings.filterwarnings("error", message="Could not infer format", category=UserWarning)
                warnings.filterwarnings("ignore", message="Parsing dates in", category=UserWarning)
                out = pd.to_datetime(s, utc=True, format=fmt)
        except (ValueError, TypeError, OverflowError, UserWarning):
            continue
        if fmt is None:
            _refuse_swappable(s, text, out, name)
        _refuse_undated(s, out, name)
        logger.info("timestamp column %r holds text dates: parsed them (%s) as UTC, e.g. %r -> %s",
                    name, fmt or "one inferred format", text.iloc[0], out.iloc[0])
        return out
    mixed = _unambiguous_mixed(s, name)
    if mixed is not None:
        _refuse_undated(s, mixed, name)
        logger.info("timestamp column %r holds text dates in several formats: parsed each as UTC", name)
        return mixed
    try:
        parsed = pd.to_datetime(s, utc=True, format="mixed", errors="coerce")
    except (ValueError, TypeError, OverflowError):
        return None
    bad = (parsed.isna() & s.notna()).to_numpy()
    if bad.all():
        return None  # not dates at all: the numeric check names the values
    row = int(np.flatnonzero(bad)[0])
    raise DataError(f"column {name!r} holds text dates, but {int(bad.sum())} value(s) are not dates, e.g. "
                    f"{s.iloc[row]!r} (first at row {row}); fix or drop those rows", row=row)


def _refuse_undated(s: pd.Series, parsed: pd.Series, name: str) -> None:
    """Refuse values pandas dated by the clock: a time alone ("10:00") or "now" / "today".

    Such a value takes today's date, so it would become the log's newest event (and "now" a
    different one on every run). Only values parsed to today are looked at: their year must be written.
    """
    today = pd.Timestamp.now(tz="UTC").normalize()
    near = ((parsed - today).abs() <= pd.Timedelta(days=2)).to_numpy()
    for row in np.flatnonzero(near):
        value, year = str(s.iloc[row]), parsed.iloc[row].year
        if str(year) not in value and not re.search(rf"(?<!\d){year % 100:02d}(?!\d)", value):
            raise DataError(f"column {name!r} holds {value!r} (row {row}), which has no date: pandas would date it "
                            "by today's clock; give every timestamp its date, or drop those rows", row=int(row))


def date_objects(s: pd.Series, name: str) -> pd.Series:
    """A column of date or datetime objects (``datetime.date``, ``pd.Timestamp``, or a categorical
    of them) as UTC datetimes; any other column unchanged."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(s.cat.categories.dtype) if len(s.cat.categories) else s.astype(object)
    if s.dtype != object:
        return s
    values = s.dropna()
    if not len(values) or not values.map(lambda v: isinstance(v, (datetime.date, np.datetime64))).all():
        return s
    try:
        return pd.to_datetime(s, utc=True)
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(f"column {name!r} holds dates pandas could not convert: {exc}") from None


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
            raise DataError(
                f"column {name!r} must be numeric{dates}; got dtype {s.dtype} with non-numeric values such as "
                f"{first} (first at row {row})", row=row
            )
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
