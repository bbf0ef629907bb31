"""Input hygiene: names that become paths are validated, secrets are redacted from messages."""

from __future__ import annotations

import re

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=-]{0,199}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# ``password=...`` (Feast's and libpq's comma or space forms, quoted or not; also ``password: ...``
# and ``'password': '...'`` of YAML and dict reprs) and the password of URL credentials
# (``redis://:pw@h``, ``redis://user:pw@h``; up to the last ``@`` before the path).
_SECRETS = (
    (
        re.compile(
            r"(?i)((?:password|passwd|secret|token)[\"']?\s*[=:]\s*)"
            r"(\"[^\"]*\"|'[^']*'|[^,;&\s'\"}]+)"
        ),
        r"\1***",
    ),
    (re.compile(r"(?i)(://[^:/@\s]*):([^/\s]+)@"), r"\1:***@"),
)


class UnsafeNameError(ValueError):
    """A partition key, model name or file name that could escape its folder."""


def safe_name(value: object, what: str) -> str:
    """``value`` if it is one plain path segment (no ``/``, ``\\``, ``..``, not absolute)."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise UnsafeNameError(
            f"{what} {value!r} is refused (rule safe_name): one segment of letters, digits, "
            "'_', '-', '.' or '=', no path separators, no '..', not absolute"
        )
    return value


def safe_sha256(value: object, what: str = "model version") -> str:
    """A full lower-case sha256 hex digest."""
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise UnsafeNameError(
            f"{what} {value!r} is refused (rule sha256): 64 lower-case hex digits"
        )
    return value


def redact(text: str) -> str:
    """``text`` with ``password=...`` values (quoted or not) and URL passwords masked."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text
