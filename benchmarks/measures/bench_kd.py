"""`mentor bench --suite kd`: the built-in recipes `kd-family` (digits, settings few-labels
and compress) and `mnist1d`, every logit-distillation preset, 3 seeds, each method judged
against the baseline its paper claims to beat (:func:`mentor.commands.bench.compare`).

Figures: docs/methods.md's claims table, the `feature-kd` line and the summary under it;
README's MNIST-1D list, the kd-family sentence and the suite's compute time.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from unittest import mock

from ._fmt import pct, pm, verdict
from ._run import run_builtin


def _recipe(name: str, quick: bool) -> dict | None:
    """The built-in recipe's top-level overrides for the quick form (1 epoch, 1 seed; the
    teacher 1 epoch); ``None`` for the full recipe."""
    if not quick:
        return None
    from mentor.recipe import builtin_recipes, read_yaml
    raw = read_yaml(builtin_recipes()[name])
    teacher = {**raw["teacher"], "train": {**raw["teacher"]["train"], "epochs": 1}}
    return {"teacher": teacher, "train": {**raw["train"], "epochs": 1, "seeds": [0]}}


def run_kd_suite(quick: bool = False) -> tuple[dict[str, dict], list[dict], float]:
    """Run every recipe of ``mentor bench --suite kd`` as the command does; return each
    recipe's results, the claim rows (``mentor.commands.bench.compare``) and the compute time (CPU
    seconds of this process: one torch thread, so about the wall time on an idle machine
    and not inflated when other jobs share the cores)."""
    from mentor.commands.bench import SUITES, compare
    t0 = time.process_time()
    results, rows = {}, []
    with _no_latency(quick):
        for recipe in SUITES["kd"]:
            results[recipe] = run_builtin(recipe, _recipe(recipe, quick))
            rows += compare(results[recipe], recipe)
    return results, rows, time.process_time() - t0


@contextmanager
def _no_latency(quick: bool):
    """The quick form skips the leaderboard's speed-up timing (half its time; no figure here
    depends on it)."""
    if not quick:
        yield
        return
    import mentor.commands.run
    with mock.patch.object(mentor.commands.run, "speedup", lambda *a, **k: None):
        yield


def _rows(res: dict, setting: str) -> list[dict]:
    return [r for r in res["rows"] if r["setting"] == setting]


def _one(res: dict, setting: str, method: str) -> dict:
    (r,) = [r for r in _rows(res, setting) if r["method_name"] == method]
    return r


def _acc(r: dict) -> str:
    return pm(r["test_accuracies"])


def _names(methods: list[str]) -> str:
    """```a`, `b` and `c``` (an English list of method names)."""
    names = [f"`{m}`" for m in methods]
    if not names:
        return "none"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _and(items: list[str]) -> str:
    if not items:
        return "none"
    return items[0] if len(items) == 1 else "; ".join(items[:-1]) + "; and " + items[-1]


def _duration(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def _taught(r: dict) -> bool:
    from mentor.methods import get_method
    return get_method(r["method_name"]).plan(**r["method_params"]).needs_teacher


WORD = {"higher": "**above**", "lower": "**below**", "not separated": "not separated from"}
WHERE = {"kd-family": "digits", "mnist1d": "MNIST-1D"}


def _claim_row(r: dict, numbers: bool = True) -> str:
    """"`a` **below** `b` on digits / compress (x against y)"."""
    where = WHERE[r["recipe"]] + ("" if r["recipe"] == "mnist1d" else f" / {r['setting']}")
    text = f"`{r['method']}` {WORD[r['observed']]} `{r['baseline']}` on {where}"
    if numbers:
        text += (f" ({100 * r['mean']:.2f} ± {100 * r['std']:.2f} % against "
                 f"{100 * r['baseline_mean']:.2f} ± {100 * r['baseline_std']:.2f} %)")
    return text


def _by_verdict(rows: list[dict], base: dict, label: str) -> str:
    """Methods of ``rows`` grouped by their verdict against ``base`` (the project's rule)."""
    groups: dict[str, list[str]] = {}
    for r in rows:
        groups.setdefault(verdict(r["test_accuracies"], base["test_accuracies"]),
                          []).append(r["method"])
    if set(groups) == {"higher"}:
        return f"all {len(rows)} {label} are **above** `{base['method']}`"
    order = ("higher", "not separated", "lower")
    return "; ".join(f"{WORD[v]} `{base['method']}`: {_names(groups[v])}"
                     for v in order if v in groups)


def _summary(results: dict, rows: list[dict]) -> dict[str, str]:
    """The verdict-dependent sentences of the summary under the claims table."""
    fam = results["kd-family"]
    few = _rows(fam, "few-labels")
    scratch = _one(fam, "few-labels", "scratch")
    out = {"summary.few": _by_verdict([r for r in few if _taught(r)], scratch,
                                      "methods that learn from the teacher"),
           "summary.few_uskd": verdict(_one(fam, "few-labels", "uskd")["test_accuracies"],
                                       scratch["test_accuracies"]),
           "summary.few_uskd_acc": _acc(_one(fam, "few-labels", "uskd")),
           "summary.few_scratch": _acc(scratch)}
    # the finer claims on digits: a logit loss at least as good as KD (or DKD)
    fine = [r for r in rows if r["recipe"] == "kd-family" and r["baseline"] in ("kd", "dkd")]
    counts: dict[str, list[dict]] = {}
    for r in fine:
        counts.setdefault(r["observed"], []).append(r)
    parts = [f"{len(counts.get('not separated', []))} of {len(fine)} not separated"]
    parts += [_claim_row(r, numbers=False) for v in ("higher", "lower") for r in counts.get(v, [])]
    out["summary.fine"] = "; ".join(parts)
    logit = ("kd", "ls-kd", "dkd", "ls-dkd", "nkd", "pld")
    spread = max(max(r["test_accuracy_mean"] for r in _rows(fam, s) if r["method"] in logit)
                 - min(r["test_accuracy_mean"] for r in _rows(fam, s) if r["method"] in logit)
                 for s in ("few-labels", "compress"))
    out["summary.logit_spread"] = f"{100 * spread:.1f}"
    # clear disagreements, and the claims beyond "KD beats scratch with few labels" that hold
    out["summary.disagree"] = _and([_claim_row(r) for r in rows if r["agrees"] == "no"])
    holds = [r for r in rows if r["agrees"] == "yes"
             and not (r["setting"] == "few-labels" and r["baseline"] == "scratch")]
    out["summary.holds"] = _and([_claim_row(r) for r in holds])
    out["summary.holds_short"] = _and([_claim_row(r, numbers=False) for r in holds])
    out["summary.disagree_short"] = _and([_claim_row(r, numbers=False) for r in rows
                                          if r["agrees"] == "no"])
    return out


def measure(quick: bool) -> dict[str, str]:
    from mentor.commands.bench import markdown
    results, rows, compute = run_kd_suite(quick)
    fam, m1d = results["kd-family"], results["mnist1d"]
    out = {"compute": _duration(compute), "table": markdown(rows).rstrip("\n"),
           "kd-family.teacher": pct(fam["teacher"]["test_accuracy"]),
           "mnist1d.teacher": pct(m1d["teacher"]["test_accuracy"]),
           "mnist1d.teacher_params": f"{m1d['teacher']['params']:,}",
           "mnist1d.student_params": f"{_one(m1d, 'default', 'scratch')['params']:,}"}
    out["feature.few"] = _acc(_one(fam, "few-labels", "feature-kd"))
    out["feature.compress"] = _acc(_one(fam, "compress", "feature-kd"))
    out["feature.mnist1d"] = _acc(_one(m1d, "default", "feature-kd"))
    out["ssld.few"] = _acc(_one(fam, "few-labels", "ssld"))

    # README: every MNIST-1D preset, best mean first; what separates from KD and scratch
    m_rows = _rows(m1d, "default")
    ranked = sorted(m_rows, key=lambda r: -r["test_accuracy_mean"])
    out["mnist1d.list"] = ", ".join(f"`{r['method']}` {_acc(r)}" for r in ranked)
    kd = _one(m1d, "default", "kd")
    m_scratch = _one(m1d, "default", "scratch")
    out["mnist1d.kd_vs_scratch"] = verdict(kd["test_accuracies"], m_scratch["test_accuracies"])
    above = [r for r in ranked if r is not kd
             and verdict(r["test_accuracies"], kd["test_accuracies"]) == "higher"]
    out["mnist1d.above_kd"] = ", ".join(
        f"`{r['method']}` (+{100 * (r['test_accuracy_mean'] - kd['test_accuracy_mean']):.1f} "
        "points)" for r in above) or "none"

    # README: kd-family, few-labels -- the students that learn from the teacher
    taught = [r for r in _rows(fam, "few-labels") if _taught(r)]
    lo = min(r["test_accuracy_mean"] for r in taught)
    hi = max(r["test_accuracy_mean"] for r in taught)
    out["few.taught_min"] = pct(lo)
    out["few.taught_min_by"] = _names([r["method"] for r in taught
                                       if r["test_accuracy_mean"] == lo])
    out["few.taught_max"] = pct(hi)
    out["few.taught_max_by"] = _names([r["method"] for r in taught
                                       if r["test_accuracy_mean"] == hi])
    out["few.scratch"] = pct(_one(fam, "few-labels", "scratch")["test_accuracy_mean"])
    out["few.uskd"] = pct(_one(fam, "few-labels", "uskd")["test_accuracy_mean"])
    comp = sorted(_rows(fam, "compress"), key=lambda r: r["test_accuracy_mean"])
    out["compress.n"] = str(len(comp))
    spread = comp[-1]["test_accuracy_mean"] - comp[0]["test_accuracy_mean"]
    out["compress.spread"] = f"{100 * spread:.2f}"
    out["compress.min"] = f"{pct(comp[0]['test_accuracy_mean'])} (`{comp[0]['method']}`)"
    out["compress.max"] = f"{pct(comp[-1]['test_accuracy_mean'])} (`{comp[-1]['method']}`)"
    out["compress.std_max"] = f"{100 * max(r['test_accuracy_std'] for r in comp):.2f}"
    out.update(_summary(results, rows))
    return out


from . import measurement  # noqa: E402

measurement("bench-kd", about="`mentor bench --suite kd` (built-in recipes `kd-family`: digits, "
            "few-labels and compress, and `mnist1d`; every logit-KD preset, 3 seeds): claims "
            "table, verdicts, MNIST-1D ranking, compute time", ci="quick", minutes=4)(measure)
