"""`mentor run` with no argument: the README's leaderboard and what it says about it."""

from __future__ import annotations

import statistics
import time

from ._fmt import claim, mean_std, pct, pm, verdict
from ._run import row, run_builtin

QUICK = {"train": {"epochs": 2, "batch_size": 64, "lr": 0.003, "seeds": [0]}}


def _quick_recipe() -> dict:
    from mentor.recipe import builtin_recipes, read_yaml
    raw = read_yaml(builtin_recipes()["default"])
    raw["teacher"]["train"]["epochs"] = 2
    for s in raw["settings"]:
        if "train" in s:
            s["train"]["epochs"] = 1
    return {**QUICK, "teacher": raw["teacher"], "settings": raw["settings"]}


def leaderboard(results: dict) -> str:
    """The leaderboard as a markdown table, rows in the CLI's order (by mean test accuracy
    within a setting, for display)."""
    lines = [f"| setting | method | test accuracy (mean ± std, {len(results['seeds'])} seeds) | "
             "teacher agreement | speed-up vs teacher |", "|---|---|---|---|---|"]
    for s in results["settings"]:
        rows = [r for r in results["rows"] if r["setting"] == s["name"]]
        rows.sort(key=lambda r: -r["test_accuracy_mean"])
        for r in rows:
            agree = r.get("teacher_agreement_mean")
            speed = r.get("speedup")
            lines.append(f"| {s['name']} | `{r['method']}` | {pm(r['test_accuracies'])} | "
                         f"{pct(agree) if agree is not None else '—'} | "
                         f"{f'{speed:.1f}×' if speed else '—'} |")
    return "\n".join(lines)


def points(x: float) -> str:
    return f"{100 * x:.1f}"


def measure(quick: bool) -> dict[str, str]:
    t0 = time.time()
    res = run_builtin("default", _quick_recipe() if quick else None)
    wall = time.time() - t0
    out = {"table": leaderboard(res), "teacher": pct(res["teacher"]["test_accuracy"]),
           "wall": f"{int(wall // 60)} min {int(wall % 60)} s"}
    for r in res["rows"]:  # every row, for the prose: '<setting>/<method>'
        out[f"{r['setting']}/{r['method']}"] = pm(r["test_accuracies"])
    out["compress/scratch.mean"] = pct(row(res, "compress", "scratch")["test_accuracy_mean"])
    few = [r for r in res["rows"] if r["setting"] == "few-labels"]
    scratch = row(res, "few-labels", "scratch")
    kd_rows = [r for r in few if r["method"] != "scratch"]
    gaps = [r["test_accuracy_mean"] - scratch["test_accuracy_mean"] for r in kd_rows]
    ratio = min((r["test_accuracy_mean"] - scratch["test_accuracy_mean"])
                / max(r["test_accuracy_std"], scratch["test_accuracy_std"], 1e-4)
                for r in kd_rows)
    out.update({"few.gain_min": points(min(gaps)), "few.gain_max": points(max(gaps)),
                "few.gap_over_std": f"{ratio:.1f}"})
    comp = [r for r in res["rows"] if r["setting"] == "compress"]
    means = [r["test_accuracy_mean"] for r in comp]
    stds = [r["test_accuracy_std"] for r in comp]
    out.update({"compress.spread": points(max(means) - min(means)),
                "compress.std_max": points(max(stds)),
                "compress.verdicts": _verdicts(comp, "scratch")})
    ssl_scratch = row(res, "semi-supervised", "scratch")["test_accuracies"]
    for m in ("fixmatch", "freematch"):
        r = row(res, "semi-supervised", m)
        gain = statistics.fmean(r["test_accuracies"]) - statistics.fmean(ssl_scratch)
        out[f"ssl.{m}.gain"] = points(gain)
        out[f"ssl.{m}.claim"] = claim(r["test_accuracies"], ssl_scratch)
    hist = [m["history"] for m in res["metrics"]
            if m["setting"] == "semi-supervised" and m["method"] == "fixmatch"]
    prec = [h["pl_precision"][-1] for h in hist]
    cov = [h["pl_coverage"][-1] for h in hist]
    out["ssl.fixmatch.pl_precision"] = f"{100 * mean_std(prec)[0]:.0f} %"
    out["ssl.fixmatch.pl_coverage"] = f"{100 * mean_std(cov)[0]:.0f} %"
    return out


def _verdicts(rows: list[dict], baseline: str) -> str:
    """Which methods of a setting separate from ``baseline`` (the project's rule), in words."""
    base = [r for r in rows if r["method"] == baseline][0]["test_accuracies"]
    others = [r for r in rows if r["method"] != baseline]
    sep = [(r["method"], verdict(r["test_accuracies"], base)) for r in others]
    sep = [(m, v) for m, v in sep if v != "not separated"]
    if not sep:
        return f"none of the {len(others)} separates from `{baseline}`"
    named = ", ".join(f"`{m}` {v}" for m, v in sep)
    return f"{len(sep)} of the {len(others)} separate from `{baseline}` ({named})"


from . import measurement  # noqa: E402

measurement("default", about="`mentor run` (built-in recipe `default`: digits, 3 settings, "
            "3 seeds): leaderboard, teacher, gaps, pseudo-label quality, wall time",
            ci="quick", minutes=2.5)(measure)
