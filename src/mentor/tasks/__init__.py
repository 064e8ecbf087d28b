"""Task adapters: what a model output is and how it is scored."""

from .classification import CLASSIFICATION, Classification

__all__ = ["CLASSIFICATION", "Classification"]
