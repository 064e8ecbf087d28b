"""A recipe's graph teacher (``task: graph_nodes``, ``teacher.model: hgnn``): built from the
recipe, trained full batch on the training nodes' labels over the data's graph
(:func:`mentor.graphs.teacher.train_graph_teacher`), scored on the test nodes with the graph
and without it (every node alone), its weights saved beside the run."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from .._util.atomic import atomic_write_text
from ..data.splits import Splits
from ..engine import get_accelerator
from ..engine.checkpoint import save_weights
from ..errors import MentorError
from ..models import build_model, count_params
from ..recipe import TeacherSpec, TrainSpec

WEIGHTS = "graph-teacher.safetensors"  # not model.safetensors: it cannot run without the graph


def train_recipe_graph_teacher(spec: TeacherSpec, splits: Splits, default_train: TrainSpec,
                               out_dir: Path | None, on_epoch=None):
    """``(GraphTeacher, info)`` for the recipe's ``teacher`` section. The teacher trains on
    every training node's label (the training split's known labels), full batch for
    ``teacher.train.epochs`` (Adam, ``lr``, ``weight_decay``), the weights of the best
    validation accuracy."""
    from ..graphs.hgnn import hgnn_propagation
    from ..graphs.teacher import fit_graph_teacher
    mspec = spec.model_spec()
    if spec.pretrain:
        raise MentorError("teacher.pretrain is set for a graph teacher; expected a graph "
                          "teacher trained on the recipe's graph only")
    tspec = spec.train or default_train
    acc = get_accelerator(default_train.mixed_precision)
    device = acc.device
    torch.manual_seed(spec.seed)
    module = build_model(mspec.model, splits.input_shape, splits.num_classes,
                         **mspec.build_kwargs()).to(device)
    teacher, fit_info = fit_graph_teacher(module, splits, epochs=tspec.epochs, lr=tspec.lr,
                                          weight_decay=tspec.weight_decay, seed=spec.seed,
                                          on_epoch=on_epoch)
    x = teacher.x
    known = int((splits.train.y >= 0).sum())  # every training node's label (its data)
    test_ids = torch.as_tensor(splits.rows["test"], dtype=torch.long, device=device)
    test_y = splits.test.y.to(device)
    test = float((teacher.table[test_ids].argmax(-1) == test_y).float().mean())
    with torch.no_grad():  # the same network with every node alone: what the graph adds
        alone = hgnn_propagation(splits.graph.without_edges()).to(device)
        no_graph = float((teacher.module(x, alone)[test_ids].argmax(-1) == test_y)
                         .float().mean())
    hidden = (mspec.hidden or [32])[0]
    description = (f"{mspec.model.upper()} {splits.in_features}-{hidden}-{splits.num_classes} "
                   f"over the graph ({splits.graph.num_edges} (hyper)edges), trained full "
                   f"batch on {known} training nodes")
    info = {"description": description, "params": count_params(teacher.module),
            "test_accuracy": test, "test_accuracy_without_graph": no_graph,
            "val_accuracy": fit_info["val_accuracy"], "best_epoch": fit_info["best_epoch"],
            "seed": spec.seed}
    if out_dir is not None and acc.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        arch = {"model": mspec.model, **mspec.build_kwargs()}
        save_weights(out_dir / WEIGHTS, teacher.module,
                     {"mentor.model": arch, "mentor.num_classes": splits.num_classes,
                      "mentor.input_shape": list(splits.input_shape)})
        atomic_write_text(out_dir / "recipe.yaml", yaml.safe_dump(
            {"teacher": spec.model_dump(mode="json", exclude_none=True),
             "train": tspec.model_dump(mode="json"), "data": splits.describe(),
             "test_accuracy": test, "test_accuracy_without_graph": no_graph},
            sort_keys=False))
    return teacher, info
