"""A tiny CLIP trained once per session on the teacher rows of vl_digits(0) (300 steps, a few
seconds), the zero-shot teacher read back from its directory, and the student's splits."""

import pytest
import torch

from mentor.vl import DIGIT_NAMES, ZeroShotTeacher, train_tiny_clip, vl_digits


@pytest.fixture(scope="session")
def vl_data():
    return vl_digits(0)


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory, vl_data):
    torch.manual_seed(0)
    return train_tiny_clip(vl_data.clip_x, vl_data.clip_y, DIGIT_NAMES,
                           tmp_path_factory.mktemp("tiny-clip"), steps=300, seed=0)


@pytest.fixture(scope="session")
def teacher(clip_dir):
    return ZeroShotTeacher(clip_dir)
