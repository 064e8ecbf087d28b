"""Language-model distillation on TB-LM (2-digit addition): `mentor run tokens` (the built-in
recipe `tokens`, also with a d 32 x 2 student), the CLAPS term added to MLE (tests/lm/
test_claps.py's training run), gold-agreement resampling (paper 41), PU-RL preference
distillation after SFT, the `examples/distill_an_llm.py` output, hidden-state distillation of
tiny GPT-2 models, the categorical PU-RL sanity check and `benchmarks/lm_memory.py`.

The effect tests (tests/lm/test_tblm_effects.py, tests/lm/test_claps.py,
tests/unit/test_hidden_states.py, tests/unit/test_preference.py) import the functions here,
so they assert on the experiments whose figures the docs quote.
"""

from __future__ import annotations

import re
import statistics
import time

from . import measurement
from ._fmt import num, pct, pm, seeds, verdict, wins
from ._run import row, run_builtin, run_script

TB_METHODS = ("data", "forward-kl", "bridge")


def wall(seconds: float) -> str:
    """A wall time as the docs print it: ``'71 s'``, ``'3 min 12 s'``."""
    s = int(round(seconds))
    return f"{s} s" if s < 60 else f"{s // 60} min {s % 60} s"


def gaps(method, baseline) -> str:
    """Per-seed gaps in points: ``'+0.6 / +14.6 / +1.4'``."""
    return " / ".join(f"{100 * (a - b):+.1f}" for a, b in zip(method, baseline, strict=True))


# --- `mentor run tokens` -----------------------------------------------------------------------

def _tokens_quick() -> dict:
    """The recipe's quick form: a teacher of 100 steps, students of 30, seed 0 only."""
    from mentor.recipe import builtin_recipes, read_yaml
    raw = read_yaml(builtin_recipes()["tokens"])
    return {"teacher": {**raw["teacher"], "steps": 100},
            "train": {**raw["train"], "steps": 30, "eval_every": 15, "seeds": [0]},
            "methods": [{**m, "warmup_steps": 15} if m.get("warmup_steps") else m
                        for m in raw["methods"]]}


def tokens_run(quick: bool = False, student: dict | None = None) -> dict:
    """``mentor run tokens`` in process (``student`` replaces the recipe's student):
    ``{"teacher": exact match, "<method>": per-seed test exact match, "seconds": wall time,
    "cpu_seconds": this process's CPU time}``."""
    over = _tokens_quick() if quick else {}
    if student is not None:
        over["student"] = student
    t0, c0 = time.time(), time.process_time()
    res = run_builtin("tokens", over)
    out = {"seconds": time.time() - t0, "cpu_seconds": time.process_time() - c0,
           "teacher": res["teacher"]["test_accuracy"]}
    for m in TB_METHODS:
        out[m] = row(res, "default", m)["test_accuracies"]
    return out


def tokens_figures(r: dict) -> dict[str, str]:
    out = {"teacher": pct(r["teacher"], 1)}
    for m in TB_METHODS:
        key = m.replace("-", "_")
        out[f"{key}.seeds"] = seeds(r[m])
        out[f"{key}.mean"] = pm(r[m], 1)
    for m, base in (("forward-kl", "data"), ("bridge", "data"), ("bridge", "forward-kl")):
        key = f"{m.replace('-', '_')}_vs_{base.replace('-', '_')}"
        out[f"{key}.verdict"] = verdict(r[m], r[base])
        out[f"{key}.wins"] = wins(r[m], r[base])
        out[f"{key}.gaps"] = gaps(r[m], r[base])
    return out


@measurement("tokens", about="`mentor run tokens` (built-in recipe `tokens`: TB-LM addition, "
             "GRU teacher d 64 x 2, students d 64 x 1 on 1,000 sequences, data / off-policy "
             "forward KL / bridge, 3 seeds): exact match per seed, mean ± std, verdicts, "
             "per-seed wins and gaps, wall and CPU time", ci="quick", minutes=2)
def measure_tokens(quick: bool) -> dict[str, str]:
    r = tokens_run(quick)
    # the wall time depends on what else the machine runs; the CPU time much less
    return {**tokens_figures(r), "wall": wall(r["seconds"]), "cpu": wall(r["cpu_seconds"])}


