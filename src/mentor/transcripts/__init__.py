"""Pseudo-transcripts, frozen backbones with language adapters and checkpoint merging on
a toy sequence-recognition task (METHODS.md §3 LDA, §60 ``SequenceASR``): the generated
testbed TB-SEQ transcripts (three synthetic "languages" of 70 / 25 / 5 % of utterances,
token sequences rendered as noisy feature frames), a small CTC recogniser with
per-language bottleneck adapters, greedy CTC decoding and the token error rate, a
teacher's pseudo-transcripts, noisy-student input noise, adapter checkpoint merging, and
LDA's arms under one budget. A toy stand-in for streaming multilingual ASR; API level: no
registry entry, recipe, CLI path or export."""

from .arms import ARMS, NOISE, LdaResult, compare_arms
from .merge import merge_checkpoints, select_checkpoints
from .metrics import edit_errors, greedy_decode, token_error_rate
from .model import Adapter, Recogniser, count_parameters
from .noise import noisy_frames
from .testbed import BLANK, SPLITS, SeqData, check_transcripts, from_lists, tb_seq
from .train import (AdapterRun, batch, best_single, ctc_loss, error_rate, merged, predict,
                    pseudo_transcripts, train_adapters, train_recogniser)

__all__ = ["ARMS", "NOISE", "LdaResult", "compare_arms", "merge_checkpoints",
           "select_checkpoints", "edit_errors", "greedy_decode", "token_error_rate",
           "Adapter", "Recogniser", "count_parameters", "noisy_frames", "BLANK", "SPLITS",
           "SeqData", "check_transcripts", "from_lists", "tb_seq", "AdapterRun", "batch",
           "best_single", "ctc_loss", "error_rate", "merged", "predict",
           "pseudo_transcripts", "train_adapters", "train_recogniser"]
