"""CompletionsClient against a local completions server (loopback, a thread) that serves a
seeded CharLM in vLLM's echo + logprobs shape (``return_tokens_as_token_ids``)."""

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from mentor.errors import MentorError
from mentor.lm import Addition, CharLM, CompletionsClient, LocalTeacher, ServedTeacher, distill_lm
from mentor.lm.generate import complete
from mentor.lm.testbed import VOCAB

V = len(VOCAB)
K = 4


def tid(i):
    return f"token_id:{i}"


class TeacherServer:
    """``POST /v1/completions`` answered by ``model``; ``fail`` first answers are HTTP
    ``fail_code``, each answer waits ``sleep`` seconds, ``mutate(response)`` may spoil it."""

    def __init__(self, model, *, fail=0, fail_code=500, sleep=0.0, mutate=None):
        self.model, self.fail, self.fail_code = model, fail, fail_code
        self.sleep, self.mutate = sleep, mutate
        self.hits, self.bodies = 0, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.hits += 1
                server.bodies.append(body)
                if server.sleep:
                    time.sleep(server.sleep)
                if self.path != "/v1/completions":
                    return self._send(404, b'{"error": "not found"}')
                if server.fail > 0:
                    server.fail -= 1
                    return self._send(server.fail_code, b'{"error": "busy"}')
                out = server.answer(body)
                if server.mutate is not None:
                    out = server.mutate(out)
                self._send(200, out if isinstance(out, bytes) else json.dumps(out).encode())

            def _send(self, code, data):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    @torch.no_grad()
    def answer(self, body):
        choices = []
        for i, ids in enumerate(body["prompt"]):
            if body["echo"]:
                choices.append({"index": i, "text": "", "logprobs": self._echo(ids, body)})
            else:
                choices.append({"index": i, "text": "", "logprobs": self._gen(ids, body)})
        return {"id": "cmpl-test", "object": "text_completion", "model": body["model"],
                "choices": choices, "usage": {}}

    def _top(self, lp, actual, k):
        """vLLM's dict: the actual token first, then the top k (k + 1 entries when the actual
        token is not among them)."""
        vals, idx = lp.topk(k)
        entry = {tid(actual): float(lp[actual])}
        entry.update({tid(int(j)): float(v) for v, j in zip(vals, idx)})
        return entry

    def _echo(self, ids, body):
        assert body["max_tokens"] == 1 and body["temperature"] == 0
        lp = torch.log_softmax(self.model(torch.tensor([ids]))[0].float(), -1)
        gen = int(lp[-1].argmax())
        top = [None] + [self._top(lp[j - 1], ids[j], body["logprobs"]) for j in range(1, len(ids))]
        top.append(self._top(lp[-1], gen, body["logprobs"]))
        return {"tokens": [tid(t) for t in ids + [gen]], "top_logprobs": top,
                "token_logprobs": [None] + [e[tid(t)] for e, t in zip(top[1:], ids[1:] + [gen])],
                "text_offset": list(range(len(ids) + 1))}

    def _gen(self, ids, body):
        out = complete(self.model, torch.tensor([ids]), body["max_tokens"])[0, len(ids):]
        return {"tokens": [tid(int(t)) for t in out], "top_logprobs": None}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return CharLM(V, d_model=16).eval()


@pytest.fixture
def server(model):
    s = TeacherServer(model)
    yield s
    s.close()


def client_for(server, **kw):
    kw = {"k": K, "vocab_size": V, "retries": 2, "backoff_s": 0.001, "timeout_s": 5.0, **kw}
    return CompletionsClient(server.url, "teacher", **kw)


def sequences(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, V, (int(torch.randint(2, 9, (1,), generator=g)),),
                          generator=g).tolist() for _ in range(n)]


def one_sentence(e):
    msg = str(e.value)
    assert "\n" not in msg and msg.count("; expected") == 1, msg
    return msg


# ------------------------------------------------------------------ (1) the right numbers
@torch.no_grad()
def test_top_k_is_the_models_top_k_at_every_position_the_last_included(model, server):
    seqs = sequences(6)
    out = client_for(server)(seqs)
    assert [len(o) for o in out] == [len(s) for s in seqs]
    for s, o in zip(seqs, out):
        lp = torch.log_softmax(model(torch.tensor([s]))[0], -1)
        vals, idx = lp.topk(K)
        for t in range(len(s)):  # position t: the distribution of token t + 1
            assert [p[0] for p in o[t]] == idx[t].tolist()
            assert torch.allclose(torch.tensor([p[1] for p in o[t]]), vals[t], atol=1e-6)
    body = server.bodies[0]
    assert body["echo"] is True and body["logprobs"] == K and body["max_tokens"] == 1
    assert body["return_tokens_as_token_ids"] is True and body["temperature"] == 0


