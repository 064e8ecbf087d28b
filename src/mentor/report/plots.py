"""PNG plots for a run report.

Figures are built as :class:`matplotlib.figure.Figure` objects rendered by
the Agg canvas directly, so pyplot's global state is never touched and no
display is needed.
"""

from __future__ import annotations

import math
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ._fmt import grouped_rows, setting_descriptions
from .._util.atomic import atomic_path

__all__ = ["learning_curves", "accuracy_vs_params", "pseudo_label_quality",
           "accuracy_vs_latency"]

_DPI = 110
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h"]


def _num(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _palette(n: int) -> list:
    """``n`` distinct colours (tab10, then tab20 beyond ten)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(max(n, 1))]


def _unique(seq: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in seq:
        seen.setdefault(item, None)
    return list(seen)


def _method_colors(results: dict, histories: list[dict]) -> dict[str, tuple]:
    """One colour per method, stable across plots: results' row order first."""
    methods = _unique(
        [str(r.get("method", "")) for r in (results.get("rows") or [])]
        + [str(h.get("method", "")) for h in histories]
    )
    return dict(zip(methods, _palette(len(methods))))


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI, facecolor="white")
    return path


def _placeholder(path: Path, message: str) -> Path:
    fig = _new_figure(6.0, 2.5)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, color="0.4")
    return _save(fig, path)


def _panels(n: int):
    """A figure with one panel per setting, up to three per row, sharing the y axis."""
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = _new_figure(5.2 * ncols + 0.4, 4.0 * nrows + 0.9)
    return fig, fig.subplots(nrows, ncols, squeeze=False, sharey=True), ncols, nrows


