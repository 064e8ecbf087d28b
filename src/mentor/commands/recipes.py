"""``mentor recipes``: every registered part, kind by kind, and one part in full (``show``).

The kinds are the registries of :data:`mentor.registry.KINDS` (a registry missing from it
follows them) and the teacher fusions a recipe's ``teacher.combine`` names. A part's
parameters are read from what builds it: a method's parameter model, a loss's declared
defaults and signature, a class's or a function's signature. ``show`` prints an example of
where the part goes in a recipe; it validates as written unless a parameter without a
default reads ``<type>`` (a value to fill in).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any, get_args

import yaml
from pydantic import BaseModel, create_model
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import MentorError
from ..registry import KINDS, Entry, Kind, Registry, suggest

# the modules whose import registers mentor's own parts (plugins load at the first lookup)

LINES = 3  # a description in a listing wraps over at most this many lines
CUT = " …"  # ends a description shortened to fit; `mentor recipes show NAME` has it whole
SHOW_HINT = ("A description that ends in … is cut to fit: `mentor recipes show NAME` prints a "
             "part whole (description, paper, parameters with types and defaults, an example "
             "for the recipe); KIND:NAME picks one kind when several use a name (loss:kd).")

# example values for parameters without a usable default (an objective for a method
# composed around a part, one weight per member of the example ensemble)
EXAMPLES: dict[str, Any] = {"objectives": [{"loss": "kd"}], "weights": [0.5, 0.5]}


@dataclass(frozen=True)
class Shape:
    """What a part's example needs beside it to be a valid recipe fragment: ``around`` maps
    the path of an enclosing mapping (``methods[]``: an item of ``methods``) to fields it
    gets; ``params_key``: the part's parameters go in this mapping of its own (else beside
    its name)."""

    around: dict[str, dict[str, Any]]
    params_key: str | None = None


_COMPOSED = Shape({"methods[]": {"name": "compose", "objectives": EXAMPLES["objectives"]}})
SHAPES = {  # by recipe field; a field not listed needs nothing around it
    "methods[].objectives[].loss": Shape({"methods[]": {"name": "compose"}}, "params"),
    "methods[].refiners[].name": _COMPOSED,
    "methods[].updater.name": _COMPOSED,
    "methods[].mixers[].name": _COMPOSED,
    "active.selectors[].name": Shape({"active": {"oracle_per_round": 10}}),
    "teacher.combine": Shape({"teacher": {"ensemble": [{"checkpoint": "teacher-a.safetensors"},
                                                       {"checkpoint": "teacher-b.safetensors"}]}}),
}


# ------------------------------------------------------------------------------ the kinds

def load_parts() -> None:
    """Import the modules that register mentor's own parts."""
    from .. import losses, methods, mix, models, select, targets, tasks, updates  # noqa: F401
    from ..data import augment, image_views, sources  # noqa: F401
    from ..teachers import committee  # noqa: F401


def fusion_mode(combine: str) -> str:
    """The committee fusion (:data:`mentor.teachers.committee.FUSE_MODES`) that a
    ``teacher.combine`` value selects, as the run builds it: an :class:`EnsembleTeacher` for
    the values it takes, else a committee fused by the value itself."""
    from types import SimpleNamespace

    from ..teachers.sources import EnsembleTeacher
    probe = SimpleNamespace(num_classes=2, logits=lambda x: x)
    try:
        return EnsembleTeacher([probe], combine).fuse
    except MentorError:
        return combine


def fusion_text(mode: str) -> str:
    """A fusion's paragraph of the committee module's docstring, as plain text (without
    references to the team's private catalogue)."""
    from ..teachers import committee
    found = re.search(rf"^``{re.escape(mode)}``\n((?:[ \t]+\S.*\n?)+)", committee.__doc__ or "",
                      re.M)
    if found is None:
        return ""
    text = " ".join(found.group(1).split()).replace("``", "")
    text = re.sub(r",?\s*METHODS\.md\s*§\s*[\d.]*\d", "", text)
    return re.sub(r",\s*paper \d+", "", text)


