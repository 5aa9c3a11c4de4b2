"""The contract's exports (`guest`, `scalar`, `aggregate`) over the registered functions.

Every entry point catches every exception: an escaping one would trap the instance
with a bare `unreachable`, its message lost. Instead the client gets SQLSTATE 38000
with the message and, where known, the row.
"""

import pickle

import componentize_py_types
from wit_world.exports import aggregate as wit_aggregate
from wit_world.imports import types as t

from . import REGISTRY
from . import _columns as columns
from ._errors import describe as _describe
from ._types import binary

_VOLATILITY = {
    "immutable": t.Volatility.IMMUTABLE,
    "stable": t.Volatility.STABLE,
    "volatile": t.Volatility.VOLATILE,
}


def _err(exc, row=None):
    row = getattr(exc, "row", None) if row is None else row
    return componentize_py_types.Err(t.UdfError(_describe(exc), row))


def _function(number, kind):
    if number >= len(REGISTRY) or REGISTRY[number].kind != kind:
        raise LookupError(f"no {kind} function number {number}")
    return REGISTRY[number]


class Guest:
    def describe(self):
        return [
            t.FunctionSignature(
                f.name,
                t.FunctionKind.SCALAR if f.kind == "scalar" else t.FunctionKind.AGGREGATE,
                [p.wit() for p in f.params],
                f.returns.wit(),
                _VOLATILITY[f.volatility],
                t.NullHandling.STRICT if f.strict else t.NullHandling.CALLED_ON_NULL,
            )
            for f in REGISTRY
        ]


class Scalar:
    def call(self, function, rows, args):
        try:
            f = _function(function, "scalar")
            if f.batch:
                return _call_batch(f, rows, args)
            return _call_rows(f, rows, args)
        except componentize_py_types.Err:
            raise
        except BaseException as e:  # noqa: BLE001 (see the module's comment)
            raise _err(e) from None


def _call_rows(f, rows, args):
    cols = [columns.values(c, typ, rows) for c, typ in zip(args, f.params)]
    target = f.target
    # A strict function skips rows with a null (None) argument.
    skip_nulls = f.strict and any(c.validity is not None for c in args)
    if not args:
        out = [None] * rows
        i = 0
        try:
            for i in range(rows):
                out[i] = target()
        except BaseException as e:  # noqa: BLE001
            raise _err(e, i) from None
    elif not skip_nulls:
        try:
            # map() runs the calls in one C loop; only a failure needs the row: the
            # batch is then run again row by row.
            out = list(map(target, *cols))
        except BaseException:  # noqa: BLE001
            out = _rows_one_by_one(target, cols, False, f)
    else:
        out = _rows_one_by_one(target, cols, True, f)
    return columns.column(out, f.returns, rows)


def _rows_one_by_one(target, cols, skip_nulls, f):
    """The calls row by row, naming the row that fails; with `skip_nulls`, a row
    with a None argument gets a placeholder (a strict function's nulls are the
    host's)."""
    out = []
    zero = columns._ZERO[f.returns.kind]
    i = 0
    try:
        for i, row in enumerate(zip(*cols)):
            out.append(zero if skip_nulls and None in row else target(*row))
    except BaseException as e:  # noqa: BLE001
        raise _err(e, i) from None
    return out


def _call_batch(f, rows, args):
    cols = []
    for c, typ in zip(args, f.params):
        if f.strict:
            # Nulls' values are ignored by the host: the raw buffer (fast) is enough.
            vals = columns.raw_values(c, typ)
            if c.len == 1 and rows != 1:
                vals = vals * rows
        else:
            vals = columns.values(c, typ, rows)
        cols.append(vals)
    try:
        out = f.target(*cols)
    except BaseException as e:  # noqa: BLE001
        raise _err(e) from None
    if not hasattr(out, "__len__"):
        out = list(out)
    return columns.column(out, f.returns, rows)


def _take(states, emit):
    """The states `emit` selects, and the states left."""
    if isinstance(emit, wit_aggregate.EmitTo_First):
        return states[: emit.value], states[emit.value :]
    if isinstance(emit, wit_aggregate.EmitTo_PeekAll):
        return states, states
    return states, []


class Aggregate:
    def info(self, function):
        try:
            f = _function(function, "aggregate")
            return wit_aggregate.AggregateInfo([binary.wit()], callable(getattr(f.target, "retract", None)))
        except BaseException as e:  # noqa: BLE001
            raise _err(e) from None


class Groups:
    """Every group's state of one aggregate: a list of the user's class instances."""

    def __init__(self, function):
        # The constructor cannot return an error: an unknown number is reported by the
        # first call instead.
        self.f = REGISTRY[function] if function < len(REGISTRY) else None
        self.states = []

    def _grow(self, total):
        f = self._fn()
        if total > len(self.states):
            self.states.extend(f.target() for _ in range(total - len(self.states)))

    def _fn(self):
        if self.f is None or self.f.kind != "aggregate":
            raise LookupError("not an aggregate function")
        return self.f

    def _rows(self, method, args, group_indices, total_groups):
        try:
            f = self._fn()
            self._grow(total_groups)
            rows = len(group_indices)
            cols = [columns.values(c, typ, rows) for c, typ in zip(args, f.params)]
        except BaseException as e:  # noqa: BLE001
            raise _err(e) from None
        states = self.states
        i = 0
        try:
            for i, row in enumerate(zip(*cols)):
                getattr(states[group_indices[i]], method)(*row)
        except BaseException as e:  # noqa: BLE001
            raise _err(e, i) from None

    def update(self, args, group_indices, total_groups):
        self._rows("update", args, group_indices, total_groups)

    def retract(self, args, group_indices, total_groups):
        self._rows("retract", args, group_indices, total_groups)

    def merge(self, states, group_indices, total_groups):
        i = 0
        try:
            self._grow(total_groups)
            (col,) = states
            blobs = columns.raw_values(col, binary)
            for i, blob in enumerate(blobs):
                self.states[group_indices[i]].merge(pickle.loads(blob))
        except BaseException as e:  # noqa: BLE001
            raise _err(e, i) from None

    def state(self, emit):
        try:
            taken, self.states = _take(self.states, emit)
            return [columns.column([pickle.dumps(s) for s in taken], binary, len(taken))]
        except BaseException as e:  # noqa: BLE001
            raise _err(e) from None

    def evaluate(self, emit):
        try:
            f = self._fn()
            taken, self.states = _take(self.states, emit)
        except BaseException as e:  # noqa: BLE001
            raise _err(e) from None
        out = [None] * len(taken)
        i = 0
        try:
            for i, s in enumerate(taken):
                out[i] = s.finish()
        except BaseException as e:  # noqa: BLE001
            raise _err(e, i) from None
        try:
            return columns.column(out, f.returns, len(taken))
        except BaseException as e:  # noqa: BLE001
            raise _err(e) from None