@torch.no_grad()
def test_served_teacher_signal_equals_the_local_teachers_top_k(model, server):
    ids = torch.randint(0, V, (5, 7), generator=torch.Generator().manual_seed(1))
    sig = ServedTeacher(client_for(server), k=K, vocab_size=V).signal(ids)
    local = torch.log_softmax(LocalTeacher(model).signal(ids), -1).topk(K)
    assert torch.equal(sig.indices, local.indices)
    assert torch.allclose(sig.logprobs, local.values, atol=1e-6)


def test_generate_gives_the_greedy_completion(model, server, tmp_path):
    prompts = torch.randint(0, V, (3, 4), generator=torch.Generator().manual_seed(2))
    client = client_for(server, cache=tmp_path / "c.json")
    assert client.generate(prompts.tolist(), 3) == complete(model, prompts, 3)[:, 4:].tolist()
    assert server.bodies[-1]["max_tokens"] == 3 and server.bodies[-1]["echo"] is False
    assert server.bodies[-1]["temperature"] == 0
    client.generate(prompts.tolist(), 3)  # temperature 0: answered from the cache
    assert server.hits == 1
    sampler = client_for(server, cache=tmp_path / "c.json", temperature=1.0)
    sampler.generate(prompts.tolist(), 3)  # a sample is never taken from the cache
    assert server.hits == 2 and server.bodies[-1]["temperature"] == 1.0


# ------------------------------------------------------------------ (2) batching
@pytest.mark.parametrize("n,b", [(10, 3), (6, 6), (7, 1)])
def test_n_sequences_take_ceil_n_over_b_requests(server, n, b):
    seqs = sequences(n, seed=3)
    client = client_for(server, batch_size=b)
    out = client(seqs)
    assert server.hits == client.requests == math.ceil(n / b)
    assert max(len(body["prompt"]) for body in server.bodies) <= b
    assert client.sequences_sent == n
    assert out == client_for(server, batch_size=100)(seqs)


# ------------------------------------------------------------------ (3) cache and cost
def test_a_second_client_on_the_cache_file_sends_nothing(server, tmp_path):
    seqs, cache = sequences(5, seed=4), tmp_path / "teacher.json"
    first = client_for(server, cache=cache, batch_size=2, cost_per_1k_tokens=2.0)
    out = first(seqs)
    assert server.hits == 3 and first.cache_hits == 0
    assert first.tokens == sum(len(s) + 1 for s in seqs)
    assert first.cost == pytest.approx(2.0 * first.tokens / 1000)
    assert json.loads(cache.read_text())["format"] == "mentor-served-completions-cache"

    second = client_for(server, cache=cache, cost_per_1k_tokens=2.0)
    assert second(seqs) == out
    assert server.hits == 3 and second.requests == 0 and second.cache_hits == 5
    assert second.cost == 0.0
    second(seqs[:2] + sequences(1, seed=5))  # only the new sequence is sent
    assert server.hits == 4 and second.sequences_sent == 1


