"""SelfMix (FerKD, METHODS.md §15): CutMix of two stored views of the same sample, with the
area-weighted mixture of their (calibrated) teacher targets."""

import numpy as np
import pytest
import torch

import mentor
from mentor.contracts import Targets
from mentor.engine import fit
from mentor.errors import MentorError
from mentor.labels import LabelStore, Views, make_kind, write_store
from mentor.labels.selfmix import SelfMix, paste_box
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec
from mentor.teachers import ModuleTeacher


def test_paste_box_matches_a_naive_loop():
    torch.manual_seed(0)
    x1, x2 = torch.randn(6, 64), torch.randn(6, 64)
    u = torch.rand(6, 3)
    out, area = paste_box(x1, x2, u, (8, 8), 0.2, 0.5)
    for i in range(6):
        lam = 0.2 + 0.3 * float(u[i, 0])
        side = np.sqrt(lam)
        bh = bw = int(round(side * 8))
        y0 = int(np.floor((8 - bh) * float(u[i, 2])))
        x0 = int(np.floor((8 - bw) * float(u[i, 1])))
        ref = x1[i].reshape(8, 8).clone()
        ref[y0:y0 + bh, x0:x0 + bw] = x2[i].reshape(8, 8)[y0:y0 + bh, x0:x0 + bw]
        assert torch.equal(out[i], ref.reshape(-1))
        assert abs(float(area[i]) - bh * bw / 64) < 1e-7
    seg, a1 = paste_box(x1[:, :40], x2[:, :40], u, (40,), 0.2, 0.5)  # 1-D: a segment
    n2 = (seg == x2[:, :40]).sum(1).float() / 40
    torch.testing.assert_close(n2, a1)


def test_mixed_target_is_the_area_weighted_mixture():
    torch.manual_seed(1)
    z1, z2 = torch.randn(4, 5), torch.randn(4, 5)
    y = torch.tensor([0, 1, 2, 3])
    mix = SelfMix(prob=1.0, lam_min=0.3, lam_max=0.3)
    on = torch.tensor([True, True, False, True])
    x, t = mix.mix(torch.zeros(4, 64), torch.ones(4, 64), Targets(z1, y), Targets(z2, y), on,
                   torch.rand(4, 3), (8, 8))
    area = x.mean(1)  # ones pasted into zeros: the mean is the pasted area
    assert float(area[2]) == 0.0 and all(float(a) > 0 for a in area[[0, 1, 3]])
    p = (1 - area)[:, None] * torch.softmax(z1, -1) + area[:, None] * torch.softmax(z2, -1)
    torch.testing.assert_close(torch.softmax(t.logits, -1), p)
    torch.testing.assert_close(t.logits[2], z1[2])  # a row that does not mix keeps its target


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    d = mentor.load_data("digits")
    torch.manual_seed(0)
    teacher = ModuleTeacher(mlp((64,), 10, hidden=[32]), 10)
    path = tmp_path_factory.mktemp("s") / "store"
    write_store(teacher, d.train.x, path, make_kind("logits", num_classes=10),
                views=Views("crop", 4, 2, d.input_shape))
    return d, LabelStore.open(path)


def _train(d, teacher, mixer):
    torch.manual_seed(0)
    plan = get_method("ferkd").plan()
    return fit(mlp((64,), 10, hidden=[16]), d.train, d.val, objectives=plan.objectives,
               refiners=plan.refiners, teacher=teacher, mixer=mixer,
               spec=TrainSpec(epochs=2, batch_size=64), seed=0, num_outputs=10).model


def test_selfmix_with_probability_zero_is_plain_ferkd_and_one_changes_training(store):
    d, s = store
    plain = _train(d, s.as_teacher(), None).state_dict()
    zero = _train(d, s.as_teacher(), SelfMix(0.0)).state_dict()
    one = _train(d, s.as_teacher(), SelfMix(1.0)).state_dict()
    assert all(torch.equal(plain[k], zero[k]) for k in plain)
    assert any(not torch.allclose(plain[k], one[k]) for k in plain)


def test_selfmix_needs_views(store):
    d, _ = store
    torch.manual_seed(0)
    teacher = ModuleTeacher(mlp((64,), 10, hidden=[8]), 10)
    with pytest.raises(MentorError, match="SelfMix mixes two views of each sample, but this "
                                          "run has no views"):
        _train(d, teacher, SelfMix(0.5))


def test_ferkd_preset_builds_selfmix_from_its_parameter():
    assert get_method("ferkd").plan().mixer is None
    plan = get_method("ferkd").plan(selfmix=0.5)
    assert isinstance(plan.mixer, SelfMix) and plan.mixer.prob == 0.5
    assert "SelfMix p 0.5" in plan.description
