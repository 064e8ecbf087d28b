"""A real text corpus for language-model distillation: WordNet's glosses.

The corpus is read from the files the Debian package ``wordnet-base`` installs
(``/usr/share/wordnet/data.{noun,verb,adj,adv}``; WordNet 3.0, Miller 1995, Princeton
University's licence); nothing is downloaded. Each of its 117,659 synsets is one entry of a
dictionary: its first lemma, its gloss (the definition; with ``examples=True`` also the
quoted example sentences after it) and its part of speech::

    dog: a member of the genus Canis (probably descended from the common wolf) ... (noun)

Three views of these entries, as right-padded :class:`~mentor.lm.token_data.TokenData`
whose ids start with ``<bos>``:

* **training rows** -- prompt the lemma, completion ``:``, the gloss, `` (noun)`` and
  ``<eos>``: a language model of the dictionary.
* **perplexity rows** (``Corpus.lm_val``, ``Corpus.lm_test``) -- the held-out synsets' entries
  in the same form: :func:`perplexity` is exp of the mean negative log-likelihood of their
  tokens after the lemma.
* **task rows** (``val``, ``test``) -- prompt the entry up to `` (`` (``dog: a member ... (``),
  completion its part of speech: which of noun, verb, adj, adv the definition defines (verbs'
  definitions read "cause to ...", adverbs' "in a ... manner", adjectives' "of or relating
  to ..."), scored by the exact match of greedy completions (:func:`mentor.lm.exact_match`).
  71 % of the synsets are nouns, so ``Corpus.majority`` (always ``noun``) is the floor.

The split is by synset, a permutation drawn from ``split_seed``: ``test`` synsets, then
``val``, then the rest for training. The tokenizer is a byte-level BPE (GPT-2's pre-tokenizer,
no unknown token: every text encodes and decodes back) trained on the training entries only.
The ``tokenizers`` BPE trainer is deterministic in this form: its nondeterminism
(huggingface/tokenizers#1794) comes from ids given to continuing-subword tokens (WordPiece's
``##``) in hash-map order, and this tokenizer has none; the alphabet is sorted and merge ties
are broken by ids (tests/lm/test_corpus.py builds it in two processes and compares).
A definition too long for ``max_len`` tokens in all is cut (its last tokens dropped; the part
of speech and ``<eos>`` kept; ``Corpus.cut`` counts them), and an entry whose lemma alone
leaves no room is dropped (``Corpus.dropped``).
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import DataError, MentorError, check_param
from .scores import perplexity, token_accuracy, token_scores  # noqa: F401 (re-exported)
from .token_data import TokenData

WORDNET = Path("/usr/share/wordnet")
PACKAGE = "wordnet-base"
POS = ("noun", "verb", "adj", "adv")
# lexicographer file number -> name (WordNet 3.0's lexnames(5WN))
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance",
    "noun.time", "verb.body", "verb.change", "verb.cognition", "verb.communication",
    "verb.competition", "verb.consumption", "verb.contact", "verb.creation", "verb.emotion",
    "verb.motion", "verb.perception", "verb.possession", "verb.social", "verb.stative",
    "verb.weather", "adj.ppl")
SPECIAL = ("<pad>", "<bos>", "<eos>")  # ids 0, 1, 2


@dataclass(frozen=True)
class Synset:
    """One synset: its first lemma, part of speech, gloss and lexicographer file."""

    lemma: str
    pos: str
    gloss: str
    lexname: str

    def text(self) -> str:
        """The dictionary entry: ``lemma: gloss (pos)``."""
        return f"{self.lemma}: {self.gloss} ({self.pos})"


def read_wordnet(root: Path = WORDNET, *, examples: bool = False) -> list[Synset]:
    """Every synset of ``root``'s ``data.noun``, ``data.verb``, ``data.adj``, ``data.adv`` in
    file order; the gloss is the definition (the text before the first quoted example),
    or the whole gloss with ``examples``. Underscores in lemmas become spaces; adjectives'
    syntactic markers (``(a)``, ``(p)``, ``(ip)``) are dropped."""
    rows = []
    for pos in POS:
        path = Path(root) / f"data.{pos}"
        if not path.exists():
            raise DataError(f"the WordNet corpus reads {path}, which the Debian package "
                            f"{PACKAGE!r} installs, and it is not there; expected `apt-get "
                            f"install {PACKAGE}` (run as root)")
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("  "):  # the licence header
                    continue
                head, gloss = line.split(" | ", 1)
                fields = head.split()
                lemma = re.sub(r"\([a-z]+\)$", "", fields[4]).replace("_", " ")
                gloss = gloss.strip()
                if not examples:
                    gloss = gloss.split('; "')[0].strip()
                rows.append(Synset(lemma, pos, gloss, LEXNAMES[int(fields[1])]))
    return rows


def split_synsets(n: int, split_seed: int, val: int, test: int) -> tuple[np.ndarray, ...]:
    """Row indices ``(train, val, test)`` of ``n`` synsets: one permutation from
    ``split_seed``, its first ``test`` rows for test, the next ``val`` for validation."""
    if val < 1 or test < 1 or val + test >= n:
        raise MentorError(f"corpus val {val} and test {test} must be >= 1 and leave training "
                          f"rows out of {n:,} synsets")
    order = np.random.default_rng(split_seed).permutation(n)
    return order[test + val:], order[test:test + val], order[:test]


@functools.lru_cache(maxsize=4)
def _trained(texts: tuple[str, ...], vocab_size: int) -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    return tok.to_str()


def train_tokenizer(texts, vocab_size: int = 2000):
    """A byte-level BPE ``tokenizers.Tokenizer`` of ``vocab_size`` tokens trained on
    ``texts``: ``<pad>``, ``<bos>``, ``<eos>`` are ids 0, 1, 2, then the 256 byte symbols,
    then the merges (module docstring: deterministic). Decodes ids back to the text."""
    from tokenizers import Tokenizer, decoders
    check_param("corpus", "vocab_size", vocab_size, low=len(SPECIAL) + 256)
    tok = Tokenizer.from_str(_trained(tuple(texts), int(vocab_size)))
    tok.decoder = decoders.ByteLevel()
    return tok


@dataclass
class Corpus:
    """What :func:`corpus_data` built besides the training and task rows: the tokenizer
    (a ``tokenizers.Tokenizer``), its special ids, the perplexity rows of the validation and
    test synsets, the synsets per split, how many definitions were cut to fit ``max_len``
    and ``majority``: the test exact match of always answering the most common training
    part of speech."""

    tokenizer: object
    vocab_size: int
    pad_id: int
    bos_id: int
    eos_id: int
    max_len: int
    lm_val: TokenData
    lm_test: TokenData
    synsets: dict = field(default_factory=dict)
    cut: dict = field(default_factory=dict)
    dropped: dict = field(default_factory=dict)
    majority: float = float("nan")


def corpus_data(split_seed: int = 0, *, val: int = 500, test: int = 1000,
                train: int | None = None, vocab_size: int = 2000, max_len: int = 32,
                examples: bool = False,
                root: Path = WORDNET) -> tuple[TokenData, TokenData, TokenData, Corpus]:
    """WordNet's glosses as ``(train, val, test, info)`` (module docstring): ``train`` the
    training rows (prompt ``<bos>lemma``, completion ``: gloss (pos)<eos>``), ``val`` and
    ``test`` the task rows of the held-out synsets (prompt ``<bos>lemma: gloss (``,
    completion the part of speech; scored by :func:`mentor.lm.exact_match`), ``info`` a
    :class:`Corpus` with the tokenizer, ``vocab_size``, ``pad_id``/``bos_id``/``eos_id`` and the perplexity
    rows ``lm_val`` and ``lm_test`` (for :func:`perplexity`).

    ``train`` keeps only the first ``train`` training synsets of the split's order (the
    tokenizer learns from those; ``None``: all). The training rows are in the split's random
    order, so ``train.subset(range(n))`` is a random sample of ``n``. A definition too long
    for ``max_len`` tokens in all is cut (its last tokens dropped, the part of speech and
    ``<eos>`` kept; ``info.cut`` counts them per split); an entry whose lemma and part of
    speech alone leave no room is dropped (``info.dropped``)."""
    check_param("corpus", "max_len", max_len, low=16)
    rows = read_wordnet(root, examples=examples)
    parts = split_synsets(len(rows), split_seed, val, test)
    if train is not None:
        check_param("corpus", "train", train, low=1)
        parts = (parts[0][:int(train)], *parts[1:])
    train_rows, val_rows, test_rows = ([rows[i] for i in idx] for idx in parts)
    tok = train_tokenizer([r.text() for r in train_rows], vocab_size)
    pad, bos, eos = (tok.token_to_id(s) for s in SPECIAL)
    encoded, cut, dropped = {}, {}, {}
    for name, part in (("train", train_rows), ("val", val_rows), ("test", test_rows)):
        encoded[name], cut[name], dropped[name] = _encode(tok, part, bos, eos, max_len)
    pieces = encoded["train"]
    def entries(rows):  # prompt the lemma, completion the rest of the entry and <eos>
        return right_padded([p.lemma for p in rows],
                            [p.colon + p.gloss + p.open + p.pos + p.close for p in rows], pad,
                            eos)
    train_data = entries(pieces)
    task = {k: right_padded([p.lemma + p.colon + p.gloss + p.open for p in encoded[k]],
                            [p.pos for p in encoded[k]], pad, None) for k in ("val", "test")}
    lm = {k: entries(encoded[k]) for k in ("val", "test")}
    common = max(POS, key=lambda p: sum(x.tag == p for x in encoded["train"]))
    info = Corpus(tok, tok.get_vocab_size(), pad, bos, eos, max_len, lm["val"], lm["test"],
                  synsets={k: len(v) for k, v in encoded.items()}, cut=cut, dropped=dropped,
                  majority=sum(x.tag == common for x in encoded["test"]) / len(encoded["test"]))
    return train_data, task["val"], task["test"], info


@dataclass
class _Piece:
    """One entry's ids: ``<bos>`` and the lemma, ``:`` (``colon``), the gloss, `` (``
    (``open``), the part of speech and ``)`` with ``<eos>`` (``close``)."""

    lemma: list
    colon: list
    gloss: list
    open: list
    pos: list
    close: list
    tag: str = ""  # the part of speech's name


def _encode(tok, rows: list[Synset], bos: int, eos: int, max_len: int):
    """Each entry's parts encoded on their own -- GPT-2's pre-tokenizer splits the text at
    every part's edge anyway (a letter run, a space with punctuation, ...), so the parts'
    ids are the whole text's (tests check it) unless the lemma ends in punctuation
    (``St.``, whose ``.`` would join the ``:``) -- the gloss cut to fit ``max_len``:
    ``(pieces, glosses cut, entries dropped)``: an entry whose lemma and part of speech
    leave no room at all is dropped."""
    def encode(texts):
        return [e.ids for e in tok.encode_batch(list(texts), add_special_tokens=False)]
    colon, opening, closing = encode([":", " (", ")"])
    pieces, cut, dropped = [], 0, 0
    for row, lemma, pos, gloss in zip(rows, encode([r.lemma for r in rows]),
                                      encode([r.pos for r in rows]),
                                      encode([" " + r.gloss for r in rows])):
        if min(lemma + pos + gloss, default=len(SPECIAL)) < len(SPECIAL):  # "<eos>" as text
            raise DataError("a WordNet text encodes to a special token of the corpus's "
                            f"tokenizer ({', '.join(SPECIAL)}); expected plain text")
        room = max_len - 2 - len(lemma) - len(colon) - len(opening) - len(pos) - len(closing)
        if room < 0:
            dropped += 1
            continue
        cut += len(gloss) > room
        pieces.append(_Piece([bos, *lemma], colon, gloss[:room], opening, pos,
                             [*closing, eos], row.pos))
    if not pieces:
        raise DataError(f"corpus max_len {max_len} leaves no room for any entry's lemma and "
                        "part of speech; expected a larger max_len")
    return pieces, cut, dropped


def right_padded(prompts: list[list[int]], completions: list[list[int]], pad_id: int,
                 eos_id: int | None) -> TokenData:
    """:func:`~mentor.lm.token_data.from_lists` for completions that hold no ``eos_id`` before
    their end, built with array operations (the corpus has 100,000 rows; tests check it
    equals ``from_lists``)."""
    rows = [p + c for p, c in zip(prompts, completions)]
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    starts = np.fromiter(map(len, prompts), dtype=np.int64, count=len(rows))
    steps = np.arange(int(lengths.max()) if len(rows) else 0)
    real = steps[None] < lengths[:, None]
    ids = np.full(real.shape, pad_id, dtype=np.int64)
    ids[real] = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64,
                            count=int(lengths.sum()))
    target = real & (steps[None] >= starts[:, None])
    return TokenData(torch.from_numpy(ids), torch.from_numpy(target),
                     torch.from_numpy(real), pad_id, eos_id)


def gpt2(vocab_size: int, *, layers: int, width: int, positions: int, heads: int = 4,
         seed: int = 0) -> nn.Module:
    """A GPT-2 ``GPT2LMHeadModel`` from a config (no dropout; weights from ``seed``)."""
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocab_size, n_positions=positions, n_embd=width,
                        n_layer=layers, n_head=heads, resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0, bos_token_id=None, eos_token_id=None)
    return GPT2LMHeadModel(config)


def parameters(model: nn.Module) -> int:
    """Distinct parameters (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


__all__ = ["Corpus", "LEXNAMES", "Synset", "corpus_data", "gpt2", "parameters", "perplexity",
           "read_wordnet", "right_padded", "split_synsets", "token_accuracy", "token_scores",
           "train_tokenizer"]
