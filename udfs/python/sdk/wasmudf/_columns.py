"""Arrow columns of the contract (`types.column`) to Python values and back.

Whole-column conversions go through `array.array` (C loops inside CPython), never a
Python loop per value where one can be avoided: lifting `list<u64>` into Python ints
is already the bulk of a call's cost.
"""

import datetime
import decimal
from array import array

from wit_world.imports import types as t

from ._types import Type

_EPOCH_DATE = datetime.date(1970, 1, 1)
_EPOCH_ORDINAL = _EPOCH_DATE.toordinal()
_EPOCH = datetime.datetime(1970, 1, 1)
_EPOCH_UTC = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_UNIT_MICROS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}

# Fixed-width kinds: (typecode of the wire's unsigned words, typecode of the values).
_WORDS = {
    "int64": ("Q", "q"),
    "uint64": ("Q", "Q"),
    "float64": ("Q", "d"),
    "int32": ("I", "i"),
    "uint32": ("I", "I"),
    "float32": ("I", "f"),
    "date32": ("I", "i"),
    "int16": ("H", "h"),
    "uint16": ("H", "H"),
    "timestamp": ("Q", "q"),
}
_BUFFER = {"Q": t.Buffer_U64s, "I": t.Buffer_U32s, "H": t.Buffer_U16s}


def bits(data, n):
    """The first `n` bits of an LSB-first bitmap, as bools."""
    if n == 0:
        return []
    # A sentinel bit above the bitmap keeps its leading zeros in bin()'s text.
    text = bin(int.from_bytes(data, "little") | (1 << (8 * len(data))))[3:]
    return [c == "1" for c in text[::-1][:n]]


