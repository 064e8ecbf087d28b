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
        spec=TrainSpec(epochs=3, batch_size=64), seed=0, num_outputs=10)
teacher = ModuleTeacher(t.model, 10)
torch.manual_seed(1)
student = mlp(splits.input_shape, 10, hidden=[16])
plan = get_method("kd").plan(temperature=4.0, alpha=0.9)
res = fit(student, splits.train, splits.val, objectives=plan.objectives, teacher=teacher,
          spec=TrainSpec(epochs=4, batch_size=64, lr=3e-3), seed=1, num_outputs=10)
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
          spec=TrainSpec(epochs=2, batch_size=16, unlabeled_ratio=3, lr=3e-3), seed=2,
          num_outputs=10)
save_weights(out / f"rank{r}-ssl.safetensors", ssl.model)
(out / f"rank{r}-ssl.json").write_text(json.dumps({
    "steps": ssl.steps, "coverage": ssl.history["pl_coverage"],
    "precision": ssl.history["pl_precision"],
    "selected": ssl_plan.refiners[0].selected.tolist()}))

# KD whose rows come from a map-style dataset (DatasetRows through a DataLoader), on 1,024
# rows (16 global batches of 64, 32 per rank: equal shards, so the mean of the ranks' gradients is the
# one-process gradient); each rank counts which rows it read.
save_weights(out / "teacher.safetensors", teacher_net)


class CountedRows(torch.utils.data.Dataset):
    def __init__(self, x, y):
        self.x, self.y, self.reads = x, y, torch.zeros(len(x), dtype=torch.long)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        self.reads[i] += 1
        return self.x[i], int(self.y[i])


sub = mentor.data.Split(splits.train.x[:1024], splits.train.y[:1024],
                        torch.ones(1024, dtype=torch.bool))
rows = CountedRows(sub.x, sub.y)
loaded = mentor.data.Split(mentor.data.DatasetRows(rows), sub.y, sub.labeled)
val_rows = mentor.data.Split(mentor.data.DatasetRows(CountedRows(splits.val.x, splits.val.y)),
                             splits.val.y, splits.val.labeled)
kd_spec = TrainSpec(epochs=2, batch_size=64, lr=3e-3, cache_teacher="never", select="last")
for name, train, val in (("memory", sub, splits.val), ("dataset", loaded, val_rows)):
    torch.manual_seed(3)
    student = mlp(splits.input_shape, 10, hidden=[16])
    res = fit(student, train, val, objectives=plan.objectives, teacher=teacher, spec=kd_spec,
              seed=4, num_outputs=10)
    save_weights(out / f"rank{r}-{name}.safetensors", res.model)
torch.save(rows.reads, out / f"rank{r}-reads.pt")

# the same KD rows as a stream read front to back (windows of 100 rows shuffled in place):
# each rank reads the stream and keeps only its share of each batch
stream_rows = mentor.data.StreamRows(lambda: iter(sub.x), 1024, window=100)
seen = []
batches = mentor.data.StreamRows.batches


def recording(self, ids):
    def kept():
        for i in ids:
            seen.append(i.clone())
            yield i
    return batches(self, kept())


mentor.data.StreamRows.batches = recording
torch.manual_seed(3)
res = fit(mlp(splits.input_shape, 10, hidden=[16]),
          mentor.data.Split(stream_rows, sub.y, sub.labeled), splits.val,
          objectives=plan.objectives, teacher=teacher, spec=kd_spec, seed=4, num_outputs=10)
mentor.data.StreamRows.batches = batches
save_weights(out / f"rank{r}-stream.safetensors", res.model)
# the rows this rank trained on (the cache-free run reads nothing else from the stream)
torch.save(torch.cat(seen), out / f"rank{r}-stream-ids.pt")
