"""Unit tests for the RandAugment image view (``mentor.data.image_views``).

Layout:

1. Each op, through ``randaugment`` with that op alone, against a naive float64 reference
   (loops over pixels) on hand-made images, including the per-image [0, 1] range mapping of
   the photometric ops; rotate by 90° against ``torch.rot90``.
2. Magnitude 0 is the identity for every op with a magnitude; the draws pick the op.
3. Determinism: the same draws give the same view; through :class:`Augment` a row's view
   does not depend on the batch size or on the other rows.
4. Shapes and dtypes are kept for (H, W), (1, H, W) and (3, H, W) layouts.
5. Bad parameters and layouts raise mentor's one-sentence errors naming the parameter.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mentor.data import image_views as iv
from mentor.data.augment import Augment
from mentor.errors import MentorError
from mentor.registry import AUGMENTS

M = 0.7  # the magnitude the reference tests use
LAYOUTS = [(6, 6), (1, 6, 6), (3, 6, 6), (3, 5, 7)]
WITH_MAGNITUDE = [name for name, op in iv.OPS.items()
                  if name not in ("identity", "autocontrast", "equalize")]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(shape, b: int = 3, seed: int = 0) -> torch.Tensor:
    """Hand-made float64 rows: a standardized-looking random image, a ramp with ties (values
    on a coarse grid) and a mostly flat image with one bright and one dark pixel."""
    n = math.prod(shape)
    g = _gen(seed)
    rows = [2 * torch.randn(n, generator=g, dtype=torch.float64) - 0.5,
            (torch.arange(n, dtype=torch.float64) * 7 % 11) / 4 - 1.2,
            torch.full((n,), 0.3, dtype=torch.float64)]
    rows[2][n // 3], rows[2][n // 2] = 2.5, -1.0
    return torch.stack(rows[:b] + [rows[i % 3] * 0.5 + 1 for i in range(3, b)])


def _draws(b: int, sign: int = 1, magnitude: float = 0.5) -> torch.Tensor:
    """Draws of one slot that pick the first op of ``ops``, apply it, with direction
    ``sign`` and a random magnitude of ``magnitude``; the other slots are unused."""
    slot = [0.0, magnitude, 0.25 if sign > 0 else 0.75, 0.0]
    return torch.tensor([slot + [0.5] * (iv.randaugment.draws - 4)]).expand(b, -1)


def _only(name: str, x, shape, m=M, sign=1) -> torch.Tensor:
    """``randaugment`` applying op ``name`` once at magnitude ``m``, direction ``sign``."""
    return iv.randaugment(x, _draws(len(x), sign), shape, n=1, magnitude=m, p=1.0, ops=[name])


# ----------------------------------------------------------------------------- references

def _maps(row, shape) -> np.ndarray:
    c = 1 if len(shape) == 2 else shape[0]
    return row.numpy().astype(np.float64).reshape(c, shape[-2], shape[-1])


def ref_tone(img: np.ndarray, f) -> np.ndarray:
    """The per-image range mapping: to [0, 1] by the image's min and max, op, clip, back."""
    lo, hi = img.min(), img.max()
    span = hi - lo if hi > lo else 1.0
    return np.clip(f((img - lo) / span), 0, 1) * span + lo


def ref_gray(v: np.ndarray) -> np.ndarray:
    if v.shape[0] == 3:
        return 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2]
    return v.mean(0)


def ref_solarize(v, t):
    out = v.copy()
    for idx, val in np.ndenumerate(v):
        if val > t:
            out[idx] = 1 - val
    return out


def ref_posterize(v, bits):
    out = v.copy()
    for idx, val in np.ndenumerate(v):
        p = int(round(val * 255))
        out[idx] = (p & ~((1 << (8 - bits)) - 1)) / 255
    return out


def ref_equalize(v):
    out = v.copy()
    for c in range(v.shape[0]):
        vals = v[c].ravel()
        n, lowest = len(vals), int((vals <= vals.min()).sum())
        if lowest == n:
            continue
        for idx, val in np.ndenumerate(v[c]):
            out[(c,) + idx] = (int((vals <= val).sum()) - lowest) / (n - lowest)
    return out


