"""Every regime of distill_lm runs on two tiny Hugging Face GPT-2 models (random init, built
from configs: no download) and its loss goes down; teachers behind the one signal
interface (local, stored top-k, served); vocabulary alignment; bad input."""

import pytest
import torch

from mentor.errors import MentorError, ParameterError
from mentor.labels import write_store
from mentor.labels.kinds import TokenTopK
from mentor.lm.distill import distill_lm
from mentor.lm.generate import exact_match, logits_of
from mentor.lm.signals import LocalTeacher, ServedTeacher, StoredTopKTeacher
from mentor.lm.testbed import VOCAB, Addition
from mentor.lm.vocab import align_vocab
from mentor.losses.tokens import token_divergence
from mentor.teachers import ModuleTeacher

transformers = pytest.importorskip("transformers")
V = len(VOCAB)


def gpt2(layers, width, vocab=V, seed=0):
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(vocab_size=vocab, n_embd=width, n_layer=layers, n_head=2,
                                  n_positions=16, bos_token_id=1, eos_token_id=1,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return transformers.GPT2LMHeadModel(cfg)


@pytest.fixture(scope="module")
def data():
    train, val, _ = Addition().split(0, train_size=256, val=32, test=32)
    return train, val


def _falls(losses, k=3):
    return sum(losses[-k:]) / k < sum(losses[:k]) / k


@pytest.mark.parametrize("regime,kw", [
    ("supervised", {}),
    ("off_policy", {}),
    ("off_policy", {"divergence": "jsd", "beta": 0.5, "temperature": 2.0, "accumulate": 2}),
    ("seqkd", {}),
    ("on_policy", {"lam": 0.5}),
    ("on_policy", {"estimator": "sampled"}),
    ("bridge", {"warmup_steps": 8}),
])
def test_every_regime_lowers_its_loss_on_tiny_transformers(data, regime, kw):
    train, val = data
    student, teacher = gpt2(1, 16, seed=1), gpt2(2, 32, seed=2)
    res = distill_lm(student, teacher, train, val=val, regime=regime, steps=24, batch_size=16,
                     lr=1e-2, eval_every=12, seed=0, **kw)
    assert len(res.losses) == 24 and all(torch.isfinite(torch.tensor(res.losses)))
    assert _falls(res.losses), res.losses
    # evaluated at steps 12 and 24, each with the loss of that step; the best of the two is
    # kept and its weights are the ones returned
    assert [(h["step"], h["loss"]) for h in res.history] == [(12, res.losses[11]),
                                                             (24, res.losses[23])]
    assert res.best_val == max(h["val_exact_match"] for h in res.history)
    assert exact_match(res.model, val) == res.best_val


def test_a_padded_teacher_vocabulary_is_cut_to_the_shared_prefix(data):
    train, val = data
    student, teacher = gpt2(1, 16, seed=1), gpt2(2, 32, vocab=V + 5, seed=2)
    with pytest.raises(MentorError, match="align them first"):
        distill_lm(student, teacher, train, regime="off_policy", steps=1, batch_size=4)
    with pytest.raises(MentorError, match="sizes differ|vocabular"):
        align_vocab(V, V + 5)
    al = align_vocab(V, V + 5, student_vocab=VOCAB, teacher_vocab=VOCAB)
    assert al.size == V
    res = distill_lm(student, LocalTeacher(teacher, alignment=al), train, regime="off_policy",
                     steps=16, batch_size=16, lr=1e-2)
    assert _falls(res.losses)


def test_stored_top_k_teacher_matches_the_local_teacher_at_full_k(data, tmp_path):
    """A token_topk store with k = V holds the whole distribution: the loss from it equals
    the loss from the live teacher; with a small k the k + 1 bins coarse-grain both
    distributions, so the KL can only shrink (data-processing inequality) but stays positive."""
    train, _ = data
    teacher = gpt2(2, 32, seed=2)
    logits_module = _LogitsOnly(teacher)
    ids = train.ids[:8, :-1]
    student = gpt2(1, 16, seed=1)
    zs = logits_of(student, ids).detach()
    mask = train.target[:8, 1:]
    live = float(token_divergence(zs, LocalTeacher(teacher).signal(ids), mask))
    for k in (V, 4):
        out = tmp_path / f"k{k}"
        write_store(ModuleTeacher(logits_module, V), train.ids, out,
                    TokenTopK(V, train.ids.shape[1], k))
        stored = StoredTopKTeacher(out, train.ids)
        got = float(token_divergence(zs, stored.signal(ids, torch.arange(8)), mask))
        if k == V:
            assert abs(got - live) < 1e-4 * live
        else:
            assert 0.2 * live < got <= live
    with pytest.raises(MentorError, match="not the dataset sequences"):
        stored.signal(ids.flip(0), torch.arange(8))
    with pytest.raises(MentorError, match="on-policy"):
        distill_lm(student, stored, train, regime="on_policy", steps=1, batch_size=4)


class _LogitsOnly(torch.nn.Module):
    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, ids):
        return logits_of(self.lm, ids)


