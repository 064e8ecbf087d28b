"""The WordNet corpus for language-model distillation (mentor.lm.corpus): read from the files
of the Debian package wordnet-base, split by a seed, a byte-level BPE tokenizer trained on the
training split (the same in two processes), training / task / perplexity rows that agree with
each other and with the tokenized text, perplexity and next-token accuracy equal to a naive
float64 reference (and that reference telling apart the usual bugs: prompt or pad positions
counted, rows averaged instead of tokens), and one sentence naming the missing path and
package.

The measurement that the docs quote (benchmarks/measures/lm_corpus.py, `lm-corpus`) runs in
its quick form in tests/docs/test_docs_numbers.py."""

from __future__ import annotations

import copy
import hashlib
import math
import subprocess
import sys

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from mentor.errors import DataError, MentorError  # noqa: E402
from mentor.lm import corpus  # noqa: E402
from mentor.lm.token_data import TokenData, from_lists  # noqa: E402

needs_wordnet = pytest.mark.skipif(not (corpus.WORDNET / "data.noun").exists(),
                                   reason="apt-get install wordnet-base (.ci/run does)")

SMALL = dict(val=40, test=60, train=2000, vocab_size=600, max_len=40)


@pytest.fixture(scope="module")
def small():
    return corpus.corpus_data(0, **SMALL)


@needs_wordnet
def test_reads_every_synset_of_the_four_files():
    rows = corpus.read_wordnet()
    assert len(rows) == 117_659
    by_pos = {p: sum(r.pos == p for r in rows) for p in corpus.POS}
    assert by_pos == {"noun": 82_115, "verb": 13_767, "adj": 18_156, "adv": 3_621}
    assert rows[0] == corpus.Synset("entity", "noun", "that which is perceived or known or "
                                    "inferred to have its own distinct existence (living or "
                                    "nonliving)", "noun.Tops")
    assert {r.lexname for r in rows} == set(corpus.LEXNAMES)
    assert all(r.lexname.startswith(r.pos) for r in rows)
    assert not any("_" in r.lemma or r.lemma.endswith(")") for r in rows)
    assert not any('; "' in r.gloss for r in rows)  # definitions only (76 quote otherwise)
    full = corpus.read_wordnet(examples=True)
    sedate = next(r for r in full if r.lemma == "sedate" and r.pos == "verb")
    assert sedate.gloss == ('cause to be calm or quiet as by administering a sedative to; '
                            '"The patient must be sedated before the operation"')
    assert sedate.text().startswith("sedate: cause to be calm") and \
        sedate.text().endswith('before the operation" (verb)')


def test_split_is_a_seeded_permutation():
    a = corpus.split_synsets(1000, 0, 50, 100)
    assert [len(p) for p in a] == [850, 50, 100]
    assert sorted(torch.tensor(list(a[0]) + list(a[1]) + list(a[2])).tolist()) == \
        list(range(1000))
    assert all((x == y).all() for x, y in zip(a, corpus.split_synsets(1000, 0, 50, 100)))
    assert not (a[2] == corpus.split_synsets(1000, 1, 50, 100)[2]).all()
    with pytest.raises(MentorError, match="val 500 and test 600"):
        corpus.split_synsets(1000, 0, 500, 600)


def test_a_missing_package_is_one_sentence_naming_path_and_package(tmp_path):
    with pytest.raises(DataError) as e:
        corpus.corpus_data(0, root=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "data.noun") in msg and "'wordnet-base'" in msg
    assert "apt-get install wordnet-base" in msg and msg.count(". ") == 0


@needs_wordnet
def test_corpus_data_is_deterministic(small):
    again = corpus.corpus_data(0, **SMALL)
    for a, b in zip(small[:3], again[:3]):
        assert torch.equal(a.ids, b.ids) and torch.equal(a.target, b.target)
    assert torch.equal(small[3].lm_test.ids, again[3].lm_test.ids)
    other = corpus.corpus_data(1, **SMALL)
    assert not torch.equal(small[2].ids[:5, :5], other[2].ids[:5, :5])


TOKENIZER_SHA = ("import hashlib, sys; sys.path.insert(0, {src!r}); from mentor.lm import "
                 "corpus; rows = corpus.read_wordnet(); idx = corpus.split_synsets(len(rows), "
                 "0, 40, 60)[0][:2000]; tok = corpus.train_tokenizer([rows[i].text() for i in "
                 "idx], 600); print(hashlib.sha256(tok.to_str().encode()).hexdigest())")


