"""The hosts' own per-packet latency on one direction of the link (`PacketLatency`).

netem releases a packet at the time its qdisc computes (:mod:`ttlbsim.link`); the receiving
socket sees it somewhat later. In between: the qdisc watchdog's hrtimer fires late by a
varying amount (in a User-Mode Linux guest, by the host's timer latency), then the veth
transmit, the backlog softirq and `tcp_v4_rcv()`. Every RTT sample the kernel takes includes this
twice (once each way), which is why `tcpi_min_rtt` exceeds netem's configured delay — by about
0.2 ms in the validation guest (validation/data/study, every connection's TCP_INFO).

Modelled as a fixed part for every packet plus an exponentially distributed wake-up latency for
a packet that finds the host idle, with packets kept in order in each direction (a packet is never
handed to the receiver before the one sent ahead of it: one softirq queue per direction). A
packet released by netem at `t` arrives at ``max(t + delay [+ Exp(mean jitter)], arrival of the
previous packet)``, the exponential part only if the previous packet of its direction arrived
more than `IDLE_AFTER_S` before `t`. The wake-up latency is a timer waking a sleeping guest
(the qdisc watchdog's hrtimer delivered by the host to an idle UML process); a guest busy with a
burst (a 1 Gbit/s burst brings a packet every 12 µs) processes the next packet as it comes, so
a burst is not pulled apart — the emulated client's stretch ACKs show it is processed as one
(validation/diagnosis.md §4). At 1 Mbit/s (a packet every 12 ms) every packet finds the host
idle. The jitter matters where the stack compares two RTTs of the same nominal length (RACK's
`tcp_rack_advance` ignores a retransmission's SACK whose RTT is below min_rtt,
validation/diagnosis.md §8); the fixed part is the constant every RTT sample carries.

A plain object handed the release time; draws come from its own generator, in batches.
"""

from __future__ import annotations

import numpy as np

__all__ = ["IDLE_AFTER_S", "PacketLatency"]

IDLE_AFTER_S = 100e-6
"""A packet that comes more than this after the previous one of its direction finds the host
idle (s). Not fitted: long enough that a 1 Gbit/s burst (a packet every 12 µs) keeps the host
busy, short enough that the packets of a 10 Mbit/s link (1.2 ms apart) and slower ones each find
it idle; gaps in between (a server's writes ~0.8 ms apart, validation/diagnosis.md §8) count as
idle."""


class PacketLatency:
    """One direction's per-packet host latency: `delay_s` fixed plus, for a packet that finds the
    host idle, an exponential of mean `jitter_s` (seconds), in order. Deterministic for a given
    generator and batch size."""

    __slots__ = ("delay_s", "jitter_s", "_rng", "_batch", "_buf", "_last")

    def __init__(self, delay_s: float, jitter_s: float, rng: np.random.Generator, batch: int = 256) -> None:
        self.delay_s = float(delay_s)
        self.jitter_s = float(jitter_s)
        self._rng = rng
        self._batch = batch
        self._buf: list[float] = []
        self._last = float("-inf")

    def arrival(self, release: float) -> float:
        """When a packet that leaves netem at `release` (s) reaches the receiving stack (s):
        never before the previous packet of this direction, and with the wake-up latency only if
        that one arrived more than `IDLE_AFTER_S` before `release`."""
        t = release + self.delay_s
        if self.jitter_s and release - self._last > IDLE_AFTER_S:
            buf = self._buf
            if not buf:
                # reversed, so that pop() hands the numbers out in the order they were drawn
                buf = self._buf = self._rng.exponential(self.jitter_s, self._batch)[::-1].tolist()
            t += buf.pop()
        if t < self._last:
            t = self._last
        self._last = t
        return t
