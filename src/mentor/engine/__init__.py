"""The training engine: one loop for every method (DESIGN.md §2), on HF Accelerate."""

from .accel import get_accelerator
from .loop import FitResult, fit
from ..losses.objective import Objective

__all__ = ["FitResult", "Objective", "fit", "get_accelerator"]
