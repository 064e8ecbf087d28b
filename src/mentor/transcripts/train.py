"""CTC training, evaluation and pseudo-transcripts on transcribed utterances (METHODS.md §3
LDA's CPU experiment).

LDA (Language-Dependent Adapters for tail languages in streaming multilingual ASR, paper
3): a teacher transcribes unlabeled audio of a tail language; the student -- a frozen
multilingual foundation model plus an adapter per language -- trains only the adapter on
labeled ∪ pseudo-labeled audio with noisy-student input noise; adapter checkpoints are
kept and merged. No official code was read; this is a reconstruction on the toy testbed.

- :func:`ctc_loss`: ``torch.nn.CTCLoss`` (blank 0, mean over utterances of the loss
  divided by the target length, ``zero_infinity``) on log-softmax outputs.
- :func:`train_recogniser`: a :class:`~mentor.transcripts.model.Recogniser` with every
  parameter trained on given utterances for a fixed budget (the weights of the last step
  are kept; nothing is selected): the teacher (larger, with its language adapters) and the
  language-blind backbone (``use_adapters=False``) are both made this way.
- :func:`pseudo_transcripts`: the teacher's greedy CTC decodes of utterances; an optional
  confidence filter (mean over frames of the top class probability >= ``min_confidence``)
  is off by default ``[reconstruction]``: the paper's abstract describes none. Empty
  decodes are dropped (a transcript needs a token).
- :func:`train_adapters`: from a copy of a pre-trained backbone, train the adapters of
  ``languages`` (``trainable="adapter"``, everything else frozen; ``train_head`` adds the
  CTC head) or the whole model (``"full"``) on given utterances with input noise
  (:func:`~mentor.transcripts.noise.noisy_frames`), keeping a checkpoint of the trained
  weights every ``eval_every`` steps with the validation token error rate of each
  language. :func:`best_single` loads the checkpoint with the lowest mean validation
  error; :func:`merged` the element-wise mean of each language's selected checkpoints
  (:mod:`mentor.transcripts.merge`). Selection reads validation transcripts only.

Defaults (Adam, lr 3e-3, batches of 32) are this module's choices ``[reconstruction]``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .._util.args import positive_int
from ..errors import DataError, MentorError
from .merge import merge_checkpoints, select_checkpoints
from .metrics import greedy_decode, token_error_rate
from .model import Recogniser, count_parameters
from .noise import noisy_frames
from .testbed import BLANK, SeqData

TRAINABLE = ("adapter", "full")


def batch(data: SeqData, ids: Tensor):
    """``(frames (B, T_b, D), frame lengths, tokens (B, L_b), token lengths, language)``
    of utterances ``ids``, trimmed to the batch's longest utterance."""
    fl, tl = data.frame_lengths[ids], data.token_lengths[ids]
    return (data.frames[ids, :int(fl.max())], fl, data.tokens[ids, :int(tl.max())], tl,
            data.language[ids])


def ctc_loss(logits: Tensor, lengths: Tensor, tokens: Tensor, token_lengths: Tensor) -> Tensor:
    """CTC loss of logits ``(B, T, C)`` (module docstring)."""
    logp = logits.log_softmax(-1).transpose(0, 1)
    return nn.CTCLoss(blank=BLANK, zero_infinity=True)(logp, tokens, lengths, token_lengths)


def predict(model: Recogniser, data: SeqData, ids: Tensor, use_adapters: bool = True,
            batch_size: int = 256) -> tuple[list[list[int]], list[float]]:
    """Greedy decodes of utterances ``ids`` and their confidence (mean over frames of the
    top class probability), no gradient."""
    was = model.training
    model.eval()
    hyps: list[list[int]] = []
    conf: list[float] = []
    with torch.no_grad():
        for b in ids.split(batch_size):
            x, fl, _, _, lang = batch(data, b)
            logits = model(x, lang, use_adapters, fl)
            hyps += greedy_decode(logits, fl)
            top = logits.softmax(-1).amax(-1)
            within = torch.arange(x.shape[1])[None, :] < fl[:, None]
            conf += ((top * within).sum(1) / fl).tolist()
    model.train(was)
    return hyps, conf


