"""`ttlbsim sweep FILE.toml`: run an experiment's grid, writing results as cells finish; rerun to resume."""

from __future__ import annotations

import json
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="run an experiment grid (TOML) on a process pool or Dask; resumable",
                       description="Expand the experiment file's grid into cells and simulate each, on a local "
                       "process pool or a Dask cluster. Each finished cell is saved at once under OUT/cells/ and "
                       "the tables OUT/summary.csv and OUT/runs.csv (and .parquet with pyarrow) are rewritten; "
                       "running the same command again skips every finished cell. Same seed, same files, "
                       "whatever the executor.")
    p.add_argument("file", help="experiment file (TOML), or the name of one in models/experiments/ (fig3)")
    p.add_argument("--out", default=None, help="output directory (default results/NAME)")
    p.add_argument("--runs", type=int, default=None, help="override the runs per cell")
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default: CPU count)")
    p.add_argument("--dask", default=None, metavar="local|tcp://HOST:PORT",
                   help="run on Dask: 'local' starts a LocalCluster, an address joins a scheduler")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary table as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..errors import InvalidValue
    from ..experiment import find_experiment, load_experiment
    from ..sweep import make_executor, run_sweep

    exp = load_experiment(find_experiment(args.file))
    if args.runs is not None:
        if args.runs < 1:
            raise InvalidValue("--runs", args.runs, "a whole number >= 1")
        exp = exp.with_runs(args.runs)
    if args.workers is not None and args.workers < 1:
        raise InvalidValue("--workers", args.workers, "a whole number >= 1")
    out = Path(args.out or Path("results") / exp.name)
    executor = make_executor(args.dask, args.workers)
    try:
        table = run_sweep(exp, out, executor=executor, progress=not args.quiet)
    finally:
        executor.close()
    rows = table.summary_rows()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(render(exp, rows, out))
    return 0


def render(exp, rows, out) -> str:
    axes = ["side"] + (["variant"] if exp.variants else []) + list(exp.axis_names)
    pct = exp.percentiles
    head = "".join(f"{a:>14}" for a in axes) + "".join(f"{'TTLB p' + str(p):>11}" for p in pct)
    lines = [f"{exp.title}", f"{len(rows)} cells, {exp.runs} runs each, seed {exp.seed} → {out}", "", head]
    for r in rows:
        lines.append("".join(f"{str(r[a])[:13]:>14}" for a in axes)
                     + "".join(f"{r[f'ttlb_p{p}_ms']:11.1f}" for p in pct))
    return "\n".join(lines)
