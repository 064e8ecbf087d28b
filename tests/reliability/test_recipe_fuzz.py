"""Fuzzing the recipe front door: whatever a recipe file, a mapping or a ``--set`` override
holds, mentor accepts it or refuses it with a :class:`mentor.errors.MentorError` (a
:class:`~mentor.errors.RecipeError` for the schema) whose problems are one line each --
never another exception type, never a traceback.

Inputs are near-valid recipes (the small iris recipe of the CLI tests and every built-in
recipe, mutated 1-4 times: keys dropped, keys misspelt, keys added, values replaced by
None, bools, ints, negative and huge numbers, floats incl. nan/inf, strings, lists and
nested mappings, or nudged: the same type at an edge -- 0, -1, 2**63, 1e-300, nan, inf, a
registered name in the wrong place), random structures over the recipe's own key names, ``--set key=value``
overrides, and random YAML text and bytes read from a file.

The planning step (``mentor.commands.run.plan_run``, what ``mentor run`` and ``mentor recipes
validate`` do before any training; ``check_active`` for recipes with an ``active`` section)
is fuzzed too, from the built-in recipes and from recipes whose teacher is a safetensors
checkpoint, an ensemble of checkpoints or a label store (real files in the working folder,
which must hold exactly the same files afterwards: validating writes nothing).

Examples per test (hypothesis, ``derandomize=True``: the same examples on every run, so a
CI failure reproduces locally): parse_recipe on mutated recipes 1,000; plan_run /
check_active on mutated recipes 400; parse_recipe on random structures 400; apply_overrides
+ parse_recipe 500; read_yaml on YAML-like text 300 and on raw bytes 200 -- 2,800 generated
examples, plus 11 hand-written hostile YAML files (nesting deeper than the parser's
recursion limit, self-referencing anchors, alias bombs) and, as fixed cases, every input the
fuzzing once crashed or hung on (:data:`FOUND`). ``MENTOR_FUZZ_SCALE=10`` runs ten times as
many fresh random examples (a local bug hunt).
"""

from __future__ import annotations

import copy
import os
import string
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mentor.commands import run as runner
from mentor.commands.active import check_active
from mentor.errors import MentorError, RecipeError
from mentor.methods import METHODS
from mentor._validation import _inner_model
from mentor.recipe import Recipe, apply_overrides, builtin_recipes, parse_recipe, read_yaml

# MENTOR_FUZZ_SCALE=10 runs 10x the examples with fresh random ones (a local bug hunt); the
# default is the fixed, derandomized CI set.
SCALE = float(os.environ.get("MENTOR_FUZZ_SCALE", "1"))
FUZZ = dict(deadline=None, derandomize=SCALE == 1, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                   HealthCheck.filter_too_much])


def examples(n: int) -> int:
    return max(1, int(n * SCALE))


def _small_recipe() -> dict:
    """The small valid iris recipe of tests/cli/test_bad_input.py."""
    return {"name": "bad", "data": {"source": "iris"},
            "teacher": {"model": "mlp", "hidden": [16], "train": {"epochs": 2}},
            "student": {"model": "mlp", "hidden": [8]},
            "methods": [{"name": "scratch"}, {"name": "kd", "temperature": 2.0, "alpha": 0.5}],
            "train": {"epochs": 2, "seeds": [0]}}


# files in the fuzzing folder (see ``fuzz_cwd``) that recipes may name
CKPT, STORE = "teacher.safetensors", "store"
# the classification recipes (a token recipe, task: tokens, has its own schema)
BUILTINS = {name: raw for name, raw in ((n, read_yaml(p)) for n, p in builtin_recipes().items())
            if raw.get("task", "classification") == "classification"}
BASES = {"small": _small_recipe(), **BUILTINS,
         "checkpoint": {**_small_recipe(), "teacher": {"checkpoint": CKPT}},
         "ensemble": {**_small_recipe(), "teacher": {
             "ensemble": [{"checkpoint": CKPT}, {"checkpoint": CKPT, "model": "mlp",
                                                  "hidden": [16]}],
             "combine": "weighted", "weights": [1.0, 2.0]}},
         "store": {**_small_recipe(), "teacher": {"store": STORE},
                   "methods": [{"name": "kd"}, {"name": "feature-kd", "student_layer": "1",
                                                "teacher_layer": "1"}]}}


def _recipe_keys() -> list[str]:
    """Every field name of the recipe schema and of every method's parameters."""
    keys: set[str] = set()
    seen: set = set()

    def walk(model) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, f in model.model_fields.items():
            keys.add(name)
            inner = _inner_model(f.annotation)
            if inner is not None:
                walk(inner)

    walk(Recipe)
    for entry in METHODS.entries():
        keys.update(entry.obj.params.model_fields)
    return sorted(keys)


