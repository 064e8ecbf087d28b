"""S³'s parts (METHODS.md §53): the baseline rescale is exactly d·b_s/b_t; the EMA teacher
copies the student at momentum 0 and is frozen at momentum 1; the occlusion-aware weights
are 1 exactly where the left-right check passes -- on the testbed's true disparities, on
every pixel the other view sees; the losses match naive float64 loops written here; bad
input is one sentence."""

import copy
import math
import random

import pytest
import torch

from mentor.errors import MentorError
from mentor.stereo import (ema_update, occlusion_weights, photometric_loss,
                           pseudo_label_loss, rescale, right_disparity, smoothness_loss,
                           tb_stereo, tiny_stereo, warp)
from mentor.stereo.testbed import render


def lerp_row(row, x):
    """``row`` read at fractional column ``x``, border padding (naive)."""
    w = len(row)
    x = min(max(x, 0.0), w - 1.0)
    x0 = int(math.floor(x))
    x1 = min(x0 + 1, w - 1)
    a = x - x0
    return (1 - a) * row[x0] + a * row[x1]


def test_rescale_is_exactly_the_baseline_ratio():
    d = torch.rand(3, 4, 5) * 16
    assert torch.equal(rescale(d, 1.0, 2.0), d * 0.5)
    assert torch.equal(rescale(d, 0.3, 0.7), d * (0.3 / 0.7))
    assert torch.equal(rescale(d, 2.0, 2.0), d)
    with pytest.raises(MentorError, match="teacher_baseline must be > 0, got 0"):
        rescale(d, 1.0, 0)


def test_ema_momentum_zero_copies_the_student_one_freezes_the_teacher():
    torch.manual_seed(0)
    student, teacher = tiny_stereo(), tiny_stereo()
    before = copy.deepcopy(teacher.state_dict())
    ema_update(teacher, student, 1.0)
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before[k])
    ema_update(teacher, student, 0.0)
    for (k, v), s in zip(teacher.state_dict().items(), student.state_dict().values()):
        assert torch.equal(v, s), k
    other = tiny_stereo()
    t = copy.deepcopy(teacher)
    ema_update(t, other, 0.25)
    for a, b, c in zip(t.parameters(), teacher.parameters(), other.parameters()):
        assert torch.allclose(a, 0.25 * b + 0.75 * c, atol=1e-7)
    with pytest.raises(MentorError, match=r"momentum must be in \[0, 1\], got 1.5"):
        ema_update(t, other, 1.5)
    with pytest.raises(MentorError, match="same architecture"):
        ema_update(tiny_stereo(features=4), other, 0.5)


def true_target_disparity(layers, s, h, w):
    """The disparity (at baseline s·b) of every pixel of the view at s·b, from its
    z-buffer."""
    import numpy as np
    tex = np.zeros((len(layers), h, w + 2 * 8 * 2))
    _, front = render(layers.numpy(), tex, s, h, w)
    return torch.from_numpy(s * layers.numpy()[front, 4]).float()


def test_weights_are_one_exactly_where_the_true_disparities_are_left_right_consistent():
    data = tb_stereo(12, seed=2, noise=0.0)
    h, w = data.shape
    for s, occluded in ((1, data.occluded_b), (2, data.occluded_2b)):
        d_left = data.disparity * s
        d_right = torch.stack([true_target_disparity(data.layers[i], s, h, w)
                               for i in range(len(d_left))])
        weights = occlusion_weights(d_left, d_right, 0.5, 0.1)
        assert torch.equal(weights == 1, ~occluded)
        assert torch.equal(weights[occluded], torch.full_like(weights[occluded], 0.1))


def test_weights_match_a_naive_left_right_check():
    g = torch.Generator().manual_seed(1)
    d_left = torch.rand(2, 3, 10, generator=g) * 4
    d_right = d_left + (torch.rand(2, 3, 10, generator=g) < 0.3) * 2.5
    weights = occlusion_weights(d_left, d_right, 1.0, 0.2)
    for i in range(2):
        for y in range(3):
            row = d_right[i, y].double().tolist()
            for x in range(10):
                dl = float(d_left[i, y, x])
                xo = x - dl
                ok = xo >= 0 and abs(dl - lerp_row(row, xo)) <= 1.0
                assert float(weights[i, y, x]) == (1.0 if ok else pytest.approx(0.2))
    # a constant disparity c is consistent with itself except where x - c leaves the frame
    c = torch.full((1, 2, 8), 3.0)
    w = occlusion_weights(c, c, 1.0, 0.0)
    assert w[0, :, :3].eq(0).all() and w[0, :, 3:].eq(1).all()
    with pytest.raises(MentorError, match=r"occluded_weight must be in \[0, 1\], got 2"):
        occlusion_weights(c, c, 1.0, 2)
    with pytest.raises(MentorError, match=r"d_right has shape \(1, 2, 7\) but d_left has "
                                          r"shape \(1, 2, 8\)"):
        occlusion_weights(c, c[..., :7])


