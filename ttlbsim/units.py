"""Parsers for values with explicit units, in the spellings netem (tc) and the study use.

- durations -> seconds (float): "35ms", "0.2s", "500us", "1ns"; a bare number means milliseconds.
- rates -> bits per second (float): "1Mbit", "1gbit", "100kbit", "1000mbit", "8mbps" (bytes/s as
  tc reads ``bps``), "1Mibit"; SI prefixes are powers of 1000, ``i`` prefixes powers of 1024;
  a bare number is bit/s (iproute2 ``lib/utils_math.c`` ``get_rate64()``).
- sizes -> bytes (int): "200KiB" (x1024), "50KB" / "50kB" (x1000), "1MiB", "0", "1448"; bare
  numbers are bytes.
- fractions -> [0, 1] (float): "10%", "0.1".

Every parser raises :class:`ttlbsim.errors.InvalidValue` naming the field, the value and the
accepted forms. Numbers that are already numbers pass through (durations/rates as-is in the
canonical unit, seconds and bit/s).
"""

from __future__ import annotations

import math
import re

from .errors import InvalidValue

_NUM = r"([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"

_DURATION_UNITS = {
    "": 1e-3, "ms": 1e-3, "msec": 1e-3, "msecs": 1e-3,
    "s": 1.0, "sec": 1.0, "secs": 1.0,
    "us": 1e-6, "usec": 1e-6, "usecs": 1e-6, "µs": 1e-6,
    "ns": 1e-9, "nsec": 1e-9, "nsecs": 1e-9,
}

_RATE_PREFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12,
                "ki": 1024.0, "mi": 1024.0**2, "gi": 1024.0**3, "ti": 1024.0**4}

_SIZE_UNITS = {
    "": 1, "b": 1, "byte": 1, "bytes": 1,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3,
    "k": 1024, "m": 1024**2,  # bare k/m as in tc/ip sizes are binary
}

DURATION_FORMS = "a duration such as '35ms', '0.2s', '500us' (a bare number is ms)"
RATE_FORMS = "a rate such as '1Mbit', '1gbit', '100kbit', '8mbps' (a bare number is bit/s)"
SIZE_FORMS = "a size such as '200KiB', '50KB', '1MiB', '0' or a number of bytes"
FRACTION_FORMS = "a fraction such as '10%' or '0.1'"


def _split(text: str) -> tuple[float, str] | None:
    m = re.fullmatch(_NUM + r"\s*([A-Za-zµ%]*)", text.strip())
    if not m:
        return None
    return float(m.group(1)), m.group(2)


def parse_duration(value: str | float | int, field: str = "duration") -> float:
    """Parse a duration; return seconds. A number (not a string) is taken as seconds already."""
    if isinstance(value, bool):
        raise InvalidValue(field, value, DURATION_FORMS)
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        parts = _split(str(value))
        if parts is None or parts[1].lower() not in _DURATION_UNITS:
            raise InvalidValue(field, value, DURATION_FORMS)
        seconds = parts[0] * _DURATION_UNITS[parts[1].lower()]
    if not math.isfinite(seconds):
        raise InvalidValue(field, value, DURATION_FORMS)
    return seconds


def parse_rate(value: str | float | int, field: str = "rate") -> float:
    """Parse a link rate; return bits per second. A number is taken as bit/s."""
    if isinstance(value, bool):
        raise InvalidValue(field, value, RATE_FORMS)
    if isinstance(value, (int, float)):
        bps = float(value)
    else:
        parts = _split(str(value))
        if parts is None:
            raise InvalidValue(field, value, RATE_FORMS)
        number, unit = parts[0], parts[1].lower()
        m = re.fullmatch(r"(k|m|g|t|ki|mi|gi|ti)?(bit|bps)?", unit)
        if unit == "" :
            bps = number
        elif m and m.group(2):
            bps = number * _RATE_PREFIX[m.group(1) or ""] * (8.0 if m.group(2) == "bps" else 1.0)
        else:
            raise InvalidValue(field, value, RATE_FORMS)
    if not math.isfinite(bps):
        raise InvalidValue(field, value, RATE_FORMS)
    return bps


def parse_size(value: str | int | float, field: str = "size") -> int:
    """Parse a byte count; return bytes (int). KiB = 1024, KB = 1000."""
    if isinstance(value, bool):
        raise InvalidValue(field, value, SIZE_FORMS)
    if isinstance(value, (int, float)):
        nbytes = float(value)
    else:
        parts = _split(str(value))
        if parts is None or parts[1].lower() not in _SIZE_UNITS:
            raise InvalidValue(field, value, SIZE_FORMS)
        nbytes = parts[0] * _SIZE_UNITS[parts[1].lower()]
    if not math.isfinite(nbytes) or nbytes != int(nbytes):
        raise InvalidValue(field, value, SIZE_FORMS + " (a whole number of bytes)")
    return int(nbytes)


def parse_fraction(value: str | float | int, field: str = "fraction") -> float:
    """Parse a probability; return a float. "10%" -> 0.1; "0.1" -> 0.1."""
    if isinstance(value, bool):
        raise InvalidValue(field, value, FRACTION_FORMS)
    if isinstance(value, (int, float)):
        frac = float(value)
    else:
        parts = _split(str(value))
        if parts is None or parts[1] not in ("", "%"):
            raise InvalidValue(field, value, FRACTION_FORMS)
        frac = parts[0] / 100.0 if parts[1] == "%" else parts[0]
    if not math.isfinite(frac):
        raise InvalidValue(field, value, FRACTION_FORMS)
    return frac


def parse_size_list(value: str, field: str = "data") -> tuple[int, ...]:
    """Parse a comma-separated list of sizes ("0,50KiB,200KiB")."""
    items = [v for v in str(value).split(",") if v.strip()]
    if not items:
        raise InvalidValue(field, value, "a comma-separated list of sizes such as '0,50KiB,200KiB'")
    return tuple(parse_size(v, field) for v in items)


def format_size(nbytes: int) -> str:
    """Human form of a byte count: 204800 -> '200KiB'."""
    if nbytes and nbytes % 1024 == 0:
        if nbytes % (1024 * 1024) == 0:
            return f"{nbytes // (1024 * 1024)}MiB"
        return f"{nbytes // 1024}KiB"
    return f"{nbytes}B"


def format_rate(bps: float) -> str:
    for unit, scale in (("Gbit", 1e9), ("Mbit", 1e6), ("kbit", 1e3)):
        if bps >= scale:
            return f"{bps / scale:g}{unit}"
    return f"{bps:g}bit"


def format_duration(seconds: float) -> str:
    return f"{seconds * 1e3:g}ms"
