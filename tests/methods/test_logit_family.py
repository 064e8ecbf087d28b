"""Method behaviour on embedded data with fixed seeds: the effects the papers predict."""

import pytest
import torch
from torch import nn

import mentor
from mentor.engine import fit
from mentor.engine.evaluate import evaluate
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec
from mentor.teachers import ModuleTeacher

SPEC = TrainSpec(epochs=15, batch_size=64, lr=3e-3, select="best_val")


def _student_acc(splits, teacher, method, seed=0, spec=SPEC, **params):
    plan = get_method(method).plan(**params)
    torch.manual_seed(seed)
    student = mlp(splits.input_shape, 10, hidden=[32])
    res = fit(student, splits.train, splits.val, objectives=plan.objectives,
              teacher=teacher if plan.needs_teacher else None, spec=spec, seed=seed,
              num_outputs=10)
    return evaluate(res.model, splits.test.x, splits.test.y)["accuracy"], res


@pytest.mark.parametrize("method,params", [
    ("kd", {}), ("ls-kd", {}), ("dkd", {"warmup_epochs": 5}),
    ("ls-dkd", {"alpha": 1.0, "beta": 8.0, "warmup_epochs": 5}), ("nkd", {}), ("pld", {}),
    ("ssld", {}), ("topk-kd", {})])
def test_distilled_student_beats_scratch_with_few_labels(few_labels, teacher, method, params):
    """With 10% of labels, the teacher's soft labels on every training input carry the rest
    (Hinton et al.: soft targets transfer knowledge on transfer data without labels)."""
    scratch, _ = _student_acc(few_labels, None, "scratch")
    distilled, _ = _student_acc(few_labels, teacher, method, **params)
    assert distilled > scratch + 0.04, (method, scratch, distilled)


class _Scaled(nn.Module):
    def __init__(self, net, a, b):
        super().__init__()
        self.net, self.a, self.b = net, a, b

    def forward(self, x):
        return self.a * self.net(x) + self.b


def test_logit_standardization_makes_kd_insensitive_to_teacher_logit_scale(few_labels, teacher):
    """Sun et al. 2024's core argument: with LS, an affine change of the teacher's logits
    leaves training unchanged; plain KD at a fixed temperature is changed by it."""
    scaled = ModuleTeacher(_Scaled(teacher.module, 5.0, 3.0), 10)
    spec = TrainSpec(epochs=3, batch_size=64, lr=3e-3, select="last")
    _, ls_a = _student_acc(few_labels, teacher, "ls-kd", spec=spec)
    _, ls_b = _student_acc(few_labels, scaled, "ls-kd", spec=spec)
    _, kd_a = _student_acc(few_labels, teacher, "kd", spec=spec)
    _, kd_b = _student_acc(few_labels, scaled, "kd", spec=spec)
    for k, v in ls_a.model.state_dict().items():
        torch.testing.assert_close(v, ls_b.model.state_dict()[k], rtol=1e-4, atol=1e-5)
    diff = max((v - kd_b.model.state_dict()[k]).abs().max().item()
               for k, v in kd_a.model.state_dict().items())
    assert diff > 1e-2


def test_dkd_warmup_ramps_the_distillation_weight():
    plan = get_method("dkd").plan(warmup_epochs=4)
    dkd_obj = next(o for o in plan.objectives if o.loss == "dkd")
    assert [dkd_obj.weight_at(e) for e in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    ce = next(o for o in plan.objectives if o.loss == "ce")
    assert ce.weight_at(0) == 1.0


def test_ls_dkd_defaults_follow_the_official_code():
    plan = get_method("ls-dkd").plan()
    dkd_obj = next(o for o in plan.objectives if o.loss == "dkd")
    assert dkd_obj.standardize
    assert dkd_obj.params == {"alpha": 9.0, "beta": 72.0, "temperature": 2.0}


def test_ssld_never_uses_a_label(few_labels, teacher):
    """SSLD is label-free: scrambling every training label changes nothing."""
    s = few_labels
    scrambled = mentor.data.Split(s.train.x, (s.train.y + 1) % 10,
                                  torch.ones(len(s.train), dtype=torch.bool))
    spec = TrainSpec(epochs=2, batch_size=64, select="last")
    plan = get_method("ssld").plan()
    out = []
    for split in (s.train, scrambled):
        torch.manual_seed(0)
        res = fit(mlp(s.input_shape, 10, hidden=[32]), split, s.val, objectives=plan.objectives,
                  teacher=teacher, spec=spec, seed=0, num_outputs=10)
        out.append(res.model.state_dict())
    for k in out[0]:
        assert torch.equal(out[0][k], out[1][k])


def test_topk_larger_than_the_class_count_fails_before_training(few_labels, teacher):
    plan = get_method("topk-kd").plan(k=11)
    with pytest.raises(mentor.errors.ParameterError, match=r"topk_kd.k .*\(10\), got 11"):
        fit(mlp(few_labels.input_shape, 10, hidden=[4]), few_labels.train, few_labels.val,
            objectives=plan.objectives, teacher=teacher, spec=TrainSpec(epochs=1), seed=0,
            num_outputs=10)
