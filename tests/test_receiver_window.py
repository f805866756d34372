"""The receive window with unread data, and the ACKs the application's reads send.

Linux 6.1: `__tcp_select_window` offers half the free receive buffer (adv_win_scale 1), capped by
rcv_ssthresh and aligned up to the window scale (128 B); unread segments are charged as coalesced
skbs (payload + one skb head per 17 segments); `tcp_select_window` never shrinks an offered
window; `__tcp_ack_snd_check` sends the every-second-segment ACK only if the window would not
shrink; `tcp_cleanup_rbuf` sends the pending ACK when the application reads. The numbers below
are the ones the pq65 capture shows (validation/diagnosis.md §4).
"""

from __future__ import annotations

import dataclasses

import pytest

from ttlbsim import Scenario
from ttlbsim.scenario import ComputeConfig
from ttlbsim.simulate import simulate
from ttlbsim.tcp import receiver as receiver_module
from ttlbsim.tcp.receiver import K_SKB_HEAD, Receiver

# tests that wrap a Receiver method with monkeypatch see its calls only when the module is
# interpreted: a mypyc-compiled Receiver (a regular install, hatch_build.py) calls its methods
# directly (tests/test_compiled.py checks the compiled build against the interpreted one)
interpreted_only = pytest.mark.skipif(not receiver_module.__file__.endswith(".py"),
                                      reason="wraps a Receiver method: needs the interpreted module")

MSS = 1448


def _receiver(read=True) -> Receiver:
    r = Receiver(advmss=MSS, autotune=False)
    r.start(0.0)
    r.rcv_wnd = r.advertise()  # the window offered with the request: 501·128 B
    return r


def _arrive(r: Receiver, n: int, t: float = 0.1) -> list[bool]:
    out = []
    for _ in range(n):
        seq = r.rcv_nxt
        out.append(r.on_data(t, seq, seq + MSS, 0.0, 0.0, 0.2))
    return out


def test_window_with_unread_segments_matches_the_capture():
    r = _receiver()
    assert r.rcv_wnd == 501 * 128
    _arrive(r, 25)
    assert r.rmem() == 25 * MSS + 2 * K_SKB_HEAD
    assert r.select_window() == 363 * 128  # connection 1's stretch ACK: win 363
    r.copied = r.rcv_nxt                      # all read: the full window again
    assert r.select_window() == 501 * 128


def test_offered_window_never_shrinks():
    """30 segments held out of order (behind a lost one) take receive memory but do not move
    rcv_nxt: the window they leave is smaller than what is left of the one offered, which is
    offered again (`tcp_select_window`)."""
    r = _receiver()
    for k in range(1, 31):
        r.on_data(0.1, k * MSS, (k + 1) * MSS, 0.0, 0.0, 0.2)
    offered_left = r.rcv_wup + r.rcv_wnd - r.rcv_nxt
    assert r.select_window() < offered_left == 501 * 128
    assert r.advertise() == 501 * 128


def test_every_second_segment_ack_waits_for_the_reader():
    r = _receiver()
    r.pingpong, r.quick = True, 0  # after the request: no quick ACKs
    assert _arrive(r, 2) == [False, False]  # the second segment would shrink the window
    r2 = _receiver()
    r2.pingpong, r2.quick = True, 0
    assert _arrive(r2, 1) == [False]
    r2.copied = r2.rcv_nxt  # read before the next one arrives
    assert _arrive(r2, 1) == [True]


def test_read_of_a_record_header_sends_the_pending_ack_with_the_small_window():
    r = _receiver()
    r.pingpong, r.quick = True, 0
    r.record_ends = [16406, 32812]
    _arrive(r, 25)
    windows = []
    r.read(0.2, lambda now: windows.append(r.advertise()))
    assert windows == [363 * 128]  # sent after the 5-byte header: nothing freed yet
    assert r.copied == r.rcv_nxt


def test_read_window_update_only_when_it_doubles():
    r = _receiver()
    r.pingpong, r.quick = True, 0
    _arrive(r, 1)
    sent = []
    r.read(0.2, lambda now: sent.append(r.advertise()))
    assert sent == []  # one short of two segments unacknowledged, window not doubled


