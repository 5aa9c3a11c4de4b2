"""Numbers: the Rust `math` example's functions, in Python."""

from typing import Optional, Sequence

import wasmudf


@wasmudf.scalar
def py_add_one(x: int) -> int:
    """x + 1, one row at a time."""
    return x + 1


@wasmudf.scalar(batch=True)
def py_add_one_batch(xs: Sequence[int]) -> Sequence[int]:
    """x + 1 over a whole column (an array of int64): the fast way."""
    return [x + 1 for x in xs]


@wasmudf.scalar
def py_gcd(a: int, b: int) -> int:
    """Greatest common divisor (Euclid), never negative."""
    a, b = abs(a), abs(b)
    while b:
        a, b = b, a % b
    return a


@wasmudf.scalar
def py_div(a: int, b: int) -> int:
    """a / b rounded toward zero; dividing by zero raises, which the client sees
    as SQLSTATE 38000 with Python's message."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


@wasmudf.scalar(name="py_hypot")
def hypot(x: float, y: float) -> float:
    return (x * x + y * y) ** 0.5


@wasmudf.scalar
def py_coalesce_zero(x: Optional[int]) -> int:
    """Called on null (the annotation admits None): null becomes 0."""
    return 0 if x is None else x


@wasmudf.scalar
def py_checked_add(a: wasmudf.int32, b: wasmudf.int32) -> wasmudf.int32:
    """An int32 sum; a result out of range is an error naming the row."""
    return a + b


@wasmudf.scalar(volatility="volatile")
def py_clock() -> float:
    """Reads the clock, which the sandbox does not give: an error saying so."""
    import time

    return time.time()


@wasmudf.scalar
def py_alloc(n: int) -> int:
    """Allocates n bytes (to reach the memory limit in tests); returns n."""
    return len(bytearray(n))


@wasmudf.scalar
def py_spin(n: int) -> int:
    """Loops n times (to exhaust fuel in tests); returns n."""
    i = 0
    while i < n:
        i += 1
    return i
