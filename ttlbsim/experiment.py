"""Experiment specs: a grid of scenarios in a TOML file, expanded into cells.

An experiment file (see ``models/experiments/fig*.toml``) has these tables; every other key is an
error:

``[experiment]``
    ``name``, ``title``, ``runs`` (per cell), ``seed``, ``percentiles`` (for tables and plots),
    ``figure`` (``handshake_slowdown`` | ``ttlb_slowdown`` | ``ttlb_cdf`` | ``none``: the plot
    :mod:`ttlbsim.plots` draws), ``baseline`` (the side the others are compared with),
    ``pool`` (grid axes whose runs are pooled before percentiles are taken, as the study's Fig. 1
    aggregates loss and RTT), ``notes``.
``[scenario]``
    Scenario options every cell shares, as :meth:`ttlbsim.Scenario.build` takes them
    (``rtt = "200ms"``, ``bandwidth = "1Mbit"``, ``chain_bytes = "16KB"``, ...).
``[sides.NAME]``
    The TLS configurations compared (e.g. ``classical`` and ``pq``); any scenario options.
    Optional: without sides there is one side, ``default``.
``[grid]``
    Axis name = list of values; the cells are the cartesian product. Axis names are scenario
    options (``data``, ``loss``, ``rtt``, ...).
``[[variants]]``
    Optional explicit list of network set-ups, each with a ``label`` and scenario options; crossed
    with the grid and the sides (the study's Fig. 6 compares five unrelated set-ups).
``[reference]``
    The study's published numbers, for side-by-side comparison only (``ttlbsim reproduce``); they
    never enter a computation. ``source`` (text) and ``[[reference.values]]`` entries with
    ``label``, ``quantity`` (``slowdown_pct`` | ``slowdown_ratio`` | ``ttlb_ms`` | ``ttfb_ms``),
    ``metric`` (``ttlb_ms`` | ``ttfb_ms``, for slowdowns), ``side``, ``other`` (for
    ``slowdown_ratio``: side's slowdown / other's slowdown), ``percentiles``, ``where`` (a table of
    axis = value or list of values), ``aggregate`` (``max`` | ``min`` | ``mean``, over the
    matching cells and percentiles), ``study`` (a number, or [low, high] for a range the study
    states) and ``accept`` ([low, high]: the acceptance range of the reproduction).

Every invalid value raises :class:`ExperimentError` (an :class:`~ttlbsim.errors.InvalidValue`)
naming the file, the key and the value.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import InvalidValue
from .paths import models_dir
from .scenario import Scenario

FIGURES = ("handshake_slowdown", "ttlb_slowdown", "ttlb_cdf", "none")
QUANTITIES = ("slowdown_pct", "slowdown_ratio", "ttlb_ms", "ttfb_ms")
AGGREGATES = ("max", "min", "mean")
_EXPERIMENT_KEYS = {"name", "title", "runs", "seed", "percentiles", "figure", "baseline", "pool", "notes"}
_TOP_KEYS = {"experiment", "scenario", "sides", "grid", "variants", "reference"}
_REFERENCE_KEYS = {"source", "values"}
_VALUE_KEYS = {"label", "quantity", "metric", "side", "other", "percentiles", "where", "aggregate", "study", "accept"}


class ExperimentError(InvalidValue):
    """An invalid experiment file: names the file, the key (dotted path) and the value."""

    def __init__(self, path: str | Path, key: str, value: object, accepted: str) -> None:
        super().__init__(key, value, accepted)
        self.path = str(path)
        self.args = (f"{path}: invalid {key} {value!r}: expected {accepted}",)

    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class ReferenceValue:
    """One number the study states, and where in the grid it applies."""

    label: str
    quantity: str
    study: float | tuple[float, float]
    metric: str = "ttlb_ms"
    side: str | None = None
    other: str | None = None
    percentiles: tuple[int, ...] = (50,)
    where: tuple[tuple[str, Any], ...] = ()
    aggregate: str = "max"
    accept: tuple[float, float] | None = None


@dataclass(frozen=True)
class Cell:
    """One scenario of the grid: `runs` connections with `seed`.

    `axes` are the cell's coordinates as written in the file (side, variant label, grid values);
    `key` is a stable hash of the canonical scenario, runs and seed: a rerun skips a cell whose
    key already has a result."""

    index: int
    side: str
    variant: str
    axes: tuple[tuple[str, Any], ...]
    scenario: Scenario
    runs: int
    seed: int
    key: str

    def axis(self, name: str, default: Any = None) -> Any:
        return dict(self.axes).get(name, default)


@dataclass(frozen=True)
class Experiment:
    """A parsed, validated experiment file."""

    name: str
    title: str
    path: str
    runs: int
    seed: int
    percentiles: tuple[int, ...]
    figure: str
    baseline: str | None
    pool: tuple[str, ...]
    scenario: Mapping[str, Any]
    sides: Mapping[str, Mapping[str, Any]]
    grid: tuple[tuple[str, tuple[Any, ...]], ...]
    variants: tuple[tuple[str, Mapping[str, Any]], ...]
    reference_source: str = ""
    reference: tuple[ReferenceValue, ...] = ()
    notes: str = ""
    cells: tuple[Cell, ...] = field(default=(), repr=False)

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.grid)

    def with_runs(self, runs: int) -> "Experiment":
        """The same experiment with another number of runs per cell."""
        return _finish(self.path, {**self._raw(), "runs": runs})

    def _raw(self) -> dict:
        return dict(name=self.name, title=self.title, runs=self.runs, seed=self.seed, percentiles=self.percentiles,
                    figure=self.figure, baseline=self.baseline, pool=self.pool, scenario=self.scenario,
                    sides=self.sides, grid=self.grid, variants=self.variants,
                    reference_source=self.reference_source, reference=self.reference, notes=self.notes)


def cell_key(scenario: Scenario, runs: int, seed: int) -> str:
    """Stable hash of what determines a cell's result: canonical scenario options, runs, seed, the
    ttlbsim version and, for a calibrated host, the profile file's content (results of another
    version or of a refitted profile of the same name are recomputed, not mixed in)."""
    from . import __version__

    doc = {"scenario": scenario.to_options(), "runs": int(runs), "seed": int(seed), "ttlbsim": __version__}
    if scenario.compute.mode == "calibrated":
        from .calibration import load

        doc["calibration_sha256"] = load(scenario.compute.profile).sha256
    text = json.dumps(doc, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def experiments_dir() -> Path:
    return models_dir() / "experiments"


def find_experiment(name_or_path: str | Path) -> Path:
    """A path as given, or the name of a file in models/experiments/ ("fig3")."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        return p
    return experiments_dir() / f"{name_or_path}.toml"


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file; raise ExperimentError naming file, key and value."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ExperimentError(path, "file", str(path), f"a readable TOML file ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(path, "TOML", str(exc), "valid TOML") from None
    return parse_experiment(data, path)


