"""Linux RTT estimator / RTO port (ttlbsim.tcp.rtt)."""

import pytest

from ttlbsim.tcp.rtt import RttEstimator


def test_initial_rto_before_any_sample():
    r = RttEstimator()
    assert r.rto_s == 1.0 and r.srtt_s is None and not r.has_sample
    assert RttEstimator(hz=100).rto_jiffies == 100


def test_first_sample_200ms():
    r = RttEstimator(hz=1000)
    r.on_sample(0.200, snd_una=1, snd_nxt=1)
    assert r.srtt_us == 200_000 * 8 and r.mdev_us == 400_000
    assert r.rttvar_us == 400_000 and r.mdev_max_us == 400_000
    assert r.rto_s == pytest.approx(0.600)       # 200 + max(400, 200)


def test_first_sample_35ms_floor_and_jiffy_rounding():
    r = RttEstimator(hz=1000)
    r.on_sample(0.035, snd_una=1, snd_nxt=1)
    assert r.rttvar_us == 200_000                 # max(70 ms, rto_min)
    assert r.rto_s == pytest.approx(0.235)
    r250 = RttEstimator(hz=250)
    r250.on_sample(0.035, snd_una=1, snd_nxt=1)
    assert r250.rto_jiffies == 59                 # 235 ms / 4 ms = 58.75 -> 59
    assert r250.rto_s == pytest.approx(0.236)
    r100 = RttEstimator(hz=100)
    r100.on_sample(0.035, snd_una=1, snd_nxt=1)
    assert r100.rto_s == pytest.approx(0.240)


def test_second_sample_exact_integer_update():
    r = RttEstimator(hz=1000)
    r.on_sample(0.100, snd_una=1, snd_nxt=1000)   # srtt 100 ms, mdev 200 ms, rtt_seq 1000
    # sample 140 ms within the same window: err +40 ms
    r.on_sample(0.140, snd_una=500, snd_nxt=2000)
    assert r.srtt_us == 800_000 + 40_000          # 8*100 ms + 40 ms
    assert r.mdev_us == 200_000 + (40_000 - 50_000)  # += err - mdev/4
    assert r.rttvar_us == 200_000 and r.rtt_seq == 1000
    # sample below srtt: |err| - mdev/4 negative -> not shifted
    r.on_sample(0.090, snd_una=900, snd_nxt=2000)
    # err = 90000 - (840000 >> 3) = -15000; |err| - mdev/4 = 15000 - 47500 < 0
    assert r.srtt_us == 840_000 - 15_000
    assert r.mdev_us == 190_000 + (15_000 - 47_500)


def test_sample_below_srtt_uses_1_32_gain():
    r = RttEstimator(hz=1000, min_rto_s=0.001)
    r.on_sample(0.100, snd_una=1, snd_nxt=1)      # mdev 200 ms
    r.on_sample(0.100, snd_una=1, snd_nxt=1)      # err 0: mdev -> 150 ms
    assert r.mdev_us == 150_000
    r.on_sample(0.0, snd_una=1, snd_nxt=1)        # sample 0: err = -100 ms
    # |err| - mdev/4 = 100000 - 37500 = 62500 > 0 -> >> 3 = 7812
    assert r.mdev_us == 150_000 + 7812


def test_rttvar_decays_once_per_window_toward_mdev_max():
    r = RttEstimator(hz=1000)
    r.on_sample(0.300, snd_una=1, snd_nxt=100)    # rttvar = 600 ms, rtt_seq = 100
    for una in (50, 80):                          # same window: no decay
        r.on_sample(0.300, snd_una=una, snd_nxt=200)
    assert r.rttvar_us == 600_000
    # mdev after two zero-error samples: 600 -> 450 -> 337.5
    assert r.mdev_us == 337_500
    r.on_sample(0.300, snd_una=101, snd_nxt=300)  # window passed: decay toward mdev_max
    mdev = 337_500 - (337_500 >> 2)
    assert r.mdev_us == mdev
    # mdev_max was 600 ms (set at first sample): no decay yet since rttvar == mdev_max
    assert r.rttvar_us == 600_000 and r.mdev_max_us == 200_000 and r.rtt_seq == 300
    r.on_sample(0.300, snd_una=301, snd_nxt=400)
    mdev2 = mdev - (mdev >> 2)
    mdev_max = max(200_000, mdev2)
    assert r.rttvar_us == 600_000 - ((600_000 - mdev_max) >> 2) == 500_000


def test_rto_converges_to_srtt_plus_200ms_floor():
    r = RttEstimator(hz=1000)
    una = 0
    for _ in range(200):
        una += 10
        r.on_sample(0.050, snd_una=una, snd_nxt=una + 5)
    assert r.srtt_s == pytest.approx(0.050)
    assert r.rttvar_us == 200_000
    assert r.rto_s == pytest.approx(0.250)


def test_backoff_and_cap():
    r = RttEstimator(hz=250)
    r.on_sample(0.200, snd_una=1, snd_nxt=1)      # 600 ms = 150 j
    assert r.rto_with_backoff(0) == pytest.approx(0.6)
    assert r.rto_with_backoff(3) == pytest.approx(4.8)
    assert r.rto_with_backoff(20) == 120.0
    r.backoff()
    assert r.rto_s == pytest.approx(1.2)
    for _ in range(10):
        r.backoff()
    assert r.rto_s == 120.0
    r.on_sample(0.200, snd_una=2, snd_nxt=2)      # a valid sample recomputes the RTO
    assert r.rto_s < 1.0


def test_min_rtt_uses_ca_rtt_and_zero_counts_one_jiffy():
    r = RttEstimator(hz=250)
    r.on_sample(0.080, snd_una=1, snd_nxt=1, ca_rtt_s=0.040)
    assert r.min_rtt_s == pytest.approx(0.040)
    r.on_sample(0.090, snd_una=2, snd_nxt=2)
    assert r.min_rtt_s == pytest.approx(0.040)
    r.on_sample(0.0, snd_una=3, snd_nxt=3)
    assert r.min_rtt_us == 4000 and r.srtt_us >= 1


def test_fallback():
    r = RttEstimator(hz=250)
    r.set_fallback()
    assert r.rto_s == 3.0 and r.srtt_s is None
