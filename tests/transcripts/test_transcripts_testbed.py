"""TB-SEQ transcripts: determinism, the splits and shares, the languages' token maps, and
bad data refused in one sentence."""

import dataclasses

import pytest
import torch

from mentor.errors import DataError, MentorError
from mentor.transcripts import from_lists, tb_seq


@pytest.fixture(scope="module")
def data():
    return tb_seq(600, seed=4)


def test_same_seed_same_testbed_other_seed_other(data):
    again = tb_seq(600, seed=4)
    assert torch.equal(data.frames, again.frames) and torch.equal(data.tokens, again.tokens)
    assert torch.equal(data.labeled, again.labeled)
    assert not torch.equal(tb_seq(600, seed=5).frames[:5], data.frames[:5])


def test_shares_splits_and_transcripts(data):
    counts = torch.bincount(data.language, minlength=3).tolist()
    assert counts == [420, 150, 30]
    rare_lab, rare_pool = data.ids("labeled", 2), data.ids("unlabeled", 2)
    assert len(data.ids("test", 2)) == 6 and len(data.ids("val", 2)) == 6
    assert len(rare_lab) == 1 and len(rare_pool) == 17
    everything = torch.cat([data.ids(s) for s in ("labeled", "unlabeled", "val", "test")])
    assert sorted(everything.tolist()) == list(range(600))
    assert int(data.token_lengths.min()) >= 3 and int(data.token_lengths.max()) <= 8
    for i in range(600):
        t = data.transcript(i)
        assert all(1 <= x <= 10 for x in t) and all(a != b for a, b in zip(t, t[1:]))
        assert 2 * len(t) <= int(data.frame_lengths[i]) <= 5 * len(t)
        assert float(data.frames[i, int(data.frame_lengths[i]):].abs().sum()) == 0.0


def test_languages_share_part_of_their_token_sounds():
    d = tb_seq(3000, seed=0, noise=0.0, silence=0.0, accent=0.0, distortion=0.0,
               min_frames=1, max_frames=1)
    sound = {}
    for i in range(len(d.frames)):
        lang = int(d.language[i])
        for j, tok in enumerate(d.transcript(i)):
            sound[(lang, tok)] = d.frames[i, j]
    for lang, pairs in ((1, 2), (2, 4)):
        moved = [t for t in range(1, 11) if not torch.allclose(sound[(lang, t)], sound[(0, t)])]
        assert len(moved) == 2 * pairs
        for t in moved:  # a swap: the token sounds like another token of language 0
            assert any(torch.allclose(sound[(lang, t)], sound[(0, u)]) for u in moved if u != t)


def test_with_transcripts_replaces_only_the_named_utterances(data):
    ids = data.ids("unlabeled", 2)[:2]
    new = data.with_transcripts(ids, [[1, 2], [3, 4, 5, 6, 7, 8, 9, 10, 1]])
    assert new.transcript(int(ids[0])) == [1, 2]
    assert new.transcript(int(ids[1])) == [3, 4, 5, 6, 7, 8, 9, 10, 1]
    others = [i for i in range(600) if i not in ids.tolist()]
    assert all(new.transcript(i) == data.transcript(i) for i in others)


def _one(frames=None, transcripts=None, languages=None, **kw):
    return from_lists(frames if frames is not None else [torch.zeros(4, 3)],
                      transcripts if transcripts is not None else [[1, 2]],
                      languages if languages is not None else [0],
                      vocab=kw.get("vocab", 5), num_languages=2, splits={"test": [0]})


def test_bad_data_raises_one_sentence(data):
    with pytest.raises(DataError, match="token 1 of utterance 0 is 6; expected a token id "
                                        "in 1..5"):
        _one(transcripts=[[1, 6]])
    with pytest.raises(DataError, match="utterance 0 is empty \\(4 frames, 0 tokens\\)"):
        _one(transcripts=[[]])
    with pytest.raises(DataError, match="utterance 0 has frames of shape \\(0, 3\\)"):
        _one(frames=[torch.zeros(0, 3)])
    with pytest.raises(DataError, match="frames has 1 utterances but transcripts has 2"):
        _one(transcripts=[[1], [2]])
    with pytest.raises(DataError, match="utterance 0 has 1 frames for 2 tokens"):
        _one(frames=[torch.zeros(1, 3)])
    with pytest.raises(DataError, match="utterance 0 has language 2; expected a language id "
                                        "in 0..1"):
        _one(languages=[2])
    with pytest.raises(DataError, match="language is 3; expected a language id in 0..2"):
        data.ids("val", 3)
    with pytest.raises(DataError, match="transcripts has 1 entries for 2 utterances"):
        data.with_transcripts(data.val[:2], [[1]])
    with pytest.raises(DataError, match="token 0 of utterance"):
        data.with_transcripts(data.val[:1], [[11]])
    with pytest.raises(DataError, match="names utterance 600"):
        dataclasses.replace(data, test=torch.tensor([600]))
    with pytest.raises(MentorError, match="shares is"):
        tb_seq(100, shares=(0.5, 0.4, 0.2))
