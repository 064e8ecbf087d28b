"""Teacher sources: a torch module, an ensemble, a scikit-learn model, a safetensors checkpoint.

Every teacher exposes ``num_classes`` and ``logits(x)`` (called without gradients). Teachers
that produce probabilities return log-probabilities as logits, so ``softmax`` recovers them.
"""

from .sources import (EnsembleTeacher, ModuleTeacher, ProbaTeacher, as_teacher,
                      load_checkpoint_teacher)

__all__ = ["EnsembleTeacher", "ModuleTeacher", "ProbaTeacher", "as_teacher",
           "load_checkpoint_teacher"]