@needs_wordnet
def test_the_tokenizer_is_the_same_in_two_processes(small):
    """The BPE trainer's vocabulary and merges (ids included) from two fresh processes and
    this one: the tokenizers library's trainer nondeterminism would show here."""
    from pathlib import Path
    src = str(Path(corpus.__file__).resolve().parents[2])
    code = TOKENIZER_SHA.format(src=src)
    shas = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip() for _ in range(2)}
    here = hashlib.sha256(small[3].tokenizer.to_str().encode()).hexdigest()
    assert shas == {here}
    tok = small[3].tokenizer
    assert [tok.id_to_token(i) for i in range(3)] == ["<pad>", "<bos>", "<eos>"]
    assert tok.get_vocab_size() == 600


@needs_wordnet
def test_training_task_and_perplexity_rows_agree(small):
    train, val, test, info = small
    rows = corpus.read_wordnet()
    tr_idx, _, te_idx = corpus.split_synsets(len(rows), 0, 40, 60)
    tok = info.tokenizer
    assert (info.pad_id, info.bos_id, info.eos_id, info.vocab_size) == (0, 1, 2, 600)
    assert info.synsets == {"train": 2000, "val": 40, "test": 60}
    assert len(train) == 2000 and len(val) == 40 and len(test) == 60
    # a training row is <bos>, the entry's tokens (its definition cut if too long), <eos>;
    # the prompt is the lemma
    compared = 0
    for i in range(100):
        syn = rows[tr_idx[i]]
        ids = train.ids[i, :int(train.lengths[i])].tolist()
        assert ids[0] == info.bos_id and ids[-1] == info.eos_id
        whole = tok.encode(syn.text(), add_special_tokens=False).ids
        if int(train.lengths[i]) < info.max_len and syn.lemma[-1].isalnum():
            assert ids[1:-1] == whole  # the parts encoded apart are the whole text's ids
            compared += 1
        assert tok.decode(ids[1:-1]).endswith(f" ({syn.pos})")  # never cut
        assert tok.decode(train.prompt_lists()[i]) == syn.lemma
    assert compared > 50
    assert int(train.lengths.max()) <= info.max_len and info.cut["train"] > 0
    # a task row is the entry up to " (" and its part of speech; a perplexity row is the
    # entry in the training rows' form
    lm = info.lm_test
    for i in range(len(test)):
        syn = rows[te_idx[i]]
        assert lm.prompt_lists()[i] == test.prompt_lists()[i][:len(lm.prompt_lists()[i])]
        assert tok.decode(lm.prompt_lists()[i]) == syn.lemma
        prompt = tok.decode(test.prompt_lists()[i])
        assert tok.decode(test.completion_lists()[i]) == syn.pos
        entry = tok.decode(lm.ids[i, 1:int(lm.lengths[i]) - 1].tolist())
        assert entry == prompt + syn.pos + ")"
        if int(lm.lengths[i]) < info.max_len:
            assert entry == syn.text()
        else:
            assert prompt.startswith(syn.lemma + ":") and prompt.endswith(" (")
            assert syn.text().startswith(prompt[:-2])
        assert lm.completion_lists()[i][-1] == info.eos_id
    assert test.eos_id is None  # exact match over the part of speech's tokens
    nouns = sum(rows[i].pos == "noun" for i in te_idx) / 60
    assert info.majority == nouns and sum(rows[i].pos == "noun" for i in tr_idx[:2000]) > 1000


def test_right_padded_equals_from_lists():
    prompts = [[1, 5], [1, 6, 7, 3], [1]]
    completions = [[4, 2], [8, 9, 9, 9, 2], [5, 5, 5, 2]]
    for eos in (2, None):
        a = corpus.right_padded(prompts, completions, 0, eos)
        b = from_lists(prompts, completions, pad_id=0, eos_id=eos)
        assert all(torch.equal(getattr(a, k), getattr(b, k))
                   for k in ("ids", "target", "attention"))
        assert (a.pad_id, a.eos_id) == (b.pad_id, b.eos_id)


