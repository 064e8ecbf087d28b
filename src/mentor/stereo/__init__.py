"""Unsupervised stereo with a multi-baseline teacher (METHODS.md §53 S³, §60
``DenseRegression``): the generated testbed TB-STEREO (a reference view and views at
baselines b and 2b, true disparities and occlusion masks), EPE and bad-pixel metrics over
occluded / non-occluded pixels, a small CPU stereo network, S³'s parts (baseline rescaling,
EMA teacher, occlusion-aware weights from the teacher's left-right consistency, photometric
and smoothness losses) and its ablations under one budget (Xu et al., "Unsupervised Stereo
via Multi-Baseline Geometry-Consistent Self-Training", arXiv 2508.10838)."""

from .metrics import bad_pixel_rate, epe, region_metrics
from .model import TinyStereo, cost_volume, tiny_stereo
from .s3 import (ema_update, lr_difference, occlusion_weights, photometric_loss,
                 pseudo_label_loss, rescale, right_disparity, smoothness_loss, warp)
from .testbed import StereoData, render, tb_stereo
from .train import (ARMS, Arm, TrainedStereo, compare_arms, evaluate, predict, pseudo_labels,
                    train_stereo)

__all__ = ["bad_pixel_rate", "epe", "region_metrics", "TinyStereo", "cost_volume",
           "tiny_stereo", "ema_update", "lr_difference", "occlusion_weights",
           "photometric_loss", "pseudo_label_loss", "rescale", "right_disparity",
           "smoothness_loss", "warp", "StereoData", "render", "tb_stereo", "ARMS", "Arm",
           "TrainedStereo", "compare_arms", "evaluate", "predict", "pseudo_labels",
           "train_stereo"]
