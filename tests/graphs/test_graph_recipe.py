"""``task: graph_nodes`` end to end (issue 20, graph nodes): the transductive node splits of a
graph source, the graph teacher served by node id, `mentor run` with an HGNN teacher and MLP
students (leaderboard, report, ONNX export with parity), and bad input as one sentence and
exit 2 with nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from mentor.errors import DataError, MentorError
from mentor.graphs import contextual_hypergraph
from mentor.graphs.hgnn import HGNN
from mentor.graphs.source import graph_splits
from mentor.graphs.teacher import fit_graph_teacher
from mentor.recipe import DataSpec

SMALL = dict(num_nodes=600, num_classes=4, num_features=32, num_hyperedges=450,
             train_per_class=10, val_per_class=30)


def _npz(path, seed=0, **over):
    """A small TB-GRAPH as a user's .npz file (hyperedges as incidence pairs, masks given)."""
    d = contextual_hypergraph(seed=seed, **SMALL)
    hg = d.hypergraph
    arrays = dict(features=d.x.numpy(), labels=d.y.numpy(),
                  incidence=torch.stack([hg.nodes, hg.edges], 1).numpy(),
                  train_mask=d.train_mask.numpy(), val_mask=d.val_mask.numpy(),
                  test_mask=d.test_mask.numpy())
    arrays.update(over)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def _recipe(tmp, source, **over):
    raw = {"name": "g", "task": "graph_nodes",
           "data": {"source": str(source), "standardize": False},
           "teacher": {"model": "hgnn", "hidden": [16], "seed": 0,
                       "train": {"epochs": 60, "lr": 0.01, "weight_decay": 5e-4}},
           "student": {"model": "mlp", "hidden": [64], "dropout": 0.5, "batchnorm": True},
           "methods": [{"name": "scratch"}, {"name": "kd", "alpha": 1.0, "temperature": 1.0}],
           "train": {"epochs": 50, "batch_size": 600, "lr": 0.01, "weight_decay": 5e-4,
                     "seeds": [0, 1, 2]}}
    raw.update(over)
    path = tmp / "graph.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# ---- the splits -------------------------------------------------------------------------

def test_splits_are_transductive_and_carry_no_label_but_the_training_nodes(tmp_path):
    path = _npz(tmp_path / "g.npz")
    z = np.load(path)
    s = graph_splits(DataSpec(source=str(path), standardize=False, labeled_fraction=0.5))
    n = len(z["labels"])
    assert len(s.train) == n and s.rows["train"].tolist() == list(range(n))
    assert torch.equal(s.train.x, torch.from_numpy(z["features"]))  # id order, as given
    tr = z["train_mask"]
    assert (s.train.y.numpy()[tr] == z["labels"][tr]).all()
    assert (s.train.y.numpy()[~tr] == -1).all()  # no validation or test label in training
    assert s.train.labeled.numpy()[~tr].sum() == 0
    assert s.train.labeled.sum() == round(0.5 * 10) * 4  # half of each class's 10 nodes
    assert s.rows["val"].tolist() == np.flatnonzero(z["val_mask"]).tolist()
    assert torch.equal(s.test.y, torch.from_numpy(z["labels"][z["test_mask"]]))
    assert s.graph.num_nodes == n and s.num_classes == 4 and s.input_shape == (32,)


def test_standardization_uses_every_nodes_features(tmp_path):
    path = _npz(tmp_path / "g.npz")
    x = np.load(path)["features"].astype(np.float64)
    s = graph_splits(DataSpec(source=str(path)))
    want = (x - x.mean(0)) / x.std(0)
    assert np.allclose(s.train.x.numpy(), want, atol=1e-5)
    assert np.allclose(s.test.x.numpy(), want[np.load(path)["test_mask"]], atol=1e-5)


