"""Aggregates: the Rust `stats` example's kind of function, in Python."""

from typing import Optional

import wasmudf


@wasmudf.aggregate
class py_mean:
    """Arithmetic mean of the non-null values (strict: nulls never reach update)."""

    def __init__(self):
        self.n = 0
        self.total = 0.0

    def update(self, x: float) -> None:
        self.n += 1
        self.total += x

    def retract(self, x: float) -> None:
        self.n -= 1
        self.total -= x

    def merge(self, other: "py_mean") -> None:
        self.n += other.n
        self.total += other.total

    def finish(self) -> Optional[float]:
        return self.total / self.n if self.n else None


@wasmudf.aggregate
class py_concat:
    """Joins the group's strings with commas, in input order; nulls count as '?'."""

    def __init__(self):
        self.parts = []

    def update(self, s: Optional[str]) -> None:
        self.parts.append("?" if s is None else s)

    def merge(self, other: "py_concat") -> None:
        self.parts.extend(other.parts)

    def finish(self) -> str:
        return ",".join(self.parts)


@wasmudf.aggregate
class py_strict_sum:
    """Sum of bigints that refuses negative values (an error naming the row)."""

    def __init__(self):
        self.total = 0

    def update(self, x: int) -> None:
        if x < 0:
            raise ValueError(f"negative value {x}")
        self.total += x

    def merge(self, other: "py_strict_sum") -> None:
        self.total += other.total

    def finish(self) -> int:
        return self.total
