"""Target refiners: ``Targets -> Targets`` steps between the teacher and the losses."""

from .ferkd import FerKDCalibration

__all__ = ["FerKDCalibration"]
