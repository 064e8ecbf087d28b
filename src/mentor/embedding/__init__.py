"""Metric embedding for re-identification / retrieval (METHODS.md §60 ``MetricEmbedding``):
the generated testbed TB-REID (identities seen by several cameras, unlabeled training
identities, disjoint validation and test identities split into query and gallery), re-ID
mAP and CMC Rank-k, cluster pseudo-labels (DBSCAN on k-reciprocal Jaccard distances), the
cluster-contrast memory (Dai et al., "Cluster Contrast for Unsupervised Person
Re-Identification", ACCV 2022) and the offline teacher of Learning to Purification (§33;
Lan et al., "Learning to Purification for Unsupervised Person Re-identification", IEEE TIP
2023)."""

from .cluster import cluster_labels, jaccard_distance, label_quality, relabel
from .memory import ClusterMemory, centroid_nce, cluster_centroids
from .metrics import distances, retrieval
from .testbed import ReIDData, tb_reid
from .train import (ARMS, Embedder, TrainedEmbedder, assignment_distillation, compare_arms,
                    embed, evaluate, feature_distillation, raw_features, train_embedder)

__all__ = ["cluster_labels", "jaccard_distance", "label_quality", "relabel", "ClusterMemory",
           "centroid_nce", "cluster_centroids", "distances", "retrieval", "ReIDData",
           "tb_reid", "ARMS", "Embedder", "TrainedEmbedder", "assignment_distillation",
           "compare_arms", "embed", "evaluate", "feature_distillation", "raw_features",
           "train_embedder"]
