"""Unit tests for the logit losses (``mentor.losses.logits`` / ``mentor.losses.base``).

Layout:

1. Naive references: explicit Python loops over rows and classes, ``math.exp``/``math.log`` on
   Python floats, compared with the vectorised torch implementations in float64.
2. Zero-loss and structural identities (KD/DKD vanish at equality, DKD decomposition).
3. Logit-standardization invariance under ``z -> a*z + b``.
4. A contract battery parametrised over every entry of :data:`mentor.registry.LOSSES`, built
   only from each :class:`mentor.losses.LossSpec`, so losses registered later are covered too.
5. Input validation (bad parameters, shape mismatch).
"""

from __future__ import annotations

import math

import pytest
import torch
from naive import kl as _kl, log_softmax as _log_softmax, logsumexp as _logsumexp

import mentor.losses  # noqa: F401  (registers the built-in losses)
from mentor.errors import ParameterError
from mentor.losses import cross_entropy, dkd, kd, logit_standardize, standardized
from mentor.registry import LOSSES

RTOL = 1e-10
ATOL = 1e-12

TEMPERATURES = [0.5, 1.0, 2.0, 4.0, 10.0]
# logit scales: small, ordinary, large (logits up to about +-50)
SCALES = [0.1, 3.0, 50.0]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _logits(seed: int, b: int = 5, c: int = 7, scale: float = 3.0,
            dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(b, c, generator=g, dtype=torch.float64) * scale
    if scale == 50.0:  # make sure the extremes +-50 really occur
        z = z.clamp(-50.0, 50.0)
        z[0, 0], z[0, 1] = 50.0, -50.0
    return z.to(dtype)


def _labels(seed: int, b: int = 5, c: int = 7) -> torch.Tensor:
    g = torch.Generator().manual_seed(1000 + seed)
    return torch.randint(0, c, (b,), generator=g)





# --- naive references (Python floats, explicit loops) -----------------------------------------

def ref_kd(zs: torch.Tensor, zt: torch.Tensor, t: float) -> list[float]:
    out = []
    for rs, rt in zip(zs.tolist(), zt.tolist()):
        log_ps, log_pt = _log_softmax(rs, t), _log_softmax(rt, t)
        total = 0.0
        for c in range(len(rs)):
            total += math.exp(log_pt[c]) * (log_pt[c] - log_ps[c])
        out.append(t * t * total)
    return out


def _ref_dkd_parts(rs: list[float], rt: list[float], y: int, t: float) -> tuple[float, float]:
    """(TCKD, NCKD) of one row, both without the T^2 factor."""
    log_ps, log_pt = _log_softmax(rs, t), _log_softmax(rt, t)
    others = [c for c in range(len(rs)) if c != y]
    # binary [p_target, 1 - p_target]; the non-target mass is summed (not 1 - p) for accuracy
    bin_s = [log_ps[y], _logsumexp([log_ps[c] for c in others])]
    bin_t = [log_pt[y], _logsumexp([log_pt[c] for c in others])]
    tckd = _kl(bin_t, bin_s)
    # softmax over z/T with the target class removed
    q_s = _log_softmax([rs[c] for c in others], t)
    q_t = _log_softmax([rt[c] for c in others], t)
    nckd = _kl(q_t, q_s)
    return tckd, nckd


def ref_dkd(zs, zt, labels, alpha: float, beta: float, t: float) -> list[float]:
    out = []
    for rs, rt, y in zip(zs.tolist(), zt.tolist(), labels.tolist()):
        tckd, nckd = _ref_dkd_parts(rs, rt, y, t)
        out.append(t * t * (alpha * tckd + beta * nckd))
    return out


def ref_ce(z: torch.Tensor, labels: torch.Tensor, eps: float) -> list[float]:
    out = []
    for row, y in zip(z.tolist(), labels.tolist()):
        log_p = _log_softmax(row, 1.0)
        nll = -log_p[y]
        mean_neg_log_p = 0.0
        for c in range(len(row)):
            mean_neg_log_p += -log_p[c]
        mean_neg_log_p /= len(row)
        out.append((1.0 - eps) * nll + eps * mean_neg_log_p)
    return out


def ref_standardize(z: torch.Tensor, eps: float = 1e-7) -> list[list[float]]:
    out = []
    for row in z.tolist():
        n = len(row)
        mean = 0.0
        for x in row:
            mean += x
        mean /= n
        var = 0.0
        for x in row:
            var += (x - mean) ** 2
        std = math.sqrt(var / (n - 1))  # unbiased
        out.append([(x - mean) / (eps + std) for x in row])
    return out


def _close(actual: torch.Tensor, expected, rtol: float = RTOL, atol: float = ATOL) -> None:
    expected_t = torch.tensor(expected, dtype=torch.float64)
    assert actual.dtype == torch.float64
    torch.testing.assert_close(actual, expected_t, rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------------------
# 1. naive float64 references
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("t", TEMPERATURES)
def test_kd_matches_naive_reference(t, scale):
    """kd == T^2 * sum_c p_t,c (log p_t,c - log p_s,c), p = softmax(z/T), row by row."""
    zs, zt = _logits(1, scale=scale), _logits(2, scale=scale)
    _close(kd(zs, zt, temperature=t), ref_kd(zs, zt, t))


@pytest.mark.parametrize("alpha,beta", [(1.0, 8.0), (0.5, 2.0), (2.0, 0.0), (0.0, 1.0)])
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("t", TEMPERATURES)
def test_dkd_matches_naive_reference(t, scale, alpha, beta):
    """dkd == T^2 * (alpha*TCKD + beta*NCKD) with TCKD/NCKD computed class by class."""
    zs, zt, y = _logits(3, scale=scale), _logits(4, scale=scale), _labels(3)
    out = dkd(zs, zt, y, alpha=alpha, beta=beta, temperature=t)
    _close(out, ref_dkd(zs, zt, y, alpha, beta, t))


@pytest.mark.parametrize("t", [1.0, 4.0])
def test_dkd_matches_naive_reference_for_extreme_logits(t):
    """Log-space DKD stays exact for |z/T| far beyond 1000 (a ``-1000`` mask would not)."""
    g = torch.Generator().manual_seed(21)
    zs = torch.randn(5, 7, generator=g, dtype=torch.float64) * 2000.0
    zt = torch.randn(5, 7, generator=g, dtype=torch.float64) * 2000.0
    y = _labels(21)
    zs[0] = torch.tensor([-3000.0, -2500.0, -2000.0, -2600.0, -2900.0, -2100.0, -2200.0],
                         dtype=torch.float64)
    y[0] = 0
    out = dkd(zs, zt, y, alpha=1.0, beta=8.0, temperature=t)
    assert torch.isfinite(out).all()
    _close(out, ref_dkd(zs, zt, y, 1.0, 8.0, t))


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5, 0.9])
@pytest.mark.parametrize("scale", SCALES)
def test_cross_entropy_matches_naive_reference(scale, eps):
    """ce == (1-eps)*nll + eps*mean_c(-log p_c) (torch label-smoothing semantics)."""
    z, y = _logits(5, scale=scale), _labels(5)
    _close(cross_entropy(z, None, y, label_smoothing=eps), ref_ce(z, y, eps))


