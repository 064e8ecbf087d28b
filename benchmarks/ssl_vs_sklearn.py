"""Semi-supervised digits: mentor's presets against scikit-learn's semi-supervised baselines.

Protocol (the same for every method): scikit-learn's digits, the stratified 60/20/20
train/validation/test split of split seed ``s``, with 5 % or 10 % of each class's training
labels visible; the other training rows are unlabeled. Seeds ``s = 0, 1, 2`` change the split,
the labeled subset and the initialisation. Every method sees the same rows; every choice is
made on the validation split, and only the picked configuration's test accuracy is reported:

- ``LabelSpreading(kernel="knn")`` and ``SelfTrainingClassifier(SVC(probability=True))``
  fitted on the training rows (``-1`` = unlabeled). Each is tuned on the validation split:
  the input (raw or standardized pixels) and a small grid (LabelSpreading: ``n_neighbors``,
  ``alpha``; the SVC: ``C``, ``gamma`` as a multiple of scikit-learn's ``"scale"``); the
  configuration with the best mean validation accuracy over the split seeds is reported;
- ``supervised``: mentor's student (same network, optimizer, steps and views) trained on the
  labeled rows only (method ``scratch``); the engine gives its labeled rows the presets' weak
  view (:mod:`mentor.engine.views`), so the baseline is not handicapped;
- mentor's semi-supervised presets from the built-in recipe ``ssl``
  (``src/mentor/recipes/ssl.yaml``: network, views, optimizer, epochs); each run keeps the
  epoch with the best validation accuracy.

``mentor_best_<pct>`` is the preset with the best mean *validation* accuracy (chosen without
looking at the test split); its test accuracy is reported. Prints a table, then
``RESULT <name> <mean test accuracy in [0,1]>`` lines; ``--json PATH`` also writes every
per-seed test and validation accuracy and the configurations picked.

    python benchmarks/ssl_vs_sklearn.py                 # all presets of the recipe, hours
    python benchmarks/ssl_vs_sklearn.py --presets fixmatch,flexmatch --epochs 150
    python benchmarks/ssl_vs_sklearn.py --quick         # split seed 0, fixmatch, 2 epochs
"""

from __future__ import annotations

import argparse
import itertools
import json
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
from mentor.engine import get_accelerator  # noqa: E402
from mentor.engine.evaluate import evaluate  # noqa: E402
from mentor.methods import get_method  # noqa: E402
from mentor.models import build_model  # noqa: E402
from mentor.recipe import builtin_recipes, parse_recipe, read_yaml  # noqa: E402

SEEDS = (0, 1, 2)
FRACTIONS = (0.05, 0.10)
# scikit-learn's grids, searched on the validation split (input x hyperparameters)
INPUTS = ("raw", "standardized")
LS_GRID = {"n_neighbors": (3, 5, 7, 10, 15), "alpha": (0.01, 0.1, 0.2, 0.5, 0.8)}
SVC_GRID = {"C": (1.0, 10.0, 100.0), "gamma": (0.3, 1.0, 3.0)}  # gamma x "scale"
QUICK_LS = {"n_neighbors": (7,), "alpha": (0.2,)}
QUICK_SVC = {"C": (10.0,), "gamma": (1.0,)}


def _grid(grid: dict[str, tuple]) -> list[dict]:
    return [dict(zip(grid, vals)) for vals in itertools.product(*grid.values())]


def _make(kind: str, params: dict, x_train: np.ndarray):
    import warnings
    # the baseline is SVC(probability=True); scikit-learn 1.9 deprecates the flag
    warnings.filterwarnings("ignore", message="The `probability` parameter was deprecated")
    from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier
    from sklearn.svm import SVC
    if kind == "labelspreading":
        return LabelSpreading(kernel="knn", **params)
    scale = 1.0 / (x_train.shape[1] * x_train.var())  # scikit-learn's gamma="scale"
    return SelfTrainingClassifier(SVC(probability=True, random_state=0, C=params["C"],
                                      gamma=params["gamma"] * scale))


