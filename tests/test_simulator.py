"""The simulator against closed-form answers, properties that must hold, and determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttlbsim import Scenario
from ttlbsim.compute import ComputeModel
from ttlbsim.handshake import build_profile
from ttlbsim.session import K_IP_TCP_TS_OVERHEAD, Connection, run_connection
from ttlbsim.simulate import compare, simulate
from ttlbsim.tcp.segment import K_HEADER_BYTES, K_SYN_FRAME_BYTES

MSS = 1500 - K_IP_TCP_TS_OVERHEAD


def scenario(**kw) -> Scenario:
    base = dict(kex="x25519", sig="rsa2048", cert_profile="minimal", client_profile="openssl",
                rtt="80ms", bandwidth="1Gbit", data=0, initcwnd=10, compute="zero")
    base.update(kw)
    return Scenario.build(**base)


def one(s: Scenario, seed: int = 0):
    return run_connection(s, build_profile(s.tls), ComputeModel(s.compute), np.random.SeedSequence(seed))


def frames(writes) -> int:
    """Frame bytes of a flight written with these write() sizes, each write's tail its own segment."""
    total = 0
    for w in writes:
        total += w + K_HEADER_BYTES * math.ceil(w / MSS)
    return total


class DropFirst:
    """Wraps a netem path: loses the first packet larger than `min_bytes`, then passes all."""

    def __init__(self, path, min_bytes: int = 0):
        self.path, self.min_bytes, self.done = path, min_bytes, False
        self.sent: list[float] = []  # send times of the packets larger than min_bytes

    def send(self, now, nbytes, header=0):
        if nbytes > self.min_bytes:
            self.sent.append(now)
            if not self.done:
                self.done = True
                return -1.0
        return self.path.send(now, nbytes, header)


def server_flight_with_first_packet_lost(s: Scenario):
    """Connect, have the server write its handshake flight, lose the flight's first packet
    (larger than 200 B); returns the Connection after 10 s and the dropping path."""
    import simpy

    from ttlbsim.link import Link

    prof = build_profile(s.tls)
    env = simpy.Environment()
    link = Link(s.network, np.random.default_rng(1), np.random.default_rng(2))
    link.down = drop = DropFirst(link.down, min_bytes=200)
    conn = Connection(env, s, link, 0.0)
    server_writes(env, conn, prof.flights[1].bytes, until=10)
    return conn, drop


def server_writes(env, conn: Connection, nbytes: int, until: float) -> None:
    """Drive `conn` without the TLS applications: the client connects, the server writes
    `nbytes` once the connection is established; run the simulation until `until` (s)."""
    def client():
        conn.client.connect(env.now)
        conn._after(conn.client)
        yield conn.client_established

    def server():
        yield conn.server_established
        conn.write(conn.server, nbytes)
    env.process(client())
    env.process(server())
    env.run(until=until)


def slow_start_rounds(segments: int, cwnd: int) -> int:
    rounds = 0
    while segments > 0:
        segments -= cwnd
        cwnd *= 2
        rounds += 1
    return rounds


# -- closed-form answers ----------------------------------------------------------------------------

@pytest.mark.parametrize("rate", ["1Gbit", "10Mbit", "1Mbit"])
def test_zero_data_is_tcp_handshake_plus_tls_round_trip_plus_serialisation(rate):
    s = scenario(bandwidth=rate, rtt="35ms")
    prof = build_profile(s.tls)
    client_hello, server_flight = prof.flights[0], prof.flights[1]
    assert server_flight.bytes < 10 * MSS  # fits the initial window
    rtt, bps = s.network.rtt_s, s.network.bandwidth_bps
    # SYN, SYN-ACK, the client's ACK and ClientHello (one GSO packet: its segments arrive
    # together), the server's quick ACK of each ClientHello segment (sent before the application
    # answers), then the server's flight
    ch_segments = sum(math.ceil(w / MSS) for w in client_hello.writes)
    assert ch_segments <= 2  # within one GSO skb (tcp_min_tso_segs)
    serial = 8 / bps * (2 * K_SYN_FRAME_BYTES + K_HEADER_BYTES + frames(client_hello.writes)
                        + ch_segments * K_HEADER_BYTES + frames(server_flight.writes))
    r = one(s)
    assert r.ttfb == pytest.approx(2 * rtt + serial, abs=2e-4)
    assert r.ttlb == r.ttfb


