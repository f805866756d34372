"""The one exception family for every invalid value a user can hand ttlbsim.

Every error names the field (or flag), the rejected value and what is accepted, so the CLI can print
it as one line and library users can catch a single type (`InvalidValue` is a `ValueError`)."""

from __future__ import annotations


class TTLBSimError(ValueError):
    """Base class of ttlbsim's user-facing errors."""


class InvalidValue(TTLBSimError):
    """A configuration value that ttlbsim cannot accept.

    `field` is the name the user used (a dataclass field or a CLI flag), `value` the rejected
    value as given, `accepted` a short description of what would have been accepted.
    """

    def __init__(self, field: str, value: object, accepted: str) -> None:
        self.field = field
        self.value = value
        self.accepted = accepted
        super().__init__(f"invalid {field} {value!r}: expected {accepted}")


class BackendUnavailable(TTLBSimError):
    """No way to run a real emulation on this machine (used by `ttlbsim emulate`)."""
