"""Recipe schema (pydantic) and loading.

A recipe is YAML read with ``yaml.safe_load`` (no tags, no code). It names registered
components only. Unknown keys are errors with a "did you mean" hint; every problem in a file
is listed at once; each names the field, the value and what is expected.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from . import _validation
from ._validation import fmt_loc as _fmt_loc
from ._validation import short as _short
from .errors import RecipeError
from .models.spec import ModelOptions as _ModelOptions
from .models.spec import BuiltInModel
from .models.spec import ModelSpec  # noqa: F401  (part of the recipe schema)
from .registry import suggest

_STRICT = ConfigDict(extra="forbid")

# A seed: numpy's generators refuse negative seeds and torch's refuse seeds of 2**64 or
# more (a seed plus a small offset must stay below that).
Seed = Annotated[int, Field(ge=0, le=2**63 - 1)]


class DataSpec(BaseModel):
    model_config = _STRICT
    source: str = Field(description="embedded data set name, a .npz file, a table file (.csv, "
                        ".parquet, .arrow, .jsonl) or a Hugging Face save_to_disk folder")
    target: str | None = Field(None, description="label column of a table source")
    features: list[str] | None = Field(None, min_length=1, description="feature columns of a "
                                       "table source (default: every other numeric column)")
    split_column: str | None = Field(None, description="column of a table source giving each "
                                     "row's part: train, val (validation) or test")
    splits: str | None = Field(None, description="the splits/<setting>.json an earlier run "
                               "wrote: reuse its train/val/test rows and labeled flags")
    image_size: int | tuple[int, int] | None = Field(None, description="image folder: resize "
                                                     "every image to this side (or [h, w]); "
                                                     "default 32")
    channels: Literal[1, 3] | None = Field(None, description="image folder: 3 (RGB, default) "
                                           "or 1 (grayscale)")
    unlabeled: str | None = Field(None, description="image folder: a folder of images without "
                                  "classes, added to train as unlabeled rows")
    workers: int | None = Field(None, ge=0, le=64, description="image folder (default 2) or "
                                "streamed table (default 0): DataLoader worker processes "
                                "reading rows")
    stream: bool | None = Field(None, description="table file: read rows from disk while "
                                "training instead of holding them in memory (default: for a "
                                "file or folder over 1 GiB)")
    text: str | None = Field(None, description="text column of a table source: rows become "
                             "token ids for a text model")
    tokenizer: str | None = Field(None, description="text: a local Hugging Face tokenizer "
                                  "folder (default: a word-level tokenizer trained on the "
                                  "training texts)")
    vocab_size: int = Field(8000, ge=16, le=1_000_000, description="text: the trained "
                            "tokenizer's vocabulary size")
    max_length: int = Field(128, ge=1, le=65_536, description="text: tokens kept per text")
    truncation: bool = Field(True, description="text: cut longer texts with a warning "
                             "(false: refuse them)")
    num_classes: int | None = Field(None, ge=2)
    val_fraction: float = Field(0.2, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    labeled_fraction: float = Field(1.0, gt=0, le=1, description="fraction of each class's "
                                    "training labels the student sees")
    labeled_sampling: Literal["per_class", "overall"] = Field(
        "per_class", description="labeled rows drawn per class (at least one each) or "
        "uniformly over the training split")
    weak_noise: float | None = Field(None, ge=0, le=1, description="give unlabeled rows weak "
                                     "labels: the true label, replaced with this probability "
                                     "by another class")
    weak_flip: Literal["uniform", "next"] = Field("uniform", description="the wrong weak "
                                                  "label: a random other class, or always the "
                                                  "next class (a systematic confusion)")
    split_seed: Seed = 0
    standardize: bool = True
    generated: int = Field(0, ge=0, le=1_000_000, description="extra generated training "
                           "inputs, labeled only by the teacher (sources with a generator: "
                           "mnist1d)")
    generated_seed: Seed = 1

    def _image_options(self) -> dict:
        """The image-folder fields set in this spec."""
        from pathlib import Path
        out = {k: getattr(self, k) for k in ("image_size", "channels", "unlabeled", "workers")
               if getattr(self, k) is not None}
        if "unlabeled" in out:
            out["unlabeled"] = Path(out["unlabeled"])
        return out

    def _text_options(self):
        """The text column's options, or ``None`` without ``text``."""
        if self.text is None:
            return None
        from .data.text_source import TextOptions
        return TextOptions(self.text, self.tokenizer, self.vocab_size, self.max_length,
                           self.truncation)

    def load(self):
        """The :class:`mentor.data.Splits` this spec describes (loaded, split, generated
        inputs added)."""
        from . import data
        from .errors import MentorError
        splits = data.load(self.source, val_fraction=self.val_fraction,
                           test_fraction=self.test_fraction,
                           labeled_fraction=self.labeled_fraction, split_seed=self.split_seed,
                           standardize=self.standardize, target=self.target,
                           num_classes=self.num_classes,
                           labeled_sampling=self.labeled_sampling, weak_noise=self.weak_noise,
                           weak_flip=self.weak_flip, features=self.features,
                           split_column=self.split_column, split_file=self.splits,
                           images=self._image_options(), text=self._text_options(),
                           stream=self.stream)
        if self.generated:
            from .data.sources import GENERATORS
            if self.source not in GENERATORS:
                raise MentorError(f"data.generated needs a source with a generator ("
                                  f"{', '.join(GENERATORS)}), got source {self.source!r}")
            splits = data.with_generated(splits, GENERATORS[self.source], self.generated,
                                         self.generated_seed)
        return splits


