"""Sequence tagging (METHODS.md §12 QUEACO, §60 ``SequenceTagging``): padded BIO-tagged
sequences, the generated testbed TB-SEQ tagging with clean "strong" and corrupted "weak"
tags, span F1 and token accuracy, QUEACO's teacher refiner of weak tags (a frozen teacher
trained on the strong tags), its meta-feedback update from the student's strong-data loss
(:mod:`~mentor.tagging.meta`, Meta-Pseudo-Labels style) and a small bidirectional-GRU tagger
trained on them (Zhang et al., "QUEACO: Borrowing Treasures from Weakly-labeled Behavior
Data for Query Attribute Value Extraction", CIKM 2021)."""

from .meta import META_ARMS, MetaFeedback, compare_meta_arms
from .metrics import span_counts, span_f1, spans, token_accuracy
from .refine import refine
from .splits import as_splits
from .testbed import TaggingData, check_tags, corrupt, num_tags, tag_names, tb_seq_tagging
from .train import (ARMS, Tagger, TrainedTagger, compare_arms, evaluate, probabilities,
                    refined_targets, student_step, tagger, train_tagger)

__all__ = ["META_ARMS", "MetaFeedback", "compare_meta_arms", "span_counts", "span_f1", "spans",
           "token_accuracy", "refine", "as_splits", "TaggingData",
           "check_tags", "corrupt", "num_tags", "tag_names", "tb_seq_tagging", "ARMS",
           "Tagger", "TrainedTagger", "compare_arms", "evaluate", "probabilities",
           "refined_targets", "student_step", "tagger", "train_tagger"]