def test_warping_by_the_true_disparity_reproduces_the_reference_where_visible():
    data = tb_stereo(10, seed=4, noise=0.0)
    for view, s, occ in ((data.view_b, 1, data.occluded_b), (data.view_2b, 2, data.occluded_2b)):
        warped = warp(view, data.disparity * s)[:, 0]
        assert torch.allclose(warped[~occ], data.ref[:, 0][~occ], atol=1e-5)
        assert (photometric_loss(data.ref, view, data.disparity * s, ~occ) < 1e-6).all()
        assert (photometric_loss(data.ref, view, data.disparity * s) > 1e-3).all()


def test_losses_match_naive_float64_loops():
    rng = random.Random(0)
    g = torch.Generator().manual_seed(0)
    n, h, w = 2, 3, 7
    ref, target = torch.rand(n, 1, h, w, generator=g), torch.rand(n, 1, h, w, generator=g)
    d = torch.rand(n, h, w, generator=g) * 3
    pseudo = d + torch.randn(n, h, w, generator=g) * 1.5
    weights = torch.rand(n, h, w, generator=g)
    mask = torch.rand(n, h, w, generator=g) < 0.7
    photo, photo_m = photometric_loss(ref, target, d), photometric_loss(ref, target, d, mask)
    smooth = smoothness_loss(d, ref, edge=10.0)
    beta = rng.choice([0.5, 1.0, 2.0])
    l1, huber = pseudo_label_loss(d, pseudo, weights), pseudo_label_loss(d, pseudo, weights,
                                                                          beta)
    for i in range(n):
        p = pm = a = b = 0.0
        for y in range(h):
            row = target[i, 0, y].double().tolist()
            for x in range(w):
                e = abs(float(ref[i, 0, y, x]) - lerp_row(row, x - float(d[i, y, x])))
                p += e
                pm += e * bool(mask[i, y, x])
                err = abs(float(d[i, y, x]) - float(pseudo[i, y, x]))
                wt = float(weights[i, y, x])
                a += wt * err
                b += wt * (0.5 * err * err / beta if err < beta else err - 0.5 * beta)
        sx = sum(abs(float(d[i, y, x + 1] - d[i, y, x])) *
                 math.exp(-10 * abs(float(ref[i, 0, y, x + 1] - ref[i, 0, y, x])))
                 for y in range(h) for x in range(w - 1)) / (h * (w - 1))
        sy = sum(abs(float(d[i, y + 1, x] - d[i, y, x])) *
                 math.exp(-10 * abs(float(ref[i, 0, y + 1, x] - ref[i, 0, y, x])))
                 for y in range(h - 1) for x in range(w)) / ((h - 1) * w)
        assert float(photo[i]) == pytest.approx(p / (h * w), rel=1e-5)
        assert float(photo_m[i]) == pytest.approx(pm / (h * w), rel=1e-5)
        assert float(smooth[i]) == pytest.approx(sx + sy, rel=1e-5)
        assert float(l1[i]) == pytest.approx(a / (h * w), rel=1e-5)
        assert float(huber[i]) == pytest.approx(b / (h * w), rel=1e-5)
    # the pseudo-label and the weights carry no gradient
    d.requires_grad_(True)
    pseudo.requires_grad_(True)
    pseudo_label_loss(d, pseudo, weights).sum().backward()
    assert pseudo.grad is None and d.grad is not None


def test_right_disparity_mirrors_and_swaps_the_views():
    seen = {}

    class Stub(torch.nn.Module):
        def forward(self, left, right, max_disp):
            seen.update(left=left, right=right, max_disp=max_disp)
            return torch.arange(left.shape[-1]).float().expand(left.shape[0], *left.shape[2:])

    ref, target = torch.rand(1, 1, 2, 5), torch.rand(1, 1, 2, 5)
    out = right_disparity(Stub(), ref, target, 7)
    assert torch.equal(seen["left"], target.flip(-1)) and torch.equal(seen["right"],
                                                                      ref.flip(-1))
    assert seen["max_disp"] == 7 and out[0, 0].tolist() == [4, 3, 2, 1, 0]


def test_loss_bad_input_is_one_sentence():
    d = torch.zeros(2, 3, 4)
    with pytest.raises(MentorError, match=r"pseudo has shape \(2, 3, 5\) but disparity has "
                                          r"shape \(2, 3, 4\)"):
        pseudo_label_loss(d, torch.zeros(2, 3, 5))
    with pytest.raises(MentorError, match=r"weights has shape \(2, 3\)"):
        pseudo_label_loss(d, d, torch.ones(2, 3))
    with pytest.raises(MentorError, match=r"target has shape \(2, 1, 3, 5\); expected "
                                          r"\(2, 1, 3, 4\)"):
        warp(torch.zeros(2, 1, 3, 5), d)
    with pytest.raises(MentorError, match="beta must be >= 0, got -1"):
        pseudo_label_loss(d, d, beta=-1)
