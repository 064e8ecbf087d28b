"""Prompts and completions from a file, as :class:`~mentor.lm.token_data.TokenData`: JSON
Lines, Parquet, Arrow, CSV or a Hugging Face ``save_to_disk`` folder (the readers of
:mod:`mentor.data.tables`), tokenized with a local Hugging Face tokenizer folder.

Two row shapes, as TRL's trainers read them:

* **prompt-completion**: a ``prompt`` column and a ``completion`` column, each a string, or
  each a list of chat turns (``{"role": ..., "content": ...}``; conversational);
* **messages**: one column of chat turns whose last turn is the assistant's answer.

Chat turns are rendered with the tokenizer's chat template: the prompt with
``add_generation_prompt=True``, the completion as what the whole conversation adds to it.
``chat: true`` also renders string prompts as one user turn. The completion ends with the
tokenizer's end-of-sequence token (appended when the text does not end with it), which stops
generation and bounds exact match. The loss reads completion tokens only.

Rows longer than ``max_length`` tokens are refused naming the first (``too_long: error``) or
dropped and counted (``too_long: drop``). Splits: a ``DatasetDict`` folder's ``train`` /
``validation`` / ``test``, else ``val`` and ``test`` rows drawn with ``split_seed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._util.safeio import shown
from ..errors import DataError
from .token_data import TokenData, from_lists


@dataclass(frozen=True)
class CompletionOptions:
    """Where the rows are and how they become tokens (module docstring)."""

    path: str
    tokenizer: str
    prompt: str = "prompt"
    completion: str = "completion"
    messages: str | None = None
    chat: bool = False
    max_length: int = 512
    too_long: str = "error"
    val: int = 200
    test: int = 500
    split_seed: int = 0


@dataclass
class CompletionSplits:
    train: TokenData
    val: TokenData
    test: TokenData
    vocab_size: int
    dropped: int
    tokenizer: Any  # the transformers tokenizer (saved beside a run's students)


def load_tokenizer(path: str | Path, field: str = "data.tokenizer"):
    """A Hugging Face tokenizer from a local folder, with a pad token (its end-of-sequence
    token when it has none) and an end-of-sequence token required."""
    from ..data.text import hf_tokenizer
    folder = Path(path)
    tok = hf_tokenizer(folder, field)
    if tok.eos_token_id is None:
        raise DataError(f"{field}: the tokenizer in {shown(folder)} has no end-of-sequence "
                        "token; expected one (eos_token) to end completions")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def completion_splits(o: CompletionOptions) -> CompletionSplits:
    """The file's rows as train / validation / test :class:`TokenData` (module docstring)."""
    from ..data.tables import SPLIT_COLUMN, read_table
    if o.too_long not in ("error", "drop"):
        raise DataError(f"data.too_long {o.too_long!r} is unknown; expected 'error' or 'drop'")
    tok = load_tokenizer(o.tokenizer)
    table = read_table(Path(o.path), "data.source")
    where = f"data.source {shown(Path(o.path))}"
    columns = [o.messages] if o.messages else [o.prompt, o.completion]
    for c in columns:
        if c not in table.column_names:
            field = "data.messages" if o.messages else (
                "data.prompt" if c == o.prompt else "data.completion")
            raise DataError(f"{field}: {where} has no column {c!r}; it has "
                            f"{', '.join(map(repr, table.column_names))}")
    cols = {c: table.column(c).to_pylist() for c in columns}
    prompts, completions, keep = [], [], []
    dropped = 0
    for i in range(table.num_rows):
        p, c = _encode_row(tok, o, {k: v[i] for k, v in cols.items()}, i, where)
        if len(p) + len(c) > o.max_length:
            if o.too_long == "error":
                raise DataError(f"data.max_length: {where} row {i} has {len(p) + len(c)} "
                                f"tokens, more than {o.max_length}; expected shorter rows, a "
                                "larger max_length, or too_long: drop")
            dropped += 1
            continue
        prompts.append(p)
        completions.append(c)
        keep.append(i)
    if not keep:
        raise DataError(f"{where} has no row of at most {o.max_length} tokens; expected some")
    keep = np.asarray(keep)
    names = (np.asarray(table.column(SPLIT_COLUMN).to_pylist())[keep]
             if SPLIT_COLUMN in table.column_names else None)
    parts = _split(len(keep), names, o, where)

    def part(idx):
        return from_lists([prompts[j] for j in idx], [completions[j] for j in idx],
                          pad_id=int(tok.pad_token_id), eos_id=int(tok.eos_token_id))
    return CompletionSplits(part(parts["train"]), part(parts["val"]), part(parts["test"]),
                            int(len(tok)), dropped, tok)


