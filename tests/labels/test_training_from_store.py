"""Training from a label store: the teacher is never run again, and the student ends exactly
where distillation from the live teacher on the same views and seeds ends."""

import pytest
import torch

import mentor
from mentor.engine import fit
from mentor.errors import MentorError
from mentor.labels import LabelStore, Views, make_kind, write_store
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec
from mentor.teachers import ModuleTeacher


@pytest.fixture(scope="module")
def digits():
    return mentor.load_data("digits")


@pytest.fixture(scope="module")
def teacher(digits):
    torch.manual_seed(0)
    res = fit(mlp((64,), 10, hidden=[64]), digits.train, digits.val,
              objectives=get_method("scratch").plan().objectives,
              spec=TrainSpec(epochs=5, lr=3e-3), seed=0, num_outputs=10)
    return ModuleTeacher(res.model, 10)


class _Counting:
    """The live teacher, counting its calls."""

    def __init__(self, teacher):
        self.inner, self.num_classes, self.calls = teacher, teacher.num_classes, 0

    def logits(self, x):
        self.calls += 1
        return self.inner.logits(x)


def _student(digits, teacher, **kw):
    torch.manual_seed(3)
    res = fit(mlp((64,), 10, hidden=[32]), digits.train, digits.val,
              objectives=get_method("kd").plan().objectives, teacher=teacher,
              spec=TrainSpec(epochs=3, batch_size=64, lr=3e-3, cache_teacher="never"), seed=5,
              num_outputs=10, **kw)
    return res.model.state_dict()


@pytest.mark.parametrize("with_views", [False, True], ids=["plain", "crop-views"])
def test_store_student_equals_live_teacher_student(digits, teacher, tmp_path, with_views):
    views = Views("crop", 4, 11, digits.input_shape) if with_views else None
    write_store(teacher, digits.train.x, tmp_path / "s", make_kind("logits", num_classes=10),
                views=views, shard_samples=256)
    store = LabelStore.open(tmp_path / "s", teacher=teacher, data=digits.train.x)
    from_store = _student(digits, store.as_teacher())  # draws the store's views itself
    live = _Counting(teacher)
    from_live = _student(digits, live, views=Views("crop", 4, 11, digits.input_shape)
                         if with_views else None)
    assert live.calls > 0
    for k in from_live:
        assert torch.equal(from_store[k], from_live[k]), k  # bit-identical on CPU


def test_views_change_what_the_student_sees(digits, teacher, tmp_path):
    """Control: the same run without the views ends elsewhere (the test above can fail)."""
    write_store(teacher, digits.train.x, tmp_path / "s", make_kind("logits", num_classes=10),
                views=Views("crop", 4, 11, digits.input_shape), shard_samples=256)
    with_views = _student(digits, LabelStore.open(tmp_path / "s").as_teacher())
    plain = _student(digits, teacher)
    assert any(not torch.allclose(with_views[k], plain[k]) for k in plain)


def test_a_store_of_another_split_is_refused(digits, teacher, tmp_path):
    write_store(teacher, digits.val.x, tmp_path / "v", make_kind("logits", num_classes=10))
    with pytest.raises(MentorError, match=f"holds {len(digits.val)} samples but the training "
                                          f"split has {len(digits.train)} rows"):
        _student(digits, LabelStore.open(tmp_path / "v").as_teacher())


def test_a_subset_asks_the_store_for_its_source_rows(digits, teacher, tmp_path):
    """Data selection (pruned-kd) trains on a random half; the store is asked for those
    rows' positions in the full split, so the student equals the live teacher's."""
    views = Views("crop", 3, 4, digits.input_shape)
    write_store(teacher, digits.train.x, tmp_path / "s", make_kind("logits", num_classes=10),
                views=views)
    store = LabelStore.open(tmp_path / "s")
    plan = get_method("pruned-kd").plan(keep_fraction=0.5)
    half = plan.prepare_train(digits.train, 0)
    assert half.source_index is not None and len(half) == round(0.5 * len(digits.train))
    spec = TrainSpec(epochs=2, batch_size=64, cache_teacher="never")

    def run(t, v):
        torch.manual_seed(1)
        return fit(mlp((64,), 10, hidden=[16]), half, digits.val, objectives=plan.objectives,
                   teacher=t, views=v, spec=spec, seed=0, num_outputs=10).model.state_dict()
    from_store = run(store.as_teacher(), None)
    # the live teacher on the same views (a view's draws do not depend on the table size)
    assert torch.equal(views.table(len(digits.train))[:700], views.table(700))
    live = run(teacher, views)
    assert all(torch.equal(from_store[k], live[k]) for k in live)



def test_feature_kd_from_stored_features_equals_the_live_teacher(digits, teacher, tmp_path):
    """A store labeled with a teacher module's output trains feature-kd (forward hooks on the
    student, the stored feature for the teacher) to the live teacher's exact weights."""
    write_store(teacher, digits.train.x, tmp_path / "f", make_kind("logits", num_classes=10),
                views=Views("crop", 2, 5, digits.input_shape), features=["1"])
    store = LabelStore.open(tmp_path / "f")
    assert store.feature("1").shape == (len(digits.train), 2, 64)
    plan = get_method("feature-kd").plan(student_layer="1", teacher_layer="1")

    def run(t, views):
        torch.manual_seed(2)
        return fit(mlp((64,), 10, hidden=[32]), digits.train, digits.val,
                   objectives=plan.objectives, taps=plan.taps, teacher=t, views=views,
                   spec=TrainSpec(epochs=2, batch_size=64, cache_teacher="never"), seed=0,
                   num_outputs=10).model.state_dict()
    from_store = run(store.as_teacher(), None)
    live = run(teacher, Views("crop", 2, 5, digits.input_shape))
    assert all(torch.equal(from_store[k], live[k]) for k in live)
    with pytest.raises(MentorError, match="holds no feature of teacher module '3'"):
        store.feature("3")
