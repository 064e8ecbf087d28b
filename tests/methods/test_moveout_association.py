"""Physical association of per-channel picks (PhaseNet-DAS, METHODS.md §40): picks that no
event's moveout curve explains are dropped. Synthetic "DAS" arrays: 64 channels, two events
with hyperbolic moveout, a per-channel teacher that misses 20 % of arrivals, jitters the rest
(σ 1 sample) and adds false picks."""

import sys
from pathlib import Path

import numpy as np
import pytest

from mentor.errors import MentorError
from mentor.targets.moveout import associate_picks

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.measures.moveout import association_scores  # noqa: E402


def test_association_keeps_the_events_picks_and_drops_false_ones():
    """5 arrays with one false pick per channel on average (docs/methods.md, ``moveout``
    measurement): raw pick precision 0.59-0.64; after association 0.957-0.980, keeping
    82-99 % of the real picks (a false pick that falls within the tolerance of a curve is
    kept, which is why precision is not 1)."""
    sc = association_scores()
    for out in sc["outs"]:
        assert len(out.curves) == 2 and set(out.event[out.keep]) == {0, 1}
    assert np.mean(sc["raw"]) < 0.7
    assert min(sc["precision"]) > 0.95 and np.mean(sc["recall"]) > 0.8, sc


def test_exact_curves_are_recovered_and_degenerate_settings():
    x = np.arange(30.0)
    t = 20 + 0.5 * x + 0.05 * x ** 2
    out = associate_picks(x, t, max_events=3, tolerance=0.5, min_support=5)
    assert out.keep.all() and len(out.curves) == 1
    np.testing.assert_allclose(out.curves[0], (20, 0.5, 0.05), atol=1e-8)
    assert not associate_picks(x, t, min_support=31).keep.any()  # too few picks for an event
    noise = np.random.default_rng(0).uniform(0, 100, 30)
    every = associate_picks(x, noise, max_events=1, tolerance=1e6, min_support=3)
    assert every.keep.all()  # a tolerance wider than the data explains every pick


@pytest.mark.parametrize("kw, needle", [
    ({"x": [0.0, 1.0], "t": [0.0]}, "positions (2,) and times (1,)"),
    ({"x": [0.0, np.nan, 2.0], "t": [0.0, 1.0, 2.0]}, "must be finite numbers"),
    ({"x": [0.0, 1.0, 2.0], "t": [0.0, 1.0, 2.0], "min_support": 2}, "min_support"),
    ({"x": [0.0, 1.0, 2.0], "t": [0.0, 1.0, 2.0], "tolerance": 0}, "tolerance"),
])
def test_bad_input_is_one_sentence(kw, needle):
    with pytest.raises(MentorError) as e:
        associate_picks(**kw)
    assert needle in str(e.value) and "\n" not in str(e.value)
