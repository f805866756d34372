"""netem's delay-jitter distributions: iproute2's tables and the kernel's `tabledist()` scaling.

Real-world behaviour modelled
-----------------------------
`tc qdisc ... netem delay D J distribution X` loads `X.dist` (a sampled inverse CDF, 4096
signed 16-bit entries scaled by NETEM_DIST_SCALE = 8192) into the kernel; per packet the kernel
draws a uniform 32-bit number r and returns (all integers, in ns)::

    t = table[r % 4096]
    delay = D + round_half_away((J % 8192) * t / 8192) + (J // 8192) * t

(`tabledist()` in linux-6.1 `net/sched/sch_netem.c`). Without a `distribution` keyword the
jitter is uniform: ``delay = D - J + (r % 2J)``, on [D - J, D + J).

The three standard tables are rebuilt here exactly as iproute2's generators build them
(`netem/normal.c`, `netem/pareto.c`, `netem/paretonormal.c`; see linux-tcp-netem.md §9):

- normal: walk x from -10 in steps of 0.00005 (accumulated, as the C loop does) while
  x < 10.05; remember the last x for each CDF bin i = rint(16384 * Phi(x)); entry k is
  rint(8192 * x_{4k}) clipped to int16.
- pareto: shape 3, scale 1; entry k = rint(min(8192 * 4/3 * (u^(-1/3) - 1.5), 32767)) with
  u = (65536 - 16k) / 65536.
- paretonormal: entry k = trunc((N_k + 3 * P_k) / 4) clipped to int16, N_k the *unclipped*
  normal value, P_k the pareto value (a quantile-wise blend, not a mixture).

`tests/test_netem.py` compares them value for value with Debian's iproute2 `.dist` files when
those are installed. Tables are built once per process (module-level cache).

Units: seconds at the API (floats); nanosecond integers inside, as the kernel computes.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .errors import InvalidValue

__all__ = [
    "DISTRIBUTIONS",
    "NETEM_DIST_SCALE",
    "TABLE_SIZE",
    "delay_lut_s",
    "delay_table",
    "sample_delays",
    "sample_delays_ns",
]

NETEM_DIST_SCALE = 8192
"""Table values are the distribution's quantiles times this (include/uapi/linux/pkt_sched.h)."""

TABLE_SIZE = 4096
"""Entries in each of iproute2's standard `.dist` tables."""

DISTRIBUTIONS = ("uniform", "normal", "pareto", "paretonormal")
"""Jitter distributions: `uniform` is netem without a `distribution` keyword (no table)."""

_INT16_MIN, _INT16_MAX = -32768, 32767
_CDF_BINS = 16384  # TABLESIZE in the iproute2 generators
_JITTER_MAX_NS = 2**31 - 1  # netem_change() caps jitter at INT_MAX ns

_tables: dict[str, np.ndarray] = {}


@functools.lru_cache(maxsize=1)
def _normal_unclipped() -> np.ndarray:
    """rint(8192 * x_i) for i = 0, 4, ..., 16380, before int16 clipping (iproute2 normal.c)."""
    # `for (x = -10.0; x < 10.05; x += .00005)`: the accumulated sum, step by step.
    steps = np.full(int(20.05 / 0.00005) + 2, 0.00005)
    steps[0] = -10.0
    x = np.add.accumulate(steps)  # sequential left-to-right sum, like the C loop
    x = x[x < 10.05]
    erf = np.frompyfunc(math.erf, 1, 1)
    cdf = 0.5 + 0.5 * erf(x / math.sqrt(2.0)).astype(np.float64)
    idx = np.rint(_CDF_BINS * cdf).astype(np.int64)
    last = np.empty(_CDF_BINS + 1)
    last.fill(np.nan)
    is_last = np.r_[idx[1:] != idx[:-1], True]  # the last x seen for each bin wins
    last[idx[is_last]] = x[is_last]
    picked = last[0:_CDF_BINS:4]
    assert not np.isnan(picked).any()
    return np.rint(picked * NETEM_DIST_SCALE).astype(np.int64)


