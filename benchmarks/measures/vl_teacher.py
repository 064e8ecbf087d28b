"""A zero-shot vision-language teacher (mentor.vl) on scikit-learn's 8 × 8 digits: a tiny
CLIP (``transformers.CLIPModel``, one layer per tower, width 32, 4 × 4 patches) trained here
contrastively on 400 digit images and class-name captions ("a photo of the digit seven",
three templates), saved with ``save_pretrained`` and loaded back from its directory. It is
NOT a pretrained VLM. Per seed 0/1/2 -- the seed draws the split, the teacher's training and
the students' weights -- the student's 1,397 rows (disjoint from the teacher's) are a
training pool of 897, validation 100 and test 400:

- ``teacher``: the zero-shot teacher's test accuracy (class text features from the three
  templates, computed once);
- ``kd`` vs ``dho`` (METHODS.md §50) at 1 label per class (10 labels, 1.1 % of the pool) and
  at 9 per class (10 %): a 64-64-10 MLP, ``mentor.Distiller`` 40 epochs, Adam 3e-3, KD at
  T 2 on every row; ``kd`` = 0.5 CE + 0.5 KD on one head, ``dho`` = the same two losses on
  two heads, inference 0.5/0.5;
- ``promptkd`` vs ``probe`` (§54): a frozen random-feature map (64 -> 128, ReLU) + a learnable
  additive input prompt + a projector to the teacher's 32-wide space, classified by the
  teacher's stored text features, trained by KD (T 1, no CE) on the pool without labels;
  vs a linear probe on the same frozen features trained on the 10 labels;
- ``ood.<arm>`` (§56): students trained on every pool row of classes 0-6 only (labels of
  those classes), scored on test rows of classes 7-9 zero-shot by the nearest of the three
  unseen classes' text embeddings (chance 1/3) and on 0-6 test rows; arms ``ce`` (own head;
  unseen classes by the nearest text to its feature), ``cls`` (L-cls), ``cls+feat``
  (+ L-mse + L-cst), ``cls+feat+vlalign`` (+ L-vlalign, top-5 of the seen texts,
  teacher-correct rows).

Every student is selected by validation accuracy (the OOD arms on validation rows of classes
0-6 only); test figures once at the end. Verdicts by the project's rule (gap > 2 × the
larger std), per-seed wins.
"""

from __future__ import annotations

import tempfile

from ._fmt import pm, seeds, verdicts
from ._run import over_seeds

SEEDS = (0, 1, 2)
SEEN, UNSEEN = (0, 1, 2, 3, 4, 5, 6), (7, 8, 9)
OOD_ARMS = ("ce", "cls", "cls+feat", "cls+feat+vlalign")
QUICK = dict(clip_steps=300, epochs=8, ood_epochs=8)
FULL = dict(clip_steps=1500, epochs=40, ood_epochs=60)


def _rows(split, classes):
    import torch
    m = torch.isin(split.y, torch.tensor(classes))
    return split.x[m], split.y[m]


def _accuracy(dist, splits) -> float:
    return dist.evaluate(splits, "test")["accuracy"]


def _students(teacher, seed: int, s: dict) -> dict[str, float]:
    import mentor
    import torch
    from mentor.vl import vl_digits
    from mentor.vl.promptkd import FrozenProbe, PromptKDStudent

    def mlp():
        return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                   torch.nn.Linear(64, 10))
    out: dict[str, float] = {}
    train = dict(epochs=s["epochs"], lr=3e-3, seed=seed)
    for per_class, tag in ((1, "l1"), (9, "l10")):
        splits = vl_digits(seed, labels_per_class=per_class).splits
        if tag == "l1":
            out["teacher"] = float((teacher.logits(splits.test.x).argmax(1)
                                    == splits.test.y).float().mean())
        for method, kw in (("kd", dict(alpha=0.5, temperature=2.0)), ("dho", {})):
            d = mentor.Distiller(mlp, teacher, method=method, **kw, **train)
            d.fit(splits)
            out[f"{method}.{tag}"] = _accuracy(d, splits)
        if tag == "l1":
            d = mentor.Distiller(lambda: PromptKDStudent(teacher.text_features, teacher.scale,
                                                         feature_seed=seed),
                                 teacher, method="kd", alpha=1.0, temperature=1.0, **train)
            d.fit(splits)
            out["promptkd"] = _accuracy(d, splits)
            d = mentor.Distiller(lambda: FrozenProbe(10, feature_seed=seed), None,
                                 method="scratch", epochs=5 * s["epochs"], lr=1e-2, seed=seed)
            d.fit(splits)
            out["probe"] = _accuracy(d, splits)
    return out


