"""A teacher LM behind an OpenAI-compatible completions server (vLLM's ``/v1/completions``).

:class:`CompletionsClient` is the ``fn`` of :class:`~mentor.lm.signals.ServedTeacher`: it
takes token-id sequences and returns, per sequence and position ``t``, the teacher's top-k
``(token_id, logprob)`` pairs of the token *after* position ``t``. One request per batch::

    POST {base_url}/v1/completions
    {"model": m, "prompt": [[ids], ...], "max_tokens": 1, "echo": true, "logprobs": k,
     "return_tokens_as_token_ids": true, "temperature": 0}

With ``echo`` the answer's ``choices[i].logprobs`` covers the prompt and the one generated
token: ``tokens`` are ``"token_id:<id>"`` (the prompt's ids, then the generated one) and
``top_logprobs[j]`` is the distribution of token ``j`` given tokens ``0..j-1`` (``None`` at
``j = 0``; up to k + 1 entries, since vLLM adds the actual token when it is not among the
top k). So position ``t``'s next-token distribution is ``top_logprobs[t + 1]``: for
``t < L - 1`` a prompt position, for ``t = L - 1`` the generated token's position, which is
why ``max_tokens`` is 1 and not 0. vLLM caps ``logprobs`` at its ``--max-logprobs``
(default 20).

Transport uses the standard library only. Connection errors, timeouts and HTTP 5xx / 429
are retried ``retries`` times with exponential backoff (``backoff_s``, then twice that, ...);
then one :class:`~mentor.errors.MentorError` names the URL, the attempts and the last error.
Any other HTTP error, and any answer that is not the shape above, is one sentence naming
the field and what was expected, and nothing of that batch is cached.

The cache (``cache=path``) is a JSON file keyed by the sha256 of the model, the request
kind, k and the id list; it is rewritten atomically after every answered batch, so a rerun
(or a resumed run) sends only what was never answered (the whole file each time: meant for
caches of thousands of sequences, not of a pretraining corpus). Counters: ``requests`` (answered
requests), ``attempts`` (every HTTP try), ``sequences_sent``, ``cache_hits``, ``tokens``
(prompt tokens sent plus tokens asked to be generated) and ``cost`` (``cost_per_1k_tokens``
per 1,000 of ``tokens``).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import math
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from .._util.atomic import atomic_write_text
from ..errors import MentorError

__all__ = ["CompletionsClient"]

_CACHE_FORMAT = "mentor-served-completions-cache"
_PREFIX = "token_id:"


class CompletionsClient:
    """``client(sequences) -> [[[(id, logprob)] * k] * len(seq)] * len(sequences)`` from an
    OpenAI-compatible ``/v1/completions`` server (module docstring); ``generate`` completes
    prompts. ``vocab_size`` (optional) bounds the token ids the server may answer with."""

    def __init__(self, base_url: str, model: str, *, k: int, vocab_size: int | None = None,
                 batch_size: int = 16, timeout_s: float = 60.0, retries: int = 3,
                 backoff_s: float = 1.0, cache: str | Path | None = None,
                 cost_per_1k_tokens: float = 0.0, temperature: float = 0.0,
                 api_key: str | None = None):
        if k < 1:
            raise MentorError(f"completions client k {k} is out of range; expected >= 1")
        if batch_size < 1 or retries < 0 or timeout_s <= 0 or backoff_s < 0:
            raise MentorError(f"completions client batch_size {batch_size}, retries {retries}, "
                              f"timeout_s {timeout_s}, backoff_s {backoff_s}; expected "
                              "batch_size >= 1, retries >= 0, timeout_s > 0, backoff_s >= 0")
        if temperature < 0:
            raise MentorError(f"completions client temperature {temperature} is negative; "
                              "expected >= 0")
        self.url = base_url.rstrip("/") + "/v1/completions"
        self.model, self.k, self.vocab_size = model, int(k), vocab_size
        self.batch_size, self.timeout_s = int(batch_size), float(timeout_s)
        self.retries, self.backoff_s = int(retries), float(backoff_s)
        self.cost_per_1k_tokens, self.temperature = float(cost_per_1k_tokens), float(temperature)
        self.api_key = api_key
        self.cache_path = None if cache is None else Path(cache)
        self._cache = self._load_cache() if self.cache_path is not None else None
        self.requests = self.attempts = self.sequences_sent = self.cache_hits = 0
        self.tokens = 0

    @property
    def cost(self) -> float:
        return self.cost_per_1k_tokens * self.tokens / 1000.0

    # ------------------------------------------------------------------ the two calls
    def __call__(self, sequences: list[list[int]]) -> list:
        """Top-k next-token log-probabilities at every position of every sequence."""
        seqs = [self._ids(s, i, "sequence") for i, s in enumerate(sequences)]
        return self._answered(seqs, "topk", self.k, 1, self._topk_of)

    def generate(self, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:
        """Up to ``new_tokens`` generated ids per prompt (``ServedTeacher``'s
        ``generate_fn``; fewer where the server stopped at its end-of-sequence token), at the
        client's ``temperature``. Cached only at temperature 0 (a sample is not an answer to
        keep)."""
        if new_tokens < 1:
            raise MentorError(f"new_tokens must be >= 1, got {new_tokens}")
        seqs = [self._ids(s, i, "prompt") for i, s in enumerate(prompts)]
        return self._answered(seqs, "generate", new_tokens, new_tokens,
                              lambda c, p, i: self._completion_of(c, i, new_tokens),
                              cached=self.temperature == 0)

    # ------------------------------------------------------------------ batching and cache
    def _answered(self, seqs, kind, param, max_tokens, parse, cached=True):
        keys = [self._key(kind, param, s) for s in seqs]
        use_cache = cached and self._cache is not None
        known = dict(self._cache) if use_cache else {}
        if not cached:  # samples: every prompt is sent, repeats included
            keys = [f"{key}:{j}" for j, key in enumerate(keys)]
        todo, seen = [], set()
        for key, s in zip(keys, seqs):
            if key in known or key in seen:
                self.cache_hits += 1  # answered without being sent
            else:
                seen.add(key)
                todo.append((key, s))
        for lo in range(0, len(todo), self.batch_size):
            batch = todo[lo:lo + self.batch_size]
            body = self._body([s for _, s in batch], kind, max_tokens)
            answer = self._post(body)
            results = self._choices(answer, [s for _, s in batch], parse)
            self.requests += 1
            self.sequences_sent += len(batch)
            self.tokens += sum(len(s) + max_tokens for _, s in batch)
            for (key, _), res in zip(batch, results):
                known[key] = res
            if use_cache:
                self._cache.update({key: res for (key, _), res in zip(batch, results)})
                self._save_cache()
        return [_as_pairs(known[key]) if kind == "topk" else list(known[key]) for key in keys]

    def _key(self, kind: str, param: int, ids: list[int]) -> str:
        text = json.dumps([self.model, kind, param, ids], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def _load_cache(self) -> dict:
        path = self.cache_path
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise MentorError(f"served-teacher cache '{path}' is not readable JSON ({e}); "
                              "expected a cache this client wrote, or a new path") from e
        if not (isinstance(data, dict) and data.get("format") == _CACHE_FORMAT
                and isinstance(data.get("entries"), dict)):
            raise MentorError(f"served-teacher cache '{path}' is not a {_CACHE_FORMAT!r} file; "
                              "expected a cache this client wrote, or a new path")
        return data["entries"]

    def _save_cache(self) -> None:
        data = {"format": _CACHE_FORMAT, "version": 1, "entries": self._cache}
        atomic_write_text(self.cache_path, json.dumps(data, separators=(",", ":")))

    # ------------------------------------------------------------------ HTTP
    def _body(self, prompts, kind, max_tokens) -> dict:
        body = {"model": self.model, "prompt": prompts, "max_tokens": max_tokens,
                "return_tokens_as_token_ids": True}
        if kind == "topk":
            body.update(echo=True, logprobs=self.k, temperature=0)
        else:
            body.update(echo=False, logprobs=1, temperature=self.temperature)
        return body

    def _post(self, body: dict):
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        tries = self.retries + 1
        last = ""
        for attempt in range(tries):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            self.attempts += 1
            req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    raw = resp.read()
            except urllib.error.HTTPError as e:
                detail = _snippet(e)
                if e.code >= 500 or e.code == 429:
                    last = f"HTTP {e.code}{detail}"
                    continue
                raise MentorError(f"the teacher server at {self.url} refused the request with "
                                  f"HTTP {e.code}{detail}; expected 200 (check the model name and "
                                  "that logprobs k is within the server's limit)") from e
            except (urllib.error.URLError, TimeoutError, socket.timeout, ConnectionError,
                    http.client.HTTPException) as e:
                reason = getattr(e, "reason", e)
                last = f"{type(reason).__name__}: {reason}"
                if isinstance(reason, (TimeoutError, socket.timeout)):
                    last = f"no answer within timeout_s {self.timeout_s:g} ({reason})"
                continue
            try:
                return json.loads(raw)
            except ValueError as e:
                raise MentorError(f"the teacher server at {self.url} answered with a body that is "
                                  "not JSON; expected a completions response") from e
        raise MentorError(f"the teacher server at {self.url} did not answer after {tries} "
                          f"attempts (last error: {last}); expected a running OpenAI-compatible "
                          "completions server")

    # ------------------------------------------------------------------ response checks
    def _choices(self, answer, prompts, parse) -> list:
        n = len(prompts)
        choices = answer.get("choices") if isinstance(answer, dict) else None
        if not isinstance(choices, list):
            self._bad("choices", "a list of choices")
        if len(choices) != n:
            self._bad("choices", f"{n} choices, one per prompt sent (got {len(choices)})")
        by_index = {}
        for c in choices:
            idx = c.get("index") if isinstance(c, dict) else None
            if not _is_int(idx) or not 0 <= idx < n or idx in by_index:
                self._bad("choices[].index", f"distinct integers 0..{n - 1} (got {idx!r})")
            by_index[idx] = c
        return [parse(by_index[i], prompts[i], i) for i in range(n)]

    def _logprobs(self, choice, i) -> dict:
        lp = choice.get("logprobs")
        if not isinstance(lp, dict):
            self._bad(f"choices[{i}].logprobs", "an object with tokens and top_logprobs")
        return lp

    def _token_ids(self, tokens, field) -> list[int]:
        if not isinstance(tokens, list):
            self._bad(field, "a list of 'token_id:<id>' strings")
        return [self._token_id(tok, f"{field}[{j}]") for j, tok in enumerate(tokens)]

    def _token_id(self, tok, field) -> int:
        text = tok[len(_PREFIX):] if isinstance(tok, str) and tok.startswith(_PREFIX) else ""
        if not (text.isascii() and text.isdigit()):
            self._bad(field, f"a token 'token_id:<id>' (got {tok!r}; send "
                      "return_tokens_as_token_ids)")
        tid = int(text)
        if self.vocab_size is not None and tid >= self.vocab_size:
            self._bad(field, f"a token id below the vocabulary size {self.vocab_size} (got {tid})")
        return tid

    def _topk_of(self, choice, prompt, i) -> list:
        lp = self._logprobs(choice, i)
        length = len(prompt)
        toks = self._token_ids(lp.get("tokens"), f"choices[{i}].logprobs.tokens")
        if len(toks) != length + 1 or toks[:length] != prompt:
            echoed = "the prompt" if toks[:length] == prompt else "other ids"
            self._bad(f"choices[{i}].logprobs.tokens", f"the {length} prompt ids echoed, then one "
                      f"generated id (got {len(toks)} tokens starting with {echoed})")
        top = lp.get("top_logprobs")
        field = f"choices[{i}].logprobs.top_logprobs"
        if not isinstance(top, list) or len(top) != length + 1:
            got = len(top) if isinstance(top, list) else type(top).__name__
            self._bad(field, f"a list of {length + 1} entries, one per echoed prompt token and "
                      f"one for the generated token (got {got})")
        # top[t + 1] is the distribution of token t + 1 given tokens 0..t: position t's target
        return [self._pairs(top[t + 1], f"{field}[{t + 1}]") for t in range(length)]

    def _pairs(self, entry, field) -> list:
        if not isinstance(entry, dict):
            self._bad(field, "an object {'token_id:<id>': logprob}")
        pairs = []
        for tok, val in entry.items():
            tid = self._token_id(tok, f"{field} key")
            if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
                self._bad(f"{field}[{tok!r}]", f"a finite log-probability (got {val!r})")
            if val > 1e-6:
                self._bad(f"{field}[{tok!r}]", f"a log-probability <= 0 (got {val!r})")
            pairs.append([tid, min(float(val), 0.0)])
        if len(pairs) < self.k:
            self._bad(field, f"at least k={self.k} log-probabilities (got {len(pairs)})")
        pairs.sort(key=lambda p: -p[1])
        return pairs[:self.k]

    def _completion_of(self, choice, i, want) -> list[int]:
        lp = self._logprobs(choice, i)
        field = f"choices[{i}].logprobs.tokens"
        toks = self._token_ids(lp.get("tokens"), field)
        if not 1 <= len(toks) <= want:
            self._bad(field, f"1 to {want} generated ids (got {len(toks)})")
        return toks

    def _bad(self, field, expected):
        raise MentorError(f"the teacher server at {self.url} answered with a malformed "
                          f"{field}; expected {expected}")

    @staticmethod
    def _ids(seq, i, what) -> list[int]:
        ids = list(seq)
        if not ids or not all(_is_int(t) and t >= 0 for t in ids):
            raise MentorError(f"{what} {i} is {'empty' if not ids else 'not token ids'}; "
                              "expected a non-empty list of non-negative integers")
        return ids


def _as_pairs(entry) -> list:
    return [[(int(t), float(v)) for t, v in pos] for pos in entry]


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _snippet(e: urllib.error.HTTPError) -> str:
    """The start of an error answer's body, for the message."""
    try:
        text = e.read(300).decode("utf-8", "replace").strip().replace("\n", " ")
    except Exception:
        text = ""
    finally:
        e.close()
    return f" ({text})" if text else ""
