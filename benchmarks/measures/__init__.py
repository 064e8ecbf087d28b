"""The measurement registry behind every figure in README.md and docs/.

A *measurement* is a function ``measure(quick: bool) -> dict[str, str]`` registered with
:func:`measurement`: it reruns one published experiment (a recipe, a benchmark, the setup of
an effect test) and returns the figures the docs quote, already formatted (``"95.45 ± 0.53
%"``). ``python benchmarks/docs_numbers.py run NAME`` writes them into ``docs/numbers.json``;
``python benchmarks/docs_numbers.py render`` puts them into README.md and docs/*.md through
the templates in ``docs/templates/`` (``{{name.key}}`` placeholders), and
``tests/docs/test_docs_numbers.py`` fails when a published figure differs from the file.

``ci``: ``"full"`` -- the test suite reruns the measurement in full and compares every value
with ``docs/numbers.json`` (cheap, deterministic measurements); ``"quick"`` -- the test suite
runs the ``quick=True`` form (fewer seeds, epochs or repetitions) and checks that it returns
the same keys; the full form runs on demand. ``volatile``: key patterns (fnmatch) of
machine-dependent figures (timings, speed-ups) that a ``"full"`` check compares by name only.
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable, Literal

Measure = Callable[[bool], dict[str, str]]


@dataclass(frozen=True)
class Measurement:
    name: str
    fn: Measure
    about: str  # one line: what is measured, with what (shown in docs/numbers.md)
    ci: Literal["full", "quick"]
    minutes: float  # full run on this project's 2-core machine, one thread (approximate)
    volatile: tuple[str, ...] = ()  # key patterns of timings: checked by name only

    def is_volatile(self, key: str) -> bool:
        return any(fnmatch.fnmatchcase(key, p) for p in self.volatile)

    def __call__(self, quick: bool = False) -> dict[str, str]:
        out = self.fn(quick)
        bad = [k for k, v in out.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise TypeError(f"measurement {self.name!r} returned non-string key/value for "
                            f"{bad[0]!r}; expected formatted strings")
        return out

    @property
    def command(self) -> str:
        return f"python benchmarks/docs_numbers.py run {self.name}"


_REGISTRY: dict[str, Measurement] = {}


def measurement(name: str, *, about: str, ci: Literal["full", "quick"], minutes: float,
                volatile: tuple[str, ...] = ()):
    """Register ``fn(quick) -> {key: formatted figure}`` as the measurement ``name``."""
    if ci not in ("full", "quick"):
        raise ValueError(f"measurement ci must be 'full' or 'quick', got {ci!r}")

    def deco(fn: Measure) -> Measure:
        if name in _REGISTRY:
            raise ValueError(f"measurement {name!r} is registered twice")
        _REGISTRY[name] = Measurement(name, fn, about, ci, minutes, tuple(volatile))
        return fn
    return deco


def registry() -> dict[str, Measurement]:
    """Every measurement, by name (imports each module of this package once)."""
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    return dict(sorted(_REGISTRY.items()))
