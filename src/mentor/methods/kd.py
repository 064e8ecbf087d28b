"""Distillation presets: a student learns from an external teacher's outputs (logit, feature,
dual-head, pruning and self-distillation families), each a composition of registered parts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..losses.objective import Objective
from .plan import Claim, MethodPlan, _Params, register_method

class ScratchParams(_Params):
    label_smoothing: float = Field(0.0, ge=0, lt=1)


@register_method("scratch", ScratchParams,
                 description="student trained on the hard labels only (no teacher)")
def _scratch(p: ScratchParams) -> MethodPlan:
    return MethodPlan([Objective("ce", 1.0, {"label_smoothing": p.label_smoothing},
                                 rows="labeled")], description="cross-entropy on labels")


class KDParams(_Params):
    temperature: float = Field(4.0, gt=0)
    alpha: float = Field(0.9, ge=0, le=1, description="weight of the KD term; CE gets 1-alpha")


@register_method("kd", KDParams,
                 claim=Claim("scratch", ">", "soft targets transfer knowledge to a small "
                             "student (Hinton et al. 2015)"),
                 paper="Hinton et al. 2015, arXiv:1503.02531",
                 description="(1-alpha)*CE(labels) + alpha*T^2*KL(teacher || student)")
def _kd(p: KDParams) -> MethodPlan:
    return MethodPlan(hinton(p.alpha, p.temperature),
                      description=f"Hinton KD, T={p.temperature:g}, alpha={p.alpha:g}")


def hinton(alpha: float, temperature: float) -> list[Objective]:
    """``(1 − α)·CE`` on the labeled rows and ``α·KD_T`` on all rows (Hinton et al. 2015)."""
    return [Objective("ce", 1.0 - alpha, rows="labeled"),
            Objective("kd", alpha, {"temperature": temperature}, rows="all")]


class LSKDParams(_Params):
    temperature: float = Field(2.0, gt=0)
    ce_weight: float = Field(0.1, ge=0)
    kd_weight: float = Field(9.0, ge=0)


@register_method("ls-kd", LSKDParams,
                 claim=Claim("kd", ">=", "CIFAR-100 KD 73.33 -> 76.62 with LS (README tables)"),
                 paper="Sun et al. 2024, Logit Standardization in KD, CVPR",
                 description="KD on z-scored logits (defaults: T=2, CE 0.1, KD 9 as in the "
                 "official code)")
def _ls_kd(p: LSKDParams) -> MethodPlan:
    return MethodPlan([
        Objective("ce", p.ce_weight, rows="labeled"),
        Objective("kd", p.kd_weight, {"temperature": p.temperature}, rows="all",
                  standardize=True),
    ], description=f"logit-standardized KD, T={p.temperature:g}, CE {p.ce_weight:g}, "
                   f"KD {p.kd_weight:g}")


class DKDParams(_Params):
    alpha: float = Field(1.0, ge=0, description="weight of TCKD")
    beta: float = Field(8.0, ge=0, description="weight of NCKD")
    temperature: float = Field(4.0, gt=0)
    warmup_epochs: int = Field(20, ge=0, description="DKD weight ramps over these epochs")
    ce_weight: float = Field(1.0, ge=0)


def _dkd_plan(p: DKDParams, standardize: bool) -> MethodPlan:
    prefix = "logit-standardized " if standardize else ""
    return MethodPlan([
        Objective("ce", p.ce_weight, rows="labeled"),
        Objective("dkd", 1.0, {"alpha": p.alpha, "beta": p.beta, "temperature": p.temperature},
                  rows="all", standardize=standardize, warmup_epochs=p.warmup_epochs),
    ], description=f"{prefix}DKD, alpha={p.alpha:g}, beta={p.beta:g}, T={p.temperature:g}, "
                   f"warm-up {p.warmup_epochs} epochs")


@register_method("dkd", DKDParams,
                 claim=Claim("kd", ">=", "DKD beats KD on CIFAR-100 and ImageNet "
                             "(Zhao et al. 2022)"),
                 paper="Zhao et al. 2022, Decoupled KD, CVPR",
                 description="CE + warm-up * (alpha*TCKD + beta*NCKD); unlabeled rows use the "
                 "teacher's arg-max as target class")
def _dkd(p: DKDParams) -> MethodPlan:
    return _dkd_plan(p, standardize=False)


class LSDKDParams(DKDParams):
    alpha: float = Field(9.0, ge=0, description="TCKD weight (1 x kd-weight 9, official code)")
    beta: float = Field(72.0, ge=0, description="NCKD weight (8 x kd-weight 9, official code)")
    temperature: float = Field(2.0, gt=0)


@register_method("ls-dkd", LSDKDParams,
                 claim=Claim("dkd", ">=", "CIFAR-100 DKD 76.32 -> 77.01 with LS"),
                 paper="Sun et al. 2024 (LS) + Zhao et al. 2022 (DKD)",
                 description="DKD on z-scored logits (defaults as the official LS code: "
                 "alpha 9, beta 72, T 2)")
def _ls_dkd(p: LSDKDParams) -> MethodPlan:
    return _dkd_plan(p, standardize=True)


class NKDParams(_Params):
    temperature: float = Field(1.0, gt=0, description="non-target temperature (ImageNet 1, "
                               "CIFAR-100 3 in the official configs)")
    gamma: float = Field(1.5, ge=0, description="non-target weight (ImageNet 1.5, CIFAR 3.5)")
    ce_weight: float = Field(1.0, ge=0)


@register_method("nkd", NKDParams,
                 claim=Claim("kd", ">=", "ImageNet ResNet-18 69.90 -> 71.96 with NKD, above KD"),
                 paper="Yang et al. 2023, NKD (ICCV)",
                 description="CE + normalized KD (teacher-weighted target term + renormalised "
                 "non-target KD); unlabeled rows use the teacher's arg-max as target class")
def _nkd(p: NKDParams) -> MethodPlan:
    return MethodPlan([
        Objective("ce", p.ce_weight, rows="labeled"),
        Objective("nkd", 1.0, {"temperature": p.temperature, "gamma": p.gamma}, rows="all"),
    ], description=f"NKD, T={p.temperature:g}, gamma={p.gamma:g}")


class PLDParams(_Params):
    temperature: float = Field(1.0, gt=0)
    top_k: int = Field(0, ge=0, description="ranks summed (0 = all classes)")


@register_method("pld", PLDParams, claim=Claim("kd", ">=", "+1.04 over KD on ImageNet (abstract)"),
                 paper="Plackett-Luce Distillation (PLD)",
                 description="one teacher-weighted list-wise loss replaces CE + KD (no weight "
                 "to tune); unlabeled rows use the teacher's arg-max as first class")
def _pld(p: PLDParams) -> MethodPlan:
    return MethodPlan([Objective("pld", 1.0, {"temperature": p.temperature, "top_k": p.top_k},
                                 rows="all")],
                      description=f"Plackett-Luce KD, T={p.temperature:g}"
                                  + (f", top-{p.top_k}" if p.top_k else ""))


class SSLDParams(_Params):
    temperature: float = Field(1.0, gt=0)


@register_method("ssld", SSLDParams,
                 claim=Claim("scratch", ">=", "teacher-only labels beat supervised training, "
                 "+3.8 points on ImageNet [scale-only]"),
                 paper="Cui et al. 2021, SSLD (PaddleClas); DML loss",
                 description="label-free: the student matches the teacher with symmetric KL on "
                 "every training input and never sees a label")
def _ssld(p: SSLDParams) -> MethodPlan:
    return MethodPlan([Objective("symmetric_kl", 1.0, {"temperature": p.temperature},
                                 rows="all")],
                      description=f"SSLD symmetric KL, T={p.temperature:g}, no labels")


class TopKParams(_Params):
    k: int = Field(3, ge=1, description="teacher candidate classes")
    temperature: float = Field(1.0, gt=0)
    weight: float = Field(1.0, ge=0, description="weight of the restricted KD term")
    ce_weight: float = Field(1.0, ge=0)


@register_method("topk-kd", TopKParams,
                 claim=Claim("scratch", ">=", "guided student beats plain DL by ~10 % [recon]"),
                 paper="Guided DML with a GEMINI teacher (hypothesis-restricted KD) "
                 "[recon]", description="CE + KD restricted to the teacher's top-k classes")
def _topk(p: TopKParams) -> MethodPlan:
    return MethodPlan([
        Objective("ce", p.ce_weight, rows="labeled"),
        Objective("topk_kd", p.weight, {"k": p.k, "temperature": p.temperature}, rows="all"),
    ], description=f"top-{p.k} restricted KD, T={p.temperature:g}, weight {p.weight:g}")


class FeatureKDParams(_Params):
    student_layer: str = Field(description="dotted module path in the student, e.g. '1'")
    teacher_layer: str = Field(description="dotted module path in the teacher, e.g. '3'")
    feature_loss: Literal["mse", "cosine", "channel"] = Field(
        "mse", description="mse, cosine, or channel (channel-wise KD on spatial maps)")
    feature_temperature: float = Field(4.0, gt=0, description="temperature of channel KD")
    feature_weight: float = Field(1.0, ge=0)
    projector: Literal["auto", "none"] = "auto"
    temperature: float = Field(4.0, gt=0)
    alpha: float = Field(0.9, ge=0, le=1, description="KD weight; CE gets 1-alpha")


@register_method("feature-kd", FeatureKDParams,
                 paper="FitNets (Romero et al. 2015, ICLR)",
                 description="KD + alignment of a tapped student feature with a tapped teacher "
                 "feature (forward hooks; learned projector when widths differ, dropped after "
                 "training)")
def _feature_kd(p: FeatureKDParams) -> MethodPlan:
    from ..models.taps import Tap
    tap = Tap("f", p.student_layer, p.teacher_layer, p.projector)
    return MethodPlan([
        *hinton(p.alpha, p.temperature),
        Objective("channel_kd" if p.feature_loss == "channel" else f"feature_{p.feature_loss}",
                  p.feature_weight,
                  {"temperature": p.feature_temperature} if p.feature_loss == "channel" else {},
                  rows="all", on=tap.key, against=tap.key),
    ], taps=[tap], description=f"KD (T={p.temperature:g}, alpha={p.alpha:g}) + feature "
                               f"{p.feature_loss} {p.student_layer!r}->{p.teacher_layer!r} "
                               f"x{p.feature_weight:g}")


class DHKDParams(_Params):
    temperature: float = Field(2.0, gt=0, description="BinaryKL-Norm temperature")
    alpha: float = Field(1.0, ge=0, description="weight of BinaryKL-Norm on the second head")
    ce_weight: float = Field(1.0, ge=0)
    head: str | None = Field(None, description="classifier module (default: last nn.Linear)")


@register_method("dhkd", DHKDParams, paper="Dual-Head Knowledge Distillation (DHKD)",
                 claim=Claim("kd", ">=", "dual-head logit-level KD beats KD on CIFAR-100 / "
                             "ImageNet"),
                 description="CE on the student's head + BinaryKL-Norm on a second head over "
                 "the same features; inference uses the CE head")
def _dhkd(p: DHKDParams) -> MethodPlan:
    from ..models.heads import DualHead
    return MethodPlan([
        Objective("ce", p.ce_weight, rows="labeled"),
        Objective("binary_kl_norm", p.alpha, {"temperature": p.temperature}, rows="all",
                  on="head:kd"),
    ], wrap_student=lambda m, x: DualHead(m, p.head, a=0.0),
        description=f"dual head: CE | BinaryKL-Norm (T={p.temperature:g}, x{p.alpha:g})")


class DHOParams(_Params):
    temperature: float = Field(2.0, gt=0)
    a: float = Field(0.5, ge=0, le=1, description="inference weight of the KD head")
    b: float = Field(1.0, gt=0, description="inference temperature of the KD head")
    head: str | None = Field(None, description="classifier module (default: last nn.Linear)")


@register_method("dho", DHOParams, paper="Dual-Head Optimization (DHO)",
                 claim=Claim("kd", ">=", "+3 % over single-head SOTA at 1 % ImageNet labels"),
                 description="0.5*CE on the CE head (labeled rows) + 0.5*KD on a KD head (all "
                 "rows); inference (1-a)*softmax(z_ce) + a*softmax(z_kd/b)")
def _dho(p: DHOParams) -> MethodPlan:
    from ..models.heads import DualHead
    return MethodPlan([
        Objective("ce", 0.5, rows="labeled"),
        Objective("kd", 0.5, {"temperature": p.temperature}, rows="all", on="head:kd"),
    ], wrap_student=lambda m, x: DualHead(m, p.head, a=p.a, b=p.b),
        description=f"DHO, T={p.temperature:g}, inference a={p.a:g}, b={p.b:g}")


class PrunedKDParams(_Params):
    keep_fraction: float = Field(0.5, gt=0, le=1, description="fraction f of training rows kept")
    alpha: float | None = Field(None, ge=0, le=1, description="KD weight; default "
                                "clip(1 - f/2, 0.5, 0.95) [recon]")
    temperature: float = Field(4.0, gt=0)


def pruning_kd_weight(keep_fraction: float) -> float:
    """``α(f) = clip(1 − f/2, 0.5, 0.95)``: more teacher weight when less data is kept
    (METHODS.md §57; the paper shows α* grows as f shrinks, this schedule is a [recon])."""
    return min(max(1.0 - keep_fraction / 2.0, 0.5), 0.95)


@register_method("pruned-kd", PrunedKDParams, paper="Knowledge distillation for data pruning",
                 claim=Claim("scratch", ">=", "with KD a random 50 % subset beats the full "
                             "data without KD on ImageNet"),
                 description="train on a random fraction f of the training rows (new subset "
                 "per seed) with KD weighted by alpha(f)")
def _pruned_kd(p: PrunedKDParams) -> MethodPlan:
    from ..select import keep_fraction
    alpha = pruning_kd_weight(p.keep_fraction) if p.alpha is None else p.alpha
    return MethodPlan(
        hinton(alpha, p.temperature),
        select_train=lambda train, seed: keep_fraction(train, p.keep_fraction, seed),
        description=f"random {100 * p.keep_fraction:g}% of rows + KD (alpha {alpha:g}, "
                    f"T={p.temperature:g})")


class FerKDParams(_Params):
    temperature: float = Field(1.0, gt=0, description="FKD uses soft cross-entropy at T 1")
    alpha: float = Field(1.0, ge=0, le=1, description="weight of the (calibrated) KD term")
    discard: float = Field(0.05, ge=0, le=1)
    calibrate: float = Field(0.15, ge=0, le=1)
    epsilon: float = Field(0.1, ge=0, le=1)
    selfmix: float = Field(0.0, ge=0, le=1, description="probability of SelfMix per row "
                           "(needs a label store with views)")


@register_method("ferkd", FerKDParams, paper="FerKD [recon of thresholds]",
                 claim=Claim("kd", ">=", "FerKD ends at or above FKD soft labels on ImageNet"),
                 description="KD whose least reliable teacher targets are dropped or replaced "
                 "by softened hard labels (per batch, by the teacher's true-class probability)")
def _ferkd(p: FerKDParams) -> MethodPlan:
    from ..targets import FerKDCalibration
    from ..labels.selfmix import SelfMix
    mix = f", SelfMix p {p.selfmix:g}" if p.selfmix > 0 else ""
    return MethodPlan(
        hinton(p.alpha, p.temperature),
        refiners=[FerKDCalibration(p.discard, p.calibrate, p.epsilon)],
        mixer=SelfMix(p.selfmix) if p.selfmix > 0 else None,
        description=f"FerKD: drop {100 * p.discard:g}%, calibrate {100 * p.calibrate:g}% "
                    f"(eps {p.epsilon:g}), KD T={p.temperature:g}{mix}")


class USKDParams(_Params):
    alpha: float = Field(1.0, ge=0, description="target-term weight")
    beta: float = Field(0.1, ge=0, description="Zipf non-target weight")
    mu: float = Field(0.005, ge=0, description="weight of the weak head's smoothed CE")
    layer: str | None = Field(None, description="module feeding the weak head (default: the "
                              "classifier's input)")


@register_method("uskd", USKDParams, paper="Yang et al. 2023, USKD (ICCV)",
                 claim=Claim("scratch", ">=", "+1.17 % MobileNet, +0.55 % DeiT-Tiny on "
                             "ImageNet, teacher-free"),
                 description="teacher-free self-KD: CE + customised target term + Zipf "
                 "non-target labels ranked with a weak auxiliary head (label-smoothed CE)")
def _uskd(p: USKDParams) -> MethodPlan:
    from ..models.heads import AuxHead
    return MethodPlan([
        Objective("ce", 1.0, rows="labeled"),
        Objective("uskd", 1.0, {"alpha": p.alpha, "beta": p.beta}, rows="labeled",
                  against="head:aux"),
        Objective("ce", p.mu, {"label_smoothing": 0.1}, rows="labeled", on="head:aux"),
    ], wrap_student=lambda m, x: AuxHead(m, x, p.layer),
        description=f"USKD, alpha={p.alpha:g}, beta={p.beta:g}, mu={p.mu:g}")


class ProtoKDParams(_Params):
    teacher_layer: str = Field(description="teacher module whose output is the feature")
    kappa: float = Field(10.0, gt=0)
    momentum: float = Field(0.5, ge=0, le=1)
    low: float = Field(0.5, ge=0, le=1)
    high: float = Field(0.9, ge=0, le=1)
    temperature: float = Field(1.0, gt=0)
    weight: float = Field(1.0, ge=0, description="weight of the KD term")


@register_method("proto-kd", ProtoKDParams, paper="PS-TTL (prototype soft labels)",
                 claim=Claim("scratch", ">=", "prototype soft labels use more unlabeled "
                             "samples and help few-shot classes"),
                 description="CE + KD where uncertain unlabeled rows learn from class-prototype "
                 "soft labels of the teacher's features; very uncertain rows are dropped")
def _proto_kd(p: ProtoKDParams) -> MethodPlan:
    from ..models.taps import Tap
    from ..targets import PrototypeSoftLabels
    tap = Tap("proto", None, p.teacher_layer)
    return MethodPlan([
        Objective("ce", 1.0, rows="labeled"),
        Objective("kd", p.weight, {"temperature": p.temperature}, rows="all"),
    ], taps=[tap], refiners=[PrototypeSoftLabels(tap.key, p.kappa, p.momentum, p.low, p.high)],
        description=f"prototype soft labels (kappa {p.kappa:g}, band {p.low:g}-{p.high:g}) + "
                    f"KD x{p.weight:g}")

