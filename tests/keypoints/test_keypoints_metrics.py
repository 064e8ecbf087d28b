"""Keypoint metrics against naive float64 loops: Gaussian heatmaps, arg-max keypoints (and
the quarter-pixel refinement), PCK at alpha × the image side, heatmap MSE; bad input in
one sentence."""

import math

import pytest
import torch

from mentor.errors import MentorError
from mentor.keypoints import argmax_keypoints, gaussian_heatmaps, heatmap_mse, pck


def test_gaussian_heatmaps_match_a_loop():
    kp = torch.tensor([[[3.0, 4.5], [10.2, 0.0]], [[0.0, 11.0], [6.6, 7.3]]],
                      dtype=torch.float64)
    h = gaussian_heatmaps(kp, 12, sigma=1.5)
    assert h.shape == (2, 2, 12, 12)
    for n in range(2):
        for k in range(2):
            x, y = kp[n, k].tolist()
            for v in range(12):
                for u in range(12):
                    want = math.exp(-((u - x) ** 2 + (v - y) ** 2) / (2 * 1.5 ** 2))
                    assert abs(float(h[n, k, v, u]) - want) < 1e-12


def test_argmax_recovers_the_keypoint_and_subpixel_moves_towards_it():
    kp = torch.tensor([[[3.0, 7.0], [9.0, 2.0], [0.0, 11.0]]])
    assert torch.equal(argmax_keypoints(gaussian_heatmaps(kp, 12)), kp)
    frac = torch.tensor([[[5.3, 6.8]]])
    h = gaussian_heatmaps(frac, 12)
    assert torch.equal(argmax_keypoints(h), torch.tensor([[[5.0, 7.0]]]))
    assert torch.allclose(argmax_keypoints(h, subpixel=True), torch.tensor([[[5.25, 6.75]]]))
    # ties: the first maximum in row-major order
    flat = torch.zeros(1, 1, 4, 4)
    flat[0, 0, 2, 1] = flat[0, 0, 1, 3] = 1.0
    assert torch.equal(argmax_keypoints(flat), torch.tensor([[[3.0, 1.0]]]))


def test_pck_and_mse_match_loops():
    g = torch.Generator().manual_seed(0)
    true = torch.rand(7, 5, 2, generator=g) * 23
    pred = true + torch.randn(7, 5, 2, generator=g) * 1.5
    for alpha in (0.05, 0.1):
        hits = 0
        for n in range(7):
            for k in range(5):
                dx = float(pred[n, k, 0]) - float(true[n, k, 0])
                dy = float(pred[n, k, 1]) - float(true[n, k, 1])
                hits += math.sqrt(dx * dx + dy * dy) <= alpha * 24
        assert pck(pred, true, 24, alpha) == pytest.approx(hits / 35, abs=1e-12)
    a, b = torch.rand(3, 2, 4, 5, generator=g), torch.rand(3, 2, 4, 5, generator=g)
    got = heatmap_mse(a, b)
    for n in range(3):
        s = sum((float(a[n, k, i, j]) - float(b[n, k, i, j])) ** 2
                for k in range(2) for i in range(4) for j in range(5))
        assert float(got[n]) == pytest.approx(s / 40, rel=1e-6)


def test_bad_metric_input_raises_one_sentence():
    with pytest.raises(MentorError, match=r"pred has shape \(2, 5, 2\); expected \(2, 4, 2\)"):
        pck(torch.zeros(2, 5, 2), torch.zeros(2, 4, 2), 24)
    with pytest.raises(MentorError, match="alpha must be > 0, got 0"):
        pck(torch.zeros(2, 4, 2), torch.zeros(2, 4, 2), 24, alpha=0)
    with pytest.raises(MentorError, match="heatmaps has shape"):
        argmax_keypoints(torch.zeros(4, 4))
    with pytest.raises(MentorError, match="sigma must be > 0"):
        gaussian_heatmaps(torch.zeros(1, 1, 2), 8, sigma=0)
