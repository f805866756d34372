"""Congestion control: Linux Reno and CUBIC with HyStart (ttlbsim.tcp.congestion)."""

import math

import pytest

from ttlbsim.errors import InvalidValue
from ttlbsim.tcp.congestion import (CONGESTION_CONTROLS, INFINITE_SSTHRESH, Cubic, Reno,
                                    create_congestion_control, cubic_root)

ACK = dict(cwnd_limited=True, may_raise=True)


def ack(cc, now, acked=1, rtt=None, una=0, nxt=0, **kw):
    args = dict(ACK, **kw)
    cc.on_ack(now=now, acked=acked, rtt_sample=rtt, snd_una=una, snd_nxt=nxt, **args)


@pytest.mark.parametrize("cls", [Reno, Cubic])
def test_slow_start_counts_delivered_segments(cls):
    cc = cls(initcwnd=10, hystart=False)
    assert cc.cwnd == 10 and cc.ssthresh == INFINITE_SSTHRESH == 0x7FFFFFFF
    ack(cc, 0.1, acked=5)               # a stretch ACK of 5 adds 5
    assert cc.cwnd == 15
    ack(cc, 0.1, acked=1)
    assert cc.cwnd == 16


@pytest.mark.parametrize("cls", [Reno, Cubic])
def test_no_growth_unless_cwnd_limited_and_may_raise(cls):
    cc = cls(initcwnd=10, hystart=False)
    ack(cc, 0.1, acked=5, cwnd_limited=False)
    ack(cc, 0.1, acked=5, may_raise=False)
    assert cc.cwnd == 10


def test_ssthresh_cap_with_leftover_to_ai():
    cc = Reno(initcwnd=10)
    cc.ssthresh = 12
    ack(cc, 0.1, acked=5)               # 10 -> 12, leftover 3 into AI (w = 12)
    assert cc.cwnd == 12 and cc.snd_cwnd_cnt == 3
    ack(cc, 0.1, acked=9)               # cnt 12 >= 12 -> +1
    assert cc.cwnd == 13 and cc.snd_cwnd_cnt == 0


def test_reno_additive_increase_one_per_window():
    cc = Reno(initcwnd=10)
    cc.ssthresh = 5
    for _ in range(9):
        ack(cc, 0.1)
    assert cc.cwnd == 10
    ack(cc, 0.1)
    assert cc.cwnd == 11
    for _ in range(11 * 3):
        ack(cc, 0.2)
    assert cc.cwnd == 13 and cc.snd_cwnd_cnt == 10
    assert cc.ssthresh_after_loss(now=1.0) == cc.cwnd // 2
    cc.cwnd = 3
    assert cc.ssthresh_after_loss(now=1.0) == 2


