"""Semi-supervised presets: pseudo-labels and mean teachers as compositions of parts.

Each is a teacher source (the live student, or an EMA copy of it), weak/strong views, a
refiner chain (thresholds, weights, alignment) and a masked unlabeled loss, on top of
cross-entropy on the labeled rows (METHODS.md §59.1). Batches mix labeled and unlabeled
rows in the ratio ``train.unlabeled_ratio`` (FixMatch's mu).
"""

from __future__ import annotations

from pydantic import Field

from ..losses.objective import Objective
from ..targets import (ConfidenceThreshold, ConfidenceWeight, DistributionAlignment,
                       FlexMatchThreshold, FreeMatchThreshold, GMMThreshold, SoftMatchWeight)
from ..updates import EMA, FisherMaskedEMA, FuturePeekEMA, Live, Relabel
from .plan import Claim, MethodPlan, _Params, register_method

WEAK_STRONG = {"teacher": "weak", "student": "strong", "labeled": "weak"}
_BEATS_SCRATCH = Claim("scratch", ">", "unlabeled data lifts a few-label student above "
                       "supervised training on its labels")


def _unlabeled_ce(weight: float, warmup: int = 0) -> Objective:
    """Masked cross-entropy with the pseudo-labels, averaged over the unlabeled batch."""
    return Objective("pseudo_ce", weight, rows="unlabeled", normalize="rows",
                     warmup_epochs=warmup)


def _unlabeled_soft(weight: float, temperature: float, warmup: int = 0) -> Objective:
    """Masked, weighted KD to the (refined) teacher distribution on the unlabeled batch."""
    return Objective("kd", weight, {"temperature": temperature}, rows="unlabeled",
                     normalize="rows", warmup_epochs=warmup)


class _SSLParams(_Params):
    unlabeled_weight: float = Field(1.0, ge=0, description="weight of the unlabeled loss "
                                    "(lambda_u)")
    warmup_epochs: int = Field(0, ge=0, description="the unlabeled weight ramps up linearly "
                               "over these epochs")


class PseudoLabelParams(_SSLParams):
    threshold: float = Field(0.95, ge=0, le=1, description="confidence needed to use a "
                             "pseudo-label (USB's default; Lee 2013 uses every arg-max)")
    unlabeled_weight: float = Field(1.0, ge=0)
    warmup_epochs: int = Field(10, ge=0)


@register_method("pseudo-label", PseudoLabelParams, claim=_BEATS_SCRATCH,
                 paper="Lee 2013, Pseudo-Label (ICML workshop)",
                 description="the student's own confident arg-max on unlabeled rows is its "
                 "target (no augmentation), weight ramped up")
def _pseudo_label(p: PseudoLabelParams) -> MethodPlan:
    return MethodPlan([Objective("ce", 1.0, rows="labeled"),
                       _unlabeled_ce(p.unlabeled_weight, p.warmup_epochs)],
                      refiners=[ConfidenceThreshold(p.threshold)], updater=Live(),
                      description=f"pseudo-label, threshold {p.threshold:g}, weight "
                                  f"{p.unlabeled_weight:g} (ramp {p.warmup_epochs} epochs)")


class MeanTeacherParams(_SSLParams):
    decay: float = Field(0.99, ge=0, le=1, description="EMA momentum (with the reference "
                         "code's warm-up min(1 - 1/(t+1), decay))")
    unlabeled_weight: float = Field(10.0, ge=0, description="consistency weight")
    warmup_epochs: int = Field(10, ge=0)
    reviewer_weight: float = Field(0.0, ge=0, description="TRS reviewer: weight of a second "
                                   "consistency term to the teacher's best past weights (0: off)")
    reviewer_every: int = Field(5, ge=1, description="epochs between reviewer checks")


@register_method("mean-teacher", MeanTeacherParams, claim=_BEATS_SCRATCH,
                 paper="Tarvainen & Valpola 2017, Mean teachers are better role models",
                 description="EMA teacher on one weak view, student on another; MSE between "
                 "their probabilities on every row (ramped up)")
def _mean_teacher(p: MeanTeacherParams) -> MethodPlan:
    from ..updates import ReviewerBank
    objectives = [Objective("ce", 1.0, rows="labeled"),
                  Objective("prob_mse", p.unlabeled_weight, rows="all",
                            warmup_epochs=p.warmup_epochs)]
    updater = EMA(p.decay, warmup=True)
    extra = ""
    if p.reviewer_weight > 0:  # TRS: a second target from the reviewer's weights
        objectives.append(Objective("prob_mse", p.reviewer_weight, rows="all",
                                    warmup_epochs=p.warmup_epochs, against="reviewer"))
        updater = ReviewerBank(p.decay, every_epochs=p.reviewer_every)
        extra = f", reviewer x{p.reviewer_weight:g} every {p.reviewer_every} epochs"
    return MethodPlan(objectives, updater=updater,
                      augment={"teacher": "weak", "student": "weak", "labeled": "weak"},
                      description=f"mean teacher, EMA {p.decay:g}, consistency "
                                  f"{p.unlabeled_weight:g} (ramp {p.warmup_epochs} epochs)"
                                  f"{extra}")


