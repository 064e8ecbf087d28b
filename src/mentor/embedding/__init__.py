"""Metric embedding for re-identification / retrieval (METHODS.md §60 ``MetricEmbedding``):
the generated testbed TB-REID (identities seen by several cameras, unlabeled training
identities, disjoint validation and test identities split into query and gallery), re-ID
mAP and CMC Rank-k, cluster pseudo-labels (DBSCAN on k-reciprocal Jaccard distances), the
cluster-contrast memory (Dai et al., "Cluster Contrast for Unsupervised Person
Re-Identification", ACCV 2022) and the offline teacher of Learning to Purification (§33;
Lan et al., "Learning to Purification for Unsupervised Person Re-identification", IEEE TIP
2023); CORE-ReID's part views, multi-view clustering, EMA teacher, fusion head and UDA
pre-training (§43; Nguyen et al., "CORE-ReID: Comprehensive Optimization and Refinement
through Ensemble Fusion in Domain Adaptation for Person Re-identification", Software 2024)."""

from .core import (CORE_ARMS, CoreResult, compare_core_arms, evaluate_views,
                   multiview_labels, pretrain_source, soft_triplet, train_core_reid)
from .multiview import (ECAB, FusionHead, PartEmbedder, bmfn, retrieval_features,
                        view_features)
from .parts import split_parts, tb_reid_parts
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
           "train_embedder", "CORE_ARMS", "CoreResult", "compare_core_arms",
           "evaluate_views", "multiview_labels", "pretrain_source", "soft_triplet",
           "train_core_reid", "ECAB", "FusionHead", "PartEmbedder", "bmfn",
           "retrieval_features", "view_features", "split_parts", "tb_reid_parts"]
