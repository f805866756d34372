"""The mypyc-compiled build (a regular `pip install .`, hatch_build.py) gives bit-identical
results to the interpreted modules: both builds simulate the same scenarios in fresh processes
and every per-connection array must match exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# per-connection arrays of a few scenarios that between them take every part of the per-packet
# path: loss and timeouts, GSO, SACK and RACK, jitter (reordering), Reno, host latency draws,
# mTLS, a narrow link with delayed ACKs and receive-window limits
FINGERPRINT = r"""
import hashlib, json, sys
import numpy as np
import ttlbsim
from ttlbsim import Scenario
from ttlbsim.simulate import simulate
cases = [
    dict(kex="X25519MLKEM768", sig="mldsa44", rtt="35ms", bandwidth="1Gbit", loss="3%", data="200KiB", initcwnd=20),
    dict(kex="x25519", sig="rsa2048", rtt="200ms", bandwidth="1Mbit", loss="10%", data="50KiB", initcwnd=20),
    dict(kex="X25519MLKEM768", sig="mldsa65", rtt="35ms", bandwidth="10Mbit", loss="1%", data="100KiB",
         jitter="8.75ms", jitter_dist="paretonormal", cc="reno", gso=False),
    dict(kex="X25519MLKEM768", sig="mldsa44", rtt="80ms", bandwidth="10Mbit", data="100KiB", initcwnd=10, mtls=True,
         loss="1%", compute="zero"),
]
out = {"compiled": list(ttlbsim.compiled_modules()), "cases": []}
for opts in cases:
    r = simulate(Scenario.build(**opts), runs=40, seed=11)
    out["cases"].append({k: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()
                         for k, v in sorted(r.arrays.items())})
json.dump(out, sys.stdout)
"""


def _fingerprint(pythonpath: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    proc = subprocess.run([sys.executable, "-c", FINGERPRINT], env=env, cwd=pythonpath, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_compiled_build_gives_identical_results(tmp_path):
    pytest.importorskip("mypyc.build")
    pytest.importorskip("setuptools")
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if not Path(sysconfig.get_paths()["include"], "Python.h").exists() or not any(
            Path(d, cc).exists() for d in os.environ.get("PATH", "").split(os.pathsep)):
        pytest.skip("no C compiler or Python headers: the wheel would be built pure-Python")
    sys.path.insert(0, str(ROOT))
    try:
        import hatch_build
    finally:
        sys.path.remove(str(ROOT))
    work = tmp_path / "compiled"
    work.mkdir()
    built = hatch_build.compile_modules(ROOT, work)
    assert len(built) == len(hatch_build.COMPILED) + 1  # one per module and the group's library
    (work / "models").symlink_to(ROOT / "models")  # ttlbsim.paths: the checkout's models/

    compiled = _fingerprint(work)
    interpreted = _fingerprint(ROOT)
    expected = sorted(p.removesuffix(".py").replace("/", ".") for p in hatch_build.COMPILED)
    assert compiled["compiled"] == expected
    assert interpreted["compiled"] == []
    for case, (a, b) in enumerate(zip(compiled["cases"], interpreted["cases"])):
        assert a == b, f"case {case}: arrays differ between the compiled and interpreted builds"
