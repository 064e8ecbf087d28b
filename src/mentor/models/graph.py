"""Models that read a graph (task ``graph_nodes``): called ``module(x, propagation)`` on every
node's features at once, so they can be a graph teacher
(:func:`mentor.graphs.teacher.train_graph_teacher`), never a student, which reads node
features only."""

from __future__ import annotations

from typing import Sequence

from torch import nn

from ..errors import MentorError
from ..registry import MODELS

GRAPH_MODELS = ("hgnn",)  # the registered models that read the graph


@MODELS.register("hgnn", description="graph nodes: two HGNN layers over the hypergraph's "
                 "normalized propagation (hidden width, dropout 0.5); reads the graph, so it "
                 "is a teacher for task: graph_nodes, never a student",
                 paper="Feng et al. 2019, Hypergraph Neural Networks")
def hgnn(input_shape: Sequence[int], num_classes: int, *, hidden: Sequence[int] = (32,),
         dropout: float = 0.5) -> nn.Module:
    """``hidden``: one width, the hidden layer (LightHGNN's teacher: 32)."""
    if len(hidden) != 1:
        raise MentorError(f"hgnn: hidden is {list(hidden)}; expected one width (the hidden "
                          "layer), e.g. [32]")
    if len(input_shape) != 1:
        raise MentorError(f"hgnn reads node feature vectors; got input shape "
                          f"{list(input_shape)}, expected (features,)")
    from ..graphs.hgnn import HGNN
    return HGNN(int(input_shape[0]), num_classes, int(hidden[0]), float(dropout))
