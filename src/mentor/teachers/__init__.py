"""Teacher sources: a torch module, an ensemble, a scikit-learn model, a safetensors checkpoint,
a committee of teachers with fusion, and privileged-input teachers.

Every teacher exposes ``num_classes`` and ``logits(x)`` (called without gradients). Teachers
that produce probabilities return log-probabilities as logits, so ``softmax`` recovers them.
Teachers that need each sample's training-split position (privileged inputs) also define
``logits_at(x, index)``.
"""

from .committee import CommitteeTeacher
from .label_assisted import LabelAssistedNet, dual_path_objectives, label_input_shape
from .privileged import PrivilegedInputTeacher, label_channel
from .sources import (EnsembleTeacher, LiveTeacher, ModuleTeacher, ProbaTeacher, RawInputTeacher,
                      as_teacher, load_checkpoint_teacher)

__all__ = ["CommitteeTeacher", "EnsembleTeacher", "LabelAssistedNet", "LiveTeacher", "ModuleTeacher",
           "PrivilegedInputTeacher", "ProbaTeacher", "RawInputTeacher", "as_teacher",
           "dual_path_objectives", "label_channel", "label_input_shape",
           "load_checkpoint_teacher"]
