"""One Linux TCP endpoint (client or server): connection set-up, the sender and receiver halves,
and its timers. A plain object handed the current time (sans-I/O, like aioquic's connection):
the driver (`ttlbsim.session`) feeds it segments and timer expiries and carries what it emits.

Connection set-up as Linux 6.1 does it (linux-tcp-netem.md §2): SYN and SYN-ACK retransmitted
after 1 s (TCP_TIMEOUT_INIT), doubling; a duplicate SYN makes the server resend its SYN-ACK at
once (`tcp_check_req`); the handshake RTT seeds the estimator (timestamp echo after a
retransmission); cwnd = the route's initcwnd at ESTABLISHED, or 1 after more than one SYN /
SYN-ACK retransmission (`tcp_init_transfer`). Windows: 64240 B in the SYN, 65160 B in the
SYN-ACK (`tcp_select_initial_window`).
"""

from __future__ import annotations

from typing import Callable

from ..timers import KernelTimers
from .congestion import create_congestion_control
from .receiver import Receiver
from .rtt import RttEstimator
from .segment import ACK, SYN, Segment
from .sender import Sender

CLOSED, SYN_SENT, SYN_RECV, ESTABLISHED = 0, 1, 2, 3
K_SYN_WINDOW_CLIENT = 64240   # rounddown(65535, 1460)
K_SYN_WINDOW_SERVER = 65160   # rounddown(65535, 1448)
K_SYN_RETRIES = 6             # tcp_syn_retries
K_SYNACK_RETRIES = 5          # tcp_synack_retries


def _ts(now: float) -> float:
    """TCP timestamp value: ms clock (TCP_TS_HZ 1000), never 0."""
    return int(now * 1000.0) / 1000.0 or 1e-3


