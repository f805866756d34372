"""Pluggable congestion control, packet-counted as in Linux 6.1 (cwnd and ssthresh in segments).

The seam: a :class:`CongestionControl` owns `cwnd`, `ssthresh` and `snd_cwnd_cnt` (the
tcp_sock fields the kernel's `tcp_congestion_ops` touch). The sender (the only caller) reads
and writes `cwnd`/`ssthresh` directly where generic TCP does (PRR, RTO, undo) and calls the
hooks, all keyword-only with the time `now` in seconds (but `on_ack`, which runs for every ACK
and takes its arguments by position too):

- :meth:`~CongestionControl.on_ack` on every ACK that delivers new data, in Linux's order:
  `pkts_acked` (CUBIC: delay_min, HyStart) from `tcp_clean_rtx_queue()`, then — if the sender
  says `may_raise` (`tcp_may_raise_cwnd()`, and not in CWR/Recovery, where PRR governs) —
  `cong_avoid` (`tcp_cong_avoid()` from `tcp_cong_control()`), which grows cwnd only when
  `cwnd_limited` (`tcp_is_cwnd_limited()`).
- :meth:`~CongestionControl.ssthresh_after_loss` (`ca_ops->ssthresh`): returns the new
  ssthresh; the caller assigns it.
- :meth:`~CongestionControl.on_enter_loss` (RTO: `tcp_set_ca_state(TCP_CA_Loss)`).
- :meth:`~CongestionControl.on_tx_start` (CA_EVENT_TX_START: first send with nothing in flight,
  from `tcp_event_data_sent()`), :meth:`~CongestionControl.on_cwnd_restart` (slow start after
  idle, `tcp_slow_start_after_idle_check()` + `tcp_cwnd_restart()`),
  :meth:`~CongestionControl.undo_cwnd` (`tcp_reno_undo_cwnd`).

Algorithms: :class:`Reno` (net/ipv4/tcp_cong.c) and :class:`Cubic` (net/ipv4/tcp_cubic.c with
HyStart), chosen by name through :data:`CONGESTION_CONTROLS` / :func:`create_congestion_control`.
Sequence numbers are plain (unwrapped) integers: `after(a, b)` is ``a > b``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

from ..errors import InvalidValue
from ..timers import usecs_to_jiffies

__all__ = [
    "CONGESTION_CONTROLS",
    "INFINITE_SSTHRESH",
    "CongestionControl",
    "Cubic",
    "Reno",
    "create_congestion_control",
]

INFINITE_SSTHRESH = 0x7FFFFFFF
"""TCP_INFINITE_SSTHRESH: initial ssthresh ("no limit yet")."""


class CongestionControl(ABC):
    """Base of the packet-counted congestion controls (Linux `struct tcp_congestion_ops`).

    `initcwnd` is the route's initcwnd (segments), `hystart` CUBIC's module parameter (ignored
    by Reno), `hz` CONFIG_HZ (CUBIC's clock is `tcp_jiffies32`), `jiffy_phase_s` the offset of
    simulation time 0 within a jiffy (as :class:`ttlbsim.timers.KernelTimers`).

    Attributes: `cwnd` (snd_cwnd), `ssthresh` (snd_ssthresh), `snd_cwnd_cnt` (the additive
    increase counter; generic TCP zeroes it on cwnd reductions), `cwnd_clamp`.
    """

    __slots__ = ("cwnd", "cwnd_clamp", "hystart", "hz", "initcwnd", "jiffy_phase_s", "snd_cwnd_cnt",
                 "ssthresh")
    name = "base"

    def __init__(self, *, initcwnd: int, hystart: bool = True, hz: int = 250,
                 jiffy_phase_s: float = 0.0) -> None:
        if isinstance(initcwnd, bool) or int(initcwnd) != initcwnd or initcwnd < 1:
            raise InvalidValue("initcwnd", initcwnd, "a whole number >= 1")
        self.initcwnd = int(initcwnd)
        self.cwnd = int(initcwnd)
        self.ssthresh = INFINITE_SSTHRESH
        self.snd_cwnd_cnt = 0
        self.cwnd_clamp = INFINITE_SSTHRESH
        self.hystart = bool(hystart)
        self.hz = int(hz)
        self.jiffy_phase_s = float(jiffy_phase_s)

    # -- clocks ----------------------------------------------------------------------------
    def _jiffies(self, now: float) -> int:
        """tcp_jiffies32 at `now` (unwrapped)."""
        return math.floor((now + self.jiffy_phase_s) * self.hz + 1e-6)

    @staticmethod
    def _clock_us(now: float) -> int:
        """tcp_mstamp / bictcp_clock_us(): µs, truncated."""
        return math.floor(now * 1e6 + 1e-3)

    # -- generic helpers (net/ipv4/tcp_cong.c) ------------------------------------------
    @property
    def in_slow_start(self) -> bool:
        """`tcp_in_slow_start()`: cwnd < ssthresh."""
        return self.cwnd < self.ssthresh

    def _slow_start(self, acked: int) -> int:
        """`tcp_slow_start()`: cwnd = min(cwnd + acked, ssthresh); returns the leftover."""
        cwnd = min(self.cwnd + acked, self.ssthresh)
        acked -= cwnd - self.cwnd
        self.cwnd = min(cwnd, self.cwnd_clamp)
        return acked

    def _cong_avoid_ai(self, w: int, acked: int) -> None:
        """`tcp_cong_avoid_ai()`: +1 segment per `w` segments delivered (snd_cwnd_cnt)."""
        if self.snd_cwnd_cnt >= w:          # credits accumulated at a higher w
            self.snd_cwnd_cnt = 0
            self.cwnd += 1
        self.snd_cwnd_cnt += acked
        if self.snd_cwnd_cnt >= w:
            delta = self.snd_cwnd_cnt // w
            self.snd_cwnd_cnt -= delta * w
            self.cwnd += delta
        if self.cwnd_clamp < self.cwnd:  # min(cwnd, cwnd_clamp), without the builtin's call
            self.cwnd = self.cwnd_clamp

    # -- hooks -----------------------------------------------------------------------------
    def on_init(self, *, now: float, snd_nxt: int) -> None:
        """`ca_ops->init` (`tcp_init_congestion_control()` at ESTABLISHED). The constructor
        calls it with now=0, snd_nxt=0; call again to set the exact instant."""

    @abstractmethod
    def on_ack(self, now: float, acked: int, rtt_sample: float | None, snd_una: int,
               snd_nxt: int, cwnd_limited: bool, may_raise: bool) -> None:
        """An ACK that delivered `acked` segments (cumulatively ACKed or SACKed:
        `acked_sacked`). `rtt_sample` = ca_rtt (s since the send of the most recently sent
        newly delivered segment; None if not measurable). `snd_una`/`snd_nxt` after the ACK.
        `cwnd_limited` = `tcp_is_cwnd_limited()`; `may_raise` = `tcp_may_raise_cwnd()` and
        not in CWR/Recovery."""

    @abstractmethod
    def ssthresh_after_loss(self, *, now: float) -> int:
        """`ca_ops->ssthresh`: the ssthresh to use after a loss (caller assigns it)."""

    def on_enter_loss(self, *, now: float, snd_nxt: int) -> None:
        """RTO: `tcp_enter_loss()` zeroes snd_cwnd_cnt and sets state TCP_CA_Loss."""
        self.snd_cwnd_cnt = 0

    def on_tx_start(self, *, now: float, last_send: float) -> None:
        """CA_EVENT_TX_START: a send with no packets in flight; `last_send` = lsndtime (s)."""

    def on_cwnd_restart(self, *, now: float, last_send: float, rto_s: float,
                        in_cwnd_reduction: bool = False) -> bool:
        """Slow start after idle (tcp_slow_start_after_idle=1), for a send with nothing in
        flight: if idle (now − last data send, in jiffies) > RTO, apply `tcp_cwnd_restart()`:
        ssthresh = `tcp_current_ssthresh()`, cwnd halved per full RTO idle, not below
        min(initcwnd, cwnd). Returns True if it applied. `rto_s` is icsk_rto in seconds."""
        delta = self._jiffies(now) - self._jiffies(last_send)
        rto = round(rto_s * self.hz)
        if delta <= rto:
            return False
        if not in_cwnd_reduction:           # tcp_current_ssthresh()
            self.ssthresh = max(self.ssthresh, (self.cwnd >> 1) + (self.cwnd >> 2))
        restart = min(self.initcwnd, self.cwnd)
        cwnd = self.cwnd
        delta -= rto
        while delta > 0 and cwnd > restart:
            cwnd >>= 1
            delta -= rto
        self.cwnd = max(cwnd, restart)
        return True

    def undo_cwnd(self, *, prior_cwnd: int) -> int:
        """`tcp_reno_undo_cwnd()` (also CUBIC's): cwnd to restore on undo."""
        return max(self.cwnd, prior_cwnd)


class Reno(CongestionControl):
    """Linux Reno (`tcp_reno_cong_avoid`, `tcp_reno_ssthresh`; net/ipv4/tcp_cong.c).

    Slow start adds `acked` up to ssthresh, then additive increase of one segment per cwnd
    segments delivered. No HyStart.
    """

    __slots__ = ()
    name = "reno"

    def on_ack(self, now: float, acked: int, rtt_sample: float | None, snd_una: int,
               snd_nxt: int, cwnd_limited: bool, may_raise: bool) -> None:
        if not (may_raise and cwnd_limited):
            return
        if self.in_slow_start:
            acked = self._slow_start(acked)
            if not acked:
                return
        self._cong_avoid_ai(self.cwnd, acked)

    def ssthresh_after_loss(self, *, now: float) -> int:
        """max(cwnd / 2, 2)."""
        return max(self.cwnd >> 1, 2)


# CUBIC constants (tcp_cubic.c module parameters and cubictcp_register()).
BICTCP_BETA_SCALE = 1024
BICTCP_HZ = 10
BETA = 717                      # 717/1024 ≈ 0.7
BIC_SCALE = 41
HYSTART_LOW_WINDOW = 16
HYSTART_ACK_DELTA_US = 2000
HYSTART_MIN_SAMPLES = 8
HYSTART_DELAY_MIN_US = 4000
HYSTART_DELAY_MAX_US = 16000
BETA_SCALE = 8 * (BICTCP_BETA_SCALE + BETA) // 3 // (BICTCP_BETA_SCALE - BETA)   # 15
CUBE_RTT_SCALE = BIC_SCALE * 10                                                  # 410
CUBE_FACTOR = (1 << (10 + 3 * BICTCP_HZ)) // (BIC_SCALE * 10)                    # 2^40 / 410

# cbrt(x) most-significant-bits table of `cubic_root()` (values for x in 0..63; hand-tuned
# in the kernel, so it is data, reproduced to get the same K as Linux).
_CBRT_V = (
    0, 54, 54, 54, 118, 118, 118, 118, 123, 129, 134, 138, 143, 147, 151, 156,
    157, 161, 164, 168, 170, 173, 176, 179, 181, 185, 187, 190, 192, 194, 197, 199,
    200, 202, 204, 206, 209, 211, 213, 215, 217, 219, 221, 222, 224, 225, 227, 229,
    231, 232, 234, 236, 237, 239, 240, 242, 244, 245, 246, 248, 250, 251, 252, 254,
)

_U32 = 0xFFFFFFFF


def cubic_root(a: int) -> int:
    """Linux `cubic_root()`: table estimate + one Newton-Raphson step (avg error ~0.2 %)."""
    b = a.bit_length()                       # fls64()
    if b < 7:
        return (_CBRT_V[a] + 35) >> 6
    b = ((b * 84) >> 8) - 1
    shift = a >> (b * 3)
    x = (((_CBRT_V[shift] + 10) << b) & _U32) >> 6
    x = (2 * x + ((a // (x * (x - 1))) & _U32)) & _U32
    return ((x * 341) & _U32) >> 10


class Cubic(CongestionControl):
    """Linux 6.1 CUBIC with HyStart (net/ipv4/tcp_cubic.c), ported field by field.

    - `bictcp_update()`: W(t) = C (t − K)³ + W_max in the kernel's fixed point (BICTCP_HZ
      2^10 units per second, bic_scale 41 → C ≈ 0.4, `cubic_root()`), target evaluated one
      delay_min ahead, cnt = cwnd / (target − cwnd), at most once per jiffy and skipped while
      cwnd is unchanged for ≤ HZ/32; 5 %/RTT growth cap before the first loss
      (last_max_cwnd == 0); TCP friendliness (Reno estimate with beta_scale 15); cnt ≥ 2.
    - `cubictcp_recalc_ssthresh()`: beta 717/1024, fast convergence, epoch reset.
    - HyStart (`cubictcp_acked()`, `hystart_update()`, 6.1.y layout since upstream commit
      25c1a9ca53db "fix incorrect HyStart round start detection", backported 2025: rounds are
      tracked even while cwnd < 16; 6.1.0 skipped the whole update below 16): delay samples are the
      ca_rtt; discarded during the first second of a CUBIC epoch; delay_min is the all-time
      minimum; a round ends when snd_una passes the snd_nxt recorded at its start; tests run
      only with cwnd ≥ 16 in slow start until one fires (then ssthresh = cwnd):
      ACK train — ACKs ≤ 2 ms apart and (now − round_start) > (delay_min + ack_delay) / 2
      (no pacing: SK_PACING_NONE halves the threshold); delay — after 8 samples in the round,
      min RTT of the round > delay_min + clamp(delay_min / 8, 4 ms, 16 ms).
    - `hystart_ack_delay()` is min(1 ms, 4 · sk_gso_max_size / pacing_rate). With GSO/TSO off
      (the study's set-up) sk_gso_max_size is 0, so it is 0 here by default
      (`hystart_ack_delay_us`); with GSO on it is 1 ms for all but very fast rates.
    - `cubictcp_state(TCP_CA_Loss)`: full reset (incl. delay_min, last_max_cwnd, found) and a
      new HyStart round. `cubictcp_cwnd_event(CA_EVENT_TX_START)`: shift the epoch by the idle
      time.
    """

    __slots__ = ("ack_cnt", "bic_K", "bic_origin_point", "cnt", "curr_rtt", "delay_min", "end_seq",
                 "epoch_start", "found", "hystart_ack_delay_us", "last_ack", "last_cwnd",
                 "last_max_cwnd", "last_time", "round_start", "sample_cnt", "tcp_cwnd")
    name = "cubic"

    def __init__(self, *, initcwnd: int, hystart: bool = True, hz: int = 250,
                 jiffy_phase_s: float = 0.0, hystart_ack_delay_us: int = 0) -> None:
        super().__init__(initcwnd=initcwnd, hystart=hystart, hz=hz, jiffy_phase_s=jiffy_phase_s)
        self.hystart_ack_delay_us = int(hystart_ack_delay_us)
        self.round_start = 0
        self.last_ack = 0
        self.end_seq = 0
        self.curr_rtt = _U32
        self.sample_cnt = 0
        self._reset()
        self.on_init(now=0.0, snd_nxt=0)

    def _reset(self) -> None:
        """`bictcp_reset()`."""
        self.cnt = 0
        self.last_max_cwnd = 0
        self.last_cwnd = 0
        self.last_time = 0
        self.bic_origin_point = 0
        self.bic_K = 0
        self.delay_min = 0               # µs; 0 = none yet
        self.epoch_start: int | None = None   # jiffies; None = no epoch (kernel: 0)
        self.ack_cnt = 0
        self.tcp_cwnd = 0
        self.found = False

    def _hystart_reset(self, now: float, snd_nxt: int) -> None:
        """`bictcp_hystart_reset()`: start a new round."""
        self.round_start = self.last_ack = self._clock_us(now)
        self.end_seq = snd_nxt
        self.curr_rtt = _U32
        self.sample_cnt = 0

    def on_init(self, *, now: float, snd_nxt: int) -> None:
        """`cubictcp_init()`."""
        self._reset()
        if self.hystart:
            self._hystart_reset(now, snd_nxt)

    # -- pkts_acked ------------------------------------------------------------------------
    def _pkts_acked(self, now: float, rtt_us: int, snd_una: int, snd_nxt: int) -> None:
        """`cubictcp_acked()`."""
        if self.epoch_start is not None and self._jiffies(now) - self.epoch_start < self.hz:
            return                        # discard samples right after fast recovery
        delay = rtt_us if rtt_us > 0 else 1
        if self.delay_min == 0 or self.delay_min > delay:
            self.delay_min = delay
        if not self.found and self.in_slow_start and self.hystart:
            self._hystart_update(now, delay, snd_una, snd_nxt)

    def _hystart_update(self, now: float, delay: int, snd_una: int, snd_nxt: int) -> None:
        """`hystart_update()` (ACK-train and delay detection)."""
        if snd_una > self.end_seq:
            self._hystart_reset(now, snd_nxt)
        if self.cwnd < HYSTART_LOW_WINDOW:
            return
        now_us = math.floor(now * 1e6 + 1e-3)  # _clock_us(now)
        if now_us - self.last_ack <= HYSTART_ACK_DELTA_US:
            self.last_ack = now_us
            threshold = (self.delay_min + self.hystart_ack_delay_us) >> 1  # SK_PACING_NONE
            if now_us - self.round_start > threshold:
                self.found = True
                self.ssthresh = self.cwnd
        if self.curr_rtt > delay:
            self.curr_rtt = delay
        if self.sample_cnt < HYSTART_MIN_SAMPLES:
            self.sample_cnt += 1
        else:
            # clamp(delay_min / 8, 4 ms, 16 ms), without the builtins' calls
            thresh = self.delay_min >> 3
            if thresh < HYSTART_DELAY_MIN_US:
                thresh = HYSTART_DELAY_MIN_US
            elif thresh > HYSTART_DELAY_MAX_US:
                thresh = HYSTART_DELAY_MAX_US
            if self.curr_rtt > self.delay_min + thresh:
                self.found = True
                self.ssthresh = self.cwnd

    # -- cong_avoid ------------------------------------------------------------------------
    def on_ack(self, now: float, acked: int, rtt_sample: float | None, snd_una: int,
               snd_nxt: int, cwnd_limited: bool, may_raise: bool) -> None:
        # runs on every ACK: _pkts_acked(), _jiffies(), in_slow_start and _slow_start() are
        # written out here (same arithmetic)
        if rtt_sample is not None and rtt_sample >= 0.0:
            # cubictcp_acked()
            if self.epoch_start is None or \
                    math.floor((now + self.jiffy_phase_s) * self.hz + 1e-6) - self.epoch_start >= self.hz:
                rtt_us = math.floor(rtt_sample * 1e6 + 1e-3)
                delay = rtt_us if rtt_us > 0 else 1
                if self.delay_min == 0 or self.delay_min > delay:
                    self.delay_min = delay
                if not self.found and self.cwnd < self.ssthresh and self.hystart:
                    self._hystart_update(now, delay, snd_una, snd_nxt)
            # else: discard samples right after fast recovery
        if not (may_raise and cwnd_limited):
            return
        # cubictcp_cong_avoid()
        cwnd = self.cwnd
        if cwnd < self.ssthresh:
            # tcp_slow_start(): cwnd = min(cwnd + acked, ssthresh); the leftover goes on
            grown = cwnd + acked
            if grown > self.ssthresh:
                grown = self.ssthresh
            acked -= grown - cwnd
            self.cwnd = cwnd = grown if grown < self.cwnd_clamp else self.cwnd_clamp
            if not acked:
                return
        self._update(math.floor((now + self.jiffy_phase_s) * self.hz + 1e-6), cwnd, acked)
        self._cong_avoid_ai(self.cnt, acked)

    def _update(self, jiffies: int, cwnd: int, acked: int) -> None:
        """`bictcp_update()`: compute ca->cnt (ACKed segments per +1 cwnd)."""
        self.ack_cnt += acked
        if self.last_cwnd == cwnd and jiffies - self.last_time <= self.hz // 32:
            return
        if not (self.epoch_start is not None and jiffies == self.last_time):
            self.last_cwnd = cwnd
            self.last_time = jiffies
            if self.epoch_start is None:
                self.epoch_start = jiffies
                self.ack_cnt = acked
                self.tcp_cwnd = cwnd
                if self.last_max_cwnd <= cwnd:
                    self.bic_K = 0
                    self.bic_origin_point = cwnd
                else:
                    self.bic_K = cubic_root(CUBE_FACTOR * (self.last_max_cwnd - cwnd))
                    self.bic_origin_point = self.last_max_cwnd
            t = jiffies - self.epoch_start + usecs_to_jiffies(self.delay_min, self.hz)
            t = (t << BICTCP_HZ) // self.hz
            offs = self.bic_K - t if t < self.bic_K else t - self.bic_K
            delta = ((CUBE_RTT_SCALE * offs * offs * offs) >> (10 + 3 * BICTCP_HZ)) & _U32
            if t < self.bic_K:
                bic_target = (self.bic_origin_point - delta) & _U32
            else:
                bic_target = (self.bic_origin_point + delta) & _U32
            if bic_target > cwnd:
                self.cnt = cwnd // (bic_target - cwnd)
            else:
                self.cnt = 100 * cwnd
            if self.last_max_cwnd == 0 and self.cnt > 20:
                self.cnt = 20             # 5 % per RTT before the first loss
        # tcp_friendliness
        delta = (cwnd * BETA_SCALE) >> 3
        while self.ack_cnt > delta:
            self.ack_cnt -= delta
            self.tcp_cwnd += 1
        if self.tcp_cwnd > cwnd:
            max_cnt = cwnd // (self.tcp_cwnd - cwnd)
            if self.cnt > max_cnt:
                self.cnt = max_cnt
        if self.cnt < 2:  # max(cnt, 2)
            self.cnt = 2

    # -- loss and events -------------------------------------------------------------------
    def ssthresh_after_loss(self, *, now: float) -> int:
        """`cubictcp_recalc_ssthresh()`: end the epoch, remember W_max (fast convergence:
        0.85·cwnd if below the previous W_max), return max(cwnd·717/1024, 2)."""
        self.epoch_start = None
        if self.cwnd < self.last_max_cwnd:
            self.last_max_cwnd = (self.cwnd * (BICTCP_BETA_SCALE + BETA)) // (2 * BICTCP_BETA_SCALE)
        else:
            self.last_max_cwnd = self.cwnd
        return max((self.cwnd * BETA) // BICTCP_BETA_SCALE, 2)

    def on_enter_loss(self, *, now: float, snd_nxt: int) -> None:
        """`cubictcp_state(TCP_CA_Loss)`: `bictcp_reset()` + `bictcp_hystart_reset()`."""
        super().on_enter_loss(now=now, snd_nxt=snd_nxt)
        self._reset()
        self._hystart_reset(now, snd_nxt)

    def on_tx_start(self, *, now: float, last_send: float) -> None:
        """`cubictcp_cwnd_event(CA_EVENT_TX_START)`: after an idle period shift epoch_start
        by the idle time (never past now) to stay on the cubic curve."""
        j = self._jiffies(now)
        delta = j - self._jiffies(last_send)
        if self.epoch_start is not None and delta > 0:
            self.epoch_start = min(self.epoch_start + delta, j)


CONGESTION_CONTROLS: dict[str, type[CongestionControl]] = {"cubic": Cubic, "reno": Reno}
"""Congestion controls by name (the `cc` scenario field)."""


def create_congestion_control(name: str, **kwargs) -> CongestionControl:
    """Build the congestion control called `name` (case-insensitive) with `kwargs`
    (`initcwnd=`, `hystart=`, `hz=`, ...). Unknown names raise InvalidValue."""
    cls = CONGESTION_CONTROLS.get(str(name).lower())
    if cls is None:
        raise InvalidValue("cc", name, "one of " + ", ".join(CONGESTION_CONTROLS))
    return cls(**kwargs)
