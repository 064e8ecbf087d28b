"""Active distillation: the selector benchmark (``benchmarks/active.py``), the built-in recipe
``mentor active active``, and TITAN's variance split on digits.

- ``active-bench``: docs/methods.md's "Benchmark: selectors against random" table and the
  PCoreSet / RAD / RAD max-min figures quoted in README.md and the methods table (digits, 1 %
  initial labels, 3 rounds of 20, 3 split seeds; each selector against ``random`` by the
  project's separation rule, with per-seed wins).
- ``active-recipe``: README's "`mentor active active` measured" sentence (round 3, mean ± std
  over 3 seeds, each selector against ``random``) and its wall time.
- ``active-variance``: the methods row's "errors X in the high-variance half vs Y in the low
  one" -- the setting of ``tests/methods/test_active.py`` (:func:`pool_setting`, which the
  test's fixture uses too) and :func:`variance_split_errors`, which the test asserts on.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from . import measurement
from ._fmt import pm, verdict, wins
from ._run import result_lines, run_script
from .speed import wall

# ------------------------------------------------------------------ the shared setting


def flawed_teacher(sp):
    """A small MLP (64-16-10) trained 5 epochs on every training label (about 85-90 %
    right): the deliberately weak teacher of the active tests and benchmark."""
    import torch

    import mentor
    from mentor.engine import fit
    from mentor.methods import get_method
    from mentor.models import mlp
    from mentor.recipe import TrainSpec
    from mentor.teachers import ModuleTeacher
    full = mentor.data.Split(sp.train.x, sp.train.y, torch.ones(len(sp.train), dtype=torch.bool))
    torch.manual_seed(0)
    net = fit(mlp(sp.input_shape, 10, hidden=[16]), full, sp.val,
              objectives=get_method("scratch").plan().objectives,
              spec=TrainSpec(epochs=5, lr=1e-3), seed=0, num_outputs=10).model
    return ModuleTeacher(net, 10)


def pool_setting():
    """Digits with 5 % labels, the flawed teacher, a student (MLP 64-32-10, 30 epochs) on the
    labeled rows, and the unlabeled rows as a selector pool: ``(splits, teacher, student,
    pool)``."""
    import torch

    import mentor
    from mentor.engine import fit
    from mentor.methods import get_method
    from mentor.models import mlp
    from mentor.recipe import TrainSpec
    from mentor.select import Pool
    sp = mentor.load_data("digits", labeled_fraction=0.05)
    teacher = flawed_teacher(sp)
    torch.manual_seed(0)
    lab = sp.train.labeled
    student = fit(mlp(sp.input_shape, 10, hidden=[32]),
                  mentor.data.Split(sp.train.x[lab], sp.train.y[lab],
                                    torch.ones(int(lab.sum()), dtype=torch.bool)),
                  sp.val, objectives=get_method("scratch").plan().objectives,
                  spec=TrainSpec(epochs=30, batch_size=16, lr=3e-3),
                  seed=0, num_outputs=10).model
    pos = (~lab).nonzero().squeeze(-1)
    return sp, teacher, student, Pool(sp.train.x[pos], pos, sp.train.x[lab])


def variance_split_errors(setting) -> tuple[float, float]:
    """The student's error rate in the high-variance ("easy") and low-variance ("hard") half
    of the pool under TITAN's split (8 augmented views)."""
    from mentor.select import VarianceSplit
    sp, teacher, student, pool = setting
    scores = VarianceSplit(views=8, input_shape=(8, 8)).score(pool, teacher, student)
    easy, hard = VarianceSplit.split(scores)
    wrong = student(pool.x).argmax(-1) != sp.train.y[pool.index]
    return float(wrong[easy].double().mean()), float(wrong[hard].double().mean())


# the selector benchmark's setting (benchmarks/active.py, and tests/methods/test_active.py)
SEEDS = (0, 1, 2)
ROUNDS, PER_ROUND = 3, 20


def active_setting(seed: int):
    """Digits with 1 % labels split by ``seed``, and its flawed teacher: ``(splits, teacher)``."""
    import mentor
    sp = mentor.load_data("digits", labeled_fraction=0.01, split_seed=seed)
    return sp, flawed_teacher(sp)