def test_cubic_root_close_to_real_cbrt():
    assert cubic_root(0) == 0 and cubic_root(1) == 1 and cubic_root(27) == 3
    assert abs(cubic_root(100) - 100 ** (1 / 3)) <= 1      # integer result
    for a in (12345, 10**9, 2**40 // 410 * 30, 2**50):
        assert cubic_root(a) == pytest.approx(a ** (1 / 3), rel=0.01)


def test_cubic_loss_beta_and_fast_convergence():
    cc = Cubic(initcwnd=10)
    cc.cwnd = 100
    assert cc.ssthresh_after_loss(now=1.0) == 70          # 100 * 717 // 1024
    assert cc.last_max_cwnd == 100 and cc.epoch_start is None
    cc.cwnd = 80                                           # loss again below W_max
    assert cc.ssthresh_after_loss(now=2.0) == 56
    assert cc.last_max_cwnd == 80 * 1741 // 2048           # 68: fast convergence
    cc.cwnd = 2
    assert cc.ssthresh_after_loss(now=3.0) == 2


def run_ack_clock(cc, rtt, seconds, t0=0.0, una0=0):
    """cwnd ACKs per RTT, evenly spaced; each delivers 1 segment. Returns [(t, cwnd)]."""
    t, una, trace = t0, una0, []
    while t < t0 + seconds:
        n = cc.cwnd
        for i in range(n):
            una += 1
            ack(cc, t + rtt * i / n, rtt=rtt, una=una, nxt=una + cc.cwnd)
        t += rtt
        trace.append((t, cc.cwnd))
    return trace


def test_cubic_growth_follows_cubic_curve_after_loss():
    rtt = 0.100
    cc = Cubic(initcwnd=10, hz=1000)
    cc.cwnd = 100
    cc.ssthresh = cc.ssthresh_after_loss(now=0.0)
    cc.cwnd = cc.ssthresh                                   # 70, as after recovery
    cc.delay_min = int(rtt * 1e6)
    trace = run_ack_clock(cc, rtt, 6.0)
    w_max, c, beta = 100, 0.4, 1 - 717 / 1024
    k = (w_max * beta / c) ** (1 / 3)                       # ≈ 4.2 s
    for t, cwnd in trace:
        w = c * (t - k) ** 3 + w_max
        assert abs(cwnd - w) <= 3, (t, cwnd, w)
    assert trace[-1][1] > w_max                             # past W_max: convex probing


def test_cubic_first_epoch_5_percent_cap_without_loss():
    cc = Cubic(initcwnd=10, hz=250, hystart=False)
    cc.ssthresh = cc.cwnd = 40                              # CA without a prior loss
    cc.delay_min = 50_000
    trace = run_ack_clock(cc, 0.05, 1.0)
    # cnt capped at 20 -> ~ +5% per RTT, but tcp-friendliness also applies (Reno ~ 0.53/RTT)
    assert 40 + 0.5 * 20 * 0.4 < trace[-1][1] <= 40 * 1.05 ** 20


def hystart_rounds(cc, rtts, spacing=0.003, per_round=None, start_una=0):
    """Feed rounds of ACKs; round r has RTT samples rtts[r]; returns found-at (round, ack)."""
    t, una = 0.0, start_una
    for r, rtt in enumerate(rtts):
        nxt = una + (per_round or cc.cwnd)
        cc.on_ack(now=t, acked=0, rtt_sample=rtt, snd_una=una + 1, snd_nxt=nxt,
                  cwnd_limited=False, may_raise=False)   # opens the round (snd_una > end_seq)
        for i in range(per_round or cc.cwnd):
            una += 1
            t += spacing
            cc.on_ack(now=t, acked=0, rtt_sample=rtt, snd_una=una, snd_nxt=nxt,
                      cwnd_limited=False, may_raise=False)
            if cc.found:
                return r, i
        t += 0.2
    return None


def test_hystart_delay_exit_on_rtt_increase():
    cc = Cubic(initcwnd=20)
    # delay_min 50 ms -> threshold 50 + clamp(6.25, 4, 16) = 56.25 ms
    found = hystart_rounds(cc, [0.050, 0.050, 0.0565])
    assert found is not None and found[0] == 2
    assert found[1] >= 7                        # after 8 samples in the round
    assert cc.ssthresh == cc.cwnd == 20 and not cc.in_slow_start


def test_hystart_delay_no_exit_under_threshold_or_constant_rtt():
    cc = Cubic(initcwnd=20)
    assert hystart_rounds(cc, [0.050] * 10) is None
    cc2 = Cubic(initcwnd=20)
    assert hystart_rounds(cc2, [0.050, 0.056, 0.056]) is None   # below 56.25 ms
    assert cc2.ssthresh == INFINITE_SSTHRESH


def test_hystart_min_of_round_decides():
    # one low sample among the first 8 keeps the round's min below the threshold
    cc = Cubic(initcwnd=20)
    hystart_rounds(cc, [0.050])
    t = 10.0
    cc.on_ack(now=t, acked=0, rtt_sample=0.070, snd_una=10**6, snd_nxt=2 * 10**6,
              cwnd_limited=False, may_raise=False)
    for i, rtt in enumerate([0.070] * 3 + [0.051] + [0.070] * 30):
        t += 0.003
        cc.on_ack(now=t, acked=0, rtt_sample=rtt, snd_una=10**6 + i, snd_nxt=2 * 10**6,
                  cwnd_limited=False, may_raise=False)
    assert not cc.found


def test_hystart_inactive_below_low_window():
    cc = Cubic(initcwnd=10)
    assert hystart_rounds(cc, [0.050, 0.100, 0.100], per_round=20) is None


def test_hystart_ack_train_exit():
    cc = Cubic(initcwnd=20)
    # delay_min 40 ms: ACKs 1 ms apart; the train is longer than 20 ms after ~20 ACKs
    found = hystart_rounds(cc, [0.040, 0.040], spacing=0.001, per_round=40)
    assert found == (0, 20)
    assert cc.ssthresh == 20


def test_hystart_ack_train_broken_by_gap():
    cc = Cubic(initcwnd=20)
    assert hystart_rounds(cc, [0.040] * 5, spacing=0.0025, per_round=40) is None


def test_hystart_ack_delay_cushion():
    # GSO on: threshold (40 + 1) / 2 = 20.5 ms instead of 20 ms: one more 0.5 ms-spaced ACK
    plain = hystart_rounds(Cubic(initcwnd=20), [0.040], spacing=0.0005, per_round=80)
    cushion = hystart_rounds(Cubic(initcwnd=20, hystart_ack_delay_us=1000), [0.040],
                             spacing=0.0005, per_round=80)
    assert plain[0] == cushion[0] == 0 and cushion[1] == plain[1] + 1


def test_hystart_disabled_never_exits():
    cc = Cubic(initcwnd=20, hystart=False)
    assert hystart_rounds(cc, [0.040, 0.100, 0.100], spacing=0.001, per_round=40) is None
    assert cc.ssthresh == INFINITE_SSTHRESH


def test_hystart_exit_then_cubic_growth():
    cc = Cubic(initcwnd=20)
    hystart_rounds(cc, [0.050, 0.050, 0.060])
    assert cc.ssthresh == 20
    ack(cc, 5.0, acked=2, rtt=0.05, una=10**6, nxt=10**6 + 20)
    assert cc.cwnd == 20 and cc.epoch_start is not None   # CA: cnt-based growth


def test_enter_loss_resets_and_rearms_hystart():
    cc = Cubic(initcwnd=20)
    hystart_rounds(cc, [0.050, 0.050, 0.060])
    assert cc.found
    cc.cwnd = 40
    cc.ssthresh = cc.ssthresh_after_loss(now=3.0)
    cc.on_enter_loss(now=3.0, snd_nxt=5000)
    assert not cc.found and cc.delay_min == 0 and cc.last_max_cwnd == 0
    assert cc.end_seq == 5000 and cc.round_start == 3_000_000 and cc.snd_cwnd_cnt == 0


def test_delay_samples_discarded_in_first_second_of_epoch():
    cc = Cubic(initcwnd=10, hz=250)
    cc.ssthresh = cc.cwnd = 30
    ack(cc, 1.0, acked=1, rtt=0.05)                       # starts an epoch (CA)
    assert cc.epoch_start == 250 and cc.delay_min == 50_000
    ack(cc, 1.5, acked=1, rtt=0.02)                       # within HZ of epoch start
    assert cc.delay_min == 50_000
    ack(cc, 2.1, acked=1, rtt=0.02)
    assert cc.delay_min == 20_000


def test_tx_start_shifts_epoch():
    cc = Cubic(initcwnd=10, hz=1000)
    cc.ssthresh = cc.cwnd = 30
    ack(cc, 1.0, acked=1, rtt=0.05)
    assert cc.epoch_start == 1000
    cc.on_tx_start(now=3.0, last_send=2.5)
    assert cc.epoch_start == 1500
    cc.on_tx_start(now=3.0, last_send=0.0)                # never past now
    assert cc.epoch_start == 3000


def test_cwnd_restart_after_idle():
    cc = Cubic(initcwnd=10, hz=250)
    cc.cwnd = 80
    assert not cc.on_cwnd_restart(now=1.2, last_send=1.0, rto_s=0.24)
    assert cc.cwnd == 80
    # idle 1 s with RTO 240 ms: delta 250 j, rto 60 j -> halvings while delta - k*rto > 0
    assert cc.on_cwnd_restart(now=2.0, last_send=1.0, rto_s=0.24)
    assert cc.ssthresh == INFINITE_SSTHRESH                # max(ssthresh, 3/4 cwnd)
    assert cc.cwnd == 10                                   # 80 -> 40 -> 20 -> 10 (floor)


def test_undo_cwnd():
    cc = Reno(initcwnd=10)
    assert cc.undo_cwnd(prior_cwnd=30) == 30 and cc.undo_cwnd(prior_cwnd=5) == 10


def test_registry():
    assert set(CONGESTION_CONTROLS) == {"cubic", "reno"}
    cc = create_congestion_control("CUBIC", initcwnd=20, hystart=False, hz=100)
    assert isinstance(cc, Cubic) and cc.cwnd == 20 and cc.hz == 100
    assert isinstance(create_congestion_control("reno", initcwnd=1), Reno)
    with pytest.raises(InvalidValue):
        create_congestion_control("bbr", initcwnd=10)
    with pytest.raises(InvalidValue):
        Reno(initcwnd=0)
