"""The sending half of a Linux TCP endpoint: send queue, transmission, ACK processing, loss
recovery and retransmission timers. Congestion control and RTT estimation are separate parts it
calls (`ttlbsim.tcp.congestion`, `ttlbsim.tcp.rtt`); this object is the orchestrator, as
`tcp_ack()` is in Linux, and it is handed the current time on every call.

Order of work on an incoming ACK (`on_ack`), as in Linux 6.1 `tcp_ack()`:
 1. window update; SACK scoreboard (`tcp_sacktag_write_queue`), RACK state advanced for every
    newly delivered segment (`tcp_rack_advance`); reordering noticed;
 2. cumulative ACK (`tcp_clean_rtx_queue`): segments freed, RTT samples (seq_rtt from the oldest
    never-retransmitted segment, ca_rtt from the most recent; SACK and timestamp fallbacks),
    congestion control's `pkts_acked` (HyStart);
 3. RTT estimator and RTO (`tcp_ack_update_rtt`, backoff reset); TLP outcome (`tcp_process_tlp_ack`);
 4. loss detection by RACK (`tcp_rack_mark_lost`, reordering window, reorder timer) and the
    recovery state machine (`tcp_fastretrans_alert`: Open/Disorder/CWR/Recovery/Loss);
 5. timers: TLP (`tcp_schedule_loss_probe`) or RTO (`tcp_rearm_rto`) when data was acked (the
    TLP armed once the ACK's processing is over, unless new data sent in reply re-armed it);
 6. cwnd: PRR while reducing (`tcp_cwnd_reduction`), else slow start / congestion avoidance if
    `tcp_may_raise_cwnd` and cwnd-limited (`tcp_cong_control`);
 7. transmit: lost segments first (`tcp_xmit_retransmit_queue`), then new data
    (`tcp_write_xmit`, Nagle/Minshall unless TCP_NODELAY; it re-arms the TLP after new data).

Not modelled (see README "What the model leaves out"): F-RTO, DSACK-based undo, TSO/GSO,
pacing, ECN, tcp_metrics carry-over between connections.
"""

from __future__ import annotations

from bisect import bisect_left
from operator import attrgetter
from typing import Callable

from .segment import ACK, Segment

OPEN, DISORDER, CWR, RECOVERY, LOSS = 0, 1, 2, 3, 4
K_REORDERING = 3               # sysctl tcp_reordering
K_TLP_TIMEOUT_MIN_US = 2000   # TCP_TIMEOUT_MIN_US (TLP floor, added before jiffies rounding)
K_RACK_REO_TIMEOUT_EXTRA = 0.002  # TCP_TIMEOUT_MIN_US (RACK reorder timer floor), s
K_MIN_TSO_SEGS = 2             # sysctl tcp_min_tso_segs


class Skb:
    """One segment in the send queue (Linux keeps one skb per MSS without TSO)."""

    __slots__ = ("seq", "end", "xmit_time", "tx", "sacked", "lost", "retrans")

    def __init__(self, seq: int, end: int) -> None:
        self.seq = seq
        self.end = end
        self.xmit_time = -1.0    # last transmission; -1 = never sent
        self.tx = 0              # transmissions so far
        self.sacked = False
        self.lost = False
        self.retrans = False     # a retransmission of it is in flight (TCPCB_SACKED_RETRANS)


_seq_of = attrgetter("seq")


