"""How figures are written in the docs (one place, so every page writes them alike)."""

from __future__ import annotations

import statistics
from typing import Sequence

from mentor.commands.bench import judge


def pct(x: float, digits: int = 2) -> str:
    """A fraction as a percentage: ``0.9545 -> '95.45 %'``."""
    return f"{100 * x:.{digits}f} %"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation (0 for one value)."""
    vals = [float(v) for v in values]
    return statistics.fmean(vals), (statistics.pstdev(vals) if len(vals) > 1 else 0.0)


def pm(values: Sequence[float], digits: int = 2) -> str:
    """Mean ± population std of fractions, as percentages: ``'95.45 ± 0.53 %'``."""
    m, s = mean_std(values)
    return f"{100 * m:.{digits}f} ± {100 * s:.{digits}f} %"


def seeds(values: Sequence[float], digits: int = 1, unit: str = " %") -> str:
    """Per-seed values joined by slashes: ``'14.2 / 11.8 / 13.0 %'``."""
    return " / ".join(f"{100 * v:.{digits}f}" for v in values) + unit


def num(x: float, digits: int) -> str:
    return f"{x:.{digits}f}"


def verdict(method: Sequence[float], baseline: Sequence[float]) -> str:
    """``higher``, ``lower`` or ``not separated`` by the project's rule (gap > 2 × the larger
    std over the seeds, :func:`mentor.commands.bench.judge`)."""
    m, s = mean_std(method)
    b, t = mean_std(baseline)
    return judge(m, s, b, t, ">").observed


def wins(method: Sequence[float], baseline: Sequence[float]) -> str:
    """Per-seed wins of ``method`` over ``baseline``: ``'3 of 3'``."""
    won = sum(a > b for a, b in zip(method, baseline, strict=True))
    return f"{won} of {len(method)}"


def claim(method: Sequence[float], baseline: Sequence[float]) -> str:
    """The separation verdict with the per-seed wins, for prose: ``'separated, higher in 3 of
    3 seeds'`` or ``'not separated, higher in 2 of 3 seeds'``."""
    v = verdict(method, baseline)
    word = "separated" if v != "not separated" else "not separated"
    return f"{word}, higher in {wins(method, baseline)} seeds"


def verdicts(values, pairs) -> dict[str, str]:
    """``{a_vs_b: verdict, a_vs_b.wins: wins}`` for each ``(a, b)`` of ``pairs``, with
    ``values[a]`` (a mapping) or ``values(a)`` (a function, as :func:`_run.over_seeds`
    returns) the per-seed values of ``a`` (higher is better)."""
    get = values if callable(values) else values.__getitem__
    out = {}
    for a, b in pairs:
        out[f"{a}_vs_{b}"] = verdict(get(a), get(b))
        out[f"{a}_vs_{b}.wins"] = wins(get(a), get(b))
    return out


def method_figures(values, name: str, digits: int = 2) -> dict[str, str]:
    """``{m.name: mean ± std, m.name.per_seed: per-seed values}`` for each method ``m`` of
    ``values`` (per-seed fractions, shown as percentages)."""
    out = {}
    for m, v in values.items():
        out[f"{m}.{name}"] = pm(v)
        out[f"{m}.{name}.per_seed"] = seeds(v, digits)
    return out