def _plain(value: Any) -> bool:
    """A scalar parameter value, or a flat list of them."""
    scalar = (int, float, str, bool, type(None))
    return isinstance(value, scalar) or (isinstance(value, list)
                                         and all(isinstance(v, scalar) for v in value))


class AugmentSpec(BaseModel):
    """The weak and strong views of semi-supervised methods: lists of registered
    augmentations (``{name: shift, pixels: 1}``); a missing list takes mentor's default for
    the input layout (:func:`mentor.data.augment.default_views`)."""

    model_config = _STRICT
    weak: list[dict[str, Any]] | None = None
    strong: list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _named(self):
        from .data import augment  # noqa: F401  (registers the built-in augmentations)
        from .registry import AUGMENTS
        for role in ("weak", "strong"):
            for i, op in enumerate(getattr(self, role) or []):
                name = op.get("name")
                if not isinstance(name, str):
                    raise ValueError(f"{role}[{i}] needs a 'name' (one of "
                                     f"{', '.join(AUGMENTS.names())}), got {_short(op)}")
                if name not in AUGMENTS:
                    raise ValueError(f"{role}[{i}].name {name!r} is not a registered "
                                     f"augmentation{suggest(name, AUGMENTS.names())}; expected "
                                     f"one of {', '.join(AUGMENTS.names())}")
                for key, value in op.items():
                    if not _plain(value):
                        raise ValueError(f"{role}[{i}].{key} is {_short(value)}; expected a "
                                         "number, string, true/false or a list of them")
        return self

    def pipelines(self) -> dict[str, list[tuple[str, dict[str, Any]]] | None]:
        def ops(lst):
            return None if lst is None else [(o["name"], {k: v for k, v in o.items()
                                                          if k != "name"}) for o in lst]
        return {"weak": ops(self.weak), "strong": ops(self.strong)}


