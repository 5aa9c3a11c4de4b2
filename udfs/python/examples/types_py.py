"""Every column type the contract carries, through Python and back (the Rust `types`
example's echoes), per row and per batch."""

import datetime
import decimal
from typing import Optional, Sequence

import wasmudf

TSTZ = wasmudf.timestamp("us", tz="UTC")
NUMERIC = wasmudf.decimal128(12, 3)


@wasmudf.scalar
def py_echo_bool(x: Optional[bool]) -> Optional[bool]:
    return x


@wasmudf.scalar
def py_echo_i16(x: wasmudf.int16) -> wasmudf.int16:
    return x


@wasmudf.scalar
def py_echo_i32(x: wasmudf.int32) -> wasmudf.int32:
    return x


@wasmudf.scalar
def py_echo_f32(x: wasmudf.float32) -> wasmudf.float32:
    return x


@wasmudf.scalar
def py_echo_bytes(x: bytes) -> bytes:
    return x


@wasmudf.scalar
def py_next_day(d: datetime.date) -> datetime.date:
    return d + datetime.timedelta(days=1)


@wasmudf.scalar
def py_add_hour(ts: datetime.datetime) -> datetime.datetime:
    return ts + datetime.timedelta(hours=1)


@wasmudf.scalar
def py_tz_hour(ts: TSTZ) -> wasmudf.int32:
    """The hour of a timestamptz, in UTC (the value is an aware UTC datetime)."""
    assert ts.tzinfo is not None
    return ts.hour


@wasmudf.scalar
def py_add_cent(x: NUMERIC) -> NUMERIC:
    return x + decimal.Decimal("0.01")


@wasmudf.scalar(batch=True)
def py_not_batch(xs: Sequence[Optional[bool]]) -> Sequence[Optional[bool]]:
    """Called on null, batch: a list of bool with None."""
    return [None if x is None else not x for x in xs]


@wasmudf.scalar(batch=True)
def py_half_batch(xs: Sequence[float]) -> Sequence[float]:
    """A double column as array('d'); returning an array of the same type is fastest."""
    from array import array

    return array("d", (x / 2 for x in xs))


@wasmudf.scalar(batch=True)
def py_upper_batch(xs: Sequence[str]) -> Sequence[str]:
    return [x.upper() for x in xs]


@wasmudf.scalar(batch=True)
def py_short_batch(xs: Sequence[int]) -> Sequence[int]:
    """Returns one value too few: the SDK refuses the batch with a clear error."""
    return list(xs)[1:]