def parse_experiment(data: Mapping[str, Any], path: str | Path = "<experiment>") -> Experiment:
    """Validate a parsed TOML document (a dict) and expand its cells."""
    err = _Errors(path)
    err.keys("", data, _TOP_KEYS)
    exp = data.get("experiment", {})
    err.table("experiment", exp)
    err.keys("experiment", exp, _EXPERIMENT_KEYS)
    raw: dict[str, Any] = {}
    raw["name"] = str(exp.get("name", Path(str(path)).stem))
    raw["title"] = str(exp.get("title", raw["name"]))
    raw["notes"] = str(exp.get("notes", ""))
    raw["runs"] = err.whole("experiment.runs", exp.get("runs", 200), 1)
    raw["seed"] = err.whole("experiment.seed", exp.get("seed", 0), 0)
    pct = exp.get("percentiles", [50, 75, 90])
    if not isinstance(pct, list) or not pct:
        raise ExperimentError(path, "experiment.percentiles", pct, "a non-empty list of percentiles such as [50, 75, 90]")
    raw["percentiles"] = tuple(err.whole("experiment.percentiles", p, 0, 100) for p in pct)
    raw["figure"] = str(exp.get("figure", "none"))
    if raw["figure"] not in FIGURES:
        raise ExperimentError(path, "experiment.figure", raw["figure"], "one of " + ", ".join(FIGURES))

    scen = data.get("scenario", {})
    err.table("scenario", scen)
    sides = data.get("sides", {"default": {}})
    err.table("sides", sides)
    if not sides:
        raise ExperimentError(path, "sides", sides, "at least one [sides.NAME] table")
    for name, opts in sides.items():
        err.table(f"sides.{name}", opts)
    raw["scenario"] = dict(scen)
    raw["sides"] = {k: dict(v) for k, v in sides.items()}
    baseline = exp.get("baseline")
    if baseline is not None and baseline not in sides:
        raise ExperimentError(path, "experiment.baseline", baseline, "one of the sides: " + ", ".join(sides))
    raw["baseline"] = baseline

    grid = data.get("grid", {})
    err.table("grid", grid)
    axes = []
    for k, values in grid.items():
        if not isinstance(values, list):
            values = [values]
        if not values:
            raise ExperimentError(path, f"grid.{k}", values, "a non-empty list of values")
        axes.append((k, tuple(values)))
    raw["grid"] = tuple(axes)

    variants = data.get("variants", [])
    if not isinstance(variants, list):
        raise ExperimentError(path, "variants", variants, "an array of tables [[variants]]")
    vs = []
    for i, v in enumerate(variants):
        err.table(f"variants[{i}]", v)
        if "label" not in v:
            raise ExperimentError(path, f"variants[{i}].label", None, "a label for every variant")
        vs.append((str(v["label"]), {k: x for k, x in v.items() if k != "label"}))
    if len({label for label, _ in vs}) != len(vs):
        raise ExperimentError(path, "variants.label", [label for label, _ in vs], "distinct labels")
    raw["variants"] = tuple(vs)

    pool = exp.get("pool", [])
    if not isinstance(pool, list) or any(p not in grid for p in pool):
        raise ExperimentError(path, "experiment.pool", pool, "a list of grid axes: " + (", ".join(grid) or "(no grid)"))
    raw["pool"] = tuple(pool)

    ref = data.get("reference", {})
    err.table("reference", ref)
    err.keys("reference", ref, _REFERENCE_KEYS)
    raw["reference_source"] = str(ref.get("source", ""))
    raw["reference"] = tuple(_reference_value(err, i, v, raw) for i, v in enumerate(ref.get("values", [])))
    return _finish(path, raw)


