"""Benchmark suites: built-in recipes run together, each method checked against the effect
its paper claims (a :class:`mentor.methods.Claim`), honestly labelled where we disagree."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from .._util.atomic import atomic_write_text
from ..errors import MentorError
from ..recipe import builtin_recipes, read_yaml
from ..registry import METHODS, suggest
from ..runs.env import timestamp

SUITES: dict[str, tuple[str, ...]] = {
    "kd": ("kd-family", "mnist1d"),  # every logit-KD preset: digits (2 settings), MNIST-1D
}


@dataclass
class Verdict:
    observed: str  # "higher", "lower" or "not separated"
    agrees: str  # "yes", "no" or "not shown"


def judge(mean: float, std: float, base_mean: float, base_std: float,
          relation: str) -> Verdict:
    """Compare a method with its baseline: separated when the gap exceeds twice the larger
    standard deviation. ``>`` needs a clear win; ``>=`` is contradicted only by a clear loss."""
    gap = mean - base_mean
    margin = 2 * max(std, base_std)
    observed = "higher" if gap > margin else "lower" if gap < -margin else "not separated"
    if relation == ">":
        agrees = "yes" if observed == "higher" else "no" if observed == "lower" else "not shown"
    else:
        agrees = "no" if observed == "lower" else "yes" if observed == "higher" else "not shown"
    return Verdict(observed, agrees)


def compare(results: dict, recipe: str) -> list[dict]:
    """One row per method with a claim whose baseline ran in the same setting."""
    rows = []
    by_key = {(r["setting"], r["method_name"]): r for r in results["rows"]}
    for r in results["rows"]:
        method = METHODS.get(r["method_name"])
        claim = method.claim
        if claim is None:
            continue
        base = by_key.get((r["setting"], claim.baseline))
        if base is None:
            continue
        v = judge(r["test_accuracy_mean"], r["test_accuracy_std"], base["test_accuracy_mean"],
                  base["test_accuracy_std"], claim.relation)
        rows.append({
            "recipe": recipe, "setting": r["setting"], "method": r["method"],
            "mean": r["test_accuracy_mean"], "std": r["test_accuracy_std"],
            "baseline": claim.baseline, "baseline_mean": base["test_accuracy_mean"],
            "baseline_std": base["test_accuracy_std"],
            "claim": f"{r['method_name']} {claim.relation} {claim.baseline}",
            "claim_source": claim.source, "observed": v.observed, "agrees": v.agrees,
            "seeds": r["seeds"]})
    return rows


def markdown(rows: list[dict]) -> str:
    head = ("| data / setting | method | test accuracy | baseline | paper's claim | observed "
            "| agrees |\n|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {r['recipe']} / {r['setting']} | `{r['method']}` | {100 * r['mean']:.2f} ± "
        f"{100 * r['std']:.2f} % | `{r['baseline']}` {100 * r['baseline_mean']:.2f} ± "
        f"{100 * r['baseline_std']:.2f} % | {r['claim']} ({r['claim_source']}) | "
        f"{r['observed']} | {r['agrees']} |\n" for r in rows)
    return head + body


def run_suite(name: str, out_root: Path, *, progress: bool = True, console=None) -> Path:
    """Run every recipe of suite ``name``; write ``bench.md`` / ``bench.json``; return the
    suite folder (written under a temporary name and renamed when complete)."""
    from .run import run_recipe

    if name not in SUITES:
        raise MentorError(f"--suite {name!r} is not a benchmark suite{suggest(name, SUITES)}; "
                          f"expected one of {', '.join(SUITES)}")
    recipes = builtin_recipes()
    stamp = timestamp()
    final = Path(out_root) / f"bench-{name}-{stamp}"
    tmp = Path(out_root) / f".bench-{name}-{stamp}.partial"
    try:
        tmp.mkdir(parents=True)
    except OSError as e:
        raise MentorError(f"--out: cannot create a folder in '{out_root}' ({e.strerror})") \
            from None
    try:
        rows = []
        for recipe in SUITES[name]:
            run_dir = run_recipe(read_yaml(recipes[recipe]), tmp, source=recipe,
                                 progress=progress, console=console)
            results = json.loads((run_dir / "results.json").read_text())
            rows += compare(results, recipe)
        atomic_write_text(tmp / "bench.json", json.dumps(rows, indent=1))
        atomic_write_text(tmp / "bench.md", markdown(rows))
        tmp.rename(final)
    except BaseException as exc:
        if not isinstance(exc, KeyboardInterrupt):
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