@pytest.mark.parametrize("initcwnd", [10, 20])
def test_response_takes_the_slow_start_rounds_of_its_initcwnd(initcwnd):
    data = 60 * 1024
    s = scenario(data=data, initcwnd=initcwnd)
    r = one(s)
    segments = math.ceil((data + 22 * math.ceil(data / 16384)) / MSS)
    rounds = slow_start_rounds(segments, initcwnd)
    assert rounds == (3 if initcwnd == 10 else 2)
    # request → server: rtt/2, then `rounds` round trips minus the final return half
    assert (r.ttlb - r.ttfb) == pytest.approx(rounds * s.network.rtt_s, abs=3e-3)


def test_a_server_flight_larger_than_initcwnd_costs_one_more_round_trip():
    small = scenario(sig="ecdsa-p256")
    big = scenario(kex="X25519MLKEM768", sig="mldsa87", chain=2)
    assert build_profile(big.tls).flights[1].bytes > 10 * MSS
    assert build_profile(small.tls).flights[1].bytes < 10 * MSS
    rtt = small.network.rtt_s
    assert one(small).ttfb == pytest.approx(2 * rtt, abs=2e-3)
    assert one(big).ttfb == pytest.approx(3 * rtt, abs=3e-3)
    # with initcwnd 20 the big flight fits again
    assert one(scenario(kex="X25519MLKEM768", sig="mldsa87", initcwnd=20)).ttfb == pytest.approx(2 * rtt, abs=3e-3)


def test_a_bigger_handshake_can_make_the_response_arrive_sooner():
    """The PQ server flight's ACKs grow cwnd during the handshake (slow start counts delivered
    segments), so its response needs fewer rounds than the classical one's."""
    net = dict(rtt="80ms", bandwidth="10Mbit", initcwnd=10, data="100KiB")
    classical = scenario(**net)
    pq = scenario(kex="X25519MLKEM768", sig="mldsa44", **net)  # ML-KEM hybrid + an ML-DSA-44 chain (9 segments)
    rc, rp = one(classical), one(pq)
    assert rp.ttfb > rc.ttfb      # the handshake itself is slower...
    assert rp.ttlb < rc.ttlb      # ...but the last byte arrives earlier


# -- properties ---------------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rtt_ms=st.integers(5, 300), mbit=st.sampled_from([1, 5, 10, 100, 1000]),
       loss=st.sampled_from([0.0, 0.01, 0.05, 0.15]), kib=st.integers(0, 200),
       initcwnd=st.integers(1, 30), seed=st.integers(0, 2**32 - 1))
def test_ttlb_is_never_below_the_physical_lower_bound(rtt_ms, mbit, loss, kib, initcwnd, seed):
    s = scenario(rtt=f"{rtt_ms}ms", bandwidth=f"{mbit}Mbit", loss=loss, data=kib * 1024, initcwnd=initcwnd)
    r = one(s, seed)
    prof = build_profile(s.tls)
    down = sum(f.bytes for f in prof.flights if f.sender == "server") + kib * 1024
    bound = 2 * s.network.rtt_s + down * 8 / s.network.bandwidth_bps + (s.network.rtt_s if kib else 0)
    assert r.ttlb >= bound - 1e-9
    assert r.ttfb <= r.ttlb


