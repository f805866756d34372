"""Run an emulation campaign (a TOML grid) into validation/data/<campaign>/, resumably.

    python -m validation.run validation/campaigns/study.toml [--only 'pq44 *1Gbit*' ...] [--max-cells N]
                             [--runs N] [--backend auto|native|uml] [--out-dir DIR]

`--only` may be repeated: cells run in the order of the patterns (a priority list), each cell once.

Each cell writes `<cell>.jsonl` (raw per-connection rows), `<cell>.json` (the Result in the
simulator's schema, source "emulator") and is skipped when its `.json` exists. `manifest.json`
records the kernel, OpenSSL version, backend, command, date, and per cell the connections, duration
and host load (`uptime` before and after); it is rewritten after every cell (under a file lock, so
two runners on different cells can share a directory).
"""

from __future__ import annotations

import argparse
import fcntl
import fnmatch
import itertools
import json
import os
import platform
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from ttlbsim import Scenario
from ttlbsim.emulate import emulate

ROOT = Path(__file__).resolve().parent
KEYS = ("pair", "bandwidth", "rtt", "loss", "jitter", "jitter_dist", "data", "initcwnd")


def cells(campaign: dict) -> list[dict]:
    out = []
    for grid in [campaign["grid"], *campaign.get("extra", [])]:
        keys = [k for k in KEYS if k in grid]
        for values in itertools.product(*(grid[k] for k in keys)):
            cell = dict(zip(keys, values))
            if cell not in out:
                out.append(cell)
    return out


def cell_name(cell: dict) -> str:
    parts = [cell["pair"], cell["bandwidth"], cell["rtt"], "loss" + cell["loss"].rstrip("%")]
    if cell.get("jitter"):
        parts.append(f"jitter{cell['jitter']}-{cell.get('jitter_dist', 'uniform')}")
    parts += [f"icw{cell['initcwnd']}", "data" + str(cell["data"])]
    return "_".join(parts)


def scenario(campaign: dict, cell: dict) -> Scenario:
    pair = campaign["pairs"][cell["pair"]]
    opts = {k: v for k, v in cell.items() if k != "pair"}
    return Scenario.build(**pair, **opts, client_profile="openssl", key_shares=1, hz=100)


def lossy(cell: dict) -> bool:
    return cell["loss"] not in ("0%", "0") or bool(cell.get("jitter"))


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu_model() -> str | None:
    """The host CPU's model name and clock (/proc/cpuinfo): emulated timing depends on the host — a
    faster one makes every handshake milliseconds shorter (validation/diagnosis.md §12), so cells of
    one data set should come from one kind of host."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in info.splitlines() if ":" in line)}
    name, mhz = fields.get("model name", ""), fields.get("cpu MHz", "")
    return f"{name} ({mhz} MHz)" if name else None


def select(all_cells: list[dict], patterns: list[str] | None) -> list[dict]:
    """Cells matching any pattern, in pattern order (then grid order), each once."""
    if not patterns:
        return list(all_cells)
    out: list[dict] = []
    for pat in patterns:
        out += [c for c in all_cells if fnmatch.fnmatch(cell_name(c), pat) and c not in out]
    return out


def _update_manifest(path: Path, campaign: str, session: dict) -> None:
    """Replace this session's entry (matched by its id) in the manifest, under an exclusive lock."""
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = json.loads(path.read_text()) if path.exists() else {"campaign": campaign, "runs": []}
        runs = [r for r in manifest["runs"] if r.get("id") != session["id"]]
        manifest["runs"] = runs + [session]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=1))
        tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m validation.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("campaign")
    ap.add_argument("--only", action="append", default=None,
                    help="shell pattern on cell names (repeatable; cells run in pattern order)")
    ap.add_argument("--max-cells", type=int, default=None)
    ap.add_argument("--runs", type=int, default=None, help="override connections per cell")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args(argv)
    campaign = tomllib.loads(Path(args.campaign).read_text())
    out = Path(args.out_dir or ROOT / "data" / campaign["name"])
    out.mkdir(parents=True, exist_ok=True)
    todo = select(cells(campaign), args.only)
    if args.max_cells is not None:
        todo = todo[:args.max_cells]
    manifest_path = out / "manifest.json"
    session = {"id": f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}",
               "command": " ".join([sys.executable.split("/")[-1], "-m", "validation.run", *(argv or sys.argv[1:])]),
               "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(), "host_kernel": platform.release(),
               "cpus": os.cpu_count(), "cpu_model": _cpu_model(), "loadavg_start": os.getloadavg(), "cells": [],
               "cell_log": []}
    for i, cell in enumerate(todo, 1):
        name = cell_name(cell)
        if (out / f"{name}.json").exists():
            continue
        runs = args.runs or (campaign["runs_lossy"] if lossy(cell) else campaign["runs_lossless"])
        sys.stderr.write(f"[{i}/{len(todo)}] {name}: {runs} connections\n")
        sys.stderr.flush()
        before, t0 = _uptime(), time.time()
        r = emulate(scenario(campaign, cell), runs=runs, warmup=campaign.get("warmup", 2), backend=args.backend,
                    out=out / f"{name}.jsonl", progress=None)
        d = r.to_dict()
        d["cell"] = cell
        d["host_load"] = {"uptime_before": before, "uptime_after": _uptime()}
        (out / f"{name}.json").write_text(json.dumps(d, indent=1))
        session["cells"].append(name)
        session["cell_log"].append({"cell": name, "runs": runs, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t0)),
                                    "seconds": round(time.time() - t0, 1), **d["host_load"]})
        for k in ("backend", "kernel", "openssl", "cryptography", "ttlbsim"):
            session[k] = r.provenance.get(k)
        session["loadavg_end"] = os.getloadavg()
        _update_manifest(manifest_path, campaign["name"], session)
        sys.stderr.write(f"    TTFB p50 {r.percentiles('ttfb_ms')['p50']:.1f} ms, TTLB p50 "
                         f"{r.percentiles('ttlb_ms')['p50']:.1f} ms ({r.provenance['seconds']} s)\n")
        sys.stderr.flush()
    session["loadavg_end"] = os.getloadavg()
    if session["cells"]:
        _update_manifest(manifest_path, campaign["name"], session)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
