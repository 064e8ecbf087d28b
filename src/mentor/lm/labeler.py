"""Labeling with black-box LLM teachers: prompt template -> call -> parse -> cache.

METHODS.md §59 item 9 ("LLM-as-teacher data pipelines"): one :class:`LLMLabeler` serves every
paper whose teacher is an API model that is only reachable through text:

* HarmAug (paper 2, "HarmAug: Effective Data Augmentation for Knowledge Distillation of Safety
  Guard Models"): a guard LLM labels synthetic instruction/response pairs (``choice`` parser).
* MolReFlect (paper 4, "MolReFlect: Towards In-Context Fine-grained Alignments between Molecules
  and Texts"): a teacher LLM extracts alignments, then re-extracts them with in-context examples.
* TAIL (paper 23, "Task Aware Instruction-based Labelling"): an LMM labels documents with
  task-aware instructions and formatted (JSON) output; malformed replies are rejected
  (``json_field`` parser; a reply that does not parse is a :class:`ParseFailure`).
* PU-RL distillation (paper 31, "Positive-Unlabeled Reinforcement Learning Distillation for
  On-Premise Small Models"): one teacher call per prompt gives the anchor response
  (``text`` parser); see :mod:`mentor.lm.preference` for the rest.
* Protect (paper 32, "Protect: Towards Robust Guardrailing Stack for Trustworthy Enterprise LLM
  Systems"): teacher-assisted annotation with labels and explanation traces.
* Fully Open Meditron (paper 41, "Fully Open Meditron: An Auditable Pipeline for Clinical LLMs"):
  gold-label resampling of teacher generations (:func:`sample_until_agrees`) and n-gram
  decontamination against evaluation sets (:func:`decontaminate`; n = 13 is a [recon] default).
* LLKD (paper 47, "Learning with Less: Knowledge Distillation from Large Language Models via
  Unlabeled Data"): an LLM pseudo-labels unlabeled text for a small classifier.

The backend is any callable ``prompt -> reply`` the user writes around an API client; the
library never talks to a network itself. :class:`StubBackend` is a deterministic stand-in for
CPU tests and benchmarks. Replies that parsed are kept in a :class:`LabelCache` keyed by
``sha256(model_id + "\\n" + prompt)``, so a labeling run that is repeated (or resumed after a
crash) pays only for prompts it has not asked before. The cache file is JSON, written
atomically; nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence

from .._util.atomic import atomic_write_text
from ..errors import MentorError, check_param
from .backend import BatchBackend

__all__ = ["LLMLabeler", "LabelCache", "LabelStats", "PARSERS", "ParseFailure", "Parser",
           "PromptTemplate", "StubBackend", "cache_key", "choice", "decontaminate",
           "json_field", "make_parser", "number", "regex", "sample_until_agrees", "text"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


# ---------------------------------------------------------------------------------------------
# Prompt templates
# ---------------------------------------------------------------------------------------------

class PromptTemplate:
    """A ``str.format``-style prompt with named fields, e.g. ``"Is this harmful? {text}"``.

    Only plain named fields are allowed: ``{name}``, ``{name!r}``, ``{name:>8}``. Positional
    fields (``{}``, ``{0}``), attribute or index access (``{x.attr}``, ``{x[0]}``) and nested
    fields inside a format spec are rejected when the template is built -- a template must
    never reach into the objects it is given. Literal braces are written ``{{`` and ``}}``.

    ``fields``, when given, declares the field names: the text must use exactly those names
    (a name used but not declared, or declared but not used, is an error naming it). Rendering
    with a missing value is an error naming the field; so is a value for a field the template
    does not have, unless ``allow_extra=True`` (items that carry ids or gold labels alongside
    the prompt fields).

    >>> PromptTemplate("Q: {question}\\nA:").render({"question": "2+2?"})
    'Q: 2+2?\\nA:'
    """

    def __init__(self, text: str, fields: Sequence[str] | None = None, *,
                 allow_extra: bool = False):
        if not isinstance(text, str):
            raise MentorError(f"PromptTemplate.text must be a str, got {type(text).__name__}")
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise MentorError(f"PromptTemplate.text {text!r} is not a valid format string "
                              f"({exc}); write literal braces as '{{{{' and '}}}}'") from None
        pieces: list[tuple[str, str | None, str | None, str]] = []
        used: list[str] = []
        for literal, name, spec, conversion in parsed:
            if name is None:
                pieces.append((literal, None, None, ""))
                continue
            if not _IDENTIFIER.match(name):
                raise MentorError(f"PromptTemplate field {{{name}}} is not allowed; expected a "
                                  f"plain named field like {{question}} (no positional fields, "
                                  f"attribute or index access)")
            spec = spec or ""
            if "{" in spec or "}" in spec:
                raise MentorError(f"PromptTemplate field {name!r} has a nested field in its "
                                  f"format spec {spec!r}; expected a literal format spec")
            pieces.append((literal, name, conversion, spec))
            if name not in used:
                used.append(name)
        if fields is not None:
            if isinstance(fields, str):
                raise MentorError(f"PromptTemplate.fields must be a sequence of names, got the "
                                  f"string {fields!r}")
            fields = tuple(fields)
            for name in used:
                if name not in fields:
                    raise MentorError(f"PromptTemplate field {name!r} is used in the text but "
                                      f"not declared in fields {fields!r}")
            for name in fields:
                if name not in used:
                    raise MentorError(f"PromptTemplate field {name!r} is declared in fields but "
                                      f"not used in the text {text!r}")
        self.text = text
        self.fields: tuple[str, ...] = tuple(used)
        self.allow_extra = bool(allow_extra)
        self._pieces = pieces
        self._pattern: re.Pattern | None = None

    def render(self, values: Mapping[str, Any]) -> str:
        """The prompt for ``values`` (a mapping from field name to value)."""
        if not isinstance(values, Mapping):
            raise MentorError(f"prompt values must be a mapping of field names to values, got "
                              f"{type(values).__name__}")
        for name in self.fields:
            if name not in values:
                raise MentorError(f"prompt field {name!r} is missing from the item (keys: "
                                  f"{sorted(map(str, values))}); expected a value for every "
                                  f"field of {self.fields}")
        if not self.allow_extra:
            for key in values:
                if key not in self.fields:
                    raise MentorError(f"prompt field {key!r} is not a field of the template "
                                      f"(fields: {self.fields}); remove it or build the "
                                      f"template with allow_extra=True")
        out: list[str] = []
        for literal, name, conversion, spec in self._pieces:
            out.append(literal)
            if name is None:
                continue
            value = values[name]
            if conversion == "r":
                value = repr(value)
            elif conversion == "a":
                value = ascii(value)
            elif conversion == "s":
                value = str(value)
            try:
                out.append(format(value, spec))
            except (TypeError, ValueError) as exc:
                raise MentorError(f"prompt field {name!r} value {value!r} does not fit the "
                                  f"format spec {spec!r} ({exc})") from None
        return "".join(out)

    __call__ = render

    def match(self, prompt: str) -> dict[str, str] | None:
        """The field values (as rendered strings) that give ``prompt``, or None if it does not fit.

        The inverse of :meth:`render`, used by :class:`StubBackend` so that a stub rule can
        read the fields back. With several ways to split the prompt, the shortest values for
        the earlier fields win.
        """
        if self._pattern is None:
            seen: set[str] = set()
            parts: list[str] = []
            for literal, name, _conversion, _spec in self._pieces:
                parts.append(re.escape(literal))
                if name is None:
                    continue
                parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.*?)")
                seen.add(name)
            self._pattern = re.compile("".join(parts), re.DOTALL)
        m = self._pattern.fullmatch(prompt)
        return None if m is None else m.groupdict()

    def __repr__(self) -> str:
        return f"PromptTemplate({self.text!r})"


# ---------------------------------------------------------------------------------------------
# Output parsers
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ParseFailure:
    """A reply the parser could not read; keeps the raw reply and why."""

    raw: str
    reason: str = ""


class Parser:
    """A named output parser: ``parser(reply) -> value`` or a :class:`ParseFailure`."""

    def __init__(self, name: str, fn: Callable[[str], Any],
                 params: Mapping[str, Any] | None = None):
        self.name = name
        self.params = dict(params or {})
        self._fn = fn

    def __call__(self, reply: str) -> Any:
        return self._fn(reply)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({args})"


def choice(labels: Sequence[str], default: str | None = None, *,
           ignore_case: bool = True) -> Parser:
    """Find exactly one of the allowed ``labels`` in the reply, as a whole word.

    Matching is case-insensitive (unless ``ignore_case=False``) and respects word boundaries,
    so ``"harmless"`` does not count as ``"harm"``. Longer labels win where they overlap
    (``"not harmful"`` is not also ``"harmful"``). The same label repeated is fine; two
    different labels is ambiguous, no label is absent: both are a :class:`ParseFailure`,
    except that with ``default`` an absent label gives ``default``. Returns the label as
    spelled in ``labels``.
    """
    if isinstance(labels, str) or not isinstance(labels, Sequence) or len(labels) == 0:
        raise MentorError(f"choice.labels must be a non-empty list of strings, got {labels!r}")
    canon: dict[str, str] = {}
    for lab in labels:
        if not isinstance(lab, str) or not lab.strip():
            raise MentorError(f"choice.labels must hold non-empty strings, got {lab!r}")
        key = lab.casefold() if ignore_case else lab
        if key in canon:
            raise MentorError(f"choice.labels has the label {lab!r} twice"
                              f"{' (ignoring case)' if ignore_case else ''}; expected distinct "
                              f"labels")
        canon[key] = lab
    alternatives = "|".join(re.escape(lab) for lab in sorted(labels, key=len, reverse=True))
    pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE if ignore_case else 0)

    def parse(reply: str) -> Any:
        found = []
        for m in pattern.finditer(reply):
            lab = canon[m.group(0).casefold() if ignore_case else m.group(0)]
            if lab not in found:
                found.append(lab)
        if len(found) == 1:
            return found[0]
        if not found:
            if default is not None:
                return default
            return ParseFailure(reply, f"none of the labels {list(labels)} in the reply")
        return ParseFailure(reply, f"ambiguous reply: it names {found}")

    return Parser("choice", parse, {"labels": list(labels), "default": default,
                                    "ignore_case": ignore_case})


_NUMBER = re.compile(r"(?P<sign>(?<![\w.])[-+])?"
                     r"(?P<body>(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)"
                     r"(?P<exp>[eE][-+]?\d+)?")


def _to_number(sign: str, body: str, exp: str) -> int | float:
    body = body.replace(",", "")
    if "." in body or exp:
        value: int | float = float(body + exp)
    else:
        value = int(body)
    return -value if sign == "-" else value


def number() -> Parser:
    """The last number in the reply: ``"... so the answer is 19."`` -> ``19``.

    Integers come back as ``int``, decimals (``3.5``, ``1e-3``) as ``float``; thousands
    separators (``1,234``) are read; a minus sign counts only where it is not a hyphen
    between words or numbers (``"3-5"`` ends with ``5``). No number is a :class:`ParseFailure`.
    """
    def parse(reply: str) -> Any:
        last = None
        for m in _NUMBER.finditer(reply):
            last = m
        if last is None:
            return ParseFailure(reply, "no number in the reply")
        value = _to_number(last.group("sign") or "", last.group("body"), last.group("exp") or "")
        if isinstance(value, float) and not math.isfinite(value):
            return ParseFailure(reply, f"the number {last.group(0)!r} is not finite")
        return value

    return Parser("number", parse)


def json_field(name: str) -> Parser:
    """Field ``name`` of the first JSON object (``{...}``) in the reply.

    The reply may wrap the object in prose or a code fence; the first ``{`` that starts a
    valid JSON object is used. No object, or an object without the field, is a
    :class:`ParseFailure` -- TAIL's format validation (paper 23, [recon: reject malformed]).
    """
    if not isinstance(name, str) or not name:
        raise MentorError(f"json_field.name must be a non-empty string, got {name!r}")
    decoder = json.JSONDecoder()

    def parse(reply: str) -> Any:
        start = reply.find("{")
        while start != -1:
            try:
                obj, _end = decoder.raw_decode(reply, start)
            except json.JSONDecodeError:
                obj = None
            if isinstance(obj, dict):
                if name in obj:
                    return obj[name]
                return ParseFailure(reply, f"the JSON object has no field {name!r}")
            start = reply.find("{", start + 1)
        return ParseFailure(reply, "no JSON object in the reply")

    return Parser("json_field", parse, {"name": name})


def regex(pattern: str, group: int | str = 1, *, flags: int = 0) -> Parser:
    """Group ``group`` of the first match of ``pattern`` (``re.search``) in the reply.

    No match, or a match where the group did not take part, is a :class:`ParseFailure`.
    """
    try:
        compiled = re.compile(pattern, flags)
    except (re.error, TypeError) as exc:
        raise MentorError(f"regex.pattern {pattern!r} is not a valid regular expression "
                          f"({exc})") from None
    if isinstance(group, bool) or not isinstance(group, (int, str)):
        raise MentorError(f"regex.group must be a group number or name, got {group!r}")
    if isinstance(group, int) and not 0 <= group <= compiled.groups:
        raise MentorError(f"regex.group must be in [0, {compiled.groups}] for pattern "
                          f"{pattern!r}, got {group}")
    if isinstance(group, str) and group not in compiled.groupindex:
        raise MentorError(f"regex.group {group!r} is not a named group of pattern {pattern!r}")

    def parse(reply: str) -> Any:
        m = compiled.search(reply)
        if m is None:
            return ParseFailure(reply, f"the pattern {pattern!r} does not match")
        value = m.group(group)
        if value is None:
            return ParseFailure(reply, f"group {group!r} of {pattern!r} did not match")
        return value

    return Parser("regex", parse, {"pattern": pattern, "group": group})


def text(*, strip: bool = True, allow_empty: bool = False) -> Parser:
    """The reply itself (stripped): free-form teacher outputs such as PU-RL anchors.

    An empty reply is a :class:`ParseFailure` unless ``allow_empty``.
    """
    def parse(reply: str) -> Any:
        out = reply.strip() if strip else reply
        if not out and not allow_empty:
            return ParseFailure(reply, "empty reply")
        return out

    return Parser("text", parse, {"strip": strip, "allow_empty": allow_empty})


PARSERS: dict[str, Callable[..., Parser]] = {
    "choice": choice, "number": number, "json_field": json_field, "regex": regex, "text": text,
}


def make_parser(name: str, **params: Any) -> Parser:
    """Build the registered parser ``name`` with ``params`` (e.g. from a recipe)."""
    if name not in PARSERS:
        raise MentorError(f"parser {name!r} is not known; expected one of {sorted(PARSERS)}")
    try:
        return PARSERS[name](**params)
    except TypeError as exc:
        raise MentorError(f"parser {name!r} does not take the parameters {sorted(params)} "
                          f"({exc})") from None


# ---------------------------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------------------------

_CACHE_FORMAT = "mentor.label_cache"
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


def cache_key(model_id: str, prompt: str) -> str:
    """``sha256(model_id + "\\n" + prompt)`` as hex: the cache key of one query."""
    return hashlib.sha256(f"{model_id}\n{prompt}".encode("utf-8")).hexdigest()


class LabelCache:
    """A file cache of query key -> raw teacher reply (JSON, written atomically).

    ``path=None`` keeps the cache in memory only. An existing file is loaded when the cache is
    opened; a missing one is created by the first :meth:`flush`. :meth:`flush` writes the
    whole cache to a temp file next to ``path`` and renames it over ``path``, so a crash leaves
    the previous complete file, never a half-written one. Two processes flushing the same file
    do not merge: the last flush wins. Use as a context manager to flush on exit.

    File layout: ``{"format": "mentor.label_cache", "version": 1, "entries": {key: reply}}``.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        self._entries: dict[str, str] = {}
        self._dirty = False
        if self.path is not None and self.path.exists():
            self._entries = self._load(self.path)

    @staticmethod
    def _load(path: Path) -> dict[str, str]:
        expect = (f"expected a label cache written by mentor (a JSON object with "
                  f"format={_CACHE_FORMAT!r} and an 'entries' object of replies)")
        try:
            raw = path.read_text(encoding="utf-8")
            data = json.loads(raw)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MentorError(f"label cache {str(path)!r} cannot be read as JSON ({exc}); "
                              f"{expect}") from None
        if (not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT
                or not isinstance(data.get("entries"), dict)):
            raise MentorError(f"label cache {str(path)!r} is not a label cache; {expect}")
        if data.get("version") != 1:
            raise MentorError(f"label cache {str(path)!r} has version {data.get('version')!r}; "
                              f"expected version 1")
        entries = data["entries"]
        for key, reply in entries.items():
            if not _HEX64.match(key) or not isinstance(reply, str):
                raise MentorError(f"label cache {str(path)!r} has an invalid entry {key[:80]!r}; "
                                  f"expected sha256 hex keys mapping to reply strings")
        return dict(entries)

    def get(self, key: str) -> str | None:
        return self._entries.get(key)

    def put(self, key: str, reply: str) -> None:
        if not _HEX64.match(key):
            raise MentorError(f"label cache key {key!r} is not a sha256 hex digest; build it "
                              f"with cache_key(model_id, prompt)")
        if not isinstance(reply, str):
            raise MentorError(f"label cache reply must be a str, got {type(reply).__name__}")
        if self._entries.get(key) != reply:
            self._entries[key] = reply
            self._dirty = True

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def dirty(self) -> bool:
        """True while there are entries not yet written by :meth:`flush`."""
        return self._dirty

    def flush(self) -> None:
        """Write the cache to ``path`` atomically (nothing to do in memory-only mode)."""
        if self.path is None:
            self._dirty = False
            return
        if not self._dirty and self.path.exists():
            return
        payload = {"format": _CACHE_FORMAT, "version": 1, "entries": self._entries}
        atomic_write_text(self.path, json.dumps(payload, ensure_ascii=False, sort_keys=True))
        self._dirty = False

    def __enter__(self) -> "LabelCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def __repr__(self) -> str:
        return f"LabelCache({None if self.path is None else str(self.path)!r}, {len(self)} entries)"


# ---------------------------------------------------------------------------------------------
# The labeler
# ---------------------------------------------------------------------------------------------

@dataclass
class LabelStats:
    """Counters of one :class:`LLMLabeler` (cumulative over its ``label`` calls).

    ``calls`` backend calls (each one paid), ``cache_hits`` items answered from the cache,
    ``parse_failures`` replies that did not parse (including ones a retry recovered),
    ``unparsed`` items returned as :class:`ParseFailure`, ``cost = calls * cost_per_query``.
    """

    cost_per_query: float = 0.0
    items: int = 0
    calls: int = 0
    cache_hits: int = 0
    parse_failures: int = 0
    unparsed: int = 0

    @property
    def cost(self) -> float:
        return self.calls * self.cost_per_query

    def as_dict(self) -> dict[str, float]:
        return {"items": self.items, "calls": self.calls, "cache_hits": self.cache_hits,
                "parse_failures": self.parse_failures, "unparsed": self.unparsed,
                "cost": self.cost}


class LLMLabeler:
    """Label items with a black-box LLM: render the prompt, ask (or read the cache), parse.

    ``backend(prompt) -> reply`` is any callable -- typically a few lines around an API client
    (set temperature, model, max tokens there). ``template`` is a :class:`PromptTemplate` (or
    its text) and each item is the mapping of its fields. ``parser`` is a :class:`Parser`, any
    callable ``reply -> value`` that returns :class:`ParseFailure` on bad replies, or the name
    of a registered parser that takes no parameters (``"number"``, ``"text"``).

    For each item: the cache is looked up under ``cache_key(model_id, prompt)``; a cached
    reply that still parses is used without a call. Otherwise the backend is called, and on a
    parse failure asked again up to ``retries`` more times (useful with a sampling
    temperature > 0). Replies that parsed are stored in the cache; replies that never parsed
    are not (a later run asks again) and the item's result is the last :class:`ParseFailure`.
    A file cache is flushed every ``flush_every`` new replies and at the end of each
    :meth:`label` call, also when the backend raises, so paid replies are not lost.

    A :class:`~mentor.lm.backend.BatchBackend` (a local model,
    :class:`~mentor.lm.labeler_hf.TransformersBackend`) is asked for the cache misses of
    ``backend.batch_size`` items at a time through ``backend.many`` (retries in batches too;
    an item repeated within one batch is asked again rather than read from the cache), and
    ``model_id`` defaults to ``backend.model_id``; any other backend is asked one prompt at a
    time and ``model_id`` defaults to ``"stub"``.

    ``cost_per_query`` is what one backend call costs (the active loop reads this attribute
    as the teacher's price); :attr:`stats` counts calls, cache hits and parse failures.
    """

    def __init__(self, backend: Callable[[str], str], template: PromptTemplate | str,
                 parser: Callable[[str], Any] | str, *,
                 cache: LabelCache | str | Path | None = None, model_id: str | None = None,
                 retries: int = 0, cost_per_query: float = 0.0, flush_every: int = 100):
        if not callable(backend):
            raise MentorError(f"LLMLabeler.backend must be a callable prompt -> reply, got "
                              f"{type(backend).__name__}")
        if isinstance(template, str):
            template = PromptTemplate(template)
        if not isinstance(template, PromptTemplate):
            raise MentorError(f"LLMLabeler.template must be a PromptTemplate or its text, got "
                              f"{type(template).__name__}")
        if isinstance(parser, str):
            parser = make_parser(parser)
        if not callable(parser):
            raise MentorError(f"LLMLabeler.parser must be a parser or a parser name, got "
                              f"{type(parser).__name__}")
        if cache is not None and not isinstance(cache, LabelCache):
            cache = LabelCache(cache)
        if model_id is None:
            model_id = backend.model_id if isinstance(backend, BatchBackend) else "stub"
        if isinstance(backend, BatchBackend):
            size = backend.batch_size
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise MentorError(f"LLMLabeler.backend.batch_size must be an integer >= 1, got "
                                  f"{size!r}")
        if not isinstance(model_id, str) or not model_id:
            raise MentorError(f"LLMLabeler.model_id must be a non-empty string, got {model_id!r}")
        if isinstance(retries, bool) or not isinstance(retries, int):
            raise MentorError(f"LLMLabeler.retries must be an integer >= 0, got {retries!r}")
        check_param("LLMLabeler", "retries", retries, low=0)
        if (isinstance(cost_per_query, bool) or not isinstance(cost_per_query, (int, float))
                or not math.isfinite(cost_per_query)):
            raise MentorError(f"LLMLabeler.cost_per_query must be a finite number >= 0, got "
                              f"{cost_per_query!r}")
        check_param("LLMLabeler", "cost_per_query", float(cost_per_query), low=0.0)
        if isinstance(flush_every, bool) or not isinstance(flush_every, int):
            raise MentorError(f"LLMLabeler.flush_every must be an integer >= 1, got "
                              f"{flush_every!r}")
        check_param("LLMLabeler", "flush_every", flush_every, low=1)
        self.backend = backend
        self.template = template
        self.parser = parser
        self.cache = cache
        self.model_id = model_id
        self.retries = retries
        self.cost_per_query = float(cost_per_query)
        self.flush_every = int(flush_every)
        self.stats = LabelStats(cost_per_query=self.cost_per_query)

    def prompt(self, item: Mapping[str, Any]) -> str:
        """The rendered prompt of one item."""
        return self.template.render(item)

    def _ask(self, prompt: str) -> str:
        reply = self.backend(prompt)
        self.stats.calls += 1
        if not isinstance(reply, str):
            raise MentorError(f"LLMLabeler.backend must return the reply as a str, got "
                              f"{type(reply).__name__} for prompt {prompt[:60]!r}")
        return reply

    def _ask_many(self, prompts: list[str]) -> list[str]:
        if not isinstance(self.backend, BatchBackend):
            return [self._ask(prompt) for prompt in prompts]
        replies = self.backend.many(prompts)
        if (not isinstance(replies, list) or len(replies) != len(prompts)
                or not all(isinstance(r, str) for r in replies)):
            got = (f"{len(replies)} items" if isinstance(replies, list)
                   else type(replies).__name__)
            raise MentorError(f"LLMLabeler.backend.many must return a list of {len(prompts)} "
                              f"reply strings, got {got}")
        self.stats.calls += len(prompts)
        return replies

    def label_one(self, item: Mapping[str, Any]) -> Any:
        """The parsed label of one item (see :meth:`label`)."""
        return self.label([item])[0]

    def label(self, items: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Parsed labels of ``items``, in order; :class:`ParseFailure` where none parsed."""
        if isinstance(items, Mapping) or isinstance(items, (str, bytes)):
            raise MentorError(f"LLMLabeler.label takes a sequence of items (mappings of field "
                              f"values), got a single {type(items).__name__}")
        prompts = [self.prompt(item) for item in items]  # all render errors before any call
        out: list[Any] = []
        new_since_flush = 0
        step = self.backend.batch_size if isinstance(self.backend, BatchBackend) else 1
        try:
            for start in range(0, len(prompts), step):
                part = prompts[start:start + step]
                keys = [cache_key(self.model_id, prompt) for prompt in part]
                values: list[Any] = [None] * len(part)
                todo: list[int] = []
                for j, key in enumerate(keys):
                    self.stats.items += 1
                    cached = None if self.cache is None else self.cache.get(key)
                    if cached is not None:
                        value = self.parser(cached)
                        if not isinstance(value, ParseFailure):
                            self.stats.cache_hits += 1
                            values[j] = value
                            continue
                    todo.append(j)
                for _attempt in range(self.retries + 1):
                    if not todo:
                        break
                    replies = self._ask_many([part[j] for j in todo])
                    failed = []
                    for j, reply in zip(todo, replies):
                        values[j] = self.parser(reply)
                        if isinstance(values[j], ParseFailure):
                            self.stats.parse_failures += 1
                            failed.append(j)
                        elif self.cache is not None:
                            self.cache.put(keys[j], reply)
                            new_since_flush += 1
                    todo = failed
                self.stats.unparsed += len(todo)
                out.extend(values)
                if self.cache is not None and new_since_flush >= self.flush_every:
                    self.cache.flush()
                    new_since_flush = 0
        finally:
            if self.cache is not None and self.cache.dirty:
                self.cache.flush()
        return out

    __call__ = label

    def __repr__(self) -> str:
        return (f"LLMLabeler(model_id={self.model_id!r}, template={self.template!r}, "
                f"parser={self.parser!r}, retries={self.retries})")


# ---------------------------------------------------------------------------------------------
# A deterministic stub backend
# ---------------------------------------------------------------------------------------------

_MALFORMED = "I'm sorry, I cannot help with that request."


def _unit_draws(*parts: object) -> tuple[float, float, int]:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    u = int.from_bytes(digest[0:8], "big") / 2.0 ** 64
    v = int.from_bytes(digest[8:16], "big") / 2.0 ** 64
    k = int.from_bytes(digest[16:24], "big")
    return u, v, k


class StubBackend:
    """A deterministic stand-in for an LLM API, for CPU tests and benchmarks.

    ``rule(prompt) -> reply`` gives the correct reply. With a ``template``, the rule receives
    the field values read back from the prompt instead (``rule(fields: dict[str, str])``,
    values as rendered strings), so rules need not parse prompts.

    ``noise`` is the fraction of prompts whose reply is corrupted. Whether a prompt is
    corrupted, and how, is decided by ``sha256(seed, prompt)``: the same prompt always gets the
    same reply (like a teacher at temperature 0), and the corrupted share over many prompts is
    close to ``noise``. A corrupted reply is malformed (a refusal with no label, number or
    JSON) with probability ``malformed``; otherwise it is wrong but well-formed: a different
    entry of ``choices`` when the correct reply is one of them, else the correct reply with
    its last number shifted by a non-zero amount (1..9 either way), else malformed.

    ``resample=True`` models sampling at temperature > 0: the draw also depends on how many
    times this prompt was asked before, so asking again can give another reply (still
    deterministic for a given sequence of calls). ``calls`` counts calls.
    """

    def __init__(self, rule: Callable[[Any], str], *, noise: float = 0.0, seed: int = 0,
                 template: PromptTemplate | str | None = None,
                 choices: Sequence[str] | None = None, malformed: float = 0.5,
                 resample: bool = False):
        if not callable(rule):
            raise MentorError(f"StubBackend.rule must be a callable, got {type(rule).__name__}")
        check_param("StubBackend", "noise", float(noise), low=0.0, high=1.0)
        check_param("StubBackend", "malformed", float(malformed), low=0.0, high=1.0)
        if isinstance(template, str):
            template = PromptTemplate(template)
        self.rule = rule
        self.noise = float(noise)
        self.seed = seed
        self.template = template
        self.choices = None if choices is None else [str(c) for c in choices]
        self.malformed = float(malformed)
        self.resample = bool(resample)
        self.calls = 0
        self._asked: dict[str, int] = {}

    def correct(self, prompt: str) -> str:
        """The uncorrupted reply to ``prompt``."""
        if self.template is None:
            return self.rule(prompt)
        fields = self.template.match(prompt)
        if fields is None:
            raise MentorError(f"StubBackend prompt {prompt[:60]!r} does not fit its template "
                              f"{self.template.text!r}; expected prompts rendered from it")
        return self.rule(fields)

    def is_corrupted(self, prompt: str, attempt: int = 0) -> bool:
        """Whether the ``attempt``-th ask of ``prompt`` gets a corrupted reply."""
        return _unit_draws(self.seed, attempt if self.resample else 0, prompt)[0] < self.noise

    def reply(self, prompt: str, attempt: int = 0) -> str:
        """The reply to the ``attempt``-th ask of ``prompt`` (does not count as a call)."""
        good = self.correct(prompt)
        u, v, k = _unit_draws(self.seed, attempt if self.resample else 0, prompt)
        if u >= self.noise:
            return good
        if v < self.malformed:
            return _MALFORMED
        if self.choices is not None and good in self.choices and len(self.choices) > 1:
            others = [c for c in self.choices if c != good]
            return others[k % len(others)]
        nums = list(re.finditer(r"\d+", good))
        if nums:
            last = nums[-1]
            shift = (k % 9 + 1) * (1 if (k >> 8) % 2 else -1)
            wrong = int(last.group(0)) + shift
            if wrong < 0:
                wrong = int(last.group(0)) + abs(shift)
            return good[:last.start()] + str(wrong) + good[last.end():]
        return _MALFORMED

    def __call__(self, prompt: str) -> str:
        attempt = self._asked.get(prompt, 0)
        self._asked[prompt] = attempt + 1
        self.calls += 1
        return self.reply(prompt, attempt)

    def __repr__(self) -> str:
        return f"StubBackend(noise={self.noise}, seed={self.seed}, calls={self.calls})"


# ---------------------------------------------------------------------------------------------
# Gold-agreement resampling and decontamination (Meditron, paper 41)
# ---------------------------------------------------------------------------------------------

def sample_until_agrees(generate: Callable[[int], Any], gold: Hashable,
                        extract: Callable[[Any], Any], *, tries: int = 4) -> Any:
    """Gold-label rejection sampling of teacher generations (Fully Open Meditron, paper 41).

    Calls ``generate(attempt)`` for ``attempt = 0, 1, ...`` up to ``tries`` times and returns
    the first output whose ``extract(output) == gold`` (e.g. a worked solution whose final
    answer matches the gold answer); None when no try agrees, and the item is dropped.
    N = 4 tries is the METHODS.md default ([recon]).
    """
    if isinstance(tries, bool) or not isinstance(tries, int):
        raise MentorError(f"sample_until_agrees.tries must be an integer >= 1, got {tries!r}")
    check_param("sample_until_agrees", "tries", tries, low=1)
    for attempt in range(tries):
        output = generate(attempt)
        got = extract(output)
        if not isinstance(got, ParseFailure) and got == gold:
            return output
    return None


_WORD = re.compile(r"\w+")


def _words(text_: str) -> list[str]:
    if not isinstance(text_, str):
        raise MentorError(f"decontaminate expects texts as strings, got {type(text_).__name__}")
    return _WORD.findall(text_.casefold())


def decontaminate(texts: Iterable[str], eval_texts: Iterable[str], n: int = 13) -> list[int]:
    """Indices of ``texts`` that share no word ``n``-gram with any of ``eval_texts``.

    Fully Open Meditron's system-wide decontamination (paper 41); ``n = 13`` follows common
    practice ([recon]: the overlap length is not given in the abstract). Words are ``\\w+``
    runs, compared case-insensitively. An evaluation text shorter than ``n`` words counts as
    one n-gram of its own length, so a training text that contains it whole is dropped too.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise MentorError(f"decontaminate.n must be an integer >= 1, got {n!r}")
    check_param("decontaminate", "n", n, low=1)
    banned: dict[int, set[tuple[str, ...]]] = {}
    for ev in eval_texts:
        words = _words(ev)
        if not words:
            continue
        m = min(n, len(words))
        grams = banned.setdefault(m, set())
        for i in range(len(words) - m + 1):
            grams.add(tuple(words[i:i + m]))
    kept: list[int] = []
    for idx, tx in enumerate(texts):
        words = _words(tx)
        hit = False
        for m, grams in banned.items():
            for i in range(len(words) - m + 1):
                if tuple(words[i:i + m]) in grams:
                    hit = True
                    break
            if hit:
                break
        if not hit:
            kept.append(idx)
    return kept