class TrainSpec(BaseModel):
    model_config = _STRICT
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1, description="rows per step over all processes (each of "
                            "N processes takes batch_size / N)")
    # above ~1e38 torch's optimizers fail converting the step size to float32; far before
    # that a run diverges (a TrainingFault), so 1e30 bounds both
    lr: float = Field(1e-3, gt=0, le=1e30)
    weight_decay: float = Field(0.0, ge=0, le=1e30)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    momentum: float = Field(0.9, ge=0, lt=1)
    schedule: Literal["constant", "cosine"] = "constant"
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1)
    checkpoint_every: int = Field(0, ge=0, description="steps between checkpoints inside an "
                                  "epoch; every epoch end is checkpointed too (0: epoch ends "
                                  "only)")
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    accumulate: int = Field(1, ge=1, le=1024, description="micro-batches of batch_size rows "
                            "per optimizer step (gradient accumulation: a step of "
                            "accumulate x batch_size rows in the memory of one micro-batch)")
    max_grad_norm: float | None = Field(None, gt=0, le=1e30, description="clip the gradients' "
                                        "global L2 norm to this before each optimizer step "
                                        "(none: no clipping)")
    cache_teacher: Literal["auto", "always", "never"] = "auto"
    select: Literal["best_val", "last"] = "best_val"
    unlabeled_ratio: int = Field(0, ge=0, description="semi-supervised batches: batch_size "
                                 "labeled rows plus this many times as many unlabeled rows per "
                                 "step (0: one shuffled pass over all rows)")
    augment: AugmentSpec | None = Field(None, description="weak/strong views of "
                                        "semi-supervised methods")
    eval_ema: float = Field(0.0, ge=0, lt=1, description="validate, select and return an "
                            "exponential moving average of the student's weights with this "
                            "decay (warm-up min(1 - 1/(t+1), decay)); 0 = the student itself")
    collapse_steps: int = Field(300, ge=0, description="stop when the pseudo-labels collapse "
                                "(none admitted, or one class > 90 %) for this many steps in a "
                                "row; 0 turns the check off")
    allow_unequal: list[Literal["views", "rows"]] = Field(
        default_factory=list, description="differences between the methods of a setting that "
        "the comparison accepts (views: the labeled rows' view; rows: a method training on a "
        "subset it selects); each is labeled on the leaderboard. Empty: every method gets the "
        "same views and rows (mentor.fairness)")
    log_with: list[Literal["tensorboard", "mlflow", "csv"]] = Field(
        default_factory=list, description="experiment trackers that get every training's "
        "configuration and per-epoch metrics (Accelerate's trackers; see mentor.runs.trackers)")

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int]) -> list[int]:
        from collections import Counter
        counts = Counter(seeds)
        repeated = sorted(k for k, n in counts.items() if n > 1)
        if repeated:
            k = repeated[0]
            raise ValueError(f"seed {k} is listed {counts[k]} times; expected distinct "
                             "seeds (a repeated seed repeats the same training, and the spread "
                             "over seeds would read 0)")
        return seeds


class PrivilegedSpec(BaseModel):
    """The teacher sees more than the student. ``kind: labels``: LAD's label-assisted teacher
    (METHODS.md §1) -- trained on ``[x || one-hot(y) + noise]`` with dual-path consistency,
    then distilled into a student that sees only ``x``."""

    model_config = _STRICT
    kind: Literal["labels"] = "labels"
    train_noise: float = Field(0.3, ge=0, description="std of the code noise while the "
                               "teacher trains")
    use_noise: float = Field(0.0, ge=0, description="std of the code noise while it teaches")
    consistency: float = Field(5.0, ge=0, description="weight of the dual-path consistency "
                               "term (0: the ablation)")
    temperature: float = Field(4.0, gt=0, description="temperature of the consistency KD")


class StageSpec(BaseModel):
    """One teacher pre-training stage: its own data (same input shape and classes as the
    recipe's) and training settings. Stages run in order before the teacher's own training
    on the recipe's data (AlexaTM, METHODS.md §6: generic data, then in-domain data)."""

    model_config = _STRICT
    name: str | None = Field(None, description="shown in the teacher's description")
    data: DataSpec
    train: TrainSpec | None = None


