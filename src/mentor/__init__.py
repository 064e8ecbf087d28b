"""mentor: teacher-student learning on one engine.

The parts (losses, teachers, updaters, data, models) are importable on their own; the
engine (:func:`mentor.engine.fit`) and :class:`Distiller` put them together.
"""

from . import (losses, methods, models, select, targets, tasks, teachers,  # noqa: F401
               updates)
from .api import Distiller
from .data import load as load_data
from .errors import MentorError

__version__ = "0.1.0"
__all__ = ["Distiller", "MentorError", "load_data", "losses", "methods", "models", "teachers",
           "updates"]
