"""The study's figure types with matplotlib (imported only when a figure is drawn).

- ``handshake_slowdown`` (Fig. 1): bars of the handshake-time % increase per percentile, one bar
  per PQ side (8 KB and 16 KB chain).
- ``ttlb_slowdown`` (Figs. 2–5): TTLB % increase vs response size, one line per percentile.
- ``ttlb_cdf`` (Fig. 6): TTLB CDF per network set-up.

Each figure is written as PNG and SVG together with the CSV of the numbers drawn
(:func:`ttlbsim.reproduce.figure_rows`).

Emulation overlay: when ``validation/data/<experiment name>/runs.csv`` exists (or a file is passed
as `emulation`), its runs are drawn next to the simulated ones (dashed lines / hatched bars). The
file has one row per emulated connection, with a header, in the same columns as a sweep's
``runs.csv``; the ones read are:

- ``side``: the experiment's side names (``classical``, ``pq``, ``pq-8KB``, ...);
- ``data_bytes``: the response size in bytes (slowdown-vs-size figures);
- ``variant``: the variant label (CDF figures; omit or leave empty for the others);
- ``ttfb_ms``, ``ttlb_ms``: handshake time and time to last byte in milliseconds.

Other columns are ignored. Rows of Fig. 1 are pooled over every network condition, as there.
"""

from __future__ import annotations

import csv
import math
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from .errors import TTLBSimError
from .paths import models_dir
from .reproduce import figure_rows
from .sweep import ResultTable, _atomic_write, _csv


def emulation_file(name: str) -> Path | None:
    """validation/data/<name>/runs.csv of a source checkout, if present."""
    for base in (models_dir().parent / "validation" / "data", Path("validation") / "data"):
        p = base / name / "runs.csv"
        if p.is_file():
            return p
    return None


