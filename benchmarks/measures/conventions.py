"""docs/conventions.md's worked values: mentor's losses on the two-class examples the page
works by hand (student logits (0, 1), teacher (1, 0)), next to each peer's convention."""

from __future__ import annotations

import math

import torch

from . import measurement


def _f(x: float) -> str:
    return f"{x:.7f}"


@measurement("conventions", about="docs/conventions.md worked values: mentor's `kd`, "
             "`forward_kl`, `jsd` on the page's two-class example and the peers' conversions",
             ci="full", minutes=0.05)
def measure(quick: bool) -> dict[str, str]:
    from mentor.losses import kd
    from mentor.losses.tokens import token_divergence
    zs = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    zt = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    mentor_kd = float(kd(zs, zt, torch.tensor([1]), temperature=2.0))
    kl_t2 = mentor_kd / 4.0  # torchdistill's KDLoss alone: no T²
    ce = float(torch.nn.functional.cross_entropy(zs, torch.tensor([1])))

    def div(kind: str, **kw) -> float:
        return float(token_divergence(zs[None], zt[None], kind=kind, **kw))
    fkl, jsd = div("forward_kl"), div("jsd", beta=0.5)
    p_t = torch.softmax(zt, -1)
    h_t = float(-(p_t * p_t.log()).sum())
    return {"kd.kl": _f(kl_t2), "kd.mentor": _f(mentor_kd), "kd.ce": _f(ce),
            "kd.mixed": _f(0.1 * ce + 0.9 * mentor_kd), "jsd.ln2": _f(math.log(2)),
            "jsd.entropy": _f(h_t), "jsd.trl": _f(jsd / 4.0), "jsd.mentor": _f(jsd),
            "fkl.mentor": _f(fkl), "fkl.entropy": _f(h_t), "fkl.torchtune": _f(fkl + h_t),
            "rkl": _f(div("reverse_kl"))}
