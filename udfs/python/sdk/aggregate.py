"""componentize-py looks for the `aggregate` interface's resource here (`Groups`)."""

from wasmudf._exports import Groups  # noqa: F401