@settings(max_examples=20, deadline=None)
@given(loss=st.sampled_from([0.0, 0.02, 0.1, 0.2]), kib=st.integers(1, 200), seed=st.integers(0, 10**6))
def test_every_byte_is_delivered_once_and_in_order(loss, kib, seed):
    s = scenario(loss=loss, data=kib * 1024, rtt="40ms", bandwidth="20Mbit")
    prof = build_profile(s.tls)
    import simpy

    from ttlbsim.link import Link
    env = simpy.Environment()
    up_seq, down_seq, _ = np.random.SeedSequence(seed).spawn(3)
    conn = Connection(env, s, Link(s.network, np.random.default_rng(up_seq), np.random.default_rng(down_seq)), 0.0)
    seen: list[int] = []
    original = conn._received_bytes

    def record(side, total):
        if side == "client":
            seen.append(total)
        original(side, total)
    conn._received_bytes = record
    expected = sum(f.bytes for f in prof.flights if f.sender == "server") + sum(
        n + 22 for n in [16384] * (kib * 1024 // 16384) + ([kib * 1024 % 16384] if kib * 1024 % 16384 else []))
    server_writes(env, conn, expected, until=600)
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen))
    assert seen[-1] == expected
    assert conn.client.receiver.rcv_nxt == expected


def test_a_lost_syn_costs_at_least_one_second():
    s = scenario(rtt="35ms")
    base = one(s)

    import simpy

    from ttlbsim.link import Link
    env = simpy.Environment()
    link = Link(s.network, np.random.default_rng(1), np.random.default_rng(2))
    link.up = DropFirst(link.up)  # the SYN
    conn = Connection(env, s, link, 0.0)
    done = {}

    def client():
        conn.client.connect(env.now)
        conn._after(conn.client)
        yield conn.client_established
        done["t"] = env.now
    env.process(client())
    env.run(until=10)
    # the SYN timer (1 s, rounded up to a jiffy) plus one round trip
    assert done["t"] >= 1.0 + s.network.rtt_s
    assert done["t"] >= base.ttfb / 2 + 1.0 - 1e-9


def test_more_loss_never_lowers_mean_ttlb():
    means = []
    for loss in (0.0, 0.01, 0.03, 0.1):
        r = simulate(scenario(loss=loss, rtt="35ms", bandwidth="100Mbit", data="100KiB", initcwnd=20), runs=150, seed=7)
        means.append(r.ttlb_ms.mean())
    assert means == sorted(means), means


# -- determinism -------------------------------------------------------------------------------------

def test_same_seed_same_results_in_one_or_four_processes():
    s = scenario(loss="3%", jitter="10ms", jitter_dist="paretonormal", data="50KiB", rtt="35ms", bandwidth="10Mbit")
    one_proc = simulate(s, runs=24, seed=11, workers=1)
    four = simulate(s, runs=24, seed=11, workers=4)
    for k in one_proc.arrays:
        np.testing.assert_array_equal(one_proc.arrays[k], four.arrays[k])
    other_seed = simulate(s, runs=24, seed=12)
    assert not np.array_equal(one_proc.ttlb_ms, other_seed.ttlb_ms)


def test_compare_reports_slowdown_per_percentile():
    a = scenario(rtt="200ms", bandwidth="1Mbit", initcwnd=20)
    b = scenario(kex="X25519MLKEM768", sig="mldsa44", rtt="200ms", bandwidth="1Mbit", initcwnd=20)
    cmp = compare(a, b, data=[0, 200 * 1024], runs=5)
    rows = cmp.rows()
    d0, d200 = rows[0]["ttlb_ms"]["slowdown_pct"]["p50"], rows[1]["ttlb_ms"]["slowdown_pct"]["p50"]
    assert d0 > d200 > 0


# -- GSO: Linux TCP hands netem multi-segment skbs ---------------------------------------------------

@pytest.mark.parametrize("gso,lost_segments", [(True, 2), (False, 1)])
def test_netem_drops_a_whole_gso_skb(gso, lost_segments):
    """Linux TCP builds GSO skbs (>= tcp_min_tso_segs = 2 segments) even without device GSO; netem
    sits before segmentation, so one loss draw drops them all (the emulator's captures show the
    holes in pairs). With gso=False each segment is its own packet."""
    s = scenario(rtt="35ms", bandwidth="100Mbit", data="50KiB", initcwnd=20, gso=gso)
    conn, _ = server_flight_with_first_packet_lost(s)
    assert conn.client.receiver.rcv_nxt == build_profile(s.tls).flights[1].bytes
    assert conn.server.sender.retransmits == lost_segments