def _mean_std(series: list[tuple[list[float], list[float]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-epoch mean and std over seeds; seeds may have different lengths."""
    by_epoch: dict[float, list[float]] = defaultdict(list)
    for epochs, values in series:
        for e, v in zip(epochs, values):
            ev, vv = _num(e), _num(v)
            if ev is not None and vv is not None:
                by_epoch[ev].append(vv)
    xs = np.array(sorted(by_epoch), dtype=float)
    mean = np.array([np.mean(by_epoch[x]) for x in xs], dtype=float)
    std = np.array([np.std(by_epoch[x]) for x in xs], dtype=float)
    return xs, mean, std


def learning_curves(histories: list[dict], path: Path, results: dict | None = None) -> Path:
    """Validation accuracy vs epoch: one panel per setting, one line per method.

    Each line is the mean over seeds with a shaded ±1 std band. ``results``
    is optional and only used to order settings and title panels with their
    descriptions. Returns ``path``.
    """
    path = Path(path)
    # epochs, or optimizer steps for runs that evaluate every few steps (tokens task)
    xkey = "epoch" if any(h.get("epoch") for h in histories or []) else "step"
    usable = [
        h for h in (histories or [])
        if h.get(xkey) and h.get("val_accuracy")
    ]
    if not usable:
        return _placeholder(path, "no training histories recorded")

    descriptions = setting_descriptions(results or {})
    settings = _unique(
        [s for s in descriptions if any(str(h.get("setting", "")) == s for h in usable)]
        + [str(h.get("setting", "")) for h in usable]
    )
    colors = _method_colors(results or {}, usable)
    methods = [m for m in colors if any(str(h.get("method", "")) == m for h in usable)]

    grouped: dict[tuple[str, str], list[tuple[list, list]]] = defaultdict(list)
    for h in usable:
        key = (str(h.get("setting", "")), str(h.get("method", "")))
        grouped[key].append((list(h[xkey]), list(h["val_accuracy"])))

    n = len(settings)
    fig, axes, ncols, nrows = _panels(n)

    for i, setting in enumerate(settings):
        ax = axes[i // ncols][i % ncols]
        for method in methods:
            series = grouped.get((setting, method))
            if not series:
                continue
            xs, mean, std = _mean_std(series)
            if xs.size == 0:
                continue
            color = colors[method]
            ax.plot(xs, 100 * mean, color=color, lw=1.8, label=method,
                    marker="o" if xs.size == 1 else None, ms=4)
            if len(series) > 1:
                ax.fill_between(xs, 100 * (mean - std), 100 * (mean + std),
                                color=color, alpha=0.18, lw=0)
        title = setting
        desc = descriptions.get(setting)
        if desc:
            title = f"{setting}\n" + textwrap.fill(desc, 62)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xkey)
        if i % ncols == 0:
            ax.set_ylabel("validation accuracy (%)")
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    for j in range(n, nrows * ncols):
        axes[j // ncols][j % ncols].set_axis_off()

    handles = [_legend_handle(colors[m], m) for m in methods]
    fig.legend(handles=handles, loc="outside lower center",
               ncols=min(len(methods), 6), frameon=False,
               title="method (mean over seeds, band = ±1 std)", title_fontsize=9)
    return _save(fig, path)


def _legend_handle(color, label: str):
    from matplotlib.lines import Line2D

    return Line2D([], [], color=color, lw=2, label=label)


def accuracy_vs_params(results: dict, path: Path) -> Path:
    """Test accuracy (mean ± std error bars) vs student parameters.

    Colour encodes the method, marker the setting; the teacher is a star.
    The x axis is logarithmic. Rows without parameter counts or accuracy
    are skipped. Returns ``path``.
    """
    path = Path(path)
    groups = grouped_rows(results or {})
    points = [
        (setting, row)
        for setting, rows in groups
        for row in rows
        if _num(row.get("params")) and _num(row.get("test_accuracy_mean")) is not None
    ]
    teacher = (results or {}).get("teacher") or {}
    t_params = _num(teacher.get("params"))
    t_acc = _num(teacher.get("test_accuracy"))
    has_teacher = bool(t_params) and t_acc is not None
    if not points and not has_teacher:
        return _placeholder(path, "no parameter counts to plot")

    from matplotlib.lines import Line2D

    colors = _method_colors(results or {}, [])
    present = {str(r.get("method", "")) for _, r in points}
    methods = [m for m in colors if m in present]
    settings = _unique(s for s, _ in points)
    markers = {s: _MARKERS[i % len(_MARKERS)] for i, s in enumerate(settings)}

    fig = _new_figure(7.6, 4.6)
    ax = fig.add_subplot()
    # Methods of one setting usually share a student size; dodge them
    # horizontally (in log space) so error bars do not sit on top of each other.
    dodge = {m: 10 ** (0.03 * (i - (len(methods) - 1) / 2)) for i, m in enumerate(methods)}
    for setting, row in points:
        method = str(row.get("method", ""))
        std = _num(row.get("test_accuracy_std")) or 0.0
        ax.errorbar(
            _num(row["params"]) * dodge[method], 100 * _num(row["test_accuracy_mean"]),
            yerr=100 * std, fmt=markers[setting], color=colors[method],
            ms=7, capsize=3, lw=1.2, mec="white", mew=0.6, alpha=0.9,
        )
    if has_teacher:
        ax.scatter([t_params], [100 * t_acc], marker="*", s=260, color="gold",
                   edgecolors="black", linewidths=0.8, zorder=5)
    ax.set_xscale("log")
    ax.set_xlabel("parameters (log scale; methods slightly offset for legibility)")
    ax.set_ylabel("test accuracy (%)")
    title = "Test accuracy vs parameters"
    if results and results.get("name"):
        title += f" — {results['name']}"
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.margins(x=0.15, y=0.12)

    handles = [Line2D([], [], ls="", marker="o", color=colors[m], ms=7, label=m) for m in methods]
    if settings:
        handles += [Line2D([], [], ls="", marker=markers[s], color="0.35", ms=7,
                           label=f"setting: {s}") for s in settings]
    if has_teacher:
        handles.append(Line2D([], [], ls="", marker="*", color="gold", mec="black",
                              ms=14, label="teacher"))
    fig.legend(handles=handles, loc="outside right center", frameon=False, fontsize=9)
    return _save(fig, path)


def pseudo_label_quality(histories: list[dict], path: Path,
                         results: dict | None = None) -> Path | None:
    """Pseudo-label precision (solid) and coverage (dashed) vs epoch for every run that
    recorded them (semi-supervised methods on data with hidden labels): one panel per
    setting, one colour per method, mean over seeds. Returns ``None`` when no run did."""
    usable = [h for h in (histories or []) if h.get("pl_precision") and h.get("epoch")]
    if not usable:
        return None
    path = Path(path)
    settings = _unique(str(h.get("setting", "")) for h in usable)
    colors = _method_colors(results or {}, usable)
    methods = [m for m in colors if any(str(h.get("method", "")) == m for h in usable)]
    n = len(settings)
    fig, axes, ncols, nrows = _panels(n)
    for i, setting in enumerate(settings):
        ax = axes[i // ncols][i % ncols]
        for method in methods:
            runs = [h for h in usable if str(h.get("setting", "")) == setting
                    and str(h.get("method", "")) == method]
            if not runs:
                continue
            for key, style in (("pl_precision", "-"), ("pl_coverage", "--")):
                xs, mean, _ = _mean_std([(list(h["epoch"]), list(h[key])) for h in runs])
                if xs.size:
                    ax.plot(xs, 100 * mean, style, color=colors[method], lw=1.6,
                            label=f"{method} {key[3:]}")
        ax.set_title(setting, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 101)
        ax.grid(alpha=0.3)
        if i % ncols == 0:
            ax.set_ylabel("% of unlabeled rows")
        ax.legend(fontsize=7, loc="lower right")
    for j in range(n, nrows * ncols):
        axes[j // ncols][j % ncols].set_axis_off()
    fig.suptitle("pseudo-labels: precision (solid) and coverage (dashed), mean over seeds",
                 fontsize=11)
    return _save(fig, path)


def _log_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """At most ``most`` readable ticks for a log axis over ``[lo, hi]``: 1-2-5 steps of each
    decade, only the decades when that is too many; a range narrower than two of them gets
    three geometrically spaced ticks rounded to two significant digits (so a range under a
    decade never gets a crowd of labels)."""
    lo, hi = min(lo, hi), max(lo, hi)
    if lo <= 0 or not math.isfinite(lo) or not math.isfinite(hi):
        return []
    ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)) - 1,
                                          math.ceil(math.log10(hi)) + 1)
             for m in (1.0, 2.0, 5.0) if lo <= m * 10.0 ** e <= hi]
    if len(ticks) > most:  # crowded: decades only, then every other decade
        ticks = [t for t in ticks if f"{t:.0e}".startswith("1")]
        while len(ticks) > most:
            ticks = ticks[::2]
    if len(ticks) >= 2:
        return ticks
    return sorted({float(f"{v:.2g}") for v in np.geomspace(lo, hi, 5)[1:-1]})


def accuracy_vs_latency(results: dict, latency: dict, path: Path,
                        settings: list[str] | None = None) -> Path:
    """Test accuracy (mean ± std over seeds) vs CPU latency, from ``latency.json`` (written
    by ``mentor bench --latency``) and ``results.json``: one panel per measured batch size
    (log-scale milliseconds), colour = method, marker = setting, teachers as stars at their
    test accuracy. ``settings`` fixes the marker order (to match another plot of the same
    page); absent ones are not in the legend. Returns ``path``."""
    path = Path(path)
    students = [s for s in (latency or {}).get("students") or []
                if _num(s.get("test_accuracy_mean")) is not None and s.get("batches")]
    if not students:
        return _placeholder(path, "no latency measurements to plot")
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    batches = [str(b) for b in (latency.get("batches") or [])] or \
        sorted({b for s in students for b in s["batches"]}, key=int)
    colors = _method_colors({"rows": (results or {}).get("rows") or students}, [])
    for s in students:  # a method missing from results.json: grey
        colors.setdefault(str(s["method"]), "0.5")
    present = _unique(str(s["setting"]) for s in students)
    order = _unique([*(settings or []), *present])
    markers = {s: _MARKERS[i % len(_MARKERS)] for i, s in enumerate(order)}
    settings = present
    fig = _new_figure(4.4 * len(batches) + 2.2, 4.2)
    axes = fig.subplots(1, len(batches), squeeze=False, sharey=True)[0]
    for ax, b in zip(axes, batches):
        for s in students:
            e = s["batches"].get(b)
            if not e or not _num(e.get("latency_s")):
                continue
            ax.errorbar(1e3 * e["latency_s"], 100 * _num(s["test_accuracy_mean"]),
                        yerr=100 * (_num(s.get("test_accuracy_std")) or 0.0),
                        fmt=markers[str(s["setting"])], color=colors[str(s["method"])], ms=7,
                        capsize=3, lw=1.2, mec="white", mew=0.6, alpha=0.9)
        for t in latency.get("teachers") or []:
            e = (t.get("batches") or {}).get(b)
            if e and _num(t.get("test_accuracy")) is not None:
                ax.scatter([1e3 * e["latency_s"]], [100 * t["test_accuracy"]], marker="*",
                           s=260, color="gold", edgecolors="black", linewidths=0.8, zorder=5)
        ax.set_xscale("log")
        ax.margins(x=0.2, y=0.12)
        ax.xaxis.set_major_locator(FixedLocator(_log_ticks(*ax.get_xlim())))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"latency at batch {b} (ms, log scale)")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    title = (f"Test accuracy vs CPU latency ({latency.get('threads')} thread(s), medians)"
             + (f" — {results['name']}" if results and results.get("name") else ""))
    fig.suptitle(title, fontsize=11)
    methods = _unique(str(s["method"]) for s in students)
    handles = [Line2D([], [], ls="", marker="o", color=colors[m], ms=7, label=m)
               for m in methods]
    handles += [Line2D([], [], ls="", marker=markers[s], color="0.35", ms=7,
                       label=f"setting: {s}") for s in settings]
    if latency.get("teachers"):
        handles.append(Line2D([], [], ls="", marker="*", color="gold", mec="black", ms=14,
                              label="teacher"))
    fig.legend(handles=handles, loc="outside right center", frameon=False, fontsize=9)
    return _save(fig, path)