def fusions() -> Registry:
    """The values of a recipe's ``teacher.combine`` as a registry, each described by the
    committee fusion it selects; a part's parameters are the teacher fields that name it."""
    from ..recipe import TeacherSpec
    fields = TeacherSpec.model_fields
    registry = Registry("teacher fusion")
    for name in get_args(fields["combine"].annotation):
        own = {k: (f.annotation, f) for k, f in fields.items()
               if f"'{name}'" in (f.description or "")}
        params = create_model(f"combine_{name}", **own)
        text = fusion_text(fusion_mode(name)) or fields["combine"].description or ""
        registry.register(name, description=text, source="built-in")(params)
    return registry


def kinds() -> list[Kind]:
    """Every kind of part in listing order: :data:`~mentor.registry.KINDS`, any other
    registry of :mod:`mentor.registry`, and the teacher fusions after the teacher updaters."""
    from .. import registry
    load_parts()
    out = list(KINDS)
    listed = {id(k.registry) for k in out}
    out += [Kind(r, f"{r.kind}s", "") for r in vars(registry).values()
            if isinstance(r, Registry) and id(r) not in listed]
    at = next((i + 1 for i, k in enumerate(out) if k.registry is registry.UPDATERS), len(out))
    out.insert(at, Kind(fusions(), "teacher fusions", "teacher.combine"))
    return out


def _key(text: str) -> str:
    return " ".join(text.lower().replace("-", " ").replace("_", " ").split())


def find_kind(text: str, among: list[Kind]) -> Kind:
    """The kind ``text`` names: its title or its registry's kind (``losses``, ``loss``)."""
    for kind in among:
        if _key(text) in (_key(kind.title), _key(kind.registry.kind)):
            return kind
    titles = [k.title.replace(" ", "-") for k in among]
    raise MentorError(f"unknown kind {text!r}{suggest(_key(text).replace(' ', '-'), titles)}; "
                      f"expected one of: {', '.join(titles)}")


def lookup(query: str, among: list[Kind]) -> list[tuple[Kind, Entry]]:
    """The parts named ``query`` (one per kind that has it), or the one of ``KIND:NAME``;
    none when no part has the name."""
    found = [(k, k.registry.entry(query)) for k in among if query in k.registry]
    if found or ":" not in query:
        return found
    text, name = query.split(":", 1)
    kind = find_kind(text, among)
    if name not in kind.registry:
        raise MentorError(f"no {kind.registry.kind} is named {name!r}"
                          f"{suggest(name, kind.registry.names())}; `mentor recipes --kind "
                          f"{kind.title.replace(' ', '-')}` lists them")
    return [(kind, kind.registry.entry(name))]


# -------------------------------------------------------------------------- parameters

@dataclass(frozen=True)
class Param:
    """A parameter a recipe may give a part; ``default`` is ``inspect.Parameter.empty`` when
    the recipe must give it."""

    name: str
    type: str
    default: Any = inspect.Parameter.empty
    note: str = ""

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


def type_text(annotation: Any) -> str:
    """An annotation as a short string (``float``, ``PartSpec | None``)."""
    if annotation is inspect.Parameter.empty or annotation is None:
        return ""
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type):
        return annotation.__name__
    return re.sub(r"\b[A-Za-z_]\w*\.(?=[A-Za-z_])", "", str(annotation))


_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def range_text(metadata: list) -> str:
    """A pydantic field's constraints (``>= 0, <= 1``, ``length >= 1``)."""
    out = []
    for m in metadata:
        out += [f"{sign} {getattr(m, attr)}" for attr, sign in _BOUNDS
                if getattr(m, attr, None) is not None]
        if getattr(m, "min_length", None) is not None:
            out.append(f"length >= {m.min_length}")
        if getattr(m, "max_length", None) is not None:
            out.append(f"length <= {m.max_length}")
        if getattr(m, "pattern", None) is not None:
            out.append(f"matches {m.pattern}")
    return ", ".join(out)


