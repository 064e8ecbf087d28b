"""Language-model distillation (the ``tokens`` task): token-level divergences
(:mod:`mentor.losses.tokens`), the off-policy, sequence-level, on-policy and bridge regimes
(:func:`distill_lm`), teachers behind one signal interface (local model, stored top-k,
served API), vocabulary alignment, hidden-state distillation
(:mod:`mentor.losses.hidden`), preference distillation from a black-box teacher
(:mod:`mentor.lm.preference`) and a labeler for black-box LLM teachers
(:mod:`mentor.lm.labeler`). The synthetic TB-LM testbed lives in :mod:`mentor.lm.testbed`.

Everything runs on plain torch modules; Hugging Face ``transformers`` models (the ``lm``
extra) work wherever a module maps ids ``(B, L)`` to logits ``(B, L, V)``.
"""

from ..losses.tokens import DIVERGENCES, TopKSignal, chunked_head_divergence, token_count, token_divergence
from .distill import REGIMES, LMResult, distill_lm
from .generate import complete, complete_data, exact_match, logits_of
from .labeler_hf import TransformersBackend
from .models import CharLM
from .served_http import CompletionsClient
from .signals import LocalTeacher, ServedTeacher, StoredTopKTeacher
from .testbed import Addition, TokenData
from .vocab import VocabAlignment, align_vocab

__all__ = ["Addition", "CharLM", "CompletionsClient", "DIVERGENCES", "LMResult", "LocalTeacher",
           "REGIMES", "ServedTeacher", "StoredTopKTeacher", "TokenData", "TopKSignal",
           "TransformersBackend",
           "VocabAlignment", "align_vocab", "chunked_head_divergence", "complete",
           "complete_data", "distill_lm", "exact_match", "logits_of", "token_count",
           "token_divergence"]