class Sender:
    """Send side of one endpoint. Sequence numbers count payload bytes from 0.

    `emit(seg)` is called for every segment to put on the wire; `make_segment(seq, end, now)`
    builds a segment with the receive side's ACK fields (piggybacked ACK), and tells the receive
    side that data was sent (`tcp_event_data_sent`).
    """

    __slots__ = ("_emit", "_make_segment", "backoff", "cc", "cwnd_usage_seq", "gso",
                 "high_seq", "highest_sacked_end", "is_cwnd_limited_flag", "lost_out", "lsndtime",
                 "max_packets_out", "mss", "nodelay", "packets_out", "prior_cwnd", "probe_pending",
                 "prr_delivered", "prr_out", "queue", "rack_end_seq", "rack_mstamp", "rack_rtt", "rack_sent",
                 "reord_seen", "retrans_out", "sack_cache", "retransmits", "rto_count", "rto_s",
                 "rtt", "rtx_hint", "sacked_out", "send_idx", "snd_nxt",
                 "snd_sml", "snd_una", "snd_wnd", "state", "timers", "tlp_count", "tlp_high_seq",
                 "tlp_retrans", "una_idx", "write_seq", "xmit_kind", "xmit_timer")

    def __init__(self, *, mss: int, cc, rtt, timers, nodelay: bool, gso: bool = True,
                 make_segment: Callable[[int, int, float], Segment], emit: Callable[[Segment], None]) -> None:
        self.mss = mss
        self.cc = cc
        self.rtt = rtt
        self.timers = timers
        self.nodelay = nodelay
        self.gso = gso
        self._make_segment = make_segment
        self._emit = emit
        self.queue: list[Skb] = []
        self.una_idx = 0             # index of the first unacknowledged skb
        self.rtx_hint = 0            # no lost, unretransmitted skb below this index
        # the skbs RACK looks at, in the order of their last transmission (Linux's
        # tsorted_sent_queue): sent, not SACKed, not cumulatively ACKed, and not marked lost
        # unless a retransmission is in flight (a dict used as an insertion-ordered set)
        self.rack_sent: dict[Skb, None] = {}
        # SACK blocks of the last ACK: start -> (end, index of the first skb at or past end, or -1)
        self.sack_cache: dict[int, tuple[int, int]] = {}
        self.send_idx = 0            # index of the first never-sent skb
        self.snd_una = 0
        self.snd_nxt = 0
        self.write_seq = 0
        self.snd_wnd = 65535         # peer's advertised window (bytes)
        self.snd_sml = 0             # end of the last short segment sent (Minshall)
        self.packets_out = 0
        self.sacked_out = 0
        self.lost_out = 0
        self.retrans_out = 0
        self.state = OPEN
        self.high_seq = 0
        self.prior_cwnd = 0
        self.prr_delivered = 0
        self.prr_out = 0
        self.max_packets_out = 0
        self.is_cwnd_limited_flag = False
        self.cwnd_usage_seq = 0
        self.lsndtime = 0.0
        # RACK
        self.rack_mstamp = -1.0
        self.rack_end_seq = 0
        self.rack_rtt = 0.0
        self.reord_seen = 0
        self.highest_sacked_end = 0
        # timers: one retransmission timer with a kind (RTO, TLP or REO), as icsk_pending
        self.xmit_timer: float | None = None
        self.xmit_kind = ""
        self.tlp_high_seq = 0
        self.tlp_retrans = False
        self.probe_pending = False   # an ACK's loss probe, to arm when its processing is over
        self.backoff = 0
        self.rto_s = rtt.rto_s
        # statistics
        self.retransmits = 0
        self.rto_count = 0
        self.tlp_count = 0

    # -- helpers ------------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """`tcp_packets_in_flight`: packets_out - (sacked_out + lost_out) + retrans_out."""
        return self.packets_out - self.sacked_out - self.lost_out + self.retrans_out

    def cwnd_limited(self) -> bool:
        """`tcp_is_cwnd_limited`."""
        if self.is_cwnd_limited_flag:
            return True
        if self.cc.cwnd < self.cc.ssthresh:
            return self.cc.cwnd < 2 * self.max_packets_out
        return False

    # -- application writes -------------------------------------------------------------------
    def write(self, now: float, nbytes: int) -> None:
        """The application writes `nbytes` (`tcp_sendmsg_locked`): the unsent tail skb is filled
        up to one MSS first, then new MSS-sized skbs; then the queue is pushed."""
        if nbytes <= 0:
            return
        if self.packets_out == 0 and self.send_idx == len(self.queue) and self.lsndtime:
            self.cc.on_cwnd_restart(now=now, last_send=self.lsndtime, rto_s=self.rto_s,
                                    in_cwnd_reduction=self.state in (CWR, RECOVERY))
        q = self.queue
        remaining = nbytes
        if self.send_idx < len(q):
            tail = q[-1]
            room = self.mss - (tail.end - tail.seq)
            if room > 0:
                take = min(room, remaining)
                tail.end += take
                remaining -= take
        seq = q[-1].end if q else self.write_seq
        mss = self.mss
        while remaining > 0:
            end = seq + mss if remaining > mss else seq + remaining
            q.append(Skb(seq, end))
            seq = end
            remaining -= mss
        self.write_seq += nbytes
        self.push(now)

    # -- transmission ---------------------------------------------------------------------------
    def tso_segs(self) -> int:
        """Segments per GSO skb (`tcp_tso_autosize`): about 1 ms of the pacing rate
        (`tcp_update_pacing_rate`: 200 % of cwnd·MSS/srtt in slow start, 120 % after; pacing
        shift 10), plus a bonus at small RTTs (tcp_tso_rtt_log 9), at most 64 KB, at least
        tcp_min_tso_segs (2). Linux TCP always builds GSO skbs (segmentation happens after the
        qdisc when the device cannot), so netem delays and drops them whole. 1 without GSO."""
        if not self.gso:
            return 1
        cc = self.cc
        srtt_us8 = self.rtt.srtt_us
        if not srtt_us8:
            return K_MIN_TSO_SEGS
        ratio = 2.0 if cc.cwnd < cc.ssthresh / 2 else 1.2
        cwnd = cc.cwnd
        if self.packets_out > cwnd:  # max(cwnd, packets_out)
            cwnd = self.packets_out
        rate = self.mss * ratio * cwnd * 8e6 / srtt_us8  # bytes/s
        nbytes = rate / 1024.0
        min_rtt = self.rtt.min_rtt_us
        if min_rtt is not None and (min_rtt >> 9) < 32:
            nbytes += 65536 >> (min_rtt >> 9)
        if nbytes > 65536:
            nbytes = 65536
        segs = int(nbytes // self.mss)
        return segs if segs > K_MIN_TSO_SEGS else K_MIN_TSO_SEGS

    def _transmit(self, now: float, i: int, j: int, retransmission: bool) -> None:
        """Put queue[i:j] on the wire as one packet: one GSO skb of j - i MSS segments (every
        one full but the last), which netem treats as one packet of the summed frame size."""
        q = self.queue
        first, last = q[i], q[j - 1]
        seg = self._make_segment(first.seq, last.end, now)
        n = j - i
        # each skb goes to the tail of RACK's time-ordered list unless it is SACKed or marked
        # lost without a retransmission in flight (a loss probe resending a lost one); new data
        # (not a `retransmission`) is sent for the first time
        sent = self.rack_sent
        for k in range(i, j):
            skb = q[k]
            skb.xmit_time = now
            skb.tx += 1
            if not retransmission:
                sent[skb] = None
            else:
                sent.pop(skb, None)
                if not (skb.sacked or (skb.lost and not skb.retrans)):
                    sent[skb] = None
        if n > 1:
            payload = last.end - first.seq
            seg.frame_bytes = payload + n * (seg.frame_bytes - payload)
            seg.nseg = n
        self.lsndtime = now
        state = self.state
        if state == RECOVERY or state == CWR:
            self.prr_out += n
        self._emit(seg)

    def push(self, now: float) -> None:
        """Send what cwnd and the peer's window allow: lost segments first, then new data, in
        GSO skbs of up to `tso_segs()` segments."""
        sent_new = False
        cc = self.cc
        cwnd = cc.cwnd  # (nothing below changes cwnd)
        q = self.queue
        mss = self.mss
        # tso_segs() is worked out at the first packet that may hold more than one segment
        # (quota > 1): nothing it depends on has changed by then, as nothing was sent yet
        tso = 0
        # tcp_xmit_retransmit_queue, from the retransmit hint (the first segment that may be
        # lost and not yet retransmitted; retransmit_skb_hint in Linux), until the lost segments
        # not yet retransmitted have all been: `waiting` of them, as a retransmitted segment is
        # always one marked lost (counted in both lost_out and retrans_out) and a SACKed one never
        waiting = self.lost_out - self.retrans_out
        if waiting:
            i = self.rtx_hint if self.rtx_hint > self.una_idx else self.una_idx
            stop = self.send_idx
            # cwnd - in flight (tcp_packets_in_flight); only the retransmissions below change it
            quota = cwnd - (self.packets_out - self.sacked_out - self.lost_out + self.retrans_out)
            while waiting and i < stop:
                if quota <= 0:
                    break
                skb = q[i]
                if skb.lost and not skb.retrans and not skb.sacked:
                    j = i + 1
                    if quota > 1:
                        if not tso:
                            tso = self.tso_segs()
                        limit = tso if tso < quota else quota
                        while (j < stop and j - i < limit and q[j - 1].end - q[j - 1].seq == mss
                               and q[j].lost and not q[j].retrans and not q[j].sacked):
                            j += 1
                    for k in range(i, j):
                        q[k].retrans = True
                    self.retrans_out += j - i
                    self.retransmits += j - i
                    quota -= j - i
                    waiting -= j - i
                    self._transmit(now, i, j, True)
                    if i == self.una_idx and self.xmit_kind != "reo":
                        # the head went out again: a full RTO from now (tcp_xmit_retransmit_queue)
                        self._arm("rto", now, self.rto_s)
                    i = j
                else:
                    i += 1
            self.rtx_hint = i
        # tcp_write_xmit (sacked_out, lost_out, retrans_out and the window are fixed here)
        cwnd_limited = False
        nq = len(q)
        send_idx = self.send_idx
        packets_out = self.packets_out
        not_out = self.sacked_out + self.lost_out - self.retrans_out  # in flight = packets_out - not_out
        if send_idx < nq:
            right = self.snd_una + self.snd_wnd
            while send_idx < nq:
                in_flight = packets_out - not_out
                quota = cwnd - in_flight
                if quota <= 0:
                    cwnd_limited = True
                    break
                i = send_idx
                if q[i].end > right:
                    break
                j = i + 1
                if quota > 1:
                    if not tso:
                        tso = self.tso_segs()
                    # up to min(tso, quota) skbs, within the window; each but the last must be a full
                    # MSS, as every unsent skb but the queue's last is (write() fills the tail first)
                    stop = i + (tso if tso < quota else quota)
                    if stop > nq:
                        stop = nq
                    while j < stop and q[j].end <= right:
                        j += 1
                last = q[j - 1]
                if last.end - last.seq < mss:
                    if not self.nodelay and j == nq and self.snd_sml > self.snd_una:
                        # Minshall's Nagle: an earlier short segment is still unacknowledged
                        j -= 1
                        if j == i:
                            break
                        last = q[j - 1]
                    else:
                        self.snd_sml = last.end
                if in_flight == 0:
                    cc.on_tx_start(now=now, last_send=self.lsndtime)  # CA_EVENT_TX_START
                self.send_idx = send_idx = j
                self.packets_out = packets_out = packets_out + j - i
                self.snd_nxt = last.end
                self._transmit(now, i, j, False)
                sent_new = True
        if packets_out - not_out >= cwnd:
            cwnd_limited = True
        if sent_new or cwnd_limited:
            # tcp_cwnd_validate: remember the strongest evidence of cwnd use in this window
            if (self.snd_una >= self.cwnd_usage_seq or cwnd_limited
                    or (not self.is_cwnd_limited_flag and packets_out > self.max_packets_out)):
                self.is_cwnd_limited_flag = cwnd_limited
                self.max_packets_out = packets_out
                self.cwnd_usage_seq = self.snd_nxt
        if sent_new:
            # tcp_event_new_data_sent → tcp_rearm_rto when nothing was out or a TLP was pending;
            # then tcp_schedule_loss_probe. In Open/CWR the probe replaces that RTO at once (and
            # does not depend on it), so it is armed first and the RTO only when no probe was.
            # (_schedule_loss_probe does nothing outside Open and CWR: not called there)
            state = self.state
            if (not ((state == OPEN or state == CWR) and self._schedule_loss_probe(now))
                    and (self.xmit_timer is None or self.xmit_kind == "tlp")):
                self._rearm_rto(now)

    # -- timers ---------------------------------------------------------------------------------
    def arm_pending_probe(self, now: float) -> None:
        """Arm the loss probe of the ACK just processed (`tcp_set_xmit_timer` in `tcp_ack`, with
        advancing_rto), which `on_ack` leaves pending: called by the endpoint once the segment is
        handled. Linux arms it before sending what the ACK lets out, and that new data arms the
        probe again (`tcp_event_new_data_sent`), replacing it: armed here only if nothing was
        armed since (`probe_pending` still set). Nothing the probe depends on (state, packets_out,
        srtt, RTO) changes in between unless new data was sent, and nothing reads the timer."""
        if self.probe_pending:
            self._schedule_loss_probe(now, True)

    def _arm(self, kind: str, now: float, delay: float) -> None:
        self.probe_pending = False  # (replaced by this timer)
        self.xmit_kind = kind
        self.xmit_timer = self.timers.expiry(now, delay)

    def _rearm_rto(self, now: float) -> None:
        """`tcp_rearm_rto`: RTO from now, except that after a TLP/REO timer the remaining time is
        measured from the head segment's transmission (`tcp_rto_delta_us`)."""
        if self.packets_out == 0:
            self.xmit_timer = None
            self.xmit_kind = ""
            return
        rto = self.rto_s
        if self.xmit_kind in ("tlp", "reo"):
            head = self.queue[self.una_idx]
            delta = head.xmit_time + rto - now
            rto = 1e-6 if 1e-6 > delta else delta  # max(delta, 1 µs)
        self._arm("rto", now, rto)

    def _schedule_loss_probe(self, now: float, advancing_rto: bool = False) -> bool:
        """`tcp_schedule_loss_probe` (tcp_early_retrans = 3): in Open or CWR with data out, a
        probe after 2·srtt (+200 ms with one segment out, else +2 ms), never later than the RTO —
        a full RTO from now when called for an ACK (`advancing_rto`), else the head's. The floor is
        added in µs before converting to jiffies, as since "tcp: fix excessive TLP and RACK timeouts
        from HZ rounding" (Linux 6.7, backported to 6.1.y): with HZ 100 the old `+ TCP_TIMEOUT_MIN`
        (2 jiffies) probed 20 ms later than a 6.1.176 kernel does."""
        packets_out = self.packets_out
        if packets_out == 0 or (self.state != OPEN and self.state != CWR):
            return False
        rtt = self.rtt
        srtt_us = rtt.srtt_us
        if srtt_us:
            # 2·srtt plus a floor, in µs, converted to jiffies once (the expiry rounds up)
            if packets_out == 1:
                timeout = ((srtt_us >> 2) + rtt.rto_min_us) * 1e-6
            else:
                timeout = ((srtt_us >> 2) + K_TLP_TIMEOUT_MIN_US) * 1e-6
        else:
            timeout = rtt.rto_s
        self.probe_pending = False  # (replaced by this probe)
        if advancing_rto:
            rto_delta = self.rto_s
        else:
            rto_delta = self.queue[self.una_idx].xmit_time + self.rto_s - now  # tcp_rto_delta_us
        if rto_delta > 0.0:
            if rto_delta < timeout:
                timeout = rto_delta
        self.xmit_kind = "tlp"  # _arm("tlp", now, timeout)
        self.xmit_timer = self.timers.expiry(now, timeout)
        return True

    def on_timer(self, now: float) -> None:
        kind = self.xmit_kind
        self.xmit_timer = None
        self.xmit_kind = ""
        if self.packets_out == 0:
            return
        if kind == "rto":
            self._on_rto(now)
        elif kind == "tlp":
            self._on_tlp(now)
        elif kind == "reo":
            self._on_reo(now)

    def _on_rto(self, now: float) -> None:
        """`tcp_retransmit_timer` → `tcp_enter_loss`: everything unSACKed is lost (except what
        RACK says was sent too recently), cwnd = in_flight + 1, head retransmitted, RTO doubled."""
        self.rto_count += 1
        cc = self.cc
        if self.state <= DISORDER or self.snd_una >= self.high_seq or (self.state == LOSS and self.backoff == 0):
            cc.ssthresh = cc.ssthresh_after_loss(now=now)
        cc.on_enter_loss(now=now, snd_nxt=self.snd_nxt)
        head = self.queue[self.una_idx] if self.una_idx < self.send_idx else None
        for i in range(self.una_idx, self.send_idx):
            skb = self.queue[i]
            if skb.sacked:
                continue
            if skb is not head and self.rack_mstamp >= 0 and (skb.xmit_time + self.rack_rtt - now) > 0:
                continue
            self._mark_lost(skb, i)
        cc.cwnd = self.in_flight + 1
        self.state = LOSS
        self.high_seq = self.snd_nxt
        self.tlp_high_seq = 0
        self.prr_out = 0
        self.backoff += 1
        self.rtt.backoff()
        self.rto_s = self.rtt.rto_s
        if head is not None and head.lost and not head.retrans:
            head.retrans = True
            self.retrans_out += 1
            self.retransmits += 1
            self._transmit(now, self.una_idx, self.una_idx + 1, True)
        self._arm("rto", now, self.rto_s)
        self.push(now)

    def _on_tlp(self, now: float) -> None:
        """`tcp_send_loss_probe`: one new segment if the window allows, else the last one again
        (as `__tcp_retransmit_skb`: not counted in retrans_out); at most one probe outstanding."""
        if self.tlp_high_seq:
            self._rearm_rto(now)
            return
        self.tlp_count += 1
        q = self.queue
        if self.send_idx < len(q) and q[self.send_idx].end <= self.snd_una + self.snd_wnd:
            skb = q[self.send_idx]
            self.send_idx += 1
            self.packets_out += 1
            self.snd_nxt = skb.end
            self._transmit(now, self.send_idx - 1, self.send_idx, False)
            self.tlp_retrans = False
        else:
            skb = q[self.send_idx - 1]
            if skb.sacked:
                self._rearm_rto(now)
                return
            self.retransmits += 1
            self._transmit(now, self.send_idx - 1, self.send_idx, True)
            self.tlp_retrans = True
        self.tlp_high_seq = self.snd_nxt
        self._arm("rto", now, self.rto_s)

    def _on_reo(self, now: float) -> None:
        """`tcp_rack_reo_timeout`: re-run RACK; start recovery if it marked anything lost."""
        lost_before = self.lost_out
        self._rack_detect_loss(now)
        if self.lost_out > lost_before and self.state != RECOVERY:
            self._enter_recovery(now)
            self._prr(now, 1, 0, False)
        self.push(now)
        if self.xmit_timer is None:
            self._rearm_rto(now)

    # -- loss marking ---------------------------------------------------------------------------
    def _mark_lost(self, skb: Skb, index: int) -> None:
        """`tcp_mark_skb_lost`."""
        if index < self.rtx_hint:
            self.rtx_hint = index
        if skb.retrans:  # a retransmission that is lost again
            skb.retrans = False
            self.retrans_out -= 1
        if not skb.lost:
            skb.lost = True
            self.lost_out += 1
        self.rack_sent.pop(skb, None)

    def _rack_detect_loss(self, now: float) -> bool:
        """`tcp_rack_detect_loss`: a segment sent before the most recently delivered one is lost
        once rack.rtt + reo_wnd has passed since its transmission; else arm the reorder timer.

        As Linux, the walk goes over `rack_sent` in transmission order (`tsorted_sent_queue`:
        SACKed segments and lost ones not yet retransmitted are not in it) and stops at the first
        segment sent after the RACK reference: every later one was sent later still.

        Returns whether it armed the reorder timer (then the ACK does not re-arm RTO/TLP)."""
        # tcp_rack_reo_wnd: 0 when no reordering was seen and (in recovery or >= 3 SACKed),
        # else min(min_rtt / 4, srtt)
        if not self.reord_seen and (self.state >= RECOVERY or self.sacked_out >= K_REORDERING):
            reo_wnd = 0.0
        else:
            rtt = self.rtt
            min_rtt = rtt.min_rtt_us * 1e-6 if rtt.min_rtt_us is not None else 0.0  # min_rtt_s or 0
            srtt = (rtt.srtt_us >> 3) * 1e-6 if rtt.srtt_us else 0.0                 # srtt_s or 0
            reo_wnd = min_rtt / 4.0
            if srtt < reo_wnd:  # min(min_rtt / 4, srtt)
                reo_wnd = srtt
        timeout = 0.0
        rack_mstamp = self.rack_mstamp
        rack_end_seq = self.rack_end_seq
        wait = self.rack_rtt + reo_wnd
        lost = None
        for skb in self.rack_sent:
            t = skb.xmit_time
            if t >= rack_mstamp:
                if t > rack_mstamp:
                    break  # sent after the reference, as is everything after it
                if skb.end >= rack_end_seq:
                    continue  # sent with the reference, not before it (tcp_rack_sent_after)
            remaining = wait - (now - t)
            if remaining <= 0.0:
                if lost is None:
                    lost = [skb]
                else:
                    lost.append(skb)
            elif remaining > timeout:
                timeout = remaining
        if lost is not None:
            q = self.queue
            for skb in lost:
                self._mark_lost(skb, bisect_left(q, skb.seq, self.una_idx, self.send_idx, key=_seq_of))
        if timeout > 0.0:
            # tcp_rack_mark_lost → reorder timer (re)armed; the ACK then does not re-arm RTO/TLP
            self._arm("reo", now, timeout + K_RACK_REO_TIMEOUT_EXTRA)
            return True
        return False

    # -- recovery -------------------------------------------------------------------------------
    def _enter_recovery(self, now: float) -> None:
        """`tcp_enter_recovery` + `tcp_init_cwnd_reduction`."""
        self._init_cwnd_reduction(now)
        self.state = RECOVERY

    def _init_cwnd_reduction(self, now: float) -> None:
        """`tcp_init_cwnd_reduction`."""
        cc = self.cc
        self.high_seq = self.snd_nxt
        self.tlp_high_seq = 0
        cc.snd_cwnd_cnt = 0
        self.prior_cwnd = cc.cwnd
        self.prr_delivered = 0
        self.prr_out = 0
        cc.ssthresh = cc.ssthresh_after_loss(now=now)

    def _tlp_repaired_loss(self, now: float) -> None:
        """`tcp_process_tlp_ack`, ACK beyond the probe: the probe repaired a loss, so cwnd is
        reduced once (CWR entered and ended at once: cwnd = ssthresh) and the state kept open."""
        self._init_cwnd_reduction(now)
        cc = self.cc
        if cc.ssthresh < 0x7FFFFFFF:
            cc.cwnd = cc.ssthresh
        self.state = DISORDER if (self.sacked_out or self.lost_out or self.retrans_out) else OPEN

    def _prr(self, now: float, delivered: int, newly_lost: int, una_advanced: bool) -> None:
        """`tcp_cwnd_reduction`: Proportional Rate Reduction (RFC 6937)."""
        cc = self.cc
        prior_cwnd = self.prior_cwnd
        if not prior_cwnd:
            return
        in_flight = self.packets_out - self.sacked_out - self.lost_out + self.retrans_out
        ssthresh = cc.ssthresh
        delta = ssthresh - in_flight
        prr_out = self.prr_out
        if delivered <= 0 and prr_out:
            return
        if delivered > 0:
            self.prr_delivered += delivered
        prr_delivered = self.prr_delivered
        if delta < 0:
            sndcnt = (ssthresh * prr_delivered + prior_cwnd - 1) // prior_cwnd - prr_out
        else:
            sndcnt = prr_delivered - prr_out
            if delivered > sndcnt:
                sndcnt = delivered
            if una_advanced and not newly_lost:
                sndcnt += 1
            if delta < sndcnt:
                sndcnt = delta
        if sndcnt < (0 if prr_out else 1):
            sndcnt = 0 if prr_out else 1
        cc.cwnd = in_flight + sndcnt

    # -- ACK processing -------------------------------------------------------------------------
    def on_ack(self, now: float, seg: Segment) -> None:
        ack = seg.ack
        if ack > self.snd_nxt:
            return
        cc = self.cc
        self.snd_wnd = seg.wnd
        prior_una = self.snd_una
        q = self.queue
        delivered = 0
        reo_armed = False  # RACK armed the reorder timer (step 4)
        sack_rtt_first = sack_rtt_last = -1.0
        reordered = False
        # RACK state, advanced for every newly delivered segment in both loops below
        # (`tcp_rack_advance`: remember the most recently sent delivered segment)
        rack_rtt = self.rack_rtt
        rack_mstamp = self.rack_mstamp
        rack_end_seq = self.rack_end_seq
        rack_advanced = False
        # the highest SACKed sequence before this ACK (tcp_ack's prior_fack, taken before
        # tcp_sacktag_write_queue): a hole the cumulative ACK fills is reordering only if it lay
        # below data SACKed by an earlier ACK (tcp_clean_rtx_queue: before(reord, prior_fack)).
        # (With nothing SACKed Linux takes snd_una; a stale value here is at most snd_una.)
        prior_fack = self.highest_sacked_end
        # 1. SACK scoreboard
        if seg.sack:
            blocks = seg.sack[1:] if seg.dsack else seg.sack
            if len(blocks) > 1:
                # in sequence order, as tcp_sacktag_write_queue sorts them before its walk: the
                # receiver lists the most recent block first, and a segment SACKed by this ACK is
                # reordering only below data SACKed before it in that walk (tcp_sacktag_one)
                blocks = tuple(sorted(blocks))
            cache = self.sack_cache
            new_cache = {}
            una_idx = self.una_idx
            send_idx = self.send_idx
            highest_sacked = self.highest_sacked_end
            rack_sent = self.rack_sent
            newly_sacked = lost_cleared = retrans_cleared = 0
            for start, end in blocks:
                if end <= ack:
                    new_cache[start] = (end, -1)
                    continue
                # what an earlier ACK already reported of this block is SACKed: skip it (Linux's
                # recv_sack_cache). The queue is in sequence order: start at the skb where the
                # last walk of this block stopped if it still begins there, else bisect
                c = cache.get(start)
                if c is None:
                    lo, i = start, -1
                else:
                    lo, i = c
                if lo >= end:
                    new_cache[start] = (end, i if lo == end else -1)
                    continue
                if not (una_idx <= i < send_idx and q[i].seq == lo):
                    i = bisect_left(q, lo, una_idx, send_idx, key=_seq_of)
                while i < send_idx:
                    skb = q[i]
                    if skb.seq >= end:
                        break
                    i += 1
                    if skb.sacked or skb.end > end:
                        continue
                    skb.sacked = True
                    newly_sacked += 1
                    rack_sent.pop(skb, None)
                    if skb.lost:
                        skb.lost = False
                        lost_cleared += 1
                    if skb.retrans:
                        skb.retrans = False
                        retrans_cleared += 1
                    t = skb.xmit_time
                    if skb.tx == 1:
                        if sack_rtt_first < 0.0 or t < sack_rtt_first:
                            sack_rtt_first = t
                        if t > sack_rtt_last:
                            sack_rtt_last = t
                        if skb.end < highest_sacked:
                            reordered = True
                    if skb.end > highest_sacked:
                        highest_sacked = skb.end
                    # tcp_rack_advance
                    rtt = now - t
                    if skb.tx > 1:
                        min_rtt_s = self.rtt.min_rtt_s
                        if min_rtt_s and rtt < min_rtt_s:
                            continue  # ambiguous: may be the ACK of the original transmission
                    rack_rtt = rtt
                    if t > rack_mstamp or (t == rack_mstamp and skb.end > rack_end_seq):
                        rack_mstamp = t
                        rack_end_seq = skb.end
                    rack_advanced = True
                new_cache[start] = (end, i)
            self.sack_cache = new_cache
            self.highest_sacked_end = highest_sacked
            self.sacked_out += newly_sacked
            self.lost_out -= lost_cleared
            self.retrans_out -= retrans_cleared
            delivered += newly_sacked
        # 2. cumulative ACK
        first_ackt = last_ackt = -1.0
        retrans_acked = False
        una_advanced = ack > prior_una
        if una_advanced:
            i = una_idx = self.una_idx
            send_idx = self.send_idx
            rack_sent = self.rack_sent
            acked_sacked = acked_lost = acked_retrans = 0
            while i < send_idx:
                skb = q[i]
                if skb.end > ack:
                    break
                i += 1
                if skb.sacked:
                    acked_sacked += 1
                    continue
                delivered += 1
                rack_sent.pop(skb, None)
                t = skb.xmit_time
                if skb.tx > 1:
                    retrans_acked = True  # FLAG_RETRANS_DATA_ACKED: Karn, no seq RTT
                    if skb.lost:
                        acked_lost += 1
                    if skb.retrans:
                        acked_retrans += 1
                    # tcp_rack_advance
                    rtt = now - t
                    min_rtt_s = self.rtt.min_rtt_s
                    if min_rtt_s and rtt < min_rtt_s:
                        continue  # ambiguous: may be the ACK of the original transmission
                else:
                    if skb.lost:
                        acked_lost += 1
                    elif skb.end < prior_fack:
                        reordered = True  # a hole below data an earlier ACK SACKed got filled
                    if skb.retrans:
                        acked_retrans += 1
                    if first_ackt < 0.0:
                        first_ackt = t
                    last_ackt = t
                    # tcp_rack_advance
                    rtt = now - t
                rack_rtt = rtt
                if t > rack_mstamp or (t == rack_mstamp and skb.end > rack_end_seq):
                    rack_mstamp = t
                    rack_end_seq = skb.end
                rack_advanced = True
            self.packets_out -= i - una_idx
            self.sacked_out -= acked_sacked
            self.lost_out -= acked_lost
            self.retrans_out -= acked_retrans
            self.una_idx = i
            self.snd_una = ack
            if i > 256 and i > len(q) // 2:
                del q[:i]
                self.send_idx -= i
                self.rtx_hint = max(self.rtx_hint - i, 0)
                self.una_idx = 0
        if rack_advanced:  # (else the three are as they were)
            self.rack_rtt = rack_rtt
            self.rack_mstamp = rack_mstamp
            self.rack_end_seq = rack_end_seq
        if reordered:
            self.reord_seen += 1
        # RTT samples (tcp_clean_rtx_queue / tcp_ack_update_rtt)
        if first_ackt >= 0.0 and not retrans_acked:
            seq_rtt = now - first_ackt
            ca_rtt = now - last_ackt
        else:
            seq_rtt = ca_rtt = -1.0
        if sack_rtt_first >= 0.0:
            ca_rtt = now - sack_rtt_last
            if seq_rtt < 0.0:
                seq_rtt = now - sack_rtt_first
        if seq_rtt < 0.0 and una_advanced and seg.tsecr > 0.0:
            seq_rtt = ca_rtt = max(now - seg.tsecr, 0.001)
        if seq_rtt > 0.0:
            est = self.rtt
            est.on_sample(seq_rtt, self.snd_una, self.snd_nxt, ca_rtt if ca_rtt > 0.0 else None)
            self.rto_s = est.rto_jiffies / est.hz  # est.rto_s
            self.backoff = 0
        # TLP outcome (tcp_process_tlp_ack)
        if self.tlp_high_seq and ack >= self.tlp_high_seq:
            if not self.tlp_retrans or seg.dsack:
                self.tlp_high_seq = 0     # new data probed, or original and probe both arrived
            elif ack > self.tlp_high_seq:
                self._tlp_repaired_loss(now)
            elif not una_advanced and not seg.sack and seg.end == seg.seq:
                self.tlp_high_seq = 0     # pure dupACK: no loss
        # 4. loss detection and state machine
        lost_before = self.lost_out
        state = self.state
        if rack_advanced and (self.sacked_out or state != OPEN):
            reo_armed = self._rack_detect_loss(now)
        newly_lost = self.lost_out - lost_before
        if state >= CWR and self.snd_una >= self.high_seq:  # CWR, Recovery or Loss ends
            if state != LOSS:
                cc.cwnd = max(cc.ssthresh, 1) if cc.ssthresh < 0x7FFFFFFF else cc.cwnd
            self.state = state = OPEN
        if state <= DISORDER:
            if self.lost_out:
                self._enter_recovery(now)
                state = RECOVERY
            else:
                self.state = state = DISORDER if self.sacked_out else OPEN
        # 5. timers (`tcp_set_xmit_timer` when data was acked), before transmitting as in Linux;
        # in Open/CWR the loss probe, left pending for `arm_pending_probe` (see there)
        if una_advanced:
            if self.packets_out == 0:
                self.xmit_timer = None
                self.xmit_kind = ""
            elif not reo_armed:
                if state == OPEN or state == CWR:
                    self.probe_pending = True  # _schedule_loss_probe(now, True) (advancing_rto)
                else:
                    self._rearm_rto(now)
        elif self.xmit_timer is None and self.packets_out:
            self._rearm_rto(now)
        # 6. cwnd (`tcp_cong_control`): PRR while reducing, else slow start / avoidance
        in_reduction = state == RECOVERY or state == CWR
        if delivered or ca_rtt > 0.0:
            # cwnd_limited(): tcp_is_cwnd_limited
            if self.is_cwnd_limited_flag:
                cwnd_limited = True
            elif cc.cwnd < cc.ssthresh:
                cwnd_limited = cc.cwnd < 2 * self.max_packets_out
            else:
                cwnd_limited = False
            # (now, acked, rtt_sample, snd_una, snd_nxt, cwnd_limited, may_raise)
            cc.on_ack(now, delivered, ca_rtt if ca_rtt > 0.0 else None, self.snd_una, self.snd_nxt,
                      cwnd_limited, una_advanced and not in_reduction and delivered > 0)
        if in_reduction and (delivered > 0 or self.prr_out == 0):
            self._prr(now, delivered, newly_lost, una_advanced)
        # 7. transmission is the caller's next step (Endpoint.on_segment: tcp_data_snd_check)
