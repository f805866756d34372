"""The receiving half of a Linux TCP endpoint: reassembly, SACK blocks, receive window, and the
ACK policy that decides when an ACK leaves.

Modelled on Linux 6.1 (linux-tcp-netem.md §2, §4):
- quick-ACK credits: the first data segment arms 16 immediate ACKs (`tcp_incr_quickack`,
  TCP_MAX_QUICKACKS), re-armed after an idle gap longer than the RTO; they are not used while
  the socket is in *pingpong* (interactive) mode (`tcp_in_quickack_mode`).
- pingpong: entered when this host sends data within `ato` of the last data it received
  (`tcp_event_data_sent`, TCP_PINGPONG_THRESH 1 in 6.1); left when the delayed-ACK timer fires
  with an ACK pending (`tcp_delack_timer_handler`).
- immediate ACK when more than one receive-MSS of data is unacknowledged ("every second full
  segment"), on out-of-order data or a hole fill, on a duplicate (with DSACK, RFC 2883), in
  quick-ACK mode, and when a second short ("pushed") segment arrives (`__tcp_ack_snd_check`,
  `tcp_cleanup_rbuf` ICSK_ACK_PUSHED2); otherwise the delayed-ACK timer (`ato`, 40 ms at first,
  adapted per `tcp_event_data_recv`, capped per `tcp_send_delayed_ack`).
- receive window: 64240 B in the SYN, then window_clamp = 65536 - advmss until receive-buffer
  autotuning (`tcp_rcv_space_adjust`, once per receiver RTT; off by default, see TCPConfig.
  rcv_autotune) raises it; rcv_ssthresh grows by
  2·advmss per segment, in order or held out of order (`tcp_grow_window`), and each growth arms
  one quick-ACK credit (`icsk_ack.quick |= 1`): while the window opens, segments are ACKed singly.
- receive memory and the window (`__tcp_select_window`, `tcp_select_window`): data not yet read by
  the application, and out-of-order data, occupy sk_rmem_alloc as coalesced skbs (payload + one
  ~1 KB skb head per up to 17 segments: `tcp_try_coalesce`); the advertised window is half the free
  receive buffer (adv_win_scale 1), capped by rcv_ssthresh, rounded up to the window scale (7 with
  tcp_rmem[2] = 6 MB) and never shrunk below what was already offered. The every-second-segment
  ACK waits while unread data makes that window smaller than the one last advertised.
- the application's reads (`tcp_recvmsg` + `tcp_cleanup_rbuf`, see :meth:`read`): the ACK a read
  sends when one is pending, and the window-update ACK when a read doubles the window. The driver
  decides when the application reads (at once, or after the host's read latency).
- SACK compression (`__tcp_ack_snd_check`, Linux ≥ 4.18): out-of-order data is acknowledged at
  once only for the first 3 segments at a given rcv_nxt (TCP_FASTRETRANS_THRESH dup ACKs); later
  ones are folded into one SACK sent by a timer 5 % of the RTT later (at most
  tcp_comp_sack_delay_ns = 1 ms), or at once after tcp_comp_sack_nr = 44 compressed ones.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .rtt import RttEstimator

K_TCP_ATO_MIN = 0.040       # TCP_ATO_MIN = HZ/25
K_TCP_DELACK_MAX = 0.200    # TCP_DELACK_MAX = HZ/5
K_MAX_QUICKACKS = 16        # TCP_MAX_QUICKACKS
K_TCP_MSS_DEFAULT = 536     # initial rcv_mss estimate (tcp_initialize_rcv_mss)
K_SYN_WINDOW = 64240        # rounddown(65535, 1460) advertised in the SYN
K_RMEM_MAX = 6 * 1024 * 1024  # tcp_rmem[2]
K_RMEM_DEFAULT = 131072       # tcp_rmem[1]: the initial sk_rcvbuf
# receive memory per MSS in tcp_rcv_space_adjust: SKB_TRUESIZE(advmss + MAX_TCP_HEADER), raised in
# 128 B steps until half of it holds an MSS. It depends on the kernel build (struct sizes,
# MAX_HEADER); 2920 B is what the validation kernel (Debian's UML 6.1) uses: its SO_RCVBUF after
# autotuning is 261 · 2920 = 762120 B after 36033 B read, 281 · 2920 after 65624 B more
K_RCVMEM = 2920
K_MAX_SACK_BLOCKS = 3       # with timestamps, 3 SACK blocks fit in the option space
K_WSCALE = 7                # rcv_wscale for tcp_rmem[2] = 6 MB (tcp_select_initial_window)
K_WSCALE_UNIT = 1 << K_WSCALE
_WSCALE_ROUND = K_WSCALE_UNIT - 1  # windows are aligned up to the scale: (w + _WSCALE_ROUND) & _WSCALE_MASK
_WSCALE_MASK = -K_WSCALE_UNIT
K_MAX_WINDOW = 65535 << K_WSCALE
K_SKB_HEAD = 1088           # truesize of a received segment's skb head: SKB_TRUESIZE(512) (skb_segment's
                            # linear part), its payload being page frags
K_COALESCE = 17             # MAX_SKB_FRAGS: segments tcp_try_coalesce() can merge into one skb
K_TLS_HEADER = 5            # the first recv() of a TLS record reads its header (no read-ahead)
K_DUPACK_THRESH = 3         # TCP_FASTRETRANS_THRESH: dup ACKs sent before SACKs are compressed
K_COMP_SACK_NR = 44         # tcp_comp_sack_nr
K_COMP_SACK_DELAY = 0.001   # tcp_comp_sack_delay_ns (s)
_ATO_MIN_HALF = K_TCP_ATO_MIN / 2


class Receiver:
    """Receive side of one endpoint. Sequence numbers count payload bytes from 0."""

    __slots__ = ("ack_pending", "autotune", "advmss", "ato", "copied", "delack_deadline", "dsack",
                 "lrcvtime", "ooo", "pingpong", "pushed", "quick", "rcv_mss", "rcv_nxt", "rcv_rtt",
                 "rcv_rtt_last_tsecr", "rcv_rtt_seq", "rcv_rtt_time", "rcv_wnd", "rcvbuf", "rcv_ssthresh",
                 "rcv_wup", "recent_block",
                 "record_ends", "space_bytes", "space_seq", "space_time", "ts_recent", "window_clamp",
                 "comp_deadline", "compressed", "dup_acks", "comp_rcv_nxt", "srtt_source", "wnd_cache",
                 "wnd_copied", "skb_bytes", "win_allowed", "win_full")

    def __init__(self, *, advmss: int, autotune: bool = True) -> None:
        self.advmss = advmss
        self.skb_bytes = K_COALESCE * advmss  # payload of a fully coalesced skb (see rmem)
        self.autotune = autotune
        self.rcv_nxt = 0
        self.rcv_wup = 0                 # rcv_nxt when the last ACK was sent
        self.rcv_wnd = 0                 # the window last advertised (bytes, from rcv_wup)
        self.copied = 0                  # copied_seq: what the application has read
        self.record_ends: list[int] | None = None  # the peer's TLS record ends (stream offsets)
        self.ooo: list[list[int]] = []   # sorted disjoint [start, end) blocks above rcv_nxt
        self.recent_block: tuple[int, int] | None = None
        self.dsack: tuple[int, int] | None = None
        # ACK policy state
        self.rcv_mss = min(advmss, K_TCP_MSS_DEFAULT)
        self.quick = 0
        self.pingpong = False
        self.ato = 0.0                   # 0 until the first data segment
        self.lrcvtime = 0.0
        self.ack_pending = False
        self.pushed = 0                  # short segments received since the last ACK
        self.delack_deadline: float | None = None
        # window
        # tcp_init_buffer_space(): sk_rcvbuf = tcp_rmem[1], window_clamp = 65536 - advmss,
        # rcvq_space.space = min(rcv_ssthresh, rcv_wnd, TCP_INIT_CWND * advmss)
        self._set_buffer(K_RMEM_DEFAULT, 65536 - advmss)
        self.rcv_ssthresh = min(K_SYN_WINDOW, self.window_clamp)
        self.space_bytes = min(self.rcv_ssthresh, 10 * advmss)
        self.space_seq = 0
        self.space_time: float | None = None  # set at ESTABLISHED (start())
        self.rcv_rtt: float | None = None     # rcv_rtt_est (s): see on_data
        self.rcv_rtt_last_tsecr = -1.0
        # tcp_rcv_rtt_measure's interval: when it started (None: not yet) and the rcv_nxt ending it
        self.rcv_rtt_time: float | None = None
        self.rcv_rtt_seq = 0
        self.ts_recent = 0.0
        # SACK compression: the timer's deadline (s), SACKs held back, dup ACKs sent at comp_rcv_nxt
        self.comp_deadline: float | None = None
        self.compressed = 0
        self.dup_acks = 0
        self.comp_rcv_nxt = -1
        self.srtt_source: RttEstimator | None = None  # the endpoint's RttEstimator (srtt for the compression delay)
        # select_window()'s last result (-1: none kept) and `copied` when it was worked out
        self.wnd_cache = -1
        self.wnd_copied = -1

    # -- window -------------------------------------------------------------------------------
    def window(self) -> int:
        """The window's cap from the receive buffer's growth (rcv_ssthresh, window_clamp), bytes."""
        return min(self.rcv_ssthresh, self.window_clamp)

    def rmem(self) -> int:
        """sk_rmem_alloc (bytes): unread in-order data and out-of-order data, as coalesced skbs.
        Each run of bytes held in a row (the unread data, each out-of-order block) is charged
        its payload plus one skb head per K_COALESCE segments: ceil(segments / K_COALESCE)
        skbs of ceil(n / advmss) segments, which is ceil(n / (K_COALESCE · advmss)) =
        ceil(n / skb_bytes). (The per-run charge is written out for the unread data and in the
        loop over the blocks rather than called: this runs for most segments sent and received.)"""
        skb_bytes = self.skb_bytes
        held = self.rcv_nxt - self.copied  # (copied never passes rcv_nxt)
        heads = (held + skb_bytes - 1) // skb_bytes
        for start, end in self.ooo:
            n = end - start
            held += n
            heads += (n + skb_bytes - 1) // skb_bytes
        return held + K_SKB_HEAD * heads

    def _set_buffer(self, rcvbuf: int, window_clamp: int) -> None:
        """Set sk_rcvbuf and window_clamp, and what select_window() derives from them alone:
        `win_allowed`, the window the whole buffer allows (tcp_win_from_space, adv_win_scale 1),
        and `win_full`, min(window_clamp, win_allowed) (the full space of `__tcp_select_window`).
        The only place the two change (set-up and autotuning)."""
        self.rcvbuf = rcvbuf
        self.window_clamp = window_clamp
        allowed = rcvbuf - (rcvbuf >> 1)
        self.win_allowed = allowed
        self.win_full = window_clamp if window_clamp < allowed else allowed

    def select_window(self) -> int:
        """`__tcp_select_window()`: half the free receive buffer (tcp_win_from_space, adv_win_scale
        1), capped by rcv_ssthresh, aligned up to the window scale; zero when less than an MSS or
        1/16 of the buffer is free. Below half the full space, quick-ACK credits are dropped.

        The result is kept (`wnd_cache`, with the `copied` it was worked out for) for
        :meth:`advertise`, which uses it until what it depends on changes: data arrives
        (:meth:`on_data` drops it), the application reads (`copied` moves) or autotuning grows
        the buffer (:meth:`_space_adjust` drops it). A low-memory result, which drops the quick-ACK
        credits, is not kept, so that every call does that. (The other callers, on_data and
        _cleanup, call it right after data arrived or `copied` moved: never for a kept result.)"""
        allowed = self.win_allowed
        self.wnd_copied = self.copied
        if self.ooo or self.rcv_nxt != self.copied:
            space = self.rcvbuf - self.rmem()
        else:  # nothing held: the whole space is free
            ssthresh = self.rcv_ssthresh
            free = allowed if allowed < ssthresh else ssthresh
            w = self.wnd_cache = (free + _WSCALE_ROUND) & _WSCALE_MASK
            return w
        free = space - (space >> 1)
        full = self.win_full
        low = free < full >> 1
        if low:
            self.quick = 0
            self.wnd_cache = -1  # (not kept: wnd_copied, just set, must not vouch for an older result)
            free &= _WSCALE_MASK
            if free < allowed >> 4 or free < min(self.rcv_mss, full):
                return 0
        if free > self.rcv_ssthresh:
            free = self.rcv_ssthresh
        w = (free + _WSCALE_ROUND) & _WSCALE_MASK
        if not low:
            self.wnd_cache = w
        return w

    def advertise(self) -> int:
        """`tcp_select_window()` for a segment being sent: the new window, never less than what is
        left of the one already offered; remembered as rcv_wnd from rcv_wup = rcv_nxt (bytes).
        The new window is select_window()'s kept result while that holds (see there)."""
        rcv_nxt = self.rcv_nxt
        cur = self.rcv_wup + self.rcv_wnd - rcv_nxt
        new = self.wnd_cache
        if new < 0 or self.wnd_copied != self.copied:
            new = self.select_window()
        if new < cur:
            new = (cur + _WSCALE_ROUND) & _WSCALE_MASK
        if new > K_MAX_WINDOW:
            new = K_MAX_WINDOW
        self.rcv_wnd = new
        self.rcv_wup = rcv_nxt
        return new

    def start(self, now: float) -> None:
        """ESTABLISHED: the first autotuning interval starts (`tcp_init_buffer_space`)."""
        self.space_time = now
        self.space_seq = self.copied = self.rcv_nxt

    def _space_adjust(self, now: float) -> None:
        """`tcp_rcv_space_adjust`, run as the application reads (at once, here): at most once
        per receiver RTT, if it read more than in the previous interval, size the buffer for
        twice that plus slow-start growth; the window clamp follows the buffer (adv_win_scale 1),
        which starts at tcp_rmem[1] = 128 KiB, so the window opens only past ~64 KB of need."""
        if self.rcv_rtt is None or self.space_time is None or now - self.space_time < self.rcv_rtt:
            return
        copied = self.copied - self.space_seq
        if copied > self.space_bytes:
            advmss = self.advmss
            rcvwin = 2 * copied + 16 * advmss
            grow = rcvwin * (copied - self.space_bytes) // self.space_bytes
            rcvwin += 2 * grow
            rcvbuf = min((rcvwin // advmss) * K_RCVMEM, K_RMEM_MAX)
            if rcvbuf > self.rcvbuf:
                self.wnd_cache = -1  # (the window is worked out again)
                self._set_buffer(rcvbuf, rcvbuf - (rcvbuf >> 1))  # window_clamp: tcp_win_from_space
            self.space_bytes = copied
        self.space_seq = self.copied
        self.space_time = now

    # -- data arrival -------------------------------------------------------------------------
    def on_data(self, now: float, seq: int, end: int, tsval: float, tsecr: float, rto: float) -> bool | None:
        """A data segment arrived. Returns True when an ACK must be sent at once; False: the
        caller arms the delayed-ACK timer (see :meth:`delack_timeout`) if `ack_pending`; None:
        a compressed SACK, sent by the compression timer (`comp_deadline`).

        As `tcp_data_queue`: a duplicate below rcv_nxt is DSACKed and puts the socket in quick-ACK
        mode (`tcp_enter_quickack_mode`); an out-of-order segment (or one already held) is ACKed
        at once with SACK/DSACK blocks; only in-order data feeds `tcp_event_data_recv` (rcv_mss,
        ato, quick-ACK credits, pingpong timing).

        The receiver's RTT estimate `rcv_rtt` (rcv_rtt_est, which paces autotuning) has two
        sources, as in Linux: every segment with a new echoed timestamp gives a sample, ms-granular,
        smoothed by 1/8 (`tcp_rcv_rtt_measure_ts`); and in-order data measures how long receiving
        one advertised window took, a sample that can only lower the estimate
        (`tcp_rcv_rtt_measure`, called from `tcp_event_data_recv`; `tcp_rcv_rtt_update` with
        win_dep = 1)."""
        length = end - seq
        self.ack_pending = True
        self.wnd_cache = -1  # (the window is worked out again)
        if tsecr > 0.0 and tsecr != self.rcv_rtt_last_tsecr:
            # tcp_rcv_rtt_measure_ts: once per echoed timestamp, full-sized segments, ms clock
            self.rcv_rtt_last_tsecr = tsecr
            if length >= self.rcv_mss:
                delta_ms = int(now * 1000.0) - round(tsecr * 1000.0)
                if delta_ms >= 0:
                    sample = (delta_ms or 1) * 1e-3
                    self.rcv_rtt = sample if self.rcv_rtt is None else 0.875 * self.rcv_rtt + 0.125 * sample
        if seq <= self.rcv_wup and tsval > 0.0:
            # tcp_replace_ts_recent(): echo the newest segment at or left of the last ACK's edge
            # (a retransmission or duplicate included), so timestamp RTT samples stay honest
            self.ts_recent = tsval
        rcv_nxt = self.rcv_nxt
        if end <= rcv_nxt:
            # a retransmission of data we have: DSACK, immediate ACK, quick-ACK mode
            self.dsack = (seq, end)
            self.pingpong = False
            self.ato = K_TCP_ATO_MIN
            self._incr_quickack()
            return True
        if seq > rcv_nxt:
            # out of order (rcv_nxt unchanged): held, or DSACKed if already held; then the ACK
            # test below, where SACK compression applies
            if not self._add_ooo(seq, end):
                self.dsack = (seq, end)
            elif self.rcv_ssthresh < self.window_clamp:
                # new data held: tcp_data_queue_ofo grows the window as in-order data does (for
                # SACK flows: tcp_grow_window at its end, or when it coalesces the segment)
                self._grow_window(length)
            rcv_mss = self.rcv_mss
            ooo = self.ooo
        else:
            # in order (possibly overlapping the left edge): tcp_event_data_recv
            rcv_mss = self.rcv_mss
            if length >= rcv_mss:
                if length > rcv_mss:  # tcp_measure_rcv_mss (a segment as long leaves it as it is)
                    self.rcv_mss = rcv_mss = length if length < self.advmss else self.advmss
            else:
                self.pushed += 1
            ato = self.ato
            if ato == 0.0:
                self._incr_quickack()
                self.ato = K_TCP_ATO_MIN
            else:
                gap = now - self.lrcvtime
                if gap <= _ATO_MIN_HALF:
                    self.ato = ato / 2 + _ATO_MIN_HALF
                elif gap < ato:
                    ato = ato / 2 + gap
                    self.ato = ato if ato <= rto else rto
                elif gap > rto:
                    self._incr_quickack()
            self.lrcvtime = now
            immediate = False
            if end > rcv_nxt:
                self.rcv_nxt = rcv_nxt = end
            # tcp_rcv_rtt_measure: once rcv_nxt passes where the window offered at the interval's
            # start ended, the interval is a sample that can only lower the estimate (µs clock)
            t0 = self.rcv_rtt_time
            if t0 is None or rcv_nxt >= self.rcv_rtt_seq:
                if t0 is not None:
                    sample = now - t0 if now > t0 else 1e-6
                    if self.rcv_rtt is None or sample < self.rcv_rtt:
                        self.rcv_rtt = sample
                self.rcv_rtt_seq = rcv_nxt + self.rcv_wnd
                self.rcv_rtt_time = now
            ooo = self.ooo
            if ooo:
                while ooo and ooo[0][0] <= rcv_nxt:
                    e = ooo.pop(0)[1]
                    if e > rcv_nxt:
                        rcv_nxt = e
                self.rcv_nxt = rcv_nxt
                # the gap filled: an ACK at once once no hole is left (RFC 5681 §4.2, ICSK_ACK_NOW);
                # while holes remain, the usual test and SACK compression below
                immediate = not ooo
            if length >= 128 and self.rcv_ssthresh < self.window_clamp:
                self._grow_window(length)  # tcp_event_data_recv → tcp_grow_window
            if immediate:
                return True
        # __tcp_ack_snd_check: more than one full segment since the last ACK, and the window it
        # would offer not smaller than the one offered (else tcp_recvmsg() sends the ACK when the
        # application reads; this segment is unread, so sk_rcvlowat's test never holds here) —
        # or quick-ACK mode (tested after the window, which may have ended it)
        if (rcv_nxt - self.rcv_wup) > rcv_mss and self.select_window() >= self.rcv_wnd:
            return True
        if self.quick > 0 and not self.pingpong:
            return True
        return self._compress(now) if ooo else False

    def read(self, now: float, send_ack: Callable[[float], None], once: bool = False) -> None:
        """The application reads what has arrived in order (`tcp_recvmsg`), one recv() at a time as
        a TLS client without read-ahead does (OpenSSL's SSL_read: recv(5) for each record's
        header, then recv() of the rest of the record, or of what has arrived of it). Each recv()
        ends as `tcp_recvmsg_locked` does: receive-buffer autotuning (`tcp_rcv_space_adjust`, at
        most once per receiver RTT), then `tcp_cleanup_rbuf` — an ACK if one is due: the pending
        one when more than a full segment is unacknowledged or when a pushed short segment was read
        and the queue is empty; or a window update when the read at least doubled the window
        (`send_ack(now)` is called at once, so that the ACK carries the window of that moment).
        All the recv() calls happen at `now` until nothing is left to read; with `once`, only the
        first (the caller makes the next one later: `Endpoint.recv_cost`)."""
        ends = self.record_ends
        while True:
            avail = self.rcv_nxt - self.copied
            if avail <= 0:
                return
            if ends is None:
                chunk = avail
            else:
                i = bisect_right(ends, self.copied)
                if self.copied == 0 or (i and ends[i - 1] == self.copied):
                    chunk = K_TLS_HEADER
                else:
                    chunk = ends[i] - self.copied if i < len(ends) else avail
                if chunk > avail:
                    chunk = avail
            self.copied += chunk
            if self.autotune and self.rcv_rtt is not None and self.space_time is not None \
                    and now - self.space_time >= self.rcv_rtt:
                self._space_adjust(now)
            if self._cleanup():
                send_ack(now)
            if once:
                return

    def _cleanup(self) -> bool:
        """`tcp_cleanup_rbuf()` after a recv() that copied data: True if an ACK is due."""
        if self.ack_pending:
            pushed = self.pushed
            if (self.rcv_nxt - self.rcv_wup > self.rcv_mss
                    or ((pushed >= 2 or (pushed and not self.pingpong))
                        and self.copied == self.rcv_nxt and not self.ooo)):
                return True
        now_wnd = self.rcv_wup + self.rcv_wnd - self.rcv_nxt
        if now_wnd < 0:
            now_wnd = 0
        if 2 * now_wnd <= self.window_clamp:
            new = self.select_window()
            if new and new >= 2 * now_wnd:
                return True
        return False

    def _grow_window(self, length: int) -> None:
        """`tcp_grow_window` for a data segment of `length` bytes, in order or held out of order
        (already charged to the receive memory): rcv_ssthresh grows by 2·advmss (or twice the
        segment) up to min(window_clamp, tcp_space()), and a growth sets one quick-ACK credit
        (`icsk_ack.quick |= 1`: the next ACK goes at once, outside pingpong mode)."""
        space = self.rcvbuf - self.rmem()
        limit = space - (space >> 1)
        if self.window_clamp < limit:
            limit = self.window_clamp
        ssthresh = self.rcv_ssthresh
        if ssthresh < limit:
            grow = 2 * self.advmss
            if 2 * length > grow:
                grow = 2 * length
            grown = ssthresh + grow
            self.rcv_ssthresh = grown if grown < limit else limit
            self.quick |= 1  # the grown window is announced at once (icsk_ack.quick |= 1)

    def _compress(self, now: float) -> bool | None:
        """The SACK-compression part of `__tcp_ack_snd_check` (out-of-order data held)."""
        if self.compressed >= K_COMP_SACK_NR:
            return True
        if self.comp_rcv_nxt != self.rcv_nxt:
            self.comp_rcv_nxt = self.rcv_nxt
            self.dup_acks = 0
        if self.dup_acks < K_DUPACK_THRESH:
            self.dup_acks += 1
            return True
        self.compressed += 1
        if self.comp_deadline is None:
            # 5 % of the RTT (the receiver's estimate, or srtt if smaller), at most 1 ms
            rtt = self.rcv_rtt or 0.0
            est = self.srtt_source
            if est is not None and est.srtt_us:
                srtt = (est.srtt_us >> 3) * 1e-6
                if srtt < rtt:
                    rtt = srtt
            delay = rtt / 20.0
            self.comp_deadline = now + (delay if delay < K_COMP_SACK_DELAY else K_COMP_SACK_DELAY)
        return None

    def on_comp_timer(self) -> bool:
        """The compression timer fired (`tcp_compressed_ack_kick`): True if a SACK is to be sent."""
        self.comp_deadline = None
        if self.compressed:
            self.compressed -= 1
            return True
        return False

    def _add_ooo(self, seq: int, end: int) -> bool:
        """Hold [seq, end) out of order (above rcv_nxt): merge it into the sorted disjoint
        blocks and remember the block holding it as the most recent (first SACK block).
        False, and nothing changes, if a block holds all of it already (a duplicate, to DSACK);
        a segment past the last block (the common case) is held without that search."""
        blocks = self.ooo
        if blocks:
            last = blocks[-1]
            if seq > last[1]:           # past every block (the common case): a new block
                blocks.append([seq, end])
                self.recent_block = (seq, end)
                return True
            if seq == last[1]:          # extends the last block
                last[1] = end
                self.recent_block = (last[0], end)
                return True
            for s, e in blocks:
                if s <= seq and end <= e:
                    return False        # held already
        blocks.append([seq, end])
        blocks.sort()
        merged: list[list[int]] = []
        for s, e in blocks:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        self.ooo = merged
        for s, e in merged:
            if s <= seq < e:
                self.recent_block = (s, e)
        return True

    def _incr_quickack(self) -> None:
        quick = min(self.window() // (2 * self.rcv_mss), K_MAX_QUICKACKS)
        self.quick = max(self.quick, quick)

    def in_quickack_mode(self) -> bool:
        return self.quick > 0 and not self.pingpong

    # -- ACK fields and ACK bookkeeping -----------------------------------------------------
    def sack_blocks(self) -> tuple[tuple[tuple[int, int], ...], bool]:
        """SACK blocks for the next ACK: a DSACK block first when one is due, then the block
        holding the most recent out-of-order arrival, then the others from the highest down
        (RFC 2018 §4), at most `K_MAX_SACK_BLOCKS`. With no DSACK due and one block held (the
        common case) that block is the SACK."""
        ooo = self.ooo
        if self.dsack is None:
            if len(ooo) == 1:
                b = ooo[0]
                return ((b[0], b[1]),), False
            if not ooo:
                return (), False
            blocks = []
            dsack = False
        else:
            blocks = [self.dsack]
            dsack = True
        recent = self.recent_block
        first = None
        if recent is not None:
            r0 = recent[0]
            for b in reversed(ooo):  # disjoint: at most one holds it (most often the highest)
                if b[0] <= r0 < b[1]:
                    first = b
                    blocks.append((b[0], b[1]))
                    break
        for b in reversed(ooo):
            if len(blocks) >= K_MAX_SACK_BLOCKS:
                break
            if b is not first:
                blocks.append((b[0], b[1]))
        return tuple(blocks[:K_MAX_SACK_BLOCKS]), dsack

    def on_data_sent(self, now: float) -> None:
        """This host sent data (`tcp_event_data_sent`): pingpong if within ato of the last
        received data."""
        if self.ato and now - self.lrcvtime < self.ato:
            self.pingpong = True

    def delack_timeout(self, srtt: float | None) -> float:
        """Delay of the delayed-ACK timer from now (`tcp_send_delayed_ack`)."""
        ato = self.ato or K_TCP_ATO_MIN
        if ato > K_TCP_ATO_MIN:
            max_ato = K_TCP_DELACK_MAX if (self.pingpong or self.pushed) else 0.5
            # (min() and max() written out: this runs for most data segments)
            if srtt:
                bound = K_TCP_ATO_MIN if K_TCP_ATO_MIN > srtt else srtt  # max(srtt, ATO_MIN)
                if bound < max_ato:
                    max_ato = bound
            if max_ato < ato:
                ato = max_ato
        return K_TCP_DELACK_MAX if K_TCP_DELACK_MAX < ato else ato  # icsk_delack_max

    def on_delack_timer(self, rto: float) -> bool:
        """The delayed-ACK timer fired (`tcp_delack_timer_handler`); True if an ACK is due."""
        self.delack_deadline = None
        if not self.ack_pending:
            return False
        if self.pingpong:
            self.pingpong = False
            self.ato = K_TCP_ATO_MIN
        else:
            self.ato = min(self.ato * 2, rto)
        return True
