"""Test-time adaptation on digits corruption streams (METHODS.md §48 PSMT, §21): reruns the
setup of ``tests/methods/test_tta.py::test_mean_teacher_adapts_online_and_psmt_forgets_less``
(the test imports :func:`source_model`, :func:`pick_lambda` and :func:`on_test_stream`).

A source MLP (128-128, BatchNorm) trained on clean raw digits (30 epochs, seeds 0, 1, 2)
meets a stream of 7 corruptions x 3 cycles. PSMT's Fisher weight λ is picked from a grid on
*validation* streams (the validation rows, corrupted with other draws: stream seed 100 + s),
by mean online accuracy over the seeds; the test stream (the test rows, stream seed s) is
then run once per method: ``source``, ``bn-adapt``, ``mean-teacher`` (decay 0.999) and
``psmt`` (decay 0.999, the picked λ). Figures: online accuracy along the test stream and
accuracy on the clean test rows after it (mean ± std over the seeds), and the project's
verdicts for PSMT against the mean teacher and the mean teacher against the source model.
"""

from __future__ import annotations

import statistics
from functools import lru_cache

from . import measurement
from ._fmt import pct, pm, verdict, wins

STREAM = ["noise-2", "noise-4", "salt-pepper", "blur", "contrast-0.5", "transpose", "invert"]
SEEDS = (0, 1, 2)
LAMBDAS = (5e2, 5e3, 5e4, 5e5, 5e6, 5e7)  # 500: the paper's value
DECAY = 0.999
VAL_STREAM_SEED = 100  # + the seed: validation streams never reuse a test stream's draws


@lru_cache(maxsize=1)
def digits():
    import mentor
    return mentor.load_data("digits", standardize=False)


@lru_cache(maxsize=4)
def source_model(seed: int = 0, epochs: int = 30):
    """The source MLP with BatchNorm, trained on the clean training rows."""
    import torch

    from mentor.engine import fit
    from mentor.methods import get_method
    from mentor.models import build_model
    from mentor.recipe import TrainSpec
    sp = digits()
    torch.manual_seed(seed)
    net = build_model("mlp", sp.input_shape, 10, hidden=[128, 128], batchnorm=True)
    return fit(net, sp.train, sp.val, objectives=get_method("scratch").plan().objectives,
               spec=TrainSpec(epochs=epochs, lr=1e-3), seed=seed, num_outputs=10).model


def adapt(model, method: str, part: str, stream_seed: int, cycles: int = 3, **kw):
    """``adapt_stream`` along the corrupted rows of split ``part``; the clean rows of that
    split are scored before and after."""
    from mentor.data.corruptions import shifted_stream
    from mentor.tta import adapt_stream
    sp = digits()
    x, y = getattr(sp, part).x, getattr(sp, part).y
    return adapt_stream(model, shifted_stream(x, y, STREAM, cycles=cycles, seed=stream_seed),
                        method=method, source_x=sp.train.x, clean=(x, y), **kw)


def pick_lambda(models, lambdas=LAMBDAS, cycles: int = 3) -> tuple[float, dict[float, float]]:
    """(λ with the best mean online accuracy on the validation streams, {λ: that mean})."""
    online = {lam: statistics.fmean(
        adapt(m, "psmt", "val", VAL_STREAM_SEED + s, cycles, decay=DECAY,
              fisher_weight=lam).online_accuracy for s, m in models.items())
        for lam in lambdas}
    return max(online, key=online.get), online


def on_test_stream(model, seed: int, lam: float, cycles: int = 3) -> dict:
    """The test stream (stream seed ``seed``) once per method: ``{method: StreamResult}``."""
    return {"source": adapt(model, "source", "test", seed, cycles),
            "bn-adapt": adapt(model, "bn-adapt", "test", seed, cycles),
            "mean-teacher": adapt(model, "mean-teacher", "test", seed, cycles, decay=DECAY),
            "psmt": adapt(model, "psmt", "test", seed, cycles, decay=DECAY, fisher_weight=lam)}


@measurement("tta", about="test-time adaptation on digits corruption streams (7 corruptions "
             "x 3 cycles, source MLP seeds 0-2): source, BN adaptation, mean teacher, PSMT with "
             "λ picked on validation streams", ci="quick", minutes=2.5)
def measure(quick: bool) -> dict[str, str]:
    seeds, cycles, lambdas, epochs = ((0,), 1, LAMBDAS[:2], 2) if quick else \
        (SEEDS, 3, LAMBDAS, 30)
    models = {s: source_model(s, epochs) for s in seeds}
    lam, val_online = pick_lambda(models, lambdas, cycles)
    runs = {s: on_test_stream(models[s], s, lam, cycles) for s in seeds}
    online = {m: [runs[s][m].online_accuracy for s in seeds] for m in runs[seeds[0]]}
    clean = {m: [runs[s][m].clean_after for s in seeds] for m in runs[seeds[0]]}
    out = {"lambda": f"{lam:.0e}".replace("e+0", "e").replace("e+", "e"),
           "lambda.val_online": pct(val_online[lam])}
    for m in online:
        out[f"{m}.online"] = pm(online[m])
        out[f"{m}.clean_after"] = pm(clean[m])
    out["psmt_vs_mt.online"] = verdict(online["psmt"], online["mean-teacher"])
    out["psmt_vs_mt.online_wins"] = wins(online["psmt"], online["mean-teacher"])
    out["psmt_vs_mt.clean"] = verdict(clean["psmt"], clean["mean-teacher"])
    out["psmt_vs_mt.clean_wins"] = wins(clean["psmt"], clean["mean-teacher"])
    out["mt_vs_source.online"] = verdict(online["mean-teacher"], online["source"])
    out["mt_vs_source.online_wins"] = wins(online["mean-teacher"], online["source"])
    out["bn_vs_psmt.online"] = verdict(online["bn-adapt"], online["psmt"])
    return out
