"""Error types. A user mistake is one sentence naming what, the value and what is expected."""

from __future__ import annotations


class MentorError(ValueError):
    """Base class for every error caused by user input (recipe, data, checkpoint, flag).

    The CLI prints the message without a traceback and exits with code 2.
    """


class RecipeError(MentorError):
    """A recipe failed validation; ``problems`` lists every problem found in the file."""

    def __init__(self, problems: list[str], source: str = "recipe"):
        self.problems = list(problems)
        self.source = source
        if len(self.problems) == 1:
            msg = f"{source}: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            msg = f"{source}: {len(self.problems)} problems:\n{lines}"
        super().__init__(msg)


class DataError(MentorError):
    """Data that cannot be used: missing file, NaN values, labels out of range, ..."""


class CheckpointError(MentorError):
    """A checkpoint that is missing, unreadable, unsafe or does not fit the model."""


class ParameterError(MentorError):
    """A component parameter outside its declared range."""


class WriteError(MentorError):
    """A file mentor writes cannot be written: no space left on the device, a read-only file
    system, or no permission. Names the file; the temp file is removed, the old one kept."""


class TrainingFault(RuntimeError):
    """A fault found while training (NaN/inf loss); names the step and the component."""


def check_param(component: str, name: str, value, *, low=None, high=None,
                low_open: bool = False, high_open: bool = False) -> None:
    """Raise :class:`ParameterError` unless ``low <(=) value <(=) high``.

    One template for every component: ``kd.temperature must be > 0, got -1``. A value that
    is not a number, or is NaN or infinite, is refused too (a NaN passes every comparison).
    """
    import math
    try:
        number = None if isinstance(value, (str, bytes)) else float(value)
    except (TypeError, ValueError, RuntimeError):
        number = None
    if number is None:
        raise ParameterError(f"{component}.{name} must be a number, got {value!r}")
    if not math.isfinite(number):
        raise ParameterError(f"{component}.{name} must be a finite number, got {value!r}")
    bad = False
    if low is not None and (value <= low if low_open else value < low):
        bad = True
    if high is not None and (value >= high if high_open else value > high):
        bad = True
    if not bad:
        return
    if low is not None and high is not None:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        expect = f"in {lo}{low}, {high}{hi}"
    elif low is not None:
        expect = f"{'>' if low_open else '>='} {low}"
    else:
        expect = f"{'<' if high_open else '<='} {high}"
    raise ParameterError(f"{component}.{name} must be {expect}, got {value!r}")


def check_positive_int(component: str, name: str, value, what: str) -> int:
    """``value`` as an int, or :class:`MentorError` unless it is an integer >= 1 (bools
    refused): ``layer_map.student_layers must be a positive integer (what), got 'x'``."""
    import numbers
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise MentorError(f"{component}.{name} must be a positive integer ({what}), got "
                          f"{value!r}")
    check_param(component, name, int(value), low=1)
    return int(value)
