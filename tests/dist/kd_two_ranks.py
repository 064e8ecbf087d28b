"""Run under torchrun with 2 processes: a KD run whose data is sharded across ranks, then a
semi-supervised FlexMatch run (labeled and unlabeled streams, weak/strong views per rank,
class-wise state gathered over the ranks).

Each rank writes its final student weights and the gathered metrics to OUT/rank<r>.*.
Used by test_two_ranks.py.
"""

import json
import sys
from pathlib import Path

import torch

import mentor
from mentor.engine import fit, get_accelerator
from mentor.engine.checkpoint import save_weights
from mentor.engine.evaluate import evaluate
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec
from mentor.teachers import ModuleTeacher

out = Path(sys.argv[1])
acc = get_accelerator()
splits = mentor.load_data("digits", labeled_fraction=0.5)
torch.manual_seed(0)
teacher_net = mlp(splits.input_shape, 10, hidden=[64])
scratch = get_method("scratch").plan()
t = fit(teacher_net, splits.train, splits.val, objectives=scratch.objectives,
        spec=TrainSpec(epochs=3, batch_size=32), seed=0, num_classes=10)
teacher = ModuleTeacher(t.model, 10)
torch.manual_seed(1)
student = mlp(splits.input_shape, 10, hidden=[16])
plan = get_method("kd").plan(temperature=4.0, alpha=0.9)
res = fit(student, splits.train, splits.val, objectives=plan.objectives, teacher=teacher,
          spec=TrainSpec(epochs=4, batch_size=32, lr=3e-3), seed=1, num_classes=10)
ev = evaluate(res.model, splits.test.x, splits.test.y, acc,
              teacher_logits=teacher.logits(splits.test.x))
r = acc.process_index
save_weights(out / f"rank{r}.safetensors", res.model)
(out / f"rank{r}.json").write_text(json.dumps({
    "world": acc.num_processes, "distributed_type": str(acc.distributed_type),
    "test": ev, "val_history": res.history["val_accuracy"], "steps": res.steps}))

ssl_splits = mentor.load_data("digits", labeled_fraction=0.1)
torch.manual_seed(2)
ssl_student = mlp(ssl_splits.input_shape, 10, hidden=[16])
ssl_plan = get_method("flexmatch").plan(threshold=0.5)
ssl = fit(ssl_student, ssl_splits.train, ssl_splits.val, objectives=ssl_plan.objectives,
          refiners=ssl_plan.refiners, updater=ssl_plan.updater, augment=ssl_plan.augment,
          input_shape=ssl_splits.input_shape,
          spec=TrainSpec(epochs=2, batch_size=8, unlabeled_ratio=3, lr=3e-3), seed=2,
          num_classes=10)
save_weights(out / f"rank{r}-ssl.safetensors", ssl.model)
(out / f"rank{r}-ssl.json").write_text(json.dumps({
    "steps": ssl.steps, "coverage": ssl.history["pl_coverage"],
    "precision": ssl.history["pl_precision"],
    "selected": ssl_plan.refiners[0].selected.tolist()}))
