"""The error a function raises to refuse its input."""


class UdfError(Exception):
    """Raised by a function, reaches the client as SQLSTATE 38000 with `message`
    (and `row`, the 0-based row of the batch, if given). Any other exception does
    too, its message prefixed with the exception's class name."""

    def __init__(self, message, row=None):
        super().__init__(message)
        self.message = str(message)
        self.row = row


def describe(exc):
    """The client's message for an exception a function raised."""
    if isinstance(exc, UdfError):
        return exc.message
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