KEYS = _recipe_keys()
WORDS = sorted({*KEYS, *METHODS.names(), "mlp", "cnn", "linear", "iris", "digits", "mnist1d",
                "adam", "sgd", "cosine", "bf16", "probs", "logits", "labels", "crop", "shift",
                "affine", "cutout", "os.system", "torch.nn.Linear", "builtins.eval",
                "x.npz", "x.csv", "x.safetensors", "/", ".", "", CKPT, STORE})

SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-3, max_value=70), st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 0.5, 1.0, -1.0, 1e-300, 1e300, float("nan"), float("inf"),
                     -float("inf")]),
    st.text(max_size=10), st.sampled_from(WORDS))
KEY = st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.integers(-2, 3), st.none(),
                st.booleans())
VALUES = st.recursive(
    SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                     st.dictionaries(KEY, inner, max_size=4)),
    max_leaves=10)


def _paths(node, prefix=()):
    """Every path into a nested mapping/list (the empty path is the root)."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _at(root, path):
    for p in path:
        root = root[p]
    return root


def _misspell(data, key: str) -> str:
    if not key:
        return data.draw(st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=4))
    i = data.draw(st.integers(0, len(key) - 1))
    op = data.draw(st.sampled_from(["drop", "double", "swap", "replace", "upper", "plural"]))
    if op == "drop":
        return key[:i] + key[i + 1:]
    if op == "double":
        return key[:i] + key[i] + key[i:]
    if op == "swap" and len(key) > 1:
        i = min(i, len(key) - 2)
        return key[:i] + key[i + 1] + key[i] + key[i + 2:]
    if op == "upper":
        return key.upper()
    if op == "plural":
        return key + "s"
    return key[:i] + data.draw(st.sampled_from("aeiou_-.0 ")) + key[i + 1:]


EDGE_INTS = [0, 1, -1, 2, 3, 7, 100, 10**6, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63)]
EDGE_FLOATS = [0.0, -0.0, 1e-300, 1e-8, 0.5, 0.999999, 1.0, 1.5, -0.5, 1e8, 1e30, 1e300,
               float("nan"), float("inf"), -float("inf")]


def _nudge(data, value):
    """A value of the same type, often at an edge: the type checks pass, the range and
    cross-field checks (and everything after them) must hold."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return data.draw(st.sampled_from(EDGE_INTS) | st.integers(-5, 200))
    if isinstance(value, float):
        return data.draw(st.sampled_from(EDGE_FLOATS) | st.floats(-2, 2))
    if isinstance(value, str):
        return data.draw(st.sampled_from(WORDS))
    if isinstance(value, list):
        items = data.draw(st.lists(st.sampled_from(value), max_size=4)) if value else []
        return [_nudge(data, v) if data.draw(st.booleans()) else v for v in items]
    return data.draw(VALUES)


def _mutate(data, raw):
    """1-4 random edits of a recipe mapping: drop, misspell or add a key, replace a value by
    a random one or nudge it (same type, edge values)."""
    raw = copy.deepcopy(raw)
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        path = data.draw(st.sampled_from(list(_paths(raw))), label="path")
        op = data.draw(st.sampled_from(["drop", "misspell", "replace", "nudge", "nudge",
                                        "add"]), label="op")
        if not path:
            if op == "replace" and data.draw(st.integers(0, 9)) == 0:
                raw = data.draw(VALUES)  # the whole recipe
            continue
        parent, key = _at(raw, path[:-1]), path[-1]
        if op == "drop":
            del parent[key]
        elif op == "misspell" and isinstance(parent, dict) and isinstance(key, str):
            parent[_misspell(data, key)] = parent.pop(key)
        elif op == "nudge":
            parent[key] = _nudge(data, parent[key])
        elif op == "add":
            node = parent[key]
            if isinstance(node, dict):
                node[data.draw(KEY)] = data.draw(VALUES)
            elif isinstance(node, list):
                node.append(data.draw(VALUES))
            else:
                parent[key] = data.draw(VALUES)
        else:
            parent[key] = data.draw(VALUES)
    return raw


def _check_refusal(e: MentorError) -> None:
    """A refusal is a non-empty message; a recipe's problems are one line each."""
    assert str(e).strip()
    if isinstance(e, RecipeError):
        assert e.problems
        for p in e.problems:
            assert p.strip() and "\n" not in p, p


