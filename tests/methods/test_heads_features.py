"""Feature taps with projectors, and the dual head (DHKD, DHO)."""

import pytest
import torch
from torch import nn

from mentor.engine import Objective, fit
from mentor.engine.evaluate import evaluate
from mentor.errors import MentorError
from mentor.models.heads import DualHead, dual_head_combine
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec
from mentor.teachers import ModuleTeacher

SPEC = TrainSpec(epochs=15, batch_size=64, lr=3e-3)


def _train(splits, teacher, method, seed=0, spec=SPEC, **params):
    plan = get_method(method).plan(**params)
    torch.manual_seed(seed)
    student = plan.prepare_student(mlp(splits.input_shape, 10, hidden=[32]),
                                   splits.train.x[:2])
    res = fit(student, splits.train, splits.val, objectives=plan.objectives,
              teacher=teacher if plan.needs_teacher else None, spec=spec, seed=seed,
              num_outputs=10, taps=plan.taps)
    return evaluate(res.model, splits.test.x, splits.test.y)["accuracy"], res.model


def test_feature_kd_student_beats_scratch_and_comes_back_without_projector(few_labels, teacher):
    scratch, _ = _train(few_labels, None, "scratch")
    acc, model = _train(few_labels, teacher, "feature-kd", student_layer="1", teacher_layer="3")
    assert acc > scratch + 0.04
    plain = mlp(few_labels.input_shape, 10, hidden=[32])
    assert type(model) is nn.Sequential
    assert model.state_dict().keys() == plain.state_dict().keys()  # projector dropped
    assert all(not m._forward_hooks for m in model.modules())  # hooks removed


def test_feature_term_pulls_the_projected_student_feature_to_the_teacher(few_labels, teacher):
    """With only the feature objective, its value falls as training proceeds."""
    from mentor.models.taps import Tap
    tap = Tap("f", "1", "3")
    obj = [Objective("feature_mse", 1.0, on=tap.key, against=tap.key)]
    torch.manual_seed(0)
    res = fit(mlp(few_labels.input_shape, 10, hidden=[32]), few_labels.train, few_labels.val,
              objectives=obj, teacher=teacher, taps=[tap], spec=TrainSpec(epochs=5),
              seed=0, num_outputs=10)
    losses = res.history["train_loss"]
    assert losses[-1] < 0.5 * losses[0]


def test_a_missing_tap_path_names_the_nearest_modules(few_labels, teacher):
    plan = get_method("feature-kd").plan(student_layer="7", teacher_layer="3")
    with pytest.raises(MentorError, match=r"student tap '7' is not a module of Sequential; "
                                          r"nearest names: '0', '1', '2'"):
        fit(mlp(few_labels.input_shape, 10, hidden=[32]), few_labels.train, few_labels.val,
            objectives=plan.objectives, teacher=teacher, taps=plan.taps,
            spec=TrainSpec(epochs=1), seed=0, num_outputs=10)


def test_dual_head_combination_with_a_zero_is_the_ce_head():
    torch.manual_seed(0)
    net = DualHead(mlp((4,), 3, hidden=[8]), a=0.0)
    net.eval()
    x = torch.randn(5, 4)
    z_ce, _ = net.heads(x)
    torch.testing.assert_close(torch.softmax(net(x), -1), torch.softmax(z_ce, -1))


def test_dual_head_combination_matches_the_formula():
    z_ce, z_kd = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    a, b = 0.3, 2.0
    expected = (1 - a) * torch.softmax(z_ce, -1) + a * torch.softmax(z_kd / b, -1)
    torch.testing.assert_close(dual_head_combine(z_ce, z_kd, a, b).exp(), expected)
    with pytest.raises(MentorError, match=r"dual_head.a must be in \[0, 1\], got 1.5"):
        dual_head_combine(z_ce, z_kd, 1.5)


