"""Naive float64 references shared by the loss tests: Python loops over Python floats."""

import math


def logsumexp(xs: list[float]) -> float:
    m = max(xs)
    total = 0.0
    for x in xs:
        total += math.exp(x - m)
    return m + math.log(total)


def log_softmax(row: list[float], t: float) -> list[float]:
    scaled = [x / t for x in row]
    lse = logsumexp(scaled)
    return [x - lse for x in scaled]


def kl(log_p: list[float], log_q: list[float]) -> float:
    """KL(p || q) from log-probabilities, p = target distribution."""
    total = 0.0
    for lp, lq in zip(log_p, log_q):
        total += math.exp(lp) * (lp - lq)
    return total
