"""The study's figures from a sweep's results: the numbers behind each figure, and the side-by-side
comparison with the values the study states (``[reference]`` in the experiment file).

Reference values are read only here, to be printed next to what the simulator computed; nothing
in the simulation or in the figure data depends on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .experiment import Cell, Experiment, ReferenceValue
from .sweep import ResultTable

FIGURES = ("fig1", "fig2", "fig3", "fig4", "fig5", "fig6")


def _group_key(cell: Cell, drop: set[str]) -> tuple:
    return tuple((k, v) for k, v in cell.axes if k not in drop)


def groups(table: ResultTable, side: str, where: dict | tuple = ()) -> list[dict[str, Any]]:
    """The matching cells of `side`, grouped by every axis except side and the pooled ones: one
    `where` dict per group (in cell order)."""
    drop = {"side", *table.experiment.pool}
    seen: dict[tuple, None] = {}
    for r in table.select({**dict(where), "side": side}):
        seen.setdefault(_group_key(r.cell, drop))
    return [{**dict(where), **dict(g)} for g in seen]


def slowdown(table: ResultTable, side: str, metric: str, p: float, where: dict) -> float:
    """100·(p-th percentile of side / p-th percentile of the baseline − 1) over the cells in `where`
    (runs pooled over the experiment's pooled axes)."""
    base = table.experiment.baseline
    a = table.percentile(metric, p, {**where, "side": base})
    b = table.percentile(metric, p, {**where, "side": side})
    return 100.0 * (b / a - 1.0) if a else math.nan


@dataclass(frozen=True)
class Comparison:
    label: str
    reproduced: float
    study: float | tuple[float, float]
    accept: tuple[float, float] | None
    unit: str

    @property
    def difference(self) -> float:
        """Reproduced minus the study's value (or the nearest end of the study's range; 0 inside)."""
        s = self.study
        if isinstance(s, tuple):
            lo, hi = s
            return 0.0 if lo <= self.reproduced <= hi else self.reproduced - (lo if self.reproduced < lo else hi)
        return self.reproduced - s

    @property
    def passed(self) -> bool | None:
        if self.accept is None:
            return None
        return self.accept[0] <= self.reproduced <= self.accept[1]


def evaluate(table: ResultTable, ref: ReferenceValue) -> Comparison:
    """Compute the quantity `ref` describes from the simulated runs."""
    values = []
    side = ref.side or next(iter(table.experiment.sides))
    for where in groups(table, side, ref.where):
        for p in ref.percentiles:
            if ref.quantity == "slowdown_pct":
                values.append(slowdown(table, side, ref.metric, p, where))
            elif ref.quantity == "slowdown_ratio":
                values.append(slowdown(table, side, ref.metric, p, where)
                              / slowdown(table, ref.other, ref.metric, p, where))
            else:
                values.append(table.percentile(ref.quantity, p, {**where, "side": side}))
    agg = {"max": np.max, "min": np.min, "mean": np.mean}[ref.aggregate]
    unit = {"slowdown_pct": "%", "slowdown_ratio": "x"}.get(ref.quantity, "ms")
    return Comparison(ref.label, float(agg(values)), ref.study, ref.accept, unit)


def compare_with_study(table: ResultTable) -> list[Comparison]:
    return [evaluate(table, ref) for ref in table.experiment.reference]


def render_comparison(exp: Experiment, rows: list[Comparison]) -> str:
    if not rows:
        return f"{exp.name}: the study states no number for this figure"
    width = max(len(r.label) for r in rows)
    lines = [f"{'':{width}}  {'ttlbsim':>11} {'study':>13} {'difference':>11} accept"]
    for r in rows:
        s = r.study
        study = f"{s[0]:g}–{s[1]:g}" if isinstance(s, tuple) else f"{s:g}"
        verdict = "" if r.passed is None else (
            f"{'pass' if r.passed else 'FAIL'} [{r.accept[0]:g}, {r.accept[1]:g}]")
        diff_unit = {"%": "pt"}.get(r.unit, r.unit)
        prec = 2 if r.unit == "x" else 1
        lines.append(f"{r.label:<{width}}  {r.reproduced:9.{prec}f}{r.unit:<2} {study:>11}{r.unit:<2} "
                     f"{r.difference:+9.{prec}f}{diff_unit:<2} {verdict}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- figure data

def slowdown_rows(table: ResultTable, metric: str = "ttlb_ms") -> list[dict[str, Any]]:
    """Per non-baseline side, per group of cells (e.g. per data size), per percentile: both sides'
    percentile and the slowdown."""
    exp = table.experiment
    rows = []
    for side in exp.sides:
        if side == exp.baseline:
            continue
        for where in groups(table, side):
            for p in exp.percentiles:
                a = table.percentile(metric, p, {**where, "side": exp.baseline})
                b = table.percentile(metric, p, {**where, "side": side})
                row = {"side": side, **{k: str(v) for k, v in where.items()}}
                data = table.select({**where, "side": side})[0].cell.scenario.workload.data_bytes
                row.update(data_kib=data / 1024, percentile=p, metric=metric, baseline_ms=a, side_ms=b,
                           slowdown_pct=100.0 * (b / a - 1.0) if a else math.nan)
                rows.append(row)
    return rows


def cdf_rows(table: ResultTable, metric: str = "ttlb_ms") -> list[dict[str, Any]]:
    """The empirical CDF of `metric` per variant (and side): sorted values with F = i/n."""
    rows = []
    for r in table.results:
        v = np.sort(r.arrays[metric])
        n = len(v)
        for i, x in enumerate(v, 1):
            rows.append({"side": r.cell.side, "variant": r.cell.variant or r.cell.side, "metric": metric,
                         "value_ms": float(x), "cdf": i / n})
    return rows


def figure_rows(table: ResultTable) -> list[dict[str, Any]]:
    kind = table.experiment.figure
    if kind == "handshake_slowdown":
        return slowdown_rows(table, "ttfb_ms")
    if kind == "ttlb_slowdown":
        return slowdown_rows(table, "ttlb_ms")
    if kind == "ttlb_cdf":
        return cdf_rows(table, "ttlb_ms")
    return table.summary_rows()


__all__ = ["FIGURES", "Comparison", "evaluate", "compare_with_study", "render_comparison", "slowdown",
           "slowdown_rows", "cdf_rows", "figure_rows", "groups"]
