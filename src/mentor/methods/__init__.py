"""Named methods: each is a composition of registered parts (objectives, refiners, updater,
mixers, views), declared once with its parameters (a pydantic model, ranges included).

- :mod:`mentor.methods.plan`: what a method is (:class:`MethodPlan`, :class:`Method`,
  :func:`register_method`) and :meth:`MethodPlan.fit`, the one wiring from a plan to the
  training loop that every entry point calls;
- :mod:`mentor.methods.kd`: distillation presets (an external teacher);
- :mod:`mentor.methods.ssl`: semi-supervised presets (a teacher built from the student);
- :mod:`mentor.methods.compose`: ``compose``, a method a recipe builds from registered parts.

The engine never branches on a method's name.
"""

from .plan import (Claim, Method, MethodPlan, check_method_params,  # noqa: F401
                   get_method, register_method)
from . import kd  # noqa: E402,F401,I001  (registers the distillation presets first)
from . import ssl  # noqa: E402,F401  (then the semi-supervised presets)
from . import compose  # noqa: E402,F401  (and `compose`: a method built in a recipe)
from .kd import hinton, pruning_kd_weight  # noqa: E402,F401
from ..registry import METHODS  # noqa: E402,F401  (the registry of named methods)

__all__ = ["Claim", "Method", "MethodPlan", "check_method_params", "get_method", "hinton",
           "pruning_kd_weight", "register_method"]
