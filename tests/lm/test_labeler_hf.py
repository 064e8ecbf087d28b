"""The LLM labeler on a local ``transformers`` model (:class:`TransformersBackend`): a tiny
GPT-2 trained here to answer "review : ... label :" with a sentiment word, saved with
``save_pretrained`` and loaded back, labels through :class:`LLMLabeler` with the ``choice``
parser; the cache spares the model on a second run; left-padded batches reply as one prompt
at a time does; sampled replies repeat with a seed, not across seeds, and do not depend on
the batch; the chat template is used when asked; wrong folders are one sentence."""

from __future__ import annotations

import pytest
import torch

from mentor.errors import MentorError
from mentor.lm.backend import BatchBackend
from mentor.lm.labeler import LabelCache, LLMLabeler, PromptTemplate, choice

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from mentor.lm.labeler_hf import TransformersBackend  # noqa: E402

GOOD = ["good", "great", "fine", "nice"]
BAD = ["bad", "awful", "poor", "dull"]
NOUNS = ["movie", "film", "book", "show"]
EXTRA = ["", "really ", "very old ", "truly very "]  # prompts of different lengths
CHAT = ("{% for m in messages %}<|user|> {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}")
TEMPLATE = PromptTemplate("review : {extra}{adj} {noun} . label :", allow_extra=True)


def _items() -> list[dict]:
    return [{"extra": e, "adj": a, "noun": n, "gold": "positive" if a in GOOD else "negative"}
            for i, (a, n) in enumerate((a, n) for a in GOOD + BAD for n in NOUNS)
            for e in [EXTRA[i % len(EXTRA)]]]


def _prompt(item: dict) -> str:
    return TEMPLATE.render(item)


def _tokenizer(chat_template: str | None = CHAT):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    specials = ["[PAD]", "[UNK]", "[EOS]", "<|user|>", "<|assistant|>"]
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    words = " ".join(GOOD + BAD + NOUNS + EXTRA + ["review", ":", ".", "label", "positive",
                                                    "negative", "the", "a", "is", "it"])
    tok.train_from_iterator([words], trainers.WordLevelTrainer(special_tokens=specials))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]",
                                                eos_token="[EOS]", unk_token="[UNK]",
                                                additional_special_tokens=specials[3:])
    fast.chat_template = chat_template
    return fast


def _gpt2(tokenizer, seed: int, initializer_range: float = 0.02):
    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=2,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, initializer_range=initializer_range,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)
    return transformers.GPT2LMHeadModel(config)


