"""The two examples on real data that no one in this project wrote (docs/quickstart.md, "Real
data"): the built-in recipes ``fashion-mnist`` (Fashion-MNIST images from the Debian package
dataset-fashion-mnist; a CNN teacher, an MLP student) and ``wordnet-glosses`` (WordNet's noun
definitions from the Debian package wordnet-base; a small BERT teacher, a bag-of-embeddings
student). Each runs ``mentor run <recipe>`` as written: scratch, two KD-family methods and two
semi-supervised presets on the same data, views of the labeled rows and steps, 3 seeds. The
figures: each method's test accuracy (mean ± std), the project's verdict against ``scratch``
with the per-seed wins, the teacher's accuracy, the parameter counts and the wall time.
"""

from __future__ import annotations

import functools
import time

from . import measurement
from ._fmt import pct, pm, verdict, wins
from ._run import run_builtin


def quick_overrides(name: str) -> dict:
    """The recipe ``name`` cut to one seed, one student epoch and one teacher epoch (the
    quick form the test suite runs: it checks the figures' names, not their values)."""
    from mentor.recipe import builtin_recipes, read_yaml
    raw = read_yaml(builtin_recipes()[name])
    teacher = {**raw["teacher"], "train": {**raw["teacher"]["train"], "epochs": 1}}
    return {"teacher": teacher, "train": {**raw["train"], "epochs": 1, "seeds": [0]}}


def figures(res: dict, wall: float) -> dict[str, str]:
    """The docs' figures from a run's results.json."""
    rows = {r["method"]: r for r in res["rows"]}
    base = rows["scratch"]["test_accuracies"]
    lines = ["| method | test accuracy (mean ± std over the seeds) | against `scratch` "
             "(the project's rule; seeds above it) |", "|---|---|---|"]
    for name, r in rows.items():
        acc = r["test_accuracies"]
        said = "—" if name == "scratch" else f"{verdict(acc, base)} ({wins(acc, base)})"
        lines.append(f"| `{name}` | {pm(acc)} | {said} |")
    kd = rows["kd"]["test_accuracies"]  # the README's summary line
    out = {"scratch": pm(base), "kd": pm(kd), "kd.verdict": verdict(kd, base),
           "kd.wins": wins(kd, base)}
    teacher = res["teacher"]
    student = rows["scratch"]["params"]
    out.update({"table": "\n".join(lines), "teacher": pct(teacher["test_accuracy"]),
                "teacher.params": f"{teacher['params']:,}", "student.params": f"{student:,}",
                "ratio": f"{teacher['params'] / student:.1f}×",
                "wall": f"{wall / 60:.0f} min"})
    return out


def _measure(recipe: str, quick: bool = False) -> dict[str, str]:
    t0 = time.time()
    res = run_builtin(recipe, quick_overrides(recipe) if quick else None)
    return figures(res, time.time() - t0)


EXAMPLES = {  # measurement -> (built-in recipe, what it runs, minutes here)
    "example-fashion": ("fashion-mnist", "Fashion-MNIST (Debian dataset-fashion-mnist), CNN "
                        "teacher, MLP student", 7),
    "example-wordnet": ("wordnet-glosses", "WordNet noun glosses (Debian wordnet-base), BERT "
                        "teacher, bag student", 5),
}
for _name, (_recipe, _what, _minutes) in EXAMPLES.items():
    measurement(_name, about=f"built-in recipe {_recipe}: {_what}, 10 % labels, scratch / kd "
                "/ dkd / fixmatch / mean-teacher, 3 seeds", ci="quick", minutes=_minutes,
                volatile=("wall",))(functools.partial(_measure, _recipe))
