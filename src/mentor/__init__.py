"""mentor: teacher-student learning on one engine.

The parts (losses, teachers, updaters, data, models) are importable on their own; the
engine (:func:`mentor.engine.fit`) and :class:`Distiller` put them together.
:func:`register_method` and :func:`register_loss` add components from user code or plugins
(:mod:`mentor.plugins`).
"""

from . import plugins  # noqa: F401,I001  (first: registry lookups load installed plugins)
from . import (losses, methods, mix, models, select, targets, tasks,  # noqa: F401
               teachers, updates)
from .api import Distiller, SemiSupervised
from .data import load as load_data
from .errors import MentorError
from .losses.base import register_loss
from .methods import MethodPlan, register_method

__version__ = "0.1.0"
__all__ = ["Distiller", "MentorError", "MethodPlan", "SemiSupervised", "register_loss",
           "register_method", "load_data", "losses", "methods", "models", "teachers",
           "updates"]