def test_a_cache_file_of_another_kind_is_one_sentence(server, tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    with pytest.raises(MentorError, match="not a 'mentor-served-completions-cache'") as e:
        client_for(server, cache=bad)
    one_sentence(e)


# ------------------------------------------------------------------ (4) retries
def test_a_killed_server_is_retried_then_one_clear_error(model):
    dead = TeacherServer(model)
    dead.close()
    client = client_for(dead, retries=2)
    with pytest.raises(MentorError, match="after 3 attempts") as e:
        client(sequences(2))
    assert client.attempts == 3 and client.requests == 0
    assert dead.url + "/v1/completions" in one_sentence(e)


def test_a_slow_server_times_out_retries_then_one_clear_error(model):
    slow = TeacherServer(model, sleep=0.5)
    try:
        client = client_for(slow, retries=1, timeout_s=0.1)
        with pytest.raises(MentorError, match="after 2 attempts.*timeout_s 0.1") as e:
            client(sequences(2))
        one_sentence(e)
        assert client.attempts == 2
        time.sleep(0.5)  # let the handlers finish before counting
        assert slow.hits == 2
    finally:
        slow.close()


@pytest.mark.parametrize("code", [500, 503, 429])
def test_two_failures_then_an_answer_succeeds(model, code):
    flaky = TeacherServer(model, fail=2, fail_code=code)
    try:
        client = client_for(flaky, retries=2)
        seqs = sequences(3)
        out = client(seqs)
        assert flaky.hits == 3 and client.attempts == 3 and client.requests == 1
        assert len(out) == 3 and all(len(o) == len(s) for o, s in zip(out, seqs))
    finally:
        flaky.close()


def test_a_client_error_is_not_retried(model):
    picky = TeacherServer(model, fail=5, fail_code=400)
    try:
        client = client_for(picky, retries=3)
        with pytest.raises(MentorError, match="HTTP 400") as e:
            client(sequences(1))
        one_sentence(e)
        assert picky.hits == 1
    finally:
        picky.close()


# ------------------------------------------------------------------ (5) malformed answers
def _first(r):
    return r["choices"][0]["logprobs"]


def _set(fn):
    def mutate(r):
        fn(r)
        return r
    return mutate


MALFORMED = {
    "no choices": (lambda r: {"id": "x"}, "choices"),
    "a choice missing": (_set(lambda r: r["choices"].pop()), "choices"),
    "index repeated": (_set(lambda r: r["choices"][1].update(index=0)), r"choices\[\]\.index"),
    "choices swapped": (_set(lambda r: [c.update(index=1 - c["index"]) for c in r["choices"]]),
                        r"choices\[0\]\.logprobs\.tokens"),
    "no logprobs": (_set(lambda r: r["choices"][0].pop("logprobs")), r"choices\[0\]\.logprobs"),
    "a position short": (_set(lambda r: _first(r)["top_logprobs"].pop()), "top_logprobs"),
    "not a number": (_set(lambda r: _first(r)["top_logprobs"][2].update({tid(1): "low"})),
                     "finite log-probability"),
    "NaN": (_set(lambda r: _first(r)["top_logprobs"][2].update({tid(1): float("nan")})),
            "finite log-probability"),
    "positive": (_set(lambda r: _first(r)["top_logprobs"][2].update({tid(1): 0.5})),
                 "log-probability <= 0"),
    "token text": (_set(lambda r: _first(r)["top_logprobs"][2].update({"a": -1.0})),
                   "return_tokens_as_token_ids"),
    "beyond vocab": (_set(lambda r: _first(r)["top_logprobs"][2].update({tid(V + 3): -9.0})),
                     "below the vocabulary size"),
    "fewer than k": (_set(lambda r: _first(r)["top_logprobs"].__setitem__(2, {tid(0): -1.0})),
                     "at least k=4"),
    "not JSON": (lambda r: b"<html>oops</html>", "not JSON"),
}


@pytest.mark.parametrize("kind", MALFORMED)
def test_a_malformed_answer_is_one_sentence_and_caches_nothing(model, tmp_path, kind):
    mutate, field = MALFORMED[kind]
    cache = tmp_path / "teacher.json"
    good = TeacherServer(model)
    try:
        client_for(good, cache=cache)(sequences(2, seed=6))
    finally:
        good.close()
    before = cache.read_bytes()
    bad = TeacherServer(model, mutate=mutate)
    try:
        client = client_for(bad, cache=cache)
        with pytest.raises(MentorError, match=field) as e:
            client([[1, 2, 3, 4], [5, 6, 7, 8]])  # one length: only the echo tells them apart
        msg = one_sentence(e)
        assert bad.url in msg
        assert bad.hits == 1  # malformed answers are not retried
        assert cache.read_bytes() == before
    finally:
        bad.close()


# ------------------------------------------------------------------ (6) end to end
def test_distill_lm_off_policy_from_the_served_teacher(server):
    train, _, _ = Addition(digits=1).split(0, val=20, test=20)
    client = client_for(server, batch_size=8)
    teacher = ServedTeacher(client, k=K, vocab_size=V)
    torch.manual_seed(0)
    res = distill_lm(CharLM(V, d_model=16), teacher, train, regime="off_policy", steps=3,
                     batch_size=16, eval_every=3)
    assert len(res.losses) == 3 and all(math.isfinite(x) for x in res.losses)
    assert 3 <= client.requests == server.hits and client.sequences_sent <= 3 * 16