def test_cross_entropy_default_is_plain_nll():
    """Without label_smoothing, ce is exactly -log softmax(z)[y]."""
    z, y = _logits(6), _labels(6)
    _close(cross_entropy(z, None, y), ref_ce(z, y, 0.0))


@pytest.mark.parametrize("scale", SCALES)
def test_logit_standardize_matches_naive_reference(scale):
    """logit_standardize == (z - mean) / (1e-7 + unbiased std), row by row."""
    z = _logits(7, scale=scale)
    out = logit_standardize(z)
    assert out.shape == z.shape
    _close(out, ref_standardize(z))


def test_logit_standardize_uses_unbiased_std():
    """With 2 classes [0, 2] the unbiased std is sqrt(2): output is +-1/sqrt(2) (not +-1)."""
    out = logit_standardize(torch.tensor([[0.0, 2.0]], dtype=torch.float64))
    expected = 1.0 / (1e-7 + math.sqrt(2.0))
    _close(out, [[-expected, expected]])


# ---------------------------------------------------------------------------------------------
# 2. zero loss at equality, DKD structure
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("t", TEMPERATURES)
def test_kd_and_dkd_vanish_when_student_equals_teacher(t, scale):
    """KL(p || p) = 0: kd and dkd are 0 (to 1e-12) when both logit sets are equal."""
    z, y = _logits(8, scale=scale), _labels(8)
    assert kd(z, z.clone(), temperature=t).abs().max().item() <= 1e-12
    assert dkd(z, z.clone(), y, temperature=t).abs().max().item() <= 1e-12


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("t", TEMPERATURES)
def test_dkd_alpha1_beta0_is_the_binary_target_term(t, scale):
    """dkd(alpha=1, beta=0) == T^2 * KL([p_t,y, 1-p_t,y] || [p_s,y, 1-p_s,y]), naive."""
    zs, zt, y = _logits(9, scale=scale), _logits(10, scale=scale), _labels(9)
    expected = []
    for rs, rt, yy in zip(zs.tolist(), zt.tolist(), y.tolist()):
        ps = [math.exp(v) for v in _log_softmax(rs, t)]
        pt = [math.exp(v) for v in _log_softmax(rt, t)]
        ps_y, pt_y = ps[yy], pt[yy]
        ps_o = sum(p for c, p in enumerate(ps) if c != yy)
        pt_o = sum(p for c, p in enumerate(pt) if c != yy)
        term = 0.0
        for p_t, p_s in ((pt_y, ps_y), (pt_o, ps_o)):
            if p_t > 0.0:
                term += p_t * (math.log(p_t) - math.log(p_s))
        expected.append(t * t * term)
    out = dkd(zs, zt, y, alpha=1.0, beta=0.0, temperature=t)
    # the binary term goes through probabilities here (not log space): a slightly looser atol
    _close(out, expected, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("t", [1.0, 4.0])
def test_kd_decomposes_into_tckd_plus_weighted_nckd(t):
    """Zhao et al. Eq. (1): KD = TCKD + (1 - p_t,target) * NCKD, via dkd's own two terms."""
    zs, zt, y = _logits(11), _logits(12), _labels(11)
    tckd = dkd(zs, zt, y, alpha=1.0, beta=0.0, temperature=t)
    nckd = dkd(zs, zt, y, alpha=0.0, beta=1.0, temperature=t)
    pt_other = 1.0 - torch.softmax(zt / t, -1).gather(-1, y[:, None]).squeeze(-1)
    torch.testing.assert_close(kd(zs, zt, temperature=t), tckd + pt_other * nckd,
                               rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# 3. logit standardization invariance
# ---------------------------------------------------------------------------------------------

AFFINE = [(1.0, 5.0), (3.0, -2.0), (0.5, 0.0), (7.5, 100.0), (2.0, "per-row")]


def _affine(z: torch.Tensor, a: float, b) -> torch.Tensor:
    if b == "per-row":
        b = torch.linspace(-30.0, 30.0, z.shape[0], dtype=z.dtype)[:, None]
    return a * z + b


def _std_losses():
    return {"kd": (standardized(kd), {"temperature": 2.0}),
            "dkd": (standardized(dkd), {"alpha": 1.0, "beta": 8.0, "temperature": 2.0})}


@pytest.mark.parametrize("which", ["student", "teacher"])
@pytest.mark.parametrize("a,b", AFFINE)
@pytest.mark.parametrize("name", ["kd", "dkd"])
def test_standardized_loss_invariant_to_affine_logit_transform(name, a, b, which):
    """standardized(kd/dkd) is unchanged by z -> a*z + b (a > 0, b scalar or per row)."""
    fn, params = _std_losses()[name]
    zs, zt, y = _logits(13), _logits(14), _labels(13)
    base = fn(zs, zt, y, **params)
    if which == "student":
        moved = fn(_affine(zs, a, b), zt, y, **params)
    else:
        moved = fn(zs, _affine(zt, a, b), y, **params)
    assert base.abs().min().item() > 1e-3  # a non-trivial loss, so the check means something
    torch.testing.assert_close(moved, base, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["kd", "dkd"])
def test_standardized_loss_invariant_when_both_inputs_move(name):
    """Different affine maps applied to student and teacher at once leave the loss unchanged."""
    fn, params = _std_losses()[name]
    zs, zt, y = _logits(15), _logits(16), _labels(15)
    base = fn(zs, zt, y, **params)
    moved = fn(_affine(zs, 4.0, -3.0), _affine(zt, 0.7, "per-row"), y, **params)
    torch.testing.assert_close(moved, base, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("a,b", [(3.0, -2.0), (0.5, 0.0), (2.0, "per-row")])
def test_plain_kd_is_not_invariant_to_logit_scale(a, b):
    """Control: without standardization, rescaling the teacher changes kd (so the above can fail).

    A pure shift (a=1) is a softmax invariance, hence only cases with a != 1 are used.
    """
    zs, zt = _logits(17), _logits(18)
    base = kd(zs, zt, temperature=2.0)
    moved = kd(zs, _affine(zt, a, b), temperature=2.0)
    assert (moved - base).abs().max().item() > 1e-2


def test_standardized_wrapper_equals_loss_on_standardized_inputs():
    """standardized(fn)(s, t, y) == fn(logit_standardize(s), logit_standardize(t), y)."""
    zs, zt, y = _logits(19), _logits(20), _labels(19)
    expected = dkd(logit_standardize(zs), logit_standardize(zt), y, temperature=3.0)
    assert torch.equal(standardized(dkd)(zs, zt, y, temperature=3.0), expected)


# ---------------------------------------------------------------------------------------------
# 4. contract battery over every registered loss
# ---------------------------------------------------------------------------------------------

LOSS_NAMES = LOSSES.names()
B, C = 6, 5


def _spec(name):
    return LOSSES.get(name)


def _inputs(spec, dtype=torch.float64, seed: int = 0, b: int = B, c: int = C):
    """(student, teacher, labels) for ``spec``; teacher/labels are None when not consumed."""
    student = _logits(100 + seed, b=b, c=c, dtype=dtype)
    teacher = _logits(200 + seed, b=b, c=c, dtype=dtype) if spec.needs_teacher else None
    labels = _labels(300 + seed, b=b, c=c) if spec.needs_labels else None
    return student, teacher, labels


def _expand(spec, z):
    """(B, C) -> (B, C, *spec.trailing_dims) for losses on maps (e.g. channel_kd), with each
    position scaled differently so the maps are not constant."""
    if z is None or not spec.trailing_dims or z.ndim != 2:
        return z
    n = spec.trailing_dims[0]
    scale = torch.linspace(0.5, 1.5, n, dtype=z.dtype)
    return z.unsqueeze(-1) * scale


def _call(spec, student, teacher, labels, **overrides):
    params = {**spec.defaults, **overrides}
    return spec.fn(_expand(spec, student), _expand(spec, teacher), labels, **params)


def test_registry_has_the_builtin_losses():
    """The battery is not vacuous: the built-in losses are registered as LossSpec objects."""
    assert {"ce", "kd", "dkd"} <= set(LOSS_NAMES)
    for name in LOSS_NAMES:
        spec = _spec(name)
        assert isinstance(spec, mentor.losses.LossSpec)
        assert spec.name == name
        assert set(spec.constraints) <= set(spec.defaults)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_contract_shape_finite_and_gradient(name):
    """Output is (B,), finite, with finite and not all-zero gradients w.r.t. the student."""
    spec = _spec(name)
    student, teacher, labels = _inputs(spec)
    student.requires_grad_(True)
    out = _call(spec, student, teacher, labels)
    assert out.shape == (B,)
    assert torch.isfinite(out).all()
    (grad,) = torch.autograd.grad(out.sum(), student)
    assert grad.shape == student.shape
    assert torch.isfinite(grad).all()
    assert grad.abs().max().item() > 0.0


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_contract_finite_gradient_with_large_logits(name):
    """Logits of about +-50 still give finite values and gradients (log-space computation)."""
    spec = _spec(name)
    student = _logits(400, b=B, c=C, scale=50.0).requires_grad_(True)
    teacher = -_logits(401, b=B, c=C, scale=50.0) if spec.needs_teacher else None
    labels = _labels(400, b=B, c=C) if spec.needs_labels else None
    out = _call(spec, student, teacher, labels)
    (grad,) = torch.autograd.grad(out.sum(), student)
    assert torch.isfinite(out).all() and torch.isfinite(grad).all()


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_contract_deterministic(name):
    """Same inputs give bitwise-identical outputs."""
    spec = _spec(name)
    student, teacher, labels = _inputs(spec)
    first = _call(spec, student, teacher, labels)
    second = _call(spec, student.clone(), None if teacher is None else teacher.clone(),
                   None if labels is None else labels.clone())
    assert torch.equal(first, second)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_contract_masking_equals_slicing(name):
    """loss(rows[mask]) == loss(all rows)[mask]: every row's value depends only on that row."""
    spec = _spec(name)
    if spec.batch_coupled:
        pytest.skip(f"{name} couples rows through batch statistics by design")
    student, teacher, labels = _inputs(spec, b=8)
    mask = torch.tensor([True, False, True, True, False, False, True, False])
    full = _call(spec, student, teacher, labels)
    part = _call(spec, student[mask], None if teacher is None else teacher[mask],
                 None if labels is None else labels[mask])
    assert part.shape == (int(mask.sum()),)
    torch.testing.assert_close(part, full[mask], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_contract_float32_and_float64(name, dtype):
    """Both precisions work, keep their dtype, and agree with each other."""
    spec = _spec(name)
    student, teacher, labels = _inputs(spec, dtype=dtype)
    out = _call(spec, student, teacher, labels)
    assert out.dtype == dtype
    assert out.shape == (B,)
    assert torch.isfinite(out).all()
    s64, t64, _ = _inputs(spec, dtype=torch.float64)
    ref = _call(spec, s64, t64, labels)
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in LOSS_NAMES if _spec(n).needs_teacher])
def test_contract_nonzero_when_student_differs_from_teacher(name):
    """A teacher-consuming loss is positive somewhere when student != teacher."""
    spec = _spec(name)
    student, teacher, labels = _inputs(spec)
    assert _call(spec, student, teacher, labels).abs().max().item() > 1e-6


# --- bad parameters -----------------------------------------------------------------------------

def _violations(rule: dict) -> list:
    """Values that break one ``check_param`` rule (low/high, open or closed)."""
    bad = []
    low, high = rule.get("low"), rule.get("high")
    if low is not None:
        bad.append(low - max(1.0, abs(low)))
        if rule.get("low_open"):
            bad.append(low)
    if high is not None:
        bad.append(high + max(1.0, abs(high)))
        if rule.get("high_open"):
            bad.append(high)
    return bad


BAD_PARAMS = [
    pytest.param(name, key, value, id=f"{name}.{key}={value!r}")
    for name in LOSS_NAMES
    for key, rule in sorted(_spec(name).constraints.items())
    for value in _violations(rule)
]

# Losses whose function does not validate its own parameters (a known bug: e.g.
# cross_entropy(..., label_smoothing=-0.5) computes a value): xfail is strict, so the
# entry must be removed once the function validates.
FN_DOES_NOT_VALIDATE: set[str] = set()


def test_bad_param_cases_exist():
    """The bad-parameter battery covers every constraint of kd, dkd and ce."""
    ids = {(p.values[0], p.values[1]) for p in BAD_PARAMS}
    assert {("kd", "temperature"), ("dkd", "alpha"), ("dkd", "beta"), ("dkd", "temperature"),
            ("ce", "label_smoothing")} <= ids


@pytest.mark.parametrize("name,key,value", BAD_PARAMS)
def test_spec_check_rejects_out_of_range(name, key, value):
    """spec.check raises ParameterError naming '<loss>.<param>' and the bad value."""
    with pytest.raises(ParameterError) as err:
        _spec(name).check({key: value})
    msg = str(err.value)
    assert f"{name}.{key}" in msg
    assert repr(value) in msg


@pytest.mark.parametrize("name,key,value", [
    pytest.param(*p.values, id=p.id,
                 marks=[pytest.mark.xfail(strict=True, reason=f"{p.values[0]} does not validate")]
                 if p.values[0] in FN_DOES_NOT_VALIDATE else [])
    for p in BAD_PARAMS
])
def test_loss_function_rejects_out_of_range(name, key, value):
    """Calling the loss function itself with a bad value raises the same ParameterError."""
    spec = _spec(name)
    student, teacher, labels = _inputs(spec)
    with pytest.raises(ParameterError) as err:
        _call(spec, student, teacher, labels, **{key: value})
    msg = str(err.value)
    assert f"{name}.{key}" in msg
    assert repr(value) in msg


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_spec_check_rejects_unknown_parameter(name):
    """An unknown parameter name raises ParameterError that names it."""
    with pytest.raises(ParameterError, match="nonexistent_param"):
        _spec(name).check({"nonexistent_param": 1})


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_spec_check_rejects_non_numeric_values(name):
    """A string (or bool) for a constrained numeric parameter raises ParameterError."""
    spec = _spec(name)
    if not spec.constraints:
        pytest.skip(f"{name} declares no numeric constraints")
    for key in spec.constraints:
        for value in ("1", True):
            with pytest.raises(ParameterError) as err:
                spec.check({key: value})
            assert f"{name}.{key}" in str(err.value)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_spec_check_accepts_defaults(name):
    """The declared defaults satisfy the declared constraints."""
    spec = _spec(name)
    assert spec.check({}) == spec.defaults


# ---------------------------------------------------------------------------------------------
# 5. shape mismatch
# ---------------------------------------------------------------------------------------------

def _teacher_losses():
    cases = [pytest.param(_spec(n).fn, _spec(n).defaults, id=n)
             for n in LOSS_NAMES if _spec(n).needs_teacher]
    cases += [pytest.param(standardized(_spec(n).fn), _spec(n).defaults, id=f"standardized-{n}")
              for n in LOSS_NAMES if _spec(n).needs_teacher and _spec(n).logit_loss]
    return cases


@pytest.mark.parametrize("fn,params", _teacher_losses())
@pytest.mark.parametrize("teacher_shape", [(B, C + 1), (B + 1, C), (B * C,)])
def test_shape_mismatch_raises_parameter_error(fn, params, teacher_shape):
    """Student and teacher logits of different shapes are rejected with ParameterError."""
    student = _logits(500, b=B, c=C)
    teacher = torch.randn(*teacher_shape, dtype=torch.float64)
    with pytest.raises(ParameterError):
        fn(student, teacher, _labels(500, b=B, c=C), **params)


@pytest.mark.parametrize("name", LOSSES.names())
def test_fused_mean_and_unchecked_impl_agree_with_the_public_function(name):
    """The engine calls ``spec.impl`` / ``spec.mean_impl``; both must give the public values."""
    spec = LOSSES.get(name)
    g = torch.Generator().manual_seed(7)
    zs = torch.randn(9, 6, *spec.trailing_dims, generator=g, dtype=torch.float64) * 3
    zt = torch.randn(9, 6, *spec.trailing_dims, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, 6, (9,), generator=g)
    public = spec.fn(zs, zt, y, **spec.defaults)
    torch.testing.assert_close(spec.impl(zs, zt, y, **spec.defaults), public, rtol=0, atol=0)
    if spec.mean_impl is not None:  # scale (the objective's weight) times the mean
        for scale in (1.0, 0.3, 2.5):
            torch.testing.assert_close(spec.mean_impl(zs, zt, y, scale=scale, **spec.defaults),
                                       scale * public.mean(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_contract_finite_in_float32_with_confident_logits(name):
    """Training runs in float32: logits of about +-60 must still give finite values and
    gradients (a probability clamp at 1e-8 next to 1 rounds to 1 in float32 and overflows)."""
    spec = _spec(name)
    student = (_logits(410, b=B, c=C, scale=60.0).float()).requires_grad_(True)
    teacher = (-_logits(411, b=B, c=C, scale=60.0)).float() if spec.needs_teacher else None
    labels = _labels(410, b=B, c=C) if spec.needs_labels else None
    out = _call(spec, student, teacher, labels)
    (grad,) = torch.autograd.grad(out.sum(), student)
    assert torch.isfinite(out).all() and torch.isfinite(grad).all()
