"""LLMLabeler pipeline (METHODS.md §59.9): prompt templates, output parsers, the label cache,
retries and stats, the deterministic stub backend, Meditron's gold-agreement resampling and
n-gram decontamination."""

import json
import random

import pytest

from mentor.errors import MentorError, ParameterError
from mentor.lm.labeler import (PARSERS, LabelCache, LLMLabeler, ParseFailure, PromptTemplate,
                               StubBackend, cache_key, choice, decontaminate, json_field,
                               make_parser, number, regex, sample_until_agrees, text)

ADD = PromptTemplate("Compute {a}+{b}. End with 'the answer is N'.")


def _add_rule(fields):
    return f"{fields['a']} plus {fields['b']}: the answer is {int(fields['a']) + int(fields['b'])}"


def _items(n, start=0):
    return [{"a": i, "b": 2 * i + 1} for i in range(start, start + n)]


# --- templates ---------------------------------------------------------------------------------

def test_template_renders_named_fields_with_specs_and_braces():
    t = PromptTemplate("{{json}} {name!r} scored {score:.2f} -- {name}")
    assert t.fields == ("name", "score")
    assert t.render({"name": "ann", "score": 0.5}) == "{json} 'ann' scored 0.50 -- ann"
    assert t({"name": "b", "score": 1}) == "{json} 'b' scored 1.00 -- b"


def test_template_missing_and_unknown_fields_are_one_sentence_errors():
    t = PromptTemplate("Q: {question}", fields=("question",))
    with pytest.raises(MentorError, match="'question' is missing"):
        t.render({"query": "x"})
    with pytest.raises(MentorError, match="'id' is not a field"):
        t.render({"question": "x", "id": 3})
    assert PromptTemplate("Q: {question}", allow_extra=True).render(
        {"question": "x", "id": 3}) == "Q: x"
    with pytest.raises(MentorError, match="'score' value 'abc' does not fit"):
        PromptTemplate("{score:.2f}").render({"score": "abc"})
    with pytest.raises(MentorError) as err:
        t.render({})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("bad", ["{x.attr}", "{x[0]}", "{}", "{0}", "{x:{w}}", "a } b", "{x"])
def test_template_rejects_object_access_positional_and_malformed(bad):
    with pytest.raises(MentorError):
        PromptTemplate(bad)


def test_template_declared_fields_must_match_text():
    with pytest.raises(MentorError, match="'b' is used in the text but not declared"):
        PromptTemplate("{a} {b}", fields=("a",))
    with pytest.raises(MentorError, match="'c' is declared in fields but not used"):
        PromptTemplate("{a}", fields=("a", "c"))


def test_template_match_inverts_render():
    t = PromptTemplate("x={x}; y={y}; again x={x}")
    assert t.match(t.render({"x": "12", "y": "a b"})) == {"x": "12", "y": "a b"}
    assert t.match("something else") is None


# --- parsers ------------------------------------------------------------------------------------

def test_choice_parser_word_boundaries_case_ambiguity_default():
    p = choice(["harmful", "not harmful", "unsure"])
    assert p("Verdict: HARMFUL.") == "harmful"
    assert p("This is not harmful at all") == "not harmful"  # longer label wins its span
    assert p("harmful... yes, harmful") == "harmful"  # same label twice is fine
    assert isinstance(p("harmless chatter"), ParseFailure)  # word boundary
    amb = p("harmful or unsure")
    assert isinstance(amb, ParseFailure) and "ambiguous" in amb.reason
    assert amb.raw == "harmful or unsure"
    assert choice(["yes", "no"], default="no")("maybe") == "no"
    assert isinstance(choice(["yes", "no"], default="no")("yes and no"), ParseFailure)
    assert choice(["A)", "B)"])("I pick b) here") == "B)"
    assert isinstance(choice(["Yes", "No"], ignore_case=False)("yes"), ParseFailure)
    with pytest.raises(MentorError, match="twice"):
        choice(["Yes", "yes"])
    with pytest.raises(MentorError):
        choice("yes")


def test_number_parser_takes_the_last_number():
    p = number()
    assert p("12 + 7: first 12, then add 7, so the answer is 19.") == 19
    assert isinstance(p("... the answer is 19"), int)
    assert p("pi is about 3.14") == pytest.approx(3.14)
    assert p("total -42") == -42
    assert p("pages 3-5") == 5
    assert p("about 1,234,567 people") == 1234567
    assert p("rate 2.5e-3") == pytest.approx(2.5e-3)
    assert p("value .5") == pytest.approx(0.5)
    fail = p("no digits here")
    assert isinstance(fail, ParseFailure) and fail.raw == "no digits here"


