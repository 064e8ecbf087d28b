"""Run under torchrun with 2 processes: data-parallel distillation of Hugging Face GPT-2
models on rows of different lengths (right-padded, attention masks, per-row completion masks,
end-of-sequence tokens), through :func:`mentor.lm.distill.distill_lm`:

* ``off``   -- off-policy KD (JSD), global batch 16, accumulate 2, 8 steps;
* ``seqkd`` -- greedy sequence-level KD: each rank completes half of the prompts with the KV
  cache, stopping at end-of-sequence, and the ranks gather completions of different lengths.

Each rank writes OUT/rank<r>-<run>.safetensors and OUT/rank<r>-<run>.json. Used by
test_lm_two_ranks_hf.py, which repeats the runs in one process.
"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from mentor.engine import get_accelerator
from mentor.lm.distill import distill_lm
from mentor.lm.testbed import reversal

PAD, BOS, EOS, EQ = 0, 1, 2, 3
SETTINGS = {
    "off": dict(regime="off_policy", divergence="jsd", beta=0.5, batch_size=16, accumulate=2,
                steps=8, seed=0),
    "seqkd": dict(regime="seqkd", batch_size=8, steps=2, seed=2),
}


def train_data(n=96):
    """Reversal rows of different lengths (:func:`mentor.lm.testbed.reversal`)."""
    return reversal(n, 0)


def models():
    """(student, teacher), the same on every rank and in the test process; no dropout (its
    masks come from each rank's own generator, so no run would equal another with it)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    def gpt2(seed, width):
        torch.manual_seed(seed)
        return GPT2LMHeadModel(GPT2Config(vocab_size=10, n_positions=16, n_embd=width,
                                          n_layer=1, n_head=2, bos_token_id=BOS,
                                          eos_token_id=EOS, pad_token_id=PAD, resid_pdrop=0.0,
                                          embd_pdrop=0.0, attn_pdrop=0.0))
    return gpt2(1, 16), gpt2(0, 24).eval()


if __name__ == "__main__":
    out = Path(sys.argv[1])
    acc = get_accelerator()
    r = acc.process_index
    for name, kw in SETTINGS.items():
        student, teacher = models()
        res = distill_lm(student, teacher, train_data(), accelerator=acc, **kw)
        save_file({k: v.detach().clone() for k, v in res.model.state_dict().items()},
                  str(out / f"rank{r}-{name}.safetensors"))
        (out / f"rank{r}-{name}.json").write_text(json.dumps({
            "world": acc.num_processes, "losses": res.losses,
            "teacher_queries": res.teacher_queries, "kept": res.kept_sequences}))
