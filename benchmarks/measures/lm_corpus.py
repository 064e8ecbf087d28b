"""Language-model distillation on a real corpus (docs/quickstart.md, "A real corpus"):
WordNet's dictionary entries from the Debian package wordnet-base (:mod:`mentor.lm.corpus`),
a byte-level BPE tokenizer trained on the training split, a GPT-2 teacher trained on it and
GPT-2 students with 4x fewer parameters distilled by four regimes on the same rows, steps and
seeds. Figures on the held-out synsets: perplexity and next-token accuracy of their
definitions, exact match of their part of speech from the word alone; mean ± std over 3
seeds and verdicts against the supervised student by the project's rule (a gap above twice
the larger std).
"""

from __future__ import annotations

import time

from . import measurement
from ._fmt import mean_std, pct, pm, verdict

FULL = dict(test=1000, val=500, train=None, vocab_size=2000, max_len=32, teacher=(4, 96),
            teacher_steps=600, student=(2, 48), steps=200, batch_size=32, lr=3e-3,
            seeds=(0, 1, 2))
QUICK = dict(FULL, test=100, val=50, train=2000, vocab_size=600, teacher=(1, 32),
             teacher_steps=10, student=(1, 16), steps=4, seeds=(0,))
REGIMES = {  # figure key -> distill_lm arguments
    "supervised": {"regime": "supervised"},
    "forward_kl": {"regime": "off_policy", "divergence": "forward_kl"},
    "reverse_kl": {"regime": "off_policy", "divergence": "reverse_kl"},
    "on_policy": {"regime": "on_policy", "lam": 0.5},
}
NAMES = {"supervised": "supervised (the data alone)", "forward_kl": "off-policy forward KL",
         "reverse_kl": "off-policy reverse KL", "on_policy": "on-policy reverse KL, λ 0.5"}
METRICS = ("ppl", "acc", "em")  # perplexity, next-token accuracy, part-of-speech exact match


def corpus_runs(quick: bool = False) -> dict:
    """The teacher once, then every regime's student per seed (student weights from seed
    ``100 + seed``, the same for every regime): ``{"teacher": {metric: value}, "students":
    {key: {metric: [per seed]}}, "info": Corpus, "params": (teacher, student), "seconds":
    wall time}``. Adam at ``lr`` with cosine decay to 0 and gradients clipped at 1, batches
    of ``batch_size`` rows drawn from every training row; each model is scored after its
    last step (no selection)."""
    from mentor.lm import distill_lm, exact_match
    from mentor.lm.corpus import corpus_data, gpt2, parameters, token_scores
    from mentor.lm.regimes import Optimization

    c = QUICK if quick else FULL
    t0 = time.time()
    train, _, test, info = corpus_data(0, val=c["val"], test=c["test"], train=c["train"],
                                       vocab_size=c["vocab_size"], max_len=c["max_len"])
    positions = 2 * c["max_len"]  # a prompt and a sampled completion

    def model(shape, seed):
        return gpt2(info.vocab_size, layers=shape[0], width=shape[1], positions=positions,
                    seed=seed)

    def scores(m) -> dict[str, float]:
        s = token_scores(m, info.lm_test)
        return {"ppl": s["perplexity"], "acc": s["accuracy"], "em": exact_match(m, test)}

    opt = Optimization(lr=c["lr"], schedule="cosine", max_grad_norm=1.0)
    teacher = distill_lm(model(c["teacher"], 0), None, train, regime="supervised",
                         steps=c["teacher_steps"], batch_size=c["batch_size"],
                         eval_every=c["teacher_steps"], optimization=opt, seed=0).model.eval()
    out = {"teacher": scores(teacher), "info": info,
           "students": {k: {m: [] for m in METRICS} for k in REGIMES},
           "params": (parameters(teacher), parameters(model(c["student"], 0)))}
    for seed in c["seeds"]:
        for key, how in REGIMES.items():
            res = distill_lm(model(c["student"], 100 + seed), teacher, train,
                             steps=c["steps"], batch_size=c["batch_size"],
                             eval_every=c["steps"], optimization=opt, seed=seed, **how)
            for name, value in scores(res.model).items():
                out["students"][key][name].append(value)
    out["seconds"] = time.time() - t0
    return out


def ppl_pm(values) -> str:
    """Perplexities as ``'212.4 ± 3.1'``."""
    m, s = mean_std(values)
    return f"{m:.1f} ± {s:.1f}"


def count(method, baseline, lower: bool) -> int:
    """Seeds on which ``method`` is below (``lower``) or above ``baseline``."""
    return sum((a < b) if lower else (a > b) for a, b in zip(method, baseline, strict=True))


def corpus_figures(r: dict) -> dict[str, str]:
    info, (tp, sp) = r["info"], r["params"]
    base = r["students"]["supervised"]
    n = len(base["ppl"])
    t = r["teacher"]
    out = {"train": f"{info.synsets['train']:,}", "test": f"{info.synsets['test']:,}",
           "vocab": f"{info.vocab_size:,}", "max_len": str(info.max_len),
           "cut": pct(info.cut["train"] / info.synsets["train"], 0),
           "teacher.params": f"{tp:,}", "student.params": f"{sp:,}", "ratio": f"{tp / sp:.1f}×",
           "teacher.ppl": f"{t['ppl']:.1f}", "teacher.acc": pct(t["acc"], 1),
           "teacher.em": pct(t["em"], 1), "majority": pct(info.majority, 1),
           "wall": f"{r['seconds'] / 60:.0f} min"}
    lines = ["| student | perplexity | against supervised (seeds lower) | next-token accuracy "
             "| against supervised (seeds higher) | part of speech | against supervised "
             "(seeds higher) |", "|---|---|---|---|---|---|---|"]
    for key, s in r["students"].items():
        shown = {"ppl": ppl_pm(s["ppl"]), "acc": pm(s["acc"], 1), "em": pm(s["em"], 1)}
        if key == "supervised":
            lines.append(f"| {NAMES[key]} | {shown['ppl']} | — | {shown['acc']} | — | "
                         f"{shown['em']} | — |")
            continue
        cells = []
        for m in METRICS:
            v = verdict(s[m], base[m])
            out[f"{key}.{m}.verdict"] = v
            cells.append(f"{shown[m]} | {v} ({count(s[m], base[m], m == 'ppl')} of {n})")
        lines.append(f"| {NAMES[key]} | " + " | ".join(cells) + " |")
    out["table"] = "\n".join(lines)
    return out


@measurement("lm-corpus", about="LM distillation on WordNet's dictionary entries (Debian "
             "wordnet-base): BPE tokenizer of the training split, GPT-2 teacher 4 x 96 (600 "
             "steps), GPT-2 students 2 x 48 (200 steps): supervised / off-policy forward KL / "
             "off-policy reverse KL / on-policy reverse KL, 3 seeds: test perplexity, "
             "next-token accuracy and part-of-speech exact match, mean ± std, verdicts vs "
             "supervised", ci="quick", minutes=7, volatile=("wall",))
def measure_lm_corpus(quick: bool) -> dict[str, str]:
    return corpus_figures(corpus_runs(quick))