def ref_autocontrast(v):
    out = v.copy()
    for c in range(v.shape[0]):
        lo, hi = v[c].min(), v[c].max()
        if hi > lo:
            out[c] = (v[c] - lo) / (hi - lo)
    return out


def ref_color(v, f):
    if v.shape[0] != 3:
        return v
    g = ref_gray(v)
    return g + f * (v - g)


def ref_contrast(v, f):
    mean = ref_gray(v).mean()
    return mean + f * (v - mean)


def ref_sharpness(v, f):
    c, h, w = v.shape
    smooth = v.copy()
    for ch in range(c):
        for i in range(1, h - 1):
            for j in range(1, w - 1):
                total = sum(v[ch, i + di, j + dj] for di in (-1, 0, 1) for dj in (-1, 0, 1))
                smooth[ch, i, j] = (total + 4 * v[ch, i, j]) / 13
    return smooth + f * (v - smooth)


def ref_warp(img: np.ndarray, a, t) -> np.ndarray:
    """Output pixel p (about the centre) takes the input at a·p + t, bilinear, zero fill."""
    c, h, w = img.shape
    out = np.zeros_like(img)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    for i in range(h):
        for j in range(w):
            x, y = j - cx, i - cy
            col = a[0][0] * x + a[0][1] * y + t[0] + cx
            row = a[1][0] * x + a[1][1] * y + t[1] + cy
            c0, r0 = math.floor(col), math.floor(row)
            for rr, wr in ((r0, 1 - (row - r0)), (r0 + 1, row - r0)):
                for cc, wc in ((c0, 1 - (col - c0)), (c0 + 1, col - c0)):
                    if 0 <= rr < h and 0 <= cc < w:
                        out[:, i, j] += wr * wc * img[:, rr, cc]
    return out


def _rotation(deg):
    r = math.radians(deg)
    return [[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]]


def _reference(name: str, img: np.ndarray, sign: int) -> np.ndarray:
    """The naive float64 output of op ``name`` at magnitude M, direction ``sign``."""
    f = 1 + sign * 0.9 * M
    h, w = img.shape[-2:]
    tone = {"solarize": lambda v: ref_solarize(v, 1 - M),
            "posterize": lambda v: ref_posterize(v, 8 - int(4.999 * M)),
            "brightness": lambda v: f * v, "contrast": lambda v: ref_contrast(v, f),
            "color": lambda v: ref_color(v, f), "sharpness": lambda v: ref_sharpness(v, f),
            "equalize": ref_equalize, "autocontrast": ref_autocontrast}
    if name in tone:
        return ref_tone(img, tone[name])
    s = 0.3 * M * sign
    geometry = {"rotate": (_rotation(30 * M * sign), (0, 0)),
                "shear_x": ([[1, s], [0, 1]], (0, 0)), "shear_y": ([[1, 0], [s, 1]], (0, 0)),
                "translate_x": ([[1, 0], [0, 1]], (round(s * w), 0)),
                "translate_y": ([[1, 0], [0, 1]], (0, round(s * h)))}
    if name in geometry:
        return ref_warp(img, *geometry[name])
    return img


# ----------------------------------------------------------------------------- 1. each op

@pytest.mark.parametrize("shape", [(6, 6), (3, 5, 7)])
@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("name", list(iv.OPS))
def test_each_op_matches_a_naive_float64_reference(name, sign, shape):
    x = _images(shape, b=4)
    out = _only(name, x, shape, sign=sign)
    for i in range(len(x)):
        want = _reference(name, _maps(x[i], shape), sign)
        got = out[i].reshape(want.shape).numpy()
        np.testing.assert_allclose(got, want, atol=1e-9, err_msg=f"{name} row {i}")


def test_the_references_change_the_images():
    """Guards the reference test: at magnitude M every op but identity (and color on one
    channel) changes some hand-made image."""
    x = _images((3, 5, 7), b=4)
    for name in iv.OPS:
        out = _only(name, x, (3, 5, 7))
        assert (name == "identity") == torch.allclose(out, x), name