def _finish(path: str | Path, raw: dict) -> Experiment:
    exp = Experiment(path=str(path), **raw)
    return Experiment(**{**exp.__dict__, "cells": tuple(expand(exp))})


def expand(exp: Experiment) -> list[Cell]:
    """The cells: sides × variants × grid product, in that (stable) order."""
    names = [k for k, _ in exp.grid]
    points = list(itertools.product(*[v for _, v in exp.grid])) if exp.grid else [()]
    variants = exp.variants or (("", {}),)
    cells = []
    for side, side_opts in exp.sides.items():
        for label, v_opts in variants:
            for point in points:
                opts = {**exp.scenario, **side_opts, **v_opts, **dict(zip(names, point))}
                scenario = _build(exp, side, label, names, point, opts)
                axes = (("side", side),) + ((("variant", label),) if exp.variants else ()) + tuple(zip(names, point))
                cells.append(Cell(index=len(cells), side=side, variant=label, axes=axes, scenario=scenario,
                                  runs=exp.runs, seed=exp.seed, key=cell_key(scenario, exp.runs, exp.seed)))
    return cells


def _build(exp: Experiment, side: str, label: str, names: list[str], point: tuple, opts: dict) -> Scenario:
    try:
        return Scenario.build(**opts)
    except InvalidValue as exc:
        # name the table the bad value came from
        key = exc.field
        if key == "option":
            where = _origin(exp, side, label, names, str(exc.value))
            raise ExperimentError(exp.path, "key", where, exc.accepted) from None
        where = _origin(exp, side, label, names, key)
        value = opts.get(key, exc.value)
        raise ExperimentError(exp.path, where, value, exc.accepted) from None


def _origin(exp: Experiment, side: str, label: str, names: list[str], key: str) -> str:
    if key in names:
        return f"grid.{key}"
    if label and key in dict(exp.variants).get(label, {}):
        return f"variants[{label!r}].{key}"
    if key in exp.sides.get(side, {}):
        return f"sides.{side}.{key}"
    if key in exp.scenario:
        return f"scenario.{key}"
    return key


