"""The study's lossless figures, reproduced from the shipped experiment files: every reference value
with an acceptance band (issue 5's must-show for Figs. 2 and 3) passes. The lossless cells are
deterministic, so each is simulated once and the test is quick; Fig. 4 (10 % loss) is checked by
`ttlbsim reproduce fig4` (README), too slow for the suite."""

import pytest

from ttlbsim.experiment import find_experiment, load_experiment
from ttlbsim.reproduce import compare_with_study
from ttlbsim.sweep import InlineExecutor, run_sweep


@pytest.mark.parametrize("name", ["fig2", "fig3"])
def test_lossless_reference_values_pass(name, tmp_path):
    exp = load_experiment(find_experiment(name))
    table = run_sweep(exp, tmp_path, executor=InlineExecutor(), progress=False)
    rows = [c for c in compare_with_study(table) if c.accept is not None]
    assert rows
    failed = [(c.label, c.reproduced, c.accept) for c in rows if not c.passed]
    assert not failed


def test_fig3_sensitivity_sides_bracket_the_pq_side(tmp_path):
    """The chain reading matters: at 0 KiB the genuine ML-DSA-44 chain costs less than the shipped
    ML-DSA-65 side, the literal 16 KB chain more; the gap shrinks with the response size."""
    from ttlbsim.reproduce import slowdown

    exp = load_experiment(find_experiment("fig3"))
    table = run_sweep(exp, tmp_path, executor=InlineExecutor(), progress=False)
    at = {side: [slowdown(table, side, "ttlb_ms", 50, {"data": d}) for d in (0, 200 * 1024)]
          for side in ("pq-mldsa44", "pq", "pq-16KB-chain")}
    assert at["pq-mldsa44"][0] < at["pq"][0] < at["pq-16KB-chain"][0]
    assert all(s[1] < s[0] / 3 for s in at.values())
