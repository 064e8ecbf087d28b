"""Loss registration: declared parameter constraints checked with one error template."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import ParameterError, check_param
from ..registry import LOSSES


@dataclass(frozen=True)
class LossSpec:
    """A registered loss: the pure function, what it consumes, its parameters and ranges.

    ``constraints`` maps a parameter to the keyword arguments of
    :func:`mentor.errors.check_param` (``low``, ``high``, ``low_open``, ``high_open``).
    """

    name: str
    fn: Callable[..., Any]  # public: checks parameters, returns per-example values
    needs_teacher: bool
    needs_labels: bool
    defaults: dict[str, Any]
    constraints: dict[str, dict[str, Any]] = field(default_factory=dict)
    logit_loss: bool = True  # standardization applies to its logit inputs
    impl: Callable[..., Any] | None = None  # same values, parameters not re-checked
    mean_impl: Callable[..., Any] | None = None  # scale x batch mean, one fused expression
    trailing_dims: tuple[int, ...] = ()  # example input (B, C, *trailing) for contract tests
    batch_coupled: bool = False  # a row's value depends on batch statistics (e.g. USKD)

    def check(self, params: dict[str, Any]) -> dict[str, Any]:
        """Return defaults updated with ``params``; raise on unknown or out-of-range values."""
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            from ..registry import suggest
            raise ParameterError(f"{self.name}: unknown parameter {unknown[0]!r}"
                                 f"{suggest(unknown[0], self.defaults)}; "
                                 f"expected one of {sorted(self.defaults)}")
        merged = {**self.defaults, **params}
        self.check_values(merged)
        return merged

    def check_values(self, values: dict[str, Any]) -> None:
        """Type and range checks of the constrained parameters present in ``values``."""
        for key, value in values.items():
            rule = self.constraints.get(key)
            if rule is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParameterError(f"{self.name}.{key} must be a number, got {value!r}")
            check_param(self.name, key, value, **rule)


def register_loss(name: str, *, description: str, paper: str = "", needs_teacher: bool,
                  needs_labels: bool, defaults: dict[str, Any],
                  constraints: dict[str, dict[str, Any]] | None = None,
                  logit_loss: bool = True, mean: Callable[..., Any] | None = None,
                  trailing_dims: tuple[int, ...] = (), batch_coupled: bool = False):
    """Decorator: register a loss implementation with its declared constraints.

    Returns the public function: it checks its parameters against the declared constraints,
    then calls the implementation. The engine calls the implementation directly (parameters
    are checked once when an objective is built) and, where given, ``mean``:
    ``mean(student_logits, teacher_logits, labels, *, scale, **params)``, ``scale`` (the
    objective's weight) times the batch mean of the same values in one fused expression
    (cheaper forward and backward: the engine then multiplies by no weight of its own).
    Public as :func:`mentor.register_loss` for plugins and user code.
    """

    def deco(impl):
        def checked(student_logits, teacher_logits=None, labels=None, **params):
            spec.check_values(params)
            return impl(student_logits, teacher_logits, labels, **params)

        functools.update_wrapper(checked, impl)
        spec = LossSpec(name, checked, needs_teacher, needs_labels, dict(defaults),
                        dict(constraints or {}), logit_loss, impl, mean, tuple(trailing_dims),
                        batch_coupled)
        LOSSES.register(name, description=description, paper=paper,
                        module=getattr(impl, "__module__", None))(spec)
        checked.spec = spec
        return checked

    return deco


def loss_spec(name: str) -> LossSpec:
    return LOSSES.get(name)
