"""Task adapters: what a model output is and how it is scored."""

from .classification import CLASSIFICATION, Classification
from .tagging import PAD, TAGGING, Tagging
from .tokens import TOKENS, Tokens, logits_of

__all__ = ["CLASSIFICATION", "Classification", "PAD", "TAGGING", "Tagging", "TOKENS", "Tokens",
           "logits_of"]
