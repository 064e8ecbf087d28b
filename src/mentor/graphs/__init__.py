"""Graph nodes (METHODS.md §38, §60 ``GraphNodes``): a hypergraph and its node data, the
generated testbed TB-GRAPH, the HGNN teacher and LightHGNN / LightHGNN⁺ distillation into an
MLP that needs no graph at inference."""

from .hgnn import HGNN, TrainedHGNN, hgnn_propagation, train_hgnn
from .lighthgnn import (DistilledMLP, NodeLogitsTeacher, distill_mlp, hyperedge_kd,
                        hyperedge_mean, hyperedge_reliability, lighthgnn_loss, node_entropy,
                        reliability, sampled_hyperedge_kd, student_mlp)
from .source import graph_splits
from .teacher import GraphTeacher, fit_graph_teacher, train_graph_teacher
from .testbed import Hypergraph, NodeData, contextual_hypergraph

__all__ = ["HGNN", "TrainedHGNN", "hgnn_propagation", "train_hgnn", "DistilledMLP",
           "NodeLogitsTeacher", "distill_mlp", "hyperedge_kd", "hyperedge_mean",
           "hyperedge_reliability", "lighthgnn_loss", "node_entropy", "reliability",
           "sampled_hyperedge_kd", "student_mlp", "Hypergraph", "NodeData",
           "contextual_hypergraph", "graph_splits", "GraphTeacher", "fit_graph_teacher",
           "train_graph_teacher"]