def test_served_teacher_top_k_pairs_become_a_signal_and_are_counted(data):
    train, val = data
    teacher = gpt2(2, 32, seed=2)

    def api(seqs):  # what a served API returns: top-k (token id, log-prob) per position
        lp = torch.log_softmax(logits_of(teacher, torch.tensor(seqs)), -1)
        v, i = lp.topk(5, -1)
        return [[list(zip(i[b, t].tolist(), v[b, t].tolist())) for t in range(lp.shape[1])]
                for b in range(lp.shape[0])]

    served = ServedTeacher(api, k=5, vocab_size=V, cost_per_query=0.01)
    res = distill_lm(gpt2(1, 16, seed=1), served, train, val=val, regime="off_policy",
                     steps=20, batch_size=8, lr=1e-2, eval_every=10)
    assert _falls(res.losses) and served.queries == 20 * 8 == res.teacher_queries
    with pytest.raises(MentorError, match="expected k=5"):
        ServedTeacher(lambda s: [[[(0, -0.1)]] * len(x) for x in s], k=5,
                      vocab_size=V).signal(train.ids[:2])
    with pytest.raises(MentorError, match="generate_fn"):
        distill_lm(gpt2(1, 16), served, train, regime="seqkd", steps=1, batch_size=4)


@pytest.mark.parametrize("kw,match", [
    ({"regime": "offpolicy"}, "regime 'offpolicy' is unknown"),
    ({"divergence": "kl"}, "divergence 'kl' is unknown"),
    ({"temperature": 0.0}, "temperature must be > 0"),
    ({"divergence": "jsd", "beta": 1.5}, "beta must be in"),
    ({"lam": 2.0}, "lam must be in"),
    ({"regime": "bridge", "warmup_steps": 9}, "warmup_steps 9 is out of range"),
    ({"estimator": "reinforce"}, "estimator 'reinforce' is unknown"),
    ({"regime": "seqkd", "gold_tries": 2}, "no teacher completion agreed with the gold"),
])
def test_bad_settings_are_one_sentence_errors(data, kw, match):
    train, _ = data
    args = dict(regime="off_policy", steps=2, batch_size=4) | kw
    with pytest.raises((MentorError, ParameterError), match=match):
        distill_lm(gpt2(1, 16), gpt2(1, 16, seed=3), train, **args)


def test_a_mask_that_masks_everything_is_refused():
    z = torch.randn(2, 3, V)
    with pytest.raises(MentorError, match="mask selects no target token"):
        token_divergence(z, z, torch.zeros(2, 3, dtype=torch.bool))


def test_preference_distillation_from_anchors_raises_the_dpo_margin(data):
    """PU-RL (paper 31): the teacher's anchor ranks the student's own samples; DPO on the
    pairs lowers the loss from log 2 (chosen and rejected start equally likely)."""
    from mentor.lm.pu_rl import preference_distill
    from mentor.lm.testbed import Addition, encode
    train, val = data
    task = Addition()

    def anchor(prompts, new):
        return torch.tensor([encode(task.answer(p)) for p in prompts])

    res = preference_distill(gpt2(1, 16, seed=1), anchor, train, val=val, k=4, steps=20,
                             prompts_per_step=4, beta=0.5, lr=1e-2, eval_every=10)
    assert res.teacher_queries == 80 and abs(res.losses[0] - 0.6931) < 1e-3
    assert _falls(res.losses)
    with pytest.raises(MentorError, match="score 'bleu' is unknown"):
        preference_distill(gpt2(1, 16), anchor, train, score="bleu")
