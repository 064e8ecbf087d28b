"""Run under torchrun with 2 processes: data-parallel language-model distillation
(:func:`mentor.lm.distill.distill_lm` with an Accelerator of 2 gloo CPU processes).

Runs, all from a random-init CharLM teacher on 256 addition sequences:

* ``off``  -- off-policy KD, global batch 16 (8 rows per rank), accumulate 2, 20 steps;
* ``on``   -- on-policy GKD with lam 0.5 (student samples from a per-rank generator), 4 steps;
* ``seqkd`` -- greedy sequence-level KD (each rank completes half of the prompts), 3 steps,
  and gold-agreement sampling that no random-teacher completion passes (both ranks must
  raise, none may hang).

Each rank writes OUT/rank<r>-<run>.safetensors (final student weights) and
OUT/rank<r>-<run>.json. Used by test_lm_two_ranks.py, which imports SETTINGS and models()
to repeat the off-policy run in one process.
"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from mentor.engine import get_accelerator
from mentor.errors import MentorError
from mentor.lm.distill import distill_lm
from mentor.lm.models import CharLM
from mentor.lm.testbed import VOCAB, Addition

TRAIN_SIZE = 256
SETTINGS = {
    "off": dict(regime="off_policy", batch_size=16, accumulate=2, steps=20, seed=0),
    "on": dict(regime="on_policy", lam=0.5, batch_size=8, accumulate=2, steps=4, seed=1),
    "seqkd": dict(regime="seqkd", batch_size=8, steps=3, seed=2),
}


def models():
    """(student, teacher), the same on every rank and in the test process."""
    torch.manual_seed(0)
    teacher = CharLM(len(VOCAB), 24, 1)
    torch.manual_seed(1)
    return CharLM(len(VOCAB), 16, 1), teacher


def train_data():
    return Addition().split(0, train_size=TRAIN_SIZE)[0]


if __name__ == "__main__":
    out = Path(sys.argv[1])
    acc = get_accelerator()
    r = acc.process_index
    train = train_data()
    for name, kw in SETTINGS.items():
        student, teacher = models()
        res = distill_lm(student, teacher, train, accelerator=acc, **kw)
        save_file({k: v.contiguous() for k, v in res.model.state_dict().items()},
                  str(out / f"rank{r}-{name}.safetensors"))
        (out / f"rank{r}-{name}.json").write_text(json.dumps({
            "world": acc.num_processes, "distributed_type": str(acc.distributed_type),
            "losses": res.losses, "teacher_queries": res.teacher_queries,
            "kept": res.kept_sequences}))
    student, teacher = models()
    try:
        distill_lm(student, teacher, train, accelerator=acc, regime="seqkd", gold_tries=1,
                   batch_size=8, steps=1)
        error = None
    except MentorError as e:
        error = str(e)
    (out / f"rank{r}-gold.json").write_text(json.dumps({"error": error}))