class TeacherSpec(_ModelOptions):
    """Exactly one of: a model trained from the recipe (``model`` + ``train``), a safetensors
    ``checkpoint`` (architecture from ``model`` fields or the file's mentor metadata), or an
    ``ensemble`` of teacher specs."""

    model: BuiltInModel | None = None
    train: TrainSpec | None = None
    seed: Seed = 0
    checkpoint: str | None = None
    store: str | None = Field(None, description="a label store folder (mentor label) made "
                              "from this recipe's training split")
    allow_mismatch: bool = Field(False, description="use a store whose data fingerprint "
                                 "differs from the training split")
    ensemble: list["TeacherSpec"] | None = Field(None, min_length=1)
    combine: Literal["probs", "logits", "weighted", "confidence", "entropy"] = Field(
        "probs", description="ensemble fusion: mean of probabilities or logits, user-weighted, "
        "or per-sample confidence- or inverse-entropy-weighted probabilities")
    weights: list[float] | None = Field(None, description="one per member, for 'weighted'")
    privileged: PrivilegedSpec | None = Field(None, description="train a privileged-input "
                                              "teacher (kind: labels = LAD)")
    pretrain: list[StageSpec] | None = Field(None, min_length=1, description="stages trained "
                                             "in order before the recipe's data")
    adapt: bool = Field(True, description="after 'pretrain', train on the recipe's data "
                        "(false: the teacher is the last pre-training stage, or a saved "
                        "model -- model: hf with a path -- used as it is)")

    @model_validator(mode="after")
    def _one_source(self):
        if self.privileged is not None and (self.checkpoint is not None
                                            or self.ensemble is not None):
            raise ValueError("'privileged' applies to a teacher trained from the recipe "
                             "('model'), not to a checkpoint or an ensemble")
        if self.pretrain is not None and self.model is None:
            raise ValueError("'pretrain' stages train a teacher from the recipe ('model'), not "
                             "a checkpoint or an ensemble")
        saved = self.model == "hf" and self.path is not None
        if not self.adapt and self.pretrain is None and not saved:
            raise ValueError("'adapt: false' leaves the teacher untrained without 'pretrain' "
                             "stages; expected 'pretrain', a saved model (model: hf with a "
                             "path) or adapt true")
        if not self.adapt and saved and self.train is not None:
            raise ValueError("'adapt: false' uses the saved model as it is; remove 'train' "
                             "(or set adapt true to fine-tune it)")
        if self.pretrain is not None and self.privileged is not None:
            raise ValueError("'pretrain' and 'privileged' cannot be combined yet; expected one "
                             "of them")
        if self.privileged is not None and self.model == "cnn":
            raise ValueError("'privileged' appends the label code to flat input rows, which a "
                             "'cnn' cannot read; expected model 'mlp' or 'linear'")
        sources = [n for n, v in (("checkpoint", self.checkpoint), ("ensemble", self.ensemble),
                                  ("store", self.store)) if v is not None]
        if len(sources) > 1:
            raise ValueError(f"give one of 'checkpoint', 'ensemble' or 'store', not "
                             f"{' and '.join(sources)}")
        if not sources and self.model is None:
            raise ValueError("needs 'model' (trained from the recipe), 'checkpoint', 'store' or "
                             "'ensemble'")
        if self.store is not None and (self.model is not None or self.train is not None):
            raise ValueError("a label store holds the teacher's outputs; remove 'model'/'train'")
        if self.ensemble is not None and (self.model is not None or self.train is not None):
            raise ValueError("an ensemble takes its members' fields; remove 'model'/'train' here")
        if self.checkpoint is not None and self.train is not None:
            raise ValueError("a checkpoint teacher is not trained; remove 'train'")
        if self.model is not None:
            self.model_spec()  # field/model consistency
        return self

    def model_spec(self) -> ModelSpec:
        return ModelSpec(model=self.model, **self.options())


class SelectorSpec(BaseModel):
    """A registered selector by ``name`` plus its parameters."""

    model_config = ConfigDict(extra="allow")
    name: str


class ActiveSpec(BaseModel):
    """Rounds of select -> label -> train (``mentor active``): each selector is run for every
    seed; the oracle reveals hidden labels, the teacher's outputs are bought per query."""

    model_config = _STRICT
    selectors: list[SelectorSpec | str] = Field(min_length=1)
    rounds: int = Field(3, ge=1)
    oracle_per_round: int = Field(0, ge=0)
    teacher_per_round: int = Field(0, ge=0)
    teacher_cost: float | None = Field(None, ge=0, description="cost of one teacher query "
                                       "(default: the teacher's declared cost_per_query, 0 for "
                                       "local models)")
    max_cost: float | None = Field(None, ge=0, description="refuse budgets that cost more")
    alpha: float = Field(0.5, ge=0, le=1, description="KD weight on teacher-labeled rows")
    temperature: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _budget(self):
        if self.oracle_per_round == 0 and self.teacher_per_round == 0:
            raise ValueError("both budgets are 0; expected oracle_per_round or "
                             "teacher_per_round > 0")
        return self

    def selector_list(self) -> list[tuple[str, dict]]:
        out = []
        for s in self.selectors:
            if isinstance(s, str):
                out.append((s, {}))
            else:
                out.append((s.name, dict(s.model_extra or {})))
        return out


