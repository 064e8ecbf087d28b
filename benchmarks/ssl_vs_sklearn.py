"""Semi-supervised digits: mentor's presets against scikit-learn's semi-supervised baselines.

Protocol (the same for every method): scikit-learn's digits, the stratified 60/20/20
train/validation/test split of split seed ``s``, with 5 % or 10 % of each class's training
labels visible; the other training rows are unlabeled. Seeds ``s = 0, 1, 2`` change the split,
the labeled subset and the initialisation. Every method sees the same rows:

- ``LabelSpreading(kernel="knn")`` and ``SelfTrainingClassifier(SVC(probability=True))``
  fitted on the training rows (``-1`` = unlabeled), on raw pixels and on standardized
  pixels; the better input of the two is reported (the stronger baseline);
- ``supervised``: mentor's student (same network, views and steps) trained on the labeled
  rows only (method ``scratch``);
- mentor's semi-supervised presets from the built-in recipe ``ssl``
  (``src/mentor/recipes/ssl.yaml``: network, views, optimizer, epochs).

``mentor_best_<pct>`` is the preset with the best mean *validation* accuracy (chosen without
looking at the test split); its test accuracy is reported. Prints a table, then
``RESULT <name> <mean test accuracy in [0,1]>`` lines.

    python benchmarks/ssl_vs_sklearn.py                 # all presets of the recipe, ~25 min
    python benchmarks/ssl_vs_sklearn.py --presets fixmatch,flexmatch --epochs 150
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from plain_loops import set_threads  # noqa: E402

import mentor  # noqa: E402,F401
from mentor.data import load  # noqa: E402
from mentor.engine import fit, get_accelerator  # noqa: E402
from mentor.engine.evaluate import evaluate  # noqa: E402
from mentor.methods import get_method  # noqa: E402
from mentor.models import build_model  # noqa: E402
from mentor.recipe import builtin_recipes, parse_recipe, read_yaml  # noqa: E402

SEEDS = (0, 1, 2)
FRACTIONS = (0.05, 0.10)


def sklearn_baselines(splits_raw, splits_std) -> dict[str, float]:
    import warnings
    # the baseline is SVC(probability=True); scikit-learn 1.9 deprecates the flag
    warnings.filterwarnings("ignore", message="The `probability` parameter was deprecated")
    from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier
    from sklearn.svm import SVC
    out = {}
    for name, make in (("labelspreading", lambda: LabelSpreading(kernel="knn")),
                       ("selftraining_svc",
                        lambda: SelfTrainingClassifier(SVC(probability=True, random_state=0)))):
        best = -1.0
        for sp in (splits_raw, splits_std):
            y = np.where(sp.train.labeled.numpy(), sp.train.y.numpy(), -1)
            model = make().fit(sp.train.x.numpy(), y)
            best = max(best, float((model.predict(sp.test.x.numpy()) == sp.test.y.numpy()).mean()))
        out[name] = best
    return out


def mentor_run(recipe, name: str, params: dict, splits, seed: int, epochs: int | None):
    spec = recipe.train.model_copy(update={"seeds": [seed], **({"epochs": epochs}
                                                               if epochs else {})})
    plan = get_method(name).plan(**params)
    torch.manual_seed(seed)
    student = build_model(recipe.student.model, splits.input_shape, splits.num_classes,
                          **recipe.student.build_kwargs())
    res = fit(student, splits.train, splits.val, objectives=plan.objectives,
              refiners=plan.refiners, updater=plan.updater, spec=spec, seed=seed,
              num_classes=splits.num_classes, augment=plan.augment,
              input_shape=splits.input_shape)
    test = evaluate(res.model, splits.test.x, splits.test.y, get_accelerator("no"))
    return test["accuracy"], res.best_val_accuracy, res.history


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="", help="comma-separated subset of the recipe's "
                    "methods (default: all)")
    ap.add_argument("--epochs", type=int, default=0, help="override the recipe's epochs")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    set_threads(args.threads)
    recipe = parse_recipe(read_yaml(builtin_recipes()["ssl"]), "ssl")
    methods = [(m.label or m.name, m.name, dict(m.model_extra or {}))
               for m in recipe.method_list()]
    if args.presets:
        keep = set(args.presets.split(","))
        methods = [m for m in methods if m[0] in keep or m[1] in keep]
    table: dict[tuple[float, str], list[float]] = {}
    vals: dict[tuple[float, str], list[float]] = {}
    quality: dict[tuple[float, str], list[float]] = {}
    t0 = time.time()
    for frac in FRACTIONS:
        for seed in SEEDS:
            raw = load("digits", labeled_fraction=frac, split_seed=seed, standardize=False)
            std = load("digits", labeled_fraction=frac, split_seed=seed, standardize=True)
            for k, v in sklearn_baselines(raw, std).items():
                table.setdefault((frac, k), []).append(v)
            splits = raw if not recipe.data.standardize else std
            for label, name, params in methods:
                acc, val, hist = mentor_run(recipe, name, params, splits, seed, args.epochs)
                key = (frac, "supervised" if name == "scratch" else label)
                table.setdefault(key, []).append(acc)
                vals.setdefault(key, []).append(val)
                if hist.get("pl_precision"):
                    quality.setdefault(key, []).append(hist["pl_precision"][-1])
                print(f"  {100 * frac:g}% labels seed {seed} {label:<14} test {acc:.4f} "
                      f"val {val:.4f} ({time.time() - t0:.0f}s)", flush=True)
    print("\n| labels | method | test accuracy (mean ± std, 3 seeds) | final PL precision |")
    print("|---|---|---|---|")
    for (frac, name), accs in sorted(table.items(), key=lambda kv: (kv[0][0],
                                                                    -statistics.fmean(kv[1]))):
        pl = quality.get((frac, name))
        pl_text = f"{100 * statistics.fmean(pl):.1f} %" if pl else "-"
        print(f"| {100 * frac:g} % | {name} | {100 * statistics.fmean(accs):.2f} ± "
              f"{100 * statistics.pstdev(accs):.2f} % | {pl_text} |")
    for frac in FRACTIONS:
        pct = int(round(100 * frac))
        ssl = [k for k in vals if k[0] == frac and k[1] != "supervised"]
        if ssl:
            best = max(ssl, key=lambda k: statistics.fmean(vals[k]))
            print(f"best by validation ({pct} %): {best[1]}")
            print(f"RESULT mentor_best_{pct} {statistics.fmean(table[best]):.4f}")
        print(f"RESULT labelspreading_{pct} {statistics.fmean(table[(frac, 'labelspreading')]):.4f}")
        print(f"RESULT selftraining_svc_{pct} "
              f"{statistics.fmean(table[(frac, 'selftraining_svc')]):.4f}")
        if (frac, "supervised") in table:
            print(f"RESULT supervised_{pct} {statistics.fmean(table[(frac, 'supervised')]):.4f}")


if __name__ == "__main__":
    main()
