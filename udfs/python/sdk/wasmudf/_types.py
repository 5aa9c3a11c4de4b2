"""Column types: the contract's `data-type`, named from Python annotations."""

import collections.abc
import datetime
import decimal
import typing

from wit_world.imports import types as t


class Type:
    """One SQL column type. Use the module's constants (`wasmudf.int32`, ...),
    `wasmudf.decimal(p, s)` or `wasmudf.timestamp(unit, tz)` as annotations where the
    Python type alone does not say which (a plain `int` is `bigint`)."""

    __slots__ = ("kind", "sql", "unit", "timezone", "precision", "scale")

    def __init__(self, kind, sql, unit=None, timezone=None, precision=None, scale=None):
        self.kind = kind
        self.sql = sql
        self.unit = unit
        self.timezone = timezone
        self.precision = precision
        self.scale = scale

    def __repr__(self):
        return f"wasmudf type {self.sql}"

    def wit(self):
        """The contract's `data-type` for this type."""
        k = self.kind
        if k == "timestamp":
            return t.DataType_Timestamp(t.TimestampType(_UNITS[self.unit], self.timezone))
        if k == "decimal128":
            return t.DataType_Decimal128(t.DecimalType(self.precision, self.scale))
        return _SIMPLE[k]()


_UNITS = {
    "s": t.TimeUnit.SECOND,
    "ms": t.TimeUnit.MILLISECOND,
    "us": t.TimeUnit.MICROSECOND,
    "ns": t.TimeUnit.NANOSECOND,
}

_SIMPLE = {
    "boolean": t.DataType_Boolean,
    "int8": t.DataType_Int8,
    "int16": t.DataType_Int16,
    "int32": t.DataType_Int32,
    "int64": t.DataType_Int64,
    "uint8": t.DataType_Uint8,
    "uint16": t.DataType_Uint16,
    "uint32": t.DataType_Uint32,
    "uint64": t.DataType_Uint64,
    "float32": t.DataType_Float32,
    "float64": t.DataType_Float64,
    "utf8": t.DataType_Utf8,
    "binary": t.DataType_Binary,
    "date32": t.DataType_Date32,
}

boolean = Type("boolean", "boolean")
int8 = Type("int8", "tinyint")
int16 = Type("int16", "smallint")
int32 = Type("int32", "integer")
int64 = Type("int64", "bigint")
uint8 = Type("uint8", "tinyint unsigned")
uint16 = Type("uint16", "smallint unsigned")
uint32 = Type("uint32", "integer unsigned")
uint64 = Type("uint64", "bigint unsigned")
float32 = Type("float32", "real")
float64 = Type("float64", "double precision")
utf8 = Type("utf8", "text")
binary = Type("binary", "bytea")
date32 = Type("date32", "date")


def timestamp(unit="us", tz=None):
    """`timestamp` (tz None) or `timestamptz` (tz given, values are UTC instants);
    unit one of "s", "ms", "us", "ns"."""
    if unit not in _UNITS:
        raise ValueError(f"timestamp unit must be one of s, ms, us, ns, not {unit!r}")
    return Type("timestamp", "timestamptz" if tz else "timestamp", unit=unit, timezone=tz)


def decimal128(precision, scale):
    """`numeric(precision, scale)`: precision 1..38, scale 0..precision."""
    if not (1 <= precision <= 38 and 0 <= scale <= precision):
        raise ValueError(f"numeric({precision}, {scale}): precision 1..38, scale 0..precision")
    return Type("decimal128", f"numeric({precision},{scale})", precision=precision, scale=scale)


_FROM_PYTHON = {
    bool: boolean,
    int: int64,
    float: float64,
    str: utf8,
    bytes: binary,
    datetime.date: date32,
    datetime.datetime: timestamp("us"),
}

_SEQUENCES = (
    collections.abc.Sequence,
    collections.abc.Iterable,
    collections.abc.MutableSequence,
    list,
)


def resolve(annotation, where, batch=False):
    """(Type, optional) for an annotation; `optional` if it admits None.

    In a batch function an argument may be annotated `Sequence[T]` (or `list[T]`):
    the element type is the column's type.
    """
    if annotation is None or annotation is type(None):
        raise TypeError(f"{where}: None is not a column type")
    optional = False
    origin = typing.get_origin(annotation)
    if origin is typing.Union or _is_union_type(annotation):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) != len(typing.get_args(annotation))
        if len(members) != 1:
            raise TypeError(f"{where}: {annotation!r} names more than one type")
        annotation = members[0]
        origin = typing.get_origin(annotation)
    if batch and origin in _SEQUENCES:
        (element,) = typing.get_args(annotation) or (None,)
        if element is None:
            raise TypeError(f"{where}: say the element type, as in Sequence[int]")
        inner, inner_optional = resolve(element, where)
        return inner, optional or inner_optional
    if isinstance(annotation, Type):
        return annotation, optional
    if annotation is decimal.Decimal:
        raise TypeError(f"{where}: a Decimal needs its precision and scale: wasmudf.decimal128(p, s)")
    found = _FROM_PYTHON.get(annotation)
    if found is None:
        raise TypeError(
            f"{where}: {annotation!r} is not a column type (use bool, int, float, str, bytes, "
            "datetime.date, datetime.datetime, or a wasmudf type such as wasmudf.int32)"
        )
    return found, optional


def _is_union_type(annotation):
    union = getattr(__import__("types"), "UnionType", None)
    return union is not None and isinstance(annotation, union)