def test_without_masks_labeled_nodes_are_split_per_class_and_unknown_ones_stay_unlabeled(
        tmp_path):
    z = np.load(_npz(tmp_path / "g.npz"))
    labels = z["labels"].copy()
    labels[:100] = -1  # unknown labels: transfer-set nodes in no split
    path = _npz(tmp_path / "g2.npz", labels=labels, train_mask=None, val_mask=None,
                test_mask=None)
    s = graph_splits(DataSpec(source=str(path), val_fraction=0.2, test_fraction=0.3,
                              split_seed=3))
    ids = set(s.rows["val"]) | set(s.rows["test"])
    assert ids.isdisjoint(range(100)) and len(s.rows["train"]) == 600
    train_nodes = np.flatnonzero(s.train.y.numpy() >= 0)
    assert set(train_nodes).isdisjoint(ids) and set(train_nodes).isdisjoint(range(100))
    assert len(train_nodes) + len(ids) == 500
    assert abs(len(s.rows["test"]) - 150) <= 4  # 30 % of each class


def test_a_plain_graph_becomes_two_node_hyperedges(tmp_path):
    path = tmp_path / "plain.npz"
    x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    np.savez(path, features=x, labels=np.array([0, 1, 0, 1, 0, 1]),
             edges=np.array([[0, 1], [1, 2], [3, 4]]))
    s = graph_splits(DataSpec(source=str(path), val_fraction=0.34, test_fraction=0.34))
    assert s.graph.num_edges == 3 and s.graph.members(1) == [1, 2]


@pytest.mark.parametrize("change, message", [
    (dict(incidence=np.array([[0, 0], [700, 1]])), "incidence[1] names node 700, but there "
     "are 600 nodes; expected ids in 0..599"),
    (dict(incidence=np.array([[0, 0], [1, 2]])), "incidence has no node for hyperedge 1"),
    (dict(incidence=None, edges=np.array([[0, 1], [2, 600]])), "edges[1] = (2, 600) names "
     "node 600, but there are 600 nodes"),
    (dict(edges=np.array([[0, 1]])), "has both of 'edges' and 'incidence'; expected exactly one"),
    (dict(labels=np.full(5, 1)), "labels has shape (5,) and dtype int64; expected 600 "
     "integer class ids"),
    (dict(test_mask=None), "but not all of 'train_mask', 'val_mask', 'test_mask'"),
])
def test_bad_graph_files_are_refused_in_one_sentence(tmp_path, change, message):
    path = _npz(tmp_path / "bad.npz", **change)
    with pytest.raises(DataError) as e:
        graph_splits(DataSpec(source=str(path)))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_mask_over_an_unknown_label_and_classes_beyond_num_classes_are_refused(tmp_path):
    z = np.load(_npz(tmp_path / "g.npz"))
    labels = z["labels"].copy()
    labels[np.flatnonzero(z["test_mask"])[0]] = -1
    path = _npz(tmp_path / "u.npz", labels=labels)
    with pytest.raises(DataError, match="test_mask marks node .* whose label is unknown"):
        graph_splits(DataSpec(source=str(path)))
    with pytest.raises(DataError, match="labels holds class 3, beyond data.num_classes 3"):
        graph_splits(DataSpec(source=str(_npz(tmp_path / "g3.npz")), num_classes=3))


# ---- the teacher ------------------------------------------------------------------------

def _teacher(s, epochs=30, seed=0):
    torch.manual_seed(seed)
    net = HGNN(s.input_shape[0], s.num_classes, 16)
    return fit_graph_teacher(net, s, epochs=epochs, seed=seed)


def test_the_teacher_is_served_by_node_id_and_propagates_on_every_call(tmp_path):
    s = graph_splits(DataSpec(source=str(_npz(tmp_path / "g.npz"))))
    teacher, info = _teacher(s)
    ids = torch.tensor([5, 0, 599, 5])
    full = teacher.module(s.train.x, teacher.propagation)
    assert torch.allclose(teacher.logits_at(s.train.x[ids], ids), full[ids])
    fn = teacher.on_nodes(s.rows["test"])
    calls = []
    teacher.module.register_forward_hook(lambda *a: calls.append(1))
    assert torch.allclose(fn(s.test.x[:7]), full[torch.as_tensor(s.rows["test"][:7])])
    assert len(calls) == 1  # the whole propagation ran for these rows
    assert not any(p.requires_grad for p in teacher.module.parameters())
    with pytest.raises(MentorError, match="a graph teacher scores nodes by id"):
        teacher.logits(s.test.x)
    with pytest.raises(MentorError, match="node id 600 asked of a graph of 600 nodes"):
        teacher.logits_at(s.train.x[:1], torch.tensor([600]))