def error_rate(model: Recogniser, data: SeqData, split: str, language: int | None = None,
               use_adapters: bool = True) -> float:
    """Corpus token error rate of ``model`` on ``split`` (of ``language`` when given)."""
    ids = data.ids(split, language)
    if not len(ids):
        raise DataError(f"split {split!r} of language {language} names no utterance; "
                        "expected at least one to score")
    return token_error_rate(predict(model, data, ids, use_adapters)[0], data.transcripts(ids))


def _stream(ids: Tensor, batch_size: int, generator: torch.Generator):
    batches: list[Tensor] = []
    while True:
        if not batches:
            batches = list(ids[torch.randperm(len(ids), generator=generator)]
                           .split(batch_size))
        yield batches.pop(0)


def _check_ids(ids: Tensor, what: str) -> None:
    if not len(ids):
        raise DataError(f"{what} names no utterance; expected at least one to train on")


def _step(model, params, opt, data, b, g_noise, noise, use_adapters, what):
    x, fl, tok, tl, lang = batch(data, b)
    if noise:
        x = noisy_frames(x, fl, g_noise, **noise)
    loss = ctc_loss(model(x, lang, use_adapters, fl), fl, tok, tl)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"CTC loss is {float(loss)} while training {what}")
    opt.zero_grad()
    loss.backward()
    opt.step()


def train_recogniser(data: SeqData, ids: Tensor, *, seed: int = 0, steps: int = 600,
                     hidden: int = 64, layers: int = 1, bottleneck: int = 8,
                     use_adapters: bool = True, bidirectional: bool = False,
                     lr: float = 3e-3, batch_size: int = 32,
                     noise: dict | None = None) -> Recogniser:
    """A recogniser with all parameters trained on utterances ``ids`` (module docstring);
    ``noise``: keyword arguments of :func:`noisy_frames`, ``None`` for clean frames."""
    positive_int("steps", steps)
    positive_int("batch_size", batch_size)
    _check_ids(ids, "ids")
    torch.manual_seed(seed)
    model = Recogniser(data.dim, data.vocab, data.languages, hidden, layers, bottleneck,
                       bidirectional)
    params = [p for n, p in model.named_parameters()
              if use_adapters or not n.startswith("adapters.")]
    opt = torch.optim.Adam(params, lr=lr)
    g = torch.Generator().manual_seed(seed + 1)
    g_noise = torch.Generator().manual_seed(seed + 2)
    stream = _stream(ids, batch_size, g)
    model.train()
    for _ in range(steps):
        _step(model, params, opt, data, next(stream), g_noise, noise, use_adapters,
              "a recogniser")
    model.eval()
    return model


def pseudo_transcripts(teacher: Recogniser, data: SeqData, ids: Tensor,
                       min_confidence: float | None = None):
    """``(kept ids, their transcripts, their confidences)``: the teacher's greedy decodes of
    utterances ``ids`` (module docstring)."""
    hyps, conf = predict(teacher, data, ids)
    keep = [i for i, h in enumerate(hyps)
            if h and (min_confidence is None or conf[i] >= min_confidence)]
    return ids[torch.tensor(keep, dtype=torch.long)], [hyps[i] for i in keep], \
        [conf[i] for i in keep]


@dataclass
class AdapterRun:
    """A training run of :func:`train_adapters`: the model after the last step, the
    languages trained, the checkpoint steps, each checkpoint's validation error per
    language and trained weights, and the counts of trainable and all parameters."""

    model: Recogniser
    trainable: str
    languages: tuple[int, ...]
    steps: list[int] = field(default_factory=list)
    val: list[dict[int, float]] = field(default_factory=list)
    checkpoints: list[dict[str, Tensor]] = field(default_factory=list)
    trainable_params: int = 0
    total_params: int = 0

    def mean_val(self) -> list[float]:
        return [sum(v[lang] for lang in self.languages) / len(self.languages)
                for v in self.val]


def _trained_names(model: Recogniser, trainable: str, languages, train_head: bool):
    if trainable == "full":
        return [n for n, _ in model.named_parameters()]
    names = [n for n, _ in model.named_parameters()
             if any(n.startswith(f"adapters.{lang}.") for lang in languages)]
    return names + ([n for n, _ in model.named_parameters() if n.startswith("head.")]
                    if train_head else [])


