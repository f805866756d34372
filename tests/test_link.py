"""netem path semantics (ttlbsim.link): loss, limit, delay/jitter, rate, tfifo order."""

import numpy as np
import pytest

from ttlbsim.errors import InvalidValue
from ttlbsim.link import (DROPPED, HEADER_BYTES, LOST, SYN_HEADER_BYTES, Link, NetemPath,
                          ack_header_bytes)
from ttlbsim.scenario import NetworkConfig


def path(**kw):
    kw.setdefault("rng", np.random.default_rng(1))
    kw.setdefault("delay_s", 0.010)
    return NetemPath(**kw)


def test_frame_sizes():
    assert HEADER_BYTES == 66 and SYN_HEADER_BYTES == 74
    assert ack_header_bytes(0) == 66 and ack_header_bytes(1) == 78 and ack_header_bytes(3) == 94


def test_pure_delay_no_rate():
    p = path()
    assert p.send(1.0, 1448) == pytest.approx(1.010)
    assert p.send(1.0, 1448) == pytest.approx(1.010)


def test_rate_serialises_a_burst_after_the_delay():
    # 1 Gbit/s: a 1514 B frame takes exactly 12112 ns; a 66 B ACK 528 ns.
    p = path(rate_bps=1e9)
    times = [p.send(0.0, 1448) for _ in range(10)]
    expected = [0.010 + (k + 1) * 12112e-9 for k in range(10)]
    assert times == pytest.approx(expected, abs=1e-12)
    assert p.send(0.0, 0) == pytest.approx(expected[-1] + 528e-9, abs=1e-12)


def test_rate_queue_drains_then_restarts_from_now_plus_delay():
    p = path(rate_bps=8e6)  # 1 MB/s: 1514 B = 1.514 ms
    t1 = p.send(0.0, 1448)
    assert t1 == pytest.approx(0.011514)
    # after t1 nothing is held: the next packet starts fresh at now + delay + L/R
    assert p.send(0.020, 1448) == pytest.approx(0.031514)
    # while one is held, the next one queues behind T_last even if its own delay is shorter
    p2 = path(rate_bps=8e6, delay_s=0.0)
    a = p2.send(0.0, 1448)
    b = p2.send(0.001, 1448)
    assert b == pytest.approx(a + 0.001514)


def test_rate_T_last_is_max_of_now_plus_delay_and_queue_tail():
    # head-of-line: a large delay draw holds the packets behind it (netem_enqueue rate block)
    p = path(delay_s=0.050, jitter_s=0.040, jitter_dist="uniform", rate_bps=1e9,
             rng=np.random.default_rng(5))
    t = [p.send(k * 1e-4, 1448) for k in range(200)]
    assert all(b > a for a, b in zip(t, t[1:]))


def test_reordering_without_rate_never_with_rate():
    def order(rate):
        p = path(delay_s=0.020, jitter_s=0.010, jitter_dist="normal", rate_bps=rate,
                 rng=np.random.default_rng(2))
        sends = [k * 0.0005 for k in range(400)]
        rel = [p.send(t, 1448) for t in sends]
        # delivery order: by release time, ties in send order
        return sorted(range(len(rel)), key=lambda i: (rel[i], i)), rel

    o_norate, rel = order(None)
    assert o_norate != sorted(o_norate)      # jitter reorders without rate
    assert all(r >= s for r, s in zip(rel, [k * 0.0005 for k in range(400)]))
    o_rate, _ = order(1e9)
    assert o_rate == list(range(400))        # never with rate


def test_negative_delay_releases_at_once():
    # normal jitter can push time_to_send before now: release immediately (not earlier)
    p = path(delay_s=0.001, jitter_s=0.010, jitter_dist="normal", limit=10**6,
             rng=np.random.default_rng(3))
    rel = [p.send(5.0, 100) for _ in range(2000)]
    assert min(rel) == 5.0
    assert sum(r == 5.0 for r in rel) > 100


def test_loss_rate_and_lost_packets_are_not_held():
    p = path(loss=0.25, limit=100_000, rng=np.random.default_rng(4))
    res = [p.send(0.0, 1448) for _ in range(20_000)]
    lost = sum(r == LOST for r in res)
    assert lost / 20_000 == pytest.approx(0.25, abs=0.01)
    assert p.lost == lost and p.sent == 20_000
    assert p.held(0.0) == 20_000 - lost


def test_zero_loss_never_loses():
    p = path(loss=0.0, limit=10**6)
    assert all(p.send(0.0, 1448) > 0 for _ in range(5000))


def test_jitter_does_not_change_which_packets_are_lost():
    def losses(jitter):
        p = path(loss=0.1, jitter_s=jitter, jitter_dist="paretonormal", limit=10**6,
                 rng=np.random.default_rng(9))
        return [p.send(k * 1e-3, 1448) == LOST for k in range(3000)]

    assert losses(0.0) == losses(0.005)


def test_limit_drops_with_distinct_result_and_frees_when_released():
    p = path(rate_bps=8e6, limit=3)  # each 1514 B frame holds the queue 1.514 ms
    r = [p.send(0.0, 1448) for _ in range(4)]
    assert r[3] == DROPPED and all(x > 0 for x in r[:3])
    assert p.dropped == 1 and p.held(0.0) == 3
    assert p.held(r[0]) == 2                       # released at its time_to_send
    assert p.send(r[0], 1448) > r[2]               # room again, queued behind T_last


def test_loss_is_drawn_before_the_limit():
    # a full queue still reports LOST for packets the loss draw takes
    p = path(rate_bps=8e6, limit=1, loss=0.5, rng=np.random.default_rng(6))
    res = [p.send(0.0, 1448) for _ in range(400)]
    assert LOST in res and DROPPED in res
    assert p.lost + p.dropped == 399


def test_deterministic_for_a_generator():
    def run():
        p = path(loss=0.05, jitter_s=0.003, jitter_dist="pareto", rate_bps=1e8,
                 rng=np.random.default_rng(12))
        return [p.send(k * 1e-4, 1000) for k in range(1000)]

    assert run() == run()


def test_bad_distribution_rejected():
    with pytest.raises(InvalidValue):
        path(jitter_dist="gamma")


def test_link_from_network_config():
    net = NetworkConfig(rtt_s=0.035, bandwidth_bps=1e9, loss=0.0, jitter_s=0.002,
                        jitter_dist="normal", limit=50)
    seq = np.random.SeedSequence(0)
    up_seq, down_seq = seq.spawn(2)
    link = Link(net, np.random.default_rng(up_seq), np.random.default_rng(down_seq))
    for p in (link.up, link.down):
        assert p.delay_s == 0.0175 and p.jitter_s == 0.001 and p.jitter_dist == "normal"
        assert p.rate_bps == 1e9 and p.limit == 50
    nojit = Link(NetworkConfig(rtt_s=0.035, bandwidth_bps=None), np.random.default_rng(0),
                 np.random.default_rng(1))
    assert nojit.up.send(0.0, 1448) == pytest.approx(0.0175)


def test_explicit_delay_rng_and_lazy_spawn_do_not_touch_loss_stream():
    def lost(jitter, delay_rng=None):
        g = np.random.default_rng(21)
        p = NetemPath(delay_s=0.01, jitter_s=jitter, jitter_dist="normal", loss=0.2, limit=10**6,
                      rng=g, delay_rng=delay_rng)
        return [p.send(k * 1e-3, 10) == LOST for k in range(1000)]

    assert lost(0.0) == lost(0.004) == lost(0.004, np.random.default_rng(99))
