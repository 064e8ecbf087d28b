"""The built-in model of a recipe or a checkpoint's metadata: ``model`` (linear, mlp, cnn, bag,
bigru_tagger, hgnn, hf) and the options each uses (a field the chosen model does not use is an error)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MODEL_OPTIONS = ("hidden", "channels", "kernel_size", "dropout", "batchnorm", "pool", "embed",
                 "path", "config", "new_head", "lora", "stride")
USED_BY = {"linear": set(), "mlp": {"hidden", "dropout", "batchnorm"},
           "cnn": {"channels", "kernel_size", "hidden", "dropout", "batchnorm", "pool",
                   "stride"},
           "bag": {"embed", "hidden", "dropout"},
           "bigru_tagger": {"embed", "hidden"},
           "hgnn": {"hidden", "dropout"},
           "hf": {"path", "config", "new_head", "lora"}}


BuiltInModel = Literal["linear", "mlp", "cnn", "bag", "bigru_tagger", "hgnn", "hf"]  # the models a recipe may name


class ModelOptions(BaseModel):
    """The options of the built-in models (each used by some of them)."""

    model_config = ConfigDict(extra="forbid")
    hidden: list[int] | None = None
    channels: list[int] | None = None
    kernel_size: int | None = Field(None, ge=1)
    dropout: float | None = Field(None, ge=0, lt=1)
    batchnorm: bool | None = None
    pool: Literal["avg", "flatten"] | None = None
    embed: int | None = Field(None, ge=1, le=65_536, description="bag, bigru_tagger: token "
                       "embedding width")
    stride: int | None = Field(None, ge=1, le=64, description="cnn (2-D): the stride of the "
                               "blocks after the first (default 1: full resolution)")
    path: str | None = Field(None, description="hf: a local model folder (save_pretrained)")
    config: dict[str, Any] | None = Field(None, description="hf: model_type and the fields of "
                                          "a transformers config (random weights)")
    new_head: bool | None = Field(None, description="hf: a new classification head sized to "
                                  "the data (a folder's model trained for other classes)")
    lora: dict[str, Any] | None = Field(None, description="hf: train LoRA adapters (r, alpha, "
                                        "dropout, target_modules) and the head over the "
                                        "frozen model (peft)")

    def options(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in MODEL_OPTIONS if getattr(self, k) is not None}


class ModelSpec(ModelOptions):
    """A built-in model. Fields not used by the chosen model are errors."""

    model: BuiltInModel
    num_classes: int | None = Field(None, ge=2, description="must match the data and teacher")

    @model_validator(mode="after")
    def _fields_used(self):
        used = USED_BY[self.model]
        for name in MODEL_OPTIONS:
            if getattr(self, name) is not None and name not in used:
                raise ValueError(f"{name!r} is not used by model {self.model!r} (it uses: "
                                 f"{', '.join(sorted(used)) or 'no options'})")
        if self.model == "hf" and (self.path is None) == (self.config is None):
            raise ValueError("model 'hf' needs one of 'path' (a local model folder written by "
                             "save_pretrained) or 'config' (model_type and its fields)")
        for name in ("hidden", "channels"):
            widths = getattr(self, name)
            if widths is not None and any(w < 1 for w in widths):
                raise ValueError(f"{name} widths must be >= 1, got {widths}")
        return self

    def build_kwargs(self) -> dict[str, Any]:
        return self.options()