def test_json_field_parser():
    p = json_field("total")
    assert p('Sure! ```json\n{"vendor": "ACME", "total": 12.5, "items": {"n": 2}}\n```') == 12.5
    assert p('noise {not json} then {"total": "7"} end') == "7"
    assert isinstance(p('{"vendor": "ACME"}'), ParseFailure)
    assert isinstance(p("{broken"), ParseFailure)
    assert isinstance(p("no object"), ParseFailure)


def test_regex_parser():
    p = regex(r"label:\s*(\w+)")
    assert p("... label: spam") == "spam"
    assert isinstance(p("nothing"), ParseFailure)
    assert regex(r"(?P<ans>\d+)$", group="ans")("x 12") == "12"
    assert isinstance(regex(r"(a)|(b)", group=2)("a"), ParseFailure)
    with pytest.raises(MentorError, match="not a valid regular expression"):
        regex("(unclosed")
    with pytest.raises(MentorError, match="group"):
        regex(r"(a)", group=3)
    with pytest.raises(MentorError, match="not a named group"):
        regex(r"(a)", group="x")


def test_parser_registry():
    assert set(PARSERS) >= {"choice", "number", "json_field", "regex", "text"}
    assert make_parser("choice", labels=["a", "b"])("b!") == "b"
    assert make_parser("number")("is 4") == 4
    assert text()("  anchor  ") == "anchor"
    assert isinstance(text()("   "), ParseFailure)
    with pytest.raises(MentorError, match="'nope' is not known"):
        make_parser("nope")
    with pytest.raises(MentorError, match="does not take"):
        make_parser("number", labels=[1])


# --- labeler, cache, stats ----------------------------------------------------------------------

def test_label_parses_and_second_call_is_served_from_cache(tmp_path):
    stub = StubBackend(_add_rule, template=ADD)
    lab = LLMLabeler(stub, ADD, number(), cache=LabelCache(tmp_path / "c.json"),
                     cost_per_query=0.25)
    items = _items(10)
    assert lab.label(items) == [3 * i + 1 for i in range(10)]
    assert stub.calls == 10
    assert lab.label(items) == [3 * i + 1 for i in range(10)]
    assert stub.calls == 10  # 0 new backend calls
    s = lab.stats
    assert (s.items, s.calls, s.cache_hits, s.parse_failures, s.unparsed) == (20, 10, 10, 0, 0)
    assert s.cost == pytest.approx(2.5) and lab.cost_per_query == 0.25
    assert s.as_dict()["cost"] == pytest.approx(2.5)


def test_cache_survives_a_new_labeler_and_file_is_valid(tmp_path):
    path = tmp_path / "sub" / "cache.json"
    stub = StubBackend(_add_rule, template=ADD)
    LLMLabeler(stub, ADD, number(), cache=path).label(_items(5))
    data = json.loads(path.read_text())  # flushed at the end of label(), valid JSON
    assert data["format"] == "mentor.label_cache" and len(data["entries"]) == 5
    prompt = ADD.render(_items(1)[0])
    assert data["entries"][cache_key("stub", prompt)] == _add_rule({"a": "0", "b": "1"})
    assert not list(path.parent.glob("*.tmp"))  # no temp file left behind

    stub2 = StubBackend(_add_rule, template=ADD)
    again = LLMLabeler(stub2, ADD, number(), cache=LabelCache(path))
    assert again.label(_items(7)) == [3 * i + 1 for i in range(7)]
    assert stub2.calls == 2 and again.stats.cache_hits == 5
    # a different model id is a different key: nothing is shared
    other = LLMLabeler(stub2, ADD, number(), cache=path, model_id="gpt-x")
    other.label(_items(2))
    assert stub2.calls == 4


def test_cache_flush_and_context_manager(tmp_path):
    path = tmp_path / "c.json"
    key = cache_key("m", "p")
    with LabelCache(path) as c:
        c.put(key, "reply")
        assert c.dirty and key in c and len(c) == 1
    assert not c.dirty
    assert LabelCache(path).get(key) == "reply"
    mem = LabelCache()
    mem.put(key, "r")
    mem.flush()
    assert mem.get(key) == "r" and mem.path is None
    with pytest.raises(MentorError, match="not a sha256"):
        mem.put("short", "r")


@pytest.mark.parametrize("content", ["", "{not json", "[1, 2]", '{"entries": {}}',
                                     '{"format": "mentor.label_cache", "version": 1, '
                                     '"entries": {"abc": "x"}}',
                                     '{"format": "mentor.label_cache", "version": 9, '
                                     '"entries": {}}'])