def load_emulation(path: str | Path) -> list[dict[str, Any]]:
    """Rows of an emulation runs.csv (see the module docstring)."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise TTLBSimError(f"cannot read emulation data {path}: {exc.strerror}") from None
    need = {"side", "ttfb_ms", "ttlb_ms"}
    if rows and not need <= set(rows[0]):
        raise TTLBSimError(f"emulation data {path}: missing column(s) {', '.join(sorted(need - set(rows[0])))}")
    out = []
    for i, r in enumerate(rows, 2):
        try:
            out.append({"side": r["side"], "variant": r.get("variant") or "",
                        "data_bytes": int(float(r.get("data_bytes") or 0)),
                        "ttfb_ms": float(r["ttfb_ms"]), "ttlb_ms": float(r["ttlb_ms"])})
        except ValueError:
            raise TTLBSimError(f"emulation data {path}, line {i}: not a number in {r}") from None
    return out


def emulation_slowdown(rows: list[dict], baseline: str, percentiles, metric: str, by_size: bool) -> list[dict]:
    """Slowdown per side (and response size), per percentile, from emulated runs."""
    vals: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        vals[(r["side"], r["data_bytes"] if by_size else 0)].append(r[metric])
    out = []
    for (side, size), v in sorted(vals.items()):
        base = vals.get((baseline, size))
        if side == baseline or not base:
            continue
        for p in percentiles:
            a, b = float(np.percentile(base, p)), float(np.percentile(v, p))
            out.append({"side": side, "data_kib": size / 1024, "percentile": p,
                        "slowdown_pct": 100.0 * (b / a - 1.0) if a else math.nan})
    return out


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise TTLBSimError('figures need matplotlib: pip install "ttlbsim[sweep]"') from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "ttlbsim"
    return plt


def draw(table: ResultTable, out_dir: str | Path, name: str | None = None,
         emulation: str | Path | None = None) -> list[Path]:
    """Draw the experiment's figure into out_dir as NAME.png, NAME.svg and NAME.csv."""
    exp = table.experiment
    name = name or exp.name
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = figure_rows(table)
    _atomic_write(out_dir / f"{name}.csv", _csv(rows))
    written = [out_dir / f"{name}.csv"]
    if exp.figure == "none":
        return written
    emu_path = emulation or emulation_file(exp.name)
    emu = load_emulation(emu_path) if emu_path else []
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    if exp.figure == "handshake_slowdown":
        _bars(ax, exp, rows, emu)
    elif exp.figure == "ttlb_slowdown":
        _lines(ax, exp, rows, emu)
    else:
        _cdf(ax, exp, table, emu)
    ax.set_title("\n".join(textwrap.wrap(exp.title, 80)), fontsize=9)
    runs = sorted({r.cell.runs for r in table.results})
    fig.text(0.99, 0.01, f"ttlbsim, {'/'.join(map(str, runs))} runs per cell, seed {exp.seed}"
             + (" (dashed/hatched: emulation)" if emu else ""), ha="right", va="bottom", fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    for ext in ("png", "svg"):
        path = out_dir / f"{name}.{ext}"
        fig.savefig(path, metadata={"Date": None} if ext == "svg" else {"Software": None})
        written.append(path)
    plt.close(fig)
    return written


def _bars(ax, exp, rows, emu) -> None:
    sides = [s for s in exp.sides if s != exp.baseline]
    pct = list(exp.percentiles)
    n = len(sides) * (2 if emu else 1)
    width = 0.8 / n
    em = emulation_slowdown(emu, exp.baseline, pct, "ttfb_ms", by_size=False) if emu else []
    for j, side in enumerate(sides):
        vals = [next(r["slowdown_pct"] for r in rows if r["side"] == side and r["percentile"] == p) for p in pct]
        xs = [i + (j * (2 if emu else 1)) * width - 0.4 + width / 2 for i in range(len(pct))]
        bars = ax.bar(xs, vals, width, label=f"{side} (simulated)", color=f"C{j}")
        ax.bar_label(bars, fmt="%.0f%%", fontsize=7)
        if emu:
            ev = [next((r["slowdown_pct"] for r in em if r["side"] == side and r["percentile"] == p), math.nan)
                  for p in pct]
            ax.bar([x + width for x in xs], ev, width, label=f"{side} (emulated)", color=f"C{j}", alpha=0.45,
                   hatch="//")
    ax.set_xticks(range(len(pct)), [f"p{p}" for p in pct])
    ax.set_ylabel("handshake time % increase")
    ax.set_xlabel("percentile")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def _lines(ax, exp, rows, emu) -> None:
    em = emulation_slowdown(emu, exp.baseline, exp.percentiles, "ttlb_ms", by_size=True) if emu else []
    sides = [s for s in exp.sides if s != exp.baseline]
    markers, styles = "os^vD", ("-", ":", "-.", (0, (5, 1)), (0, (1, 3)))
    for j, p in enumerate(exp.percentiles):
        for k, side in enumerate(sides):
            pts = sorted((r["data_kib"], r["slowdown_pct"]) for r in rows if r["percentile"] == p and r["side"] == side)
            label = f"p{p}" + (f" {side}" if len(sides) > 1 else "")
            # sides apart by marker and line style (lossless percentiles coincide, so lines overlap)
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker=markers[k % 5], ms=4, ls=styles[k % 5],
                    color=f"C{j}", label=label)
            if em:
                ep = sorted((r["data_kib"], r["slowdown_pct"]) for r in em if r["percentile"] == p and r["side"] == side)
                ax.plot([x for x, _ in ep], [y for _, y in ep], ls="--", marker="o", mfc="none", ms=4,
                        color=f"C{j}", label=label + " (emulated)")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xlabel("data from the server (KiB)")
    ax.set_ylabel("TTLB % increase (PQ over classical)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def _cdf(ax, exp, table, emu) -> None:
    for j, r in enumerate(table.results):
        v = np.sort(r.arrays["ttlb_ms"])
        ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", color=f"C{j}", label=r.cell.variant or r.cell.side)
        ev = np.sort([e["ttlb_ms"] for e in emu if (e["variant"] or e["side"]) == (r.cell.variant or r.cell.side)])
        if len(ev):
            ax.step(ev, np.arange(1, len(ev) + 1) / len(ev), where="post", ls="--", color=f"C{j}",
                    label=(r.cell.variant or r.cell.side) + " (emulated)")
    ax.set_xscale("log")
    ax.set_xlabel("TTLB (ms, log scale)")
    ax.set_ylabel("CDF")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3, which="both")


__all__ = ["draw", "load_emulation", "emulation_file", "emulation_slowdown"]