def sklearn_configs(splits_raw, splits_std, quick: bool = False
                    ) -> dict[str, dict[str, tuple[float, float]]]:
    """``{kind: {config: (validation accuracy, test accuracy)}}`` for one split seed, over
    the inputs and the grid (``config`` names the input and the parameters)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    # LabelSpreading with few neighbours can leave isolated rows without a label
    # distribution (NaN: it predicts the first class) and stop at max_iter; the validation
    # split weighs that like any other weakness of a configuration
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    warnings.filterwarnings("ignore", message="invalid value encountered in divide")
    out: dict[str, dict[str, tuple[float, float]]] = {}
    grids = {"labelspreading": QUICK_LS if quick else LS_GRID,
             "selftraining_svc": QUICK_SVC if quick else SVC_GRID}
    for kind, grid in grids.items():
        for inp, sp in zip(INPUTS, (splits_raw, splits_std)):
            x = sp.train.x.numpy()
            y = np.where(sp.train.labeled.numpy(), sp.train.y.numpy(), -1)
            for params in _grid(grid):
                model = _make(kind, params, x).fit(x, y)
                val = float((model.predict(sp.val.x.numpy()) == sp.val.y.numpy()).mean())
                test = float((model.predict(sp.test.x.numpy()) == sp.test.y.numpy()).mean())
                name = f"{inp} " + " ".join(f"{k}={v:g}" for k, v in params.items())
                out.setdefault(kind, {})[name] = (val, test)
    return out


def mentor_run(recipe, name: str, params: dict, splits, seed: int, epochs: int | None):
    """(test accuracy, best validation accuracy, history) of one preset, trained as
    ``mentor run`` trains it (the plan's student wrapper, rows, mixers)."""
    spec = recipe.train.model_copy(update={"seeds": [seed], **({"epochs": epochs}
                                                               if epochs else {})})
    plan = get_method(name).plan(**params)
    torch.manual_seed(seed)
    student = build_model(recipe.student.model, splits.input_shape, splits.num_classes,
                          **recipe.student.build_kwargs())
    res = plan.fit(student, splits.train, splits.val, spec=spec, seed=seed,
                   num_outputs=splits.num_classes, input_shape=splits.input_shape)
    test = evaluate(res.model, splits.test.x, splits.test.y, get_accelerator("no"))
    return test["accuracy"], res.best_val_accuracy, res.history


def _pm(accs: list[float]) -> str:
    return f"{100 * statistics.fmean(accs):.2f} ± {100 * statistics.pstdev(accs):.2f} %"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="", help="comma-separated subset of the recipe's "
                    "methods (default: all; --quick: fixmatch)")
    ap.add_argument("--epochs", type=int, default=0, help="override the recipe's epochs")
    ap.add_argument("--quick", action="store_true", help="split seed 0, 2 epochs, fixmatch, "
                    "one scikit-learn configuration per input (a smoke run, seconds)")
    ap.add_argument("--json", default="", help="write every per-seed accuracy here")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    set_threads(args.threads)
    seeds = SEEDS[:1] if args.quick else SEEDS
    epochs = args.epochs or (2 if args.quick else 0)
    recipe = parse_recipe(read_yaml(builtin_recipes()["ssl"]), "ssl")
    methods = [(m.label or m.name, m.name, dict(m.model_extra or {}))
               for m in recipe.method_list()]
    presets = args.presets or ("fixmatch" if args.quick else "")
    if presets:
        keep = set(presets.split(",")) | {"scratch"}  # the supervised arm always runs
        methods = [m for m in methods if m[0] in keep or m[1] in keep]
    table: dict[tuple[float, str], list[float]] = {}
    vals: dict[tuple[float, str], list[float]] = {}
    quality: dict[tuple[float, str], list[float]] = {}
    configs: dict[tuple[float, str], dict[str, list[tuple[float, float]]]] = {}
    t0 = time.time()
    for frac in FRACTIONS:
        for seed in seeds:
            raw = load("digits", labeled_fraction=frac, split_seed=seed, standardize=False)
            std = load("digits", labeled_fraction=frac, split_seed=seed, standardize=True)
            for kind, by_cfg in sklearn_configs(raw, std, args.quick).items():
                for cfg, vt in by_cfg.items():
                    configs.setdefault((frac, kind), {}).setdefault(cfg, []).append(vt)
            print(f"  {100 * frac:g}% labels seed {seed} scikit-learn grids "
                  f"({time.time() - t0:.0f}s)", flush=True)
            splits = raw if not recipe.data.standardize else std
            for label, name, params in methods:
                acc, val, hist = mentor_run(recipe, name, params, splits, seed, epochs)
                key = (frac, "supervised" if name == "scratch" else label)
                table.setdefault(key, []).append(acc)
                vals.setdefault(key, []).append(val)
                if hist.get("pl_precision"):
                    quality.setdefault(key, []).append(hist["pl_precision"][-1])
                print(f"  {100 * frac:g}% labels seed {seed} {label:<14} test {acc:.4f} "
                      f"val {val:.4f} ({time.time() - t0:.0f}s)", flush=True)
    picked: dict[tuple[float, str], str] = {}
    for (frac, kind), by_cfg in configs.items():  # the best mean validation accuracy
        cfg = max(by_cfg, key=lambda c: statistics.fmean(v for v, _ in by_cfg[c]))
        picked[(frac, kind)] = cfg
        table[(frac, kind)] = [t for _, t in by_cfg[cfg]]
        vals[(frac, kind)] = [v for v, _ in by_cfg[cfg]]
    print(f"\n| labels | method | test accuracy (mean ± std, {len(seeds)} seeds) | "
          "final PL precision |")
    print("|---|---|---|---|")
    for (frac, name), accs in sorted(table.items(), key=lambda kv: (kv[0][0],
                                                                    -statistics.fmean(kv[1]))):
        pl = quality.get((frac, name))
        pl_text = f"{100 * statistics.fmean(pl):.1f} %" if pl else "-"
        cfg = f" ({picked[(frac, name)]})" if (frac, name) in picked else ""
        print(f"| {100 * frac:g} % | {name}{cfg} | {_pm(accs)} | {pl_text} |")
    best: dict[float, str] = {}
    for frac in FRACTIONS:
        pct = int(round(100 * frac))
        ssl = [k for k in vals if k[0] == frac and k[1] != "supervised"
               and k[1] not in ("labelspreading", "selftraining_svc")]
        if ssl:
            b = max(ssl, key=lambda k: statistics.fmean(vals[k]))
            best[frac] = b[1]
            print(f"best by validation ({pct} %): {b[1]}")
            print(f"RESULT mentor_best_{pct} {statistics.fmean(table[b]):.4f}")
        for kind in ("labelspreading", "selftraining_svc"):
            print(f"picked on validation ({pct} %) {kind}: {picked[(frac, kind)]}")
            print(f"RESULT {kind}_{pct} {statistics.fmean(table[(frac, kind)]):.4f}")
        if (frac, "supervised") in table:
            print(f"RESULT supervised_{pct} {statistics.fmean(table[(frac, 'supervised')]):.4f}")
    print(f"minutes {(time.time() - t0) / 60:.1f}")
    if args.json:
        doc = {"seeds": list(seeds), "epochs": epochs or recipe.train.epochs,
               "fractions": {str(int(round(100 * f))): {
                   "test": {n: table[(f, n)] for (ff, n) in table if ff == f},
                   "val": {n: vals[(f, n)] for (ff, n) in vals if ff == f},
                   "pl_precision": {n: quality[(f, n)] for (ff, n) in quality if ff == f},
                   "best_by_validation": best.get(f),
                   "picked": {k: picked[(f, k)] for (ff, k) in picked if ff == f}}
                   for f in FRACTIONS},
               "minutes": (time.time() - t0) / 60}
        Path(args.json).write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