class FixMatchParams(_SSLParams):
    threshold: float = Field(0.95, ge=0, le=1, description="confidence threshold tau")


def _fixmatch_like(p, refiners, name: str, teacher=None) -> MethodPlan:
    return MethodPlan([Objective("ce", 1.0, rows="labeled"),
                       _unlabeled_ce(p.unlabeled_weight, p.warmup_epochs)],
                      refiners=refiners, updater=teacher or Live(), augment=dict(WEAK_STRONG),
                      description=f"{name}, weight {p.unlabeled_weight:g}, weak -> strong views")


@register_method("fixmatch", FixMatchParams, claim=_BEATS_SCRATCH,
                 paper="Sohn et al. 2020, FixMatch (NeurIPS)",
                 description="hard pseudo-label from a weak view, admitted at confidence >= "
                 "tau, trains the prediction on a strong view")
def _fixmatch(p: FixMatchParams) -> MethodPlan:
    return _fixmatch_like(p, [ConfidenceThreshold(p.threshold)], f"FixMatch tau={p.threshold:g}")


class FlexMatchParams(FixMatchParams):
    warmup: bool = Field(True, description="threshold warm-up (unused samples count in the "
                         "normaliser)")


@register_method("flexmatch", FlexMatchParams, claim=Claim("fixmatch", ">=", "class-wise "
                 "curriculum thresholds use more unlabeled data early (Zhang et al. 2021)"),
                 paper="Zhang et al. 2021, FlexMatch (NeurIPS)",
                 description="FixMatch with class-wise thresholds from each class's learning "
                 "status (curriculum pseudo-labeling)")
def _flexmatch(p: FlexMatchParams) -> MethodPlan:
    return _fixmatch_like(p, [FlexMatchThreshold(p.threshold, p.warmup)],
                          f"FlexMatch tau={p.threshold:g}")


class FreeMatchParams(_SSLParams):
    ema: float = Field(0.999, ge=0, lt=1, description="momentum of the self-adaptive state")


@register_method("freematch", FreeMatchParams, claim=Claim("fixmatch", ">=", "self-adaptive "
                 "thresholds help most with very few labels (Wang et al. 2023)"),
                 paper="Wang et al. 2023, FreeMatch (ICLR)",
                 description="FixMatch with a self-adaptive global threshold and class-wise "
                 "scaling (fairness loss not included)")
def _freematch(p: FreeMatchParams) -> MethodPlan:
    return _fixmatch_like(p, [FreeMatchThreshold(p.ema)], f"FreeMatch m={p.ema:g}")


class SoftMatchParams(_SSLParams):
    ema: float = Field(0.999, ge=0, lt=1)
    n_sigma: float = Field(2.0, gt=0)
    align: bool = Field(True, description="uniform distribution alignment before weighting")


@register_method("softmatch", SoftMatchParams, claim=Claim("fixmatch", ">=", "soft weights "
                 "keep quantity and quality of pseudo-labels (Chen et al. 2023)"),
                 paper="Chen et al. 2023, SoftMatch (ICLR)",
                 description="FixMatch with truncated-Gaussian confidence weights instead of a "
                 "hard threshold, after uniform distribution alignment")
def _softmatch(p: SoftMatchParams) -> MethodPlan:
    refiners = ([DistributionAlignment(p.ema, "uniform")] if p.align else []) + [
        SoftMatchWeight(p.ema, p.n_sigma)]
    return _fixmatch_like(p, refiners, f"SoftMatch n_sigma={p.n_sigma:g}")


class GMMTeacherParams(_SSLParams):
    decay: float = Field(0.99, ge=0, le=1, description="EMA momentum of the teacher")
    buffer: int = Field(100, ge=4, description="scores kept per class")
    refit_every: int = Field(10, ge=1)
    policy: str = Field("high", pattern="^(high|middle)$")


@register_method("gmm-teacher", GMMTeacherParams, claim=_BEATS_SCRATCH,
                 paper="Wang et al. 2023, Consistent-Teacher (CVPR)",
                 description="mean teacher whose pseudo-labels pass a per-class threshold "
                 "fitted by a 2-component GMM to recent confidences")
def _gmm_teacher(p: GMMTeacherParams) -> MethodPlan:
    return _fixmatch_like(p, [GMMThreshold(p.buffer, p.refit_every, p.policy)],
                          f"GMM-threshold mean teacher (EMA {p.decay:g})",
                          teacher=EMA(p.decay, warmup=True))


