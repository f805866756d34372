"""Run an emulation campaign (a TOML grid) into validation/data/<campaign>/, resumably.

    python -m validation.run validation/campaigns/study.toml [--only 'pq44 *1Gbit*'] [--max-cells N]
                             [--runs N] [--backend auto|native|uml] [--out-dir DIR]

Each cell writes `<cell>.jsonl` (raw per-connection rows), `<cell>.json` (the Result in the
simulator's schema, source "emulator") and is skipped when its `.json` exists. `manifest.json`
records the kernel, OpenSSL version, backend, command, date, host load and the cells done.
"""

from __future__ import annotations

import argparse
import fnmatch
import itertools
import json
import os
import platform
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m validation.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("campaign")
    ap.add_argument("--only", default=None, help="shell pattern on cell names")
    ap.add_argument("--max-cells", type=int, default=None)
    ap.add_argument("--runs", type=int, default=None, help="override connections per cell")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args(argv)
    campaign = tomllib.loads(Path(args.campaign).read_text())
    out = Path(args.out_dir or ROOT / "data" / campaign["name"])
    out.mkdir(parents=True, exist_ok=True)
    todo = [c for c in cells(campaign) if not args.only or fnmatch.fnmatch(cell_name(c), args.only)]
    if args.max_cells is not None:
        todo = todo[:args.max_cells]
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"campaign": campaign["name"], "runs": []}
    session = {"command": " ".join([sys.executable.split("/")[-1], "-m", "validation.run", *(argv or sys.argv[1:])]),
               "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(), "host_kernel": platform.release(),
               "cpus": os.cpu_count(), "loadavg_start": os.getloadavg(), "cells": []}
    for i, cell in enumerate(todo, 1):
        name = cell_name(cell)
        if (out / f"{name}.json").exists():
            continue
        runs = args.runs or (campaign["runs_lossy"] if lossy(cell) else campaign["runs_lossless"])
        sys.stderr.write(f"[{i}/{len(todo)}] {name}: {runs} connections\n")
        r = emulate(scenario(campaign, cell), runs=runs, warmup=campaign.get("warmup", 2), backend=args.backend,
                    out=out / f"{name}.jsonl", progress=None)
        d = r.to_dict()
        d["cell"] = cell
        (out / f"{name}.json").write_text(json.dumps(d, indent=1))
        session["cells"].append(name)
        for k in ("backend", "kernel", "openssl", "cryptography", "ttlbsim"):
            session[k] = r.provenance.get(k)
        sys.stderr.write(f"    TTFB p50 {r.percentiles('ttfb_ms')['p50']:.1f} ms, TTLB p50 "
                         f"{r.percentiles('ttlb_ms')['p50']:.1f} ms ({r.provenance['seconds']} s)\n")
    session["loadavg_end"] = os.getloadavg()
    manifest["runs"].append(session)
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
