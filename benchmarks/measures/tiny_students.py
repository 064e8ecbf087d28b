"""Real-time cell sorting (METHODS.md §24): KD into students with a tiny fraction of the
teacher's parameters. Digits, all labels; the teacher of ``examples/compress_my_model.py``
(MLP 64-512-512-10, plain PyTorch loop, 30 epochs, every training label); students MLP
64-8-10 and linear 64-10, scratch vs KD (T 4, α 0.5), 40 epochs, 3 seeds; the speed-up of
each KD student over the teacher on the whole test split (``mentor.latency.speedup``, one
thread: a machine timing).

Figures: docs/methods.md's row "24 Real-time cell sorting".
"""

from __future__ import annotations

import torch
from torch import nn

from ._fmt import pct, pm, verdict, wins
from ._kd_common import student_accuracy

SEEDS = (0, 1, 2)
STUDENTS = {"mlp8": ("mlp", (8,)), "linear": ("linear", ())}
NAMES = {"mlp8": "64-8-10", "linear": "linear"}
KD = {"temperature": 4.0, "alpha": 0.5}


def example_teacher(splits, epochs: int = 30) -> nn.Module:
    """The teacher of examples/compress_my_model.py, trained on every training label."""
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                            nn.Linear(512, 10))
    opt = torch.optim.Adam(teacher.parameters(), lr=1e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(splits.train)).split(64):
            loss = nn.functional.cross_entropy(teacher(splits.train.x[idx]),
                                               splits.train.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return teacher.eval()


def measure(quick: bool) -> dict[str, str]:
    import mentor
    from mentor.latency import speedup
    from mentor.models import count_params
    from mentor.teachers import ModuleTeacher
    s = mentor.load_data("digits")
    net = example_teacher(s, epochs=1 if quick else 30)
    teacher = ModuleTeacher(net, 10)
    with torch.no_grad():
        t_acc = float((net(s.test.x).argmax(-1) == s.test.y).float().mean())
    n_teacher = count_params(net)
    out = {"teacher.params": f"{n_teacher:,}", "teacher": pct(t_acc),
           "test_rows": f"{len(s.test):,}"}
    seeds, epochs = ((0,), 2) if quick else (SEEDS, 40)
    for key, (model, hidden) in STUDENTS.items():
        scratch = [student_accuracy(s, "scratch", seed=sd, epochs=epochs, model=model,
                                    hidden=hidden) for sd in seeds]
        kd, last = [], None
        for sd in seeds:
            acc, last = student_accuracy(s, "kd", KD, teacher=teacher, seed=sd, epochs=epochs,
                                         model=model, hidden=hidden, return_model=True)
            kd.append(acc)
        n = count_params(last)
        fast = speedup(teacher.logits, last, s.test.x)["speedup"]
        out.update({f"{key}.params": f"{n:,}", f"{key}.share": f"{100 * n / n_teacher:.1f} %",
                    f"{key}.scratch": pm(scratch), f"{key}.kd": pm(kd),
                    f"{key}.kd_vs_scratch": verdict(kd, scratch),
                    f"{key}.wins": wins(kd, scratch),
                    f"{key}.speedup": f"{fast:.0f}×"})
    gained = [NAMES[k] for k in STUDENTS if out[f"{k}.kd_vs_scratch"] == "higher"]
    if not gained:
        out["paper_gain"] = "**not** reproduced"
    elif len(gained) == len(STUDENTS):
        out["paper_gain"] = "reproduced"
    else:
        out["paper_gain"] = f"reproduced for the {' and '.join(gained)} student only"
    return out


from . import measurement  # noqa: E402

measurement("tiny-students", about="tiny KD students (MLP 64-8-10, linear) of the example's "
            "64-512-512-10 teacher on digits with all labels: accuracy vs scratch (3 seeds) "
            "and speed-up (one thread)", ci="quick", minutes=0.5)(measure)
