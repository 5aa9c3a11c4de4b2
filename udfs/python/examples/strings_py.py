"""Text: the Rust `strings` example's functions, in Python."""

from typing import Optional

import wasmudf


@wasmudf.scalar
def py_upper(s: str) -> str:
    return s.upper()


@wasmudf.scalar
def py_reverse(s: str) -> str:
    return s[::-1]


@wasmudf.scalar
def py_repeat(s: str, n: wasmudf.int32) -> str:
    if n < 0:
        raise wasmudf.UdfError(f"repeat count must not be negative, got {n}")
    return s * n


@wasmudf.scalar
def py_len_or_null(s: Optional[str]) -> Optional[int]:
    """Length in characters; null stays null (called on null, returns None)."""
    return None if s is None else len(s)


@wasmudf.scalar
def py_print(s: str) -> str:
    """Prints (the output is discarded) and returns its argument."""
    print("hello from", s)
    return s


@wasmudf.scalar
def py_read_file(path: str) -> str:
    """Opens a file, which the sandbox does not have: an error saying so."""
    with open(path) as f:
        return f.read()
