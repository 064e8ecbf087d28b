"""One-sentence checks of a function's numeric arguments (the API-level task packages:
``mentor.stereo``, ``mentor.keypoints``): the argument's name, its value, what is expected."""

from __future__ import annotations

from ..errors import MentorError


def positive_int(name: str, value) -> int:
    """``value`` if it is an integer >= 1 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MentorError(f"{name} must be a positive integer, got {value!r}")
    return value


def non_negative_int(name: str, value) -> int:
    """``value`` if it is an integer >= 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MentorError(f"{name} must be an integer >= 0, got {value!r}")
    return value


def non_negative(name: str, value) -> float:
    """``value`` as a float if it is >= 0 (NaN refused)."""
    if not float(value) >= 0:
        raise MentorError(f"{name} must be >= 0, got {value!r}")
    return float(value)


def unit_interval(name: str, value) -> float:
    """``value`` as a float if it lies in [0, 1]."""
    if not 0.0 <= float(value) <= 1.0:
        raise MentorError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)
