"""mentor: teacher-student learning on one engine.

The parts (losses, teachers, updaters, data, models) are importable on their own; the
engine (:func:`mentor.engine.fit`) and :class:`Distiller` put them together.
"""

from . import (losses, methods, mix, models, select, targets, tasks,  # noqa: F401
               teachers, updates)
from .api import Distiller, SemiSupervised
from .data import load as load_data
from .errors import MentorError

__version__ = "0.1.0"
__all__ = ["Distiller", "MentorError", "SemiSupervised", "load_data", "losses", "methods", "models", "teachers",
           "updates"]
