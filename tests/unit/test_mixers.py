"""Unit tests for the mixers (``mentor.mix``).

Layout:

1. Boxes: ``box_mask`` reproduces ``paste_box``'s geometry; CutMix is ``box_mask`` + where.
2. MixUp: fixed-lam mixing against a float64 loop, the Beta sampler against scipy's Beta.
3. Determinism: every random mixer is a pure function of its generator, leaves the global
   RNG alone, and different seeds give different mixes.
4. Copy-paste (BCP, multiscale): the two mixed batches swap sources exactly, rectangles and
   areas against pixel loops, the loss weights against the region weights.
5. Frequency amplitude switch against a naive numpy float64 reference (``fftshift`` + a centred
   square), identities, phase preservation.
6. Bad parameters and layouts raise mentor's one-sentence errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from mentor.errors import MentorError, ParameterError
from mentor.labels.selfmix import paste_box
from mentor.mix import (BidirectionalCopyPaste, CutMix, FrequencyAmplitudeSwitch, MixUp,
                        MultiScalePatches, amplitude_switch, beta_draw, box_mask, mix_probs,
                        mixed_label_weights, mixup, region_weights)
from mentor.registry import MIXERS

SHAPES = [(16,), (6, 8), (3, 5, 7), (1, 9)]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rows(seed: int, b: int, shape: tuple[int, ...], dtype=torch.float64) -> torch.Tensor:
    return torch.randn(b, math.prod(shape), generator=_gen(seed), dtype=dtype)


def _grid(shape):
    """(C, H, W) of a layout, 1-D rows as (1, 1, L)."""
    if len(shape) == 1:
        return 1, 1, shape[0]
    if len(shape) == 2:
        return 1, *shape
    return shape


# ---------------------------------------------------------------------------------------------
# 1. boxes
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("lams", [(0.0, 1.0), (0.2, 0.5), (0.7, 0.7)])
def test_box_mask_matches_paste_box(shape, lams):
    x1, x2 = _rows(0, 64, shape), _rows(1, 64, shape)
    u = torch.rand(64, 3, generator=_gen(2))
    mixed, area = paste_box(x1, x2, u, shape, *lams)
    mask, area2 = box_mask(u, shape, *lams)
    assert mask.dtype == torch.bool and mask.shape == x1.shape
    assert torch.equal(torch.where(mask, x2, x1), mixed)
    assert torch.equal(area2, area)


def test_cutmix_is_box_mask_and_reports_area_from_x2():
    shape = (2, 6, 6)
    x1, x2 = torch.zeros(32, 72), torch.ones(32, 72)
    x, area = CutMix(0.1, 0.9).mix(x1, x2, shape, _gen(5))
    u = torch.rand(32, 3, generator=_gen(5))
    mask, want = box_mask(u, shape, 0.1, 0.9)
    assert torch.equal(x, mask.float())
    assert torch.equal(area, want)
    assert torch.allclose(x.mean(1), area)  # the fraction of each row taken from x2


# ---------------------------------------------------------------------------------------------
# 2. MixUp
# ---------------------------------------------------------------------------------------------

def _naive_mix(x1: torch.Tensor, x2: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    out = []
    for i in range(len(x1)):
        li = float(lam[i])
        out.append([li * float(a) + (1.0 - li) * float(b) for a, b in zip(x1[i], x2[i])])
    return torch.tensor(out, dtype=torch.float64)


def test_mixup_fixed_lam_matches_naive_loop():
    x1, x2 = _rows(0, 5, (7,)), _rows(1, 5, (7,))
    lam = torch.tensor([0.0, 1.0, 0.25, 0.5, 0.9], dtype=torch.float64)
    torch.testing.assert_close(mixup(x1, x2, lam), _naive_mix(x1, x2, lam), rtol=1e-12,
                               atol=1e-12)
    p1 = torch.softmax(_rows(2, 5, (4,)), -1)
    p2 = torch.softmax(_rows(3, 5, (4,)), -1)
    p = mix_probs(p1, p2, lam)
    torch.testing.assert_close(p, _naive_mix(p1, p2, lam), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(p.sum(-1), torch.ones(5, dtype=torch.float64))


def test_mixup_mix_matches_naive_with_its_lam():
    x1, x2 = _rows(0, 40, (6,)), _rows(1, 40, (6,))
    x, lam = MixUp(0.75).mix(x1, x2, _gen(3))
    assert lam.shape == (40,) and bool(((lam >= 0) & (lam <= 1)).all())
    torch.testing.assert_close(x, _naive_mix(x1, x2, lam), rtol=1e-12, atol=1e-12)


def test_mixup_tiny_alpha_picks_one_row():
    x1, x2 = _rows(0, 64, (5,)), _rows(1, 64, (5,))
    x, lam = MixUp(1e-3).mix(x1, x2, _gen(4))
    first = lam > 0.5
    torch.testing.assert_close(lam, first.double(), rtol=0, atol=1e-12)
    assert 0 < int(first.sum()) < 64  # both sides occur
    torch.testing.assert_close(x, torch.where(first.unsqueeze(1), x1, x2), rtol=0, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.2, 0.75, 1.0, 2.5])
def test_beta_draw_follows_beta(alpha):
    lam = beta_draw(alpha, 4000, _gen(11)).numpy()
    assert scipy.stats.kstest(lam, "beta", args=(alpha, alpha)).pvalue > 1e-3
    assert abs(lam.var() - 1 / (4 * (2 * alpha + 1))) < 0.01


# ---------------------------------------------------------------------------------------------
# 3. determinism
# ---------------------------------------------------------------------------------------------

def _run(mixer, seed: int, shape=(2, 8, 8)):
    x1, x2 = _rows(100, 6, shape), _rows(101, 6, shape)
    if isinstance(mixer, MixUp):
        return mixer.mix(x1, x2, _gen(seed))
    out = mixer.mix(x1, x2, shape, _gen(seed))
    return (out.x_in, out.x_out, out.mask, out.area) if hasattr(out, "x_in") else out


@pytest.mark.parametrize("mixer", [MixUp(), CutMix(), BidirectionalCopyPaste(),
                                   MultiScalePatches()], ids=lambda m: type(m).__name__)
def test_same_seed_same_mix_other_seed_other_mix_global_rng_untouched(mixer):
    state = torch.get_rng_state()
    a, b, c = _run(mixer, 7), _run(mixer, 7), _run(mixer, 8)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not torch.equal(a[0], c[0])


# ---------------------------------------------------------------------------------------------
# 4. copy-paste
# ---------------------------------------------------------------------------------------------

def _zero_boxes(mask_row: torch.Tensor, shape):
    """Pixel loop over one mask row: the zero positions per channel, as sets of (y, x)."""
    c, h, w = _grid(shape)
    m = mask_row.reshape(c, h, w)
    return [{(y, x) for y in range(h) for x in range(w) if float(m[ch, y, x]) == 0.0}
            for ch in range(c)]


@pytest.mark.parametrize("shape", [(12,), (9, 9), (2, 6, 9)])
def test_bcp_sources_area_and_rectangle(shape):
    c, h, w = _grid(shape)
    lab, unl = _rows(0, 16, shape), _rows(1, 16, shape)
    out = BidirectionalCopyPaste(2 / 3).mix(lab, unl, shape, _gen(2))
    assert torch.equal(out.x_in + out.x_out, lab + unl)
    m = out.mask.bool()
    assert torch.equal(out.x_in[m], unl[m]) and torch.equal(out.x_in[~m], lab[~m])
    assert torch.equal(out.x_out[m], lab[m]) and torch.equal(out.x_out[~m], unl[~m])
    bh = 1 if len(shape) == 1 else round(2 / 3 * h)
    bw = round(2 / 3 * w)
    for i in range(len(lab)):
        zeros = _zero_boxes(out.mask[i], shape)
        assert all(z == zeros[0] for z in zeros)  # the same patch in every channel
        ys, xs = [p[0] for p in zeros[0]], [p[1] for p in zeros[0]]
        assert max(ys) - min(ys) + 1 == bh and max(xs) - min(xs) + 1 == bw
        assert len(zeros[0]) == bh * bw  # one full rectangle
        assert float(out.area[i]) == pytest.approx(bh * bw / (h * w), abs=1e-7)


def test_bcp_positions_cover_every_fit():
    """Every corner where the rectangle fits occurs (uniform placement, edges included)."""
    shape = (6, 6)
    mask, _ = BidirectionalCopyPaste(0.5).masks(400, shape, _gen(3))
    corners = set()
    for row in mask:
        zeros = _zero_boxes(row, shape)[0]
        corners.add((min(p[0] for p in zeros), min(p[1] for p in zeros)))
    assert corners == {(y, x) for y in range(4) for x in range(4)}


def test_bcp_degenerate_ratios():
    lab, unl = _rows(0, 4, (5, 5)), _rows(1, 4, (5, 5))
    none = BidirectionalCopyPaste(0.0).mix(lab, unl, (5, 5), _gen(0))
    assert torch.equal(none.x_in, unl) and torch.equal(none.x_out, lab)
    assert torch.equal(none.area, torch.zeros(4))
    full = BidirectionalCopyPaste(1.0).mix(lab, unl, (5, 5), _gen(0))
    assert torch.equal(full.x_in, lab) and torch.equal(full.x_out, unl)


@pytest.mark.parametrize("from_labeled", [False, True])
def test_region_and_mixed_label_weights(from_labeled):
    shape = (2, 6, 6)
    out = BidirectionalCopyPaste(0.5).mix(_rows(0, 8, shape), _rows(1, 8, shape), shape,
                                          _gen(4))
    wts = region_weights(out.mask, from_labeled, u_weight=0.3)
    w_l, w_u = mixed_label_weights(out.area, from_labeled, u_weight=0.3)
    for i in range(8):
        sum_l = sum_u = 0.0
        for j in range(out.mask.shape[1]):
            background = float(out.mask[i, j]) == 1.0
            labeled_here = background == from_labeled
            want = 1.0 if labeled_here else 0.3
            assert float(wts[i, j]) == pytest.approx(want)
            if labeled_here:
                sum_l += want
            else:
                sum_u += want
        n = out.mask.shape[1]
        assert float(w_l[i]) == pytest.approx(sum_l / n)
        assert float(w_u[i]) == pytest.approx(sum_u / n)


@pytest.mark.parametrize("shape", [(64,), (16, 16), (3, 16, 16)])
def test_multiscale_zero_count_between_largest_and_sum_of_patches(shape):
    c, h, w = _grid(shape)
    mss = MultiScalePatches(num_coarse=2, coarse=0.5, num_fine=3, fine=0.25)
    lab, unl = _rows(0, 32, shape), _rows(1, 32, shape)
    out = mss.mix(lab, unl, shape, _gen(6))
    assert torch.equal(out.x_in + out.x_out, lab + unl)
    one_d = len(shape) == 1
    areas = [(1 if one_d else round(s * h)) * round(s * w) for s in mss.sides]
    zeros = (out.mask == 0).reshape(32, c, h * w)[:, 0].sum(1)
    assert bool((zeros >= max(areas)).all()) and bool((zeros <= sum(areas)).all())
    assert bool((zeros < sum(areas)).any())  # overlaps do happen
    torch.testing.assert_close(out.area, zeros.float() / (h * w))


def test_multiscale_with_one_patch_is_bcp():
    shape = (2, 9, 9)
    lab, unl = _rows(0, 8, shape), _rows(1, 8, shape)
    a = MultiScalePatches(num_coarse=1, coarse=0.4, num_fine=0).mix(lab, unl, shape, _gen(1))
    b = BidirectionalCopyPaste(0.4).mix(lab, unl, shape, _gen(1))
    assert torch.equal(a.mask, b.mask) and torch.equal(a.x_in, b.x_in)


# ---------------------------------------------------------------------------------------------
# 5. frequency amplitude switch
# ---------------------------------------------------------------------------------------------

def _naive_switch(a: torch.Tensor, b: torch.Tensor, shape, size: float):
    """numpy float64: fftshift, swap the amplitude inside the centred square by a loop over
    its positions (side 2·floor(s/2)+1, s = max(1, round(size·n))), keep the phases."""
    c, h, w = _grid(shape)
    axes = (-1,) if len(shape) == 1 else (-2, -1)
    an = a.numpy().astype(np.float64).reshape(len(a), c, h, w)
    bn = b.numpy().astype(np.float64).reshape(len(b), c, h, w)
    fa = np.fft.fftshift(np.fft.fftn(an, axes=axes), axes=axes)
    fb = np.fft.fftshift(np.fft.fftn(bn, axes=axes), axes=axes)

    def span(n):
        r = max(1, round(size * n)) // 2
        return range(max(0, n // 2 - r), min(n, n // 2 + r + 1))  # index n would be -n/2 again

    ys = range(h) if len(shape) == 1 else span(h)
    na, nb = fa.copy(), fb.copy()
    for y in ys:
        for x in span(w):
            na[:, :, y, x] = np.abs(fb[:, :, y, x]) * np.exp(1j * np.angle(fa[:, :, y, x]))
            nb[:, :, y, x] = np.abs(fa[:, :, y, x]) * np.exp(1j * np.angle(fb[:, :, y, x]))
    back = [np.fft.ifftn(np.fft.ifftshift(f, axes=axes), axes=axes).real for f in (na, nb)]
    return [torch.from_numpy(v.reshape(len(a), -1)) for v in back]


@pytest.mark.parametrize("shape", [(16,), (15,), (8, 8), (7, 10), (3, 6, 5)])
@pytest.mark.parametrize("size", [0.0175, 0.3, 0.5, 1.0])
def test_amplitude_switch_matches_numpy_reference(shape, size):
    a, b = _rows(0, 4, shape), _rows(1, 4, shape)
    out_a, out_b = amplitude_switch(a, b, shape, size)
    ref_a, ref_b = _naive_switch(a, b, shape, size)
    torch.testing.assert_close(out_a, ref_a, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out_b, ref_b, rtol=1e-9, atol=1e-9)


def _spectrum(x, shape):
    c, h, w = _grid(shape)
    dims = (-1,) if len(shape) == 1 else (-2, -1)
    return torch.fft.fftn(x.reshape(len(x), c, h, w), dim=dims)


@pytest.mark.parametrize("shape", [(16,), (8, 8), (3, 6, 6)])
def test_amplitude_switch_whole_spectrum_gives_b_amplitude_a_phase(shape):
    a, b = _rows(0, 4, shape), _rows(1, 4, shape)
    out_a, _ = amplitude_switch(a, b, shape, 1.0)
    fo, fa, fb = _spectrum(out_a, shape), _spectrum(a, shape), _spectrum(b, shape)
    torch.testing.assert_close(fo.abs(), fb.abs(), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(fo / fo.abs(), fa / fa.abs(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("shape", [(32,), (8, 8), (2, 8, 8)])
def test_amplitude_switch_keeps_phase_and_identity(shape):
    a, b = _rows(0, 4, shape, torch.float32), _rows(1, 4, shape, torch.float32)
    out_a, out_b = amplitude_switch(a, b, shape, 0.3)
    assert out_a.dtype == torch.float32 and out_a.shape == a.shape
    fo, fa = _spectrum(out_a.double(), shape), _spectrum(a.double(), shape)
    torch.testing.assert_close(fo / fo.abs(), fa / fa.abs(), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(out_a, a, atol=1e-3)  # something did change
    same_a, same_b = amplitude_switch(a, a.clone(), shape, 0.3)
    torch.testing.assert_close(same_a, a, rtol=0, atol=1e-5)
    torch.testing.assert_close(same_b, a, rtol=0, atol=1e-5)


def test_default_size_on_small_image_swaps_the_mean_only():
    """On 8×8, size 0.0175 rounds to one frequency: a keeps its detail and the sign of its
    mean, and takes the magnitude of b's mean."""
    a, b = _rows(0, 5, (8, 8)), _rows(1, 5, (8, 8))
    out_a, _ = FrequencyAmplitudeSwitch().switch(a, b, (8, 8))
    ma, mb = a.mean(1, keepdim=True), b.mean(1, keepdim=True)
    torch.testing.assert_close(out_a, a - ma + ma.sign() * mb.abs(), rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# 6. parameters, layouts, registry
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, name, value", [
    (lambda: MixUp(alpha=-1.0), "mixup.alpha", "-1.0"),
    (lambda: MixUp(alpha=0.0), "mixup.alpha", "0.0"),
    (lambda: CutMix(lam_min=0.6, lam_max=0.2), "cutmix.lam_max", "0.2"),
    (lambda: CutMix(lam_min=-0.1), "cutmix.lam_min", "-0.1"),
    (lambda: BidirectionalCopyPaste(ratio=1.5), "bidirectional_copy_paste.ratio", "1.5"),
    (lambda: MultiScalePatches(num_coarse=-1), "multiscale_patches.num_coarse", "-1"),
    (lambda: MultiScalePatches(num_fine=1.5), "multiscale_patches.num_fine", "1.5"),
    (lambda: MultiScalePatches(fine=2.0), "multiscale_patches.fine", "2.0"),
    (lambda: FrequencyAmplitudeSwitch(size=0.0), "frequency_amplitude_switch.size", "0.0"),
    (lambda: FrequencyAmplitudeSwitch(size=-0.1), "frequency_amplitude_switch.size", "-0.1"),
    (lambda: amplitude_switch(torch.zeros(1, 4), torch.zeros(1, 4), (4,), 0.0),
     "frequency_amplitude_switch.size", "0.0"),
    (lambda: region_weights(torch.ones(1, 4), True, u_weight=-1.0), "u_weight", "-1.0"),
])
def test_bad_parameters_raise_one_sentence(make, name, value):
    with pytest.raises(ParameterError) as err:
        make()
    msg = str(err.value)
    assert name in msg and value in msg and "\n" not in msg


def test_bad_layouts_raise_mentor_errors():
    x = torch.zeros(2, 12)
    with pytest.raises(MentorError, match="input shape"):
        CutMix().mix(x, x, (1, 2, 2, 3), _gen(0))
    with pytest.raises(MentorError, match="do not match"):
        BidirectionalCopyPaste().mix(x, x, (5, 5), _gen(0))
    with pytest.raises(MentorError, match="differ in shape"):
        BidirectionalCopyPaste().mix(x, torch.zeros(3, 12), (12,), _gen(0))
    with pytest.raises(MentorError, match="differ in shape"):
        amplitude_switch(x, torch.zeros(3, 12), (3, 4), 0.5)


def test_registry_entries_build_with_defaults():
    assert set(MIXERS.names()) >= {"mixup", "cutmix", "bidirectional_copy_paste",
                                   "multiscale_patches", "frequency_amplitude_switch"}
    for entry in MIXERS.entries():
        assert entry.description and entry.paper
        entry.obj()
