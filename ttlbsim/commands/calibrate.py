"""`ttlbsim calibrate`: fit the host parameters against an emulation data set and regenerate the report.

The work is done by `validation.calibrate` (in the source tree, beside the data sets); this
command is available when ttlbsim runs from a checkout."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="fit host parameters against emulation data; regenerate validation/REPORT.md",
                       description="Compare simulator and emulation cell by cell (p50/p75/p90 errors of TTFB and TTLB, "
                       "KS distance), fit flight_overhead and compute scale on the training cells (HZ fixed at 100), "
                       "write models/calibration/uml-6.1.json and validation/REPORT.md with CDF figures.")
    try:
        from validation.calibrate import add_arguments
    except ImportError:  # not in a checkout: the command explains itself when run
        p.set_defaults(run=_unavailable)
        return
    add_arguments(p)
    p.set_defaults(run=run)


def _unavailable(args) -> int:
    from ..errors import InvalidValue
    raise InvalidValue("calibrate", "validation package", "a ttlbsim source checkout (validation/ beside ttlbsim/)")


def run(args) -> int:
    from validation.calibrate import run as calibrate_run
    return calibrate_run(args)
