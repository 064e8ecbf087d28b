"""PNG plots of ``mentor report``: accuracy vs parameters over several runs, reliability
diagrams and confusion matrices. Same conventions as :mod:`mentor.report.plots` (Agg
figures, no pyplot state, atomic writes)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .plots import _MARKERS, _new_figure, _num, _palette, _placeholder, _save, _unique

__all__ = ["accuracy_vs_params_runs", "confusion_heatmaps", "reliability_diagrams"]


def _clip(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def accuracy_vs_params_runs(points: list[dict], teachers: list[dict], path: Path,
                            methods: list[str] | None = None) -> Path:
    """Test accuracy (mean ± std error bars) vs parameters of every result row of every run.

    ``points``: ``{"group": "run / setting", "method", "params", "mean", "std"}``;
    ``teachers``: ``{"label", "params", "accuracy"}`` drawn as numbered stars, named in the
    legend. Colour = method,
    marker = run / setting; log x axis. ``methods`` orders the colours (as the other plots
    of the page: results rows' order). Returns ``path``.
    """
    from matplotlib.lines import Line2D

    points = [p for p in points if _num(p.get("params")) and _num(p.get("mean")) is not None]
    teachers = [t for t in teachers
                if _num(t.get("params")) and _num(t.get("accuracy")) is not None]
    if not points and not teachers:
        return _placeholder(path, "no parameter counts to plot")
    every = _unique([*(methods or []), *(str(p["method"]) for p in points)])
    colors = dict(zip(every, _palette(len(every))))
    present = {str(p["method"]) for p in points}
    methods = [m for m in every if m in present]
    groups = _unique(str(p["group"]) for p in points)
    markers = {g: _MARKERS[i % len(_MARKERS)] for i, g in enumerate(groups)}
    n_legend = len(methods) + len(groups) + len(teachers)
    fig = _new_figure(10.0, max(4.8, 0.19 * n_legend + 0.9))  # room for every legend entry
    ax = fig.add_subplot()
    dodge = {m: 10 ** (0.03 * (i - (len(methods) - 1) / 2)) for i, m in enumerate(methods)}
    for p in points:
        ax.errorbar(_num(p["params"]) * dodge[str(p["method"])], 100 * _num(p["mean"]),
                    yerr=100 * (_num(p.get("std")) or 0.0), fmt=markers[str(p["group"])],
                    color=colors[str(p["method"])], ms=7, capsize=3, lw=1.2, mec="white",
                    mew=0.6, alpha=0.9)
    # teachers are numbered on the plot and named in the legend; equal points share a star
    at: dict[tuple[float, float], list[int]] = {}
    for i, t in enumerate(teachers, 1):
        at.setdefault((_num(t["params"]), 100 * _num(t["accuracy"])), []).append(i)
    for (x, y), numbers in at.items():
        ax.scatter([x], [y], marker="*", s=260, color="gold", edgecolors="black",
                   linewidths=0.8, zorder=5)
        note = ax.annotate(",".join(map(str, numbers)), (x, y), textcoords="offset points",
                           xytext=(7, 4), fontsize=8, color="0.2", fontweight="bold")
        note.set_in_layout(False)
    ax.set_xscale("log")
    ax.set_xlabel("parameters (log scale; methods slightly offset for legibility)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Test accuracy vs parameters, every run", fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.margins(x=0.15, y=0.12)
    handles = [Line2D([], [], ls="", marker="o", color=colors[m], ms=7, label=m)
               for m in methods]
    handles += [Line2D([], [], ls="", marker=markers[g], color="0.35", ms=7,
                       label=_clip(g)) for g in groups]
    handles += [Line2D([], [], ls="", marker="*", color="gold", mec="black", ms=12,
                       label=_clip(f"teacher {i}: {t['label']}"))
                for i, t in enumerate(teachers, 1)]
    fig.legend(handles=handles, loc="outside right center", frameon=False, fontsize=8)
    return _save(fig, path)


def reliability_diagrams(panels: list[dict], path: Path, title: str = "") -> Path:
    """One reliability diagram per model: bars = accuracy of each equal-width confidence
    bin, the count of predictions printed above each bar, the diagonal = perfect
    calibration, dots = the bin's mean confidence.

    ``panels``: ``{"title", "bins"}`` with ``bins`` from
    :func:`mentor.report.calibration.reliability_bins`. Returns ``path``.
    """
    if not panels:
        return _placeholder(path, "nothing to plot")
    ncols = min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)
    fig = _new_figure(3.3 * ncols + 0.3, 3.4 * nrows + (0.4 if title else 0.0))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    for i, panel in enumerate(panels):
        ax = axes[i // ncols][i % ncols]
        b = panel["bins"]
        edges = np.asarray(b["edges"], dtype=float)
        width = edges[1:] - edges[:-1]
        centers = (edges[1:] + edges[:-1]) / 2
        acc = np.array([np.nan if a is None else a for a in b["accuracy"]], dtype=float)
        conf = np.array([np.nan if c is None else c for c in b["confidence"]], dtype=float)
        ax.plot([0, 1], [0, 1], ls="--", color="0.55", lw=1, zorder=1)
        ax.bar(centers, np.nan_to_num(acc), width=width * 0.92, color="#4c78a8",
               edgecolor="#2f4b6e", lw=0.6, zorder=2, label="accuracy")
        ax.scatter(conf, acc, s=12, color="#e45756", zorder=3, label="mean confidence")
        for x, a, n in zip(centers, acc, b["counts"]):
            if n:
                ax.text(x, (0 if np.isnan(a) else a) + 0.02, str(n), ha="center",
                        va="bottom", fontsize=7, color="0.25", rotation=90 if n >= 1000
                        else 0)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.12)
        ax.set_title(f"{panel['title']}\nECE {100 * b['ece']:.2f} % · {b['n']} predictions",
                     fontsize=9)
        ax.set_xlabel("confidence (max probability)", fontsize=8)
        if i % ncols == 0:
            ax.set_ylabel("accuracy in bin", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.25)
    for j in range(len(panels), nrows * ncols):
        axes[j // ncols][j % ncols].set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def confusion_heatmaps(items: list[dict], path: Path, title: str = "") -> Path:
    """Confusion matrices side by side: rows = true class, columns = predicted class,
    colour = share of the true class's rows, counts written in cells (up to 20 classes).

    ``items``: ``{"title", "matrix"}`` with ``matrix`` a (C, C) count array; ``class_names``
    optional. Returns ``path``.
    """
    if not items:
        return _placeholder(path, "nothing to plot")
    k = max(np.asarray(it["matrix"]).shape[0] for it in items)
    side = min(max(2.6, 0.26 * k + 1.5), 6.0)
    ncols = min(len(items), 3)
    nrows = math.ceil(len(items) / ncols)
    fig = _new_figure(side * ncols + 0.9, side * nrows + (0.5 if title else 0.2))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    image = None
    for i, it in enumerate(items):
        ax = axes[i // ncols][i % ncols]
        m = np.asarray(it["matrix"], dtype=float)
        rows = m.sum(axis=1, keepdims=True)
        share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
        image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        n = m.shape[0]
        if n <= 20:
            for r in range(n):
                for c in range(n):
                    if m[r, c]:
                        ax.text(c, r, f"{int(m[r, c])}", ha="center", va="center",
                                fontsize=8 if n <= 10 else 6,
                                color="white" if share[r, c] > 0.55 else "#1d2330")
        ticks = np.arange(n) if n <= 20 else np.arange(0, n, max(1, n // 10))
        names = it.get("class_names")
        ax.set_xticks(ticks, [str(names[t]) if names else str(t) for t in ticks], fontsize=7)
        ax.set_yticks(ticks, [str(names[t]) if names else str(t) for t in ticks], fontsize=7)
        ax.set_xlabel("predicted class", fontsize=8)
        ax.set_ylabel("true class", fontsize=8)
        ax.set_title(it["title"], fontsize=9)
    for j in range(len(items), nrows * ncols):
        axes[j // ncols][j % ncols].set_axis_off()
    if image is not None:
        bar = fig.colorbar(image, ax=axes, shrink=0.8, pad=0.02)
        bar.set_label("share of the true class's rows", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)
