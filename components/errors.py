"""Errors a user can act on; the CLI prints them in one or two lines and exits non-zero."""


class RechubError(Exception):
    """Base class: bad input or a failed check, with a message naming file, column or key."""


class DataError(RechubError):
    """A raw or intermediate file is missing, empty or malformed."""


class ValidationFailed(RechubError):
    """The data validation suite found failed expectations."""


class CheckFailed(RechubError):
    """A quality gate failed (e.g. ONNX parity beyond tolerance)."""
