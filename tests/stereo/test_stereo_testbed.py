"""TB-STEREO (METHODS.md §0, §53 S³): the three views obey the camera geometry (a
reference pixel at disparity d in the b pair is at x - d in the b view and at x - 2d in
the 2b view), the true disparity and the occlusion masks match a naive per-pixel visibility
check written here, the generator is deterministic, bad input is one sentence."""

import numpy as np
import pytest
import torch

from mentor.errors import DataError, MentorError
from mentor.stereo import StereoData, render, tb_stereo


@pytest.fixture(scope="module")
def clean():
    return tb_stereo(24, seed=3, noise=0.0)


def naive_front(layers, y, u_of):
    """The index of the layer seen at row ``y``: the nearest (largest disparity; a later
    layer wins a tie) of those whose reference extent holds column ``u_of(d)``; the
    background (row 0) holds every column."""
    best, best_d = None, None
    for k, (x0, x1, y0, y1, d) in enumerate(layers):
        if x0 == x1:  # an unused row
            continue
        u = u_of(d)
        if k == 0 or (x0 <= u < x1 and y0 <= y < y1):
            if best is None or d >= best_d:
                best, best_d = k, d
    return best


def test_render_by_hand_shifts_layers_and_the_later_of_equal_depth_is_in_front():
    # background d 1 (texel value 0.1), a 2-wide pole at x 6..7, d 3 (0.5), and a block
    # at x 4..9 of rows 1.. with the same d 3 listed after it (0.9); 1 row shown: row 0
    layers = np.array([[0, 12, 0, 2, 1], [6, 8, 0, 2, 3], [4, 10, 1, 2, 3]])
    tex = np.stack([np.full((2, 24), v) for v in (0.1, 0.5, 0.9)])
    for s in (0, 1, 2):
        image, front = render(layers, tex, s, 2, 12)
        pole = [x for x in range(12) if front[0, x] == 1]
        assert pole == [6 - 3 * s, 7 - 3 * s]  # the pole moves left by s·d
        assert image[0, pole[0]] == 0.5 and image[0, 11] == 0.1
        # row 1: the block hides the pole (same depth, listed later) wherever both are
        assert [x for x in range(12) if front[1, x] == 2] == list(range(max(0, 4 - 3 * s),
                                                                       10 - 3 * s))
        assert not (front[1] == 1).any()


def test_disparity_and_occlusion_masks_match_a_naive_visibility_check(clean):
    h, w = clean.shape
    for i in range(len(clean.ref)):
        layers = [tuple(int(v) for v in row) for row in clean.layers[i]]
        for y in range(h):
            for x in range(w):
                k = naive_front(layers, y, lambda d: x)
                d = layers[k][4]
                assert clean.disparity[i, y, x] == d
                for s, mask in ((1, clean.occluded_b), (2, clean.occluded_2b)):
                    x_other = x - s * d
                    if x_other < 0:
                        visible = False
                    else:
                        visible = naive_front(layers, y, lambda dj: x_other + s * dj) == k
                    assert bool(mask[i, y, x]) == (not visible), (i, y, x, s)


def test_a_point_at_d_in_the_b_pair_is_at_2d_in_the_2b_pair(clean):
    n, _, h, w = clean.ref.shape
    checked = 0
    for i in range(n):
        for y in range(h):
            for x in range(w):
                d = int(clean.disparity[i, y, x])
                value = clean.ref[i, 0, y, x]
                if not clean.occluded_b[i, y, x]:
                    assert clean.view_b[i, 0, y, x - d] == value
                if not clean.occluded_2b[i, y, x]:
                    assert clean.view_2b[i, 0, y, x - 2 * d] == value
                    checked += 1
    assert checked > 0.7 * n * h * w


def test_the_wide_pair_sees_pixels_the_narrow_pair_hides_and_views_differ(clean):
    only_b = clean.occluded_b & ~clean.occluded_2b
    only_2b = ~clean.occluded_b & clean.occluded_2b
    assert only_b.float().mean() > 0.02 and only_2b.float().mean() > 0.02
    assert not torch.equal(clean.view_b, clean.ref)
    assert 0 <= float(clean.disparity.min()) and float(clean.disparity.max()) <= 8
    assert float(clean.ref.min()) >= 0 and float(clean.ref.max()) <= 1


def test_generator_is_deterministic_and_splits_cover_the_scenes():
    a, b = tb_stereo(30, seed=5), tb_stereo(30, seed=5)
    for name in ("ref", "view_b", "view_2b", "disparity", "occluded_b", "occluded_2b",
                 "layers", "train", "val", "test"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(a.ref, tb_stereo(30, seed=6).ref)
    ids = torch.cat([a.train, a.val, a.test])
    assert sorted(ids.tolist()) == list(range(30))
    assert (len(a.train), len(a.val), len(a.test)) == (18, 4, 8)
    text = a.describe()
    assert text.startswith("TB-STEREO (seed 5): 30 scenes of 16×64") and "train 18" in text


def test_bad_arguments_are_one_sentence():
    cases = [
        (dict(num_scenes=2), r"num_scenes must be an integer >= 3, got 2"),
        (dict(max_disparity=16), r"max_disparity must be below width / 4 = 16"),
        (dict(objects=(3, 1)), r"objects must be two integers \(least, most\)"),
        (dict(pole_fraction=1.5), r"pole_fraction must be in \[0, 1\], got 1.5"),
        (dict(noise=-0.1), r"noise must be in \[0, 0.5\), got -0.1"),
        (dict(split=(0.5, 0.5, 0.5)), r"split must be three fractions summing to 1"),
        (dict(height=4), r"height must be an integer >= 8, got 4"),
    ]
    for kwargs, msg in cases:
        with pytest.raises(MentorError, match=msg):
            tb_stereo(**kwargs)


def test_inconsistent_tensors_are_one_sentence(clean):
    parts = dict(ref=clean.ref, view_b=clean.view_b, view_2b=clean.view_2b,
                 disparity=clean.disparity, occluded_b=clean.occluded_b,
                 occluded_2b=clean.occluded_2b, layers=clean.layers, train=clean.train,
                 val=clean.val, test=clean.test)
    with pytest.raises(DataError, match=r"view_b has shape \(24, 1, 16, 63\); expected "
                                        r"\(24, 1, 16, 64\) like ref"):
        StereoData(**{**parts, "view_b": clean.view_b[..., :63]})
    with pytest.raises(DataError, match=r"disparity has shape \(24, 64\); expected \(24, 16, 64\)"):
        StereoData(**{**parts, "disparity": clean.disparity[:, 0]})
    with pytest.raises(DataError, match=r"disparity holds 9; expected values in 0\.\.8"):
        StereoData(**{**parts, "disparity": clean.disparity.clamp(min=9)})
    with pytest.raises(DataError, match=r"occluded_b has shape \(24, 16, 64\) and dtype "
                                        r"torch.float32; expected a boolean"):
        StereoData(**{**parts, "occluded_b": clean.occluded_b.float()})
    with pytest.raises(DataError, match="named twice"):
        StereoData(**{**parts, "test": clean.val})
