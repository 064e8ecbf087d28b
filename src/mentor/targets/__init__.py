"""Target refiners: ``Targets -> Targets`` steps between the teacher and the losses."""

from .ferkd import FerKDCalibration
from .prototypes import PrototypeSoftLabels

__all__ = ["FerKDCalibration", "PrototypeSoftLabels"]
