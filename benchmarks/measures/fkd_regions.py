"""FKD / FerKD on stored region soft labels (METHODS.md §15): digits, all labels; the
built-in recipes' teacher (MLP 64-256-256-10) labels 8 random-resized crops per training
image (area 0.2-1, view seed 0) once into a label store; students MLP 64-32-10 train from the
store, drawing a stored crop per row per step: FKD-style soft cross-entropy (``kd`` at T 1,
α 1), ``ferkd`` on the same regions, and ``ferkd`` with SelfMix (p 0.5); 10 and 40 epochs,
3 seeds.

Figures: docs/methods.md's row "15 FKD / FerKD" (region soft labels).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ._fmt import pm, verdict
from ._kd_common import recipe_teacher, student_accuracy

SEEDS = (0, 1, 2)
EPOCHS = (10, 40)
VIEWS = 8
METHODS = {"fkd": ("kd", {"temperature": 1.0, "alpha": 1.0}), "ferkd": ("ferkd", {}),
           "selfmix": ("ferkd", {"selfmix": 0.5})}


def measure(quick: bool) -> dict[str, str]:
    import mentor
    from mentor.labels import LabelStore, Views, make_kind, write_store
    s = mentor.load_data("digits")
    teacher, _ = recipe_teacher(s, epochs=2 if quick else None)
    seeds, epochs = ((0,), (1, 2)) if quick else (SEEDS, EPOCHS)
    out = {}
    with tempfile.TemporaryDirectory(prefix="measure-fkd-") as d:
        views = Views("crop", VIEWS, 0, s.input_shape, {"scale_min": 0.2})
        write_store(teacher, s.train.x, Path(d) / "store", make_kind("logits", num_classes=10),
                    views=views)
        store = LabelStore.open(Path(d) / "store", teacher=teacher, data=s.train.x)
        for ep, tag in zip(epochs, ("short", "long")):
            accs = {k: [student_accuracy(s, m, p, teacher=store.as_teacher(), seed=sd,
                                         epochs=ep) for sd in seeds]
                    for k, (m, p) in METHODS.items()}
            for k in METHODS:
                out[f"{tag}.{k}"] = pm(accs[k])
            out[f"{tag}.ferkd_vs_fkd"] = verdict(accs["ferkd"], accs["fkd"])
            out[f"{tag}.selfmix_vs_fkd"] = verdict(accs["selfmix"], accs["fkd"])
    return out


from . import measurement  # noqa: E402

measurement("fkd-regions", about="FKD / FerKD / FerKD + SelfMix students trained from a label "
            "store of 8 region crops per image (digits, 10 and 40 epochs, 3 seeds)",
            ci="quick", minutes=1)(measure)