def _parse(raw) -> None:
    try:
        parse_recipe(raw)
    except RecipeError as e:
        _check_refusal(e)


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def fuzz_cwd(tmp_path_factory):
    """The working folder of the planning tests (relative paths of a fuzzed recipe resolve
    here). It holds a teacher checkpoint for iris (``teacher.safetensors``, mlp [16]) and a
    label store of it on iris's training split (``store``, with the feature of module '1');
    afterwards it must hold exactly the same files: validating writes nothing."""
    import torch

    from mentor.engine.checkpoint import save_weights
    from mentor.labels import make_kind, write_store
    from mentor.models import build_model
    from mentor.recipe import DataSpec
    from mentor.teachers import ModuleTeacher

    folder = tmp_path_factory.mktemp("cwd")
    torch.manual_seed(0)
    net = build_model("mlp", (4,), 3, hidden=[16])
    save_weights(folder / CKPT, net, {"mentor.model": {"model": "mlp", "hidden": [16]},
                                      "mentor.num_classes": 3, "mentor.input_shape": [4]})
    x = DataSpec(source="iris").load().train.x
    write_store(ModuleTeacher(net.eval(), 3), x, folder / STORE,
                make_kind("logits", num_classes=3), features=("1",))
    before = _tree(folder)
    old = os.getcwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(old)
    assert _tree(folder) == before


@pytest.fixture(scope="module")
def fast_sources():
    """plan_run with each embedded data set loaded once (loading is pure; MNIST-1D is
    generated, ~1.5 s a call) and MNIST-1D's generator of extra inputs (data.generated)
    replaced by zeros of its shape: the fuzzed fields are the recipe's, not the data's."""
    import numpy as np

    import mentor.data as data_mod
    from mentor.data.sources import DATASETS, GENERATORS
    from mentor.errors import DataError

    real_load, real_gen = data_mod.load_source, GENERATORS["mnist1d"]
    cache: dict = {}

    def load_source(source, *, target=None, num_classes=None, **columns):
        if source.endswith((".npz", ".csv")) or source not in DATASETS or any(
                v is not None for v in columns.values()):
            return real_load(source, target=target, num_classes=num_classes, **columns)
        if source not in cache:
            cache[source] = real_load(source)
        data = cache[source]
        if num_classes is not None and num_classes != data.num_classes:
            raise DataError(f"data.num_classes is {num_classes} but {source} has "
                            f"{data.num_classes} classes")
        return data

    def generate(n, rng):
        return np.broadcast_to(np.zeros(40, dtype=np.float32), (n, 40))

    data_mod.load_source, GENERATORS["mnist1d"] = load_source, generate
    try:
        yield
    finally:
        data_mod.load_source, GENERATORS["mnist1d"] = real_load, real_gen


# ---------------------------------------------------------------------------------- tests

def test_every_base_recipe_is_valid():
    """The fuzzing starts from valid recipes (else it would only test one refusal)."""
    for name, raw in BASES.items():
        assert isinstance(parse_recipe(raw), Recipe), name


@settings(max_examples=examples(1000), **FUZZ)
@given(data=st.data(), base=st.sampled_from(sorted(BASES)))
def test_parse_recipe_on_mutated_recipes(data, base):
    _parse(_mutate(data, BASES[base]))


PLAN_BASES = ["small", "checkpoint", "ensemble", "store", "default", "kd-family", "lad",
              "ssl", "data-efficient", "stages", "mnist1d", "active"]


@settings(max_examples=examples(400), **FUZZ)
@given(data=st.data(), base=st.sampled_from(PLAN_BASES))
def test_plan_run_on_mutated_recipes(data, base, fuzz_cwd, fast_sources):
    """The planning step (schema, cross-field checks, data, checkpoints, method probes):
    it trains nothing and writes nothing."""
    raw = _mutate(data, BASES[base])
    try:
        if isinstance(raw, dict) and raw.get("active") is not None:
            check_active(raw)  # as `mentor recipes validate` does
        else:
            runner.plan_run(raw)
    except MentorError as e:
        _check_refusal(e)


@settings(max_examples=examples(400), **FUZZ)
@given(raw=st.one_of(VALUES, st.dictionaries(KEY, VALUES, max_size=8),
                     st.fixed_dictionaries({"name": VALUES, "data": VALUES, "student": VALUES,
                                            "teacher": VALUES, "train": VALUES,
                                            "methods": VALUES, "settings": VALUES})))
def test_parse_recipe_on_random_structures(raw):
    _parse(raw)


