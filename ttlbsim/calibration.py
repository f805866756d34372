"""Calibrated host profiles: the few host parameters the model cannot know, fitted against real
emulation runs by `python -m validation.calibrate` (see models/calibration/README.md).

A profile is a JSON file: ``models/calibration/<name>.json`` (shipped in the wheel) or any path.
It carries the hosts' per-packet latency (``packet_delay_s`` + an exponential wake-up latency of
mean ``packet_jitter_s``, fitted to the kernel's minimum RTTs), the fitted per-flight host latency
(``flight_overhead_s``, its mean, and ``overhead_sigma``, the lognormal shape of its
flight-to-flight variation), a scale for the crypto
times, and the per-operation crypto times measured on the calibration host — so results that use a
profile are the same on every machine (only operations the profile lacks are measured locally).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidValue
from .paths import models_dir

#: the profile the simulator uses unless told otherwise: the Linux 6.1 UML guest that
#: `ttlbsim emulate` runs in, fitted against validation/data/study
DEFAULT_PROFILE = "uml-6.1"


@dataclass(frozen=True)
class Calibration:
    """One fitted host profile. Times in seconds."""

    name: str
    flight_overhead_s: float
    overhead_sigma: float
    compute_scale: float
    read_delay_s: float
    compute_times_s: tuple[tuple[str, float], ...]
    hz: int | None
    sha256: str
    source: str
    recv_cost_s: float = 0.0  # seconds per recv() call of the application (0 if the profile has none)
    packet_delay_s: float = 0.0  # the hosts' fixed per-packet latency (0 if the profile has none)
    packet_jitter_s: float = 0.0  # mean of their exponential per-packet latency (0 if none)

    def times(self) -> dict[str, float]:
        return dict(self.compute_times_s)


def available() -> list[str]:
    """Names of the profiles shipped with ttlbsim."""
    return sorted(p.stem for p in (models_dir() / "calibration").glob("*.json"))


def _path(name: str) -> Path:
    p = Path(name)
    if p.suffix == ".json" or len(p.parts) > 1:
        return p
    return models_dir() / "calibration" / f"{name}.json"


@functools.lru_cache(maxsize=32)
def load(name: str) -> Calibration:
    """The profile `name` (a shipped profile's name or a path to a JSON file). Raises InvalidValue
    (a ValueError) naming the value when it is missing or malformed."""
    accepted = "a calibration profile (" + ", ".join(available() + ["none"]) + ") or a path to one's JSON file"
    path = _path(str(name))
    try:
        raw = path.read_bytes()
        doc = json.loads(raw)
        params = doc["parameters"]
        overhead = float(params["flight_overhead_s"])
        sigma = float(params.get("overhead_sigma", 0.0))
        scale = float(params.get("compute_scale", 1.0))
        read_delay = float(params.get("read_delay_s", 0.0))
        recv_cost = float(params.get("recv_cost_s", 0.0))
        packet_delay = float(params.get("packet_delay_s", 0.0))
        packet_jitter = float(params.get("packet_jitter_s", 0.0))
        times = tuple(sorted((str(k), float(v)) for k, v in doc.get("compute_times_s", {}).items()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise InvalidValue("calibration", name, accepted) from None
    if not all(math.isfinite(x) and x >= 0
               for x in (overhead, sigma, scale, read_delay, recv_cost, packet_delay, packet_jitter,
                         *(v for _, v in times))) \
            or sigma > 5 or read_delay > 1 or recv_cost > 1 or packet_delay > 0.1 or packet_jitter > 0.1:
        raise InvalidValue("calibration", name, accepted + " with finite, non-negative parameters")
    hz = params.get("hz")
    return Calibration(name=str(doc.get("profile", path.stem)), flight_overhead_s=overhead, overhead_sigma=sigma,
                       compute_scale=scale, read_delay_s=read_delay, recv_cost_s=recv_cost,
                       packet_delay_s=packet_delay, packet_jitter_s=packet_jitter,
                       compute_times_s=times, hz=int(hz) if hz is not None else None,
                       sha256=hashlib.sha256(raw).hexdigest(), source=str(path))
