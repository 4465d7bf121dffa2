"""Text and object timestamp columns read as dates: ISO 8601, one inferred format, or several
unambiguous ones; a day/month order that cannot be told, or a value pandas would date by the
clock, is refused rather than guessed."""

from __future__ import annotations

import datetime
import logging
import re
import warnings

import numpy as np
import pandas as pd

from ..exceptions import DataError

logger = logging.getLogger(__name__)


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
        raise DataError(f"column {name!r} holds text dates for which pandas inferred no single format (it reads "
                        f"them value by value), and {found[1]} depending on "
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


#: What pandas dates by the clock: "now", "today", or a time of day alone ("10:00", "9:30:05.1 PM", "10am").
_CLOCK = (r"\s*(now|today|(\d{1,2}(:\d{2}){1,2}(\.\d+)?(\s*[ap]\.?m\.?)?|\d{1,2}\s*[ap]\.?m\.?)"
          r"\s*(z|utc|[+-]\d{2}:?\d{2})?)\s*")


def _refuse_undated(s: pd.Series, parsed: pd.Series, name: str) -> None:
    """Refuse values pandas dated without their text saying when: no year ("Dec 8"), or by the clock
    (a time alone, "10:00", or "now" / "today").

    A year-less value becomes year 1, the log's oldest event; a clock-dated one takes today's
    date, its newest (and "now" a different one on every run). Only values parsed to within two
    days of now can be clock-dated, so only those are matched against :data:`_CLOCK`.
    """
    yearless = (parsed.dt.year < 1000).to_numpy()  # "Dec 8", "10am": pandas 3 takes year 1
    if yearless.any():
        row = int(np.argmax(yearless))
        raise DataError(f"column {name!r} holds {s.iloc[row]!r} (row {row}), read as {parsed.iloc[row]}: before the "
                        "year 1000, as pandas dates a value with no year ('Dec 8', '10am'); give every timestamp "
                        "its full date, or drop those rows", row=row)
    near = ((parsed - pd.Timestamp.now(tz="UTC")).abs() <= pd.Timedelta(days=2)).to_numpy()
    if not near.any():
        return
    clock = s[near].astype(str).str.fullmatch(_CLOCK, case=False).to_numpy()
    if clock.any():
        row = int(np.flatnonzero(near)[np.argmax(clock)])
        raise DataError(f"column {name!r} holds {s.iloc[row]!r} (row {row}), which has no date: pandas would date it "
                        "by today's clock; give every timestamp its date, or drop those rows", row=row)


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
