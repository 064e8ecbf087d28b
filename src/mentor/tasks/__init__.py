"""Task adapters: what a model output is and how it is scored."""

from .classification import CLASSIFICATION, Classification
from .graph_nodes import GRAPH_NODES, GraphNodes
from .tagging import PAD, TAGGING, Tagging
from .tokens import TOKENS, Tokens, logits_of

__all__ = ["CLASSIFICATION", "Classification", "GRAPH_NODES", "GraphNodes", "PAD", "TAGGING",
           "Tagging", "TOKENS", "Tokens", "logits_of"]
