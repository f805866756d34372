"""CPU time of the handshake's cryptographic operations.

"measured": each operation ("kem.encaps:X25519MLKEM768", "sign:mldsa44", ...) is timed once on
this machine by running the genuine primitive (`ttlbsim.handshake.algorithms.operation`) a few
times and taking the median; results are cached in-process and in
``$XDG_CACHE_HOME/ttlbsim/compute-<host>.json`` so later processes reuse them.
"zero": no compute time. "explicit": the times given in the ComputeConfig.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path

from .scenario import ComputeConfig

_MEASURED: dict[str, float] = {}


def _cache_file() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ttlbsim" / f"compute-{platform.node() or 'host'}.json"


def _load_disk() -> None:
    if _MEASURED:
        return
    try:
        _MEASURED.update({k: float(v) for k, v in json.loads(_cache_file().read_text()).items()})
    except (OSError, ValueError):
        pass


def _save_disk() -> None:
    try:
        path = _cache_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(_MEASURED, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError:
        pass


def measure_operation(op: str, repeat: int = 7) -> float:
    """Median wall time in seconds of one `op`, measured with the genuine primitive."""
    _load_disk()
    if op in _MEASURED:
        return _MEASURED[op]
    from .handshake.algorithms import operation

    fn = operation(op)
    fn()  # warm-up
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    _MEASURED[op] = statistics.median(samples)
    _save_disk()
    return _MEASURED[op]


def resolve(config: ComputeConfig, ops) -> ComputeConfig:
    """The same config with "measured" made explicit: each of `ops` measured here, once. Done in
    the parent before runs are spread over processes or machines, so every worker uses the
    same numbers (scale and flight overhead kept)."""
    if config.mode != "measured":
        return config
    times = {op: float(measure_operation(op)) for op in ops}
    return dataclasses.replace(config, mode="explicit", times_s=times)


class ComputeModel:
    """Seconds of CPU a side spends before writing a flight, from its list of operations."""

    def __init__(self, config: ComputeConfig) -> None:
        self.config = config
        self._explicit = dict(config.times_s)
        self._cache: dict[tuple[str, ...], float] = {}

    def op_time(self, op: str) -> float:
        mode = self.config.mode
        if mode == "zero":
            return 0.0
        if mode == "explicit":
            if op in self._explicit:
                return self._explicit[op]
            return self._explicit.get(op.split(":", 1)[0], 0.0)
        return measure_operation(op)

    def flight_time(self, ops: tuple[str, ...]) -> float:
        """Seconds before a side writes a flight that needs `ops`: the scaled crypto time plus
        the host's per-flight overhead."""
        if ops not in self._cache:
            self._cache[ops] = (self.config.scale * sum(self.op_time(op) for op in ops)
                                + self.config.flight_overhead_s)
        return self._cache[ops]