def model_params(model: type[BaseModel]) -> list[Param]:
    """The fields of a pydantic parameter model (a method's, a fusion's)."""
    out = []
    for name, f in model.model_fields.items():
        default = (inspect.Parameter.empty if f.is_required()
                   else f.get_default(call_default_factory=True))
        note = "; ".join(t for t in (f.description or "", range_text(f.metadata)) if t)
        out.append(Param(name, type_text(f.annotation), default, note))
    return out


def loss_bounds(rule: dict[str, Any]) -> str:
    """A loss's declared range (the keywords of :func:`mentor.errors.check_param`)."""
    out = []
    if rule.get("low") is not None:
        out.append(f"{'>' if rule.get('low_open') else '>='} {rule['low']}")
    if rule.get("high") is not None:
        out.append(f"{'<' if rule.get('high_open') else '<='} {rule['high']}")
    return ", ".join(out)


def loss_params(spec) -> list[Param]:
    """A loss's declared parameters (what an objective's ``params`` accepts)."""
    given = inspect.signature(spec.fn).parameters
    return [Param(name, type_text(given[name].annotation) if name in given else "", default,
                  loss_bounds(spec.constraints.get(name, {})))
            for name, default in spec.defaults.items()]


def signature_params(obj: Any) -> list[Param]:
    """A class's parameters, or a function's keyword-only and defaulted ones (mentor passes
    the leading ones: inputs, shapes, class counts); none for an object that is not called."""
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return []
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [Param(p.name, type_text(p.annotation), p.default) for p in params
            if p.kind in named and (isinstance(obj, type) or p.kind is p.KEYWORD_ONLY
                                    or p.default is not p.empty)]


def parameters(obj: Any) -> list[Param]:
    """The parameters a recipe gives the part ``obj``, read from what builds it."""
    from ..losses.base import LossSpec
    from ..methods.plan import Method
    if isinstance(obj, Method):
        return model_params(obj.params)
    if isinstance(obj, type) and issubclass(obj, BaseModel):
        return model_params(obj)
    if isinstance(obj, LossSpec):
        return loss_params(obj)
    return signature_params(obj)


# ----------------------------------------------------------------------------- examples

