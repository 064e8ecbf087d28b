"""Test-time adaptation on digits corruption streams (METHODS.md §48 PSMT, §21 TTL):
corruptions, the stream, the Fisher-masked EMA, and the effects the papers predict."""

import numpy as np
import pytest
import torch

import mentor
from mentor.data.corruptions import CORRUPTIONS, blur, shifted_stream, transpose
from mentor.engine import fit
from mentor.errors import MentorError
from mentor.methods import get_method
from mentor.models import build_model
from mentor.recipe import TrainSpec
from mentor.tta import adapt_stream, symmetric_ce
from mentor.updates import FisherMaskedEMA

STREAM = ["noise-2", "noise-4", "salt-pepper", "blur", "contrast-0.5", "transpose", "invert"]


@pytest.fixture(scope="module")
def source():
    """An MLP with BatchNorm trained on clean raw digits (the TB-DIGITS-SHIFT source)."""
    sp = mentor.load_data("digits", standardize=False)
    torch.manual_seed(0)
    net = build_model("mlp", sp.input_shape, 10, hidden=[128, 128], batchnorm=True)
    res = fit(net, sp.train, sp.val, objectives=get_method("scratch").plan().objectives,
              spec=TrainSpec(epochs=30, lr=1e-3), seed=0, num_classes=10)
    return sp, res.model


def _run(source, method, **kw):
    sp, model = source
    return adapt_stream(model, shifted_stream(sp.test.x, sp.test.y, STREAM, cycles=3, seed=0),
                        method=method, source_x=sp.train.x, clean=(sp.test.x, sp.test.y), **kw)


def test_corruptions_match_naive_definitions():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 17, (4, 64)).float()
    assert torch.equal(transpose(transpose(x)), x)
    assert torch.equal(CORRUPTIONS["invert"](x, g), 16 - x)
    out = blur(x).reshape(4, 8, 8).numpy()
    img = np.pad(x.reshape(4, 8, 8).numpy(), ((0, 0), (1, 1), (1, 1)))
    for i in range(8):
        for j in range(8):
            np.testing.assert_allclose(out[:, i, j], img[:, i:i + 3, j:j + 3].mean((1, 2)),
                                       rtol=1e-6)
    for name in CORRUPTIONS:
        y = CORRUPTIONS[name](x, g)
        assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 16


def test_stream_visits_every_row_once_per_corruption_and_cycle():
    x, y = torch.arange(10.0).repeat(64, 1).T.contiguous(), torch.arange(10)
    seen = {}
    for xb, yb, name in shifted_stream(x, y, ["blur", "invert"], batch_size=4, cycles=2):
        seen.setdefault(name, []).extend(yb.tolist())
    assert sorted(seen) == ["blur", "invert"]
    assert all(sorted(v) == sorted(list(range(10)) * 2) for v in seen.values())
    with pytest.raises(MentorError, match="corruption 'fog' is unknown"):
        list(shifted_stream(x, y, ["fog"]))


def test_fisher_masked_ema_keeps_the_protected_entries_and_averages_the_rest():
    torch.manual_seed(0)
    student, teacher = torch.nn.Linear(6, 4), torch.nn.Linear(6, 4)
    before = {n: p.detach().clone() for n, p in teacher.named_parameters()}
    student(torch.randn(5, 6)).pow(2).sum().backward()
    for protect in ("high", "low"):
        for n, p in teacher.named_parameters():
            p.data.copy_(before[n])
        upd = FisherMaskedEMA(0.9, fraction=0.25, protect=protect)
        upd.observe_gradients(student)
        g2 = torch.cat([p.grad.pow(2).flatten() for p in student.parameters()])
        kept = torch.cat([upd.keep[n].flatten() for n, _ in student.named_parameters()])
        k = int(round(0.25 * g2.numel()))
        order = g2.argsort(descending=protect == "high")
        assert bool(kept[order[:k]].all())  # the top (or bottom) quarter is protected
        upd.update(teacher, student, 1)
        for (n, pt), ps in zip(teacher.named_parameters(), student.parameters()):
            ema = 0.9 * before[n] + 0.1 * ps.detach()
            want = torch.where(upd.keep[n], before[n], ema)
            torch.testing.assert_close(pt.detach(), want, rtol=0, atol=1e-7)
    plain = FisherMaskedEMA(0.9, fraction=0.0)
    plain.observe_gradients(student)
    assert plain.keep is None


def test_symmetric_ce_matches_the_formula():
    zs, zt = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    ps, pt = zs.softmax(-1), zt.softmax(-1)
    want = -0.5 * (pt * ps.log()).sum(-1) - 0.5 * (ps * pt.log()).sum(-1)
    torch.testing.assert_close(symmetric_ce(zs, zt), want)


def test_source_leaves_the_model_unchanged(source):
    sp, model = source
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = _run(source, "source")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert out.clean_before == out.clean_after > 0.95
    assert len(out.batches) == 3 * len(STREAM) * -(-len(sp.test) // 64)


def test_mean_teacher_adapts_online_and_psmt_forgets_less(source):
    """The mean teacher beats the unadapted source model online; PSMT's Fisher pull and
    masked teacher keep more of the clean accuracy after the stream than the plain mean
    teacher, and adapt at least as well online (λ 1e5: on this small model the source
    Fisher entries are tiny, so the paper's λ 500 barely acts)."""
    src = _run(source, "source")
    mt = _run(source, "mean-teacher", decay=0.999)
    psmt = _run(source, "psmt", decay=0.999, fisher_weight=1e5)
    assert mt.online_accuracy > src.online_accuracy + 0.005
    assert psmt.clean_after > mt.clean_after + 0.05
    assert psmt.online_accuracy > mt.online_accuracy


def test_psmt_needs_source_rows(source):
    sp, model = source
    with pytest.raises(MentorError, match="needs source_x"):
        adapt_stream(model, [], method="psmt")
    with pytest.raises(MentorError, match="tta method 'cotta' is unknown"):
        adapt_stream(model, [], method="cotta")