def _run(bandwidth: str, read_delay: str, sig: str = "mldsa65", data: str = "100KiB"):
    s = Scenario.build(kex="X25519MLKEM768", sig=sig, rtt="35ms", bandwidth=bandwidth, data=data, initcwnd=20,
                       client_profile="openssl", key_shares=1, hz=100, compute="zero", read_delay=read_delay)
    return simulate(s, runs=1, seed=0)


def _ttlb(bandwidth: str, read_delay: str, sig: str = "mldsa65", data: str = "100KiB") -> float:
    return float(_run(bandwidth, read_delay, sig, data).ttlb_ms[0])


def test_a_reader_behind_a_1gbit_burst_leaves_the_acks_to_its_reads():
    """pq65, 1 Gbit/35 ms, 100 KiB: the response takes three rounds (emulated: 25, 35-38, 9-12
    segments) whether the reader runs at once or 30 us after a burst, because round two is limited
    by the receive buffer, which autotuning has not grown yet (the receive RTT has no sample before
    round two); but a reader behind the burst leaves the ACKs to its reads (stretch ACKs): far
    fewer client segments (emulated 33.6)."""
    fast, late = _run("1Gbit", "0s"), _run("1Gbit", "30us")
    for r in (fast, late):
        assert r.ttlb_ms[0] - r.ttfb_ms[0] == pytest.approx(3 * 35.0, abs=3.0)
    assert late.packets_up[0] < 0.7 * fast.packets_up[0]


def test_read_delay_does_not_matter_at_1mbit():
    """At 1 Mbit/s segments arrive 11.6 ms apart: the reader keeps up whatever its delay."""
    assert _ttlb("1Mbit", "30us") - _ttlb("1Mbit", "0s") < 1.0


def test_read_delay_is_a_checked_host_parameter():
    with pytest.raises(ValueError, match="read_delay"):
        ComputeConfig(mode="zero", read_delay_s=-1e-6)
    s = Scenario.build(read_delay="50us", compute="zero")
    assert s.compute.read_delay == pytest.approx(50e-6)
    assert dataclasses.replace(s.compute, read_delay_s=None).read_delay == 0.0


def test_sack_compression_after_three_dup_acks():
    """Behind a hole, the first 3 out-of-order segments are acknowledged at once (the dup ACKs
    fast retransmit needs); the next ones wait for one SACK 5 % of an RTT later (at most 1 ms),
    or go at once after 44 (tcp_comp_sack_nr)."""
    r = _receiver()
    r.pingpong, r.quick = True, 0
    r.rcv_rtt = 0.035
    base = r.rcv_nxt + MSS  # one segment lost
    res = [r.on_data(0.1, base + k * MSS, base + (k + 1) * MSS, 0.0, 0.0, 0.2) for k in range(10)]
    assert res[:3] == [True, True, True] and res[3:] == [None] * 7
    assert r.comp_deadline == pytest.approx(0.1 + 0.001)  # 35 ms / 20 = 1.75 ms, capped at 1 ms
    assert r.compressed == 7
    assert r.on_comp_timer() and r.comp_deadline is None
    r.rcv_rtt = 0.010
    r.compressed = 43
    assert r.on_data(0.2, base + 10 * MSS, base + 11 * MSS, 0.0, 0.0, 0.2) is None  # the 44th
    assert r.comp_deadline == pytest.approx(0.2 + 0.0005)
    assert r.on_data(0.2, base + 11 * MSS, base + 12 * MSS, 0.0, 0.0, 0.2) is True


def test_lossy_transfer_sends_about_as_many_acks_as_linux():
    """1 Gbit/35 ms/3 %/200 KiB: the emulated client sends 53 segments per connection on average;
    without SACK compression the model sent ~100 (an immediate SACK per out-of-order segment)."""
    s = Scenario.build(kex="x25519", sig="rsa2048", rtt="35ms", bandwidth="1Gbit", data="200KiB", loss="3%",
                       initcwnd=20, client_profile="openssl", key_shares=1, hz=100, read_delay="30us")
    up = simulate(s, runs=300, seed=0).arrays["packets_up"].mean()
    assert 45 < up < 65


