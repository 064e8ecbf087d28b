"""Training a label-assisted teacher with dual-path consistency (LAD, METHODS.md §1).

LAD (Label-Assisted Distillation) makes a small teacher strong by giving it a *noisy copy of
the label* as an extra input; the student, which never sees labels, then distils from it.
To keep the teacher from simply reading the answer off the label code, LAD trains it with
**two forward passes under independent code noise** and a consistency term between them:

    L_teacher = CE(o1, y) + CE(o2, y) + w · [KD_T(o1 ‖ sg(o2)) + KD_T(o2 ‖ sg(o1))]

(``sg``: stop-gradient; the official code uses channel-wise distillation at T = 4 on dense
maps and w = 5; for class logits the same divergence is Hinton KD at T = 4). During
distillation the teacher sees the label code with little or no noise.

Adaptation for classification: LAD's training codes are a fresh random scalar per class and
image, which only carry *which pixels share a class*; a classification sample has one class,
so such a code would carry nothing. mentor uses :func:`label_channel`'s one-hot code with
Gaussian noise ``train_noise`` instead (a noisy hint), and ``use_noise`` at distillation time.

:class:`LabelAssistedNet` is the model the engine trains (it sets ``takes_labels``, so the
engine calls ``model(x, y)``); :func:`dual_path_objectives` are its objectives;
:meth:`LabelAssistedNet.teacher` turns the trained network into a
:class:`~mentor.teachers.PrivilegedInputTeacher` for the student.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..losses.objective import Objective
from ..errors import check_param
from .privileged import PrivilegedInputTeacher, label_channel

PATH2 = "head:path2"


def label_input_shape(input_shape: tuple[int, ...], num_classes: int) -> tuple[int, ...]:
    """Input shape of a teacher reading flat rows plus the label code: ``(prod(shape) + K,)``
    (mentor's data sets hold flat rows; :func:`label_channel` appends the code to them)."""
    width = 1
    for d in input_shape:
        width *= int(d)
    return (width + int(num_classes),)


class LabelAssistedNet(nn.Module):
    """``net`` fed ``[x ‖ one-hot(y) + noise]``; two noisy passes in training mode.

    ``net`` takes the input widened by ``num_classes`` (see :func:`label_channel`).
    ``forward(x, y)``: in training mode returns ``{"logits": o1, "head:path2": o2}``, two
    passes under independent code noise of std ``train_noise``; in eval mode the single pass
    with noise ``use_noise``. ``y=None`` (or rows with label ``-1``) gives an all-zero code:
    the teacher's prediction without the hint. ``seed`` seeds the code noise.
    """

    takes_labels = True  # the engine passes the batch labels: model(x, y)

    def __init__(self, net: nn.Module, num_classes: int, train_noise: float = 1.0,
                 use_noise: float = 0.0, seed: int = 0):
        super().__init__()
        check_param("LabelAssistedNet", "train_noise", train_noise, low=0)
        check_param("LabelAssistedNet", "use_noise", use_noise, low=0)
        self.net = net
        self.num_classes = int(num_classes)
        self.train_code = label_channel(num_classes, train_noise, seed)
        self.use_code = label_channel(num_classes, use_noise, seed + 1)

    def forward(self, x: Tensor, y: Tensor | None = None):
        if y is None:
            y = torch.full((len(x),), -1, dtype=torch.long, device=x.device)
        if self.training:
            return {"logits": self.net(self.train_code(x, y)),
                    PATH2: self.net(self.train_code(x, y))}
        return self.net(self.use_code(x, y))

    def teacher(self, train_labels: Tensor, description: str | None = None
                ) -> PrivilegedInputTeacher:
        """The trained network as a privileged-input teacher over the training rows whose
        labels are ``train_labels`` (the student sees only ``x``)."""
        self.eval()
        t = PrivilegedInputTeacher(self.net, self.num_classes, self.use_code,
                                   extra=torch.as_tensor(train_labels).long())
        if description:
            t.description = description
        return t


def dual_path_objectives(consistency: float = 5.0, temperature: float = 4.0) -> list[Objective]:
    """LAD's teacher objective: CE on both noisy passes plus ``consistency`` times the
    two-way KD at ``temperature`` between them, each direction against a detached target.
    ``consistency = 0`` is plain label-assisted training (the ablation)."""
    check_param("dual_path", "consistency", consistency, low=0)
    check_param("dual_path", "temperature", temperature, low=0, low_open=True)
    kd = {"temperature": temperature}
    return [Objective("ce", 1.0, rows="labeled"),
            Objective("ce", 1.0, rows="labeled", on=PATH2),
            Objective("kd", consistency, kd, rows="all", on="logits", against=PATH2),
            Objective("kd", consistency, kd, rows="all", on=PATH2, against="head:logits")]
