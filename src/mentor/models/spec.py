"""The built-in model of a recipe or a checkpoint's metadata: ``model`` (linear, mlp, cnn)
and the options each uses (a field the chosen model does not use is an error)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MODEL_OPTIONS = ("hidden", "channels", "kernel_size", "dropout", "batchnorm", "pool")
USED_BY = {"linear": set(), "mlp": {"hidden", "dropout", "batchnorm"},
            "cnn": {"channels", "kernel_size", "hidden", "dropout", "batchnorm", "pool"}}


class ModelOptions(BaseModel):
    """The options of the built-in models (each used by some of them)."""

    model_config = ConfigDict(extra="forbid")
    hidden: list[int] | None = None
    channels: list[int] | None = None
    kernel_size: int | None = Field(None, ge=1)
    dropout: float | None = Field(None, ge=0, lt=1)
    batchnorm: bool | None = None
    pool: Literal["avg", "flatten"] | None = None

    def options(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in MODEL_OPTIONS if getattr(self, k) is not None}


class ModelSpec(ModelOptions):
    """A built-in model. Fields not used by the chosen model are errors."""

    model: Literal["linear", "mlp", "cnn"]
    num_classes: int | None = Field(None, ge=2, description="must match the data and teacher")

    @model_validator(mode="after")
    def _fields_used(self):
        used = USED_BY[self.model]
        for name in MODEL_OPTIONS:
            if getattr(self, name) is not None and name not in used:
                raise ValueError(f"{name!r} is not used by model {self.model!r} (it uses: "
                                 f"{', '.join(sorted(used)) or 'no options'})")
        for name in ("hidden", "channels"):
            widths = getattr(self, name)
            if widths is not None and any(w < 1 for w in widths):
                raise ValueError(f"{name} widths must be >= 1, got {widths}")
        return self

    def build_kwargs(self) -> dict[str, Any]:
        return self.options()
