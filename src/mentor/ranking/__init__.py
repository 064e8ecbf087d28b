"""Ranking (METHODS.md §25 MemReranker, §60 ``Ranking``): (query, candidate) data, the
generated testbed TB-RANK with simulated pairwise LLM judges, ranking metrics (MAP, nDCG@k,
ECE), MemReranker's pairwise → pointwise calibration (both presentation orders,
Bradley–Terry, calibrated sigmoid), its student losses (soft BCE, InfoNCE with hard
negatives) and a pointwise student scorer trained on them."""

from .calibration import (Comparisons, SoftLabels, average_orders, bradley_terry, compare_all,
                          fit_calibration, query_table, soft_labels)
from .losses import info_nce, soft_bce
from .metrics import (average_precision_per_query, binary_ece, mean_average_precision, ndcg,
                      ndcg_per_query, ranked_grades)
from .testbed import RankingData, SimulatedTeachers, majority_vote, tb_rank
from .train import ARMS, TrainedScorer, compare_labels, evaluate, student_scorer, train_scorer

__all__ = ["Comparisons", "SoftLabels", "average_orders", "bradley_terry", "compare_all",
           "fit_calibration", "query_table", "soft_labels", "info_nce", "soft_bce",
           "average_precision_per_query", "binary_ece", "mean_average_precision", "ndcg",
           "ndcg_per_query", "ranked_grades", "RankingData", "SimulatedTeachers",
           "majority_vote", "tb_rank", "ARMS", "TrainedScorer", "compare_labels", "evaluate",
           "student_scorer", "train_scorer"]
