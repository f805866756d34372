"""netem delay tables and tabledist() scaling (ttlbsim.netem)."""

from pathlib import Path

import numpy as np
import pytest

from ttlbsim import netem
from ttlbsim.errors import InvalidValue

DIST_DIRS = [Path("/usr/lib/x86_64-linux-gnu/tc"), Path("/usr/lib/tc"), Path("/usr/lib64/tc")]


def _load_dist(name):
    for d in DIST_DIRS:
        f = d / f"{name}.dist"
        if f.exists():
            values = []
            for line in f.read_text().splitlines():
                if line.lstrip().startswith("#"):
                    continue
                values += [int(tok) for tok in line.split()]
            return np.array(values)
    return None


@pytest.mark.parametrize("name", ["normal", "pareto", "paretonormal"])
def test_table_matches_iproute2_dist_file(name):
    ref = _load_dist(name)
    if ref is None:
        pytest.skip("iproute2 .dist files not installed")
    table = netem.delay_table(name)
    assert table.dtype == np.int16 and len(table) == 4096
    np.testing.assert_array_equal(table.astype(np.int64), ref)


def test_table_shapes_and_documented_moments():
    n = netem.delay_table("normal") / 8192
    assert n[0] == -4.0 and n[-1] == pytest.approx(28858 / 8192)
    assert abs(n.mean()) < 0.002 and n.std() == pytest.approx(1.0, abs=0.002)
    p = netem.delay_table("pareto") / 8192
    assert p[0] == pytest.approx(-2 / 3, abs=1e-4) and (np.diff(p) >= 0).all()
    assert (p == 32767 / 8192).sum() == 44
    assert p.mean() == pytest.approx(-0.034, abs=0.001)
    pn = netem.delay_table("paretonormal") / 8192
    assert pn.min() == pytest.approx(-1.502, abs=0.001)
    assert pn.max() == pytest.approx(3.880, abs=0.001)
    assert pn.mean() == pytest.approx(-0.025, abs=0.001)
    assert pn.std() == pytest.approx(0.834, abs=0.002)


def test_tables_are_cached_and_read_only():
    assert netem.delay_table("normal") is netem.delay_table("normal")
    with pytest.raises(ValueError):
        netem.delay_table("normal")[0] = 1


def test_tabledist_integer_rounding_half_away_from_zero():
    # sigma = 8192 + 4096 ns: x = 4096 * t -> t/2 rounds half away from zero.
    class FixedRng:
        def __init__(self, values):
            self.values = np.array(values, dtype=np.uint64)

        def integers(self, low, high, size, dtype):
            return self.values[:size]

    table = netem.delay_table("normal").astype(np.int64)
    # pick indices whose table values are odd positive / odd negative
    i_pos = int(np.nonzero((table > 0) & (table % 2 == 1))[0][0])
    i_neg = int(np.nonzero((table < 0) & (table % 2 == 1))[0][0])
    out = netem.sample_delays_ns("normal", 1_000_000, 12288, 2, FixedRng([i_pos, i_neg + 4096]))
    tp, tn = table[i_pos], table[i_neg]
    assert out[0] == 1_000_000 + tp + (tp + 1) // 2      # t*1.5, .5 rounded up
    assert out[1] == 1_000_000 + tn - ((-tn) + 1) // 2   # negative: rounded away from zero


def test_uniform_is_d_minus_j_plus_r_mod_2j():
    class FixedRng:
        def integers(self, low, high, size, dtype):
            return np.array([0, 1, 2 * 5000 - 1, 2 * 5000, 2**32 - 1], dtype=np.uint64)[:size]

    out = netem.sample_delays_ns("uniform", 100_000, 5000, 5, FixedRng())
    assert list(out) == [95_000, 95_001, 104_999, 95_000, 95_000 + (2**32 - 1) % 10_000]


def test_zero_jitter_draws_nothing_and_returns_delay():
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    out = netem.sample_delays("paretonormal", 0.0175, 0.0, 4, rng)
    assert (out == 0.0175).all()
    assert rng.bit_generator.state == state


@pytest.mark.parametrize("dist,mean,sd", [("uniform", 0.0, 1 / 3**0.5), ("normal", 0.0, 1.0),
                                          ("pareto", -0.034, 0.820), ("paretonormal", -0.025, 0.834)])
def test_sampled_moments(dist, mean, sd):
    rng = np.random.default_rng(7)
    d = netem.sample_delays(dist, 0.050, 0.010, 200_000, rng)
    assert (d - 0.050).mean() / 0.010 == pytest.approx(mean, abs=0.01)
    assert d.std() / 0.010 == pytest.approx(sd, abs=0.01)


def test_negative_delays_possible_and_bounds():
    rng = np.random.default_rng(3)
    d = netem.sample_delays("normal", 0.001, 0.010, 100_000, rng)
    assert (d < 0).any() and d.min() >= 0.001 - 4.0 * 0.010 - 1e-12
    u = netem.sample_delays("uniform", 0.020, 0.005, 100_000, rng)
    assert u.min() >= 0.015 and u.max() < 0.025


def test_deterministic_for_a_seed():
    a = netem.sample_delays("pareto", 0.02, 0.004, 100, np.random.default_rng(11))
    b = netem.sample_delays("pareto", 0.02, 0.004, 100, np.random.default_rng(11))
    np.testing.assert_array_equal(a, b)


def test_unknown_distribution():
    with pytest.raises(InvalidValue):
        netem.sample_delays("gamma", 0.01, 0.001, 1, np.random.default_rng())
