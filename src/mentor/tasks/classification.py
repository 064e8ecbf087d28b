"""Classification: outputs are class logits ``(B, C)``; a prediction is the arg-max."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..data.rows import first_tensor
from ..errors import MentorError
from ..registry import TASKS
from .row_labels import RowLabels


class Classification(RowLabels):
    """The classification task adapter (the contract :class:`mentor.contracts.TaskAdapter`):
    a row's label is its class, ``-1`` where unseen; outputs are class logits."""

    name = "classification"
    metric = "accuracy"
    higher_is_better = True

    def num_outputs(self, model: nn.Module, example: Tensor | dict[str, Tensor]) -> int:
        """Number of classes ``model`` outputs, checked on two example rows (a tensor or
        named tensors)."""
        example = ({k: v[:2] for k, v in example.items()} if type(example) is dict
                   else example[:2])
        with torch.no_grad():
            was = model.training
            model.eval()
            out = self.forward(model, example)
            model.train(was)
        n = len(first_tensor(example))
        if out.ndim != 2 or out.shape[0] != n:
            raise MentorError(f"student outputs shape {tuple(out.shape)} for {n} samples; "
                              "expected (samples, classes)")
        return int(out.shape[-1])

    def check(self, model: nn.Module, teacher, example: Tensor | dict[str, Tensor],
              num_classes: int) -> None:
        """The student (and teacher) must output ``num_classes`` logits per sample."""
        got = self.num_outputs(model, example)
        n = min(len(first_tensor(example)), 2)
        if got != num_classes:
            raise MentorError(f"student outputs shape ({n}, {got}) for {n} samples; expected "
                              f"({n}, {num_classes}) for {num_classes} classes")
        if teacher is not None and teacher.num_classes != num_classes:
            raise MentorError(f"teacher outputs {teacher.num_classes} classes but the student "
                              f"and data have {num_classes}; expected the same number")

    def predict(self, logits: Tensor) -> Tensor:
        """The arg-max class of each row."""
        return logits.argmax(-1)

    def example(self, num_outputs: int) -> tuple[Tensor, Tensor]:
        """Zero outputs and labels of two rows: ``(2, C)`` logits, class 0."""
        return torch.zeros(2, num_outputs), torch.zeros(2, dtype=torch.long)

    def label_name(self, label: Tensor) -> str:
        return f"class {int(label)}"

    def correct(self, logits: Tensor, y: Tensor) -> Tensor:
        """Per-row 1/0: the prediction equals ``y`` (``y`` may be labels or other logits)."""
        target = y.argmax(-1) if y.ndim == logits.ndim else y
        return self.predict(logits) == target

    def score(self, logits: Tensor, y: Tensor) -> Tensor:
        """Accuracy's per-row values: the prediction equals the label."""
        return self.correct(logits, y)


CLASSIFICATION = TASKS.register("classification", description="class logits (B, C); arg-max "
                                "accuracy and agreement")(Classification())
