"""The ``skills`` selector (STAT, METHODS.md §34) in the active loop: it is fitted on the rows
labeled so far before each selection, through :class:`mentor.contracts.SelectorHooks`, and
its picks follow the student's error rate per teacher category."""

import json

import pytest
import torch
import yaml
from torch import nn

from mentor.active import active_loop
from mentor.data.splits import Split, Splits
from mentor.errors import MentorError
from mentor.recipe import TrainSpec
from mentor.select import RandomSelector, SkillProfile

CENTERS = torch.tensor([[-4.0, 0.0], [4.0, 0.0], [0.0, 5.0]])


def _split(n_per_class: int, seed: int, labeled_per_class: int | None = None) -> Split:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(3).repeat_interleave(n_per_class)
    x = CENTERS[y] + 0.5 * torch.randn(len(y), 2, generator=g)
    labeled = torch.ones(len(y), dtype=torch.bool)
    if labeled_per_class is not None:  # the first rows of each class carry their label
        labeled = torch.arange(len(y)) % n_per_class < labeled_per_class
    return Split(x, y, labeled)


def _blobs(labeled_per_class: int = 5) -> Splits:
    """Three well-separated classes in 2-D; 100 training rows per class, 5 of them labeled."""
    return Splits("blobs", _split(100, 0, labeled_per_class), _split(20, 1), _split(20, 2),
                  num_classes=3, input_shape=(2,), seed=0)


class PositionTeacher:
    """Knows every training row's class by its position (as a label store does): asking it
    about rows without their positions is refused, so a fit that lost the positions fails."""

    def __init__(self, y: torch.Tensor):
        self.y, self.num_classes = y, 3

    def logits_at(self, x, index):
        return 10.0 * nn.functional.one_hot(self.y[index.cpu()], 3).float()

    def logits(self, x):
        raise MentorError("this teacher answers by training position only")


class BlindToClassTwo(nn.Module):
    """A student that never predicts class 2, whatever it is trained on (nearest center of
    classes 0 and 1): its error rate is 1 on class 2 and about 0 elsewhere."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        d = -torch.cdist(x, CENTERS[:2])
        return torch.cat([d, torch.full((len(x), 1), -1e4)], 1) + 0.0 * self.w


class Recording(SkillProfile):
    """SkillProfile that records the training positions of every fit."""

    def __init__(self):
        super().__init__()
        self.fitted: list[list[int]] = []

    def fit(self, x, y, teacher, student, index=None):
        self.fitted.append(index.tolist())
        return super().fit(x, y, teacher, student, index=index)


def _loop(sp, selector, **kw):
    args = dict(make_student=BlindToClassTwo, selector=selector, rounds=2,
                spec=TrainSpec(epochs=1, batch_size=16), teacher=PositionTeacher(sp.train.y))
    args.update(kw)
    return active_loop(sp, **args)


def test_skills_picks_come_from_the_category_the_student_gets_wrong():
    """Oracle and teacher picks, every round, are rows of class 2 (the only category the
    student errs on); a random selector picks class 2 about a third of the time."""
    sp = _blobs()
    res = _loop(sp, SkillProfile(), oracle_per_round=10, teacher_per_round=10)
    y = sp.train.y
    for r in res.rounds[1:]:
        assert len(r.picked_oracle) == len(r.picked_teacher) == 10
        assert all(int(y[i]) == 2 for i in r.picked_oracle + r.picked_teacher), r
    rnd = _loop(sp, RandomSelector(0), oracle_per_round=10, teacher_per_round=10)
    picks = [i for r in rnd.rounds for i in r.picked_oracle + r.picked_teacher]
    assert sum(int(y[i]) == 2 for i in picks) < 0.6 * len(picks)


def test_skills_is_fitted_before_every_selection_on_the_rows_labeled_so_far():
    """The regression for issue 17: the loop fits the selector (without the fit the selector
    refuses to score), on the training rows labeled at that point -- the initial labels,
    then also each oracle pick -- never on the teacher-labeled rows."""
    sp = _blobs()
    sel = Recording()
    res = _loop(sp, sel, oracle_per_round=10, teacher_per_round=10)
    initial = sp.train.labeled.nonzero().squeeze(-1).tolist()
    r1, r2 = res.rounds[1], res.rounds[2]
    assert sel.fitted == [  # oracle then teacher selection, in each of the 2 rounds
        initial,
        sorted(initial + r1.picked_oracle),
        sorted(initial + r1.picked_oracle),
        sorted(initial + r1.picked_oracle + r2.picked_oracle)]
    assert not set(r1.picked_teacher + r2.picked_teacher) & {i for f in sel.fitted for i in f}


def test_a_fitted_selector_without_labeled_rows_is_refused_before_any_training():
    sp = _blobs(labeled_per_class=0)
    built = []
    with pytest.raises(MentorError, match="rows with known labels"):
        _loop(sp, SkillProfile(), make_student=lambda: built.append(1), oracle_per_round=5)
    assert not built


def test_skills_covers_categories_no_labeled_row_falls_in():
    """A class the teacher predicts on the pool but on no labeled row takes the overall
    error rate (not the rate of the highest class seen)."""
    sp = _blobs()
    keep = sp.train.labeled & (sp.train.y < 2)
    sel = SkillProfile()
    rows = keep.nonzero().squeeze(-1)
    teacher = PositionTeacher(sp.train.y)
    err = sel.fit(sp.train.x[rows], sp.train.y[rows], teacher, BlindToClassTwo(), index=rows)
    assert err.shape == (3,) and float(err[2]) == pytest.approx(float(err[:2].mean()))


def test_mentor_active_runs_the_skills_selector(cli, tmp_path):
    recipe = {"name": "act", "data": {"source": "digits", "labeled_fraction": 0.05},
              "teacher": {"model": "mlp", "hidden": [16], "train": {"epochs": 3}},
              "student": {"model": "mlp", "hidden": [8]},
              "active": {"selectors": ["skills"], "rounds": 2, "oracle_per_round": 10,
                         "teacher_per_round": 10},
              "train": {"epochs": 2, "batch_size": 32, "seeds": [0]}}
    (tmp_path / "act.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    proc = cli(["active", "act.yaml", "--out", "runs"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run,) = list((tmp_path / "runs").iterdir())
    data = json.loads((run / "active.json").read_text())
    assert [(r["selector"], r["round"]) for r in data["rounds"]] == [("skills", i)
                                                                    for i in range(3)]
    (runs,) = data["runs"]["skills"]
    assert all(len(r["picked_oracle"]) == len(r["picked_teacher"]) == 10 for r in runs[1:])
