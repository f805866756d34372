"""Linux RTT estimator and retransmission timeout (linux-6.1 net/ipv4/tcp_input.c).

A port, in the kernel's integer µs arithmetic, of:

- `tcp_rtt_estimator()`: srtt kept ×8 (`srtt_us`), `mdev_us` (mean deviation, gain 1/4, or
  1/32 when the sample is below srtt: the "Eifel" damping), `mdev_max_us` (largest mdev in the
  current window of data, floored at tcp_rto_min), `rttvar_us` (raised at once to mdev_max,
  decayed by 1/4 of the excess once per window: when snd_una passes `rtt_seq`, the snd_nxt
  recorded at the previous window start). First sample m: srtt = m, mdev = 2m,
  rttvar = max(2m, rto_min). The min-RTO floor thus applies to the variance term.
- `tcp_set_rto()` / `__tcp_set_rto()` (include/net/tcp.h): ``icsk_rto =
  usecs_to_jiffies(srtt_us / 8 + rttvar_us)``, then `tcp_bound_rto()` caps it at TCP_RTO_MAX
  (120 s). So RTO ≥ srtt + 200 ms, and the first RTO is max(3m, m + 200 ms), rounded up to
  jiffies.
- `tcp_update_rtt_min()`: min_rtt from the `ca_rtt` samples (a zero sample counts as one
  jiffy). The kernel keeps a 300 s windowed min (`tcp_min_rtt_wlen`); for short flows that is
  the all-time minimum, which is what this keeps.
- Backoff: `tcp_retransmit_timer()` doubles icsk_rto per expiry, capped at TCP_RTO_MAX
  (:meth:`RttEstimator.backoff`); `inet_csk_rto_backoff()` is ``min(rto << backoff, max)``
  (:meth:`RttEstimator.rto_with_backoff`). A valid RTT sample recomputes icsk_rto (and the
  kernel resets icsk_backoff: the caller's job).

Before any sample the RTO is the initial one (TCP_TIMEOUT_INIT, 1 s). Times are seconds at
the API; inside, integers in µs and jiffies as in the kernel.
"""

from __future__ import annotations

from ..timers import jiffies_to_usecs, usecs_to_jiffies

__all__ = ["RttEstimator"]


