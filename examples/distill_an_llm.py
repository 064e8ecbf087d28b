"""Distill an LLM: a small causal language model learns from a larger one, token by token.

The task is mentor's synthetic language testbed TB-LM: two-digit addition strings
``07+12=019;`` with the prompt ``07+12=`` and the completion ``019;``. The teacher (a 2-layer
GRU language model, width 64) learns from all 9,300 training sequences; the student (1 layer,
width 64) gets 1,000 of them and learns

- from the data alone (cross-entropy on the completions: ``regime="supervised"``),
- off-policy: forward KL to the teacher's token distributions on the same completions
  (``regime="off_policy"``),
- with the bridge of paper 39: forward KL on teacher samples for the first half, then
  on-policy reverse KL on completions the student samples itself (``regime="bridge"``).

The score is exact match of greedy completions on 500 held-out prompts (pairs never seen in
training) at the best validation step, one seed (``mentor run tokens`` runs the same
comparison over three seeds). Every loss masks the prompt: only completion tokens are learned.

Your own models: ``distill_lm`` takes any module mapping token ids ``(B, L)`` to logits
``(B, L, V)``, Hugging Face ``*ForCausalLM`` models included (``pip install "mentor[lm]"``)::

    teacher = AutoModelForCausalLM.from_pretrained("your-teacher")
    student = AutoModelForCausalLM.from_pretrained("your-student")
    distill_lm(student, teacher, TokenData(ids, completion_mask), regime="off_policy")

Run:  python examples/distill_an_llm.py  (an optional argument sets every model's training
steps, 800 by default as in the docs)
"""

import sys

import torch

from mentor.lm import Addition, CharLM, distill_lm, exact_match
from mentor.lm.testbed import VOCAB

torch.set_num_threads(1)
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 800
train, val, test = Addition(digits=2).split(seed=0, val=200, test=500)


def lm(layers: int, seed: int) -> CharLM:
    torch.manual_seed(seed)
    return CharLM(len(VOCAB), d_model=64, layers=layers, kind="gru")


def params(model) -> str:
    return f"{sum(p.numel() for p in model.parameters()):,} parameters"


# the teacher, trained on every training sequence (the supervised regime needs no teacher)
teacher = distill_lm(lm(2, seed=0), None, train, val=val, regime="supervised", steps=steps,
                     batch_size=128, lr=3e-3, eval_every=min(200, steps)).model.eval()
print(f"teacher (2 layers, {params(teacher)}): exact match "
      f"{100 * exact_match(teacher, test):.1f} %")

few = train.subset(slice(0, 1000))
for regime, label, options in [("supervised", "data alone", {}),
                               ("off_policy", "forward KL", {}),
                               ("bridge", "bridge", {"warmup_steps": steps // 2})]:
    student = lm(1, seed=0)
    res = distill_lm(student, None if regime == "supervised" else teacher, few, val=val,
                     regime=regime, steps=steps, batch_size=64, lr=3e-3,
                     eval_every=min(200, steps), seed=0, **options)
    print(f"student (1 layer, {params(student)}), {label}: exact match "
          f"{100 * exact_match(res.model, test):.1f} %")
