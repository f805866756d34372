"""`ttlbsim reproduce fig1|...|fig6|all`: the study's figures, with its stated numbers side by side."""

from __future__ import annotations

from pathlib import Path

from ..reproduce import FIGURES


def add_parser(sub) -> None:
    p = sub.add_parser("reproduce", help="reproduce the study's figures and compare with its numbers",
                       description="Run the study's figure experiments (models/experiments/figN.toml), write "
                       "each figure as PNG and SVG with the CSV behind it into OUT, and print the numbers the "
                       "study states next to the reproduced ones. Results are kept in OUT/sweeps/ and reused.")
    p.add_argument("figure", choices=FIGURES + ("all",), metavar="{fig1,...,fig6,all}", help="which figure")
    p.add_argument("--runs", type=int, default=None, help="runs per cell (default: the experiment file's)")
    p.add_argument("--out", default="reproduction", help="output directory (default ./reproduction)")
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default: CPU count)")
    p.add_argument("--dask", default=None, metavar="local|tcp://HOST:PORT", help="run the cells on Dask")
    p.add_argument("--emulation", default=None, help="emulated runs.csv to overlay (default: validation/data/FIG/)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..errors import InvalidValue
    from ..experiment import find_experiment, load_experiment
    from ..plots import draw
    from ..reproduce import compare_with_study, render_comparison
    from ..sweep import make_executor, run_sweep

    if args.runs is not None and args.runs < 1:
        raise InvalidValue("--runs", args.runs, "a whole number >= 1")
    names = FIGURES if args.figure == "all" else (args.figure,)
    exps = [load_experiment(find_experiment(n)) for n in names]
    if args.runs is not None:
        exps = [e.with_runs(args.runs) for e in exps]
    out = Path(args.out)
    executor = make_executor(args.dask, args.workers)
    failed = 0
    try:
        for exp in exps:
            table = run_sweep(exp, out / "sweeps" / exp.name, executor=executor, progress=not args.quiet)
            files = draw(table, out, exp.name, emulation=args.emulation if len(exps) == 1 else None)
            rows = compare_with_study(table)
            failed += sum(1 for r in rows if r.passed is False)
            print(f"== {exp.title}")
            print(f"   {len(table)} cells x {exp.runs} runs; wrote " + ", ".join(str(f) for f in files))
            print(render_comparison(exp, rows))
            print()
    finally:
        executor.close()
    if failed:
        print(f"{failed} reproduced value(s) outside the acceptance range")
    return 0