def test_the_teacher_never_reads_a_test_label(tmp_path):
    """Test labels changed at random: the teacher's weights are bit-identical (validation
    labels select its epoch; test labels are read by no one but the final score)."""
    path = _npz(tmp_path / "g.npz")
    z = np.load(path)
    labels = z["labels"].copy()
    te = z["test_mask"]
    labels[te] = np.random.default_rng(1).integers(0, 4, int(te.sum()))
    other = _npz(tmp_path / "other.npz", labels=labels)
    a, _ = _teacher(graph_splits(DataSpec(source=str(path))))
    b, _ = _teacher(graph_splits(DataSpec(source=str(other))))
    for pa, pb in zip(a.module.parameters(), b.module.parameters()):
        assert torch.equal(pa, pb)


# ---- mentor run -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def graph_run(tmp_path_factory, cli):
    cwd = tmp_path_factory.mktemp("graph")
    recipe = _recipe(cwd, _npz(cwd / "g.npz"))
    proc = cli(["run", str(recipe), "--out", "runs", "--quiet"], cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = list((cwd / "runs").iterdir())
    return cwd, run, proc.stdout


def test_the_distilled_mlp_beats_the_mlp_on_labels_on_every_seed(graph_run):
    """LightHGNN's claim through the recipe path: the MLP distilled from the HGNN teacher's
    outputs on every node beats the same MLP trained on the labeled nodes, seed by seed."""
    _, run, stdout = graph_run
    rows = {r["method"]: r for r in json.loads((run / "results.json").read_text())["rows"]}
    kd, scratch = rows["kd"]["test_accuracies"], rows["scratch"]["test_accuracies"]
    assert all(k > s + 0.15 for k, s in zip(kd, scratch)), (kd, scratch)
    assert "Leaderboard" in stdout and "kd" in stdout


def test_the_teacher_line_says_what_the_graph_adds(graph_run):
    _, run, stdout = graph_run
    t = json.loads((run / "results.json").read_text())["teacher"]
    assert t["test_accuracy"] > t["test_accuracy_without_graph"] + 0.15
    assert "HGNN 32-16-4 over the graph" in t["description"]
    assert "without the graph" in (run / "report.html").read_text()
    assert (run / "teacher" / "graph-teacher.safetensors").is_file()
    assert not (run / "teacher" / "model.safetensors").exists()  # it cannot run alone


def test_onnx_export_of_the_student_keeps_parity_on_the_test_nodes(graph_run, cli):
    cwd, run, _ = graph_run
    proc = cli(["export", str(run), "--format", "onnx", "--out", "exported"], cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    card = json.loads((cwd / "exported" / "card.json").read_text())
    assert card["parity"]["max_abs_diff"] <= card["parity"]["tolerance"]
    assert "g.npz reloaded from input.yaml (440 rows)" in card["parity"]["inputs"]
    md = (cwd / "exported" / "card.md").read_text()
    assert "no checkpoint mentor can load alone" in md and "`None`" not in md


@pytest.mark.parametrize("over, message", [
    (dict(student={"model": "hgnn", "hidden": [8]}), "student.model 'hgnn' reads the graph"),
    (dict(task="classification"), "teacher.model 'hgnn' reads a graph; expected task: "
     "graph_nodes"),
    (dict(methods=[{"name": "feature-kd", "student_layer": "0", "teacher_layer": "theta0"}]),
     "distils teacher features, but a graph teacher"),
])
def test_misplaced_graph_models_exit_2_without_a_run_folder(tmp_path, cli, over, message):
    source = _npz(tmp_path / "g.npz")
    if over.get("task") == "classification":  # the same nodes as rows without a graph
        z = np.load(source)
        source = tmp_path / "rows.npz"
        np.savez(source, x=z["features"], y=z["labels"])
    recipe = _recipe(tmp_path, source, **over)
    proc = cli(["run", str(recipe), "--out", "runs", "--quiet"], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert message in proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_an_edge_to_a_missing_node_exits_2_without_a_run_folder(tmp_path, cli):
    source = _npz(tmp_path / "bad.npz", incidence=None, edges=np.array([[0, 1], [3, 900]]))
    proc = cli(["run", str(_recipe(tmp_path, source)), "--out", "runs", "--quiet"], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "edges[1] = (3, 900) names node 900, but there are 600 nodes" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
