"""The classification task adapter and the contracts every registered part satisfies."""

import pytest
import torch
from torch import nn

import mentor  # noqa: F401  (registers built-ins)
from mentor.contracts import TaskAdapter, Teacher, TeacherUpdater
from mentor.errors import MentorError
from mentor.registry import TASKS, UPDATERS
from mentor.tasks import CLASSIFICATION
from mentor.teachers import ModuleTeacher


def test_registered_task_is_a_task_adapter():
    task = TASKS.get("classification")
    assert task is CLASSIFICATION
    assert isinstance(task, TaskAdapter)


def test_correct_against_labels_and_against_other_logits():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.5, 3.0], [1.0, 4.0, 0.0]])
    assert CLASSIFICATION.correct(logits, torch.tensor([0, 1, 1])).tolist() == [True, False, True]
    other = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    assert CLASSIFICATION.correct(logits, other).tolist() == [False, True, True]


def test_check_refuses_student_and_teacher_with_other_class_counts():
    x = torch.randn(4, 6)
    with pytest.raises(MentorError, match=r"student outputs shape \(2, 5\).*\(2, 3\) for 3 classes"):
        CLASSIFICATION.check(nn.Linear(6, 5), None, x, 3)
    with pytest.raises(MentorError, match="teacher outputs 4 classes but the student and data "
                                          "have 3"):
        CLASSIFICATION.check(nn.Linear(6, 3), ModuleTeacher(nn.Linear(6, 4), 4), x, 3)
    CLASSIFICATION.check(nn.Linear(6, 3), ModuleTeacher(nn.Linear(6, 3), 3), x, 3)


def test_check_leaves_the_model_in_its_training_mode():
    net = nn.Sequential(nn.Linear(6, 3), nn.Dropout(0.5))
    net.train()
    CLASSIFICATION.check(net, None, torch.randn(4, 6), 3)
    assert net.training


@pytest.mark.parametrize("name", UPDATERS.names())
def test_every_updater_satisfies_the_contract(name):
    updater = UPDATERS.get(name)()
    assert isinstance(updater, TeacherUpdater)


def test_teachers_satisfy_the_contract():
    assert isinstance(ModuleTeacher(nn.Linear(2, 2), 2), Teacher)
