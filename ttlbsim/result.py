"""Results: per-run arrays with the scenario and provenance, percentiles, tables, JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PERCENTILES = (10, 25, 50, 75, 90, 99)
SCHEMA_VERSION = 1
METRICS = ("ttfb_ms", "ttlb_ms", "retransmits", "rtos", "tlps", "packets_up", "packets_down", "bytes_up", "bytes_down")


def summarize(values: np.ndarray) -> dict[str, float]:
    """p10..p99 and mean of an array (linear interpolation, numpy's default)."""
    out = {f"p{p}": float(np.percentile(values, p)) for p in PERCENTILES}
    out["mean"] = float(np.mean(values))
    return out


@dataclass(frozen=True)
class Result:
    """`runs` simulated (or emulated) connections of one scenario.

    Arrays (one entry per run): `ttfb_ms` (connect → client handshake complete), `ttlb_ms`
    (connect → last response byte at the client), `retransmits`, `rtos`, `tlps`,
    `packets_up`/`packets_down` (segments client→server / server→client, incl. lost ones),
    `bytes_up`/`bytes_down` (frame bytes as netem counts them); from the simulator also
    `min_rtt_ms`/`server_min_rtt_ms` (each endpoint's smallest RTT sample, TCP_INFO's
    tcpi_min_rtt; nan where it took none).
    """

    scenario: Any
    seed: int
    arrays: dict[str, np.ndarray]
    source: str = "simulator"
    provenance: dict = field(default_factory=dict)

    @property
    def runs(self) -> int:
        return int(len(self.arrays["ttlb_ms"]))

    def __getattr__(self, name: str) -> np.ndarray:
        arrays = self.__dict__.get("arrays", {})
        if name in arrays:
            return arrays[name]
        raise AttributeError(name)

    def percentiles(self, metric: str = "ttlb_ms") -> dict[str, float]:
        return summarize(self.arrays[metric])

    def to_dict(self) -> dict[str, Any]:
        scenario = self.scenario.to_dict() if hasattr(self.scenario, "to_dict") else self.scenario
        out: dict[str, Any] = {"schema": SCHEMA_VERSION, "source": self.source, "scenario": scenario,
                               "runs": self.runs, "seed": self.seed,
                               "ttfb_ms": self.percentiles("ttfb_ms"), "ttlb_ms": self.percentiles("ttlb_ms")}
        for m in METRICS[2:]:
            if m in self.arrays:
                out[f"{m}_mean"] = float(np.mean(self.arrays[m]))
        out["provenance"] = self.provenance
        return out

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)

    def to_dataframe(self):
        """One row per run (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("to_dataframe() needs pandas: pip install pandas") from exc
        return pd.DataFrame({k: np.asarray(v) for k, v in self.arrays.items()})


def slowdown_pct(base: dict[str, float], other: dict[str, float]) -> dict[str, float]:
    """100·(other/base − 1) per percentile key."""
    return {k: 100.0 * (other[k] / base[k] - 1.0) if base[k] else float("nan") for k in base}


@dataclass(frozen=True)
class Comparison:
    """Side a vs side b, per response size: both results and b's % slowdown over a."""

    a: tuple[Result, ...]
    b: tuple[Result, ...]
    data_bytes: tuple[int, ...]

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for size, ra, rb in zip(self.data_bytes, self.a, self.b):
            row: dict[str, Any] = {"data_bytes": size}
            for metric in ("ttfb_ms", "ttlb_ms"):
                pa, pb = ra.percentiles(metric), rb.percentiles(metric)
                row[metric] = {"a": pa, "b": pb, "slowdown_pct": slowdown_pct(pa, pb)}
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSION,
                "a": self.a[0].scenario.tls.__dict__ if self.a else {},
                "b": self.b[0].scenario.tls.__dict__ if self.b else {},
                "runs": self.a[0].runs if self.a else 0,
                "sizes": self.rows()}