def _split(n: int, names, o: CompletionOptions, where: str) -> dict[str, np.ndarray]:
    if names is not None:
        out = {k: np.flatnonzero(names == k) for k in ("train", "val", "test")}
        missing = [k for k, v in out.items() if len(v) == 0]
        if missing:
            raise DataError(f"{where}: its splits have no {missing[0]!r} rows; expected "
                            "train, validation and test splits")
        return out
    if o.val + o.test >= n:
        raise DataError(f"data.val {o.val} + data.test {o.test} leave no training rows out of "
                        f"{n} in {where}; expected fewer")
    order = np.random.default_rng(o.split_seed).permutation(n)
    return {"test": np.sort(order[:o.test]), "val": np.sort(order[o.test:o.test + o.val]),
            "train": np.sort(order[o.test + o.val:])}


def _encode_row(tok, o: CompletionOptions, row: dict, i: int, where: str
                ) -> tuple[list[int], list[int]]:
    """(prompt ids, completion ids ending with end-of-sequence) of row ``i``."""
    if o.messages:
        turns = _turns(row[o.messages], f"data.messages: {where} row {i}")
        if len(turns) < 2 or turns[-1].get("role") != "assistant":
            raise DataError(f"data.messages: {where} row {i} does not end with an assistant "
                            "turn after at least one other; expected the answer last")
        prompt, answer = turns[:-1], turns[-1:]
    else:
        prompt, answer = row[o.prompt], row[o.completion]
        if isinstance(prompt, str) != isinstance(answer, str):
            raise DataError(f"data.prompt: {where} row {i} mixes a text and chat turns; "
                            "expected both texts or both lists of turns")
        if isinstance(prompt, str) and o.chat:
            prompt, answer = [{"role": "user", "content": prompt}], \
                [{"role": "assistant", "content": answer}]
    if isinstance(prompt, str):
        p = tok(prompt, add_special_tokens=True)["input_ids"]
        c = tok(answer, add_special_tokens=False)["input_ids"]
    else:
        prompt = _turns(prompt, f"data.prompt: {where} row {i}")
        answer = _turns(answer, f"data.completion: {where} row {i}")
        p_text = _template(tok, prompt, True, where)
        full = _template(tok, prompt + answer, False, where)
        if not full.startswith(p_text):
            raise DataError(f"data.tokenizer: its chat template renders row {i}'s "
                            "conversation so that it does not start with the rendered prompt; "
                            "expected a template that extends the prompt")
        p = tok(p_text, add_special_tokens=False)["input_ids"]
        c = tok(full[len(p_text):], add_special_tokens=False)["input_ids"]
    if not c or c[-1] != tok.eos_token_id:
        c = [*c, int(tok.eos_token_id)]
    if not p:
        raise DataError(f"data.prompt: {where} row {i} has an empty prompt; expected at "
                        "least one token")
    return list(p), list(c)


def _turns(value, where: str) -> list[dict]:
    ok = isinstance(value, list) and all(
        isinstance(t, dict) and isinstance(t.get("role"), str)
        and isinstance(t.get("content"), str) for t in value)
    if not ok:
        raise DataError(f"{where} is not a list of chat turns; expected "
                        "[{'role': ..., 'content': ...}, ...]")
    return [{"role": t["role"], "content": t["content"]} for t in value]


def _template(tok, turns: list[dict], generation_prompt: bool, where: str) -> str:
    if not tok.chat_template:
        raise DataError(f"data.tokenizer has no chat template but {where} has chat turns (or "
                        "data.chat is true); expected a tokenizer with a chat_template")
    return tok.apply_chat_template(turns, tokenize=False,
                                   add_generation_prompt=generation_prompt)
