"""HarmAug (METHODS.md §2): teacher-labeled generated inputs as extra training data. MNIST-1D;
teacher 1-D CNN 32-32-32 (60 epochs); KD students MLP 40-32-10 (T 4, α 0.9), 3 seeds: on the
3,000 training inputs (60 epochs) and with 12,000 more inputs from the data's own generator
(``mentor.data.with_generated``, generator seed 1; 15 epochs, about the same number of
steps), which only the teacher labels.

:func:`generated_vs_plain` is what ``tests/methods/test_generated_data.py`` asserts on.
Figures: docs/methods.md's row "2 HarmAug" and the README sentence on ``with_generated``.
"""

from __future__ import annotations

import torch

from ._fmt import mean_std, pct, pm, verdict, wins

SEEDS = (0, 1, 2)
GENERATED = 12000


def mnist1d_teacher(splits, epochs: int = 60):
    from mentor.engine import fit
    from mentor.methods import get_method
    from mentor.models import cnn
    from mentor.recipe import TrainSpec
    from mentor.teachers import ModuleTeacher
    torch.manual_seed(0)
    t = fit(cnn(splits.input_shape, 10, channels=[32, 32, 32], kernel_size=5, pool="flatten",
                batchnorm=True), splits.train, splits.val,
            objectives=get_method("scratch").plan().objectives,
            spec=TrainSpec(epochs=epochs, lr=3e-3, schedule="cosine", weight_decay=1e-4),
            seed=0, num_outputs=10)
    return ModuleTeacher(t.model, 10)


def generated_vs_plain(seeds=SEEDS, epochs: tuple[int, int] = (60, 15),
                       teacher_epochs: int = 60, generated: int = GENERATED) -> dict:
    """``{"plain": [acc per seed], "generated": [...], "teacher": acc}``."""
    import mentor
    from mentor.data.sources import mnist1d_generator
    from mentor.engine.evaluate import evaluate
    from mentor.methods import get_method
    from mentor.models import mlp
    from mentor.recipe import TrainSpec
    s = mentor.load_data("mnist1d")
    teacher = mnist1d_teacher(s, teacher_epochs)
    g = mentor.data.with_generated(s, mnist1d_generator, generated, seed=1)
    plan = get_method("kd").plan()
    out = {"teacher": evaluate(teacher.module, s.test.x, s.test.y)["accuracy"]}
    for key, splits, ep in (("plain", s, epochs[0]), ("generated", g, epochs[1])):
        out[key] = []
        for seed in seeds:
            torch.manual_seed(seed)
            res = plan.fit(mlp(s.input_shape, 10, hidden=[32]), splits.train, s.val,
                           teacher=teacher, spec=TrainSpec(epochs=ep, lr=3e-3), seed=seed,
                           num_outputs=10)
            out[key].append(evaluate(res.model, s.test.x, s.test.y)["accuracy"])
    return out


def measure(quick: bool) -> dict[str, str]:
    res = (generated_vs_plain(seeds=(0,), epochs=(2, 1), teacher_epochs=1, generated=500)
           if quick else generated_vs_plain())
    plain, gen = res["plain"], res["generated"]
    (mg, sg), (mp, sp) = mean_std(gen), mean_std(plain)
    return {"teacher": pct(res["teacher"], 1), "plain": pm(plain), "generated": pm(gen),
            "gain": f"{100 * (mg - mp):+.1f}",
            "gap_over_std": f"{(mg - mp) / max(sg, sp, 1e-12):.2f}",
            "verdict": verdict(gen, plain), "wins": wins(gen, plain)}


from . import measurement  # noqa: E402

measurement("harmaug", about="HarmAug: KD students on MNIST-1D with and without 12,000 "
            "teacher-labeled generated inputs (3 seeds)", ci="quick", minutes=1.5)(measure)