def make_selector(name: str, seed: int):
    """A registered selector by name (``rad-maxmin``: RAD's max-min form), reseeded."""
    from mentor.registry import SELECTORS
    selector = (SELECTORS.get("rad")(mode="maxmin") if name == "rad-maxmin"
                else SELECTORS.get(name)())
    if hasattr(selector, "reseed"):
        selector.reseed(seed)
    return selector


def selector_curves(name: str, budget: str, setting: dict, epochs: int = 30) -> list[list[float]]:
    """Test accuracy after rounds 0..ROUNDS of the active loop for each seed of ``setting``
    (``{seed: active_setting(seed)}``): ``budget`` ``"oracle"`` buys PER_ROUND hidden labels
    per round, ``"teacher"`` PER_ROUND queries to the flawed teacher; a fresh MLP 64-32-10
    student per round (``epochs`` epochs, batch 16, lr 3e-3)."""
    from mentor.active import active_loop
    from mentor.models import mlp
    from mentor.recipe import TrainSpec
    spec = TrainSpec(epochs=epochs, batch_size=16, lr=3e-3)
    out = []
    for seed, (sp, teacher) in setting.items():
        kw = (dict(oracle_per_round=PER_ROUND) if budget == "oracle"
              else dict(teacher_per_round=PER_ROUND))
        res = active_loop(sp, make_student=lambda: mlp(sp.input_shape, 10, hidden=[32]),
                          selector=make_selector(name, seed), rounds=ROUNDS, spec=spec,
                          seed=seed, teacher=teacher, **kw)
        out.append([r.test_accuracy for r in res.rounds])
    return out


def variance(quick: bool) -> dict[str, str]:
    easy, hard = variance_split_errors(pool_setting())
    return {"easy": f"{100 * easy:.1f} %", "hard": f"{100 * hard:.1f} %",
            "ratio": f"{hard / max(easy, 1e-12):.1f}"}


# ------------------------------------------------------------------ benchmarks/active.py

ORDER = ("random", "pcoreset", "rad", "rad-maxmin", "margin", "kcenter", "variance", "entropy",
         "teacher_confidence", "llkd")
NAMES = {"pcoreset": "PCoreSet", "rad": "RAD", "rad-maxmin": "RAD max-min"}
BUDGET = {"oracle": "oracle labels", "teacher": "teacher queries"}


def _against(values: dict, name: str, budget: str, base: str = "random") -> str:
    """``'higher (ahead on 3 of 3 seeds)'`` for ``name`` against ``base`` in ``budget``."""
    m, b = values[budget, name], values[budget, base]
    return f"{verdict(m, b)} (ahead on {wins(m, b)} seeds)"


def _agrees(values: dict, name: str) -> tuple[str, str]:
    """(paper's claim, what the measurement says about it) for the table."""
    if name == "random":
        return "baseline", "—"
    if name in ("pcoreset", "rad"):
        claimed, other = ("oracle", "teacher") if name == "pcoreset" else ("teacher", "oracle")
        what, paper = ("labels", 51) if name == "pcoreset" else ("teacher queries", 30)
        claim = f"{NAMES[name]} > random for {what} (§{paper})"
        v = verdict(values[claimed, name], values[claimed, "random"])
        word = {"higher": "yes", "lower": "no", "not separated": "not shown"}[v]
        unclaimed = verdict(values[other, name], values[other, "random"])
        return claim, (f"{word}: {BUDGET[claimed]} {_against(values, name, claimed)}; "
                       f"{BUDGET[other]} (not claimed) {unclaimed}")
    if name == "rad-maxmin":
        return ("RAD's max-min form (§30)", "against the product form `rad`: teacher queries "
                + _against(values, name, "teacher", "rad") + ", oracle labels "
                + verdict(values["oracle", name], values["oracle", "rad"]))
    if name == "kcenter":
        return ("core-set coverage (Sener & Savarese)", "coverage yes (test); accuracy "
                "against random: oracle " + verdict(values["oracle", name],
                                                     values["oracle", "random"])
                + ", teacher " + verdict(values["teacher", name], values["teacher", "random"]))
    if name == "llkd":
        return ("LLKD: data-efficient pseudo-labels (§47)", "not as a picker of new rows "
                "(against random: oracle " + verdict(values["oracle", name],
                                                      values["oracle", "random"])
                + ", teacher " + verdict(values["teacher", name], values["teacher", "random"])
                + "); its selected set's label precision beats the pool's (test)")
    if name == "variance":
        return "TITAN: easy/hard split (not a picker claim)", "—"
    return "—", "—"


