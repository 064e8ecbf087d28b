"""Target refiners: ``Targets -> Targets`` steps between the teacher and the losses."""

from .align import DistributionAlignment
from .cluster import ClusterLabels, cluster_pseudo_labels, matched_accuracy
from .curriculum import CurriculumAdmission, LearnedCorrector
from .ferkd import FerKDCalibration
from .fusion import Consensus, UncertaintyFusion
from .moveout import Association, associate_picks
from .prototypes import PrototypeSoftLabels
from .sub_pseudo import SubPseudoLabels
from .weak import WeakLabelRefiner
from .thresholds import (ConfidenceThreshold, ConfidenceWeight, FlexMatchThreshold,
                         FreeMatchThreshold, GMMThreshold, SoftMatchWeight, gmm_threshold)

__all__ = ["Association", "ClusterLabels", "Consensus", "ConfidenceThreshold", "CurriculumAdmission", "LearnedCorrector", "ConfidenceWeight", "DistributionAlignment",
           "FerKDCalibration", "FlexMatchThreshold", "FreeMatchThreshold", "GMMThreshold",
           "PrototypeSoftLabels", "SoftMatchWeight", "SubPseudoLabels", "UncertaintyFusion", "WeakLabelRefiner", "associate_picks", "cluster_pseudo_labels", "gmm_threshold",
           "matched_accuracy"]
