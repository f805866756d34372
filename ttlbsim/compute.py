"""CPU time of the handshake's cryptographic operations.

"calibrated" (the default): the times, scale and per-flight overhead of a calibrated host profile
(`ttlbsim.calibration`); operations the profile lacks are measured here and scaled alike.
"measured": each operation ("kem.encaps:X25519MLKEM768", "sign:mldsa44", ...) is timed once on
this machine by running the genuine primitive (`ttlbsim.handshake.algorithms.operation`) a few
times and taking the median; results are cached in-process and in
``$XDG_CACHE_HOME/ttlbsim/compute-<host>.json`` so later processes reuse them.
"zero": no compute time. "explicit": the times given in the ComputeConfig.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path

from typing import TYPE_CHECKING

from .scenario import ComputeConfig

if TYPE_CHECKING:
    import numpy as np

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
    """The same config made explicit for the operations `ops`: "measured" times measured here,
    once; "calibrated" times, scale and overhead taken from the profile (operations it lacks
    measured here). Done in the parent before runs are spread over processes or machines, so
    every worker uses the same numbers. The profile's name stays in `profile` as provenance."""
    if config.mode == "measured":
        times = {op: float(measure_operation(op)) for op in ops}
        return dataclasses.replace(config, mode="explicit", times_s=times, flight_overhead_s=config.overhead_s)
    if config.mode == "calibrated":
        from .calibration import load

        cal = load(config.profile)
        known = cal.times()
        times = {op: known[op] if op in known else float(measure_operation(op)) for op in ops}
        overhead = cal.flight_overhead_s if config.flight_overhead_s is None else config.flight_overhead_s
        sigma = cal.overhead_sigma if config.overhead_sigma is None else config.overhead_sigma
        read_delay = cal.read_delay_s if config.read_delay_s is None else config.read_delay_s
        recv_cost = cal.recv_cost_s if config.recv_cost_s is None else config.recv_cost_s
        pdelay = cal.packet_delay_s if config.packet_delay_s is None else config.packet_delay_s
        pjitter = cal.packet_jitter_s if config.packet_jitter_s is None else config.packet_jitter_s
        return dataclasses.replace(config, mode="explicit", times_s=times, scale=config.scale * cal.compute_scale,
                                   flight_overhead_s=overhead, overhead_sigma=sigma, read_delay_s=read_delay,
                                   recv_cost_s=recv_cost, packet_delay_s=pdelay, packet_jitter_s=pjitter)
    return config


class ComputeModel:
    """Seconds of CPU a side spends before writing a flight, from its list of operations."""

    def __init__(self, config: ComputeConfig) -> None:
        self.config = config
        self._cache: dict[tuple[str, ...], tuple[float, float, float]] = {}
        host = resolve(config, ())
        # flight overheads or packet latencies that are random: then no two runs are alike
        self.varies = (host.sigma > 0 and host.overhead_s > 0) or host.packet_jitter > 0
        self.read_delay = host.read_delay  # s, the application's read delay
        self.recv_cost = host.recv_cost  # s per recv() call of the application
        self.packet_delay = host.packet_delay  # s, the hosts' fixed per-packet latency
        self.packet_jitter = host.packet_jitter  # s, mean of their exponential per-packet latency

    @staticmethod
    def _op_time(config: ComputeConfig, op: str) -> float:
        if config.mode == "zero":
            return 0.0
        times = dict(config.times_s)
        if op in times:
            return times[op]
        return times.get(op.split(":", 1)[0], 0.0)

    def op_time(self, op: str) -> float:
        """Unscaled seconds of one operation."""
        return self._op_time(resolve(self.config, (op,)), op)

    def flight_time(self, ops: tuple[str, ...], rng: "np.random.Generator | None" = None) -> float:
        """Seconds before a side writes a flight that needs `ops`: the scaled crypto time plus
        the host's per-flight overhead. With an `overhead_sigma` > 0 and a generator `rng`, the
        overhead is the mean times a lognormal factor of mean 1 (one draw per call)."""
        if ops not in self._cache:
            c = resolve(self.config, ops)
            self._cache[ops] = (c.scale * sum(self._op_time(c, op) for op in ops), c.overhead_s, c.sigma)
        crypto, overhead, sigma = self._cache[ops]
        if sigma > 0.0 and rng is not None:
            return crypto + overhead * math.exp(sigma * rng.standard_normal() - 0.5 * sigma * sigma)
        return crypto + overhead

    def crypto_time(self, ops: tuple[str, ...]) -> float:
        """Seconds of the scaled crypto in `ops` alone, without the per-flight overhead: the work a
        side does in the middle of reading or writing a flight (`Flight.read_ops`/`write_ops`)."""
        if ops not in self._cache:
            self.flight_time(ops)
        return self._cache[ops][0]