def _pareto() -> np.ndarray:
    """iproute2 pareto.c: Pareto(a=3) inverse CDF, shifted by its mean 1.5, scaled by 4/3."""
    i = 65536 - 16 * np.arange(TABLE_SIZE, dtype=np.int64)
    u = i.astype(np.float64) / 65536.0
    value = 1.0 / np.power(u, 1.0 / 3.0)
    value = (value - 1.5) * ((4.0 / 3.0) * NETEM_DIST_SCALE)
    value = np.minimum(value, 32767.0)
    return np.rint(value).astype(np.int64)


def _build(name: str) -> np.ndarray:
    if name == "normal":
        table = np.clip(_normal_unclipped(), _INT16_MIN, _INT16_MAX)
    elif name == "pareto":
        table = _pareto()
    elif name == "paretonormal":
        s = _normal_unclipped() + 3 * _pareto()
        table = np.clip(np.sign(s) * (np.abs(s) // 4), _INT16_MIN, _INT16_MAX)  # C division
    else:
        raise InvalidValue("jitter_dist", name, "one of normal, pareto, paretonormal")
    return table.astype(np.int16)


def delay_table(name: str) -> np.ndarray:
    """The 4096-entry int16 table iproute2 ships as `<name>.dist` (read-only, cached)."""
    table = _tables.get(name)
    if table is None:
        table = _build(name)
        table.setflags(write=False)
        _tables[name] = table
    return table


def _check(dist: str) -> str:
    d = str(dist).lower()
    if d not in DISTRIBUTIONS:
        raise InvalidValue("jitter_dist", dist, "one of " + ", ".join(DISTRIBUTIONS))
    return d


def _tabledist_ns(table: np.ndarray, mu: int, sigma: int) -> np.ndarray:
    """`tabledist()` for table values `table` (int64 array): integer ns, rounding as the kernel."""
    x = (sigma % NETEM_DIST_SCALE) * table
    half = NETEM_DIST_SCALE // 2
    frac = np.where(x >= 0, (x + half) // NETEM_DIST_SCALE, -((half - x) // NETEM_DIST_SCALE))
    return frac + (sigma // NETEM_DIST_SCALE) * table + mu


@functools.lru_cache(maxsize=64)
def delay_lut_s(dist: str, delay_ns: int, jitter_ns: int) -> np.ndarray:
    """Delay in seconds for each of the 4096 table indices: ``delay_lut_s(...)[r % 4096]``.

    The per-packet delay depends only on the table index, so a path precomputes this once and
    samples it with a uniform index (what ``r % 4096`` of a uniform u32 is). Read-only, cached.
    """
    table = delay_table(_check(dist)).astype(np.int64)
    lut = _tabledist_ns(table, int(delay_ns), min(abs(int(jitter_ns)), _JITTER_MAX_NS)) * 1e-9
    lut.setflags(write=False)
    return lut


def sample_delays_ns(dist: str, delay_ns: int, jitter_ns: int, n: int,
                     rng: np.random.Generator) -> np.ndarray:
    """`n` per-packet netem delays in integer ns (int64), as `tabledist()` computes them.

    `delay_ns` is netem's `delay` (mu), `jitter_ns` its jitter (sigma, capped at 2^31 - 1 as
    netem_change() does). jitter 0 returns mu without drawing a random number (as the kernel).
    Results can be negative (normal reaches -4 J, paretonormal -1.5 J).
    """
    d = _check(dist)
    mu = int(delay_ns)
    sigma = min(abs(int(jitter_ns)), _JITTER_MAX_NS)
    if sigma == 0:
        return np.full(n, mu, dtype=np.int64)
    rnd = rng.integers(0, 1 << 32, size=n, dtype=np.uint64).astype(np.int64)
    if d == "uniform":
        return (rnd % (2 * sigma)) + mu - sigma
    return _tabledist_ns(delay_table(d).astype(np.int64)[rnd % TABLE_SIZE], mu, sigma)


def sample_delays(dist: str, delay_s: float, jitter_s: float, n: int,
                  rng: np.random.Generator) -> np.ndarray:
    """`n` per-packet netem delays in seconds (float64 array).

    `delay_s`/`jitter_s` are the `delay` and jitter of one netem instance (ttlbsim gives each
    direction rtt/2 and jitter/2). Times are rounded to whole ns first, as tc passes them.
    """
    ns = sample_delays_ns(dist, round(delay_s * 1e9), round(jitter_s * 1e9), n, rng)
    return ns * 1e-9
