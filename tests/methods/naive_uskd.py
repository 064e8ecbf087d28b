"""A naive float64 reference for USKD (Python loops over Python floats).

Follows the official ``yzd-v/cls_KD`` ``mmcls/models/dis_losses/uskd.py`` (``USKDLoss.forward``)
for hard labels: the rank score uses the student's *log*-probabilities
(``w_i / (1 - w_t + 1e-6) + s_i / (1 - s_t + 1e-6)`` after ``s_i = log_softmax``), all C
classes including the target are ranked and get ``1/rank`` (Zipf), the target's slot is
dropped and the rest renormalised. ``rank_by="probs"`` is mentor's earlier reading
(probability scores, target excluded from the ranking).
"""

import math


def _softmax(row):
    m = max(row)
    e = [math.exp(v - m) for v in row]
    s = sum(e)
    return [v / s for v in e]


def naive_uskd(zs, zw, labels, alpha, beta, rank_by="official"):
    p = [_softmax(r) for r in zs]
    q = [_softmax(r) for r in zw]
    sq = [p[i][y] ** 2 for i, y in enumerate(labels)]
    mean_sq = sum(sq) / len(sq)
    out = []
    for i, y in enumerate(labels):
        c = len(zs[i])
        target = -(sq[i] + 1.0 - mean_sq) * math.log(p[i][y])
        if rank_by == "official":
            lp = [math.log(v) for v in p[i]]
            score = {k: q[i][k] / (1 - q[i][y] + 1e-6) + lp[k] / (1 - lp[y] + 1e-6)
                     for k in range(c)}
        else:
            score = {k: q[i][k] / (1 - q[i][y]) + p[i][k] / (1 - p[i][y]) for k in range(c)
                     if k != y}
        ranked = sorted(score, key=lambda k: -score[k])  # stable: ties to the lower index
        zipf = {k: 1.0 / (r + 1) for r, k in enumerate(ranked)}
        others = [k for k in range(c) if k != y]
        total = sum(zipf[k] for k in others)
        m = max(zs[i][k] for k in others)
        lse = m + math.log(sum(math.exp(zs[i][k] - m) for k in others))
        non_target = -sum(zipf[k] / total * (zs[i][k] - lse) for k in others)
        out.append(alpha * target + beta * non_target)
    return out
