"""Experiment files: the study's figures load and expand; bad files give one line naming file,
key and value, and exit status 2 from the CLI."""

import subprocess
import sys
import textwrap

import pytest

from ttlbsim.errors import InvalidValue
from ttlbsim.experiment import ExperimentError, experiments_dir, load_experiment, matches

GOOD = """
[experiment]
name = "tiny"
runs = 3
baseline = "a"
[scenario]
rtt = "35ms"
bandwidth = "10Mbit"
[sides.a]
kex = "x25519"
sig = "ed25519"
[sides.b]
kex = "X25519MLKEM768"
sig = "mldsa44"
[grid]
data = ["0", "10KiB"]
loss = ["0%", "5%"]
"""


def _write(tmp_path, text, name="exp.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


@pytest.mark.parametrize("n", range(1, 7))
def test_study_figures_load(n):
    exp = load_experiment(experiments_dir() / f"fig{n}.toml")
    assert exp.name == f"fig{n}" and exp.cells and exp.reference
    assert len({c.key for c in exp.cells}) == len(exp.cells)
    for c in exp.cells:
        assert c.scenario.tcp.initcwnd == 20 and c.scenario.tls.cert_profile == "minimal"


def test_expand_order_and_keys(tmp_path):
    exp = load_experiment(_write(tmp_path, GOOD))
    assert len(exp.cells) == 2 * 2 * 2
    assert [(c.side, c.axis("data"), c.axis("loss")) for c in exp.cells[:4]] == [
        ("a", "0", "0%"), ("a", "0", "5%"), ("a", "10KiB", "0%"), ("a", "10KiB", "5%")]
    again = load_experiment(_write(tmp_path, GOOD, "again.toml"))
    assert [c.key for c in again.cells] == [c.key for c in exp.cells]          # stable across loads
    assert exp.with_runs(4).cells[0].key != exp.cells[0].key                    # runs are part of the key
    assert matches(exp.cells[2], {"data": 10240, "side": "a"})                   # canonical comparison
    assert matches(exp.cells[1], {"loss": "5%"}) and not matches(exp.cells[1], {"loss": ["0%", "1%"]})


BAD = [
    ("unknown top-level key", GOOD + "\n[grids]\ndata = [1]\n", "key", "grids"),
    ("unknown experiment key", GOOD.replace('runs = 3', 'runs = 3\nrunz = 4'), "key", "experiment.runz"),
    ("unknown scenario option", GOOD.replace('rtt = "35ms"', 'rtt = "35ms"\nrtx = "1"'), "key", "scenario.rtx"),
    ("unknown side option", GOOD.replace('sig = "ed25519"', 'sig = "ed25519"\nkexx = "x"'), "key", "sides.a.kexx"),
    ("bad unit in the scenario", GOOD.replace('"10Mbit"', '"10 Mbaud"'), "scenario.bandwidth", "10 Mbaud"),
    ("bad unit in the grid", GOOD.replace('"5%"', '"5 percent"'), "grid.loss", "5 percent"),
    ("bad algorithm in a side", GOOD.replace('"mldsa44"', '"mldsa99"'), "sides.b.sig", "mldsa99"),
    ("empty grid axis", GOOD.replace('loss = ["0%", "5%"]', "loss = []"), "grid.loss", "[]"),
    ("no sides", GOOD.split("[sides.a]")[0] + "[sides]\n[grid]\ndata = [0]\n", "sides", "{}"),
    ("runs zero", GOOD.replace("runs = 3", "runs = 0"), "experiment.runs", "0"),
    ("baseline not a side", GOOD.replace('baseline = "a"', 'baseline = "c"'), "experiment.baseline", "c"),
    ("reference quantity", GOOD + '\n[[reference.values]]\nlabel = "x"\nquantity = "speed"\nstudy = 1\n',
     "reference.values[0].quantity", "speed"),
    ("not TOML", "[experiment\n", "TOML", ""),
]


@pytest.mark.parametrize("what,text,key,value", BAD, ids=[b[0] for b in BAD])
def test_bad_files_name_file_key_value(tmp_path, what, text, key, value):
    path = _write(tmp_path, text)
    with pytest.raises(ExperimentError) as info:
        load_experiment(path)
    msg = str(info.value)
    assert isinstance(info.value, InvalidValue)
    assert "\n" not in msg and msg.startswith(f"{path}: invalid {key} ") and value in msg


def test_missing_file(tmp_path):
    with pytest.raises(ExperimentError, match="nope.toml"):
        load_experiment(tmp_path / "nope.toml")


@pytest.mark.parametrize("what,text,key,value", [BAD[2], BAD[5], BAD[7]], ids=["unknown key", "bad unit", "empty grid"])
def test_cli_bad_file_one_line_exit_2(tmp_path, what, text, key, value):
    path = _write(tmp_path, text)
    r = subprocess.run([sys.executable, "-m", "ttlbsim", "sweep", str(path), "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert str(path) in lines[0] and key in lines[0] and value in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_refitted_profile_of_the_same_name_changes_the_cell_keys(tmp_path):
    """A sweep resumed after the host profile was refitted must not reuse cells computed with the
    old parameters: the key covers the profile file's content, not only its name."""
    import json

    from ttlbsim.calibration import load
    from ttlbsim.paths import models_dir

    doc = json.loads((models_dir() / "calibration" / "uml-6.1.json").read_text())
    prof = tmp_path / "host.json"
    prof.write_text(json.dumps(doc))
    text = GOOD.replace('bandwidth = "10Mbit"', f'bandwidth = "10Mbit"\ncalibration = "{prof}"')
    before = [c.key for c in load_experiment(_write(tmp_path, text)).cells]
    assert [c.key for c in load_experiment(_write(tmp_path, text, "again.toml")).cells] == before
    doc["parameters"]["flight_overhead_s"] += 1e-4
    prof.write_text(json.dumps(doc))
    load.cache_clear()
    after = [c.key for c in load_experiment(_write(tmp_path, text, "later.toml")).cells]
    assert not set(after) & set(before)
