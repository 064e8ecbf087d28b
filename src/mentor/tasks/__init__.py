"""Task adapters: what a model output is and how it is scored."""

from .classification import CLASSIFICATION, Classification
from .tokens import TOKENS, Tokens, logits_of

__all__ = ["CLASSIFICATION", "Classification", "TOKENS", "Tokens", "logits_of"]