def train_adapters(backbone: Recogniser, data: SeqData, ids: Tensor,
                   languages: tuple[int, ...], *, trainable: str = "adapter",
                   train_head: bool = False, seed: int = 0, steps: int = 300,
                   eval_every: int = 25, lr: float = 3e-3, batch_size: int = 32,
                   noise: dict | None = None) -> AdapterRun:
    """Train a copy of ``backbone`` on utterances ``ids`` (module docstring); the backbone
    itself is not changed."""
    if trainable not in TRAINABLE:
        raise MentorError(f"trainable must be one of {', '.join(TRAINABLE)}, got "
                          f"{trainable!r}")
    for name, v in (("steps", steps), ("eval_every", eval_every),
                    ("batch_size", batch_size)):
        positive_int(name, v)
    _check_ids(ids, "ids")
    languages = tuple(int(lang) for lang in languages)
    if not languages:
        raise MentorError("languages is empty; expected the ids of the languages to train")
    for lang in languages:
        data.ids("val", lang)
    spoken = set(data.language[ids].tolist())
    if not spoken <= set(languages):
        raise DataError(f"ids hold utterances of language {min(spoken - set(languages))}; "
                        f"expected only languages {languages}")
    model = copy.deepcopy(backbone)
    names = _trained_names(model, trainable, languages, train_head)
    params = []
    for n, p in model.named_parameters():
        p.requires_grad_(n in names)
        if n in names:
            params.append(p)
    run = AdapterRun(model, trainable, languages, trainable_params=count_parameters(params),
                     total_params=count_parameters(model.parameters()))
    opt = torch.optim.Adam(params, lr=lr)
    g = torch.Generator().manual_seed(seed + 11)
    g_noise = torch.Generator().manual_seed(seed + 12)
    stream = _stream(ids, batch_size, g)
    for step in range(1, steps + 1):
        model.train()
        _step(model, params, opt, data, next(stream), g_noise, noise, True,
              f"{trainable} arm at step {step}")
        if step % eval_every == 0 or step == steps:
            run.steps.append(step)
            run.val.append({lang: error_rate(model, data, "val", lang) for lang in languages})
            run.checkpoints.append({n: p.detach().clone() for n, p in
                                    model.named_parameters() if n in names})
    model.eval()
    return run


def _loaded(run: AdapterRun, state: dict[str, Tensor]) -> Recogniser:
    model = copy.deepcopy(run.model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in state:
                p.copy_(state[n])
    model.eval()
    return model


def best_single(run: AdapterRun) -> tuple[Recogniser, int]:
    """The checkpoint with the lowest mean validation error over the run's languages (the
    first on ties) and its step."""
    mean = run.mean_val()
    i = min(range(len(mean)), key=lambda j: (mean[j], j))
    return _loaded(run, run.checkpoints[i]), run.steps[i]


def merged(run: AdapterRun, k: int = 3, rule: str = "best") -> tuple[Recogniser, dict]:
    """Each language's adapter the mean of its ``k`` selected checkpoints (by its own
    validation error, or the last ``k``); the other trained weights (head, or the whole
    model for ``full``) the mean of the ``k`` selected by the mean validation error.
    Returns the model and the checkpoint steps merged per language."""
    chosen: dict = {}
    state: dict[str, Tensor] = {}
    mean_sel = select_checkpoints(run.mean_val(), k, rule)
    shared = [n for n in run.checkpoints[0]
              if not any(n.startswith(f"adapters.{lang}.") for lang in run.languages)
              or run.trainable == "full"]
    state.update(merge_checkpoints([{n: run.checkpoints[i][n] for n in shared}
                                    for i in mean_sel]))
    if run.trainable == "adapter":
        for lang in run.languages:
            sel = select_checkpoints([v[lang] for v in run.val], k, rule)
            keys = [n for n in run.checkpoints[0] if n.startswith(f"adapters.{lang}.")]
            state.update(merge_checkpoints([{n: run.checkpoints[i][n] for n in keys}
                                            for i in sel]))
            chosen[lang] = [run.steps[i] for i in sel]
    else:
        chosen = {lang: [run.steps[i] for i in mean_sel] for lang in run.languages}
    return _loaded(run, state), chosen
