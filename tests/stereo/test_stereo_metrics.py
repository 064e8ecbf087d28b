"""EPE and bad-pixel rate (METHODS.md §53 S³'s evaluation) against naive float64 loops
written here, over all / occluded / non-occluded pixels; bad input is one sentence."""

import random

import pytest
import torch

from mentor.errors import MentorError
from mentor.stereo import bad_pixel_rate, epe, region_metrics


def naive(pred, gt, mask, threshold):
    """(EPE, bad-pixel rate) by a loop over every pixel, in Python floats (float64)."""
    total, bad, count = 0.0, 0, 0
    n, h, w = len(gt), len(gt[0]), len(gt[0][0])
    for i in range(n):
        for y in range(h):
            for x in range(w):
                if mask is not None and not mask[i][y][x]:
                    continue
                e = abs(float(pred[i][y][x]) - float(gt[i][y][x]))
                total += e
                bad += e > threshold
                count += 1
    return total / count, bad / count


def test_epe_and_bad_pixel_rate_match_a_naive_loop():
    rng = random.Random(0)
    for _ in range(5):
        n, h, w = rng.randint(1, 3), rng.randint(2, 6), rng.randint(3, 9)
        gt = torch.rand(n, h, w) * 8
        pred = gt + torch.randn(n, h, w) * rng.choice([0.3, 1.0, 3.0])
        mask = torch.rand(n, h, w) < 0.4
        mask[0, 0, 0] = True
        pl, gl, ml = pred.tolist(), gt.tolist(), mask.tolist()
        for th in (0.5, 1.0, 3.0):
            want_epe, want_bad = naive(pl, gl, None, th)
            assert epe(pred, gt) == pytest.approx(want_epe, rel=1e-6)
            assert bad_pixel_rate(pred, gt, th) == pytest.approx(want_bad, abs=1e-12)
            want_epe, want_bad = naive(pl, gl, ml, th)
            assert epe(pred, gt, mask) == pytest.approx(want_epe, rel=1e-6)
            assert bad_pixel_rate(pred, gt, th, mask) == pytest.approx(want_bad, abs=1e-12)


def test_region_metrics_split_all_pixels_into_occluded_and_the_rest():
    gt = torch.rand(2, 4, 8) * 8
    pred = gt + torch.randn(2, 4, 8)
    occ = torch.rand(2, 4, 8) < 0.3
    occ[0, 0, 0], occ[0, 0, 1] = True, False
    r = region_metrics(pred, gt, occ)
    k = occ.float().mean().item()
    assert r["epe"] == pytest.approx(k * r["epe_occ"] + (1 - k) * r["epe_noc"], rel=1e-9)
    assert r["bad"] == pytest.approx(k * r["bad_occ"] + (1 - k) * r["bad_noc"], abs=1e-12)
    assert r["epe_occ"] == epe(pred, gt, occ) and r["bad_noc"] == bad_pixel_rate(pred, gt,
                                                                                1.0, ~occ)
    # an exact map scores zero, a map off by 2 px everywhere scores 2 and 100 % bad
    assert epe(gt, gt) == 0.0 and bad_pixel_rate(gt + 2, gt) == 1.0
    assert epe(gt + 2, gt) == pytest.approx(2.0)


def test_bad_input_is_one_sentence():
    gt = torch.zeros(2, 4, 8)
    with pytest.raises(MentorError, match=r"the disparity map has shape \(2, 4, 7\) but the "
                                          r"ground truth has shape \(2, 4, 8\)"):
        epe(torch.zeros(2, 4, 7), gt)
    with pytest.raises(MentorError, match=r"the disparity map has shape \(4, 8\)"):
        bad_pixel_rate(torch.zeros(4, 8), gt)
    with pytest.raises(MentorError, match=r"mask has shape \(2, 4\)"):
        epe(gt, gt, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(MentorError, match="mask selects no pixel"):
        epe(gt, gt, torch.zeros(2, 4, 8, dtype=torch.bool))
    with pytest.raises(MentorError, match="threshold must be >= 0, got -1"):
        bad_pixel_rate(gt, gt, -1)
    with pytest.raises(MentorError, match="non-finite"):
        epe(torch.full((2, 4, 8), float("nan")), gt)
    with pytest.raises(MentorError) as e:
        epe(torch.zeros(2, 4, 7), gt)
    assert str(e.value) == ("the disparity map has shape (2, 4, 7) but the ground truth has "
                            "shape (2, 4, 8); expected the same shape")
