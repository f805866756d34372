"""Linux kernel timer expiry: jiffies and the timer wheel's granularity (linux-6.1).

Real-world behaviour modelled (linux-tcp-netem.md §0): TCP's RTO, TLP, RACK reorder, delayed-ACK
and SYN/SYN-ACK timers are `timer_list` timers on the timer wheel, not hrtimers. Arming one for
`d` seconds at time `now`:

1. the delay is converted to whole jiffies rounding *up* (`usecs_to_jiffies()` /
   `msecs_to_jiffies()`, include/linux/jiffies.h); TCP computes most timeouts in jiffies already;
2. ``expires = jiffies + d_jiffies`` (`sk_reset_timer()` → `mod_timer()`);
3. the wheel puts the timer in a bucket of the level chosen by ``delta = expires - base->clk``
   (`calc_wheel_index()`): level n holds deltas below ``LVL_START(n+1) = 63 << 3n`` jiffies
   and has a granularity of ``8**n`` jiffies; the bucket's expiry is *strictly after* `expires`,
   rounded up to the level granularity: ``((expires >> 3n) + 1) << 3n`` (`calc_index()`). So a
   level-0 timer runs 1 jiffy after `expires`; at HZ=250 a 1 s timer (250 jiffies, level 1)
   runs at the next multiple of 8 jiffies after expires;
4. the callback runs in the timer softirq of the tick at which jiffies reaches the bucket expiry.

`base->clk` is taken equal to `jiffies` at arming time (`forward_timer_base()` brings an idle
base up to jiffies; inside a running timer callback the kernel's clk is 1 ahead, which can move
a delta across a level boundary by one jiffy: not modelled). Delays past the wheel's last level
are capped at WHEEL_TIMEOUT_MAX as the kernel does. The tick interrupt and softirq latency
(µs) are ignored.

Jiffy ticks happen at simulation times ``k / hz - phase_s`` (k integer), where `phase_s` in
[0, 1/hz) is the random offset of the simulation's t = 0 within a jiffy; jiffies(now) =
floor((now + phase_s) * hz).
"""

from __future__ import annotations

import math

__all__ = [
    "KernelTimers",
    "LVL_BITS",
    "LVL_CLK_SHIFT",
    "jiffies_to_usecs",
    "msecs_to_jiffies",
    "usecs_to_jiffies",
    "wheel_bucket_expiry",
]

LVL_CLK_SHIFT = 3
"""Each wheel level is 2**3 = 8 times coarser than the one below (kernel/time/timer.c)."""
LVL_BITS = 6
"""64 buckets per level."""
_LVL_SIZE = 1 << LVL_BITS


def _lvl_start(n: int) -> int:
    return (_LVL_SIZE - 1) << ((n - 1) * LVL_CLK_SHIFT)


_floor = math.floor

_LVL_STARTS = tuple(_lvl_start(n) if n else 0 for n in range(10))


def _lvl_depth(hz: int) -> int:
    return 9 if hz > 100 else 8


def usecs_to_jiffies(usecs: int, hz: int) -> int:
    """µs → jiffies, rounding up (include/linux/jiffies.h `usecs_to_jiffies()`)."""
    return -((-int(usecs) * hz) // 1_000_000)


def msecs_to_jiffies(msecs: int, hz: int) -> int:
    """ms → jiffies, rounding up (`msecs_to_jiffies()`)."""
    return -((-int(msecs) * hz) // 1000)


def jiffies_to_usecs(jiffies: int, hz: int) -> int:
    """jiffies → µs (`jiffies_to_usecs()`; exact when HZ divides 10**6)."""
    return (int(jiffies) * 1_000_000) // hz


def wheel_bucket_expiry(expires: int, clk: int, hz: int = 250) -> int:
    """Jiffy at which a timer with absolute `expires` armed at wheel clock `clk` runs.

    Port of `calc_wheel_index()` / `calc_index()` (linux-6.1 kernel/time/timer.c): choose the
    level by ``delta = expires - clk``, then round up strictly past `expires` to that level's
    granularity. An already expired timer (delta < 0) runs at `clk`.
    """
    delta = expires - clk
    if delta < 0:
        return clk
    depth = _lvl_depth(hz)
    for lvl in range(depth - 1):
        if delta < _LVL_STARTS[lvl + 1]:
            shift = lvl * LVL_CLK_SHIFT
            return ((expires >> shift) + 1) << shift
    cutoff = _lvl_start(depth)
    if delta >= cutoff:
        expires = clk + cutoff - (1 << ((depth - 1) * LVL_CLK_SHIFT))  # WHEEL_TIMEOUT_MAX
    shift = (depth - 1) * LVL_CLK_SHIFT
    return ((expires >> shift) + 1) << shift


class KernelTimers:
    """Jiffy clock and timer-wheel expiry for a kernel with CONFIG_HZ = `hz`.

    `phase_s` ∈ [0, 1/hz): offset of simulation time 0 within a jiffy (draw it per run).
    All times are seconds (floats) of simulation time.
    """

    __slots__ = ("hz", "phase_s", "_tick")

    def __init__(self, hz: int, phase_s: float = 0.0) -> None:
        if hz <= 0:
            raise ValueError("hz must be > 0")
        self.hz = int(hz)
        self.phase_s = float(phase_s)
        self._tick = 1.0 / self.hz

    def jiffies(self, now: float) -> int:
        """The kernel's `jiffies` at simulation time `now`."""
        # tolerance of 1e-6 jiffy so that tick_time(k) maps back to k despite rounding
        return math.floor((now + self.phase_s) * self.hz + 1e-6)

    def tick_time(self, jiffy: int) -> float:
        """Simulation time of the tick at which `jiffies` becomes `jiffy`."""
        return jiffy * self._tick - self.phase_s

    def delay_to_jiffies(self, delay_s: float) -> int:
        """A delay in seconds → jiffies, rounding up (via whole µs, as `usecs_to_jiffies`)."""
        return usecs_to_jiffies(round(delay_s * 1e6), self.hz)

    def expiry_jiffies(self, now: float, delay_jiffies: int) -> float:
        """Time the callback of a timer armed at `now` for `delay_jiffies` jiffies runs."""
        clk = self.jiffies(now)
        return self.tick_time(wheel_bucket_expiry(clk + int(delay_jiffies), clk, self.hz))

    def expiry(self, now: float, delay_s: float) -> float:
        """Time the callback of a timer armed at `now` for `delay_s` seconds runs.

        Never earlier than ``now + delay_s`` (the wheel rounds strictly past `expires`)."""
        hz = self.hz
        d = -((-round(delay_s * 1e6) * hz) // 1_000_000)  # usecs_to_jiffies, rounding up
        if d < 504:  # levels 0 and 1 (the common cases: a fast path with the same result)
            phase = self.phase_s
            clk = _floor((now + phase) * hz + 1e-6)
            if d < 63:
                return (clk + (d if d > 0 else 0) + 1) * self._tick - phase
            return ((((clk + d) >> 3) + 1) << 3) * self._tick - phase
        return self.expiry_jiffies(now, d)
