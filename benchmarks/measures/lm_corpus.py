"""Language-model distillation on a real corpus (docs/quickstart.md, "A real corpus"): the
built-in recipe ``wordnet-lm`` (``mentor run wordnet-lm``): WordNet's dictionary entries from
the Debian package wordnet-base (:mod:`mentor.lm.corpus`), a byte-level BPE tokenizer trained
on the training split, a GPT-2 teacher trained on it and GPT-2 students with about 4x fewer
parameters distilled by four regimes on the same rows, steps and seeds, each student's
weights selected by validation perplexity. Figures on the held-out entries: perplexity, and
exact match of their part of speech after the definition; mean ± std over 3 seeds and
verdicts against the data alone by the project's rule (a gap above twice the larger std).
"""

from __future__ import annotations

import time

from . import measurement
from ._fmt import mean_std, pct, pm, verdict
from ._run import row, run_builtin

RECIPE = "wordnet-lm"
METHODS = ("data", "forward-kl", "reverse-kl", "on-policy")
NAMES = {"data": "the data alone", "forward-kl": "off-policy forward KL",
         "reverse-kl": "off-policy reverse KL", "on-policy": "on-policy reverse KL, λ 0.5"}
KEYS = {"forward-kl": "forward_kl", "reverse-kl": "reverse_kl", "on-policy": "on_policy"}
TINY = {"model_type": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2, "n_positions": 64,
        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}


def quick_overrides() -> dict:
    """The recipe's quick form: 100 test entries, a 600-token tokenizer, tiny models, a few
    steps, seed 0 only."""
    from mentor.recipe import builtin_recipes, read_yaml
    raw = read_yaml(builtin_recipes()[RECIPE])
    return {"data": {**raw["data"], "val": 50, "test": 100, "vocab_size": 600,
                     "student_sequences": 400},
            "teacher": {**raw["teacher"], "config": {**TINY, "n_embd": 32}, "steps": 10,
                        "eval_every": 5},
            "student": {**raw["student"], "config": TINY},
            "train": {**raw["train"], "steps": 4, "eval_every": 2, "seeds": [0]}}


def corpus_run(quick: bool = False) -> dict:
    """``mentor run wordnet-lm`` in process (its quick form with ``quick``), timed."""
    t0 = time.time()
    results = run_builtin(RECIPE, quick_overrides() if quick else None)
    results["seconds"] = time.time() - t0
    return results


def ppl_pm(values) -> str:
    """Perplexities as ``'212.4 ± 3.1'``."""
    m, s = mean_std(values)
    return f"{m:.1f} ± {s:.1f}"


def count(method, baseline, lower: bool) -> int:
    """Seeds on which ``method`` is below (``lower``) or above ``baseline``."""
    return sum((a < b) if lower else (a > b) for a, b in zip(method, baseline, strict=True))


def corpus_figures(r: dict) -> dict[str, str]:
    facts, t = r["data_facts"], r["teacher"]
    rows = {m: row(r, "default", m) for m in METHODS}
    base = rows["data"]
    n = len(r["seeds"])
    out = {"train": f"{facts['synsets']['train']:,}", "test": f"{facts['synsets']['test']:,}",
           "vocab": f"{facts['vocab_size']:,}", "max_len": str(facts["max_length"]),
           "cut": pct(facts["cut"]["train"] / facts["synsets"]["train"], 0),
           "dropped": f"{sum(facts['dropped'].values()):,}",
           "teacher.params": f"{t['params']:,}", "student.params": f"{base['params']:,}",
           "ratio": f"{t['params'] / base['params']:.1f}×",
           "teacher.ppl": f"{t['test_perplexity']:.1f}", "teacher.em": pct(t["test_accuracy"], 1),
           "majority": pct(facts["majority"], 1), "wall": f"{r['seconds'] / 60:.0f} min"}
    lines = ["| student | perplexity | against the data alone (seeds lower) | part of speech "
             "| against the data alone (seeds higher) |", "|---|---|---|---|---|"]
    for m, x in rows.items():
        ppl, em = x["test_perplexities"], x["test_accuracies"]
        out[f"{KEYS.get(m, m)}.ppl"], out[f"{KEYS.get(m, m)}.em"] = ppl_pm(ppl), pm(em, 1)
        if m == "data":
            lines.append(f"| {NAMES[m]} | {ppl_pm(ppl)} | — | {pm(em, 1)} | — |")
            continue
        k = KEYS[m]
        out[f"{k}.ppl.verdict"] = v_ppl = verdict(ppl, base["test_perplexities"])
        out[f"{k}.em.verdict"] = v_em = verdict(em, base["test_accuracies"])
        lines.append(f"| {NAMES[m]} | {ppl_pm(ppl)} | {v_ppl} "
                     f"({count(ppl, base['test_perplexities'], True)} of {n}) | {pm(em, 1)} | "
                     f"{v_em} ({count(em, base['test_accuracies'], False)} of {n}) |")
    out["table"] = "\n".join(lines)
    return out


@measurement("lm-corpus", about="`mentor run wordnet-lm` (built-in recipe: WordNet's "
             "dictionary entries from Debian wordnet-base, BPE tokenizer of the training "
             "split, GPT-2 teacher 4 x 96 (2,000 steps), GPT-2 students 2 x 48 (1,000 steps, "
             "selected by validation perplexity): the data alone / off-policy forward KL / "
             "off-policy reverse KL / on-policy reverse KL, 3 seeds): test perplexity and "
             "part-of-speech exact match, mean ± std, verdicts vs the data alone", ci="quick",
             minutes=20, volatile=("wall",))
def measure_lm_corpus(quick: bool) -> dict[str, str]:
    return corpus_figures(corpus_run(quick))
