"""`ttlbsim simulate` / `compare` from the shell: JSON schema, readable output, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def ttlbsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ttlbsim", *args], capture_output=True, text=True, timeout=300)


def test_simulate_json_schema():
    p = ttlbsim("simulate", "--kex", "x25519", "--sig", "rsa2048", "--rtt", "35ms", "--bandwidth", "1Gbit",
                "--loss", "1%", "--data", "50KiB", "--runs", "20", "--json", "--compute", "zero")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["runs"] == 20
    for metric in ("ttfb_ms", "ttlb_ms"):
        assert set(doc[metric]) == {"p10", "p25", "p50", "p75", "p90", "p99", "mean"}
        assert doc[metric]["p10"] <= doc[metric]["p50"] <= doc[metric]["p99"]
    assert "retransmits_mean" in doc
    assert doc["scenario"]["network"]["loss"] == pytest.approx(0.01)


def test_version_says_which_build_runs():
    """`--version` on stdout, with whether the per-packet modules run compiled (this checkout's
    modules are interpreted; a regular install's are compiled, see tests/test_compiled.py)."""
    import ttlbsim as pkg
    p = ttlbsim("--version")
    assert p.returncode == 0 and p.stderr == ""
    n = len(pkg.compiled_modules())
    build = f"{n} modules compiled with mypyc" if n else "interpreted: no compiled modules"
    assert p.stdout == f"ttlbsim {pkg.__version__} ({build})\n"


def test_compare_prints_both_sides_and_slowdown():
    p = ttlbsim("compare", "--rtt", "200ms", "--bandwidth", "1Mbit", "--initcwnd", "20", "--data", "0,200KiB",
                "--runs", "2", "--compute", "zero")
    assert p.returncode == 0, p.stderr
    assert "TTLB" in p.stdout and "200KiB" in p.stdout and "%" in p.stdout
    pj = ttlbsim("compare", "--data", "0,10KiB", "--runs", "2", "--json", "--compute", "zero")
    doc = json.loads(pj.stdout)
    assert [row["data_bytes"] for row in doc["sizes"]] == [0, 10240]
    assert "slowdown_pct" in doc["sizes"][0]["ttlb_ms"]


@pytest.mark.parametrize("args,needle", [
    (("--loss", "100%"), "100%"),
    (("--loss=-1%",), "-1%"),
    (("--rtt", "0ms"), "0ms"),
    (("--bandwidth", "0mbit"), "0mbit"),
    (("--cc", "vegas"), "vegas"),
    (("--jitter-dist", "gauss"), "gauss"),
    (("--data", "12parsecs"), "12parsecs"),
    (("--runs", "0"), "runs"),
    (("--initcwnd", "0"), "initcwnd"),
    (("--kex", "rot13"), "rot13"),
])
def test_bad_simulate_input_is_one_line_exit_2(args, needle):
    p = ttlbsim("simulate", "--runs", "1", *args) if "--runs" not in args else ttlbsim("simulate", *args)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert needle in lines[0]


def test_bad_compare_side_is_one_line_exit_2():
    p = ttlbsim("compare", "--a", "kex=x25519,colour=blue", "--runs", "1")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "colour" in p.stderr
