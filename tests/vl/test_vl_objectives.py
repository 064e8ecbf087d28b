"""The text-anchored objectives of system 56 against naive float64 loops, and their
degenerate settings."""

import math

import pytest
import torch

from mentor.errors import MentorError
from mentor.vl.objectives import l_cls, l_cst, l_mse, l_vlalign

G = torch.Generator().manual_seed(0)
U, V, W = torch.randn(6, 5, generator=G), torch.randn(6, 5, generator=G), \
    torch.randn(4, 5, generator=G)
Y = torch.tensor([0, 1, 2, 3, 1, 0])
TAU = 0.07


def _unit(rows):
    out = []
    for r in rows.tolist():
        n = math.sqrt(sum(a * a for a in r))
        out.append([a / n for a in r])
    return out


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def _log_softmax(z):
    m = max(z)
    lse = m + math.log(sum(math.exp(a - m) for a in z))
    return [a - lse for a in z]


def _sims(a, b):
    return [[_dot(r, c) / TAU for c in b] for r in a]


def test_l_cls_is_cross_entropy_against_the_text_table():
    s = _sims(_unit(U), _unit(W))
    want = sum(-_log_softmax(s[i])[int(Y[i])] for i in range(6)) / 6
    assert abs(float(l_cls(U, W, Y)) - want) < 1e-4


def _vlalign(rows, k):
    t, s = _sims(_unit(V), _unit(W)), _sims(_unit(U), _unit(W))
    total = 0.0
    for i in rows:
        top = sorted(range(len(W)), key=lambda c: -t[i][c])[:k]
        lt = _log_softmax([t[i][c] for c in top])
        ls = _log_softmax([s[i][c] for c in top])
        total += sum(math.exp(a) * (a - b) for a, b in zip(lt, ls))
    return total / len(rows)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_l_vlalign_is_kl_over_the_teachers_top_k_texts(k):
    assert abs(float(l_vlalign(U, V, W, k)) - _vlalign(range(6), k)) < 1e-4


def test_l_vlalign_with_every_text_is_the_full_kl():
    t = torch.log_softmax(_unit_t(V) @ _unit_t(W).T / TAU, -1)
    s = torch.log_softmax(_unit_t(U) @ _unit_t(W).T / TAU, -1)
    full = (t.exp() * (t - s)).sum(-1).mean()
    assert torch.allclose(l_vlalign(U, V, W, len(W)), full, atol=1e-5)
    assert float(l_vlalign(U, V, W, 1)) == pytest.approx(0.0, abs=1e-6)  # one text: no KL


def _unit_t(z):
    return torch.nn.functional.normalize(z, dim=-1)


def test_l_vlalign_teacher_correct_keeps_only_rows_the_teacher_gets_right():
    t = _sims(_unit(V), _unit(W))
    right = [i for i in range(6) if max(range(4), key=lambda c: t[i][c]) == int(Y[i])]
    assert 0 < len(right) < 6
    got = float(l_vlalign(U, V, W, 3, y=Y, teacher_correct=True))
    assert abs(got - _vlalign(right, 3)) < 1e-4
    none = torch.tensor([max(range(4), key=lambda c: t[i][c]) for i in range(6)])
    assert float(l_vlalign(U, V, W, 3, y=(none + 1) % 4, teacher_correct=True)) == 0.0


def test_l_mse_is_the_squared_distance_of_unit_features():
    u, v = _unit(U), _unit(V)
    want = sum(sum((a - b) ** 2 for a, b in zip(u[i], v[i])) for i in range(6)) / 6
    assert abs(float(l_mse(U, V)) - want) < 1e-5
    assert float(l_mse(U, 3 * U)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_l_cst_is_image_to_image_infonce(bidirectional):
    s = _sims(_unit(U), _unit(V))
    one = sum(-_log_softmax(s[i])[i] for i in range(6)) / 6
    cols = [[s[j][i] for j in range(6)] for i in range(6)]
    other = sum(-_log_softmax(cols[i])[i] for i in range(6)) / 6
    want = (one + other) / 2 if bidirectional else one
    assert abs(float(l_cst(U, V, bidirectional=bidirectional)) - want) < 1e-4


def test_bad_shapes_and_k_are_one_sentence():
    with pytest.raises(MentorError, match="do not match"):
        l_cls(U, torch.randn(4, 3), Y)
    with pytest.raises(MentorError, match="k is 5"):
        l_vlalign(U, V, W, 5)
    with pytest.raises(MentorError, match="needs the labels"):
        l_vlalign(U, V, W, 2, teacher_correct=True)