class SoftTeacherParams(_SSLParams):
    decay: float = Field(0.99, ge=0, le=1, description="EMA momentum of the teacher "
                         "(0.999 in the paper's 180k-iteration runs)")
    threshold: float = Field(0.9, ge=0, le=1, description="teacher score for a hard "
                             "pseudo-label (cls_pseudo_threshold)")
    low: float = Field(0.5, ge=0, le=1, description="below this score a row is ignored "
                       "(pseudo_label_initial_score_thr)")
    unlabeled_weight: float = Field(4.0, ge=0, description="unsup_weight of the paper")


@register_method("soft-teacher", SoftTeacherParams, claim=_BEATS_SCRATCH,
                 paper="Xu et al. 2021, End-to-End Semi-Supervised Object Detection with Soft "
                 "Teacher (ICCV)",
                 description="mean teacher; confident pseudo-labels are hard, the middle band "
                 "keeps the teacher's distribution, and every row is weighted by the "
                 "teacher's confidence (the classification analogue of its soft background "
                 "weights)")
def _soft_teacher(p: SoftTeacherParams) -> MethodPlan:
    from ..targets import ConfidenceThreshold as Band
    low = min(p.low, p.threshold)
    return MethodPlan([Objective("ce", 1.0, rows="labeled"),
                       _unlabeled_soft(p.unlabeled_weight, 1.0, p.warmup_epochs)],
                      refiners=[Band(p.threshold, low=low), ConfidenceWeight(1.0)],
                      updater=EMA(p.decay, warmup=True), augment=dict(WEAK_STRONG),
                      description=f"soft teacher: EMA {p.decay:g}, hard >= {p.threshold:g}, "
                                  f"soft in [{low:g}, {p.threshold:g}), confidence-weighted, "
                                  f"weight {p.unlabeled_weight:g}")


class NoisyStudentParams(_SSLParams):
    every_epochs: int = Field(20, ge=1, description="epochs per round: then the student "
                              "becomes the teacher")
    threshold: float = Field(0.3, ge=0, le=1, description="pseudo-labels below this "
                             "confidence are dropped (the paper's 0.3 filter)")
    temperature: float = Field(1.0, gt=0, description="soft pseudo-labels at this temperature")


@register_method("noisy-student", NoisyStudentParams, claim=_BEATS_SCRATCH,
                 paper="Xie et al. 2020, Self-training with Noisy Student (CVPR)",
                 description="rounds of self-training: a clean (un-augmented) teacher gives "
                 "soft pseudo-labels, a noised (strongly augmented) student learns them, then "
                 "becomes the next round's teacher")
def _noisy_student(p: NoisyStudentParams) -> MethodPlan:
    return MethodPlan([Objective("ce", 1.0, rows="labeled"),
                       _unlabeled_soft(p.unlabeled_weight, p.temperature, p.warmup_epochs)],
                      refiners=[ConfidenceThreshold(p.threshold)],
                      updater=Relabel(p.every_epochs),
                      augment={"teacher": None, "student": "strong", "labeled": "weak"},
                      description=f"noisy student: rounds of {p.every_epochs} epochs, soft "
                                  f"labels T={p.temperature:g}, confidence >= {p.threshold:g}")


class BCPParams(_SSLParams):
    decay: float = Field(0.99, ge=0, le=1, description="EMA momentum of the teacher (BCP: 0.99)")
    ratio: float = Field(2 / 3, gt=0, le=1, description="side of the pasted rectangle")
    u_weight: float = Field(0.5, ge=0, description="weight of pseudo-label regions")
    scales: str = Field("single", pattern="^(single|multi)$", description="'multi': Switch's "
                        "multiscale patches (2 coarse + 2 fine)")


@register_method("bcp", BCPParams, claim=_BEATS_SCRATCH,
                 paper="Bai et al. 2023, Bidirectional Copy-Paste (CVPR); "
                 "multiscale patches: Switch",
                 description="mean teacher; each labeled image is copy-pasted with an "
                 "unlabeled one both ways, and the student learns the area-weighted mixture of "
                 "the label and the teacher's pseudo-label (pseudo-label regions weighted 0.5)")
def _bcp(p: BCPParams) -> MethodPlan:
    from ..mix.batch import CopyPasteBatch
    return MethodPlan([Objective("ce", 1.0, rows="labeled"),
                       _unlabeled_soft(p.unlabeled_weight, 1.0, p.warmup_epochs)],
                      updater=EMA(p.decay, warmup=True),
                      augment={"teacher": "weak", "student": "weak", "labeled": "weak"},
                      batch_mixer=CopyPasteBatch(p.ratio, p.u_weight, p.scales),
                      description=f"BCP: copy-paste ratio {p.ratio:.2g} ({p.scales} scale), "
                                  f"pseudo-label regions x{p.u_weight:g}, EMA {p.decay:g}")