def active_bench(quick: bool) -> dict[str, str]:
    t0 = time.perf_counter()
    r = result_lines(run_script("benchmarks/active.py", *(["--quick"] if quick else [])))
    secs = time.perf_counter() - t0
    values = {(b, n): [float(v) for v in r[f"{b}_{n}_seeds"].split(",")]
              for b in BUDGET for n in ORDER}
    seeds = len(values["oracle", "random"])
    lines = [f"| selector | oracle labels (mean ± std, {seeds} seeds) | teacher queries | "
             "paper's claim | measured against the claim |", "|---|---|---|---|---|"]
    for n in ORDER:
        claim, agrees = _agrees(values, n)
        label = "`kcenter` (inputs)" if n == "kcenter" else f"`{n}`"
        lines.append(f"| {label} | {pm(values['oracle', n])} | {pm(values['teacher', n])} | "
                     f"{claim} | {agrees} |")
    out = {"table": "\n".join(lines), "wall": wall(secs), "seeds": str(seeds)}
    for b, n in (("oracle", "random"), ("oracle", "pcoreset"), ("oracle", "rad"),
                 ("oracle", "rad-maxmin"), ("teacher", "random"), ("teacher", "rad"),
                 ("teacher", "rad-maxmin")):  # the figures quoted outside the table
        out[f"{b}.{n}"] = pm(values[b, n])
    out["oracle.pcoreset.against"] = _against(values, "pcoreset", "oracle")
    out["teacher.rad.against"] = _against(values, "rad", "teacher")
    out["teacher.maxmin.against"] = _against(values, "rad-maxmin", "teacher", "rad")
    out["oracle.maxmin.against"] = _against(values, "rad-maxmin", "oracle", "rad")
    return out


# ------------------------------------------------------------------ mentor active active

def active_recipe(quick: bool) -> dict[str, str]:
    import json

    from mentor.commands.active import run_active
    from mentor.recipe import builtin_recipes, read_yaml
    raw = read_yaml(builtin_recipes()["active"])
    if quick:
        raw["train"] = {**raw["train"], "epochs": 1, "seeds": [0]}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="measure-active-") as d:
        folder = run_active(raw, Path(d), progress=False)
        data = json.loads((folder / "active.json").read_text())
    secs = time.perf_counter() - t0
    final = {name: [run[-1]["test_accuracy"] for run in runs]
             for name, runs in data["runs"].items()}
    labels = [r["labels"] for r in data["rounds"] if r["selector"] == "random"]
    base = final["random"]
    order = sorted(final, key=lambda n: -statistics.fmean(final[n]))
    parts = []
    for n in order:
        label = f"`{n}` on raw inputs" if n == "kcenter" else f"`{n}`"
        note = "" if n == "random" else f" ({verdict(final[n], base)}, {wins(final[n], base)})"
        parts.append(f"{label} {pm(final[n])}{note}")
    return {"round3": ", ".join(parts), "labels": f"{labels[0]} → {labels[-1]}",
            "seeds": str(len(base)), "wall": wall(secs)}


measurement("active-bench", about="`benchmarks/active.py`: every selector against random on "
            "digits (1 % labels, 3 rounds of 20, oracle labels and weak-teacher queries, 3 "
            "split seeds), mean ± std, verdicts, wall time", ci="quick", minutes=8)(active_bench)
measurement("active-recipe", about="`mentor active active` (built-in recipe: 5 selectors, 3 "
            "seeds, 3 rounds of 20 labels): round-3 accuracy against random, wall time",
            ci="quick", minutes=2)(active_recipe)
measurement("active-variance", about="TITAN's variance split on digits (tests/methods/"
            "test_active.py's setting): the student's error rate in each half", ci="full",
            minutes=0.2)(variance)
