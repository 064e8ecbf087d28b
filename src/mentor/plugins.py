"""Components from other packages: entry points of the group ``mentor.components``.

A plugin distribution declares, in its ``pyproject.toml``::

    [project.entry-points."mentor.components"]
    mykd = "mykd.plugin"            # a module: importing it registers the components
    # or  mykd = "mykd.plugin:setup"   a callable, called with no arguments

and registers its components with the public decorators (:func:`mentor.register_method`,
:func:`mentor.register_loss`, or ``mentor.registry.<KIND>.register``). Every entry
registered while an entry point loads records ``source="plugin <distribution> <version>"``.

Plugins load once per process, lazily, at the first registry lookup (a recipe naming a
method, ``mentor.Distiller(..., method=...)``, ``mentor recipes``); the ``mentor`` command
loads them before any command runs. A plugin that fails to import, or registers a name that
exists already, raises one :class:`PluginError` naming the entry point and its distribution
(the CLI exits with code 2); nothing it registered before failing is kept. The environment
variable ``MENTOR_NO_PLUGINS=1`` turns discovery off. Recipes still name components only:
nothing is ever imported from a path written in a recipe.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType

from . import registry
from .errors import MentorError

GROUP = "mentor.components"
DISABLE_ENV = "MENTOR_NO_PLUGINS"


class PluginError(MentorError):
    """An installed plugin that cannot be loaded (import error, name registered twice)."""


@dataclass(frozen=True)
class Plugin:
    """One loaded entry point and what it registered (``kind name`` strings)."""

    name: str
    value: str
    distribution: str
    version: str
    components: tuple[str, ...]

    @property
    def source(self) -> str:
        return f"plugin {self.distribution} {self.version}"


_state = "new"  # new -> loading -> done | failed
_error: PluginError | None = None
_loaded: list[Plugin] = []


def plugins_disabled() -> bool:
    """True when ``MENTOR_NO_PLUGINS`` is set to anything but ``""``, ``0``, ``false``, ``no``."""
    return os.environ.get(DISABLE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def loaded_plugins() -> list[Plugin]:
    """The plugins loaded in this process (empty before loading or when disabled)."""
    return list(_loaded)


def load_plugins() -> list[Plugin]:
    """Load every ``mentor.components`` entry point once; later calls return the same list
    (or raise the same :class:`PluginError` again)."""
    global _state, _error
    if _state == "failed":
        raise _error
    if _state in ("done", "loading") or _package_initializing():
        return list(_loaded)
    _state = "loading"
    try:
        if not plugins_disabled():
            for ep in _entry_points():
                _loaded.append(_load_one(ep))
    except PluginError as e:
        _state, _error = "failed", e
        raise
    except BaseException:
        _state = "new"
        raise
    _state = "done"
    registry._plugins_ready = True
    return list(_loaded)


def _package_initializing() -> bool:
    """True while ``mentor/__init__.py`` itself runs: a plugin importing ``mentor`` then would
    see a half-built package, so loading waits for the next lookup."""
    pkg = sys.modules.get("mentor")
    return pkg is None or bool(getattr(getattr(pkg, "__spec__", None), "_initializing", False))


def _dist_of(ep) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "unknown distribution", "?"
    return dist.metadata["Name"] or "unknown distribution", dist.version or "?"


def _entry_points() -> list:
    eps = metadata.entry_points(group=GROUP)
    return sorted(eps, key=lambda ep: (_dist_of(ep)[0].lower(), ep.name))


def _load_one(ep) -> Plugin:
    dist, version = _dist_of(ep)
    who = f"plugin {ep.name!r} (entry point {ep.value!r} of {dist} {version})"
    log: list = []
    token = registry._PLUGIN_LOAD.set((f"plugin {dist} {version}", log))
    try:
        obj = ep.load()
        if callable(obj) and not isinstance(obj, ModuleType):
            obj()
    except Exception as e:  # any failure of foreign code is reported as one line
        for reg, name in log:
            reg._entries.pop(name, None)
        if isinstance(e, registry.DuplicateName):
            raise PluginError(f"{who} registers {e.kind} {e.name!r}, which is already "
                              f"registered ({e.existing}); rename it, uninstall one of the two, "
                              f"or set {DISABLE_ENV}=1 to run without plugins") from None
        detail = " ".join(str(e).split()) or "no message"
        raise PluginError(f"{who} failed to load: {type(e).__name__}: {detail}; fix or "
                          f"uninstall it, or set {DISABLE_ENV}=1 to run without plugins") \
            from e
    finally:
        registry._PLUGIN_LOAD.reset(token)
    return Plugin(ep.name, ep.value, dist, version,
                  tuple(f"{reg.kind} {name}" for reg, name in log))


registry.set_plugin_loader(load_plugins)
