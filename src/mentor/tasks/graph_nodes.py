"""The graph-nodes task adapter (METHODS.md §60 ``GraphNodes``; LightHGNN, §38): a row is a
node and its label the node's class, scored by accuracy -- the classification adapter's
outputs, labels and metric. What differs is outside the adapter: the data are a graph's
nodes (:func:`mentor.graphs.source.graph_splits`, the training split every node in id
order) and the teacher may read the graph (:class:`mentor.graphs.teacher.GraphTeacher`,
served by node id) while the student reads node features only."""

from __future__ import annotations

from ..registry import TASKS
from .classification import Classification


class GraphNodes(Classification):
    """Node classification: class logits per node (B, C), accuracy."""

    name = "graph_nodes"


GRAPH_NODES = TASKS.register("graph_nodes", description="node classification on a graph: "
                             "class logits per node (B, C), accuracy; the teacher may read "
                             "the graph, the student reads node features")(GraphNodes())