def bitmap(flags):
    """An LSB-first bitmap of `flags`."""
    n = len(flags)
    if n == 0:
        return b""
    text = "".join("1" if f else "0" for f in reversed(flags))
    return int(text, 2).to_bytes((n + 7) // 8, "little")


def _typed(words, wire, code):
    """Reinterprets a list of unsigned words (typecode `wire`) as an array of `code`
    (one memcpy)."""
    raw = array(wire, words)
    if code == wire:
        return raw
    out = array(code)
    out.frombytes(memoryview(raw).cast("B"))
    return out


def raw_values(col, typ: Type):
    """The values of `col` (nulls included, as whatever the buffer holds).

    Fixed-width numbers come as an `array.array`; everything else as a list.
    """
    kind = typ.kind
    v = col.values.value
    n = col.len
    if kind in ("int64", "uint64", "float64", "int32", "uint32", "float32", "int16", "uint16"):
        return _typed(v, *_WORDS[kind])
    if kind == "int8":
        out = array("b")
        out.frombytes(v)
        return out
    if kind == "uint8":
        return array("B", v)
    if kind == "boolean":
        return bits(v, n)
    if kind in ("utf8", "binary"):
        o = col.offsets
        data = bytes(v)
        if kind == "binary":
            return [data[o[i] : o[i + 1]] for i in range(n)]
        return [data[o[i] : o[i + 1]].decode("utf-8", "replace") for i in range(n)]
    if kind == "date32":
        days = _typed(v, "I", "i")
        return [datetime.date.fromordinal(_EPOCH_ORDINAL + d) for d in days]
    if kind == "timestamp":
        ticks = _typed(v, "Q", "q")
        base = _EPOCH_UTC if typ.timezone is not None else _EPOCH
        per = _UNIT_MICROS[typ.unit]
        if per is None:
            return [base + datetime.timedelta(microseconds=x // 1000) for x in ticks]
        return [base + datetime.timedelta(microseconds=x * per) for x in ticks]
    if kind == "decimal128":
        scale = typ.scale
        out = []
        for i in range(n):
            u = v[2 * i] | (v[2 * i + 1] << 64)
            if u >> 127:
                u -= 1 << 128
            out.append(decimal.Decimal(u).scaleb(-scale))
        return out
    raise TypeError(f"unsupported column type {kind}")


def values(col, typ: Type, rows):
    """`rows` values of an argument column, None where null (a literal repeats)."""
    vals = raw_values(col, typ)
    if col.validity is not None:
        valid = bits(col.validity, col.len)
        vals = [x if ok else None for x, ok in zip(vals, valid)]
    if col.len == 1 and rows != 1:
        vals = vals * rows
    return vals


def _fail(typ, value, row):
    from ._errors import UdfError

    raise UdfError(
        f"returned {type(value).__name__} {value!r}, not a valid {typ.sql}", row
    )


def _check_each(typ, vals, convert):
    """Converts each value, naming the row of the first one that does not fit."""
    out = []
    for i, x in enumerate(vals):
        try:
            out.append(convert(x))
        except (TypeError, ValueError, OverflowError, AttributeError, ArithmeticError):
            _fail(typ, x, i)
    return out


def column(vals, typ: Type, rows):
    """A result column of `rows` values; None is null."""
    if len(vals) != rows:
        from ._errors import UdfError

        raise UdfError(f"returned {len(vals)} values for {rows} rows")
    kind = typ.kind
    valid = None
    offsets = []
    numeric = kind in _WORDS or kind in ("int8", "uint8")
    code = (_WORDS[kind][1] if kind in _WORDS else ("b" if kind == "int8" else "B")) if numeric else None
    typed = None
    if isinstance(vals, array):
        if vals.typecode == code:
            typed = vals
    elif numeric and kind not in ("date32", "timestamp"):
        # The common case, numbers and no null, in one C loop; a None (or a value that
        # does not fit) fails it and takes the slow path below.
        try:
            typed = array(code, vals)
        except (TypeError, OverflowError):
            pass
    if typed is None and not isinstance(vals, array) and None in vals:
        valid = bitmap([x is not None for x in vals])
        zero = _ZERO[kind]
        vals = [zero if x is None else x for x in vals]
    if numeric:
        if typed is None:
            if kind == "date32":
                vals = _check_each(typ, vals, lambda d: d.toordinal() - _EPOCH_ORDINAL)
            elif kind == "timestamp":
                vals = _check_each(typ, vals, lambda d: _ticks(d, typ.unit))
            try:
                typed = array(code, vals)
            except (TypeError, OverflowError):
                typed = array(code, _check_each(typ, vals, lambda x: array(code, [x])[0]))
        if kind in ("int8", "uint8"):
            buffer = t.Buffer_Bytes(typed.tobytes())
        else:
            words = _WORDS[kind][0]
            # The wire's unsigned words, read straight from the values' memory.
            buffer = _BUFFER[words](memoryview(typed).cast("B").cast(words).tolist())
    elif kind == "boolean":
        buffer = t.Buffer_Bytes(bitmap([bool(x) for x in vals]))
    elif kind in ("utf8", "binary"):
        if kind == "utf8":
            parts = _check_each(typ, vals, lambda s: s.encode("utf-8") if isinstance(s, str) else _no(s))
        else:
            parts = _check_each(typ, vals, lambda b: bytes(b) if isinstance(b, (bytes, bytearray, memoryview)) else _no(b))
        offsets = [0] * (rows + 1)
        end = 0
        for i, p in enumerate(parts):
            end += len(p)
            offsets[i + 1] = end
        if end >= 1 << 31:
            from ._errors import UdfError

            raise UdfError("result strings exceed 2 GiB in one batch")
        buffer = t.Buffer_Bytes(b"".join(parts))
    elif kind == "decimal128":
        q = decimal.Decimal(1).scaleb(-typ.scale)
        limit = 10**typ.precision

        def unscaled(x):
            d = decimal.Decimal(x).quantize(q, rounding=decimal.ROUND_HALF_EVEN)
            u = int(d.scaleb(typ.scale))
            if abs(u) >= limit:
                raise OverflowError
            return u

        words = []
        for u in _check_each(typ, vals, unscaled):
            u &= (1 << 128) - 1
            words.append(u & 0xFFFF_FFFF_FFFF_FFFF)
            words.append(u >> 64)
        buffer = t.Buffer_U64s(words)
    else:
        raise TypeError(f"unsupported result type {kind}")
    return t.Column(rows, valid, offsets, buffer)


def _no(x):
    raise TypeError


def _ticks(d, unit):
    if not isinstance(d, datetime.datetime):
        raise TypeError
    base = _EPOCH if d.tzinfo is None else _EPOCH_UTC
    delta = d - base
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if unit == "ns":
        return micros * 1000
    return micros // _UNIT_MICROS[unit]


_ZERO = {
    "boolean": False,
    "utf8": "",
    "binary": b"",
    "date32": _EPOCH_DATE,
    "timestamp": _EPOCH,
    "decimal128": decimal.Decimal(0),
}
for _k in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"):
    _ZERO[_k] = 0
_ZERO["float32"] = 0.0
_ZERO["float64"] = 0.0
