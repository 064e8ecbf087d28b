"""PS-TTL prototype soft labels (METHODS.md §21) with a teacher that knows no more labels
than the student: digits, 10 % of the training labels; the teacher (MLP 64-256-256-10, the
built-in recipes' training, 60 epochs) trained on those labels only; students MLP 64-32-10
(40 epochs, 3 seeds): ``proto-kd`` (prototypes of the teacher's layer 3), ``kd`` (T 1,
α 0.5: the same CE : KD ratio as ``proto-kd``) and ``scratch``.

Figures: docs/methods.md's row "21 PS-TTL".
"""

from __future__ import annotations

import torch

from ._fmt import pct, pm, verdict
from ._kd_common import DIGITS_TEACHER, student_accuracy

SEEDS = (0, 1, 2)
METHODS = {"proto-kd": {"teacher_layer": "3"}, "kd": {"temperature": 1.0, "alpha": 0.5},
           "scratch": {}}


def few_label_teacher(splits, epochs: int = 60):
    """The recipe teacher trained on the labeled rows of ``splits.train`` only."""
    from mentor.engine import fit
    from mentor.engine.evaluate import evaluate
    from mentor.methods import get_method
    from mentor.models import mlp
    from mentor.recipe import TrainSpec
    from mentor.teachers import ModuleTeacher
    t = DIGITS_TEACHER["train"]
    torch.manual_seed(DIGITS_TEACHER["seed"])
    res = fit(mlp(splits.input_shape, 10, hidden=DIGITS_TEACHER["hidden"]), splits.train,
              splits.val, objectives=get_method("scratch").plan().objectives,
              spec=TrainSpec(epochs=epochs, batch_size=t["batch_size"], lr=t["lr"],
                             weight_decay=t["weight_decay"]),
              seed=DIGITS_TEACHER["seed"], num_outputs=10)
    acc = evaluate(res.model, splits.test.x, splits.test.y)["accuracy"]
    return ModuleTeacher(res.model, 10), acc


def measure(quick: bool) -> dict[str, str]:
    import mentor
    s = mentor.load_data("digits", labeled_fraction=0.1)
    teacher, t_acc = few_label_teacher(s, epochs=2 if quick else 60)
    seeds, epochs = ((0,), 2) if quick else (SEEDS, 40)
    accs = {m: [student_accuracy(s, m, p, teacher=teacher, seed=sd, epochs=epochs)
                for sd in seeds] for m, p in METHODS.items()}
    return {"teacher": pct(t_acc, 1), "proto-kd": pm(accs["proto-kd"]), "kd": pm(accs["kd"]),
            "scratch": pm(accs["scratch"]),
            "proto_vs_kd": verdict(accs["proto-kd"], accs["kd"]),
            "proto_vs_scratch": verdict(accs["proto-kd"], accs["scratch"])}


from . import measurement  # noqa: E402

measurement("ps-ttl", about="PS-TTL prototype soft labels: proto-kd vs KD vs scratch, digits "
            "10 % labels, teacher on the same labels, 3 seeds", ci="quick", minutes=0.5)(measure)
