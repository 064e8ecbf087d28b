"""A naive float64 reference for USKD (Python loops over Python floats)."""

import math


def _softmax(row):
    m = max(row)
    e = [math.exp(v - m) for v in row]
    s = sum(e)
    return [v / s for v in e]


def naive_uskd(zs, zw, labels, alpha, beta):
    p = [_softmax(r) for r in zs]
    q = [_softmax(r) for r in zw]
    sq = [p[i][y] ** 2 for i, y in enumerate(labels)]
    mean_sq = sum(sq) / len(sq)
    out = []
    for i, y in enumerate(labels):
        c = len(zs[i])
        target = -(sq[i] + 1.0 - mean_sq) * math.log(p[i][y])
        score = {k: q[i][k] / (1 - q[i][y]) + p[i][k] / (1 - p[i][y]) for k in range(c)
                 if k != y}
        ranked = sorted(score, key=lambda k: -score[k])
        zipf = {k: 1.0 / (r + 1) for r, k in enumerate(ranked)}
        total = sum(zipf.values())
        others = [k for k in range(c) if k != y]
        m = max(zs[i][k] for k in others)
        lse = m + math.log(sum(math.exp(zs[i][k] - m) for k in others))
        non_target = -sum(zipf[k] / total * (zs[i][k] - lse) for k in others)
        out.append(alpha * target + beta * non_target)
    return out
