"""Run a ``tokens`` recipe (``mentor run tokens``, ``mentor run wordnet-lm``): a teacher
trained on the recipe's data (:mod:`mentor.lm.sources`), then every method x seed through
:func:`~mentor.lm.distill.distill_lm`; a leaderboard, ``results.json``, metrics, checkpoints
and ``report.html`` in a run folder written like every mentor run (a partial folder renamed
when complete).

Metrics per student: exact match of greedy completions on the test prompts (the
leaderboard's metric), perplexity of the held-out completions (its own column), agreement
with the teacher's greedy completions, the step chosen on the validation rows
(``train.select``), teacher queries, and for sequence-level KD the sequences kept by
gold-agreement rejection.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import torch
from torch import nn
import yaml

from .._util.atomic import atomic_write_text
from ..engine.checkpoint import save_weights
from ..latency import speedup
from ..models import count_params
from ..runs.progress import Bars
from ..runs.folder import INPUT, finish_run_dir, open_run_folder
from ..runs.env import environment
from ..lm.distill import distill_lm
from ..lm.generate import complete_data, exact_match, logits_of
from ..lm.hf_models import save_causal_lm
from ..lm.models import CharLM
from ..lm.scores import perplexity
from ..lm.recipe import LMSpec, TokensRecipe, parse_tokens_recipe
from ..lm.sources import TokensSource, tokens_data
from ..lm.testbed import VOCAB
from ..lm.token_data import TokenData


def build_lm(spec: LMSpec, max_len: int, vocab: int = len(VOCAB)) -> nn.Module:
    """The recipe's language model over ``vocab`` token ids: mentor's ``CharLM``, or a
    ``transformers`` causal LM (``arch: hf``, :func:`mentor.lm.hf_models.causal_lm`)."""
    if spec.arch == "hf":
        from ..lm.hf_models import causal_lm
        return causal_lm(vocab_size=vocab, max_len=max_len, config=spec.config,
                         path=spec.path, lora=spec.lora)
    return CharLM(vocab, spec.d_model, spec.layers, kind=spec.arch, heads=spec.heads,
                  max_len=max_len)


def _describe(spec: LMSpec) -> str:
    if spec.arch == "hf":
        what = (spec.config or {}).get("model_type") if spec.path is None else spec.path
        return f"transformers causal LM ({what})"
    return f"{spec.arch} LM d={spec.d_model} x {spec.layers} layer(s)"


@torch.no_grad()
def agreement(student, teacher, data: TokenData) -> float:
    """Share of prompts whose greedy completion is the same for student and teacher."""
    a = complete_data(student, data).completion_lists()
    b = complete_data(teacher, data).completion_lists()
    return sum(x == y for x, y in zip(a, b)) / len(data)


def run_tokens(raw: dict, out_root: Path, *, source: str = "recipe", progress: bool = True,
               console=None, resume: Path | None = None) -> Path:
    """Validate and execute a ``task: tokens`` recipe; return the finished run folder.

    Like a classification run, the run lives in a locked partial folder that records its
    recipe (``input.yaml``) until it is complete, and every training (the teacher, each
    method × seed) checkpoints into it at each evaluation; ``resume=<partial folder>``
    continues: finished trainings are restored from their last checkpoint, an interrupted one
    continues from it, and the students equal those of an uninterrupted run."""
    recipe = parse_tokens_recipe(raw, source)
    source = tokens_data(recipe)
    train = source.train
    teacher_train = train if recipe.data.teacher_sequences is None else \
        train.subset(slice(0, recipe.data.teacher_sequences))
    student_train = train if recipe.data.student_sequences is None else \
        train.subset(slice(0, recipe.data.student_sequences))
    with open_run_folder(out_root, recipe.name, raw, resume) as (tmp, final, held):
        if source.tokenizer is not None:  # the students read its ids: it goes with them
            source.tokenizer.save_pretrained(str(tmp / "tokenizer"))
        results, histories, lines = _execute(recipe, source, teacher_train, student_train,
                                             tmp, progress)
        atomic_write_text(tmp / "metrics.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
        atomic_write_text(tmp / "recipe.yaml",
                          yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
        atomic_write_text(tmp / "env.json",
                          json.dumps(environment(recipe.train.seeds), indent=1))
        atomic_write_text(tmp / "results.json", json.dumps(results, indent=1))
        from ..report import write_report
        write_report(tmp, results, histories)
        final = finish_run_dir(tmp, final, lock=held,
                               required=(INPUT, "results.json", "metrics.jsonl"))
    if console is not None:
        from ..report.table import leaderboard
        console.print(leaderboard(results))
        console.print(f"run folder: {final}")
    return final


def _execute(recipe: TokensRecipe, source: TokensSource, teacher_train, student_train,
             tmp: Path, show: bool):
    t = recipe.teacher
    val, test, vocab = source.val, source.test, source.vocab
    # positions a model reads: a batch's longest prompt followed by its longest completion
    # (generation appends that many tokens to left-padded prompts; they need not share a row)
    max_len = max(int(d.prompt_lens.max()) + d.max_new_tokens
                  for d in (teacher_train, student_train, val, test, source.lm_val,
                            source.lm_test))
    seeds = recipe.train.seeds
    select = recipe.train.select
    by_ppl = select == "perplexity"
    chosen_on = source.lm_val if by_ppl else val  # the rows the kept weights are chosen on
    # the validation figure's names: in results.json (and reports) and in distill_lm's history
    shown, recorded = (("val_perplexity", "val_perplexity") if by_ppl
                       else ("val_accuracy", "val_exact_match"))
    rows, histories, lines = [], [], []
    with Bars(show, len(recipe.methods) * len(seeds)) as bars:
        torch.manual_seed(t.seed)
        teacher = build_lm(t, max_len, vocab)
        if t.steps:
            cb = bars.start("teacher", t.steps)
            tres = distill_lm(teacher, None, teacher_train, val=chosen_on,
                              regime="supervised", steps=t.steps, batch_size=t.batch_size,
                              optimization=t.optimization(), eval_every=t.eval_every,
                              seed=t.seed, on_eval=cb,
                              checkpoint_dir=tmp / "teacher" / "state", resume=True,
                              select=select)
            teacher, teacher_val = tres.model.eval(), tres.best_val
        else:  # a trained model, used as it is
            teacher = teacher.eval()
            teacher_val = (perplexity if by_ppl else exact_match)(teacher, chosen_on)
        save_weights(tmp / "teacher" / "model.safetensors", teacher,
                     {"mentor.lm": {**t.model_dump(), "vocab": vocab, "max_len": max_len}})
        tinfo = {"description": _describe(t), "params": count_params(teacher),
                 "test_accuracy": exact_match(teacher, test),
                 "test_perplexity": perplexity(teacher, source.lm_test),
                 shown: teacher_val,
                 "sequences": len(teacher_train) if t.steps else 0}
        test_in = test.ids[:, :-1]
        latency = None
        tr = recipe.train
        for m in recipe.methods:
            accs, ppls, agrees, vals, per_seed = [], [], [], [], []
            for seed in seeds:
                torch.manual_seed(seed)
                student = build_lm(recipe.student, max_len, vocab)
                cb = bars.start(f"{m.name} / seed {seed}", tr.steps)
                res = distill_lm(student, teacher, student_train, val=chosen_on,
                                 steps=tr.steps, select=select,
                                 batch_size=tr.batch_size, accumulate=tr.accumulate,
                                 optimization=tr.optimization(),
                                 chunk_size=tr.chunk_size, eval_every=tr.eval_every,
                                 seed=seed, on_eval=cb, resume=True,
                                 checkpoint_dir=tmp / "checkpoints" / m.name / f"seed{seed}"
                                 / "state", **m.options())
                model = res.model.eval()
                acc = exact_match(model, test)
                ppl = perplexity(model, source.lm_test)
                agree = agreement(model, teacher, test)
                save_weights(tmp / "checkpoints" / m.name / f"seed{seed}" / "student.safetensors",
                             model, {"mentor.lm": {**recipe.student.model_dump(),
                                                   "vocab": vocab, "max_len": max_len}})
                if recipe.student.arch == "hf":
                    save_causal_lm(model, tmp / "checkpoints" / m.name / f"seed{seed}",
                                   source.tokenizer)
                accs.append(acc)
                ppls.append(ppl)
                agrees.append(agree)
                vals.append(res.best_val)
                histories.append({"setting": "default", "method": m.name, "seed": seed,
                                  "step": [h["step"] for h in res.history],
                                  shown: [h[recorded] for h in res.history]})
                per_seed.append({"method": m.name, "seed": seed, "test_exact_match": acc,
                                 "test_perplexity": ppl,
                                 "teacher_agreement": agree, "best_step": res.best_step,
                                 recorded: res.best_val,
                                 "teacher_queries": res.teacher_queries,
                                 "kept_sequences": res.kept_sequences,
                                 "history": res.history})
                if latency is None:
                    latency = speedup(lambda x: logits_of(teacher, x), model, test_in)
                bars.done()
            lines += per_seed
            rows.append({
                "setting": "default", "method": m.name, "method_name": m.regime,
                "description": _method_text(m), "method_params": m.options(),
                "params": count_params(student), "seeds": list(seeds),
                "test_accuracy_mean": statistics.fmean(accs),
                "test_accuracy_std": statistics.pstdev(accs) if len(accs) > 1 else 0.0,
                "test_accuracies": accs,
                "test_perplexity_mean": statistics.fmean(ppls),
                "test_perplexity_std": statistics.pstdev(ppls) if len(ppls) > 1 else 0.0,
                "test_perplexities": ppls,
                f"{shown}_mean": statistics.fmean(vals),
                "teacher_agreement_mean": statistics.fmean(agrees),
                "speedup": latency["speedup"], "latency": latency,
                "teacher_queries_mean": statistics.fmean(r["teacher_queries"] for r in per_seed),
            })
    results = {
        "name": recipe.name, "description": recipe.description, "task": "tokens",
        "created": environment()["created"], "teacher": tinfo,
        "settings": [{"name": "default",
                      "description": recipe.description or _data_text(source, student_train),
                      "data": _data_text(source, student_train), "teacher": tinfo}],
        "rows": rows, "seeds": list(seeds), "data_facts": source.facts,
        "metric_name": "test exact match",
        "metric": f"exact match of greedy completions on {len(test)} held-out prompts",
        "std": "population standard deviation over seeds",
        "perplexity": f"perplexity of {_perplexity_rows(source)} (exp of the mean negative "
                      "log-likelihood per token)",
        "selection": SELECTION_TEXT[select],
    }
    return results, histories, lines


SELECTION_TEXT = {
    "exact_match": "weights selected by exact match on the validation prompts; test prompts "
                   "evaluated once per run",
    "perplexity": "weights selected by perplexity on the validation rows; test rows "
                  "evaluated once per run",
    "last": "the last step's weights (no selection); test rows evaluated once per run",
}


def _perplexity_rows(source: TokensSource) -> str:
    if source.lm_test is source.test:
        return f"the {len(source.test)} test completions"
    return f"{len(source.lm_test)} held-out entries after their first word"


def _data_text(source: TokensSource, student_train: TokenData) -> str:
    return (f"{source.text}: students see {len(student_train)} training sequences; "
            f"{len(source.val)} validation and {len(source.test)} test prompts (exact match)")


def _method_text(m) -> str:
    parts = [m.regime]
    if m.divergence:
        parts.append(m.divergence)
    if m.regime == "on_policy":
        parts.append(f"lambda {m.lam:g}, {m.estimator} estimator")
    if m.regime == "bridge" and m.warmup_steps is not None:
        parts.append(f"{m.warmup_steps} warm-up steps")
    if m.regime == "seqkd" and m.gold_tries:
        parts.append(f"gold-agreement rejection, {m.gold_tries} tries")
    return ", ".join(parts)
