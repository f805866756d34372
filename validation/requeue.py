"""Re-emulate the cells a busy host emulated, and adopt the quiet runs into the data set.

    python -m validation.requeue list  [--data validation/data/study] [--load 1.6]
    python -m validation.requeue merge QUIET_DIR [--data validation/data/study]

The campaign host has 2 CPUs and the UML guest keeps about one of them busy; a cell emulated while
other emulations or simulations ran (1-minute load average >= 1.6 before or after it, as its `.json`
records) has milliseconds of extra host timing in it: its loss-free connections spread about three
times as wide as a quiet cell's (`python -m validation.diagnose load`; validation/diagnosis.md §12).
`list` prints those cells, shortest first by their recorded duration, as `--only` arguments for the
runner:

    python -m validation.run validation/campaigns/study.toml $(python -m validation.requeue list) \\
        --out-dir /tmp/quiet/study

(run it alone on the host; stop it with SIGTERM, it resumes cell by cell; and on the kind of host the
data set was taken on: emulate a lossless cell first and compare it with the data set's, since a
faster host makes every handshake milliseconds shorter, diagnosis.md §12). `merge` then moves each
re-run cell's busy first run to `validation/data/busy/`, copies the quiet run into the data set,
and appends the quiet runner's manifest entries (only the cells it adopted) with a note. A cell
whose first run is already in `busy/` was re-run before and is not listed again.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_DATA = ROOT / "data" / "study"
BUSY_LOAD = 1.6
"""The 1-minute load average (before or after a cell) from which a cell counts as emulated on a busy
host: below 1.2 the loss-free connections of lossy cells have a median IQR of about 1 ms, from 1.6
up about 3 ms (`python -m validation.diagnose load`). calibrate notes it with a cell's misses."""
NOTE = ("quiet re-run (one emulation at a time) of cells first emulated at load average >= {load:g}; "
        "the first runs are kept in validation/data/busy/")


def summary_load(summary: dict) -> float | None:
    """The highest 1-minute load average a cell's summary (its `.json`) records before and after
    it was emulated (the `host_load` validation.run keeps), or None if not recorded."""
    rec = summary.get("host_load") or {}
    loads = []
    for key in ("uptime_before", "uptime_after"):
        text = rec.get(key) or ""
        if "load average:" in text:
            try:
                loads.append(float(text.split("load average:")[1].split(",")[0]))
            except ValueError:
                pass
    return max(loads) if loads else None


def busy_cells(data: Path, load: float = BUSY_LOAD) -> list[str]:
    """Cells of `data` emulated at a load average >= `load` and not re-run yet (no first run in the
    sibling `busy/`), shortest first by the emulation time they took."""
    done = {p.stem for p in (data.parent / "busy").glob("*.json")}
    out = []
    for f in sorted(data.glob("*.json")):
        if f.name == "manifest.json" or f.stem in done:
            continue
        summary = json.loads(f.read_text())
        peak = summary_load(summary)
        if peak is not None and peak >= load:
            out.append((float((summary.get("provenance") or {}).get("seconds") or 0.0), f.stem))
    return [name for _, name in sorted(out)]


def merge(quiet: Path, data: Path, load: float = BUSY_LOAD) -> list[str]:
    """Adopt every complete cell (`.json` and `.jsonl`) of `quiet` that `data` has: the first run
    goes to `data`'s sibling `busy/`, the quiet run takes its place, and the quiet runner's
    manifest entries (restricted to the adopted cells) are appended to `data`'s manifest with a
    note. Returns the adopted cells."""
    busy = data.parent / "busy"
    busy.mkdir(exist_ok=True)
    adopted = []
    for f in sorted(quiet.glob("*.json")):
        name = f.stem
        if name == "manifest" or not (quiet / f"{name}.jsonl").exists() or not (data / f"{name}.json").exists():
            continue
        for ext in (".json", ".jsonl"):
            if not (busy / f"{name}{ext}").exists():  # the first run; a later re-run replaces only the quiet one
                shutil.move(str(data / f"{name}{ext}"), str(busy / f"{name}{ext}"))
            shutil.copy(str(quiet / f"{name}{ext}"), str(data / f"{name}{ext}"))
        adopted.append(name)
    if adopted and (quiet / "manifest.json").exists():
        manifest = json.loads((data / "manifest.json").read_text())
        for run in json.loads((quiet / "manifest.json").read_text())["runs"]:
            run = dict(run, cells=[c for c in run.get("cells", []) if c in adopted],
                       cell_log=[c for c in run.get("cell_log", []) if c.get("cell") in adopted],
                       note=NOTE.format(load=load))
            if run["cells"]:  # (a later merge of the same runner replaces its entry)
                manifest["runs"] = [r for r in manifest["runs"] if r.get("id") != run.get("id")] + [run]
        (data / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return adopted


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m validation.requeue", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ls = sub.add_parser("list", help="busy cells not re-run yet, as --only arguments")
    ls.add_argument("--data", default=str(DEFAULT_DATA))
    ls.add_argument("--load", type=float, default=BUSY_LOAD)
    mg = sub.add_parser("merge", help="adopt a quiet runner's cells into the data set")
    mg.add_argument("quiet")
    mg.add_argument("--data", default=str(DEFAULT_DATA))
    mg.add_argument("--load", type=float, default=BUSY_LOAD)
    args = ap.parse_args(argv)
    data = Path(args.data)
    if not (data / "manifest.json").exists():
        sys.stderr.write(f"python -m validation.requeue: no data set at {data} (expected a manifest.json)\n")
        return 2
    if args.cmd == "list":
        print(" ".join(f"--only {name}" for name in busy_cells(data, args.load)))
        return 0
    quiet = Path(args.quiet)
    if not quiet.is_dir():
        sys.stderr.write(f"python -m validation.requeue: no quiet run directory {quiet}\n")
        return 2
    adopted = merge(quiet, data, args.load)
    sys.stderr.write(f"adopted {len(adopted)} cells into {data}\n")
    for name in adopted:
        print(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