@pytest.mark.parametrize("hz", [100, 250, 1000])
def test_tail_loss_probe_after_two_srtt_plus_2ms(hz):
    """tcp_schedule_loss_probe with more than one segment out: usecs_to_jiffies(2·srtt + 2 ms)
    (TCP_TIMEOUT_MIN_US, since the 2023 fix also in 6.1.y; the old code added 2 *jiffies*, 20 ms at
    HZ 100). A lost handshake flight is probed 2·srtt + 2 ms after it, rounded up to the tick."""
    conn, log = server_flight_with_first_packet_lost(scenario(rtt="35ms", bandwidth="1Gbit", hz=hz))
    srtt_us = conn.server.sender.rtt.srtt_us >> 3
    flight, probe = log.sent[0], log.sent[1]
    floor = (2 * srtt_us + 2000) * 1e-6
    assert probe - flight >= floor
    # the kernel timer wheel rounds up to the tick (and to 8 ticks past 63 jiffies)
    assert probe == pytest.approx(conn.server.timers.expiry(flight, floor), abs=1e-9)
    if hz == 100:
        # the pre-fix formula, usecs_to_jiffies(2·srtt) + 2 jiffies, would not probe before 2·srtt + 20 ms
        assert probe - flight < 2 * srtt_us * 1e-6 + 0.020


def test_gso_skbs_grow_with_the_pacing_rate():
    """tcp_tso_autosize: ~1 ms of pacing rate (200 % of cwnd·MSS/srtt in slow start), >= 2."""
    s = scenario()
    r = one(scenario(rtt="35ms", bandwidth="1Gbit", data="200KiB", initcwnd=20))
    assert r.packets_down > 140  # frames are counted one per MSS segment, GSO or not
    from ttlbsim.tcp.sender import Sender

    class Rtt:
        def __init__(self, srtt_s):
            self.srtt_us, self.min_rtt_us = int(srtt_s * 8e6), int(srtt_s * 1e6)
            self.rto_s = 1.0

    class CC:
        def __init__(self, cwnd):
            self.cwnd, self.ssthresh = cwnd, 0x7FFFFFFF

    def segs(cwnd, srtt):
        snd = Sender(mss=MSS, cc=CC(cwnd), rtt=Rtt(srtt), timers=None, nodelay=True,
                     make_segment=None, emit=None)
        return snd.tso_segs()
    assert segs(20, 0.035) == 2          # 1.65 MB/s → 1.6 KB per ms → the 2-segment floor
    assert segs(80, 0.035) == 4          # 6.6 MB/s → 6.5 KB per ms
    assert segs(20, 0.2) == 2
    assert segs(20, 0.001) > 20          # small RTTs get tcp_tso_rtt_log's bonus
    assert segs(10_000, 0.001) == 65536 // MSS
    assert s.tcp.gso


def test_pure_acks_update_the_timestamp_a_sender_echoes():
    """Linux echoes the timestamp of the newest segment at or left of its last ACK's edge, pure ACKs
    included (tcp_ack → tcp_replace_ts_recent): a bulk sender's data echoes the ACK that released
    it, so the receiver's RTT estimate (tcp_rcv_rtt_measure_ts, which drives receive-buffer
    autotuning) follows the path's round trip. Were only data segments taken, the server here (whose
    peer sends no data) would echo the client's SYN for the whole transfer: one sample, of the time
    since the SYN."""
    import simpy

    from ttlbsim.link import Link

    s = Scenario.build(kex="x25519", sig="rsa2048", rtt="35ms", bandwidth="1Gbit", data="0", compute="zero")
    env = simpy.Environment()
    conn = Connection(env, s, Link(s.network, np.random.default_rng(1), np.random.default_rng(2)), 0.0)
    server_writes(env, conn, 400_000, until=2)
    assert conn.client.receiver.rcv_nxt == 400_000
    assert 0.035 <= conn.client.receiver.rcv_rtt < 0.037


