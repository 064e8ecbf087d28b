"""TB-KPT: deterministic for a seed, disjoint splits with 5 % labeled, every keypoint
inside its image and drawn (bright), and bad input refused in one sentence naming the
field -- a keypoint outside its image names the keypoint, the image and the size."""

import pytest
import torch

from mentor.errors import MentorError
from mentor.keypoints import KeypointData, check_keypoints, tb_kpt


@pytest.fixture(scope="module")
def data():
    return tb_kpt(120, seed=3, val=20, test=20)


def test_deterministic_for_a_seed(data):
    again = tb_kpt(120, seed=3, val=20, test=20)
    assert torch.equal(data.images, again.images)
    assert torch.equal(data.keypoints, again.keypoints)
    assert torch.equal(data.labeled, again.labeled)
    other = tb_kpt(120, seed=4, val=20, test=20)
    assert not torch.equal(data.keypoints, other.keypoints)


def test_splits_keypoints_and_drawing(data):
    ids = torch.cat([data.labeled, data.unlabeled, data.val, data.test])
    assert sorted(ids.tolist()) == list(range(120))
    assert len(data.labeled) == 4 and len(data.unlabeled) == 76  # 5 % of 80
    kp = data.keypoints
    assert kp.shape == (120, 5, 2) and data.images.shape == (120, 1, 24, 24)
    assert float(kp.min()) >= 1.5 - 1e-5 and float(kp.max()) <= 22.5 + 1e-5
    # the limbs' ends are drawn: the pixel nearest each hand / foot is bright
    r = kp.round().long()
    n = torch.arange(120)[:, None]
    vals = data.images[n, 0, r[..., 1], r[..., 0]]
    assert float(vals[:, 1:].median()) > 0.5
    # the figure's left limbs lie left of its right ones before rotation (|θ| <= 30°)
    assert float((kp[:, 1, 0] < kp[:, 2, 0]).float().mean()) > 0.8
    assert "35" not in data.describe() and "4 labeled (5 %)" in data.describe()


def test_keypoint_outside_the_image_names_it_and_the_size(data):
    kp = data.keypoints.clone()
    kp[7, 3] = torch.tensor([25.0, 3.0])
    with pytest.raises(MentorError, match=r"keypoint 'left_foot' of image 7 is at "
                       r"\(x=25, y=3\), outside the 24×24 image; expected 0 <= x, y <= 23"):
        KeypointData(data.images, kp, data.labeled, data.unlabeled, data.val, data.test)
    with pytest.raises(MentorError, match=r"keypoint 'head' of image 0 is at \(x=-1"):
        check_keypoints(torch.tensor([[[-1.0, 2.0]]]), 24)


def test_bad_arguments_raise_one_sentence(data):
    with pytest.raises(MentorError, match="labeled_fraction must be in"):
        tb_kpt(50, labeled_fraction=0.0, val=5, test=5)
    with pytest.raises(MentorError, match="num_images is 10; expected more than"):
        tb_kpt(10, val=5, test=5)
    with pytest.raises(MentorError, match=r"keypoints has shape \(120, 4, 2\)"):
        KeypointData(data.images, data.keypoints[:, :4], data.labeled, data.unlabeled,
                     data.val, data.test)
    with pytest.raises(MentorError, match="named twice"):
        KeypointData(data.images, data.keypoints, data.labeled, data.labeled, data.val,
                     data.test)
