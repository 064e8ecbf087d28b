"""Name -> component lookup, one registry per component kind.

Built-in components register themselves with the decorator when their module is imported.
Methods and recipes refer to components by these names only; nothing is imported by path.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import MentorError


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    description: str
    paper: str = ""
    source: str = "built-in"


@dataclass
class Registry:
    kind: str
    _entries: dict[str, Entry] = field(default_factory=dict)

    def register(self, name: str, *, description: str, paper: str = "",
                 source: str = "built-in") -> Callable[[Any], Any]:
        def deco(obj):
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = Entry(name, obj, description, paper, source)
            return obj
        return deco

    def get(self, name: str) -> Any:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise MentorError(f"unknown {self.kind} {name!r}{suggest(name, self._entries)}; "
                              f"known: {', '.join(sorted(self._entries))}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: str) -> bool:
        return name in self._entries


def suggest(word: str, candidates) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    match = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


LOSSES = Registry("loss")
REFINERS = Registry("refiner")
UPDATERS = Registry("teacher updater")
SELECTORS = Registry("selector")
METHODS = Registry("method")
MODELS = Registry("model")
DATASETS = Registry("data set")
TASKS = Registry("task")
AUGMENTS = Registry("augmentation")
MIXERS = Registry("mixer")