def test_rotate_90_is_rot90_on_a_square_image():
    maps = torch.randn(2, 3, 7, 7, dtype=torch.float64, generator=_gen(1))
    got = iv.rotate(maps, torch.tensor([90.0, -90.0], dtype=torch.float64))
    want = torch.stack([torch.rot90(maps[0], 1, (-2, -1)), torch.rot90(maps[1], -1, (-2, -1))])
    torch.testing.assert_close(got[..., 1:-1, 1:-1], want[..., 1:-1, 1:-1], atol=1e-6, rtol=0)


def test_posterize_keeps_the_top_bits_and_eight_bits_are_the_identity():
    v = torch.tensor([0.0, 0.2, 0.5, 0.77, 1.0], dtype=torch.float64).view(1, 1, 1, 5)
    got = iv.posterize(v, torch.tensor([4.0]))
    want = [(int(round(t * 255)) & 0xF0) / 255 for t in (0.0, 0.2, 0.5, 0.77, 1.0)]
    assert got.flatten().tolist() == pytest.approx(want)
    assert torch.equal(iv.posterize(v, torch.tensor([8.0])), v)


# ------------------------------------------------------- 2. magnitude 0, choosing the op

@pytest.mark.parametrize("shape", LAYOUTS)
@pytest.mark.parametrize("name", WITH_MAGNITUDE)
def test_magnitude_zero_is_the_identity(name, shape):
    x = _images(shape, b=3)
    for sign in (1, -1):
        torch.testing.assert_close(_only(name, x, shape, m=0.0, sign=sign), x,
                                   atol=1e-12, rtol=0)


def test_random_magnitude_zero_draw_is_the_identity():
    x = _images((3, 6, 6), b=3)
    u = _draws(3, magnitude=0.0)
    for name in WITH_MAGNITUDE:
        out = iv.randaugment(x, u, (3, 6, 6), n=1, magnitude="random", p=1.0, ops=[name])
        torch.testing.assert_close(out, x, atol=1e-12, rtol=0)


def test_the_draws_pick_the_op_and_whether_it_is_applied():
    names = list(iv.OPS)
    k = len(names)
    x = _images((3, 6, 6), b=k).repeat(2, 1)[:k]
    u = torch.full((k, iv.randaugment.draws), 0.3, dtype=torch.float32)
    u[:, 0] = (torch.arange(k) + 0.5) / k  # row i falls in op i's bin
    u[:, 3] = torch.where(torch.arange(k) % 3 == 0, 0.9, 0.1)  # every third row: not applied
    out = iv.randaugment(x, u, (3, 6, 6), n=1, magnitude=M, p=0.5)
    for i, name in enumerate(names):
        want = x[i] if i % 3 == 0 else _only(name, x[i:i + 1], (3, 6, 6))[0]
        torch.testing.assert_close(out[i], want, atol=1e-12, rtol=0, msg=name)


def test_a_slot_uses_only_its_own_draws():
    x = _images((3, 6, 6), b=3).float()
    u = torch.rand(3, iv.randaugment.draws, generator=_gen(2))
    one = iv.randaugment(x, u, (3, 6, 6), n=1, p=1.0)
    u2 = u.clone()
    u2[:, 4:] = torch.rand(3, iv.randaugment.draws - 4, generator=_gen(3))
    assert torch.equal(one, iv.randaugment(x, u2, (3, 6, 6), n=1, p=1.0))
    assert torch.equal(iv.randaugment(x, u, (3, 6, 6), n=0), x)


def test_slots_apply_in_order_each_with_its_own_draws():
    x = _images((3, 6, 6), b=8)
    u = torch.rand(8, iv.randaugment.draws, generator=_gen(12))
    first = iv.randaugment(x, u, (3, 6, 6), n=1, p=1.0)
    second = torch.cat([u[:, 4:8], u[:, :4], u[:, 8:]], 1)  # slot 1's draws as slot 0's
    want = iv.randaugment(first, second, (3, 6, 6), n=1, p=1.0)
    assert torch.equal(iv.randaugment(x, u, (3, 6, 6), n=2, p=1.0), want)