@settings(max_examples=examples(500), **FUZZ)
@given(data=st.data(), base=st.sampled_from(["small", "default", "stages"]),
       value=st.one_of(st.text(max_size=16), st.sampled_from(
           ["1e30", "-1", ".nan", "-.inf", "[1, 2", "{a: 1}", "[]", "~", "null", "yes",
            "!!python/object/apply:os.system [echo]", "&a [*a]", "'", "\"", "0x10", "1_000",
            "2001-01-01", "- a", "a: b: c", "%TAG", "|", "*x"])))
def test_set_overrides(data, base, value):
    """``--set key.path=value`` on a valid recipe, the key an existing path, a misspelt or
    random one; the overridden recipe is then parsed."""
    raw = BASES[base]
    paths = [p for p in _paths(raw) if p]
    path = list(data.draw(st.sampled_from(paths)))
    how = data.draw(st.sampled_from(["keep", "keep", "misspell", "extend", "random"]))
    if how == "misspell" and isinstance(path[-1], str):
        path[-1] = _misspell(data, path[-1])
    elif how == "extend":
        path.append(data.draw(st.one_of(st.sampled_from(KEYS), st.integers(0, 5))))
    key = ".".join(map(str, path))
    if how == "random":
        key = data.draw(st.text(alphabet=string.ascii_letters + "._=-0123 ", max_size=16))
    try:
        out = apply_overrides(raw, [f"{key}={value}"])
    except RecipeError as e:
        _check_refusal(e)
        return
    assert isinstance(out, dict)
    _parse(out)


YAML_ALPHABET = st.sampled_from(list(string.ascii_letters + string.digits) +
                                list(":-[]{},&*!|>'\"#%@`?\n \t.") +
                                ["\n  ", "- ", ": ", "!!python/object/apply:os.system",
                                 "!!binary", "&a ", "*a", "<<: ", "~", "null", "\ufeff", "\x00",
                                 "é", "\x85"])


def _read(tmp: Path, content) -> None:
    path = tmp / "recipe.yaml"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    try:
        raw = read_yaml(path)
    except RecipeError as e:
        _check_refusal(e)
        return
    assert isinstance(raw, dict)
    _parse(raw)


@settings(max_examples=examples(300), **FUZZ)
@given(text=st.one_of(st.lists(YAML_ALPHABET, max_size=40).map("".join),
                      VALUES.map(lambda v: yaml.safe_dump(v, default_flow_style=None)),
                      st.text(max_size=60)))
def test_read_yaml_on_text(tmp_path_factory, text):
    _read(tmp_path_factory.getbasetemp(), text)


@settings(max_examples=examples(200), **FUZZ)
@given(content=st.binary(max_size=80))
def test_read_yaml_on_bytes(tmp_path_factory, content):
    _read(tmp_path_factory.getbasetemp(), content)


# ------------------------------------------------------------------------ hostile YAML

HOSTILE = {
    "deep-flow-list": "name: x\ndata: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep-flow-map": "name: x\nmethods: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
    "deep-block": "".join("  " * i + "a:\n" for i in range(1500)) + "  " * 1500 + "b\n",
    "recursive-list": "name: x\ndata: {source: iris}\nstudent: {model: mlp}\n"
                      "methods: &m [{name: kd}, *m]\n",
    "recursive-map": "name: x\ndata: &d {source: iris, extra: *d}\nstudent: {model: mlp}\n"
                     "method: {name: scratch}\n",
    "recursive-setting": "name: x\ndata: {source: iris}\nstudent: {model: mlp}\n"
                         "method: {name: scratch}\n"
                         "settings: [{name: s, data: &d {source: iris, data: *d}}]\n",
    "recursive-method-param": "name: x\ndata: {source: iris}\nstudent: {model: mlp}\n"
                              "method: &m {name: kd, temperature: *m}\n",
    "alias-bomb": "name: x\ndata: {source: iris}\nstudent: {model: mlp}\n"
                  "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                  + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
                            for p, c in zip("abcdefgh", "bcdefghi"))
                  + "method: {name: kd, temperature: *i}\n",
    "alias-bomb-description": "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                              + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
                                        for p, c in zip("abcdefgh", "bcdefghi"))
                              + "name: *i\ndescription: *i\nsettings: [{name: s, data: *i}]\n",
    "alias-bomb-mapping": "name: x\ndata: {source: iris}\nstudent: {model: mlp}\n"
                          "method: {name: scratch}\n"
                          "a: &a {k0: x, k1: x, k2: x, k3: x, k4: x, k5: x, k6: x, k7: x}\n"
                          + "".join(f"{c}: &{c} {{{', '.join(f'k{j}: *{p}' for j in range(8))}}}\n"
                                    for p, c in zip("abcdefgh", "bcdefghi"))
                          + "settings: [{name: s, data: *i, train: *i, teacher: *i}]\n",
    "python-tag": "!!python/object/apply:os.system ['echo pwned']\n",
}


