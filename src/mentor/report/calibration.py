"""Calibration of class probabilities: reliability bins and expected calibration error.

The confidence of a prediction is its largest class probability; the prediction is the
arg-max (the first class on ties). Confidences fall into ``bins`` equal-width bins
``(i/bins, (i+1)/bins]`` (a confidence of exactly 0 goes to the first bin). Everything is
computed in float64.
"""

from __future__ import annotations

import numpy as np

__all__ = ["confusion_matrix", "ece", "reliability_bins"]


def _as_arrays(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    if p.ndim != 2 or p.shape[0] != y.shape[0]:
        raise ValueError(f"probs must be (N, C) with one label per row, got probs "
                         f"{tuple(p.shape)} and {y.shape[0]} labels")
    return p, y


def reliability_bins(probs, labels, bins: int = 10) -> dict:
    """Per-bin counts, accuracy and mean confidence, and the ECE, of ``probs`` (N, C).

    Returns ``{"edges": [bins + 1 floats], "counts": [int], "accuracy": [float | None],
    "confidence": [float | None], "ece": float, "n": N}``; empty bins have ``None``
    accuracy and confidence. ``ece`` is ``sum_b n_b / N * |accuracy_b - confidence_b|``
    (0.0 for no rows).
    """
    if int(bins) < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    bins = int(bins)
    p, y = _as_arrays(probs, labels)
    edges = np.arange(bins + 1, dtype=np.float64) / bins
    n = p.shape[0]
    if n == 0:
        return {"edges": edges.tolist(), "counts": [0] * bins, "accuracy": [None] * bins,
                "confidence": [None] * bins, "ece": 0.0, "n": 0}
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    # bin i holds (edges[i], edges[i+1]]: searchsorted(left) gives the first edge >= conf
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    counts = np.bincount(idx, minlength=bins)
    acc_sum = np.bincount(idx, weights=correct, minlength=bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=bins)
    accuracy: list[float | None] = []
    confidence: list[float | None] = []
    total = 0.0
    for c, a, s in zip(counts, acc_sum, conf_sum):
        if c == 0:
            accuracy.append(None)
            confidence.append(None)
            continue
        accuracy.append(float(a / c))
        confidence.append(float(s / c))
        total += c / n * abs(a / c - s / c)
    return {"edges": edges.tolist(), "counts": [int(c) for c in counts], "accuracy": accuracy,
            "confidence": confidence, "ece": float(total), "n": int(n)}


def ece(probs, labels, bins: int = 10) -> float:
    """Expected calibration error of ``probs`` (N, C) against integer ``labels`` (N,), with
    ``bins`` equal-width confidence bins."""
    return reliability_bins(probs, labels, bins)["ece"]


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """Counts ``(num_classes, num_classes)``: row = true class, column = predicted class."""
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    p = np.asarray(predictions).astype(np.int64).reshape(-1)
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(out, (y, p), 1)
    return out