# ----------------------------------------------------------------------------- 3. determinism

@pytest.mark.parametrize("shape", LAYOUTS)
def test_same_draws_give_the_same_view(shape):
    x = torch.randn(16, math.prod(shape), generator=_gen(4))
    u = torch.rand(16, iv.randaugment.draws, generator=_gen(5))
    a = iv.randaugment(x, u, shape, n=4, p=1.0)
    assert torch.equal(a, iv.randaugment(x.clone(), u.clone(), shape, n=4, p=1.0))
    assert not torch.equal(a, x)


@pytest.mark.parametrize("params", [{}, {"n": 3, "magnitude": 0.9, "p": 1.0}])
def test_a_rows_view_depends_on_neither_batch_size_nor_other_rows(params):
    shape = (3, 8, 8)
    aug = Augment([("randaugment", params)], shape)
    x = torch.randn(64, math.prod(shape), generator=_gen(6))
    full = aug(x, _gen(7))
    head = aug(x[:5], _gen(7))
    other = x.clone()
    other[5:] = torch.randn(59, x.shape[1], generator=_gen(8))
    assert torch.equal(full[:5], head)
    assert torch.equal(aug(other, _gen(7))[:5], full[:5])
    assert not torch.equal(full, aug(x, _gen(9)))


# ----------------------------------------------------------------------------- 4. layouts

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("shape", LAYOUTS)
@pytest.mark.parametrize("name", list(iv.OPS))
def test_every_op_keeps_shape_and_dtype_on_every_layout(name, shape, dtype):
    x = torch.randn(5, math.prod(shape), generator=_gen(10)).to(dtype)
    u = torch.rand(5, iv.randaugment.draws, generator=_gen(11))
    out = iv.randaugment(x, u, shape, n=2, p=1.0, ops=[name])
    assert out.shape == x.shape and out.dtype == dtype and bool(out.isfinite().all())


def test_color_is_the_identity_without_three_channels():
    for shape in ((6, 6), (1, 6, 6), (2, 6, 6)):
        x = _images(shape)
        torch.testing.assert_close(_only("color", x, shape, m=1.0), x, atol=1e-12, rtol=0)


def test_registered_with_description_and_paper():
    entry = AUGMENTS.entry("randaugment")
    assert entry.description.startswith("RandAugment: ") and "Cubuk" in entry.paper
    assert iv.randaugment.draws == iv.MAX_OPS * iv.SLOT_DRAWS


# ----------------------------------------------------------------------------- 5. errors

@pytest.mark.parametrize("params, needle", [
    ({"n": 5}, "randaugment.n must be an integer in [0, 4]"),
    ({"n": 1.5}, "randaugment.n must be an integer"),
    ({"n": True}, "randaugment.n must be an integer"),
    ({"n": -1}, "randaugment.n must be an integer"),
    ({"magnitude": 1.5}, "randaugment.magnitude must be in [0, 1], got 1.5"),
    ({"magnitude": "rand"}, "randaugment.magnitude must be a number in [0, 1] or 'random'"),
    ({"magnitude": float("nan")}, "randaugment.magnitude must be a finite number"),
    ({"p": -0.1}, "randaugment.p must be in [0, 1]"),
    ({"ops": ["rotate", "blur"]}, "randaugment.ops has 'blur', which is not a RandAugment op"),
    ({"ops": []}, "randaugment.ops must be a non-empty list of op names"),
    ({"ops": "rotate"}, "randaugment.ops must be a non-empty list of op names"),
])
def test_bad_parameters_raise_one_sentence_naming_the_parameter(params, needle):
    with pytest.raises(MentorError) as err:
        Augment([("randaugment", params)], (3, 8, 8), where="train.augment.strong")
    msg = str(err.value)
    assert msg.startswith("train.augment.strong[0]: ") and needle in msg, msg
    assert "\n" not in msg and ". " not in msg, msg


def test_one_dimensional_rows_are_refused():
    with pytest.raises(MentorError, match=r"randaugment: input shape \(10,\) is a 1-D row; "
                                          r"expected an image layout"):
        Augment([("randaugment", {})], (10,))