class RttEstimator:
    """Per-connection RTT state and RTO, as `struct tcp_sock` / `icsk_rto` hold them.

    `min_rto_s` is tcp_rto_min (TCP_RTO_MIN = HZ/5 = 200 ms; RFC 6298 says 1 s),
    `initial_rto_s` TCP_TIMEOUT_INIT (1 s), `max_rto_s` TCP_RTO_MAX (120 s), `hz` CONFIG_HZ.

    Attributes (kernel units): `srtt_us` (µs ×8; 0 = no sample yet), `mdev_us`, `mdev_max_us`,
    `rttvar_us` (µs), `rtt_seq` (sequence number), `min_rtt_us` (µs or None), `rto_jiffies`
    (icsk_rto). Read seconds through `srtt_s`, `rttvar_s`, `min_rtt_s`, `rto_s`.
    """

    __slots__ = ("hz", "rto_min_us", "rto_max_jiffies", "srtt_us", "mdev_us", "mdev_max_us",
                 "rttvar_us", "rtt_seq", "min_rtt_us", "rto_jiffies")

    def __init__(self, min_rto_s: float = 0.2, initial_rto_s: float = 1.0,
                 max_rto_s: float = 120.0, hz: int = 250) -> None:
        self.hz = int(hz)
        self.rto_min_us = round(min_rto_s * 1e6)
        self.rto_max_jiffies = usecs_to_jiffies(round(max_rto_s * 1e6), self.hz)
        self.srtt_us = 0
        self.mdev_us = 0
        self.mdev_max_us = 0
        self.rttvar_us = 0
        self.rtt_seq = 0
        self.min_rtt_us: int | None = None
        self.rto_jiffies = usecs_to_jiffies(round(initial_rto_s * 1e6), self.hz)

    # -- samples ---------------------------------------------------------------------------
    def on_sample(self, rtt_s: float, snd_una: int, snd_nxt: int,
                  ca_rtt_s: float | None = None) -> None:
        """Feed one valid RTT sample (`tcp_ack_update_rtt()` once seq_rtt_us ≥ 0).

        `rtt_s` is the kernel's seq_rtt (time since the send of the *oldest* newly acked,
        never retransmitted segment; else the SACK or timestamp RTT), `ca_rtt_s` the RTT of
        the most recently sent newly delivered segment (for min_rtt; default `rtt_s`).
        `snd_una`/`snd_nxt` are the sender's after this ACK (per-window rttvar decay).
        Updates min_rtt, srtt/mdev/rttvar and the RTO (`tcp_set_rto()`, as :meth:`set_rto`;
        called once per ACK, so the estimator and RTO steps are written out here).
        """
        m = round(rtt_s * 1e6)
        if m < 0:
            m = 0
        if ca_rtt_s is None:
            ca = m
        else:
            ca = round(ca_rtt_s * 1e6)
            if ca < 0:
                ca = 0
        # tcp_update_rtt_min(): rtt_us ? : jiffies_to_usecs(1)
        if not ca:
            ca = jiffies_to_usecs(1, self.hz)
        if self.min_rtt_us is None or ca < self.min_rtt_us:
            self.min_rtt_us = ca
        # tcp_rtt_estimator(), integer µs
        srtt = self.srtt_us
        if srtt != 0:
            mdev = self.mdev_us
            m -= srtt >> 3                    # error against the current srtt
            srtt += m                         # srtt = 7/8 srtt + 1/8 sample
            if m < 0:
                m = -m - (mdev >> 2)
                if m > 0:
                    m >>= 3                   # sample below srtt: gain 1/32, not 1/4
            else:
                m -= mdev >> 2
            mdev += m                         # mdev = 3/4 mdev + 1/4 |err|
            self.mdev_us = mdev
            if mdev > self.mdev_max_us:
                self.mdev_max_us = mdev
                if mdev > self.rttvar_us:
                    self.rttvar_us = mdev
            if snd_una > self.rtt_seq:        # after(snd_una, rtt_seq): a window has passed
                if self.mdev_max_us < self.rttvar_us:
                    self.rttvar_us -= (self.rttvar_us - self.mdev_max_us) >> 2
                self.rtt_seq = snd_nxt
                self.mdev_max_us = self.rto_min_us
        else:
            srtt = m << 3                     # first sample
            self.mdev_us = m << 1             # rto = 3 * rtt
            self.rttvar_us = self.mdev_us if self.mdev_us > self.rto_min_us else self.rto_min_us
            self.mdev_max_us = self.rttvar_us
            self.rtt_seq = snd_nxt
        if srtt < 1:
            srtt = 1
        self.srtt_us = srtt
        # tcp_set_rto(): usecs_to_jiffies(srtt + rttvar), capped at TCP_RTO_MAX
        rto = -((-((srtt >> 3) + self.rttvar_us) * self.hz) // 1_000_000)
        self.rto_jiffies = rto if rto < self.rto_max_jiffies else self.rto_max_jiffies

    # -- RTO -------------------------------------------------------------------------------
    def set_rto(self) -> None:
        """`tcp_set_rto()`: icsk_rto = usecs_to_jiffies(srtt + rttvar), capped at TCP_RTO_MAX."""
        rto = usecs_to_jiffies((self.srtt_us >> 3) + self.rttvar_us, self.hz)
        self.rto_jiffies = min(rto, self.rto_max_jiffies)

    def backoff(self) -> None:
        """RTO expiry (`tcp_retransmit_timer()`): icsk_rto = min(icsk_rto << 1, TCP_RTO_MAX)."""
        self.rto_jiffies = min(self.rto_jiffies << 1, self.rto_max_jiffies)

    def rto_with_backoff(self, backoff: int) -> float:
        """`inet_csk_rto_backoff()`: min(icsk_rto << backoff, TCP_RTO_MAX), in seconds."""
        return min(self.rto_jiffies << max(0, int(backoff)), self.rto_max_jiffies) / self.hz

    def set_fallback(self, rto_s: float = 3.0) -> None:
        """No RTT sample from the handshake (`tcp_init_metrics()`): TCP_TIMEOUT_FALLBACK, 3 s;
        rttvar = mdev = mdev_max = 3 s, srtt stays 0."""
        us = round(rto_s * 1e6)
        self.rttvar_us = self.mdev_us = self.mdev_max_us = us
        self.rto_jiffies = usecs_to_jiffies(us, self.hz)

    # -- seconds views ---------------------------------------------------------------------
    @property
    def has_sample(self) -> bool:
        return self.srtt_us != 0

    @property
    def srtt_s(self) -> float | None:
        """Smoothed RTT (s), None before the first sample."""
        return (self.srtt_us >> 3) * 1e-6 if self.srtt_us else None

    @property
    def rttvar_s(self) -> float:
        return self.rttvar_us * 1e-6

    @property
    def min_rtt_s(self) -> float | None:
        return None if self.min_rtt_us is None else self.min_rtt_us * 1e-6

    @property
    def rto_s(self) -> float:
        """icsk_rto in seconds (a whole number of jiffies)."""
        return self.rto_jiffies / self.hz