def _ood(teacher, seed: int, s: dict) -> dict[str, float]:
    from mentor.vl import vl_digits
    from mentor.vl.ood import train_arm, zero_shot_accuracy
    sp = vl_digits(seed, labels_per_class=None).splits
    x, y = _rows(sp.train, SEEN)
    xv, yv = _rows(sp.val, SEEN)
    xs, ys = _rows(sp.test, SEEN)
    xo, yo = _rows(sp.test, UNSEEN)
    out: dict[str, float] = {}
    for arm in OOD_ARMS:
        r = train_arm(arm, teacher, x, y, xv, yv, SEEN, epochs=s["ood_epochs"], seed=seed)
        out[f"ood.{arm}.unseen"] = zero_shot_accuracy(r, teacher, xo, yo, UNSEEN)
        out[f"ood.{arm}.seen"] = zero_shot_accuracy(r, teacher, xs, ys, SEEN, seen=True)
    out["ood.teacher.unseen"] = float((teacher.logits(xo)[:, list(UNSEEN)].argmax(1) + 7
                                       == yo).float().mean())
    return out


def run(seed: int, quick: bool) -> dict[str, float]:
    from mentor.vl import DIGIT_NAMES, ZeroShotTeacher, train_tiny_clip, vl_digits
    s = QUICK if quick else FULL
    data = vl_digits(seed)
    with tempfile.TemporaryDirectory(prefix="vl-teacher-") as folder:
        train_tiny_clip(data.clip_x, data.clip_y, DIGIT_NAMES, folder, steps=s["clip_steps"],
                        seed=seed)
        teacher = ZeroShotTeacher(folder)
    return {**_students(teacher, seed, s), **_ood(teacher, seed, s)}


PAIRS = (("dho.l1", "kd.l1"), ("dho.l10", "kd.l10"), ("promptkd", "probe"),
         ("ood.cls.unseen", "ood.ce.unseen"), ("ood.cls+feat.unseen", "ood.cls.unseen"),
         ("ood.cls+feat+vlalign.unseen", "ood.cls+feat.unseen"),
         ("ood.cls+feat.unseen", "ood.ce.unseen"))


def measure(quick: bool) -> dict[str, str]:
    from mentor.vl import vl_digits
    chosen = (0,) if quick else SEEDS
    vals = over_seeds(run, chosen, quick)
    keys = ["teacher", "kd.l1", "dho.l1", "kd.l10", "dho.l10", "promptkd", "probe",
            "ood.teacher.unseen"] + [f"ood.{a}.{w}" for a in OOD_ARMS for w in ("unseen", "seen")]
    out = {"data": vl_digits(0).describe(), "seeds": str(len(chosen))}
    for k in keys:
        out[k] = pm(vals(k), 1)
        out[f"{k}.per_seed"] = seeds(vals(k))
    out.update(verdicts(vals, PAIRS))
    return out


from . import measurement  # noqa: E402

measurement("vl-teacher", about="a zero-shot vision-language teacher (a tiny CLIP trained "
            "here on 400 digit images and class-name captions, not a pretrained VLM): its "
            "test accuracy; DHO vs single-head CE+KD at 1 and 9 labels per class; a PromptKD "
            "student (frozen random features + prompt + projector, classified by the "
            "teacher's stored text features, KD on unlabeled rows) vs a few-shot linear "
            "probe; students trained on digits 0-6 scored zero-shot on 7-9 through the text "
            "table (CE, L-cls, + L-mse/L-cst, + L-vlalign); 3 seeds",
            ci="quick", minutes=3.0)(measure)
