"""Teacher sources: ensembles, predict_proba models, checkpoints, the Python API."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

import mentor
from mentor.engine.checkpoint import save_weights
from mentor.errors import CheckpointError, MentorError
from mentor.teachers import (EnsembleTeacher, ModuleTeacher, ProbaTeacher, as_teacher,
                             load_checkpoint_teacher)


def _lin(seed, scale=1.0):
    torch.manual_seed(seed)
    net = nn.Linear(4, 3)
    with torch.no_grad():
        net.weight.mul_(scale)
    return ModuleTeacher(net, 3)


def test_ensemble_of_probabilities_is_the_mean_probability():
    x = torch.randn(6, 4, dtype=torch.float64)
    members = [_lin(0), _lin(1, 3.0), _lin(2)]
    for m in members:
        m.module.double()
    ens = EnsembleTeacher(members, "probs")
    expected = np.mean([torch.softmax(m.logits(x), -1).numpy() for m in members], axis=0)
    got = torch.softmax(ens.logits(x), -1).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_ensemble_of_logits_is_the_mean_logit():
    x = torch.randn(6, 4)
    members = [_lin(0), _lin(1)]
    ens = EnsembleTeacher(members, "logits")
    torch.testing.assert_close(ens.logits(x), (members[0].logits(x) + members[1].logits(x)) / 2)


def test_ensemble_members_must_agree_on_classes():
    with pytest.raises(MentorError, match="member 1 outputs 5 classes but member 0 outputs 3"):
        EnsembleTeacher([_lin(0), ModuleTeacher(nn.Linear(4, 5), 5)])


def test_predict_proba_teacher_returns_log_probabilities():
    s = mentor.load_data("iris")
    clf = LogisticRegression(max_iter=500).fit(s.train.x.numpy(), s.train.y.numpy())
    t = as_teacher(clf)
    assert isinstance(t, ProbaTeacher) and t.num_classes == 3
    p = torch.softmax(t.logits(s.test.x), -1).double().numpy()
    np.testing.assert_allclose(p, clf.predict_proba(s.test.x.numpy()), atol=1e-6)


def test_predict_proba_teacher_with_unordered_classes_is_refused():
    clf = LogisticRegression(max_iter=200).fit(np.random.rand(20, 2), np.array([1, 4] * 10))
    with pytest.raises(MentorError, match=r"classes_ are \[1, 4\]"):
        ProbaTeacher(clf)


def test_distiller_with_a_sklearn_teacher_learns(tmp_path):
    s = mentor.load_data("wine")
    clf = LogisticRegression(max_iter=1000).fit(s.train.x.numpy(), s.train.y.numpy())
    torch.manual_seed(0)
    student = nn.Sequential(nn.Linear(13, 8), nn.ReLU(), nn.Linear(8, 3))
    d = mentor.Distiller(student, clf, method="kd", temperature=2.0, alpha=0.9, epochs=30,
                         lr=1e-2, batch_size=16)
    d.fit(s)
    assert d.evaluate(s)["accuracy"] > 0.85


def test_checkpoint_teacher_roundtrip_uses_metadata(tmp_path):
    torch.manual_seed(0)
    net = mentor.models.mlp((4,), 3, hidden=[8])
    save_weights(tmp_path / "t.safetensors", net, {"mentor.model": {"model": "mlp",
                 "hidden": [8]}, "mentor.num_classes": 3})
    t = load_checkpoint_teacher(tmp_path / "t.safetensors", input_shape=(4,), num_classes=3)
    x = torch.randn(5, 4)
    torch.testing.assert_close(t.logits(x), net(x))


def test_checkpoint_teacher_wrong_classes_and_shapes_are_refused(tmp_path):
    net = mentor.models.mlp((4,), 3, hidden=[8])
    save_weights(tmp_path / "t.safetensors", net, {"mentor.model": {"model": "mlp",
                 "hidden": [8]}, "mentor.num_classes": 3})
    with pytest.raises(CheckpointError, match="trained for 3 classes but the data has 4"):
        load_checkpoint_teacher(tmp_path / "t.safetensors", input_shape=(4,), num_classes=4)
    with pytest.raises(CheckpointError, match=r"has shape \[8, 4\] but the model expects \[6, 4\]"):
        load_checkpoint_teacher(tmp_path / "t.safetensors", input_shape=(4,), num_classes=3,
                                model_fields={"model": "mlp", "hidden": [6]})


def test_a_safetensors_file_whose_header_length_looks_like_pickle_still_loads(tmp_path):
    """A 640-byte safetensors header is written as 0x80 0x02 ...: the same two bytes as a
    pickle protocol-2 stream. Such a file is a valid checkpoint and must load; a real pickle
    (no JSON header) is still refused."""
    import pickle

    from mentor.engine.checkpoint import read_safetensors, save_weights
    from mentor.errors import CheckpointError

    net = torch.nn.Linear(3, 2)
    path = tmp_path / "w.safetensors"
    pad = 0
    for _ in range(2000):  # grow the metadata until the header is exactly 640 bytes long
        save_weights(path, net, {"pad": "x" * pad})
        n = int.from_bytes(path.read_bytes()[:8], "little")
        if n == 0x280:
            break
        pad += 0x280 - n if n < 0x280 else 1
    assert path.read_bytes()[:2] == b"\x80\x02"
    tensors, meta = read_safetensors(path)
    torch.testing.assert_close(tensors["weight"], net.weight.detach())
    fake = tmp_path / "p.safetensors"
    fake.write_bytes(pickle.dumps({"weight": [1.0]}, protocol=2))
    with pytest.raises(CheckpointError, match="pickle / torch.save file"):
        read_safetensors(fake)
