"""Name -> component lookup, one registry per component kind.

Built-in components register themselves with the decorator when their module is imported;
plugins (entry points of the group ``mentor.components``, see :mod:`mentor.plugins`) and user
code register theirs with the same decorators. Every entry records its ``source``:
``built-in``, ``plugin <distribution> <version>`` or ``user code (module <name>)``.
Methods and recipes refer to components by these names only; nothing is imported by path.
The first lookup (``get``, ``entry``, ``names``, ``entries``, ``in``) loads the plugins once.
"""

from __future__ import annotations

import contextvars
import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from .errors import MentorError


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    description: str
    paper: str = ""
    source: str = "built-in"


class DuplicateName(MentorError):
    """A name registered twice in one registry (a :class:`ValueError`, as before)."""

    def __init__(self, kind: str, name: str, existing: str):
        self.kind, self.name, self.existing = kind, name, existing
        super().__init__(f"{kind} {name!r} is already registered ({existing})")


class UnknownName(MentorError):
    """A name no component of a registry has (with close names and the known ones)."""


# set while a plugin's entry point loads: what it registers records this source, and the
# (registry, name) pairs are logged so a plugin that fails half-way is rolled back
_PLUGIN_LOAD: contextvars.ContextVar[tuple[str, list] | None] = \
    contextvars.ContextVar("mentor_plugin_load", default=None)
_plugins_ready = False  # set by mentor.plugins once every plugin has loaded
_plugin_loader = None  # mentor.plugins.load_plugins, installed when mentor.plugins is imported


def set_plugin_loader(loader) -> None:
    """Install the function that loads installed plugins at the first lookup (called by
    :mod:`mentor.plugins` when it is imported: the registry does not import it, so the two
    modules form no import cycle)."""
    global _plugin_loader
    _plugin_loader = loader


def default_source(module: str | None) -> str:
    """The source recorded for a component defined in ``module`` (no explicit source)."""
    loading = _PLUGIN_LOAD.get()
    if loading is not None:
        return loading[0]
    if not module or module == "mentor" or module.startswith("mentor."):
        return "built-in"
    return f"user code (module {module})"


def _load_plugins() -> None:
    if not _plugins_ready and _plugin_loader is not None:
        _plugin_loader()


@dataclass
class Registry:
    kind: str
    _entries: dict[str, Entry] = field(default_factory=dict)

    def register(self, name: str, *, description: str, paper: str = "",
                 source: str | None = None, module: str | None = None) -> Callable[[Any], Any]:
        """Decorator registering ``obj`` as ``name``. ``source`` defaults to the plugin being
        loaded, else ``built-in`` for mentor's modules and ``user code (module M)`` for the
        module ``module`` (default: ``obj.__module__``)."""
        def deco(obj):
            if name in self._entries:
                raise DuplicateName(self.kind, name, self._entries[name].source)
            src = source or default_source(module or getattr(obj, "__module__", None))
            self._entries[name] = Entry(name, obj, description, paper, src)
            loading = _PLUGIN_LOAD.get()
            if loading is not None:
                loading[1].append((self, name))
            return obj
        return deco

    def unregister(self, name: str) -> Entry:
        """Remove ``name`` (user code and tests that register temporary components)."""
        try:
            return self._entries.pop(name)
        except KeyError:
            raise MentorError(f"unknown {self.kind} {name!r}; nothing to unregister") from None

    def get(self, name: str) -> Any:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry:
        _load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownName(f"unknown {self.kind} {name!r}{suggest(name, self._entries)}; "
                              f"known: {', '.join(sorted(self._entries))}") from None

    def names(self) -> list[str]:
        _load_plugins()
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: str) -> bool:
        _load_plugins()
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


class Kind(NamedTuple):
    """A registry as ``mentor recipes`` lists it: a title and the recipe field that names its
    parts (``[]``: an item of a list)."""

    registry: Registry
    title: str
    field: str


# every registry, in the order ``mentor recipes`` lists them: a new registry belongs here
KINDS = (Kind(METHODS, "methods", "methods[].name"),
         Kind(LOSSES, "losses", "methods[].objectives[].loss"),
         Kind(REFINERS, "refiners", "methods[].refiners[].name"),
         Kind(UPDATERS, "teacher updaters", "methods[].updater.name"),
         Kind(SELECTORS, "selectors", "active.selectors[].name"),
         Kind(MIXERS, "mixers", "methods[].mixers[].name"),
         Kind(AUGMENTS, "augmentations", "train.augment.strong[].name"),
         Kind(MODELS, "models", "student.model"),
         Kind(DATASETS, "data sets", "data.source"),
         Kind(TASKS, "tasks", "task"))