def test_corrupt_cache_file_is_one_sentence_error(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(MentorError) as err:
        LabelCache(path)
    assert "bad.json" in str(err.value) and "\n" not in str(err.value)


def test_cache_write_failure_leaves_old_file(tmp_path, monkeypatch):
    path = tmp_path / "c.json"
    c = LabelCache(path)
    c.put(cache_key("m", "a"), "one")
    c.flush()
    before = path.read_text()
    c.put(cache_key("m", "b"), "two")

    def boom(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr("mentor.lm.labeler.json.dumps", boom)
    with pytest.raises(OSError):
        c.flush()
    assert path.read_text() == before
    assert not list(tmp_path.glob("*.tmp"))


def test_retries_recover_a_reply_that_parses_on_the_second_try():
    asked = {}

    def flaky(prompt):
        asked[prompt] = asked.get(prompt, 0) + 1
        return "hmm, let me think" if asked[prompt] == 1 else "the answer is 5"

    lab = LLMLabeler(flaky, "Q{i}", number(), retries=1, cache=LabelCache())
    assert lab.label([{"i": 1}, {"i": 2}]) == [5, 5]
    assert (lab.stats.calls, lab.stats.parse_failures, lab.stats.unparsed) == (4, 2, 0)

    asked.clear()
    no_retry = LLMLabeler(flaky, "Q{i}", number(), cache=LabelCache())
    out = no_retry.label([{"i": 1}])
    assert isinstance(out[0], ParseFailure) and out[0].raw == "hmm, let me think"
    assert (no_retry.stats.calls, no_retry.stats.unparsed) == (1, 1)
    assert len(no_retry.cache) == 0  # failures are not cached: a later run asks again
    assert no_retry.label([{"i": 1}]) == [5]


def test_cached_reply_that_no_longer_parses_is_asked_again():
    cache = LabelCache()
    cache.put(cache_key("stub", "Q1"), "no number in this old reply")
    calls = []
    lab = LLMLabeler(lambda p: calls.append(p) or "it is 7", "Q{i}", number(), cache=cache)
    assert lab.label([{"i": 1}]) == [7]
    assert calls == ["Q1"] and lab.stats.cache_hits == 0
    assert cache.get(cache_key("stub", "Q1")) == "it is 7"


def test_label_flushes_paid_replies_when_backend_raises(tmp_path):
    def backend(prompt):
        if prompt == "Q3":
            raise RuntimeError("rate limited")
        return "the answer is 1"

    path = tmp_path / "c.json"
    lab = LLMLabeler(backend, "Q{i}", "number", cache=path)
    with pytest.raises(RuntimeError):
        lab.label([{"i": i} for i in range(5)])
    assert len(LabelCache(path)) == 3


def test_labeler_argument_errors():
    with pytest.raises(MentorError, match="backend"):
        LLMLabeler("not callable", "Q{i}", number())
    with pytest.raises(ParameterError, match="retries"):
        LLMLabeler(str, "Q{i}", number(), retries=-1)
    with pytest.raises(ParameterError, match="cost_per_query"):
        LLMLabeler(str, "Q{i}", number(), cost_per_query=-1.0)
    with pytest.raises(MentorError, match="cost_per_query must be a finite number"):
        LLMLabeler(str, "Q{i}", number(), cost_per_query="free")
    with pytest.raises(MentorError, match="must return the reply as a str"):
        LLMLabeler(lambda p: 3, "Q{i}", number()).label([{"i": 1}])
    with pytest.raises(MentorError, match="sequence of items"):
        LLMLabeler(str, "Q{i}", number()).label({"i": 1})
    calls = []
    lab = LLMLabeler(lambda p: calls.append(p) or "1", "Q{i}", number())
    with pytest.raises(MentorError, match="'i' is missing"):
        lab.label([{"i": 1}, {"j": 2}])
    assert calls == []  # every prompt is rendered before the first paid call


# --- stub backend ---------------------------------------------------------------------------

def test_stub_backend_is_deterministic_and_counts_calls():
    a = StubBackend(_add_rule, template=ADD, noise=0.3, seed=1)
    b = StubBackend(_add_rule, template=ADD, noise=0.3, seed=1)
    prompts = [ADD.render(it) for it in _items(50)]
    first = [a(p) for p in prompts]
    assert first == [a(p) for p in prompts] == [b(p) for p in prompts]
    assert a.calls == 100 and b.calls == 50
    c = StubBackend(_add_rule, template=ADD, noise=0.3, seed=2)
    assert [c(p) for p in prompts] != first
    clean = StubBackend(lambda p: p.upper())
    assert clean("abc") == "ABC"
    with pytest.raises(MentorError, match="does not fit its template"):
        a("unrelated prompt")
    with pytest.raises(ParameterError, match="noise"):
        StubBackend(str, noise=1.5)


@pytest.mark.parametrize("noise", [0.1, 0.3])
def test_stub_noise_rate_close_to_requested(noise):
    stub = StubBackend(_add_rule, template=ADD, noise=noise, seed=0)
    lab = LLMLabeler(stub, ADD, number())
    items = _items(1000)
    got = lab.label(items)
    wrong = sum(1 for it, g in zip(items, got) if g != it["a"] + it["b"])
    assert abs(wrong / 1000 - noise) < 0.04
    malformed = sum(isinstance(g, ParseFailure) for g in got)
    assert 0.3 < malformed / wrong < 0.7  # malformed=0.5: half refusals, half wrong numbers
    assert lab.stats.unparsed == malformed


def test_stub_wrong_choice_and_resampling():
    labels = ["cat", "dog", "bird"]
    stub = StubBackend(lambda p: labels[len(p) % 3], noise=1.0, malformed=0.0, choices=labels)
    for p in ["x", "xy", "xyz", "long prompt"]:
        r = stub(p)
        assert r in labels and r != labels[len(p) % 3]
    # temperature 0: re-asking a corrupted prompt gives the same reply; resample=True may not
    fixed = StubBackend(lambda p: "the answer is 4", noise=0.5, seed=3)
    sampled = StubBackend(lambda p: "the answer is 4", noise=0.5, seed=3, resample=True)
    prompts = [f"p{i}" for i in range(40)]
    assert all(len({fixed(p) for _ in range(3)}) == 1 for p in prompts)
    assert any(len({sampled(p) for _ in range(3)}) > 1 for p in prompts)


# --- Meditron: gold-agreement resampling, decontamination -------------------------------------

def _noisy_generator(question_id, wrong_rate=0.3):
    """A teacher writing worked solutions whose final answer is wrong 30 % of the time."""
    gold = question_id % 17

    def generate(attempt):
        rng = random.Random(question_id * 1000 + attempt)
        ans = gold if rng.random() >= wrong_rate else gold + rng.randint(1, 5)
        return f"Step by step ... the answer is {ans}"
    return generate, gold


def test_sample_until_agrees_raises_share_of_correct_answers():
    extract = number()
    plain = kept = correct_plain = 0
    for q in range(500):
        gen, gold = _noisy_generator(q)
        plain += 1
        correct_plain += extract(gen(0)) == gold
        out = sample_until_agrees(gen, gold, extract, tries=4)
        if out is not None:
            kept += 1
            assert extract(out) == gold
    assert 0.62 < correct_plain / plain < 0.78  # ~0.7 without resampling
    assert kept / 500 > 0.97  # 1 - 0.3**4 ~ 0.99 of questions keep a correct answer


def test_sample_until_agrees_gives_none_after_tries_and_counts_attempts():
    seen = []

    def always_wrong(attempt):
        seen.append(attempt)
        return "the answer is 3"

    assert sample_until_agrees(always_wrong, 4, number(), tries=3) is None
    assert seen == [0, 1, 2]
    assert sample_until_agrees(lambda a: "nothing", 4, number()) is None  # ParseFailure != gold
    with pytest.raises(ParameterError, match="tries"):
        sample_until_agrees(always_wrong, 4, number(), tries=0)


def test_decontaminate_removes_planted_duplicates():
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(300)]
    train = [" ".join(rng.choice(vocab) for _ in range(40)) for _ in range(60)]
    evals = [" ".join(rng.choice(vocab) for _ in range(30)) for _ in range(10)]
    planted = {5: evals[0], 17: evals[3], 42: evals[9]}
    for idx, ev in planted.items():  # a 15-word slice of an eval text inside a training text
        words = train[idx].split()
        train[idx] = " ".join(words[:10] + ev.upper().split()[5:20] + words[10:])
    kept = decontaminate(train, evals, n=13)
    assert set(range(60)) - set(kept) == set(planted)
    assert kept == sorted(kept)
    # a 12-word overlap is below n=13
    near = " ".join(evals[1].split()[:12])
    assert decontaminate([near + " unrelated tail words"], evals, n=13) == [0]
    # an eval text shorter than n counts whole
    assert decontaminate(["the quick brown fox jumps", "a b c"], ["Quick, brown fox!"]) == [1]
    with pytest.raises(ParameterError, match="n"):
        decontaminate(train, evals, n=0)
