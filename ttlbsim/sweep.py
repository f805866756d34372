"""Run an experiment's cells on a local process pool or a Dask cluster, write results as they
complete, resume after a crash.

Layout of an output directory::

    DIR/cells/<key>.json     one file per finished cell (written atomically: the durable record)
    DIR/summary.csv          one row per cell: coordinates, canonical scenario, percentiles
    DIR/runs.csv             one row per simulated connection
    DIR/summary.parquet, DIR/runs.parquet    the same tables, when pyarrow is installed

`<key>` is :func:`ttlbsim.experiment.cell_key` (canonical scenario + runs + seed), so a rerun into
the same directory skips every cell already there and computes only the rest; a sweep killed at
any point loses at most the cells that were running. The tables are rewritten (atomically) as
cells finish and once more at the end, always in the experiment's cell order, so the files depend
only on the cells' results: the same seed gives byte-identical files with any executor, any number
of workers and any interruption history.

Everything that could differ between processes or machines is fixed in the driver before a cell is
sent out: the handshake profile is built once and shipped with the cell, and measured compute
times (``compute = "measured"``) are measured here and shipped as explicit times.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np

from .errors import InvalidValue, TTLBSimError
from .experiment import Cell, Experiment, matches
from .handshake.profile import HandshakeProfile
from .result import METRICS
from .scenario import ComputeConfig, Scenario

CELL_SCHEMA = 1
TABLE_REWRITE_S = 5.0


# --------------------------------------------------------------------------- executors

Task = tuple  # positional arguments of the task function


class Executor(Protocol):
    """The seam between the sweep and where cells run: `run` yields (task index, result) in
    completion order; `close` releases workers."""

    def run(self, fn: Callable[..., Any], tasks: Sequence[Task]) -> Iterator[tuple[int, Any]]: ...

    def close(self) -> None: ...


class InlineExecutor:
    """Runs every task in this process, in order (tests, debugging, one core)."""

    def run(self, fn, tasks):
        for i, t in enumerate(tasks):
            yield i, fn(*t)

    def close(self) -> None:
        pass


class LocalExecutor:
    """A ProcessPoolExecutor with `workers` processes (default: the CPU count)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    def run(self, fn, tasks):
        if not tasks:
            return
        self._pool = self._pool or ProcessPoolExecutor(max_workers=self.workers)
        pending = {self._pool.submit(fn, *t): i for i, t in enumerate(tasks)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in sorted(done, key=pending.get):
                    i = pending.pop(f)
                    yield i, f.result()
        finally:
            for f in pending:
                f.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DaskExecutor:
    """Cells as Dask tasks: ``address="local"`` starts a `distributed.LocalCluster` of `workers`
    single-threaded worker processes; ``"tcp://host:port"`` joins a running scheduler (its workers
    need the same ttlbsim version installed)."""

    def __init__(self, address: str = "local", workers: int | None = None) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise TTLBSimError('--dask needs dask.distributed: pip install "ttlbsim[dist]"') from None
        self.address = address
        self._cluster = None
        if address == "local":
            self._cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                         processes=True, dashboard_address=None, silence_logs=40)
            self.client = Client(self._cluster)
        else:
            try:
                self.client = Client(address, timeout="20s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise TTLBSimError(f"cannot reach the Dask scheduler at {address!r}: {exc}") from None

    def run(self, fn, tasks):
        from distributed import as_completed

        if not tasks:
            return
        futures = [self.client.submit(fn, *t, pure=False) for t in tasks]
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for f in as_completed(futures):
                yield index[f.key], f.result()
        finally:
            for f in futures:
                f.cancel()

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(dask: str | None = None, workers: int | None = None) -> Executor:
    """`dask=None`: a local process pool (inline with one worker); "local" or an address: Dask."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InvalidValue("--workers", workers, "a whole number >= 1")
    if dask:
        return DaskExecutor(dask, workers)
    if workers == 1:
        return InlineExecutor()
    return LocalExecutor(workers)


# --------------------------------------------------------------------------- one cell

def prepare(cell: Cell) -> tuple[Scenario, HandshakeProfile, dict[str, float]]:
    """What a worker needs, fixed here: the scenario with measured compute times made explicit,
    and the handshake profile."""
    from .compute import resolve
    from .simulate import handshake_profile

    scenario = cell.scenario
    profile = handshake_profile(scenario)
    times: dict[str, float] = {}
    if scenario.compute.mode in ("measured", "calibrated"):
        compute = resolve(scenario.compute, profile.all_ops)
        times = dict(compute.times_s)
        scenario = dataclasses.replace(scenario, compute=compute)
    return scenario, profile, times


def run_cell(scenario: Scenario, profile: HandshakeProfile, runs: int, seed: int) -> dict[str, list]:
    """Simulate one cell (runs in a worker); per-run values as plain lists."""
    from .simulate import simulate

    result = simulate(scenario, runs=runs, seed=seed, profile=profile)
    return {m: result.arrays[m].tolist() for m in METRICS}


# --------------------------------------------------------------------------- results

@dataclasses.dataclass(frozen=True)
class CellResult:
    cell: Cell
    arrays: dict[str, np.ndarray]
    compute_s: dict[str, float]
    handshake: dict[str, int]


class ResultTable:
    """The finished cells of an experiment, in cell order."""

    def __init__(self, experiment: Experiment, results: Sequence[CellResult]) -> None:
        self.experiment = experiment
        self.results = tuple(results)

    def __len__(self) -> int:
        return len(self.results)

    @property
    def complete(self) -> bool:
        return len(self.results) == len(self.experiment.cells)

    def select(self, where: dict | tuple = ()) -> list[CellResult]:
        return [r for r in self.results if matches(r.cell, where)]

    def values(self, metric: str, where: dict | tuple = ()) -> np.ndarray:
        """Every run's `metric` over the matching cells (pooled)."""
        parts = [r.arrays[metric] for r in self.select(where)]
        if not parts:
            raise TTLBSimError(f"no cell of {self.experiment.name} matches {dict(where)}")
        return np.concatenate(parts)

    def percentile(self, metric: str, p: float, where: dict | tuple = ()) -> float:
        return float(np.percentile(self.values(metric, where), p))

    # tables -------------------------------------------------------------------------------
    def _coords(self, r: CellResult) -> dict[str, Any]:
        c, s = r.cell, r.cell.scenario
        row: dict[str, Any] = {"cell": c.key, "index": c.index, "side": c.side}
        if self.experiment.variants:
            row["variant"] = c.variant
        for k, _ in self.experiment.grid:
            row[k] = str(c.axis(k))
        n = s.network
        row.update(kex=s.tls.kex, sig=s.tls.sig, chain_bytes=-1 if s.tls.chain_bytes is None else s.tls.chain_bytes,
                   rtt_ms=n.rtt_s * 1e3, bandwidth_bps=-1.0 if n.bandwidth_bps is None else float(n.bandwidth_bps),
                   loss=n.loss, jitter_ms=n.jitter_s * 1e3, jitter_dist=n.jitter_dist, initcwnd=s.tcp.initcwnd,
                   data_bytes=s.workload.data_bytes)
        return row

    def summary_rows(self) -> list[dict[str, Any]]:
        rows = []
        pct = sorted(set(self.experiment.percentiles) | {10, 50, 90, 99})
        for r in self.results:
            row = self._coords(r)
            row.update(runs=r.cell.runs, seed=r.cell.seed)
            for m in ("ttfb_ms", "ttlb_ms"):
                a = r.arrays[m]
                for p in pct:
                    row[f"{m[:-3]}_p{p}_ms"] = float(np.percentile(a, p))
                row[f"{m[:-3]}_mean_ms"] = float(a.mean())
            for m in ("retransmits", "rtos", "tlps"):
                row[f"{m}_mean"] = float(r.arrays[m].mean())
            row["server_handshake_bytes"] = r.handshake.get("server", 0)
            rows.append(row)
        return rows

    def run_rows(self) -> Iterator[dict[str, Any]]:
        for r in self.results:
            coords = self._coords(r)
            for i in range(r.cell.runs):
                yield {**coords, "run": i, **{m: r.arrays[m][i].item() for m in METRICS}}


def load_cell(path: Path, cell: Cell) -> CellResult | None:
    """A finished cell's record, or None if missing, unreadable or not this cell's."""
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if d.get("schema") != CELL_SCHEMA or d.get("key") != cell.key or d.get("runs") != cell.runs:
        return None
    try:
        arrays = {m: np.asarray(d["arrays"][m], dtype=np.float64 if m.endswith("_ms") else np.int64) for m in METRICS}
    except (KeyError, TypeError, ValueError):
        return None
    if any(len(a) != cell.runs for a in arrays.values()):
        return None
    return CellResult(cell=cell, arrays=arrays, compute_s=d.get("compute_s", {}), handshake=d.get("handshake", {}))


def _atomic_write(path: Path, data: bytes | str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_cell(out: Path, cell: Cell, arrays: dict[str, list], compute_s: dict[str, float],
              profile: HandshakeProfile) -> CellResult:
    handshake = {"client": profile.bytes_sent("client"), "server": profile.bytes_sent("server")}
    record = {"schema": CELL_SCHEMA, "key": cell.key, "index": cell.index, "side": cell.side,
              "variant": cell.variant, "axes": [[k, v] for k, v in cell.axes], "runs": cell.runs,
              "seed": cell.seed, "scenario": cell.scenario.to_options(), "compute_s": compute_s,
              "handshake": handshake, "arrays": arrays}
    _atomic_write(out / "cells" / f"{cell.key}.json", json.dumps(record, sort_keys=True, default=str))
    result = load_cell(out / "cells" / f"{cell.key}.json", cell)
    assert result is not None
    return result


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ""
    s = str(v)
    if any(ch in s for ch in ',"\n'):
        return '"' + s.replace('"', '""') + '"'
    return s


def _csv(rows: Iterable[dict[str, Any]]) -> str:
    lines: list[str] = []
    header: list[str] | None = None
    for row in rows:
        if header is None:
            header = list(row)
            lines.append(",".join(header))
        lines.append(",".join(_fmt(row[k]) for k in header))
    return "\n".join(lines) + "\n" if lines else ""


def have_parquet() -> bool:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def _parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    if not rows:
        return
    table = pa.Table.from_pylist(rows)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", store_schema=False)
    _atomic_write(path, buf.getvalue())


def write_tables(out: Path, table: ResultTable) -> list[Path]:
    """summary/runs as CSV (always) and Parquet (with pyarrow); returns the files written."""
    summary = table.summary_rows()
    runs = list(table.run_rows())
    written = []
    for name, rows in (("summary", summary), ("runs", runs)):
        _atomic_write(out / f"{name}.csv", _csv(rows))
        written.append(out / f"{name}.csv")
        if have_parquet():
            _parquet(out / f"{name}.parquet", rows)
            written.append(out / f"{name}.parquet")
    return written


# --------------------------------------------------------------------------- progress

class Progress:
    """A one-line progress bar with ETA on stderr (a line every few seconds when not a TTY)."""

    def __init__(self, label: str, total: int, resumed: int, stream=None, enabled: bool = True) -> None:
        self.label, self.total, self.resumed = label, total, resumed
        self.done = resumed
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.t0 = time.monotonic()
        self._last = 0.0
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (self.tty or now - self._last >= 5.0 or self.done == self.total):
            self._last = now
            self._draw(now)

    def start(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())

    def _draw(self, now: float) -> None:
        frac = self.done / self.total if self.total else 1.0
        width = 24
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        elapsed = now - self.t0
        new = self.done - self.resumed
        left = self.total - self.done
        eta = _clock(elapsed / new * left) if new and left else ("0:00" if not left else "?")
        text = (f"{self.label} [{bar}] {self.done}/{self.total} cells {frac:4.0%}"
                + (f" ({self.resumed} resumed)" if self.resumed else "")
                + f"  {_clock(elapsed)} elapsed, ETA {eta}")
        end = "\n" if (not self.tty or self.done == self.total) else ""
        self.stream.write(("\r" if self.tty else "") + text + end)
        self.stream.flush()


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# --------------------------------------------------------------------------- the sweep

def run_sweep(experiment: Experiment, out: str | Path, *, executor: Executor | None = None,
              progress: bool = True, on_cell: Callable[[CellResult], None] | None = None) -> ResultTable:
    """Run every cell of `experiment` not already in `out`, writing each as it finishes; return
    the full table (in cell order). `on_cell` is called after each new cell is saved."""
    out = Path(out)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    done: dict[str, CellResult] = {}
    for cell in experiment.cells:
        r = load_cell(out / "cells" / f"{cell.key}.json", cell)
        if r is not None:
            done[cell.key] = r
    todo = [c for c in experiment.cells if c.key not in done]
    bar = Progress(f"sweep {experiment.name}", len(experiment.cells), len(done), enabled=progress)
    own = executor is None
    executor = executor or make_executor()
    prepared = [prepare(c) for c in todo]
    tasks = [(scen, prof, c.runs, c.seed) for c, (scen, prof, _) in zip(todo, prepared)]
    last_write = time.monotonic()

    def table() -> ResultTable:
        return ResultTable(experiment, [done[c.key] for c in experiment.cells if c.key in done])

    bar.start()
    try:
        for i, arrays in executor.run(run_cell, tasks):
            cell, (_, profile, times) = todo[i], prepared[i]
            done[cell.key] = save_cell(out, cell, arrays, times, profile)
            bar.update()
            if time.monotonic() - last_write >= TABLE_REWRITE_S:
                write_tables(out, table())
                last_write = time.monotonic()
            if on_cell is not None:
                on_cell(done[cell.key])
    finally:
        if own:
            executor.close()
        if done:
            write_tables(out, table())
    return table()


def load_table(experiment: Experiment, out: str | Path) -> ResultTable:
    """The cells of `experiment` already in `out` (no simulation)."""
    out = Path(out)
    results = []
    for cell in experiment.cells:
        r = load_cell(out / "cells" / f"{cell.key}.json", cell)
        if r is not None:
            results.append(r)
    return ResultTable(experiment, results)


__all__ = ["run_sweep", "load_table", "ResultTable", "CellResult", "Executor", "InlineExecutor", "LocalExecutor",
           "DaskExecutor", "make_executor", "write_tables", "have_parquet", "prepare", "run_cell"]