class MethodSpec(BaseModel):
    """A registered method by ``name`` plus its parameters (checked by the method)."""

    model_config = ConfigDict(extra="allow")
    name: str
    label: str | None = Field(None, description="name shown in the leaderboard")


class SettingSpec(BaseModel):
    """A named variation of the recipe (e.g. fewer labels); its fields override the base."""

    model_config = _STRICT
    name: str
    description: str = ""
    data: dict[str, Any] | None = None
    student: dict[str, Any] | None = None
    train: dict[str, Any] | None = None
    teacher: dict[str, Any] | None = Field(None, description="teacher overrides; a setting "
                                           "with a different teacher trains its own")
    methods: list[dict[str, Any]] | None = Field(None, min_length=1, description="this "
                                                 "setting's methods (replace the recipe's)")


class Recipe(BaseModel):
    model_config = _STRICT
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=200,
                      description="names the run folder <name>-<time> (a folder name is at "
                      "most 255 bytes)")
    description: str = ""
    task: Literal["classification", "tagging", "graph_nodes"] = Field(
        "classification", description="classification: a class per row; tagging: a tag per "
        "token (data.source tb-seq-tagging or a .npz of tokens and tags); graph_nodes: a "
        "class per node of a graph (data.source contextual-hypergraph or a .npz of features, "
        "labels and edges; teacher.model hgnn reads the graph, the student node features)")
    data: DataSpec
    teacher: TeacherSpec | None = None
    student: ModelSpec
    method: MethodSpec | None = None
    methods: list[MethodSpec] | None = Field(None, min_length=1)
    settings: list[SettingSpec] | None = Field(None, min_length=1)
    train: TrainSpec = Field(default_factory=TrainSpec)
    active: ActiveSpec | None = Field(None, description="rounds of selection (mentor active)")

    @model_validator(mode="after")
    def _methods(self):
        if self.active is not None:
            if self.method is not None or self.methods is not None:
                raise ValueError("an 'active' recipe trains its students with CE + KD on the "
                                 "labels it buys; remove 'method'/'methods'")
            return self
        if (self.method is None) == (self.methods is None):
            raise ValueError("give exactly one of 'method' or 'methods'")
        return self

    def method_list(self) -> list[MethodSpec]:
        return [self.method] if self.method is not None else list(self.methods)


# ---------------------------------------------------------------------------------- errors

def format_errors(err: ValidationError, prefix: tuple = (), model: Any = None) -> list[str]:
    """One sentence per pydantic error: field, value, expectation.

    ``model`` is the pydantic model that raised ``err`` (default: :class:`Recipe`, or the
    method parameter model when ``prefix`` is given); it supplies "did you mean" hints.
    """
    return _validation.format_errors(err, prefix, model, Recipe)


# ---------------------------------------------------------------------------------- loading

