"""The interface of a labeler backend that answers many prompts in one call and names its model.

:class:`~mentor.lm.labeler.LLMLabeler` takes any callable ``prompt -> reply``. A backend that
is a :class:`BatchBackend` also gets the labeler's cache misses in batches of its
``batch_size`` (:meth:`BatchBackend.many`), and its :attr:`~BatchBackend.model_id` becomes
the labeler's cache namespace unless the labeler is given one. A local model
(:class:`mentor.lm.labeler_hf.TransformersBackend`) pays once per batch, not per prompt.
This module needs neither torch nor transformers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

__all__ = ["BatchBackend"]


class BatchBackend(ABC):
    """A labeler backend that replies to a list of prompts at once.

    Subclasses implement :meth:`many` and :attr:`model_id`; a single prompt is a batch of
    one. ``batch_size`` is how many prompts :class:`~mentor.lm.labeler.LLMLabeler` hands to
    one :meth:`many` call (the cache is flushed between batches).
    """

    batch_size: int = 8

    @property
    @abstractmethod
    def model_id(self) -> str:
        """A name that changes whenever the replies could (model, decoding settings)."""

    @abstractmethod
    def many(self, prompts: Sequence[str]) -> list[str]:
        """One reply per prompt, in order."""

    def __call__(self, prompt: str) -> str:
        return self.many([prompt])[0]
