"""The hosts' own per-packet latency on one direction of the link (`PacketLatency`).

netem releases a packet at the time its qdisc computes (:mod:`ttlbsim.link`); the receiving
socket sees it somewhat later. In between: the qdisc watchdog's hrtimer fires late by a
varying amount (in a User-Mode Linux guest, by the host's timer latency), then the veth
transmit, the backlog softirq and `tcp_v4_rcv()`. Every RTT sample the kernel takes includes this
twice (once each way), which is why `tcpi_min_rtt` exceeds netem's configured delay — by about
0.2 ms in the validation guest (validation/data/study, every connection's TCP_INFO).

Modelled as a fixed part plus an exponentially distributed part per packet, with packets kept in
order in each direction (a packet is never handed to the receiver before the one sent ahead of
it: one softirq queue per direction): a packet released by netem at `t` arrives at
``max(t + delay + Exp(mean jitter), arrival of the previous packet)``. The jitter matters where
the stack compares two RTTs of the same nominal length (RACK's `tcp_rack_advance` ignores a
retransmission's SACK whose RTT is below min_rtt, validation/diagnosis.md §8); the fixed part is
the constant the RTT samples carry.

A plain object handed the release time; draws come from its own generator, in batches.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PacketLatency"]


class PacketLatency:
    """One direction's per-packet host latency: `delay_s` fixed plus an exponential of mean
    `jitter_s` (seconds), in order. Deterministic for a given generator and batch size."""

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
        never before the previous packet of this direction."""
        t = release + self.delay_s
        if self.jitter_s:
            buf = self._buf
            if not buf:
                # reversed, so that pop() hands the numbers out in the order they were drawn
                buf = self._buf = self._rng.exponential(self.jitter_s, self._batch)[::-1].tolist()
            t += buf.pop()
        if t < self._last:
            t = self._last
        self._last = t
        return t
