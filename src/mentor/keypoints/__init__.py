"""Semi-supervised keypoint heatmaps with a teacher and a reviewer (METHODS.md §11 TRS,
§60 ``KeypointHeatmap``): the generated testbed TB-KPT (stick figures with five
landmarks, few labeled images), Gaussian target heatmaps, PCK and heatmap MSE, a small CPU
heatmap network, geometrically aligned views, and the supervised / mean-teacher / TRS
arms under one budget -- the reviewer being mentor's ``reviewer`` updater with a heatmap
confidence. API level: no registry entry, recipe or CLI path."""

from .metrics import argmax_keypoints, gaussian_heatmaps, heatmap_mse, pck
from .model import TinyPose, tiny_pose
from .testbed import FLIP_PAIRS, NAMES, KeypointData, check_keypoints, tb_kpt
from .train import ARMS, Arm, TrainedPose, compare_arms, evaluate, predict, train_keypoints
from .trs import (View, consistency, heatmap_confidence, mean_teacher, random_views,
                  record_confidence, reviewed_teacher, view_heatmaps, view_images,
                  view_keypoints)

__all__ = ["argmax_keypoints", "gaussian_heatmaps", "heatmap_mse", "pck", "TinyPose",
           "tiny_pose", "FLIP_PAIRS", "NAMES", "KeypointData", "check_keypoints", "tb_kpt",
           "ARMS", "Arm", "TrainedPose", "compare_arms", "evaluate", "predict",
           "train_keypoints", "View", "consistency", "heatmap_confidence", "mean_teacher",
           "random_views", "record_confidence", "reviewed_teacher", "view_heatmaps",
           "view_images", "view_keypoints"]