def _train(model, tokenizer, steps: int = 250) -> None:
    """Next-token loss on the reply (label word + [EOS]) after plain and chat prompts."""
    rows = []
    for item in _items():
        for text in (_prompt(item),
                     tokenizer.apply_chat_template([{"role": "user", "content": _prompt(item)}],
                                                   tokenize=False, add_generation_prompt=True)):
            prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
            reply = tokenizer(" " + item["gold"], add_special_tokens=False)["input_ids"]
            rows.append((prompt, reply + [tokenizer.eos_token_id]))
    width = max(len(p) + len(r) for p, r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    for i, (p, r) in enumerate(rows):
        ids[i, :len(p) + len(r)] = torch.tensor(p + r)
        labels[i, len(p):len(p) + len(r)] = torch.tensor(r)
    mask = (ids != tokenizer.pad_token_id).long()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Saved folders: the trained labeler, a random GPT-2 (sensitive to every input token),
    a model without a chat template and a sequence classifier."""
    root = tmp_path_factory.mktemp("hf-labeler")
    tokenizer = _tokenizer()
    trained = _gpt2(tokenizer, 0)
    _train(trained, tokenizer)
    random_lm = _gpt2(tokenizer, 1, initializer_range=0.5)
    for name, model, tok in (("trained", trained, tokenizer), ("random", random_lm, tokenizer),
                             ("no-chat", trained, _tokenizer(None))):
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
    torch.manual_seed(2)
    classifier = transformers.GPT2ForSequenceClassification(
        transformers.GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=1,
                                n_head=2, num_labels=2, pad_token_id=tokenizer.pad_token_id))
    classifier.save_pretrained(root / "classifier")
    tokenizer.save_pretrained(root / "classifier")
    return root


def _forward_counter(model) -> list[int]:
    count = [0]
    model.register_forward_pre_hook(lambda *_: count.__setitem__(0, count[0] + 1))
    return count


def test_greedy_replies_label_the_reviews_and_the_cache_spares_the_model(folders, tmp_path):
    backend = TransformersBackend(folders / "trained", max_new_tokens=3, batch_size=8)
    assert isinstance(backend, BatchBackend)
    forwards = _forward_counter(backend.model)
    items = _items()
    labeler = LLMLabeler(backend, TEMPLATE, choice(["positive", "negative"]),
                         cache=tmp_path / "cache.json")
    assert labeler.model_id == backend.model_id  # the backend names the cache namespace
    labels = labeler.label(items)
    assert labels == [item["gold"] for item in items]
    assert labeler.stats.calls == len(items) and labeler.stats.unparsed == 0
    # batched: 32 prompts in 4 batches of 8, each 3 new tokens at most (prefill + 2 steps)
    assert 0 < forwards[0] <= 4 * 3
    before = forwards[0]
    again = LLMLabeler(backend, TEMPLATE, choice(["positive", "negative"]),
                       cache=LabelCache(tmp_path / "cache.json"))
    assert again.label(items) == labels
    assert forwards[0] == before and again.stats.calls == 0
    assert again.stats.cache_hits == len(items)


def test_batched_replies_equal_one_prompt_at_a_time(folders):
    backend = TransformersBackend(folders / "random", max_new_tokens=6, batch_size=16)
    prompts = [_prompt(item) for item in _items()[:16]]
    assert len({len(p.split()) for p in prompts}) > 1  # real left padding in the batch
    batched = backend.many(prompts)
    single = [backend(p) for p in prompts]
    assert batched == single
    assert len(set(single)) > 4  # the random model's replies depend on the prompt
    # without a pad token the pads are the end-of-sequence token, which generate cannot tell
    # from a real one: only the attention mask hides them
    no_pad = _tokenizer()
    no_pad.pad_token = None
    eos_padded = TransformersBackend((backend.model, no_pad), max_new_tokens=6, batch_size=16)
    assert eos_padded.pad_id == no_pad.eos_token_id
    assert eos_padded.many(prompts) == [eos_padded(p) for p in prompts] == single


def test_sampled_replies_repeat_with_the_seed_and_not_across_seeds(folders):
    prompts = [_prompt(item) for item in _items()[:12]]

    def sample(seed: int, batch_size: int = 12) -> list[str]:
        return TransformersBackend(folders / "random", max_new_tokens=6, temperature=1.0,
                                   seed=seed, batch_size=batch_size).many(prompts)

    first = sample(0)
    assert sample(0) == first
    assert sum(a != b for a, b in zip(sample(1), first)) >= len(prompts) // 2
    assert sample(0, batch_size=1) == first  # a reply does not depend on its batch
    greedy = TransformersBackend(folders / "random", max_new_tokens=6).many(prompts)
    assert first != greedy
    for narrow in ({"top_k": 1}, {"top_p": 1e-6}):  # only the likeliest token is left
        assert TransformersBackend(folders / "random", max_new_tokens=6, temperature=1.0,
                                   **narrow).many(prompts) == greedy
    # asking a prompt again draws anew (a labeler's retry), reproducibly
    backend = TransformersBackend(folders / "random", max_new_tokens=6, temperature=1.0)
    again = [backend(prompts[0]) for _ in range(4)]
    assert again[0] == first[0] and len(set(again)) > 1
    assert backend.many([prompts[0]] * 4, attempts=[0, 1, 2, 3]) == again


def test_model_id_changes_with_the_model_and_the_decoding(folders):
    greedy = TransformersBackend(folders / "trained")
    assert TransformersBackend(folders / "trained").model_id == greedy.model_id
    others = [TransformersBackend(folders / "random"),
              TransformersBackend(folders / "trained", max_new_tokens=5),
              TransformersBackend(folders / "trained", chat=True),
              TransformersBackend(folders / "trained", temperature=0.7),
              TransformersBackend(folders / "trained", temperature=0.7, seed=1),
              TransformersBackend(folders / "trained", temperature=0.7, top_p=0.9)]
    ids = [greedy.model_id] + [b.model_id for b in others]
    assert len(set(ids)) == len(ids)
    assert greedy.model_id.startswith("hf:trained:")
    pair = TransformersBackend((greedy.model, greedy.tokenizer), name="mine")
    assert pair.model_id.split(":")[2] == greedy.model_id.split(":")[2]


def test_chat_wraps_the_prompt_in_the_template(folders):
    backend = TransformersBackend(folders / "trained", chat=True, max_new_tokens=3)
    item = _items()[0]
    shown = backend.rendered(_prompt(item))
    assert shown.startswith("<|user|> review :") and shown.endswith("<|assistant|>")
    labels = LLMLabeler(backend, TEMPLATE, choice(["positive", "negative"])).label(_items())
    assert labels == [i["gold"] for i in _items()]
    with pytest.raises(MentorError, match=r"chat=True\) needs a tokenizer with a chat "
                                          r"template, but .* has none") as err:
        TransformersBackend(folders / "no-chat", chat=True)
    assert "\n" not in str(err.value)


def test_folders_that_are_not_causal_lms_are_one_sentence(folders, tmp_path):
    with pytest.raises(MentorError, match=r"holds a GPT2ForSequenceClassification, not a "
                                          r"causal language model") as err:
        TransformersBackend(folders / "classifier")
    assert "\n" not in str(err.value)
    with pytest.raises(MentorError, match=r"does not exist; expected a local folder"):
        TransformersBackend(tmp_path / "missing")
    classifier = transformers.GPT2ForSequenceClassification(transformers.GPT2Config(
        n_embd=8, n_layer=1, n_head=2))
    with pytest.raises(MentorError, match=r"is a GPT2ForSequenceClassification, not a "
                                          r"transformers causal language model"):
        TransformersBackend((classifier, _tokenizer()))
    with pytest.raises(MentorError, match=r"top_p=0.9 / top_k=0 apply only to sampling"):
        TransformersBackend(folders / "trained", top_p=0.9)
    long = "review : " + "good " * 70 + ". label :"
    with pytest.raises(MentorError, match=r"reads at most 64 positions"):
        TransformersBackend(folders / "trained")(long)