def reference_scores(model, data: TokenData) -> tuple[float, float]:
    """Naive: each row alone, unpadded, in float64; every target token's negative
    log-probability given the tokens before it, summed over all rows, over their count
    (perplexity = exp of that), and the share of them that are the arg-max."""
    model = copy.deepcopy(model).double().eval()
    total, count, hits = 0.0, 0, 0
    with torch.no_grad():
        for i in range(len(data)):
            n = int(data.lengths[i])
            ids = data.ids[i:i + 1, :n]
            logits = model(ids).logits[0]
            for t in range(1, n):
                if data.target[i, t]:
                    z = logits[t - 1]
                    total += float(torch.logsumexp(z, 0) - z[ids[0, t]])
                    hits += int(z.argmax()) == int(ids[0, t])
                    count += 1
    return math.exp(total / count), hits / count


def reference_perplexity(model, data: TokenData) -> float:
    return reference_scores(model, data)[0]


@needs_wordnet
def test_perplexity_equals_a_naive_float64_reference(small):
    """A GPT-2 trained a few steps (so the arg-max is not one token everywhere)."""
    from mentor.lm import distill_lm
    train, _, _, info = small
    model = corpus.gpt2(info.vocab_size, layers=1, width=16, positions=2 * info.max_len,
                        seed=3)
    distill_lm(model, None, train, regime="supervised", steps=15, batch_size=32, lr=1e-2,
               eval_every=15)
    model.train()
    data = info.lm_test.subset(range(24))
    assert len(set(data.lengths.tolist())) > 3 and len(set(data.prompt_lens.tolist())) > 1
    want, accuracy = reference_scores(model, data)
    got = corpus.perplexity(model, data, batch_size=7)  # batches of different widths
    assert got == pytest.approx(want, rel=1e-5)
    assert model.training  # its mode is given back
    assert corpus.token_accuracy(model, data, batch_size=5) == accuracy
    assert corpus.token_scores(model, data) == {"perplexity": pytest.approx(want, rel=1e-5),
                                                "accuracy": accuracy}

    # at the check's tolerance the reference tells the usual bugs apart from the right answer
    steps = torch.arange(data.ids.shape[1])
    with_prompt = TokenData(data.ids, data.attention & (steps > 0), data.attention,
                            data.pad_id)
    assert corpus.perplexity(model, with_prompt) != pytest.approx(want, rel=1e-5)
    everything = torch.ones_like(data.attention)
    with_pads = TokenData(data.ids, data.target | ~data.attention, everything, data.pad_id)
    assert corpus.perplexity(model, with_pads) != pytest.approx(want, rel=1e-5)
    per_row = math.exp(sum(math.log(reference_perplexity(model, data.subset([i])))
                           for i in range(len(data))) / len(data))
    assert per_row != pytest.approx(want, rel=1e-5)


@needs_wordnet
def test_a_student_distills_from_a_teacher_on_the_corpus(small):
    """The corpus's rows run every regime the measurement uses (a few steps each)."""
    from mentor.lm import distill_lm, exact_match
    train, val, test, info = small
    positions = 2 * info.max_len
    teacher = corpus.gpt2(info.vocab_size, layers=1, width=32, positions=positions)
    distill_lm(teacher, None, train, regime="supervised", steps=4, batch_size=16,
               eval_every=4)
    for regime, kw in (("off_policy", {"divergence": "reverse_kl"}),
                       ("on_policy", {"lam": 1.0})):
        student = corpus.gpt2(info.vocab_size, layers=1, width=16, positions=positions)
        res = distill_lm(student, teacher, train, val=val.subset(range(8)), regime=regime,
                         steps=2, batch_size=8, eval_every=2, **kw)
        assert len(res.losses) == 2 and all(math.isfinite(x) for x in res.losses)
        assert 0 <= exact_match(res.model, test) <= 1
        assert 1 < corpus.perplexity(res.model, info.lm_test) < 2 * info.vocab_size


@needs_wordnet
def test_an_entry_too_long_for_max_len_is_dropped_and_counted():
    """At 16 tokens a long lemma leaves no room for its part of speech: the entry is dropped
    (counted per split), every kept row fits, and the floor is over the kept test entries."""
    train, val, test, info = corpus.corpus_data(0, val=40, test=60, train=2000,
                                                vocab_size=600, max_len=16)
    assert info.dropped["train"] > 0 and info.dropped["test"] > 0
    for name, rows in (("train", train), ("val", val), ("test", test)):
        assert len(rows) == info.synsets[name] == \
            {"train": 2000, "val": 40, "test": 60}[name] - info.dropped[name]
    assert int(train.lengths.max()) <= 16 and int(info.lm_test.lengths.max()) <= 16
    tok = info.tokenizer
    nouns = [tok.decode(c) == "noun" for c in test.completion_lists()]
    assert info.majority == sum(nouns) / len(nouns)
