"""What a ``tokens`` recipe reads (:class:`TokensSource`): TB-LM's addition, WordNet's
dictionary entries (:mod:`mentor.lm.corpus`) or a file of prompts and completions
(:mod:`mentor.lm.completions`), with the rows whose perplexity a run reports and the facts
it records about the data."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .recipe import TokensRecipe
from .testbed import VOCAB, Addition
from .token_data import TokenData


@dataclass
class TokensSource:
    """A tokens recipe's data: the splits, the vocabulary size, the tokenizer to save with
    the students (``None``: the testbed's characters), a sentence saying what the data is,
    and the rows whose perplexity is measured (``lm_val``, ``lm_test``; the task rows
    themselves unless the data has others: WordNet's held-out entries)."""

    train: TokenData
    val: TokenData
    test: TokenData
    vocab: int
    tokenizer: Any
    text: str
    lm_val: TokenData | None = None
    lm_test: TokenData | None = None
    facts: dict = field(default_factory=dict)  # counts a run records (results' data_facts)

    def __post_init__(self):
        self.lm_val = self.val if self.lm_val is None else self.lm_val
        self.lm_test = self.test if self.lm_test is None else self.lm_test


def tokens_data(recipe: TokensRecipe) -> TokensSource:
    d = recipe.data
    if d.source is None and d.testbed == "wordnet":
        return _wordnet(d)
    if d.source is None:
        train, val, test = Addition(d.digits).split(d.split_seed, val=d.val, test=d.test)
        return TokensSource(train, val, test, len(VOCAB), None,
                            f"TB-LM {d.testbed}, {d.digits}-digit operands")
    from ..lm.completions import completion_splits
    s = completion_splits(d.completion_options())
    dropped = f", {s.dropped} rows over {d.max_length} tokens dropped" if s.dropped else ""
    return TokensSource(s.train, s.val, s.test, s.vocab_size, s.tokenizer,
                        f"prompts and completions of {Path(d.source).name}{dropped}")


def _wordnet(d) -> TokensSource:
    """WordNet's dictionary entries (:func:`mentor.lm.corpus.corpus_data`); the tokenizer goes
    with the students as a ``transformers`` fast tokenizer."""
    from transformers import PreTrainedTokenizerFast
    from ..lm.corpus import SPECIAL, corpus_data
    train, val, test, info = corpus_data(d.split_seed, val=d.val, test=d.test,
                                         vocab_size=d.vocab_size, max_len=d.max_length)
    pad, bos, eos = SPECIAL
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=info.tokenizer, pad_token=pad,
                                        bos_token=bos, eos_token=eos)
    cut, dropped = info.cut["train"], sum(info.dropped.values())
    gone = f", {dropped:,} entries too long for them dropped" if dropped else ""
    return TokensSource(train, val, test, info.vocab_size, tokenizer,
                        f"WordNet 3.0 dictionary entries ({info.vocab_size:,}-token BPE, "
                        f"{cut:,} of {len(train):,} training definitions cut at "
                        f"{d.max_length} tokens{gone}; always noun scores "
                        f"{info.majority:.1%})", info.lm_val, info.lm_test,
                        {"synsets": info.synsets, "cut": info.cut, "dropped": info.dropped,
                         "vocab_size": info.vocab_size, "max_length": d.max_length,
                         "majority": info.majority})
