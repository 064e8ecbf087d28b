"""Vision-language teachers (METHODS.md §9, §50, §51, §54, §56): a zero-shot CLIP-style
teacher usable by every method, PromptKD's shared text classifier, and the text-anchored
objectives of VLM -> student distillation with OOD generalisability."""

from .digits import VLDigits, vl_digits
from .teacher import ZeroShotTeacher, text_table
from .tiny_clip import (DIGIT_NAMES, TEMPLATES, WordTokenizer, load_clip, tiny_clip_config,
                        train_tiny_clip, vectors_to_pixels)

__all__ = ["DIGIT_NAMES", "TEMPLATES", "VLDigits", "WordTokenizer", "ZeroShotTeacher",
           "load_clip", "text_table", "tiny_clip_config", "train_tiny_clip",
           "vectors_to_pixels", "vl_digits"]