@interpreted_only
def test_the_reader_takes_one_record_per_two_recvs_and_autotunes_at_the_first(monkeypatch):
    """A TLS client without read-ahead reads a record as two recv() calls (its 5-byte header, then
    the rest); each ends as tcp_recvmsg_locked does: autotuning (once per receiver RTT), then
    tcp_cleanup_rbuf. So a burst of three whole records is six recv()s, and the autotuning of the
    burst measures what was read up to the first of them."""
    r = Receiver(advmss=MSS, autotune=True)
    r.start(0.0)
    r.record_ends = [5 + 16000 * k for k in range(1, 4)]  # three records of 16000 B (header included)
    r.rcv_rtt = 0.035
    for seq in range(0, r.record_ends[-1], MSS):
        r.on_data(0.05, seq, min(seq + MSS, r.record_ends[-1]), 0.0, 0.0, 0.2)
    recvs = []
    orig = Receiver._cleanup
    monkeypatch.setattr(Receiver, "_cleanup", lambda self: recvs.append(self.copied) or orig(self))
    r.read(0.05, lambda now: None)
    assert recvs == [5, 16005, 16010, 32005, 32010, 48005]
    assert r.copied == r.rcv_nxt == 48005
    assert r.space_seq == 5 and r.space_time == 0.05  # autotuning ran once, at the first recv()


def test_out_of_order_data_grows_the_window_too():
    """Linux 6.1 grows rcv_ssthresh for data held out of order as for in-order data (SACK flows:
    tcp_data_queue_ofo → tcp_grow_window): once autotuning has raised window_clamp, the SACKs
    sent behind a lost segment offer a growing window, so the sender can repair the hole and send
    past the old 64 KB edge in the same round trip. Before, only in-order data grew it, and a hole
    held the window at 64 KB until the retransmission arrived."""
    r = Receiver(advmss=MSS, autotune=True)
    r.start(0.0)
    r.rcv_wnd = r.advertise()
    r._set_buffer(4 * 1024 * 1024, 2 * 1024 * 1024)  # as autotuning leaves it after a fast round
    before = r.rcv_ssthresh
    base = r.rcv_nxt + MSS  # one segment lost
    for k in range(19):
        r.on_data(0.1, base + k * MSS, base + (k + 1) * MSS, 0.0, 0.0, 0.2)
    assert r.rcv_ssthresh == before + 19 * 2 * MSS
    assert r.advertise() >= before + 19 * 2 * MSS
    # a segment already held (a duplicate) grows nothing
    r.on_data(0.1, base, base + MSS, 0.0, 0.0, 0.2)
    assert r.rcv_ssthresh == before + 19 * 2 * MSS


def _after_first_ack(grow_room: bool) -> Receiver:
    """A receiver past its first data segment, whose ACK used up the quick-ACK credits; with or
    without room for rcv_ssthresh to grow (autotuning has raised the buffer, or not)."""
    r = Receiver(advmss=MSS, autotune=True)
    r.start(0.0)
    r.rcv_wnd = r.advertise()
    if grow_room:
        r._set_buffer(4 * 1024 * 1024, 2 * 1024 * 1024)
    r.on_data(0.100, 0, MSS, 0.0, 0.0, 0.2)
    r.quick, r.ack_pending, r.rcv_wup, r.copied = 0, False, r.rcv_nxt, r.rcv_nxt
    if not grow_room:
        r.rcv_ssthresh = r.window_clamp
    return r


def test_a_segment_that_grows_the_window_is_acknowledged_at_once():
    """`tcp_grow_window` sets one quick-ACK credit (`icsk_ack.quick |= 1`) whenever it raises
    rcv_ssthresh, so while the window grows a lone in-order segment is ACKed at once rather than
    every second one (outside pingpong mode). At 1 Mbit/s and 200 ms the emulated client sends runs
    of one ACK per segment after recoveries (validation/diagnosis.md §8); without this credit the
    model sent 5-12 % fewer client segments than the kernel in the 100-200 KiB cells at 10 % loss."""
    r = _after_first_ack(grow_room=True)
    before = r.rcv_ssthresh
    assert r.on_data(0.112, MSS, 2 * MSS, 0.0, 0.0, 0.2) is True
    assert r.rcv_ssthresh > before and r.quick == 1  # the credit the ACK then uses
    full = _after_first_ack(grow_room=False)
    assert full.on_data(0.112, MSS, 2 * MSS, 0.0, 0.0, 0.2) is False  # nothing grew: delayed ACK
    assert full.quick == 0
    interactive = _after_first_ack(grow_room=True)
    interactive.pingpong = True
    assert interactive.on_data(0.112, MSS, 2 * MSS, 0.0, 0.0, 0.2) is False  # credit not used in pingpong


