"""The ``tokens`` recipe: language-model distillation regimes compared on one data set.

A recipe with ``task: tokens`` trains a teacher language model on the data (TB-LM's synthetic
addition, WordNet's dictionary entries, or a file of prompts and completions), then trains
one student per method and seed on the first ``data.student_sequences`` training sequences
with one of the regimes of :func:`~mentor.lm.distill.distill_lm`, and reports exact match on
held-out prompts and the perplexity of held-out completions. Read
with the same rules as every recipe: ``yaml.safe_load``, unknown keys are errors with a
"did you mean" hint, every problem listed at once.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import RecipeError
from ..losses.tokens import DIVERGENCES
from .completions import CompletionOptions
from .distill import REGIMES
from .regimes import SELECTIONS, Optimization

_STRICT = ConfigDict(extra="forbid")


class TokensData(BaseModel):
    model_config = _STRICT
    testbed: Literal["addition", "wordnet"] = Field(
        "addition", description="addition: TB-LM's fixed-width addition strings; wordnet: "
        "WordNet's dictionary entries (Debian wordnet-base, mentor.lm.corpus), perplexity of "
        "held-out entries and their part of speech")
    digits: int = Field(2, ge=1, le=4, description="addition: operand digits")
    vocab_size: int = Field(2000, ge=259, description="wordnet: tokens of the BPE tokenizer "
                            "trained on the training entries")
    split_seed: int = 0
    val: int = Field(200, ge=1, description="validation prompts (model selection)")
    test: int = Field(500, ge=1, description="test prompts (reported once per run)")
    teacher_sequences: int | None = Field(None, ge=1, description="training sequences the "
                                          "teacher sees (default: all)")
    student_sequences: int | None = Field(1000, ge=1, description="the first N training "
                                          "sequences, the students' data (None: all)")
    source: str | None = Field(None, description="a file of prompts and completions (JSON "
                               "Lines, Parquet, Arrow, CSV or a save_to_disk folder) instead "
                               "of the testbed")
    tokenizer: str | None = Field(None, description="source: a local tokenizer folder")
    prompt: str = Field("prompt", description="source: the prompt column")
    completion: str = Field("completion", description="source: the completion column")
    messages: str | None = Field(None, description="source: a column of chat turns, the "
                                 "last the assistant's answer (instead of prompt/completion)")
    chat: bool = Field(False, description="source: render text prompts as a user turn with "
                       "the tokenizer's chat template")
    max_length: int = Field(512, ge=2, description="source: tokens per row at most (longer "
                            "rows as too_long says); wordnet: longer definitions are cut")
    too_long: Literal["error", "drop"] = "error"

    @model_validator(mode="after")
    def _source_fields(self):
        if (self.source is None) != (self.tokenizer is None):
            raise ValueError("data.source and data.tokenizer go together: a file of prompts "
                             "and completions and the tokenizer folder that reads it")
        if self.source is not None and "testbed" in self.model_fields_set:
            raise ValueError(f"data.testbed {self.testbed!r} and data.source are two data "
                             "sets; expected one of them")
        own = {"addition": {"digits"}, "wordnet": {"vocab_size"}}
        for testbed, fields in own.items():
            wrong = sorted(fields & self.model_fields_set)
            if wrong and (self.testbed != testbed or self.source is not None):
                raise ValueError(f"data.{wrong[0]} is for testbed {testbed!r}, not "
                                 f"{self.source or self.testbed!r}")
        if self.testbed == "wordnet" and self.source is None and self.max_length < 16:
            raise ValueError(f"data.max_length {self.max_length} is too short for a "
                             "dictionary entry; expected at least 16 with testbed 'wordnet'")
        return self

    def completion_options(self) -> CompletionOptions:
        return CompletionOptions(path=self.source, tokenizer=self.tokenizer,
                                 prompt=self.prompt, completion=self.completion,
                                 messages=self.messages, chat=self.chat,
                                 max_length=self.max_length, too_long=self.too_long,
                                 val=self.val, test=self.test, split_seed=self.split_seed)


class LMSpec(BaseModel):
    model_config = _STRICT
    arch: Literal["gru", "transformer", "hf"] = "gru"
    d_model: int = Field(64, ge=1)
    layers: int = Field(1, ge=1)
    heads: int = Field(2, ge=1, description="attention heads (transformer)")
    config: dict[str, Any] | None = Field(None, description="hf: model_type and the fields of "
                                          "a transformers config (a causal LM, random "
                                          "weights from the seed)")
    path: str | None = Field(None, description="hf: a local causal LM folder "
                             "(save_pretrained)")
    lora: dict[str, Any] | None = Field(None, description="hf: train LoRA adapters over the "
                                        "frozen model (r, alpha, dropout, target_modules)")

    @model_validator(mode="after")
    def _hf_fields(self):
        if self.arch == "hf" and (self.config is None) == (self.path is None):
            raise ValueError("arch 'hf' needs one of 'config' (model_type and its fields) or "
                             "'path' (a local causal LM folder)")
        if self.arch != "hf" and (self.config is not None or self.path is not None
                                  or self.lora is not None):
            raise ValueError(f"'config', 'path' and 'lora' are for arch 'hf', not "
                             f"{self.arch!r}")
        return self


class TokensTeacher(LMSpec):
    steps: int = Field(800, ge=0, description="training steps on the data (0: a trained "
                       "model from 'path', used as it is)")
    batch_size: int = Field(128, ge=1)
    lr: float = Field(3e-3, gt=0)
    seed: int = 0
    eval_every: int = Field(200, ge=1)
    schedule: Literal["constant", "cosine"] = Field("constant", description="cosine: decay "
                                                    "to 0 over the steps")
    max_grad_norm: float | None = Field(None, gt=0, description="clip the gradients' norm")

    def optimization(self) -> Optimization:
        return Optimization(lr=self.lr, schedule=self.schedule,
                            max_grad_norm=self.max_grad_norm)

    @model_validator(mode="after")
    def _untrained(self):
        if self.steps == 0 and self.path is None:
            raise ValueError("teacher.steps 0 uses the teacher as it is; expected arch 'hf' "
                             "with 'path' to a trained model (or steps of at least 1)")
        return self


class TokensTrain(BaseModel):
    model_config = _STRICT
    steps: int = Field(800, ge=1)
    batch_size: int = Field(64, ge=1)
    accumulate: int = Field(1, ge=1, description="micro-batches per optimizer step")
    lr: float = Field(3e-3, gt=0)
    eval_every: int = Field(200, ge=1)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    chunk_size: int | None = Field(None, ge=1, description="positions per chunk of the "
                                   "token loss (None: one chunk)")
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    weight_decay: float = Field(0.0, ge=0)
    schedule: Literal["constant", "cosine"] = Field("constant", description="cosine: "
                                                    "decay to 0 over the steps")
    max_grad_norm: float | None = Field(None, gt=0, description="clip the gradients' norm")
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    gradient_checkpointing: bool = Field(False, description="recompute activations in the "
                                         "backward pass (Hugging Face students)")
    select: Literal[SELECTIONS] = Field(  # type: ignore[valid-type]
        "exact_match", description="the weights kept, teacher's and students': best "
        "validation exact_match, lowest validation perplexity, or the last step's")

    def optimization(self) -> Optimization:
        return Optimization(lr=self.lr, optimizer=self.optimizer,
                            weight_decay=self.weight_decay, schedule=self.schedule,
                            max_grad_norm=self.max_grad_norm,
                            mixed_precision=self.mixed_precision,
                            gradient_checkpointing=self.gradient_checkpointing)


class TokensMethod(BaseModel):
    """One student recipe: a label and a :func:`distill_lm` regime with its options."""

    model_config = _STRICT
    name: str = Field(min_length=1, description="label in the leaderboard")
    regime: Literal[REGIMES]  # type: ignore[valid-type]
    divergence: Literal[DIVERGENCES] | None = None  # type: ignore[valid-type]
    beta: float = Field(0.5, ge=0, le=1)
    alpha: float = Field(0.1, ge=0, le=1)
    temperature: float = Field(1.0, gt=0)
    t2: bool = False
    lam: float = Field(1.0, ge=0, le=1)
    estimator: Literal["full", "sampled"] = "full"
    warmup_steps: int | None = Field(None, ge=0)
    gold_tries: int = Field(0, ge=0)
    sample_temperature: float = Field(1.0, gt=0)

    def options(self) -> dict[str, Any]:
        return self.model_dump(exclude={"name"})


class TokensRecipe(BaseModel):
    model_config = _STRICT
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    task: Literal["tokens"]
    data: TokensData = Field(default_factory=TokensData)
    teacher: TokensTeacher = Field(default_factory=lambda: TokensTeacher(layers=2))
    student: LMSpec = Field(default_factory=LMSpec)
    train: TokensTrain = Field(default_factory=TokensTrain)
    methods: list[TokensMethod] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self):
        labels = [m.name for m in self.methods]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"method name {dup[0]!r} is used twice; expected unique names")
        for m in self.methods:
            if m.warmup_steps is not None and m.warmup_steps > self.train.steps:
                raise ValueError(f"method {m.name!r}: warmup_steps {m.warmup_steps} exceeds "
                                 f"train.steps {self.train.steps}; expected at most that")
        return self


def is_tokens_recipe(raw: Any) -> bool:
    return isinstance(raw, dict) and raw.get("task") == "tokens"


def parse_tokens_recipe(raw: dict, source: str = "recipe") -> TokensRecipe:
    """Validate a ``task: tokens`` mapping; raise :class:`RecipeError` listing every problem."""
    from .._validation import format_errors
    try:
        return TokensRecipe.model_validate(raw)
    except ValidationError as e:
        raise RecipeError(format_errors(e, model=TokensRecipe), source=source) from None
