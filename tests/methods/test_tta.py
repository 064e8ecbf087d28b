"""Test-time adaptation on digits corruption streams (METHODS.md §48 PSMT, §21 TTL):
corruptions, the stream, the Fisher-masked EMA, and the effects the papers predict."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mentor.data.corruptions import CORRUPTIONS, blur, shifted_stream, transpose
from mentor.errors import MentorError
from mentor.tta import adapt_stream, symmetric_ce
from mentor.updates import FisherMaskedEMA

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.measures import tta  # noqa: E402

STREAM = tta.STREAM


@pytest.fixture(scope="module")
def source():
    """An MLP with BatchNorm trained on clean raw digits (the TB-DIGITS-SHIFT source; seed 0
    of the ``tta`` measurement, benchmarks/measures/)."""
    return tta.digits(), tta.source_model(0)


def _run(source, method, **kw):
    _, model = source
    return tta.adapt(model, method, "test", 0, **kw)


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


def test_psmt_adapts_online_and_forgets_less_than_the_mean_teacher(source):
    """PSMT's Fisher pull and masked teacher adapt better online and keep more of the clean
    accuracy after the stream than the plain mean teacher (same decay 0.999). λ is picked
    from 5e2-5e7 on a validation stream (the validation rows, other corruption draws), never
    on the test stream. Measured (``tta``, source seeds 0-2, λ 5e6): online 63.53 ± 1.03 %
    vs 55.87 ± 2.30 %, clean after the stream 66.39 ± 2.71 % vs 47.73 ± 7.85 %, both higher
    on 3 of 3 seeds; the mean teacher is not separated from the unadapted source online
    (59.74 ± 1.81 %). This test runs seed 0 (λ picked on its validation stream: 5e6; online
    64.7 % vs 58.9 %, clean 70.2 % vs 48.2 %)."""
    _, model = source
    lam, _ = tta.pick_lambda({0: model})
    runs = tta.on_test_stream(model, 0, lam)
    mt, psmt = runs["mean-teacher"], runs["psmt"]
    assert psmt.online_accuracy > mt.online_accuracy + 0.04, (psmt.online_accuracy,
                                                              mt.online_accuracy)
    assert psmt.clean_after > mt.clean_after + 0.1, (psmt.clean_after, mt.clean_after)


def test_psmt_needs_source_rows(source):
    sp, model = source
    with pytest.raises(MentorError, match="needs source_x"):
        adapt_stream(model, [], method="psmt")
    with pytest.raises(MentorError, match="tta method 'cotta' is unknown"):
        adapt_stream(model, [], method="cotta")


@pytest.mark.parametrize("method", ["mean-teacher", "psmt"])
def test_adaptation_steps_through_the_engine_loop(source, method, monkeypatch):
    """One optimizer step of the engine's one loop per stream batch (issue: one loop for every
    regime); the online predictions are the teacher's, made before each step."""
    import mentor.engine.loop as loop
    calls = []
    real = loop._optimize

    def counting(tr, p, micro, epoch):
        calls.append(p.step)
        return real(tr, p, micro, epoch)
    monkeypatch.setattr(loop, "_optimize", counting)
    res = _run(source, method, cycles=1)
    assert calls == list(range(len(res.batches))) and len(calls) > 0