# Python-level calls a hostile recipe may cost before it is refused: every case takes at
# most about 0.6 million (measured); an expanded alias bomb (10^9 leaves) takes billions.
# Work is counted, not timed, so the bound does not depend on the machine or its load.
MAX_CALLS = 5_000_000


class _CallBudget(Exception):
    pass


def _bounded(fn, limit: int = MAX_CALLS):
    """Run ``fn`` counting Python and C function calls; raise :class:`_CallBudget` past
    ``limit``."""
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1
            if calls > limit:
                sys.setprofile(None)
                raise _CallBudget(f"more than {limit} calls")

    sys.setprofile(count)
    try:
        return fn()
    finally:
        sys.setprofile(None)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_yaml_is_refused_with_bounded_work(tmp_path, fuzz_cwd, case):
    """Nesting deeper than the parser's recursion limit, self-referencing anchors and
    exponential alias expansion ("billion laughs", 10^9 leaves when expanded): read,
    overridden, parsed and planned, each is refused (or accepted) within a bounded number of
    calls (``MAX_CALLS``), never by expanding the document."""
    path = tmp_path / "recipe.yaml"
    path.write_text(HOSTILE[case], encoding="utf-8")

    def read_and_plan():
        raw = read_yaml(path)
        raw = apply_overrides(raw, ["train.epochs=1"])
        runner.plan_run(raw)
    try:
        _bounded(read_and_plan)
    except MentorError as e:
        _check_refusal(e)


# --------------------------------------------- every crash the fuzzing found, kept as a case

def _small(**over) -> dict:
    r = _small_recipe()
    for path, value in over.items():
        node = r
        *parents, last = path.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return r


FOUND = {  # recipe -> what the refusal says (each was a crash or a hang before its fix)
    "newline-key": (_small(data={"\n": None}), "unknown key 'data['\\n']'"),
    "negative-split-seed": (_small(data__split_seed=-1), "data.split_seed must be >= 0"),
    "seed-past-2**64": (_small(train__seeds=[2**64]), "train.seeds[0] must be <= "),
    "temperature-overflows": (_small(methods=[{"name": "kd", "temperature": 1e300}]),
                              "kd(temperature=1e+300) cannot be computed"),
    "augment-param-mapping": (_small(train__augment={"weak": [{"name": "shift", "pixels": {
        "a": None, None: None}}]}), "weak[0].pixels is {'a': None, None: None}; expected a "
        "number"),
    "augment-param-huge": (_small(train__augment={"weak": [{"name": "shift",
                                                            "pixels": 2**63}]}),
                           "augmentation 'shift' rejects parameters"),
    "augment-param-inf": (_small(train__augment={"weak": [{"name": "noise",
                                                           "std": float("inf")}]}),
                          "noise.std must be a finite number, got inf"),
    "augment-param-nan": (_small(train__augment={"weak": [{"name": "flip",
                                                           "p": float("nan")}]}),
                          "flip.p must be a finite number, got nan"),
    "no-training-rows": (_small(data__val_fraction=0.99, data__test_fraction=0.009),
                         "leave class 0 (50 samples) no training rows"),
    "huge-checkpoint-model": (_small(teacher={"checkpoint": CKPT, "model": "mlp",
                                              "hidden": [2**40]}),
                              "parameters; expected at most 2,147,483,648"),
    "checkpoint-model-overflow": (_small(teacher={"checkpoint": CKPT, "model": "mlp",
                                                  "hidden": [2**63]}), "cannot be built"),
    "generated-rows": (_small(data={"source": "mnist1d", "generated": 10**12}),
                       "data.generated must be <= 1000000"),
    "lr-past-float32": (_small(train__lr=1e300), "train.lr must be <= 1e+30"),
}


@pytest.mark.parametrize("case", sorted(FOUND))
def test_what_the_fuzzing_found_is_refused_in_one_line(case, fuzz_cwd, fast_sources):
    raw, needle = FOUND[case]
    with pytest.raises(MentorError) as info:
        runner.plan_run(raw)
    _check_refusal(info.value)
    assert needle in str(info.value), str(info.value)


def test_a_deep_set_value_is_refused():
    with pytest.raises(RecipeError, match="not a valid YAML value"):
        apply_overrides(_small_recipe(), ["train.seeds=" + "[" * 2000])