def test_receiver_rtt_also_takes_the_time_to_receive_a_window_as_a_minimum():
    """tcp_event_data_recv → tcp_rcv_rtt_measure: besides the timestamp samples (smoothed), the
    time in-order data takes to pass the edge of the window offered when the interval began is a
    sample (µs clock) that can only lower rcv_rtt_est (tcp_rcv_rtt_update with win_dep = 1)."""
    r = Receiver(advmss=MSS, autotune=True)
    r.start(0.0)
    r.rcv_wnd = r.advertise()                                  # 64128 B
    r.on_data(0.0372, 0, MSS, 0.001, 0.0001, 0.2)              # timestamp sample: 37 ms
    assert r.rcv_rtt == pytest.approx(0.037)
    assert r.rcv_rtt_seq == MSS + r.rcv_wnd and r.rcv_rtt_time == 0.0372
    r.rcv_wnd = 64128
    t = 0.0372 + 0.0352
    seq = r.rcv_nxt
    while r.rcv_nxt < MSS + 64128:                             # a window's worth, 35.2 ms later
        r.on_data(t, seq, seq + MSS, 0.0, 0.0001, 0.2)         # (same echo: no timestamp sample)
        seq += MSS
    assert r.rcv_rtt == pytest.approx(0.0352)
    start = r.rcv_rtt_time
    assert start == t
    r.rcv_wnd = 64128
    end = r.rcv_rtt_seq
    t2 = t + 0.050                                             # the next window takes longer
    while r.rcv_nxt < end:
        r.on_data(t2, seq, seq + MSS, 0.0, 0.0001, 0.2)
        seq += MSS
    assert r.rcv_rtt == pytest.approx(0.0352)                  # a minimum: not raised
    assert r.rcv_rtt_time == t2


def _recv_log(monkeypatch, **options):
    """Simulate one 1 Gbit/35 ms/200 KiB connection, logging every Receiver.read call as
    (receiver, time, bytes copied, bytes left readable)."""
    log = []
    read = Receiver.read

    def logged(self, now, send_ack, once=False):
        before = self.copied
        read(self, now, send_ack, once)
        log.append((self, now, self.copied - before, self.rcv_nxt - self.copied))

    monkeypatch.setattr(Receiver, "read", logged)
    s = Scenario.build(kex="X25519MLKEM768", sig="mldsa44", rtt="35ms", bandwidth="1Gbit", data="200KiB",
                       initcwnd=20, client_profile="openssl", key_shares=1, hz=100, compute="zero", **options)
    return simulate(s, runs=1, seed=0), log


def test_recv_cost_zero_is_the_reader_of_a_burst_at_once():
    """recv_cost 0 (the default, and the calibrated profile's while it has none) gives the same
    connections as before the parameter existed, lossy ones included."""
    base = dict(kex="X25519MLKEM768", sig="mldsa44", rtt="35ms", bandwidth="1Gbit", data="200KiB", loss="1%",
                initcwnd=20, client_profile="openssl", key_shares=1, hz=100, read_delay="30us")
    for compute in ("zero", "calibrated"):
        ref = simulate(Scenario.build(compute=compute, **base), runs=20, seed=1).arrays
        zero = simulate(Scenario.build(compute=compute, recv_cost="0s", **base), runs=20, seed=1).arrays
        assert ref.keys() == zero.keys()
        for k in ref:
            assert (ref[k] == zero[k]).all(), k
    assert Scenario.build().compute.recv_cost == 0.0  # unset outside "calibrated" mode
    with pytest.raises(ValueError, match="recv_cost"):
        Scenario.build(recv_cost="-1us")
    assert Scenario.build(recv_cost="50us", compute="zero").compute.recv_cost == pytest.approx(50e-6)


