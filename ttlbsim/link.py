"""One direction of a netem link (`NetemPath`) and the two-way `Link` of a scenario.

Plain objects with no simpy inside: the caller passes the current time and gets back when the
packet leaves netem (and so arrives at the peer: veth adds nothing), or `LOST` / `DROPPED`.

Real-world behaviour modelled: linux-6.1 `net/sched/sch_netem.c` `netem_enqueue()` applied to
each packet the sender's stack hands to the qdisc, in the kernel's order (linux-tcp-netem.md §8):

1. **loss** — Bernoulli per packet: lost when ``loss_u32 >= r`` for a fresh uniform 32-bit r,
   with ``loss_u32 = rint(loss * (2^32 - 1))`` (`loss_event()`; tc `set_percent()`); netem
   reports success, so the sender believes it sent the packet → ``LOST``.
2. **limit** — if the packets currently held in netem ≥ `limit`, the packet is dropped with
   NET_XMIT_DROP → ``DROPPED``. Linux TCP treats that as *not sent* and enters CWR
   (`__tcp_transmit_skb()` → `tcp_enter_cwr()`), so the caller must keep the segment unsent.
3. **delay** — `tabledist(latency, jitter, dist)` (see :mod:`ttlbsim.netem`).
4. **rate** — with a rate: ``time_to_send = max(now + delay, T_last) + L * 8 / rate`` where
   T_last is the latest time_to_send among packets still held (no packet held → ``now + delay``)
   and L the frame length the qdisc sees (`skb->len` at the root qdisc = IP packet + 14 B
   Ethernet header; `packet_time_ns()` truncates to whole ns). Without a rate:
   ``time_to_send = now + delay``.
5. **tfifo** — packets leave in time_to_send order (ties in arrival order) as soon as
   time_to_send ≤ now (hrtimer watchdog, ns-exact). A packet whose time_to_send is already past
   (a negative jitter draw) leaves at once, ahead of packets with later times: without a rate
   jitter **reorders**; with a rate the max() above keeps FIFO order.

So the time returned by :meth:`NetemPath.send` is ``max(now, time_to_send)``. Delivering each
packet at that time — equal times in the order `send` was called, as a FIFO event queue does —
reproduces the tfifo order exactly.

Frame sizes: pass the TCP payload and the header bytes; the path adds them. Defaults are a data
segment with timestamps: ``HEADER_BYTES`` = 14 Ethernet + 20 IPv4 + 32 TCP (20 + 12 timestamp
option) = 66, so a full 1448 B segment is a 1514 B frame. SYN/SYN-ACK: ``SYN_HEADER_BYTES`` = 74.
ACKs with SACK blocks: :func:`ack_header_bytes`.

Random numbers: loss and delay come from separate streams: loss draws from the generator `rng`,
delay draws from `delay_rng` (if not given and both loss and jitter are on, a child spawned from
`rng`, which does not advance `rng`). So turning jitter on does not change which packets are
lost. Numbers are drawn in batches of `batch` for speed. A delay number is used for every packet
offered to netem (even one lost or dropped), so a change in losses does not shift later delay
draws. Results are deterministic for given generators (and batch size). Table distributions
are sampled through :func:`ttlbsim.netem.delay_lut_s` (index uniform on 0..4095, exactly
``r % 4096`` of a uniform u32).
"""

from __future__ import annotations

import heapq
import math
import sys
from collections import deque

import numpy as np

from .netem import delay_lut_s, sample_delays_ns
from .scenario import NetworkConfig

__all__ = [
    "DROPPED",
    "ETH_HEADER_BYTES",
    "HEADER_BYTES",
    "LOST",
    "Link",
    "NetemPath",
    "SYN_HEADER_BYTES",
    "ack_header_bytes",
]

_LITTLE_ENDIAN = sys.byteorder == "little"

LOST = -1.0
"""`send()` result: netem's loss draw discarded the packet (the sender believes it was sent)."""

DROPPED = -2.0
"""`send()` result: queue limit reached, NET_XMIT_DROP: not sent, the sender enters CWR."""

ETH_HEADER_BYTES = 14
HEADER_BYTES = ETH_HEADER_BYTES + 20 + 32
"""Ethernet + IPv4 + TCP with the timestamp option: 66 B (a pure ACK is a 66 B frame)."""

