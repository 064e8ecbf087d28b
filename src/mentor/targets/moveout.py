"""Physical association of a teacher's picks (PhaseNet-DAS, METHODS.md §40): keep only the
picks that an event's moveout curve across the channels explains.

A per-channel teacher (a 1-D picker applied to each channel of a dense array) proposes
arrival times ``t`` at channel positions ``x``, with false picks among them. An event's
arrivals lie on one smooth moveout curve over the array; PhaseNet-DAS keeps the picks that
GaMMA's Gaussian-mixture association assigns to an event and drops the rest. Here each event's
curve is a quadratic ``t = a + b x + c x²`` (a hyperbola near its apex) found by RANSAC --
fits to random minimal samples of three picks, scored by how many picks lie within
``tolerance`` of them, refitted by least squares on the inliers -- one event at a time,
removing its picks before the next; an event needs ``min_support`` picks. [paper: GaMMA's EM
mixture; this RANSAC association is a reconstruction with the same effect on the labels]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import MentorError, check_param


@dataclass
class Association:
    """Which picks were kept (``keep``), the event each kept pick belongs to (``event``,
    -1 for dropped picks) and each event's curve coefficients ``(a, b, c)``."""

    keep: np.ndarray
    event: np.ndarray
    curves: list[tuple[float, float, float]]


def associate_picks(x, t, *, max_events: int = 2, tolerance: float = 3.0,
                    min_support: int = 10, trials: int = 200, seed: int = 0) -> Association:
    """Keep the picks ``(x[i], t[i])`` that lie within ``tolerance`` (time units) of one of
    at most ``max_events`` quadratic moveout curves, each supported by ``min_support``
    picks at least.

    >>> x = np.arange(20.0)
    >>> t = 50 + 0.1 * (x - 10) ** 2
    >>> t_all = np.concatenate([t, [5.0, 90.0]])          # two false picks
    >>> x_all = np.concatenate([x, [3.0, 12.0]])
    >>> out = associate_picks(x_all, t_all, max_events=1, min_support=5)
    >>> int(out.keep.sum()), out.keep[-2:].tolist()
    (20, [False, False])
    """
    check_param("associate_picks", "max_events", max_events, low=1)
    check_param("associate_picks", "tolerance", tolerance, low=0, low_open=True)
    check_param("associate_picks", "min_support", min_support, low=3)
    check_param("associate_picks", "trials", trials, low=1)
    x, t = np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64)
    if x.shape != t.shape or x.ndim != 1:
        raise MentorError(f"associate_picks: positions {x.shape} and times {t.shape} must be "
                          "one value per pick each")
    if not (np.isfinite(x).all() and np.isfinite(t).all()):
        raise MentorError("associate_picks: positions and times must be finite numbers")
    rng = np.random.default_rng(seed)
    event = np.full(len(x), -1)
    curves: list[tuple[float, float, float]] = []
    free = np.ones(len(x), dtype=bool)
    for k in range(int(max_events)):
        idx = np.flatnonzero(free)
        if len(idx) < min_support:
            break
        best = None
        for _ in range(int(trials)):
            sample = rng.choice(idx, 3, replace=False)
            coef = _fit(x[sample], t[sample])
            if coef is None:
                continue
            inl = idx[np.abs(_curve(coef, x[idx]) - t[idx]) <= tolerance]
            if best is None or len(inl) > len(best):
                best = inl
        if best is None or len(best) < min_support:
            break
        coef = _fit(x[best], t[best])  # least squares on the inliers, then their final set
        inl = idx[np.abs(_curve(coef, x[idx]) - t[idx]) <= tolerance]
        if len(inl) < min_support:
            break
        event[inl], free[inl] = k, False
        curves.append(tuple(float(v) for v in coef))
    return Association(event >= 0, event, curves)


def _fit(x: np.ndarray, t: np.ndarray):
    a = np.stack([np.ones_like(x), x, x * x], 1)
    if np.linalg.matrix_rank(a) < 3:
        return None
    return np.linalg.lstsq(a, t, rcond=None)[0]


def _curve(coef, x: np.ndarray) -> np.ndarray:
    return coef[0] + coef[1] * x + coef[2] * x * x