class DuplicateKey(yaml.YAMLError):
    """A mapping that names a key twice (YAML's last-wins would drop the first silently)."""

    def __init__(self, key, first: int, mark):
        self.key, self.first, self.problem_mark = key, first, mark
        self.problem = (f"key {_short(key)} appears twice in one mapping (first on line "
                        f"{first}, again on line {mark.line + 1}); expected each key once (the "
                        "second would silently replace the first)")
        super().__init__(self.problem)


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (no tags, no code) that refuses duplicate keys in a mapping.

    Keys brought in by a merge (``<<: *base``) may be overridden, as YAML intends; keys
    written twice may not."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or \
                        not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue
                if first is not None:
                    raise DuplicateKey(key, first, key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


# values a recipe may hold once its aliases are expanded: a recipe has a few hundred; an
# alias bomb ("billion laughs") 10^9, which any walk over it (validation, a message, a copy)
# would take minutes and gigabytes to visit
MAX_VALUES = 100_000
_TOO_MANY = (f"the YAML expands to more than {MAX_VALUES:,} values through its aliases (an "
             "anchor repeated many times, or used inside itself); expected a recipe of plain "
             "values")


def _within(value: Any, limit: int = MAX_VALUES) -> bool:
    """Whether ``value`` holds at most ``limit`` values, counting every alias expansion
    (a cycle never ends the walk, so it exceeds the limit too)."""
    stack, count = [value], 0
    while stack:
        v = stack.pop()
        count += 1
        if count > limit:
            return False
        if isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return True


def load_yaml_text(text: str) -> Any:
    """YAML text as plain values: safe (no tags run), no duplicate keys, at most
    :data:`MAX_VALUES` values after alias expansion (``ValueError`` otherwise; YAML errors
    are ``yaml.YAMLError``)."""
    loader = _Loader(text)
    try:
        value = loader.get_single_data()
    finally:
        loader.dispose()
    if not _within(value):
        raise ValueError(_TOO_MANY)
    return value


def _yaml_problem(e: yaml.YAMLError) -> str:
    """One sentence for a YAML error: where it is and what is wrong."""
    mark = getattr(e, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(e, "problem", None) or (str(e).splitlines() or ["invalid YAML"])[0]
    if isinstance(e, DuplicateKey):
        return f"line {mark.line + 1}: {problem}"
    if isinstance(e, yaml.constructor.ConstructorError) and "tag" in problem:
        tag = problem.rsplit(" ", 1)[-1].strip("'\"").replace("tag:yaml.org,2002:", "!!")
        return (f"{where}tag {_short(tag)} is not allowed; expected plain YAML (mappings, "
                "lists, numbers, strings), never tags or code")
    return f"{where}not valid YAML ({_short(problem, 200)}); expected plain YAML"


_TOO_DEEP = ("the YAML is nested too deeply to read (hundreds of levels of lists or "
             "mappings); expected a recipe a few levels deep")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a recipe file: a regular file of at most 1 MiB, UTF-8, YAML read safely (tags
    -- code -- are refused, never run), no key twice in a mapping, aliases bounded."""
    from ._util.safeio import MAX_RECIPE_BYTES, FileProblem, read_bounded, shown
    path = Path(path)
    try:
        data = read_bounded(path, MAX_RECIPE_BYTES, "a recipe YAML file")
    except FileProblem as e:
        if e.reason == "missing":
            raise RecipeError([f"file {shown(path)} does not exist; expected a recipe YAML file "
                               "or the name of a built-in recipe "
                               f"({', '.join(builtin_recipes())})"], source="recipe") from None
        if e.reason == "directory":
            raise RecipeError([f"{shown(path)} is a directory; expected a recipe YAML file"],
                              source="recipe") from None
        raise RecipeError([str(e)], source="recipe") from None
    source = _source_name(path)
    try:
        raw = load_yaml_text(data.decode("utf-8"))
    except yaml.YAMLError as e:
        raise RecipeError([_yaml_problem(e)], source=source) from None
    except UnicodeDecodeError:
        raise RecipeError(["not a UTF-8 text file; expected a recipe YAML file"],
                          source=source) from None
    except RecursionError:
        raise RecipeError([_TOO_DEEP], source=source) from None
    except ValueError as e:
        raise RecipeError([str(e)], source=source) from None
    if raw is None:
        raise RecipeError(["the file is empty; expected a mapping of recipe keys (name, data, "
                           "student, method(s), ...)"], source=source)
    if not isinstance(raw, dict):
        raise RecipeError([f"the top level must be a mapping of keys, got "
                           f"{type(raw).__name__} {_short(raw)}"], source=source)
    return raw


def _source_name(path: Path) -> str:
    """How messages name a recipe file: its path, control characters escaped."""
    from ._util.safeio import shown
    return shown(path)[1:-1]


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set key.path=value`` overrides (values parsed as YAML scalars/lists)."""
    out = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise RecipeError([f"{item!r} has no '='; expected key.path=value (e.g. "
                               "train.lr=0.01)"], source="--set")
        key, _, text = item.partition("=")
        if not key.strip() or any(not p.strip() for p in key.split(".")):
            raise RecipeError([f"{item!r} has an empty key path {key!r}; expected "
                               "key.path=value (e.g. train.lr=0.01)"], source="--set")
        try:
            value = load_yaml_text(text) if text.strip() else ""
        except (yaml.YAMLError, RecursionError, ValueError):
            raise RecipeError([f"{key} value {_short(text)} is not a valid YAML value; "
                               "expected a number, string, true/false or [list]"],
                              source="--set") from None
        parts = [int(p) if p.isdigit() else p for p in key.strip().split(".")]
        node: Any = out
        for i, part in enumerate(parts):
            _check_step(node, part, key, parts[:i])
            if i == len(parts) - 1:
                node[part] = value
            else:
                if isinstance(node, dict) and node.get(part) is None:
                    node[part] = [] if isinstance(parts[i + 1], int) else {}
                node = node[part]
    return out


def _check_step(node: Any, part: Any, key: str, parent: list) -> None:
    """``node[part]`` must be reachable for ``--set key``: an existing list index or a key."""
    if isinstance(node, list):
        if not isinstance(part, int) or part >= len(node):
            raise RecipeError([f"{key}: index {part} does not exist; expected an index below "
                               f"{len(node)}"], source="--set")
    elif not isinstance(node, dict):
        raise RecipeError([f"{key}: {_fmt_loc(tuple(parent))} is {_short(node)}, not a "
                           "mapping; expected a path of keys"], source="--set")


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_recipe(raw: dict[str, Any], source: str = "recipe") -> Recipe:
    """Validate a recipe mapping; raise :class:`RecipeError` listing every problem."""
    from .methods import check_method_params

    problems: list[str] = []
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as e:
        problems.extend(format_errors(e))
        recipe = None
    # method parameters are checked by each method's own schema
    if isinstance(raw, dict):
        specs = []
        if isinstance(raw.get("method"), dict):
            specs.append((("method",), raw["method"]))
        if isinstance(raw.get("methods"), list):
            specs += [(("methods", i), m) for i, m in enumerate(raw["methods"])
                      if isinstance(m, dict)]
        for loc, spec in specs:
            problems.extend(check_method_params(spec, loc))
        names = [s.name for s in recipe.settings or []] if recipe is not None else []
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            problems.append(f"settings: name {dup[0]!r} is used {names.count(dup[0])} times; "
                            "expected unique names")
        elif recipe is not None and recipe.settings:
            for i, s in enumerate(recipe.settings):
                merged = setting_raw(raw, s.name)
                try:
                    Recipe.model_validate(merged)
                except ValidationError as e:
                    problems.extend(f"settings[{i}] ({s.name}): {p}" for p in format_errors(e))
    if problems:
        raise RecipeError(problems, source=source)
    return recipe


def setting_raw(raw: dict[str, Any], setting: str) -> dict[str, Any]:
    """The recipe mapping with the named setting's overrides applied (settings removed)."""
    base = {k: v for k, v in raw.items() if k != "settings"}
    for s in raw.get("settings") or []:
        if s.get("name") == setting:
            over = {k: s[k] for k in ("data", "student", "train", "teacher") if s.get(k)}
            merged = deep_merge(base, over)
            if s.get("methods"):  # a list of its own replaces the recipe's method(s)
                merged.pop("method", None)
                merged["methods"] = copy.deepcopy(s["methods"])
            return merged
    raise RecipeError([f"no setting named {setting!r}"])


BUILTIN_DIR = Path(__file__).parent / "recipes"


def builtin_recipes() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.yaml"))}


def resolve_recipe_path(name_or_path: str) -> Path:
    """A recipe file path, or the name of a built-in recipe."""
    import os
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or os.path.lexists(p):  # (lexists: never raises)
        return p
    builtins = builtin_recipes()
    if name_or_path in builtins:
        return builtins[name_or_path]
    if any(len(os.fsencode(part)) > 255 for part in p.parts):
        raise RecipeError([f"{_short(name_or_path)} is not a file: a name component is longer "
                           "than 255 bytes (the file system's limit); expected a recipe YAML "
                           "file or the name of a built-in recipe"], source="recipe")
    raise RecipeError([f"{_short(name_or_path, 200)} is neither a file nor a built-in recipe"
                       f"{suggest(name_or_path, builtins)}; built-ins: {', '.join(builtins)}"],
                      source="recipe")