def test_a_cumulative_ack_arriving_with_the_first_sack_is_not_reordering():
    """tcp_ack takes prior_fack (the highest SACKed sequence) before tcp_sacktag_write_queue, and
    tcp_clean_rtx_queue calls a filled hole reordering only below it (before(reord, prior_fack)).
    A receiver whose reader lags sends one stretch ACK that both moves snd_una and reports the first
    out-of-order segment: the segments it acknowledges cumulatively were never behind a SACKed one,
    so no reordering is seen, RACK's reordering window stays 0 once three segments are SACKed
    (tcp_rack_reo_wnd), and the lost segment is retransmitted on that ACK. Counting the current
    ACK's SACK block instead marked reordering, and RACK then waited min_rtt/4 and more."""
    from ttlbsim.tcp.congestion import create_congestion_control
    from ttlbsim.tcp.rtt import RttEstimator
    from ttlbsim.tcp.segment import ACK, Segment
    from ttlbsim.tcp.sender import Sender
    from ttlbsim.timers import KernelTimers

    sent = []

    def make_segment(seq, end, now):
        return Segment(ACK, seq, end, 0, 0)

    snd = Sender(mss=MSS, cc=create_congestion_control("cubic", initcwnd=40), rtt=RttEstimator(),
                 timers=KernelTimers(1000), nodelay=True, gso=False, make_segment=make_segment,
                 emit=lambda seg: sent.append((seg.seq, seg.end)))
    snd.snd_wnd = 1 << 20
    snd.write(0.0, 40 * MSS)
    snd.push(0.0)
    assert len(sent) == 40

    def ack(now, una, sack=()):
        snd.on_ack(now, Segment(ACK, 0, 0, una, 1 << 20, sack=sack))
        snd.push(now)

    ack(0.035, 2 * MSS)  # an ordinary ACK first: RTT samples, nothing SACKed
    # segment 20 lost; the reader's stretch ACK acknowledges 2..20 and SACKs 21 at once
    ack(0.0351, 20 * MSS, ((21 * MSS, 22 * MSS),))
    assert snd.reord_seen == 0
    ack(0.0352, 20 * MSS, ((21 * MSS, 23 * MSS),))
    n = len(sent)
    ack(0.0353, 20 * MSS, ((21 * MSS, 24 * MSS),))  # three SACKed: RACK's window is 0
    assert snd.reord_seen == 0
    assert snd.retransmits == 1 and (20 * MSS, 21 * MSS) in sent[n:]


def test_sack_blocks_are_walked_in_sequence_order():
    """A receiver lists its most recent SACK block first; tcp_sacktag_write_queue sorts the blocks by
    sequence before tagging, so one ACK that newly SACKs two blocks (an earlier ACK lost) does not
    count its lower block as reordered behind its higher one (tcp_sacktag_one: reordering only
    below the highest SACKed so far in the walk)."""
    from ttlbsim.tcp.congestion import create_congestion_control
    from ttlbsim.tcp.rtt import RttEstimator
    from ttlbsim.tcp.segment import ACK, Segment
    from ttlbsim.tcp.sender import Sender
    from ttlbsim.timers import KernelTimers

    snd = Sender(mss=MSS, cc=create_congestion_control("cubic", initcwnd=40), rtt=RttEstimator(),
                 timers=KernelTimers(1000), nodelay=True, gso=False,
                 make_segment=lambda seq, end, now: Segment(ACK, seq, end, 0, 0), emit=lambda seg: None)
    snd.snd_wnd = 1 << 20
    snd.write(0.0, 40 * MSS)
    snd.push(0.0)
    snd.on_ack(0.035, Segment(ACK, 0, 0, 2 * MSS, 1 << 20))
    # segments 20 and 24 lost: one ACK reports both blocks above them, the newer one first
    snd.on_ack(0.036, Segment(ACK, 0, 0, 20 * MSS, 1 << 20, sack=((25 * MSS, 27 * MSS), (21 * MSS, 24 * MSS))))
    assert snd.sacked_out == 5
    assert snd.reord_seen == 0
