"""The ``token_topk`` label-store kind: a language-model teacher's per-position top-k token
log-probabilities, written with ``write_store`` and read back from disk."""

from __future__ import annotations

import pyarrow as pa
import pytest
import torch
from labelkit import read_shard

from mentor.errors import MentorError, ParameterError
from mentor.labels import LabelStore, StoreTeacher, write_store
from mentor.labels.kinds import TokenTopK, kind_from_manifest, make_kind
from mentor.teachers import ModuleTeacher

VOCAB, SEQ, K = 50, 12, 5


class TinyLM(torch.nn.Module):
    """Token ids (B, L) -> next-token logits (B, L, V): embedding, a causal running mean,
    an output layer scaled for peaked distributions."""

    def __init__(self, vocab: int = VOCAB, width: int = 16):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.out = torch.nn.Linear(width, vocab)

    def forward(self, ids):
        h = self.embed(ids).cumsum(1) / torch.arange(1, ids.shape[1] + 1)[:, None]
        return 4.0 * self.out(torch.tanh(h))


@pytest.fixture(scope="module")
def lm():
    torch.manual_seed(0)
    return ModuleTeacher(TinyLM(), VOCAB, description="tiny lm")


@pytest.fixture(scope="module")
def ids():
    return torch.randint(0, VOCAB, (70, SEQ), generator=torch.Generator().manual_seed(1))


def test_round_trip_through_a_store_on_disk(tmp_path, lm, ids):
    kind = make_kind("token_topk", vocab_size=VOCAB, seq_len=SEQ, k=K)
    out = write_store(lm, ids, tmp_path / "store", kind, shard_samples=32, batch_size=16)
    assert len(list(out.glob("shard-*.arrow"))) == 3  # 32 + 32 + 6 samples
    table = read_shard(out / "shard-00000.arrow")  # plain Arrow on disk
    assert table.schema.field("topk_index").type == pa.list_(pa.int32(), SEQ * K)
    assert table.schema.field("topk_logprob").type == pa.list_(pa.float32(), SEQ * K)

    store = LabelStore.open(out, teacher=lm, data=ids)  # reopened, verified, fingerprints
    assert isinstance(store.kind, TokenTopK)
    assert (store.kind.vocab_size, store.kind.seq_len, store.kind.k) == (VOCAB, SEQ, K)
    index, logprob = store.outputs()
    assert index.shape == logprob.shape == (len(ids), 1, SEQ, K)
    assert index.dtype == torch.int64 and logprob.dtype == torch.float32

    rows = torch.tensor([0, 5, 31, 32, 69])  # across the shards
    ref = torch.log_softmax(lm.logits(ids[rows]).double(), -1)
    want_lp, want_ix = ref.topk(K, -1)
    top = ref.topk(K + 1, -1).values  # no near-ties: the top-k order is well defined
    assert float((top[..., :-1] - top[..., 1:]).min()) > 1e-4
    assert torch.equal(index[rows, 0], want_ix)
    torch.testing.assert_close(logprob[rows, 0], want_lp.float(), rtol=1e-5, atol=1e-5)
    assert bool((logprob[..., :-1] >= logprob[..., 1:]).all())  # sorted per position

    tail = 1.0 - logprob.double().exp().sum(-1)
    assert bool(((tail >= 0) & (tail <= 1)).all())
    assert float(tail.max()) > 0.01  # k < V leaves real mass outside the top k


def test_decoded_batch_without_a_store():
    kind = TokenTopK(VOCAB, SEQ, K)
    z = torch.randn(3, SEQ, VOCAB)
    index, logprob = kind.decode(pa.table(kind.encode(z)))
    want_lp, want_ix = torch.log_softmax(z, -1).topk(K, -1)
    assert torch.equal(index, want_ix)
    torch.testing.assert_close(logprob, want_lp)
    full = TokenTopK(VOCAB, SEQ, VOCAB)  # k = V keeps the whole distribution
    _, lp = full.decode(pa.table(full.encode(z)))
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(3, SEQ))

    class Output:  # a Hugging Face CausalLMOutput carries .logits
        logits = z
    assert torch.equal(kind.decode(pa.table(kind.encode(Output())))[0], index)


def test_manifest_round_trip_and_make_kind():
    kind = make_kind("token_topk", num_classes=VOCAB, seq_len=SEQ, k=K)  # num_classes = vocab
    d = kind.describe()
    assert d == {"kind": "token_topk", "vocab_size": VOCAB, "seq_len": SEQ, "k": K}
    assert kind_from_manifest(d).describe() == d


@pytest.mark.parametrize("kwargs,error,match", [
    ({"k": 0}, MentorError, r"token_topk k 0 is out of range; expected 1\.\.50"),
    ({"k": VOCAB + 1}, MentorError, r"k 51 is out of range; expected 1\.\.50"),
    ({"seq_len": 0}, ParameterError, "token_topk.seq_len must be >= 1, got 0"),
    ({"vocab_size": 0}, ParameterError, "token_topk.vocab_size must be >= 1, got 0"),
    ({"seq_len": 2.5}, MentorError, "token_topk.seq_len must be an integer, got 2.5"),
    ({"seq_len": None}, MentorError, "kind 'token_topk' needs seq_len"),
    ({"k": None}, MentorError, "kind 'token_topk' needs k"),
])
def test_bad_parameters(kwargs, error, match):
    args = {"vocab_size": VOCAB, "seq_len": SEQ, "k": K, **kwargs}
    with pytest.raises(error, match=match):
        make_kind("token_topk", **args)


def test_outputs_of_the_wrong_shape(tmp_path, lm, ids):
    kind = TokenTopK(VOCAB, SEQ + 1, K)
    with pytest.raises(MentorError, match=r"outputs have shape \(16, 12, 50\); expected "
                                          r"\(batch, 13, 50\)"):
        kind.encode(torch.zeros(16, SEQ, VOCAB))
    with pytest.raises(MentorError, match="expected"):
        write_store(lm, ids, tmp_path / "bad", kind)


def test_a_token_store_is_not_a_class_teacher(tmp_path, lm, ids):
    out = write_store(lm, ids[:8], tmp_path / "s", TokenTopK(VOCAB, SEQ, 2))
    with pytest.raises(MentorError, match="kind 'token_topk' holds no class outputs"):
        StoreTeacher(LabelStore.open(out))
