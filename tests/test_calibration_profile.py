"""The simulator uses the calibrated host profile by default (models/calibration/uml-6.1.json)."""

import json
import subprocess
import sys

import pytest

from ttlbsim import Scenario
from ttlbsim import compute as compute_mod
from ttlbsim.calibration import DEFAULT_PROFILE, load
from ttlbsim.errors import InvalidValue
from ttlbsim.simulate import simulate

NET = dict(kex="X25519MLKEM768", sig="mldsa65", rtt="35ms", bandwidth="1Gbit", initcwnd=20, data="50KiB")


def test_default_is_the_shipped_profile():
    s = Scenario.build(**NET)
    assert s.compute.mode == "calibrated" and s.compute.profile == DEFAULT_PROFILE
    cal = load(DEFAULT_PROFILE)
    assert cal.flight_overhead_s > 0 and cal.compute_times_s


def test_calibrated_times_come_from_the_profile_not_this_machine(monkeypatch):
    def boom(op, repeat=7):
        raise AssertionError(f"measured {op} on this machine")

    monkeypatch.setattr(compute_mod, "measure_operation", boom)
    r = simulate(Scenario.build(**NET), runs=1)
    cal = load(DEFAULT_PROFILE)
    assert r.provenance["calibration"] == {"profile": cal.name, "sha256": cal.sha256}
    assert r.provenance["flight_overhead_s"] == cal.flight_overhead_s
    assert r.provenance["compute_s"]["sign:mldsa65"] == cal.times()["sign:mldsa65"]


def test_profile_overhead_is_added_per_flight(tmp_path):
    zero = tmp_path / "flat.json"
    doc = json.loads(open(load(DEFAULT_PROFILE).source).read())
    doc["parameters"]["flight_overhead_s"] = 0.0
    zero.write_text(json.dumps(doc))
    big = tmp_path / "slow.json"
    doc["parameters"]["flight_overhead_s"] = 0.010
    big.write_text(json.dumps(doc))
    t0 = simulate(Scenario.build(**NET, calibration=str(zero)), runs=1).ttlb_ms[0]
    t1 = simulate(Scenario.build(**NET, calibration=str(big)), runs=1).ttlb_ms[0]
    # server flight, client Finished + request, response: at least three 10 ms waits
    assert t1 - t0 >= 30.0
    # an explicit overhead wins over the profile's
    t2 = simulate(Scenario.build(**NET, calibration=str(big), flight_overhead="0ms"), runs=1).ttlb_ms[0]
    assert t2 == t0


def test_none_means_measured_here_without_host_latency():
    s = Scenario.build(**NET, calibration="none")
    assert s.compute.mode == "measured" and s.compute.overhead_s == 0.0
    assert "calibration" not in simulate(s, runs=1).provenance


def test_round_trip_keeps_the_profile(tmp_path):
    s = Scenario.build(**NET)
    assert Scenario.build(**s.to_options()) == s


@pytest.mark.parametrize("bad", ["no-such-profile", "/nonexistent/cal.json"])
def test_bad_profile_is_one_line_exit_2(bad):
    with pytest.raises(InvalidValue, match="calibration"):
        Scenario.build(**NET, calibration=bad)
    p = subprocess.run([sys.executable, "-m", "ttlbsim", "simulate", "--runs", "2", "--calibration", bad],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and bad in p.stderr and "uml-6.1" in p.stderr
    assert "Traceback" not in p.stderr


def test_malformed_profile_is_rejected(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"parameters": {"flight_overhead_s": -1}}))
    with pytest.raises(InvalidValue, match="calibration"):
        Scenario.build(**NET, calibration=str(f))


def test_overhead_sigma_spreads_runs_keeps_mean_and_seed():
    import numpy as np

    base = dict(kex="x25519", sig="rsa2048", rtt="35ms", bandwidth="1Gbit", data="0", compute="explicit",
                flight_overhead="2ms")
    flat = simulate(Scenario.build(**base), runs=5, seed=3)
    assert flat.provenance["deterministic"] and len(set(flat.ttfb_ms)) == 1
    s = Scenario.build(**base, overhead_sigma=0.8)
    r = simulate(s, runs=2000, seed=3)
    assert not r.provenance["deterministic"]
    assert np.std(r.ttfb_ms) > 0.5  # ms: the host latency now varies
    # a lognormal factor of mean 1: the mean handshake stays where the constant overhead put it
    assert abs(np.mean(r.ttfb_ms) - flat.ttfb_ms[0]) < 0.2
    assert np.array_equal(r.ttfb_ms, simulate(s, runs=2000, seed=3, workers=2).ttfb_ms)
    assert not np.array_equal(r.ttfb_ms, simulate(s, runs=2000, seed=4).ttfb_ms)


def test_bad_overhead_sigma():
    with pytest.raises(InvalidValue, match="overhead_sigma"):
        Scenario.build(overhead_sigma=-1)


def test_profile_recv_cost_is_used_unless_given(tmp_path):
    """A profile's recv_cost_s (seconds per recv() call) is the calibrated default; absent, 0."""
    assert load(DEFAULT_PROFILE).recv_cost_s == 0.0
    f = tmp_path / "slowread.json"
    doc = json.loads(open(load(DEFAULT_PROFILE).source).read())
    doc["parameters"]["recv_cost_s"] = 1e-4
    f.write_text(json.dumps(doc))
    r = simulate(Scenario.build(**NET, calibration=str(f)), runs=1)
    assert r.provenance["recv_cost_s"] == 1e-4
    t0 = simulate(Scenario.build(**NET), runs=1).ttlb_ms[0]
    assert r.ttlb_ms[0] > t0  # the reads of each burst spread over 100 us per recv()
    assert simulate(Scenario.build(**NET, calibration=str(f), recv_cost="0s"), runs=1).ttlb_ms[0] == t0
    s = Scenario.build(**NET, recv_cost="20us")
    assert Scenario.build(**s.to_options()) == s
    doc["parameters"]["recv_cost_s"] = -1e-6
    bad = tmp_path / "negative.json"  # (profiles are cached by name)
    bad.write_text(json.dumps(doc))
    with pytest.raises(InvalidValue, match="calibration"):
        Scenario.build(**NET, calibration=str(bad))
