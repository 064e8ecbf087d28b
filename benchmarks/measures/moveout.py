"""PhaseNet-DAS's physical association (METHODS.md §40) on synthetic "DAS" arrays: 64
channels, two events with hyperbolic moveout, a per-channel picker that misses 20 % of
arrivals, jitters the rest (σ 1 sample) and adds false picks (one per channel on average);
``mentor.targets.associate_picks`` (2 events, tolerance 3, min_support 10) keeps the picks an
event's curve explains. Seeds 0-4. Deterministic and cheap: CI reruns it in full.

:func:`das_picks` and :func:`association_scores` are what
``tests/methods/test_moveout_association.py`` asserts on.
Figures: docs/methods.md's row "40 PhaseNet-DAS".
"""

from __future__ import annotations

import numpy as np

SEEDS = range(5)


def das_picks(seed, channels=64, events=2, miss=0.2, false_per_channel=1.0, sigma=1.0):
    """Picks ``(x, t)`` of a 1-D picker on a synthetic array, and which ones are real."""
    rng = np.random.default_rng(seed)
    x = np.arange(channels, dtype=float)
    curves = []
    for _ in range(events):  # t = t0 + sqrt(depth² + (x - x0)²) / v
        x0, t0 = rng.uniform(10, 54), rng.uniform(40, 200)
        v, depth = rng.uniform(0.5, 1.5), rng.uniform(5, 20)
        curves.append(t0 + np.sqrt(depth ** 2 + (x - x0) ** 2) / v)
    xs, ts, real = [], [], []
    for i in range(channels):
        for c in curves:
            if rng.random() > miss:
                xs.append(i), ts.append(c[i] + rng.normal(0, sigma)), real.append(True)
        for _ in range(rng.poisson(false_per_channel)):
            xs.append(i), ts.append(rng.uniform(0, 256)), real.append(False)
    return np.array(xs, float), np.array(ts), np.array(real)


def association_scores(seeds=SEEDS) -> dict[str, list]:
    """Per seed: raw pick precision, precision of the kept picks, share of real picks kept,
    and the association itself (``outs``)."""
    from mentor.targets.moveout import associate_picks
    raw, precision, recall, outs = [], [], [], []
    for seed in seeds:
        x, t, real = das_picks(seed)
        out = associate_picks(x, t, max_events=2, tolerance=3.0, min_support=10)
        raw.append(float(real.mean()))
        precision.append(float(real[out.keep].mean()))
        recall.append(float(out.keep[real].mean()))
        outs.append(out)
    return {"raw": raw, "precision": precision, "recall": recall, "outs": outs}


def _range(values, digits: int) -> str:
    return f"{min(values):.{digits}f}–{max(values):.{digits}f}"


def measure(quick: bool) -> dict[str, str]:
    sc = association_scores()
    return {"raw_precision": _range(sc["raw"], 2), "kept_precision": _range(sc["precision"], 3),
            "recall": f"{100 * min(sc['recall']):.0f}–{100 * max(sc['recall']):.0f} %",
            "seeds": str(len(sc["raw"]))}


from . import measurement  # noqa: E402

measurement("moveout", about="PhaseNet-DAS moveout association on synthetic arrays (5 seeds): "
            "pick precision before and after, real picks kept", ci="full",
            minutes=0.1)(measure)
