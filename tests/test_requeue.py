"""validation.requeue: which cells a busy host emulated, and adopting their quiet re-runs."""

from __future__ import annotations

import json

from validation import requeue as R


def _cell(d, name, load, seconds, tag="first"):
    summary = {"provenance": {"seconds": seconds}, "tag": tag,
               "host_load": {"uptime_before": f" 10:00:00 up 1 day,  load average: {load:.2f}, 1.00, 1.00",
                             "uptime_after": " 10:05:00 up 1 day,  load average: 0.50, 1.00, 1.00"}}
    (d / f"{name}.json").write_text(json.dumps(summary))
    (d / f"{name}.jsonl").write_text(json.dumps({"i": 0, "tag": tag}) + "\n")


def _dataset(tmp_path):
    data = tmp_path / "data" / "study"
    data.mkdir(parents=True)
    _cell(data, "slow_busy", 4.2, 900.0)
    _cell(data, "fast_busy", 2.5, 300.0)
    _cell(data, "quiet", 1.2, 100.0)
    _cell(data, "rerun_before", 3.0, 50.0, tag="quiet-earlier")
    busy = data.parent / "busy"
    busy.mkdir()
    _cell(busy, "rerun_before", 3.0, 50.0)
    (data / "manifest.json").write_text(json.dumps({"campaign": "study", "runs": [{"id": "a", "cells": ["quiet"]}]}))
    return data


def test_list_gives_busy_cells_not_rerun_yet_shortest_first(tmp_path, capsys):
    data = _dataset(tmp_path)
    assert R.busy_cells(data) == ["fast_busy", "slow_busy"]  # load >= BUSY_LOAD (1.6), by duration
    assert R.busy_cells(data, load=4.0) == ["slow_busy"]
    assert R.main(["list", "--data", str(data)]) == 0
    assert capsys.readouterr().out.strip() == "--only fast_busy --only slow_busy"


def test_merge_keeps_the_first_run_and_adopts_the_quiet_one_once(tmp_path):
    data = _dataset(tmp_path)
    quiet = tmp_path / "quiet"
    quiet.mkdir()
    _cell(quiet, "slow_busy", 0.3, 800.0, tag="quiet")
    _cell(quiet, "not_in_data", 0.3, 10.0, tag="quiet")
    (quiet / "partial.json").write_text("{}")  # no .jsonl: an unfinished cell is not adopted
    (quiet / "manifest.json").write_text(json.dumps({"runs": [
        {"id": "q1", "cells": ["slow_busy", "not_in_data"], "cell_log": [{"cell": "slow_busy"}, {"cell": "not_in_data"}]}]}))
    assert R.merge(quiet, data) == ["slow_busy"]
    busy = data.parent / "busy"
    assert json.loads((busy / "slow_busy.json").read_text())["tag"] == "first"
    assert json.loads((data / "slow_busy.json").read_text())["tag"] == "quiet"
    assert "quiet" in (data / "slow_busy.jsonl").read_text()
    runs = json.loads((data / "manifest.json").read_text())["runs"]
    assert [r["id"] for r in runs] == ["a", "q1"]
    assert runs[1]["cells"] == ["slow_busy"] and runs[1]["cell_log"] == [{"cell": "slow_busy"}]
    assert f"load average >= {R.BUSY_LOAD:g}" in runs[1]["note"]
    # merged again: the first run stays in busy/, the manifest entry is not duplicated
    assert R.merge(quiet, data) == ["slow_busy"]
    assert json.loads((busy / "slow_busy.json").read_text())["tag"] == "first"
    assert [r["id"] for r in json.loads((data / "manifest.json").read_text())["runs"]] == ["a", "q1"]
    assert R.busy_cells(data) == ["fast_busy"]


def test_bad_paths_are_one_line_exit_2(tmp_path, capsys):
    assert R.main(["list", "--data", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no data set at" in err
    data = _dataset(tmp_path)
    assert R.main(["merge", str(tmp_path / "missing"), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no quiet run directory" in err