class PSMTParams(_SSLParams):
    decay: float = Field(0.99, ge=0, le=1, description="EMA momentum (with warm-up)")
    unlabeled_weight: float = Field(10.0, ge=0, description="consistency weight")
    warmup_epochs: int = Field(10, ge=0)
    fraction: float = Field(0.03, ge=0, le=1, description="share of parameters, by squared "
                            "gradient, the teacher keeps unchanged at each update")
    protect: str = Field("high", pattern="^(high|low)$", description="'high': the most "
                         "sensitive parameters are kept (the paper); 'low': the least (code)")


@register_method("psmt", PSMTParams, claim=_BEATS_SCRATCH,
                 paper="Tian et al. 2024, Parameter-Selective Mean Teacher (PSMT) "
                 "[recon of the mask side]",
                 description="mean teacher whose EMA leaves the student's most "
                 "gradient-sensitive parameters unchanged (Fisher-masked EMA); for test-time "
                 "adaptation on a stream see mentor.tta")
def _psmt(p: PSMTParams) -> MethodPlan:
    plan = _mean_teacher(MeanTeacherParams(decay=p.decay, unlabeled_weight=p.unlabeled_weight,
                                           warmup_epochs=p.warmup_epochs))
    plan.updater = FisherMaskedEMA(p.decay, fraction=p.fraction, protect=p.protect,
                                   warmup=True)
    plan.description = (f"PSMT: Fisher-masked EMA {p.decay:g} (keeps the {p.protect} "
                        f"{100 * p.fraction:g} %), consistency {p.unlabeled_weight:g}")
    return plan


class FutureTeacherParams(_SSLParams):
    decay: float = Field(0.99, ge=0, le=1, description="EMA momentum (FST: 0.999)")
    ahead: int = Field(3, ge=1, description="virtual student steps per real step")
    threshold: float = Field(0.95, ge=0, le=1, description="confidence threshold (FST uses "
                             "DACS's 0.968 on pixels)")


@register_method("future-teacher", FutureTeacherParams, claim=Claim(
                 "mean-teacher", ">=", "pseudo-labels from a teacher advanced by virtual "
                 "future student steps are more accurate (Du et al. 2022)"),
                 paper="Du et al. 2022, Learning from Future (FST-D), NeurIPS",
                 description="EMA teacher advanced by K virtual student steps on the batch "
                 "before it labels it; FixMatch-style thresholded hard labels on strong views")
def _future_teacher(p: FutureTeacherParams) -> MethodPlan:
    return _fixmatch_like(p, [ConfidenceThreshold(p.threshold)],
                          f"future teacher (K={p.ahead}, EMA {p.decay:g}, tau {p.threshold:g})",
                          teacher=FuturePeekEMA(p.decay, ahead=p.ahead))


class _PairsEMA(EMA):
    """EMA of paired students whose copy shows every member's output (the teachers)."""

    def build_teacher(self, given, student_copy, num_classes):
        from ..teachers import ModuleTeacher
        student_copy.expose = True
        return ModuleTeacher(student_copy, num_classes, "EMA of the paired students")


class DualMeanTeacherParams(_SSLParams):
    pairs: int = Field(2, ge=2, description="teacher-student pairs")
    decay: float = Field(0.99, ge=0, le=1, description="EMA momentum of the teachers")


@register_method("dual-mean-teacher", DualMeanTeacherParams, claim=_BEATS_SCRATCH,
                 paper="Guo et al. 2024, Dual Mean-Teacher (DMT)",
                 description="two (or N) teacher-student pairs from different initialisations; "
                 "every student learns the pseudo-labels all EMA teachers agree on (consensus); "
                 "inference averages the students")
def _dual_mean_teacher(p: DualMeanTeacherParams) -> MethodPlan:
    from ..models.heads import PairedStudents
    from ..targets import Consensus
    objectives = []
    for i in range(p.pairs):
        objectives += [Objective("ce", 1.0, rows="labeled", on=f"head:{i}"),
                       Objective("pseudo_ce", p.unlabeled_weight, rows="unlabeled",
                                 normalize="rows", on=f"head:{i}",
                                 warmup_epochs=p.warmup_epochs)]
    return MethodPlan(objectives, refiners=[Consensus()],
                      updater=_PairsEMA(p.decay, warmup=True), augment=dict(WEAK_STRONG),
                      wrap_student=lambda m, x: PairedStudents(m, p.pairs),
                      description=f"dual mean teacher: {p.pairs} pairs, consensus "
                                  f"pseudo-labels, EMA {p.decay:g}")
