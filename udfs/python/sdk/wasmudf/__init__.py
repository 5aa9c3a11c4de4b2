"""wasmudf's Python SDK: SQL functions from annotated Python functions.

    import wasmudf

    @wasmudf.scalar
    def add_one(x: int) -> int:
        return x + 1

    @wasmudf.scalar(batch=True)
    def add_one_batch(xs: Sequence[int]) -> Sequence[int]:
        return [x + 1 for x in xs]

    @wasmudf.aggregate
    class py_mean:
        def __init__(self):
            self.n, self.total = 0, 0.0
        def update(self, x: float) -> None:
            self.n += 1
            self.total += x
        def merge(self, other: "py_mean") -> None:
            self.n += other.n
            self.total += other.total
        def finish(self) -> float | None:
            return self.total / self.n if self.n else None

`wasmudf build --lang python FILE.py` makes the component; `CREATE FUNCTION add_one(bigint)
RETURNS bigint LANGUAGE wasm AS 'FILE.wasm'` registers a function of it. See
docs/writing-python-udfs.md.
"""

import inspect
import typing

from ._errors import UdfError
from ._types import (
    Type,
    binary,
    boolean,
    date32,
    decimal128,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    timestamp,
    uint8,
    uint16,
    uint32,
    uint64,
    utf8,
)
from ._types import resolve as _resolve
from ._sandbox import SandboxError

__all__ = [
    "scalar",
    "aggregate",
    "UdfError",
    "SandboxError",
    "Type",
    "boolean",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "utf8",
    "binary",
    "date32",
    "timestamp",
    "decimal128",
]

_VOLATILITY = ("immutable", "stable", "volatile")


class _Function:
    """One registered function: what `describe` says of it and how to run it."""

    def __init__(self, name, kind, params, returns, volatility, strict, target, batch=False):
        self.name = name
        self.kind = kind
        self.params = params
        self.returns = returns
        self.volatility = volatility
        self.strict = strict
        self.target = target
        self.batch = batch


# Every function, in the order `describe` lists them (its index is the function number).
REGISTRY = []


def _register(fn):
    lowered = fn.name.lower()
    for other in REGISTRY:
        if other.name.lower() == lowered and len(other.params) == len(fn.params):
            if [p.sql for p in other.params] == [p.sql for p in fn.params]:
                raise TypeError(f"wasmudf: {fn.name} is defined twice with the same argument types")
    REGISTRY.append(fn)


def _options(where, volatility, strict):
    if volatility not in _VOLATILITY:
        raise ValueError(f"{where}: volatility must be one of {', '.join(_VOLATILITY)}, not {volatility!r}")
    if strict not in (None, True, False):
        raise ValueError(f"{where}: strict must be True, False or None (inferred)")


def _signature(fn, where, batch, skip_self=False):
    """(param types, any param optional) from `fn`'s annotations."""
    hints = typing.get_type_hints(fn)
    params = list(inspect.signature(fn).parameters.values())
    if skip_self:
        params = params[1:]
    types, optional = [], False
    for p in params:
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            raise TypeError(f"{where}: parameter {p.name} must be positional (no *args, **kwargs, keyword-only)")
        if p.name not in hints:
            raise TypeError(f"{where}: parameter {p.name} has no type annotation (say int, float, str, ...)")
        typ, opt = _resolve(hints[p.name], f"{where}, parameter {p.name}", batch)
        types.append(typ)
        optional = optional or opt
    return types, optional, hints


def _returns(hints, where, batch):
    if "return" not in hints:
        raise TypeError(f"{where}: say the result type with a return annotation (-> int, ...)")
    typ, _ = _resolve(hints["return"], f"{where}, result", batch)
    return typ


def scalar(fn=None, *, name=None, batch=False, volatility="immutable", strict=None):
    """Makes `fn` a scalar SQL function named `name` (default: its own name).

    Argument and result types come from the annotations. Per row (the default), `fn`
    gets one value per argument; with `batch=True` it gets whole columns (numbers as
    `array.array`, other types as lists) and returns a sequence of results, one per row.
    None is SQL null. `strict` (default: True unless an argument is annotated Optional)
    means a null argument gives a null result without calling `fn`.
    """

    def wrap(fn):
        sql_name = name or fn.__name__
        where = f"wasmudf.scalar {sql_name}"
        _options(where, volatility, strict)
        params, optional, hints = _signature(fn, where, batch)
        returns = _returns(hints, where, batch)
        is_strict = (not optional) if strict is None else strict
        _register(_Function(sql_name, "scalar", params, returns, volatility, is_strict, fn, batch))
        return fn

    return wrap(fn) if fn is not None else wrap


def aggregate(cls=None, *, name=None, volatility="immutable", strict=None):
    """Makes class `cls` an aggregate SQL function named `name` (default: the class's
    name). An instance is one group's state: `__init__()` makes an empty one,
    `update(self, *args)` adds a row, `merge(self, other)` adds another instance's
    state, `finish(self)` gives the result; `retract(self, *args)`, if defined, removes a
    row (for sliding window frames). States travel between instances pickled.
    """

    def wrap(cls):
        sql_name = name or cls.__name__
        where = f"wasmudf.aggregate {sql_name}"
        _options(where, volatility, strict)
        for method in ("update", "merge", "finish"):
            if not callable(getattr(cls, method, None)):
                raise TypeError(f"{where}: the class needs a {method}() method")
        try:
            cls()
        except TypeError as e:
            raise TypeError(f"{where}: __init__ must take no arguments (an empty state): {e}") from None
        params, optional, _ = _signature(cls.update, f"{where}.update", False, skip_self=True)
        if not params:
            raise TypeError(f"{where}.update: an aggregate takes at least one argument")
        returns = _returns(typing.get_type_hints(cls.finish), f"{where}.finish", False)
        is_strict = (not optional) if strict is None else strict
        _register(_Function(sql_name, "aggregate", params, returns, volatility, is_strict, cls))
        return cls

    return wrap(cls) if cls is not None else wrap