@interpreted_only
def test_recv_cost_spreads_the_reads_of_a_burst(monkeypatch):
    """With recv_cost 100 us the client makes one recv() at a time: after one that leaves data
    readable, the next comes exactly 100 us later (segments arriving meanwhile neither restart nor
    add a read), each copying one record's header or (what has arrived of) its rest. With 0, a read
    takes everything readable at once."""
    fast, log0 = _recv_log(monkeypatch, read_delay="0s", recv_cost="0s")
    client0 = [e for e in log0 if e[0] is log0[-1][0]]
    assert all(left == 0 for _, _, _, left in client0)  # each read empties the queue at once
    slow, log = _recv_log(monkeypatch, read_delay="0s", recv_cost="100us")
    client = [e for e in log if e[0] is log[-1][0]]  # the last read is the client's
    times = [t for _, t, _, _ in client]
    assert len(set(times)) == len(times)  # never two recv() calls at one instant
    assert all(n <= 16401 for _, _, n, _ in client)  # at most one record's rest (16 KiB + tag)
    assert sum(1 for _, _, n, _ in client if n == 5) >= 13  # a header per record (13 in the response)
    gaps = [b[1] - a[1] for a, b in zip(client, client[1:]) if a[3] > 0]
    assert len(gaps) >= 25 and all(g == pytest.approx(100e-6, abs=1e-9) for g in gaps)
    # the last byte is read at the end of the burst's chain of recv() calls: later than at once
    assert 0.5 < slow.ttlb_ms[0] - fast.ttlb_ms[0] < 5.0


def test_autotuning_sizes_the_buffer_as_the_validation_kernel_does():
    """`tcp_rcv_space_adjust`: after 36,033 B read in one receive RTT (14,480 B before) the buffer
    becomes 762,120 B, and after 65,624 B more it becomes 820,520 B — the SO_RCVBUF values the
    emulated client (Linux 6.1, UML) reports (`emulate(trace_receiver=True)`): 261 and 281 times
    2,920 B of receive memory per MSS."""
    r = Receiver(advmss=MSS, autotune=True)
    r.start(0.0)
    r.rcv_rtt = 0.2
    for copied, now, rcvbuf in ((36033, 0.25, 762120), (36033 + 65624, 0.45, 820520)):
        r.rcv_nxt = r.copied = copied
        r._space_adjust(now)
        assert r.rcvbuf == rcvbuf


def test_a_pure_ack_takes_up_its_echo_for_the_receive_rtt():
    """Linux measures the receive RTT once per echoed timestamp, and a pure ACK takes up its echo
    without a sample (the fast path sets rcv_rtt_last_tsecr; the slow path's
    `tcp_rcv_rtt_measure_ts` finds it shorter than rcv_mss): the server's ACK of the request, then
    its response echoing the same timestamp, give the client no sample — the emulated client's
    tcpi_rcv_rtt stays 0 through the first response round — while data with a new echo does."""
    from ttlbsim.tcp.endpoint import Endpoint
    from ttlbsim.tcp.segment import ACK, SYN, Segment
    from ttlbsim.timers import KernelTimers
    tcp = Scenario.build().tcp
    sent = []
    ep = Endpoint(name="client", tcp=tcp, mss=MSS, timers=KernelTimers(tcp.hz, 0.0), emit=sent.append,
                  on_established=lambda now: None, on_receive=lambda now, n: None)
    ep.connect(0.0)
    ep.on_segment(0.2, Segment(SYN | ACK, 0, 0, 0, 65160, (), False, 0.1, 0.001))  # SYN-ACK
    ep.on_segment(0.4, Segment(ACK, 0, 0, 0, 65160, (), False, 0.3, 0.2))           # pure ACK, echo 0.2
    ep.on_segment(0.401, Segment(ACK, 0, MSS, 0, 65160, (), False, 0.3, 0.2))     # data, same echo
    assert ep.state == 3 and ep.receiver.rcv_nxt == MSS and ep.receiver.rcv_rtt is None
    ep.on_segment(0.6, Segment(ACK, MSS, 2 * MSS, 0, 65160, (), False, 0.5, 0.4))  # data, new echo
    assert ep.receiver.rcv_rtt == pytest.approx(0.2)