SYN_HEADER_BYTES = ETH_HEADER_BYTES + 20 + 40
"""SYN / SYN-ACK with MSS, SACK-permitted, timestamps and window scale: 74 B frame."""


def ack_header_bytes(sack_blocks: int = 0) -> int:
    """Frame header bytes of a segment carrying `sack_blocks` SACK blocks (0–3 with timestamps).

    One block adds 12 B (2 NOP + kind + length + 8), each further block 8 B
    (`tcp_options_write()` in linux-6.1 net/ipv4/tcp_output.c).
    """
    return HEADER_BYTES + (4 + 8 * sack_blocks if sack_blocks > 0 else 0)


class NetemPath:
    """One netem qdisc on one veth egress: loss → limit → delay/jitter → rate → tfifo.

    Parameters (keyword-only): `delay_s` netem latency (s), `jitter_s` netem jitter (s),
    `jitter_dist` uniform|normal|pareto|paretonormal, `rate_bps` (bit/s, None = no rate),
    `loss` (probability in [0, 1)), `limit` (packets), `rng` (numpy Generator: loss draws),
    `delay_rng` (numpy Generator for jitter draws; default: spawned from `rng` when needed),
    `batch` (random numbers drawn per refill).

    Counters: `sent` (packets offered), `lost`, `dropped`.
    """

    __slots__ = ("delay_s", "jitter_s", "jitter_dist", "rate_bps", "loss", "limit",
                 "sent", "lost", "dropped", "_delay_ns", "_jitter_ns", "_loss_u32",
                 "_rate_Bps", "_tx_cache", "_heap", "_loss_rng", "_delay_rng",
                 "_batch", "_loss_buf", "_delay_buf", "_const_delay",
                 "_lut")

    def __init__(self, *, delay_s: float, jitter_s: float = 0.0, jitter_dist: str = "uniform",
                 rate_bps: float | None = None, loss: float = 0.0, limit: int = 1000,
                 rng: np.random.Generator, delay_rng: np.random.Generator | None = None,
                 batch: int = 256) -> None:
        self.delay_s = delay_s
        self.jitter_s = jitter_s
        self.jitter_dist = jitter_dist
        self.rate_bps = rate_bps
        self.loss = loss
        self.limit = limit
        self.sent = self.lost = self.dropped = 0
        self._delay_ns = round(delay_s * 1e9)          # tc passes ns integers
        self._jitter_ns = round(jitter_s * 1e9)
        self._loss_u32 = int(round(loss * 0xFFFFFFFF))  # set_percent(): rint(p * UINT32_MAX)
        self._rate_Bps = None if rate_bps is None else rate_bps / 8.0
        self._tx_cache: dict[int, float] = {}
        # time_to_send of packets still held (> now): with a rate they are queued in FIFO
        # order with non-decreasing times (a deque); without, any order (a min-heap)
        self._heap: list[float] | deque[float] = [] if rate_bps is None else deque()
        if delay_rng is None:
            # spawning costs ~25 us: only when both streams are actually drawn from
            delay_rng = rng.spawn(1)[0] if (self._jitter_ns and self._loss_u32) else rng
        self._loss_rng, self._delay_rng = rng, delay_rng
        self._batch = batch
        self._loss_buf: list[bool] = []
        self._delay_buf: list[float] = []
        # tabledist() returns mu without drawing when sigma == 0
        self._const_delay = self._delay_ns * 1e-9 if self._jitter_ns == 0 else None
        sample_delays_ns(jitter_dist, 0, 0, 0, self._delay_rng)  # validate the name early
        self._lut = (delay_lut_s(jitter_dist, self._delay_ns, self._jitter_ns)
                     if self._jitter_ns and jitter_dist != "uniform" else None)

    # -- random draws, in batches --------------------------------------------------------
    # Each buffer holds one batch in reverse, so that list.pop() hands the numbers out in the
    # order they were drawn.
    def _refill_loss(self) -> None:
        if _LITTLE_ENDIAN and not self._batch % 2:
            # rng.integers(0, 2**32, size=batch, dtype=uint64) takes each 64-bit output of the
            # bit generator as two 32-bit numbers, low half first: that is the raw output viewed
            # as uint32 here, the same numbers without integers()'s per-call overhead
            r = self._loss_rng.bit_generator.random_raw(self._batch >> 1).view(np.uint32)
        else:
            r = self._loss_rng.integers(0, 1 << 32, size=self._batch, dtype=np.uint64)
        self._loss_buf = (r <= self._loss_u32)[::-1].tolist()

    def _refill_delay(self) -> None:
        if self._lut is not None:
            idx = self._delay_rng.integers(0, 4096, size=self._batch)
            self._delay_buf = self._lut[idx][::-1].tolist()
        else:
            ns = sample_delays_ns(self.jitter_dist, self._delay_ns, self._jitter_ns,
                                  self._batch, self._delay_rng)
            self._delay_buf = (ns * 1e-9)[::-1].tolist()

    def _tx_time(self, frame_bytes: int) -> float:
        """`packet_time_ns()`: len * 1e9 / rate_bytes_per_s, truncated to whole ns, in s."""
        t = self._tx_cache.get(frame_bytes)
        if t is None:
            t = math.floor(frame_bytes * 1e9 / self._rate_Bps) * 1e-9
            self._tx_cache[frame_bytes] = t
        return t

    # -- the qdisc -----------------------------------------------------------------------
    def send(self, now: float, payload: int = 0, header: int = HEADER_BYTES) -> float:
        """Offer one packet to netem at time `now` (s); frame = `payload` + `header` bytes.

        Returns the time (s, ≥ now) at which it leaves netem and reaches the peer, or `LOST`
        or `DROPPED` (both negative: test ``result < 0``).
        """
        self.sent += 1
        # one delay number per offered packet (see module docstring)
        delay = self._const_delay
        if delay is None:
            buf = self._delay_buf
            if not buf:
                self._refill_delay()
                buf = self._delay_buf
            delay = buf.pop()
        # 1. loss draw (loss_event(): no random number consumed when loss is 0)
        if self._loss_u32:
            buf = self._loss_buf
            if not buf:
                self._refill_loss()
                buf = self._loss_buf
            if buf.pop():
                self.lost += 1
                return LOST
        # 2. queue limit: packets still held = time_to_send > now
        held = self._heap
        if self._rate_Bps is not None:
            # 3./4. delay, then rate: max(now + delay, T_last) + L / R
            tts = now + delay
            # (FIFO: all are gone once the latest is; the rest only matter at the limit)
            if held:
                last = held[-1]  # T_last
                if last <= now:
                    held.clear()
                else:
                    if len(held) >= self.limit:
                        while held[0] <= now:
                            held.popleft()
                        if len(held) >= self.limit:
                            self.dropped += 1
                            return DROPPED
                    if last > tts:
                        tts = last
            frame = payload + header
            tx = self._tx_cache.get(frame)
            if tx is None:
                tx = self._tx_time(frame)
            tts += tx
            # 5. tfifo (FIFO here: tts >= T_last)
            if tts > now:
                held.append(tts)
                return tts
            return now
        while held and held[0] <= now:
            heapq.heappop(held)
        if len(held) >= self.limit:
            self.dropped += 1
            return DROPPED
        # 3. delay; 5. tfifo ordered by time_to_send
        tts = now + delay
        if tts > now:
            heapq.heappush(held, tts)
            return tts
        return now

    def held(self, now: float) -> int:
        """Packets held in netem at `now` (queued, time_to_send still in the future)."""
        held = self._heap
        pop = held.popleft if isinstance(held, deque) else (lambda: heapq.heappop(held))
        while held and held[0] <= now:
            pop()
        return len(held)


class Link:
    """The study's set-up: a netem on each veth end, both configured from one `NetworkConfig`.

    Each direction gets ``delay rtt/2``, jitter ``jitter/2`` from `jitter_dist`, the same
    rate, loss and limit. `up` carries client→server packets (the client's netem), `down`
    server→client. Give each direction its own generator (e.g. spawned from the run's
    SeedSequence).
    """

    __slots__ = ("network", "up", "down")

    def __init__(self, network: NetworkConfig, rng_up: np.random.Generator,
                 rng_down: np.random.Generator, *, batch: int = 256) -> None:
        self.network = network
        kw = dict(delay_s=network.rtt_s / 2, jitter_s=network.jitter_s / 2,
                  jitter_dist=network.jitter_dist, rate_bps=network.bandwidth_bps,
                  loss=network.loss, limit=network.limit, batch=batch)
        self.up = NetemPath(rng=rng_up, **kw)
        self.down = NetemPath(rng=rng_down, **kw)
