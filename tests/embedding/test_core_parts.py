"""CORE-ReID's part views (METHODS.md §43): the part blocks of an input against naive
slicing, the part-structured testbed TB-REID-PARTS (a part's position of the feature map
reads its own block only; occlusion; the source stream leaves the target unchanged) and
bad input in one sentence."""

import pytest
import torch

from mentor.embedding import PartEmbedder, split_parts, tb_reid_parts
from mentor.errors import DataError, MentorError


def test_split_parts_matches_naive_slicing():
    x = torch.arange(2 * 12, dtype=torch.float64).reshape(2, 12)
    for parts in (1, 2, 3, 4):
        got = split_parts(x, parts)
        w = 12 // parts
        assert len(got) == parts
        for p, block in enumerate(got):
            want = [[x[r, c].item() for c in range(12) if p * w <= c < (p + 1) * w]
                    for r in range(2)]
            assert block.tolist() == want
    with pytest.raises(DataError, match="divisible by parts"):
        split_parts(x, 5)


def test_a_feature_map_position_reads_its_own_part_only():
    torch.manual_seed(0)
    net = PartEmbedder(8, parts=2, hidden=6, channels=4, classes=3).eval()
    x = torch.randn(5, 8)
    fx = net.feature_map(x)
    assert fx.shape == (5, 4, 2)
    for p in (0, 1):
        y = x.clone()
        y[:, 4 * p:4 * (p + 1)] += torch.randn(5, 4)  # change part p only
        fy = net.feature_map(y)
        assert torch.equal(fx[:, :, 1 - p], fy[:, :, 1 - p])
        assert not torch.equal(fx[:, :, p], fy[:, :, p])
    out = net(x)
    assert [v.shape for v in out["views"]] == [(5, 4)] * 3
    assert out["logits"].shape == (5, 3) and [e.shape for e in out["embeds"]] == [(5, 4)] * 2


def test_parts_testbed_is_deterministic_and_the_source_leaves_the_target_unchanged():
    kw = dict(train_identities=10, val_identities=4, test_identities=4,
              samples_per_identity=6)
    a, b = tb_reid_parts(seed=3, **kw), tb_reid_parts(seed=3, **kw)
    assert torch.equal(a.x, b.x) and torch.equal(a.query, b.query)
    s = tb_reid_parts(seed=3, source_identities=5, **kw)
    n = len(a.x)
    assert torch.equal(s.x[:n], a.x) and len(s.source) == 30
    assert set(s.identity[s.source].tolist()).isdisjoint(s.identity[:n].tolist())


def test_occlusion_replaces_exactly_one_parts_identity_by_a_random_draw():
    kw = dict(seed=0, train_identities=10, val_identities=4, test_identities=4,
              samples_per_identity=6, camera_shift=0.0, noise=0.0, nuisance=0.0)
    clean = split_parts(tb_reid_parts(occlusion=0.0, **kw).x)
    hidden = split_parts(tb_reid_parts(occlusion=1.0, **kw).x)
    same = torch.stack([(c == h).all(1) for c, h in zip(clean, hidden)], 1)
    assert same.sum(1).tolist() == [1] * len(same)  # one block kept, one replaced
    for p in (0, 1):  # the replaced blocks are random draws, no two alike
        off = hidden[p][~same[:, p]]
        assert len(torch.unique(off, dim=0)) == len(off)


def test_bad_parameters_raise_one_sentence():
    with pytest.raises(MentorError, match="occlusion"):
        tb_reid_parts(occlusion=1.5)
    with pytest.raises(MentorError, match="input_dim"):
        tb_reid_parts(input_dim=63)