def _reference_value(err: "_Errors", i: int, v: Any, raw: dict) -> ReferenceValue:
    where = f"reference.values[{i}]"
    err.table(where, v)
    err.keys(where, v, _VALUE_KEYS)
    for req in ("label", "quantity", "study"):
        if req not in v:
            raise ExperimentError(err.path, f"{where}.{req}", None, f"a {req} for every reference value")
    if v["quantity"] not in QUANTITIES:
        raise ExperimentError(err.path, f"{where}.quantity", v["quantity"], "one of " + ", ".join(QUANTITIES))
    metric = v.get("metric", "ttlb_ms")
    if metric not in ("ttlb_ms", "ttfb_ms"):
        raise ExperimentError(err.path, f"{where}.metric", metric, "ttlb_ms or ttfb_ms")
    side = v.get("side")
    if side is not None and side not in raw["sides"]:
        raise ExperimentError(err.path, f"{where}.side", side, "one of the sides: " + ", ".join(raw["sides"]))
    other = v.get("other")
    if v["quantity"] == "slowdown_ratio" and other not in raw["sides"]:
        raise ExperimentError(err.path, f"{where}.other", other, "the side whose slowdown divides side's: one of "
                              + ", ".join(raw["sides"]))
    agg = v.get("aggregate", "max")
    if agg not in AGGREGATES:
        raise ExperimentError(err.path, f"{where}.aggregate", agg, "one of " + ", ".join(AGGREGATES))
    pct = v.get("percentiles", [50])
    pct = pct if isinstance(pct, list) else [pct]
    study = v["study"]
    if isinstance(study, list):
        if len(study) != 2 or not all(isinstance(x, (int, float)) for x in study):
            raise ExperimentError(err.path, f"{where}.study", study, "a number or [low, high]")
        study = (float(study[0]), float(study[1]))
    elif isinstance(study, (int, float)) and not isinstance(study, bool):
        study = float(study)
    else:
        raise ExperimentError(err.path, f"{where}.study", study, "a number or [low, high]")
    accept = v.get("accept")
    if accept is not None:
        if not (isinstance(accept, list) and len(accept) == 2 and all(isinstance(x, (int, float)) for x in accept)):
            raise ExperimentError(err.path, f"{where}.accept", accept, "[low, high]")
        accept = (float(accept[0]), float(accept[1]))
    w = v.get("where", {})
    err.table(f"{where}.where", w)
    axes = {"side", "variant", *(k for k, _ in raw["grid"])}
    for k in w:
        if k not in axes:
            raise ExperimentError(err.path, f"{where}.where.{k}", w[k], "an axis of the grid: " + ", ".join(sorted(axes)))
    return ReferenceValue(label=str(v["label"]), quantity=v["quantity"], study=study, metric=metric, side=side, other=other,
                          percentiles=tuple(err.whole(f"{where}.percentiles", p, 0, 100) for p in pct),
                          where=tuple(w.items()), aggregate=agg, accept=accept)


class _Errors:
    def __init__(self, path: str | Path) -> None:
        self.path = path

    def keys(self, where: str, table: Mapping, allowed: set[str]) -> None:
        for k in table:
            if k not in allowed:
                name = f"{where}.{k}" if where else k
                raise ExperimentError(self.path, "key", name, "one of " + ", ".join(sorted(allowed))
                                      + (f" in [{where}]" if where else " at the top level"))

    def table(self, where: str, value: Any) -> None:
        if not isinstance(value, Mapping):
            raise ExperimentError(self.path, where, value, "a table")

    def whole(self, where: str, value: Any, low: int, high: int | None = None) -> int:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)
        if not ok:
            rng = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise ExperimentError(self.path, where, value, f"a whole number {rng}")
        return int(value)


def matches(cell: Cell, where: Mapping[str, Any] | tuple) -> bool:
    """Does `cell` lie in `where` (axis = value or list of values; values compared canonically,
    so "200KiB" matches 204800 and "10%" matches 0.1)?"""
    for k, want in dict(where).items():
        wants = want if isinstance(want, list) else [want]
        if k == "side":
            ok = cell.side in wants
        elif k == "variant":
            ok = cell.variant in wants
        else:
            have = cell.scenario.to_options().get(k)
            ok = any(_canonical(cell.scenario, k, w) == have for w in wants)
        if not ok:
            return False
    return True


def _canonical(scenario: Scenario, key: str, value: Any) -> Any:
    try:
        return scenario.replace(**{key: value}).to_options().get(key)
    except InvalidValue:
        return object()


__all__ = ["Experiment", "Cell", "ReferenceValue", "ExperimentError", "load_experiment", "parse_experiment",
           "find_experiment", "expand", "cell_key", "matches", "experiments_dir"]