def test_dual_head_returns_both_heads_in_training_and_trains_the_second(few_labels, teacher):
    _, model = _train(few_labels, teacher, "dho", spec=TrainSpec(epochs=2))
    assert isinstance(model, DualHead)
    model.train()
    out = model(few_labels.val.x[:3])
    assert set(out) == {"logits", "head:kd"} and out["head:kd"].shape == (3, 10)
    torch.manual_seed(0)
    fresh = DualHead(mlp(few_labels.input_shape, 10, hidden=[32]))
    assert not torch.equal(fresh.kd_head.weight, model.kd_head.weight)


def test_dual_head_rejects_a_head_that_is_not_linear():
    with pytest.raises(MentorError, match=r"dual_head.head '1' is a ReLU; expected an nn.Linear"):
        DualHead(mlp((4,), 3, hidden=[8]), head="1")


def test_dho_beats_scratch_with_few_labels(few_labels, teacher):
    scratch, _ = _train(few_labels, None, "scratch")
    dho, _ = _train(few_labels, teacher, "dho")
    assert dho > scratch + 0.04


def test_channel_wise_kd_on_cnn_feature_maps(few_labels):
    """Channel-wise distillation taps 2-D conv maps of a CNN teacher and student (different
    widths: a 1x1-conv projector) and trains; the student comes back without it."""
    from mentor.models import cnn
    s = few_labels
    torch.manual_seed(0)
    t = fit(cnn(s.input_shape, 10, channels=[16, 32]), s.train, s.val,
            objectives=get_method("scratch").plan().objectives, spec=TrainSpec(epochs=3),
            seed=0, num_outputs=10)
    plan = get_method("feature-kd").plan(student_layer="4", teacher_layer="4",
                                         feature_loss="channel")
    torch.manual_seed(1)
    student = cnn(s.input_shape, 10, channels=[8, 8])
    res = fit(student, s.train, s.val, objectives=plan.objectives,
              teacher=ModuleTeacher(t.model, 10), taps=plan.taps, spec=TrainSpec(epochs=2),
              seed=0, num_outputs=10)
    assert res.model is student
    assert set(student.state_dict()) == set(cnn(s.input_shape, 10, channels=[8, 8]).state_dict())
    losses = torch.tensor(res.history["train_loss"])
    assert len(losses) == 2 and torch.isfinite(losses).all(), losses  # no NaN, no inf


# ------------------------------------------------------------- export and reload of heads


def test_a_saved_dual_head_student_loads_back_as_a_teacher_with_its_combination(tmp_path):
    from mentor.engine.checkpoint import save_weights
    from mentor.models.heads import AuxHead, for_export
    from mentor.teachers import load_checkpoint_teacher

    torch.manual_seed(0)
    dual = DualHead(mlp((64,), 10, hidden=[16]), a=0.3, b=2.0)
    with torch.no_grad():  # make the two heads differ
        dual.kd_head.weight.normal_()
    saved, wrapper = for_export(dual)
    assert saved is dual and wrapper == {"kind": "dual_head", "head": "2", "a": 0.3, "b": 2.0}
    meta = {"mentor.model": {"model": "mlp", "hidden": [16]}, "mentor.num_classes": 10,
            "mentor.input_shape": [64], "mentor.wrapper": wrapper}
    save_weights(tmp_path / "s.safetensors", saved, meta)
    teacher = load_checkpoint_teacher(tmp_path / "s.safetensors", input_shape=(64,),
                                      num_classes=10)
    x = torch.randn(5, 64)
    dual.eval()
    with torch.no_grad():
        expect = dual(x)
        z_ce, z_kd = dual.heads(x)
    torch.testing.assert_close(teacher.logits(x), expect)
    torch.testing.assert_close(expect, dual_head_combine(z_ce, z_kd, 0.3, 2.0))
    assert "dual_head" in teacher.description

    aux = AuxHead(mlp((64,), 10, hidden=[16]), torch.randn(2, 64))
    bare, none = for_export(aux)
    assert bare is aux.student and none is None  # the auxiliary head never ships

    save_weights(tmp_path / "bad.safetensors", saved, {**meta, "mentor.wrapper": {"kind": "x"}})
    with pytest.raises(MentorError, match=r"mentor\.wrapper .*\"kind\": \"x\".*expected"):
        load_checkpoint_teacher(tmp_path / "bad.safetensors", input_shape=(64,), num_classes=10)