def plain(value: Any) -> Any:
    """``value`` with tuples as lists (what YAML writes)."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def yaml_text(value: Any) -> str:
    """``value`` as YAML writes it in a flow (``0.95``, ``[256, 256]``, ``null``)."""
    try:
        text = yaml.safe_dump(plain(value), default_flow_style=True, width=10**6)
    except yaml.YAMLError:
        return repr(value)
    return text.split("\n...")[0].strip()


def example_value(p: Param) -> Any:
    """What the example gives ``p``: its default when it is a value, an example value, or a
    ``<type>`` placeholder for a parameter the recipe must give; ``None``: leave it out."""
    from ..recipe import _plain as plain_value
    if p.required or p.default is None:
        return EXAMPLES.get(p.name, f"<{p.type or 'value'}>" if p.required else None)
    value = plain(p.default)
    return value if plain_value(value) and value not in ("", []) else None


def part_fields(field: str, name: str, params: list[Param]) -> dict[str, Any]:
    """The mapping that names the part in ``field`` (its last key) with its parameters."""
    values = {p.name: v for p in params if (v := example_value(p)) is not None}
    shape = SHAPES.get(field, Shape({}))
    key = field.split(".")[-1]
    if shape.params_key is None:
        return {key: name, **values}
    return {key: name, **({shape.params_key: values} if values else {})}


def fragment(segments: list[str], leaf: dict[str, Any], around: dict[str, dict],
             path: str = "") -> dict[str, Any]:
    """The recipe mapping at ``path`` down to the part's own mapping ``leaf``, with the
    fields ``around`` gives the enclosing mappings."""
    if len(segments) == 1:
        return {**around.get(path, {}), **leaf}
    seg = segments[0]
    inner_path = f"{path}.{seg}" if path else seg
    inner = fragment(segments[1:], leaf, around, inner_path)
    key = seg.removesuffix("[]")
    return {**around.get(path, {}), key: [inner] if seg.endswith("[]") else inner}


def example(kind: Kind, entry: Entry) -> dict[str, Any] | None:
    """The recipe fragment that uses ``entry`` (None for a kind without a recipe field)."""
    if not kind.field:
        return None
    leaf = part_fields(kind.field, entry.name, parameters(entry.obj))
    return fragment(kind.field.split("."), leaf, SHAPES.get(kind.field, Shape({})).around)


class _Dumper(yaml.SafeDumper):
    """Lists indented under their key, as mentor's recipes write them; a list of scalars in
    a flow (``[256, 256]``), and a mapping of scalars too while ``flow_maps``; the top level
    in blocks."""

    flow_maps = True

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


class _Top(dict):
    pass


def _scalars(values) -> bool:
    return not any(isinstance(v, (list, dict)) for v in values)


_Dumper.add_representer(list, lambda d, data: d.represent_sequence(
    "tag:yaml.org,2002:seq", data, flow_style=_scalars(data)))
_Dumper.add_representer(dict, lambda d, data: d.represent_mapping(
    "tag:yaml.org,2002:map", data, flow_style=d.flow_maps and _scalars(data.values())))
_Dumper.add_representer(_Top, lambda d, data: d.represent_mapping(
    "tag:yaml.org,2002:map", data, flow_style=False))


def example_yaml(snippet: dict[str, Any], width: int = 80) -> str:
    """``snippet`` as a recipe writes it: mappings of scalars in a flow
    (``- {name: kd, alpha: 0.9}``) when every line then fits in ``width``, else in blocks."""
    class Blocks(_Dumper):
        flow_maps = False

    for dumper in (_Dumper, Blocks):
        text = yaml.dump(_Top(snippet), Dumper=dumper, sort_keys=False, allow_unicode=True,
                         width=10**6)
        if max(map(len, text.splitlines())) <= width:
            break
    return text


# ------------------------------------------------------------------------------ listing

_MEASURE = Console(width=1000)


def wrapped_lines(text: str, width: int) -> int:
    """How many lines ``text`` takes in a table cell ``width`` characters wide."""
    return len(Text(text).wrap(_MEASURE, max(width, 1)))


def clause_ends(text: str):
    """Where a clause of ``text`` ends outside brackets: after ``, ; : .`` and a space, and
    before a bracketed aside."""
    depth = 0
    for i, c in enumerate(text):
        if c in "([{":
            if depth == 0 and text[i - 1:i] == " ":
                yield i
            depth += 1
        elif c in ")]}":
            depth = max(depth - 1, 0)
        elif depth == 0 and c in ",;:." and text[i + 1:i + 2] == " ":
            yield i + 1


def summary(text: str, width: int, lines: int = LINES) -> str:
    """``text`` when it fits in ``lines`` lines of ``width``, else its longest run of whole
    clauses that does (whole words if none), ending in :data:`CUT`."""
    text = " ".join(text.split())
    if wrapped_lines(text, width) <= lines:
        return text
    best = ""
    for end in clause_ends(text):
        cut = text[:end].rstrip(" ,;:.") + CUT
        if wrapped_lines(cut, width) > lines:
            break
        best = cut
    if best:
        return best
    words = text.split()
    while len(words) > 1 and wrapped_lines(" ".join(words) + CUT, width) > lines:
        words.pop()
    return " ".join(words) + CUT


def _fixed_width(header: str, cells: list[str]) -> int:
    return max(map(cell_len, [header, *cells]))


def named_table(title: str, rows: list[tuple[str, ...]], headers: tuple[str, ...],
                width: int) -> Table:
    """A table whose second column (free text) is summarised to :data:`LINES` lines at the
    width ``width`` leaves it; the other columns are not wrapped."""
    table = Table(title=title)
    for i, header in enumerate(headers):
        table.add_column(header, no_wrap=i != 1)
    fixed = sum(_fixed_width(h, [r[i] for r in rows]) for i, h in enumerate(headers) if i != 1)
    room = width - (3 * len(headers) + 1) - fixed  # borders and padding of a rich table
    for row in rows:
        table.add_row(*(Text(summary(c, room) if i == 1 else c) for i, c in enumerate(row)))
    return table


def kind_table(kind: Kind, width: int) -> Table:
    """One kind's parts: name, description (see :func:`summary`) and, when any part is not
    built-in, source."""
    entries = kind.registry.entries()
    headers: tuple[str, ...] = ("name", "description")
    if any(e.source != "built-in" for e in entries):
        headers += ("source",)
    rows = [(e.name, e.description, e.source)[:len(headers)] for e in entries]
    title = f"{kind.title} (recipe field {kind.field})" if kind.field else kind.title
    return named_table(title, rows, headers, width)


def part_tables(width: int, kind: str | None = None) -> list[Table]:
    """A table per kind of part (only the kind ``kind`` names, when given)."""
    among = kinds()
    chosen = [find_kind(kind, among)] if kind is not None else among
    return [kind_table(k, width) for k in chosen]


def builtin_table(width: int) -> Table:
    """The built-in recipes, by name."""
    from ..recipe import builtin_recipes, read_yaml
    rows = [(name, str(read_yaml(path).get("description", "")).strip())
            for name, path in builtin_recipes().items()]
    return named_table("built-in recipes (mentor run NAME)", rows, ("name", "description"),
                       width)


# -------------------------------------------------------------------------------- show

def param_table(params: list[Param]) -> Table:
    table = Table(title="parameters")
    for col in ("name", "type", "default", "notes"):
        table.add_column(col, no_wrap=col in ("name", "default"))
    for p in params:
        table.add_row(Text(p.name), Text(p.type), Text("required" if p.required
                                                       else yaml_text(p.default)), Text(p.note))
    return table


def part_view(kind: Kind, entry: Entry, width: int = 80) -> list[Any]:
    """What ``mentor recipes show`` prints for one part (texts and a table)."""
    out: list[Any] = [Text(f"{entry.name} ({kind.registry.kind})", style="bold"),
                      Text(entry.description or "-"),
                      Text(f"paper: {entry.paper or '-'}"), Text(f"source: {entry.source}")]
    if kind.field:
        out.append(Text(f"recipe field: {kind.field}"))
    params = parameters(entry.obj)
    out.append(param_table(params) if params else Text("parameters: none"))
    snippet = example(kind, entry)
    if snippet is not None:
        out.append(Text("example:", style="bold"))
        out.append(Text(example_yaml(snippet, width).rstrip("\n")))
    return out


def recipe_view(name: str, path) -> list[Any]:
    """What ``mentor recipes show`` prints for a built-in recipe."""
    from ..recipe import read_yaml
    return [Text(f"{name} (built-in recipe)", style="bold"),
            Text(" ".join(str(read_yaml(path).get("description", "")).split()) or "-"),
            Text(f"file: {path}"), Text(f"run: mentor run {name}")]


def show_part(query: str, width: int = 80) -> list[Any]:
    """Every part named ``query`` (or ``KIND:NAME``) and the built-in recipe of that name,
    one after the other; the examples fit in ``width`` columns where they can."""
    from ..recipe import builtin_recipes
    among, recipes = kinds(), builtin_recipes()
    views = [part_view(kind, entry, width) for kind, entry in lookup(query, among)]
    if query in recipes:
        views.append(recipe_view(query, recipes[query]))
    if not views:
        names = sorted({n for k in among for n in k.registry.names()} | set(recipes))
        raise MentorError(f"no part or built-in recipe is named {query!r}"
                          f"{suggest(query, names)}; `mentor recipes` lists them")
    return [item for i, view in enumerate(views) for item in ([Text("")] if i else []) + view]