class Endpoint:
    """A TCP endpoint. `emit(seg)` puts a segment on this side's netem (the driver counts them); `on_established(now)` and
    `on_receive(now, total_bytes)` tell the application about progress."""

    __slots__ = ("_emit", "_on_established", "_on_receive", "cc", "mss", "name",
                 "peer_ts", "read_at", "read_delay", "read_free", "reading", "receiver", "recv_cost", "rtt",
                 "sender", "state", "syn_retrans", "syn_sent_at", "syn_timeout", "syn_timer", "syn_ts", "tcp",
                 "timers", "wake_at")

    def __init__(self, *, name: str, tcp, mss: int, timers: KernelTimers, emit: Callable[[Segment], None],
                 on_established: Callable[[float], None], on_receive: Callable[[float, int], None]) -> None:
        self.name = name
        self.tcp = tcp
        self.mss = mss
        self.timers = timers
        self._emit = emit
        self._on_established = on_established
        self._on_receive = on_receive
        self.state = CLOSED
        self.rtt = RttEstimator(min_rto_s=tcp.min_rto_s, initial_rto_s=tcp.initial_rto_s, hz=tcp.hz)
        self.cc = create_congestion_control(tcp.cc, initcwnd=tcp.initcwnd, hystart=tcp.hystart, hz=tcp.hz,
                                            jiffy_phase_s=timers.phase_s)
        self.receiver = Receiver(advmss=mss, autotune=tcp.rcv_autotune)
        self.receiver.srtt_source = self.rtt
        self.sender = Sender(mss=mss, cc=self.cc, rtt=self.rtt, timers=timers, nodelay=tcp.nodelay, gso=tcp.gso,
                             make_segment=self._segment, emit=self._emit)
        self.syn_timer: float | None = None
        self.syn_timeout = tcp.initial_rto_s
        self.syn_sent_at = 0.0
        self.syn_retrans = 0
        self.syn_ts = 0.0
        self.peer_ts = 0.0
        self.wake_at: float | None = None  # the driver's scheduled wake-up (session.Connection)
        # the application's reads: at once (0), or `read_delay` s after data stops arriving (a host
        # whose receive processing keeps the reader off the CPU during a burst)
        self.read_delay = 0.0
        self.read_at: float | None = None
        # seconds one recv() call takes in the application (0: all the recv() calls of a burst at
        # once); with it > 0, `reading` is True while the reader is in a burst, its next recv()
        # due at `read_at`, and `read_free` is when its last recv() is over
        self.recv_cost = 0.0
        self.reading = False
        self.read_free = 0.0

    # -- emission -----------------------------------------------------------------------------
    def _segment(self, seq: int, end: int, now: float) -> Segment:
        """A segment of payload [seq, end) with this side's ACK fields (ack, window, SACK
        blocks, DSACK?, timestamps); clears the pending ACK (`tcp_event_ack_sent`) and, if it
        carries data, tells the receiver (`tcp_event_data_sent`, which can only enter pingpong
        mode: not called once in it). Runs for every packet: the receiver's no-SACK case and its
        window are read in place."""
        r = self.receiver
        wnd = r.advertise()  # tcp_select_window(): also rcv_wup = rcv_nxt
        tsval = int(now * 1000.0) / 1000.0 or 1e-3  # _ts(now), inlined
        if r.dsack is None and not r.ooo:
            seg = Segment(ACK, seq, end, r.rcv_nxt, wnd, (), False, tsval, r.ts_recent)
        else:
            sack, dsack = r.sack_blocks()
            seg = Segment(ACK, seq, end, r.rcv_nxt, wnd, sack, dsack, tsval, r.ts_recent)
        # tcp_event_ack_sent(): one quick-ACK credit used if an ACK was due; delayed ACK off.
        # The receiver sets the state cleared here (short segments counted, DSACK, delayed-ACK
        # and SACK-compression timers) only while an ACK is pending: a segment sent with none
        # pending (most of a data sender's) has nothing to clear.
        if r.ack_pending:
            if r.quick:
                r.quick -= 1
            r.ack_pending = False
            r.pushed = 0
            r.dsack = None
            r.delack_deadline = None
            if r.compressed or r.comp_deadline is not None:  # compressed SACKs go with this ACK
                r.compressed = 0
                r.comp_deadline = None
        if end > seq and not r.pingpong:  # (__tcp_transmit_skb: a segment with data)
            r.on_data_sent(now)
        return seg

    def send_ack(self, now: float) -> None:
        seq = self.sender.snd_nxt
        self._emit(self._segment(seq, seq, now))

    def _send_syn(self, now: float) -> None:
        self.syn_ts = _ts(now)
        wnd = K_SYN_WINDOW_CLIENT if self.name == "client" else K_SYN_WINDOW_SERVER
        self._emit(Segment(SYN | (ACK if self.name == "server" else 0), 0, 0, 0, wnd, (), False,
                           self.syn_ts, self.peer_ts))

    # -- connection set-up --------------------------------------------------------------------
    def connect(self, now: float) -> None:
        """Client: send the SYN and arm the SYN timer (`tcp_connect`)."""
        self.state = SYN_SENT
        self.syn_sent_at = now
        self._send_syn(now)
        self.syn_timer = self.timers.expiry(now, self.syn_timeout)

    def _establish(self, now: float, rtt_sample: float | None) -> None:
        """`tcp_init_transfer`: RTT seed, initial cwnd (1 after >1 SYN retransmissions)."""
        self.state = ESTABLISHED
        self.syn_timer = None
        self.receiver.start(now)
        if rtt_sample is not None and rtt_sample > 0:
            self.rtt.on_sample(rtt_sample, snd_una=0, snd_nxt=0)
        else:
            self.rtt.set_fallback()  # no handshake RTT: TCP_TIMEOUT_FALLBACK (tcp_init_metrics)
        self.sender.rto_s = self.rtt.rto_s
        self.cc.on_init(now=now, snd_nxt=self.sender.snd_nxt)
        if self.syn_retrans > 1:
            self.cc.cwnd = 1
        self._on_established(now)

    # -- input ----------------------------------------------------------------------------------
    def on_segment(self, now: float, seg: Segment) -> None:
        if seg.flags & SYN:
            self._on_syn(now, seg)
            return
        if self.state != ESTABLISHED:
            if self.state != SYN_RECV:
                return
            # the final ACK of the handshake, or the first data segment carrying the same ACK
            sample = now - self.syn_sent_at if self.syn_retrans == 0 else (now - seg.tsecr if seg.tsecr else None)
            self.sender.snd_wnd = seg.wnd
            self._establish(now, sample)
        # Linux's order (tcp_rcv_established): tcp_ack, tcp_data_queue, tcp_data_snd_check (new
        # data, which carries the ACK), then tcp_ack_snd_check (a pure ACK if one is still due)
        sender = self.sender
        if seg.ack <= sender.snd_una and not seg.sack and sender.packets_out == 0:
            sender.snd_wnd = seg.wnd  # nothing outstanding: only a window update (fast path)
        else:
            sender.on_ack(now, seg)
        seq, end = seg.seq, seg.end
        if end > seq:
            r = self.receiver
            before = r.rcv_nxt
            rto = sender.rto_s
            if seg.nseg == 1:
                immediate = r.on_data(now, seq, end, seg.tsval, seg.tsecr, rto)
                if sender.send_idx < len(sender.queue) or sender.lost_out:
                    sender.push(now)
                if r.ack_pending:
                    if immediate:  # _ack_check(now, True)
                        ack = sender.snd_nxt  # send_ack(now)
                        self._emit(self._segment(ack, ack, now))
                    elif immediate is not None:  # (None: a compressed SACK, sent by its timer)
                        self._ack_check(now, False)
            else:
                # a GSO skb, segmented after the sender's qdisc: its MSS segments arrive back to
                # back and the receiver (GRO off) handles each in turn (on_data leaves an ACK
                # pending: `_ack_check` for each)
                mss = self.mss
                tsval, tsecr = seg.tsval, seg.tsecr
                delack = None  # delayed-ACK delay armed here, deadline not worked out yet
                for start in range(seq, end, mss):
                    stop = start + mss if start + mss < end else end
                    now_ack = r.on_data(now, start, stop, tsval, tsecr, rto)
                    if now_ack:
                        delack = None  # (the ACK disarms the delayed-ACK timer)
                        ack = sender.snd_nxt  # send_ack(now)
                        self._emit(self._segment(ack, ack, now))
                    elif now_ack is None:
                        continue  # a compressed SACK: its timer sends it
                    elif delack is None and r.delack_deadline is None:
                        # _ack_check(now, False) arms the delayed-ACK timer: its delay depends on
                        # the state now, its deadline (a timer-wheel computation) is needed only if
                        # no later segment of this skb sends the ACK first (on_data never reads it)
                        delack = r.delack_timeout(self.rtt.srtt_s)
                    else:
                        if delack is not None:
                            r.delack_deadline = self.timers.expiry(now, delack)
                            delack = None
                        self._ack_check(now, False)
                if delack is not None:
                    r.delack_deadline = self.timers.expiry(now, delack)
                if sender.send_idx < len(sender.queue) or sender.lost_out:
                    sender.push(now)
            if r.rcv_nxt > before:
                if self.recv_cost:
                    self._data_ready(now)
                elif self.read_delay:
                    self.read_at = now + self.read_delay
                else:
                    self.app_read(now)
        else:
            # a segment without data: its timestamp is echoed from now on if it is at or left of
            # the edge of our last ACK (tcp_ack → tcp_replace_ts_recent; data segments do this in
            # Receiver.on_data), so a sender's next data echoes the ACK that released it and the
            # peer's receiver measures the round trip (tcp_rcv_rtt_measure_ts) from it
            r = self.receiver
            if seq <= r.rcv_wup and seg.tsval >= r.ts_recent:
                r.ts_recent = seg.tsval
            # and it takes up its echoed timestamp for the receiver's RTT without a sample (the
            # pure-ACK fast path sets rcv_rtt_last_tsecr; the slow path's tcp_rcv_rtt_measure_ts
            # finds it shorter than rcv_mss): data that follows with the same echo gives none
            r.rcv_rtt_last_tsecr = seg.tsecr
            if sender.send_idx < len(sender.queue) or sender.lost_out:
                sender.push(now)
        if sender.probe_pending:  # the ACK's loss probe, unless new data sent re-armed it
            sender.arm_pending_probe(now)

    def _data_ready(self, now: float) -> None:
        """New in-order data with a `recv_cost` > 0. A reader in a burst takes it with its next
        recv(), already scheduled. An idle one reads `read_delay` after data stops arriving (each
        arrival moves the read later), but not before its last recv() is over (`read_free`)."""
        if self.reading:
            return
        t = now + self.read_delay
        if t < self.read_free:
            t = self.read_free
        if t > now:
            self.read_at = t
        else:
            self.app_read(now)

    def app_read(self, now: float) -> None:
        """The application reads what has arrived (`Receiver.read`), sending the ACKs its recv()
        calls trigger, and learns how much it has read (the last byte read: its TTLB).

        With `recv_cost` = 0, every recv() until nothing is left, all at `now`. With
        `recv_cost` > 0 (seconds per recv() call), one recv() — as OpenSSL's SSL_read without
        read-ahead makes them, recv(5) for a record's header then recv() of the rest, each a
        `tcp_recvmsg_locked` ending with autotuning and `tcp_cleanup_rbuf` — and, if data is left
        to read, the next one `recv_cost` later (`read_at`, a timer the driver wakes the endpoint
        for); data arriving meanwhile is read by the later recv() calls."""
        self.read_at = None
        r = self.receiver
        cost = self.recv_cost
        if cost:
            self.reading = False
            if r.rcv_nxt > r.copied:
                r.read(now, self.send_ack, True)
                self._on_receive(now, r.copied)
                self.read_free = now + cost
                if r.rcv_nxt > r.copied:
                    self.reading = True
                    self.read_at = now + cost
            return
        if r.rcv_nxt > r.copied:
            r.read(now, self.send_ack)
            self._on_receive(now, r.copied)

    def _on_syn(self, now: float, seg: Segment) -> None:
        self.peer_ts = seg.tsval
        self.receiver.ts_recent = seg.tsval  # tcp_store_ts_recent: echoed by our next segments
        if self.name == "server":
            if self.state == CLOSED:
                self.state = SYN_RECV
                self.syn_sent_at = now
                self._send_syn(now)
                self.syn_timer = self.timers.expiry(now, self.syn_timeout)
            elif self.state == SYN_RECV:
                # duplicate SYN: retransmit the SYN-ACK at once (tcp_check_req → rtx_syn_ack)
                self.syn_retrans += 1
                self._send_syn(now)
            return
        # client: SYN-ACK
        if self.state == SYN_SENT:
            sample = now - self.syn_sent_at if self.syn_retrans == 0 else (now - seg.tsecr if seg.tsecr else None)
            self.sender.snd_wnd = seg.wnd
            self._establish(now, sample)
            self.send_ack(now)
        elif self.state == ESTABLISHED:
            self.send_ack(now)  # our ACK was lost: the server retransmitted its SYN-ACK

    def _ack_check(self, now: float, immediate: bool) -> None:
        """`__tcp_ack_snd_check` / `tcp_send_delayed_ack`: ACK now, or arm the delayed-ACK
        timer (never later than an armed one; at once if that one is within ato/4)."""
        r = self.receiver
        if immediate:
            seq = self.sender.snd_nxt  # send_ack(now)
            self._emit(self._segment(seq, seq, now))
            return
        delay = r.delack_timeout(self.rtt.srtt_s)
        if r.delack_deadline is None:
            r.delack_deadline = self.timers.expiry(now, delay)
        elif r.delack_deadline - now <= delay / 4:
            self.send_ack(now)

    # -- application ----------------------------------------------------------------------------
    def write(self, now: float, nbytes: int) -> None:
        self.sender.write(now, nbytes)

    # -- timers ---------------------------------------------------------------------------------
    def timer_deadline(self) -> float | None:
        t = self.sender.xmit_timer
        d = self.receiver.delack_deadline
        if d is not None and (t is None or d < t):
            t = d
        s = self.syn_timer
        if s is not None and (t is None or s < t):
            t = s
        s = self.read_at
        if s is not None and (t is None or s < t):
            t = s
        s = self.receiver.comp_deadline
        if s is not None and (t is None or s < t):
            t = s
        return t

    def on_timer(self, now: float) -> None:
        if self.syn_timer is not None and now >= self.syn_timer:
            self.syn_retrans += 1
            self.syn_timeout = min(self.syn_timeout * 2, 120.0)  # backoff capped at TCP_RTO_MAX
            self._send_syn(now)
            self.syn_timer = self.timers.expiry(now, self.syn_timeout)
        r = self.receiver
        if r.delack_deadline is not None and now >= r.delack_deadline:
            if r.on_delack_timer(self.sender.rto_s):
                self.send_ack(now)
        s = self.sender
        if s.xmit_timer is not None and now >= s.xmit_timer:
            s.on_timer(now)
        if r.comp_deadline is not None and now >= r.comp_deadline:
            if r.on_comp_timer():
                self.send_ack(now)
        if self.read_at is not None and now >= self.read_at:
            self.app_read(now)
