"""SQL functions: add_one(bigint) and the aggregate my_sum(bigint)."""

from typing import Optional

import wasmudf


@wasmudf.scalar
def add_one(x: int) -> int:
    """x + 1; an exception reaches the client as SQLSTATE 38000 with its message."""
    if x == 2**63 - 1:
        raise ValueError("bigint out of range")
    return x + 1


@wasmudf.aggregate
class my_sum:
    """A bigint sum, NULL for no rows (strict: nulls never reach update)."""

    def __init__(self):
        self.total = 0
        self.n = 0

    def update(self, x: int) -> None:
        self.total += x
        self.n += 1

    def merge(self, other: "my_sum") -> None:
        self.total += other.total
        self.n += other.n

    def finish(self) -> Optional[int]:
        return self.total if self.n else None