D32 = {"arch": "gru", "d_model": 32, "layers": 2}


@measurement("tokens-d32", about="The built-in recipe `tokens` with a GRU student of d 32 x 2 "
             "layers (otherwise the same, 3 seeds): exact match per seed, mean ± std, verdicts "
             "and per-seed wins and gaps against the data alone", ci="quick", minutes=2.5)
def measure_tokens_d32(quick: bool) -> dict[str, str]:
    figures = tokens_figures(tokens_run(quick, student=D32))
    # the same teacher as `tokens`; the docs compare each method with the data alone only
    return {k: v for k, v in figures.items()
            if k != "teacher" and not k.startswith("bridge_vs_forward_kl.")}


# --- CLAPS (paper 42) added to MLE --------------------------------------------------------------

def claps_train(weight: float, train, steps: int = 400, seed: int = 0):
    """MLE on the completion tokens of TB-LM, plus ``weight`` times the CLAPS term (prompt
    states as the source, completion-predicting states as the target): a GRU LM d 64 x 1,
    Adam lr 3e-3, batches of 64. Returns ``(model, per-step completion NLL)``."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from mentor.lm import CharLM
    from mentor.lm.testbed import VOCAB
    from mentor.losses.claps import claps_loss

    torch.manual_seed(seed)
    model = CharLM(len(VOCAB), d_model=64, layers=1)
    proj = nn.Sequential(nn.Linear(64, 64), nn.ReLU())
    opt = torch.optim.Adam([*model.parameters(), *proj.parameters()], lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    nlls = []
    for _ in range(steps):
        rows = torch.randint(0, len(train), (64,), generator=g)
        ids, target = train.ids[rows], train.target[rows]
        h = model.hidden(ids)[-1][:, :-1]
        labels, tgt_mask = ids[:, 1:], target[:, 1:]
        nll = F.cross_entropy(model.head(h)[tgt_mask], labels[tgt_mask])
        loss = nll
        if weight:
            loss = loss + weight * claps_loss(h, ~tgt_mask, h, tgt_mask, model.head, labels,
                                              proj)
        opt.zero_grad()
        loss.backward()
        opt.step()
        nlls.append(float(nll.detach()))
    return model, nlls


def claps_data():
    """TB-LM 2-digit addition: 1,000 training sequences, 250 held-out test prompts."""
    from mentor.lm import Addition
    train, _, test = Addition().split(0, train_size=1000, val=100, test=250)
    return train, test


CLAPS_WEIGHTS = {"mle": 0.0, "claps_0_1": 0.1, "claps_1": 1.0}


def claps_runs(quick: bool = False) -> dict[str, list[float]]:
    """Exact match on the test prompts after training with each CLAPS weight, per seed."""
    from mentor.lm import exact_match
    train, test = claps_data()
    seed_list, steps = ((0,), 20) if quick else ((0, 1, 2), 400)
    return {k: [exact_match(claps_train(w, train, steps, s)[0], test) for s in seed_list]
            for k, w in CLAPS_WEIGHTS.items()}


@measurement("claps", about="CLAPS (paper 42) added to MLE on TB-LM (1,000 sequences, GRU LM "
             "d 64 x 1, 400 steps, weights 0 / 0.1 / 1, 3 seeds; tests/lm/test_claps.py's "
             "training run): exact match mean ± std on 250 test prompts, verdicts vs MLE",
             ci="quick", minutes=2.5)
def measure_claps(quick: bool) -> dict[str, str]:
    r = claps_runs(quick)
    out = {}
    for k, v in r.items():
        out[k] = pm(v)
        out[f"{k}.seeds"] = seeds(v)
        if k != "mle":
            out[f"{k}.verdict"] = verdict(v, r["mle"])
            out[f"{k}.wins"] = wins(v, r["mle"])
    return out


# --- gold-agreement resampling (paper 41, Fully Open Meditron) ------------------------------

class NoisyProgram:
    """A rule-based teacher that writes the right sum except, for 30 % of its samples, a
    wrong last digit (paper 41's noisy teacher generating worked answers)."""

    def __init__(self, task):
        self.task, self.queries = task, 0

    def signal(self, ids, rows=None, attention=None):
        raise AssertionError("sequence-level KD only samples from the teacher")

    def generate(self, batch, new_tokens=None, *, greedy=True, temperature=1.0,
                 generator=None):
        import torch

        from mentor.lm.testbed import encode
        self.queries += len(batch)
        out = []
        for p in batch.prompts():
            answer = encode(self.task.answer(p))
            if torch.rand((), generator=generator) < 0.3:
                answer[-2] = encode(str((int(self.task.answer(p)[-2]) + 1) % 10))[0]
            out.append(answer)
        return batch.with_completions(out)


def gold_agreement_runs(quick: bool = False) -> dict:
    """Sequence-level KD from :class:`NoisyProgram` on 1,000 TB-LM prompts (GRU d 64 x 1, 600
    steps), with every teacher sample (``tries`` 0) and with the first of up to 4 samples that
    agrees with the gold answer: per-seed test exact match and kept sequences (share)."""
    import torch

    from mentor.lm import Addition, CharLM, distill_lm, exact_match
    from mentor.lm.testbed import VOCAB
    train, val, test = Addition().split(0)
    task, small = Addition(), train.subset(slice(0, 1000))
    seed_list, steps = ((0,), 30) if quick else ((0, 1, 2), 600)
    out = {"all": [], "gold4": [], "kept": []}
    for seed in seed_list:
        for tries, key in ((0, "all"), (4, "gold4")):
            torch.manual_seed(seed)
            res = distill_lm(CharLM(len(VOCAB), 64, 1), NoisyProgram(task), small, val=val,
                             regime="seqkd", gold_tries=tries, steps=steps, batch_size=64,
                             eval_every=min(200, steps), seed=seed)
            out[key].append(exact_match(res.model, test))
            if tries:
                out["kept"].append(res.kept_sequences / len(small))
    return out


@measurement("gold-agreement", about="Gold-agreement resampling (paper 41) on TB-LM: seqKD "
             "from a rule-based teacher wrong 30 % of the time, every sample vs the first of "
             "4 that agrees with the gold answer (GRU d 64 x 1, 1,000 prompts, 600 steps, "
             "3 seeds): exact match, verdict, prompts kept", ci="quick", minutes=1)
def measure_gold_agreement(quick: bool) -> dict[str, str]:
    r = gold_agreement_runs(quick)
    return {"all": pm(r["all"], 1), "gold4": pm(r["gold4"], 1),
            "all.seeds": seeds(r["all"]), "gold4.seeds": seeds(r["gold4"]),
            "verdict": verdict(r["gold4"], r["all"]), "wins": wins(r["gold4"], r["all"]),
            "kept_min": pct(min(r["kept"]), 1)}


# --- PU-RL (paper 31) on TB-LM after SFT --------------------------------------------------------

def pu_rl_runs(quick: bool = False) -> dict[str, list[float]]:
    """A GRU LM d 64 x 1 fine-tuned (SFT, 800 steps) on 10 % of TB-LM's training sequences
    (930), then 150 DPO steps of :func:`mentor.lm.pu_rl.preference_distill` (8 prompts a
    step from all 9,300 training prompts, k 8 own samples each, every ordered pair; beta 0.1,
    lr 1e-3) whose anchor is the right answer (a rule-based teacher, one call per prompt),
    ranked by edit similarity to the anchor or at random (the paper's sanity check). Exact
    match on 500 test prompts, per seed; each student at its best validation step."""
    import copy

    import torch

    from mentor.lm import Addition, CharLM, distill_lm, exact_match
    from mentor.lm.pu_rl import preference_distill
    from mentor.lm.testbed import VOCAB, encode
    task = Addition()
    train, val, test = task.split(0)
    sft_data = train.subset(slice(0, len(train) // 10))
    seed_list, sft_steps, dpo_steps = ((0,), 30, 10) if quick else ((0, 1, 2), 800, 150)

    def anchor(prompts, new):
        return torch.tensor([encode(task.answer(p)) for p in prompts])

    out = {"sft": [], "edit": [], "random": []}
    for seed in seed_list:
        torch.manual_seed(seed)
        sft = distill_lm(CharLM(len(VOCAB), 64, 1), None, sft_data, val=val,
                         regime="supervised", steps=sft_steps, batch_size=64,
                         eval_every=min(200, sft_steps), seed=seed).model.eval()
        out["sft"].append(exact_match(sft, test))
        for score in ("edit", "random"):
            res = preference_distill(copy.deepcopy(sft), anchor, train, val=val, k=8,
                                     score=score, steps=dpo_steps, prompts_per_step=8,
                                     beta=0.1, lr=1e-3, eval_every=min(25, dpo_steps),
                                     seed=seed)
            out[score].append(exact_match(res.model.eval(), test))
    return out


@measurement("pu-rl", about="PU-RL (paper 31) on TB-LM: SFT on 930 sequences, then 150 DPO "
             "steps on pairs ranked by edit similarity to a right-answer anchor or at random "
             "(GRU d 64 x 1, 3 seeds): exact match per seed and verdicts", ci="quick",
             minutes=1)
def measure_pu_rl(quick: bool) -> dict[str, str]:
    r = pu_rl_runs(quick)
    out = {f"{k}.seeds": seeds(v) for k, v in r.items()}
    out.update({f"{k}.mean": pm(v, 1) for k, v in r.items()})
    for m, base in (("edit", "random"), ("edit", "sft")):
        out[f"{m}_vs_{base}.verdict"] = verdict(r[m], r[base])
        out[f"{m}_vs_{base}.wins"] = wins(r[m], r[base])
    return out


# --- hidden-state distillation of tiny GPT-2 models (papers 6, 55) -----------------------------

def hidden_state_losses(steps: int = 30) -> list[float]:
    """A 2-layer GPT-2 (width 16) learns the hidden states of a random 4-layer GPT-2 (width
    32) through :class:`~mentor.losses.hidden.HiddenStateDistiller` (uniform layer map,
    projections, masked MSE) on 8 random sequences of 16 tokens (4 padded from position 12),
    Adam lr 1e-2, seed 0: the loss at each step."""
    import torch
    import transformers

    from mentor.losses.hidden import HiddenStateDistiller, layer_map
    torch.manual_seed(0)

    def gpt2(layers, width):
        cfg = transformers.GPT2Config(vocab_size=30, n_embd=width, n_layer=layers, n_head=2,
                                      n_positions=32, bos_token_id=0, eos_token_id=0)
        return transformers.GPT2Model(cfg)

    student, teacher = gpt2(2, 16), gpt2(4, 32).eval()
    teacher.requires_grad_(False)
    distiller = HiddenStateDistiller(16, 32, layer_map(2, 4), loss="mse")
    ids = torch.randint(0, 30, (8, 16))
    mask = torch.ones(8, 16, dtype=torch.long)
    mask[4:, 12:] = 0  # padded rows
    with torch.no_grad():
        target = teacher(ids, attention_mask=mask, output_hidden_states=True).hidden_states
    assert len(target) == 5  # embeddings + 4 blocks
    opt = torch.optim.Adam([*student.parameters(), *distiller.parameters()], lr=1e-2)
    losses = []
    for _ in range(steps):
        out = student(ids, attention_mask=mask, output_hidden_states=True)
        loss = distiller(out.hidden_states, target, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@measurement("hidden-states", about="Hidden-state distillation, tiny GPT-2 2 x 16 student to "
             "4 x 32 teacher, 30 Adam steps (tests/unit/test_hidden_states.py): first and last "
             "loss", ci="full", minutes=0.1)
def measure_hidden_states(quick: bool) -> dict[str, str]:
    losses = hidden_state_losses()
    return {"first": num(losses[0], 2), "last": num(losses[-1], 2)}


# --- PU-RL's sanity check on a categorical policy ----------------------------------------------

CANDIDATES = ["12+7=19", "12+7=18", "12+7=91", "12-7=5", "19", "seven"]
ANCHOR = "12 + 7 = 19"


def categorical_dpo(seed: int, ranking: str, steps: int = 200, k: int = 4):
    """A categorical policy over :data:`CANDIDATES` (uniform at the start), DPO (beta 0.5,
    Adam lr 0.05) on every ordered pair among ``k`` on-policy samples ranked by edit
    similarity to :data:`ANCHOR` (``"anchor"``) or at random: the final probabilities."""
    import torch

    from mentor.lm.preference import anchor_scores, dpo_loss, edit_similarity, preference_pairs
    g = torch.Generator().manual_seed(seed)
    sims = anchor_scores(edit_similarity, CANDIDATES, ANCHOR)
    theta = torch.zeros(len(CANDIDATES), requires_grad=True)
    ref_logp = torch.log_softmax(torch.zeros(len(CANDIDATES)), -1)  # frozen copy of the init
    opt = torch.optim.Adam([theta], lr=0.05)
    for _ in range(steps):
        logp = torch.log_softmax(theta, -1)
        idx = torch.multinomial(logp.detach().exp(), k, replacement=False, generator=g)
        if ranking == "anchor":
            scores = [sims[i] for i in idx.tolist()]
        else:
            scores = torch.rand(k, generator=g).tolist()
        pairs = preference_pairs(scores, mode="all")
        chosen = idx[[c for c, _ in pairs]]
        rejected = idx[[r for _, r in pairs]]
        loss = dpo_loss(logp[chosen], logp[rejected], ref_logp[chosen], ref_logp[rejected],
                        beta=0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.softmax(theta.detach(), -1)


PREFERENCE_SEEDS = range(5)


def categorical_best_mass() -> dict[str, list[float]]:
    """Probability of the candidate closest to the anchor after DPO, per seed (5 seeds)."""
    from mentor.lm.preference import anchor_rank, anchor_scores, edit_similarity
    best = anchor_rank(anchor_scores(edit_similarity, CANDIDATES, ANCHOR))[0]
    return {r: [float(categorical_dpo(s, r)[best]) for s in PREFERENCE_SEEDS]
            for r in ("anchor", "random")}


@measurement("preference", about="PU-RL's sanity check (tests/unit/test_preference.py): a "
             "categorical policy over 6 answers, 200 DPO steps on anchor-ranked or randomly "
             "ranked pairs, 5 seeds: mean probability of the best answer", ci="full",
             minutes=0.1)
def measure_preference(quick: bool) -> dict[str, str]:
    r = categorical_best_mass()
    return {k: num(statistics.fmean(v), 2) for k, v in r.items()}


# --- examples/distill_an_llm.py (docs/quickstart.md "Distill an LLM") ---------------------------

EXAMPLE_LINES = {"teacher": "teacher", "data": "data alone", "forward_kl": "forward KL",
                 "bridge": "bridge"}


@measurement("quickstart-llm", about="`python examples/distill_an_llm.py` (TB-LM, GRU teacher "
             "d 64 x 2, student d 64 x 1 on 1,000 sequences, seed 0): the exact match of each "
             "output line", ci="quick", minutes=1.5)
def measure_quickstart_llm(quick: bool) -> dict[str, str]:
    out = run_script("examples/distill_an_llm.py", *(["40"] if quick else []))
    lines = out.strip().splitlines()
    figures = {}
    for key, label in EXAMPLE_LINES.items():
        (line,) = [x for x in lines if x.startswith(f"{label} (")
                   or x.startswith("student") and f", {label}: " in x]
        figures[key] = re.search(r"exact match ([0-9.]+ %)$", line).group(1)
    return figures


# --- benchmarks/lm_memory.py ---------------------------------------------------------------------

@measurement("lm-memory", about="`python benchmarks/lm_memory.py` (B 1, L 512, D 256, V 50k, "
             "forward KL; chunked head vs full logits, fresh processes): extra peak RSS ratio "
             "with large blocks returned to the OS and with glibc's default", ci="quick",
             minutes=1)
def measure_lm_memory(quick: bool) -> dict[str, str]:
    from ._run import result_lines
    ratios = result_lines(run_script("benchmarks/lm_memory.py", *(["--quick"] if quick else [])),
                          tag="RATIO")
    return {"mmap": ratios["lm_memory"], "glibc_default": ratios["lm_memory_glibc_default"]}
