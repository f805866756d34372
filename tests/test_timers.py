"""Kernel timer expiry: jiffies + timer-wheel rounding (ttlbsim.timers)."""

import numpy as np
import pytest

from ttlbsim.timers import (KernelTimers, jiffies_to_usecs, msecs_to_jiffies, usecs_to_jiffies,
                            wheel_bucket_expiry)


def test_conversions_round_up():
    assert usecs_to_jiffies(235_000, 250) == 59       # 58.75 -> 59
    assert usecs_to_jiffies(200_000, 250) == 50
    assert usecs_to_jiffies(1, 1000) == 1
    assert usecs_to_jiffies(0, 250) == 0
    assert msecs_to_jiffies(40, 100) == 4 and msecs_to_jiffies(41, 100) == 5
    assert jiffies_to_usecs(50, 250) == 200_000


def test_wheel_levels_hz250():
    # level 0: delta < 63 -> +1 jiffy
    assert wheel_bucket_expiry(1000 + 50, 1000) == 1051
    assert wheel_bucket_expiry(1000 + 62, 1000) == 1063
    # level 1: 63 <= delta < 504 -> next multiple of 8 strictly after expires
    assert wheel_bucket_expiry(1000 + 63, 1000) == 1064
    assert wheel_bucket_expiry(1000 + 250, 1000) == 1256
    assert wheel_bucket_expiry(1248, 1000) == 1256     # already aligned: still strictly after
    # level 2: 504 <= delta < 4032 -> multiple of 64
    assert wheel_bucket_expiry(1000 + 504, 1000) == 1536
    assert wheel_bucket_expiry(0 + 1000, 0, hz=1000) == 1024
    # expired
    assert wheel_bucket_expiry(990, 1000) == 1000


@pytest.mark.parametrize("hz,delay,expected", [
    # HZ=250 (4 ms jiffies)
    (250, 0.200, 0.204),    # 50 j, level 0 -> 51 j
    (250, 0.235, 0.240),    # 59 j -> 60 j
    (250, 0.252, 0.256),    # 63 j -> level 1 -> 64 j
    (250, 0.300, 0.320),    # 75 j -> 80 j (32 ms granule)
    (250, 1.000, 1.024),    # SYN timeout: 250 j -> 256 j
    (250, 0.040, 0.044),    # delayed ACK 10 j -> 11 j
    # HZ=1000
    (1000, 0.200, 0.208),   # 200 j, level 1 -> 208
    (1000, 0.040, 0.041),
    (1000, 1.000, 1.024),   # 1000 j, level 2 -> 1024
    (1000, 3.000, 3.008),   # 3000 j, level 2 -> 47*64 = 3008
    # HZ=100 (UML guest)
    (100, 0.200, 0.210),    # 20 j -> 21
    (100, 0.040, 0.050),
    (100, 1.000, 1.040),    # 100 j, level 1 -> 104
    (100, 0.235, 0.250),    # 23.5 -> 24 j -> 25 j
])
def test_expiry_exact_from_tick_boundary(hz, delay, expected):
    t = KernelTimers(hz)
    assert t.expiry(0.0, delay) == pytest.approx(expected, abs=1e-12)


def test_phase_and_mid_jiffy_arming():
    t = KernelTimers(250, phase_s=0.001)      # ticks at 3 ms, 7 ms, ... (k*4ms - 1ms)
    assert t.jiffies(0.0) == 0 and t.jiffies(0.003) == 1 and t.jiffies(0.0029) == 0
    assert t.tick_time(1) == pytest.approx(0.003)
    # armed at 2.5 ms (jiffy 0) for 200 ms: expires 50, runs at tick 51 = 203 ms
    assert t.expiry(0.0025, 0.2) == pytest.approx(0.203)
    # a level-1 timer rounds on the absolute jiffy grid
    t2 = KernelTimers(250)
    assert t2.expiry(0.012, 1.0) == pytest.approx(1.024)   # jiffy 3 + 250 = 253 -> 256
    assert t2.expiry(0.032, 1.0) == pytest.approx(1.056)   # jiffy 8 + 250 = 258 -> 264


def test_tick_time_roundtrip():
    t = KernelTimers(250, phase_s=0.0037)
    for k in range(0, 100000, 997):
        assert t.jiffies(t.tick_time(k)) == k


def test_never_early_and_bounded_late():
    rng = np.random.default_rng(0)
    for hz in (100, 250, 1000):
        t = KernelTimers(hz, phase_s=float(rng.uniform(0, 1 / hz)))
        for now, d in zip(rng.uniform(0, 10, 500), rng.uniform(0.001, 3.0, 500)):
            e = t.expiry(float(now), float(d))
            assert e > now + d - 1e-9
            j = t.delay_to_jiffies(d)
            gran = 1 if j < 63 else 8 if j < 504 else 64 if j < 4032 else 512
            assert e - (now + d) <= (gran + 1) / hz + 1e-9


def test_expiry_jiffies_direct():
    t = KernelTimers(250)
    assert t.expiry_jiffies(0.0, 250) == pytest.approx(1.024)
