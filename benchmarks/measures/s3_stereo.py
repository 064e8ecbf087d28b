"""S³'s multi-baseline self-training (METHODS.md §53; Xu et al., "Unsupervised Stereo via
Multi-Baseline Geometry-Consistent Self-Training", arXiv 2508.10838) on the generated
testbed TB-STEREO (:func:`mentor.stereo.tb_stereo` with its defaults: 400 scenes of 16 × 64
grey pixels, random-dot fronto-parallel layers -- a background and 2-5 poles or blocks --,
disparities 0..8 px at baseline b; three views: reference, b and 2b; split 240 / 60 / 100).
Per seed 0/1/2 -- the seed draws the testbed and the student's initial weights -- the same
student (:class:`mentor.stereo.TinyStereo`: shared conv features, cosine cost volume,
soft-argmin, refinement) trains without disparity labels for 400 steps of 16 scenes (Adam
lr 2e-3), reading (reference, b), on masked photometric + smoothness losses, and:

- ``photometric``: nothing else (no teacher);
- ``symmetric``: an EMA teacher (momentum 0.95) reading the student's own pair gives
  pseudo-labels (smooth L1, weight 0.3, ramped in over 100 steps), weighted by the
  teacher's left-right consistency (1 where consistent, 0.1 elsewhere);
- ``no_rescale``: the same teacher reads (reference, 2b); its disparity is used as it is;
- ``s3``: the same teacher reads (reference, 2b); its disparity times b_s / b_t = 1/2.

Selection: the step (every 50) with the best validation EPE; figures are test figures once
at the end, in pixels at baseline b: EPE over all pixels, over the pixels occluded in the
student's pair (``epe_occ``: hidden in the b view by a nearer layer or outside its frame)
and the others (``epe_noc``), over the pixels hidden in the b view but visible in the 2b
view (``epe_hidden``), and the bad-pixel rate (error > 1 px). ``s3.teacher.epe_hidden``:
the S³ teacher's rescaled disparity on those pixels (what it teaches there). Mean ±
population std over the seeds, and per seed. Verdicts (``s3_vs_B.M``) by the project's rule
on EPE ``M``: ``lower`` (S³'s EPE lower: better) / ``higher`` when the gap exceeds twice the
larger std, else ``not separated``; ``.s3_lower``: the seeds where S³'s EPE is lower.
"""

from __future__ import annotations

from ._fmt import mean_std, pm, verdict, wins
from ._run import over_seeds

SEEDS = (0, 1, 2)
ARMS = ("photometric", "symmetric", "no_rescale", "s3")
METRICS = ("epe", "epe_occ", "epe_noc", "epe_hidden")
QUICK = dict(num_scenes=120, train=dict(steps=60, warmup=20, eval_every=20, batch_size=8))
FULL = dict(num_scenes=400, train=dict())


def _v(values: list[float]) -> str:
    m, s = mean_std(values)
    return f"{m:.3f} ± {s:.3f}"


def _seeds(values: list[float]) -> str:
    return " / ".join(f"{v:.3f}" for v in values)


def run(seed: int, quick: bool) -> dict[str, float]:
    """Test figures of the four arms on the testbed of ``seed``."""
    from mentor.stereo import compare_arms, epe, predict, rescale, tb_stereo
    setting = QUICK if quick else FULL
    data = tb_stereo(setting["num_scenes"], seed=seed)
    arms = compare_arms(data, seed, **setting["train"])
    ids = data.test
    gt = data.disparity[ids]
    hidden = data.occluded_b[ids] & ~data.occluded_2b[ids]
    out: dict[str, float] = {}
    for arm in ARMS:
        r = arms[arm]
        for m in ("epe", "epe_occ", "epe_noc", "bad"):
            out[f"{arm}.{m}"] = r.test[m]
        out[f"{arm}.epe_hidden"] = epe(predict(r.model, data, ids), gt, hidden)
        out[f"{arm}.best_step"] = r.best_step
    teacher = predict(arms["s3"].teacher, data, ids, "view_2b")
    out["s3.teacher.epe_hidden"] = epe(rescale(teacher, *data.baselines), gt, hidden)
    return out


def measure(quick: bool) -> dict[str, str]:
    from mentor.stereo import tb_stereo
    seeds = (0,) if quick else SEEDS
    vals = over_seeds(run, seeds, quick)
    setting = QUICK if quick else FULL
    out = {"data": tb_stereo(setting["num_scenes"]).describe(), "seeds": str(len(seeds))}
    for arm in ARMS:
        for m in METRICS:
            out[f"{arm}.{m}"] = _v(vals(f"{arm}.{m}"))
            out[f"{arm}.{m}.per_seed"] = _seeds(vals(f"{arm}.{m}"))
        out[f"{arm}.bad"] = pm(vals(f"{arm}.bad"), 1)
        out[f"{arm}.best_step"] = " / ".join(str(v) for v in vals(f"{arm}.best_step"))
    out["s3.teacher.epe_hidden"] = _v(vals("s3.teacher.epe_hidden"))
    out["s3.teacher.epe_hidden.per_seed"] = _seeds(vals("s3.teacher.epe_hidden"))
    for base in ("no_rescale", "symmetric", "photometric"):
        for m in METRICS:
            s3, b = vals(f"s3.{m}"), vals(f"{base}.{m}")
            out[f"s3_vs_{base}.{m}"] = verdict(s3, b)
            out[f"s3_vs_{base}.{m}.s3_lower"] = wins(b, s3)
    return out


from . import measurement  # noqa: E402

measurement("s3stereo", about="S³ multi-baseline self-training on TB-STEREO (400 scenes of "
            "16×64, disparities 0..8 px at b, views at b and 2b): one small stereo student "
            "trained without labels, 400 steps, on masked photometric + smoothness alone vs "
            "with an EMA teacher on its own pair (symmetric) vs on the 2b pair without / with "
            "baseline rescaling (S³); test EPE all / occluded / non-occluded, 3 seeds",
            ci="quick", minutes=8.0)(measure)
