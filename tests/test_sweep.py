"""Sweeps: results written as cells finish, resume after a crash or a kill, same files with any
executor (inline, process pool, Dask LocalCluster)."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from ttlbsim.experiment import parse_experiment
from ttlbsim.sweep import InlineExecutor, LocalExecutor, have_parquet, load_table, run_sweep

SPEC = {
    "experiment": {"name": "tiny", "runs": 4, "seed": 7, "baseline": "classical", "figure": "ttlb_slowdown"},
    "scenario": {"rtt": "20ms", "bandwidth": "20Mbit", "initcwnd": 10, "compute": "zero"},
    "sides": {"classical": {"kex": "x25519", "sig": "ed25519"}, "pq": {"kex": "X25519MLKEM768", "sig": "mldsa44"}},
    "grid": {"data": ["0", "8KiB"], "loss": ["0%", "5%"]},
}
TABLES = ("summary.csv", "runs.csv") + (("summary.parquet", "runs.parquet") if have_parquet() else ())


def tiny():
    return parse_experiment(SPEC, "tiny.toml")


def files(out):
    return {name: (out / name).read_bytes() for name in TABLES}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    table = run_sweep(tiny(), out, executor=InlineExecutor(), progress=False)
    assert table.complete and len(table) == 8
    return out, files(out)


def test_tables_written(reference):
    out, data = reference
    header, *rows = data["summary.csv"].decode().splitlines()
    assert len(rows) == 8 and header.startswith("cell,index,side,data,loss,")
    assert len(data["runs.csv"].decode().splitlines()) == 1 + 8 * 4
    assert len(list((out / "cells").glob("*.json"))) == 8


def test_crash_halfway_then_resume_gives_same_files(tmp_path, reference):
    _, want = reference
    seen = []

    def crash(result):
        seen.append(result.cell.key)
        if len(seen) == 3:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        run_sweep(tiny(), tmp_path, executor=InlineExecutor(), progress=False, on_cell=crash)
    assert len(load_table(tiny(), tmp_path)) == 3           # nothing finished was lost
    redone = []
    run_sweep(tiny(), tmp_path, executor=InlineExecutor(), progress=False, on_cell=lambda r: redone.append(r.cell.key))
    assert len(redone) == 5 and not set(redone) & set(seen)  # no cell computed twice
    assert files(tmp_path) == want


def test_killed_process_then_resume_gives_same_files(tmp_path, reference):
    _, want = reference
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_sweep import tiny
        from ttlbsim.sweep import InlineExecutor, run_sweep
        n = []
        def kill(result):
            n.append(1)
            if len(n) == 5:
                os.kill(os.getpid(), signal.SIGKILL)
        run_sweep(tiny(), {str(tmp_path)!r}, executor=InlineExecutor(), progress=False, on_cell=kill)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert len(load_table(tiny(), tmp_path)) == 5
    redone = []
    run_sweep(tiny(), tmp_path, executor=InlineExecutor(), progress=False, on_cell=lambda r: redone.append(1))
    assert len(redone) == 3
    assert files(tmp_path) == want


def test_corrupt_cell_file_is_recomputed(tmp_path, reference):
    _, want = reference
    run_sweep(tiny(), tmp_path, executor=InlineExecutor(), progress=False)
    victim = sorted((tmp_path / "cells").glob("*.json"))[0]
    victim.write_text(victim.read_text()[:100])
    redone = []
    run_sweep(tiny(), tmp_path, executor=InlineExecutor(), progress=False, on_cell=lambda r: redone.append(1))
    assert len(redone) == 1 and files(tmp_path) == want


def test_process_pool_gives_same_files(tmp_path, reference):
    _, want = reference
    ex = LocalExecutor(2)
    try:
        run_sweep(tiny(), tmp_path, executor=ex, progress=False)
    finally:
        ex.close()
    assert files(tmp_path) == want


def test_dask_local_cluster_gives_same_files(tmp_path, reference):
    pytest.importorskip("distributed")
    from ttlbsim.sweep import DaskExecutor

    _, want = reference
    ex = DaskExecutor("local", workers=2)
    try:
        run_sweep(tiny(), tmp_path, executor=ex, progress=False)
    finally:
        ex.close()
    assert files(tmp_path) == want


def test_progress_bar_on_stderr(tmp_path, capsys):
    run_sweep(tiny(), tmp_path, executor=InlineExecutor(), progress=True)
    err = capsys.readouterr().err
    assert "sweep tiny [" in err and "8/8 cells" in err and "ETA" in err


def test_cli_sweep_and_resume(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text(textwrap.dedent("""
        [experiment]
        name = "tiny"
        runs = 2
        [scenario]
        rtt = "20ms"
        bandwidth = "20Mbit"
        compute = "zero"
        loss = "5%"
        [grid]
        data = ["0", "4KiB"]
    """))
    cmd = [sys.executable, "-m", "ttlbsim", "sweep", str(spec), "--out", str(tmp_path / "out"), "--workers", "1"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "2/2 cells" in first.stderr and "TTLB p50" in first.stdout
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0 and "(2 resumed)" in second.stderr


def test_figure_and_study_comparison(tmp_path, reference):
    from ttlbsim.reproduce import compare_with_study, figure_rows

    out, _ = reference
    spec = {**SPEC, "reference": {"values": [
        {"label": "slowdown at 8 KiB", "quantity": "slowdown_pct", "side": "pq", "where": {"data": "8KiB"},
         "percentiles": [50, 90], "study": 5, "accept": [-1000, 1000]}]}}
    exp = parse_experiment(spec, "tiny.toml")
    table = load_table(exp, out)
    rows = figure_rows(table)
    assert {r["percentile"] for r in rows} == {50, 75, 90} and {r["data_kib"] for r in rows} == {0.0, 8.0}
    (cmp,) = compare_with_study(table)
    assert cmp.passed and cmp.study == 5.0 and cmp.difference == cmp.reproduced - 5.0
    pytest.importorskip("matplotlib")
    from ttlbsim.plots import draw

    files = draw(table, tmp_path, "tiny")
    assert sorted(f.name for f in files) == ["tiny.csv", "tiny.png", "tiny.svg"]
    assert (tmp_path / "tiny.png").read_bytes()[:4] == b"\x89PNG"
