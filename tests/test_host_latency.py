"""The hosts' per-packet latency (`ttlbsim.host.PacketLatency`, ComputeConfig.packet_delay_s /
packet_jitter_s): order kept, its mean, its effect on the kernel's min_rtt, determinism, bad
input, and the RACK-vs-RTO choice it decides after a lost ClientHello (validation/diagnosis.md §8);
and `validation.calibrate.fit_packet_latency` recovering a known latency from TCP_INFO min_rtt."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ttlbsim import Scenario
from ttlbsim.errors import InvalidValue
from ttlbsim.host import PacketLatency
from ttlbsim.simulate import simulate
from validation import calibrate as C

LOSSLESS = dict(kex="x25519", sig="rsa2048", rtt="35ms", bandwidth="1Gbit", data="0", initcwnd=20, hz=100,
                compute="zero", key_shares=1, client_profile="openssl")


def test_latency_keeps_order_and_has_the_configured_mean():
    lat = PacketLatency(50e-6, 80e-6, np.random.default_rng(3))
    # a burst: 1000 packets 1 us apart (closer than the jitter): never handed over out of order
    burst = [lat.arrival(1.0 + i * 1e-6) for i in range(1000)]
    assert all(b >= a for a, b in zip(burst, burst[1:]))
    # packets far apart: each is delayed by 50 us + an exponential of mean 80 us
    lat = PacketLatency(50e-6, 80e-6, np.random.default_rng(4))
    extra = np.array([lat.arrival(t) - t for t in np.arange(10_000) * 0.01])
    assert extra.min() >= 50e-6 - 1e-12
    assert extra.mean() == pytest.approx(130e-6, rel=0.05)
    assert np.median(extra - 50e-6) == pytest.approx(80e-6 * np.log(2), rel=0.08)  # exponential, not constant
    # a 1 Gbit/s burst (a packet every 12 us) keeps the host awake: only its first packet waits for
    # a wake-up, the rest follow as netem releases them (no gap a reader could run in)
    lat = PacketLatency(50e-6, 80e-6, np.random.default_rng(6))
    for start in (1.0, 2.0, 3.0):
        arr = np.array([lat.arrival(start + i * 12e-6) for i in range(40)])
        assert np.diff(arr).max() <= 12e-6 + 1e-12
        assert arr[0] >= start + 50e-6
    fixed = PacketLatency(50e-6, 0.0, np.random.default_rng(5))
    assert fixed.arrival(2.0) == pytest.approx(2.0 + 50e-6, abs=1e-12)


def test_a_fixed_packet_delay_adds_twice_itself_to_every_rtt_sample():
    base = simulate(Scenario.build(**LOSSLESS), runs=3)
    slow = simulate(Scenario.build(**LOSSLESS, packet_delay="100us"), runs=3)
    assert slow.provenance["deterministic"]  # no draw: simulated once
    assert slow.min_rtt_ms[0] - base.min_rtt_ms[0] == pytest.approx(0.2, abs=2e-3)
    assert slow.server_min_rtt_ms[0] - base.server_min_rtt_ms[0] == pytest.approx(0.2, abs=2e-3)
    # connect, ClientHello → flight, Finished: the handshake crosses the link 4 times before TTFB
    assert slow.ttfb_ms[0] - base.ttfb_ms[0] == pytest.approx(0.4, abs=0.05)
    assert base.min_rtt_ms[0] >= 35.0


def test_packet_jitter_spreads_min_rtt_and_is_deterministic_over_processes():
    sc = Scenario.build(**LOSSLESS, packet_jitter="80us")
    one = simulate(sc, runs=40, seed=5)
    assert not one.provenance["deterministic"]
    assert one.provenance["packet_jitter_s"] == pytest.approx(80e-6)
    assert np.ptp(one.min_rtt_ms) > 0.02
    assert (one.min_rtt_ms >= 35.0).all()
    two = simulate(sc, runs=40, seed=5, workers=2)
    for k in one.arrays:
        np.testing.assert_array_equal(one.arrays[k], two.arrays[k])


def test_jitter_decides_whether_a_lost_clienthello_waits_for_the_rto():
    """§8: after netem drops the ClientHello's two-segment skb, the loss probe re-sends its tail and
    the server SACKs it. RACK takes that SACK only if its RTT is not below min_rtt (measured on the
    SYN-ACK): without host jitter the two RTTs differ only by serialisation and RACK re-sends the
    head at once; with it, about half the time the probe's RTT comes out smaller and the client
    waits for the RTO. The runs draw the same losses (same seeds), so more of them end slowly."""
    opts = dict(LOSSLESS, kex="X25519MLKEM768", sig="mldsa44", loss="10%")
    still = simulate(Scenario.build(**opts), runs=600, seed=11)
    jitter = simulate(Scenario.build(**opts, packet_jitter="80us"), runs=600, seed=11)
    np.testing.assert_array_equal(still.packets_up > 0, jitter.packets_up > 0)
    lo = still.ttfb_ms.min()
    slow_still = np.mean(still.ttfb_ms > lo + 250)   # recovered by a timeout (RTO ≥ 200 ms)
    slow_jitter = np.mean(jitter.ttfb_ms > lo + 250)
    assert slow_jitter > slow_still + 0.02
    # the loss-free handshakes are the same runs either way
    assert np.mean(jitter.ttfb_ms < lo + 17.5) == pytest.approx(np.mean(still.ttfb_ms < lo + 17.5), abs=0.01)


def test_bad_packet_latency_is_rejected_naming_the_value():
    with pytest.raises(InvalidValue, match="packet_jitter"):
        Scenario.build(**LOSSLESS, packet_jitter="1s")
    with pytest.raises(InvalidValue, match="packet_delay"):
        Scenario.build(**LOSSLESS, packet_delay="-5us")
    sc = Scenario.build(**LOSSLESS, packet_delay="60us", packet_jitter="80us")
    assert Scenario.build(**sc.to_options()) == sc
    r = subprocess.run([sys.executable, "-m", "ttlbsim", "simulate", "--rtt", "35ms", "--bandwidth", "1Gbit",
                        "--packet-jitter", "abc", "--runs", "2"], capture_output=True, text=True)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "abc" in r.stderr and "Traceback" not in r.stderr


def test_fit_recovers_a_known_packet_latency_from_min_rtt(tmp_path):
    """Synthetic 'emulated' cells: the simulator with a 50 us + Exp(60 us) packet latency, each
    row carrying both endpoints' min_rtt as TCP_INFO reports it (us). The fit finds the jitter on
    its grid next to 60 us and the fixed part within 20 us of 50 us."""
    for data in ("0", "50KiB"):
        key = {"pair": "classical", "bandwidth": "1Gbit", "rtt": "35ms", "loss": "0%", "data": data, "initcwnd": 20}
        sc = Scenario.build(**dict(LOSSLESS, data=data, compute="measured"))
        r = simulate(sc.replace(packet_delay="50us", packet_jitter="60us"), runs=150, seed=2)
        rows = []
        for i in range(r.runs):
            rows.append({"ok": True, "warmup": False, "ttfb_ms": r.ttfb_ms[i], "ttlb_ms": r.ttlb_ms[i],
                         "tcp": {"total_retrans": 0, "segs_out": int(r.packets_up[i]),
                                 "min_rtt_us": round(r.min_rtt_ms[i] * 1e3)},
                         "server": {"ok": True, "tcp": {"total_retrans": 0, "segs_out": int(r.packets_down[i]),
                                                        "min_rtt_us": round(r.server_min_rtt_ms[i] * 1e3)}}})
        name = f"classical_1Gbit_35ms_{data}"
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
        (tmp_path / f"{name}.json").write_text(json.dumps({"schema": 1, "source": "emulator", "scenario": sc.to_dict(),
                                                          "cell": key, "provenance": {"backend": "synthetic"}}))
    cells = C.load_cells(tmp_path)
    assert len(C.latency_cells(cells)) == 2
    p, stats = C.fit_packet_latency(cells, C.Simulator(200, 200), C.Params())
    assert 40e-6 <= p.packet_jitter_s <= 80e-6
    assert p.packet_delay_s == pytest.approx(50e-6, abs=20e-6)
    assert stats["ks_at_fit"] < stats["ks_by_packet_jitter"][0]["ks"]  # better than no jitter
