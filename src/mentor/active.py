"""The active distillation loop: rounds of select -> label -> train -> evaluate.

Each round, a selector picks rows of the unlabeled pool for the oracle (which reveals their
hidden labels) and, separately, rows for the teacher (whose outputs on them are bought, at
``teacher_cost`` per query); a fresh student (``make_student``) is then trained on the
labeled rows (cross-entropy) and the teacher-labeled rows (KD on the stored outputs) and
scored on the test split. Budgets are checked before any work and can never be exceeded:
the teacher is only reachable through :class:`CountingTeacher`. With ``state_dir`` every
finished round is saved (atomically), and a later call continues after the last one.

Scoring is not labeling: selectors that read the teacher (teacher confidence, RAD, LLKD,
skills) score the pool with it without counting queries -- use them where scoring is cheap.

Selectors are reached only through :class:`~mentor.contracts.SelectorHooks`. One with a
``fit`` hook (``skills``: STAT's missing-skill profile, METHODS.md §34) is fitted before each
selection on the training rows whose labels are known at that point -- the initial labels
plus the oracle's picks so far (those of the same round included), never the teacher-labeled
rows, the validation split or the test split. STAT builds its profile on held-out
validation questions; here the validation split already chooses the student's weights, so it
stays out of the selection. The rows fitted on are mostly rows the student was trained on:
their error rates are training errors, which show the categories the student cannot fit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ._util.atomic import atomic_write_text
from .contracts import Batch, SelectorHooks, Targets, teacher_logits
from .data.splits import Split, Splits
from .engine import fit
from .engine.evaluate import evaluate
from .losses.objective import Objective
from .errors import MentorError
from .recipe import TrainSpec
from .select import Pool, select


class BudgetError(MentorError):
    """A query the budget does not allow."""


class CountingTeacher:
    """The only way the loop reaches the teacher: counts rows asked and refuses to go past
    ``limit`` queries."""

    def __init__(self, teacher, limit: int, cost: float = 0.0):
        self.teacher, self.limit, self.cost = teacher, int(limit), float(cost)
        self.queries = 0
        self.num_classes = teacher.num_classes

    def label(self, x: Tensor, index: Tensor) -> Tensor:
        if self.queries + len(x) > self.limit:
            raise BudgetError(f"teacher budget: {self.queries} queries spent, {len(x)} more "
                              f"asked, limit {self.limit}")
        self.queries += len(x)
        with torch.no_grad():
            return teacher_logits(self.teacher, x, index)


class _StoredOutputs:
    """The bought teacher outputs, looked up by training-row position (never re-queried)."""

    cacheable = True

    def __init__(self, logits: Tensor, num_classes: int):
        self.table, self.num_classes = logits, num_classes

    def logits_at(self, x: Tensor, index: Tensor) -> Tensor:
        return self.table[index.cpu()].to(x.device)

    def logits(self, x: Tensor) -> Tensor:  # pragma: no cover - training rows only
        raise MentorError("stored teacher outputs exist only for training rows")


class _OnlyQueried:
    """Refiner: a teacher target only on the rows whose outputs were bought."""

    def __init__(self, queried: Tensor):
        self.queried = queried

    def __call__(self, targets: Targets, batch: Batch) -> Targets:
        mask = self.queried[batch.index.cpu()].to(targets.logits.device)
        return targets.with_(mask=mask if targets.mask is None else targets.mask & mask)


@dataclass
class RoundResult:
    round: int
    labels: int  # oracle labels known to the student (initial ones included)
    oracle_spent: int
    teacher_queries: int
    cost: float
    test_accuracy: float
    picked_oracle: list[int] = field(default_factory=list)
    picked_teacher: list[int] = field(default_factory=list)
    val_accuracy: float = float("nan")  # the student's selected weights on the validation split


@dataclass
class ActiveResult:
    rounds: list[RoundResult]

    def curve(self) -> list[tuple[int, int, float]]:
        """(labels, teacher queries, test accuracy) per round."""
        return [(r.labels, r.teacher_queries, r.test_accuracy) for r in self.rounds]


def active_loop(splits: Splits, *, make_student: Callable[[], nn.Module], selector,
                rounds: int, spec: TrainSpec, oracle_per_round: int = 0, teacher=None,
                teacher_per_round: int = 0, teacher_cost: float | None = None,
                max_cost: float | None = None, alpha: float = 0.5, temperature: float = 1.0,
                seed: int = 0, state_dir: str | Path | None = None,
                on_round: Callable[[RoundResult], Any] | None = None) -> ActiveResult:
    """Run (or continue) ``rounds`` rounds; round 0 trains on the initial labels only.
    ``teacher_cost``: cost of one teacher query; ``None`` takes the teacher's declared
    ``cost_per_query`` (0 for local models that declare none). A ``selector`` with a ``fit``
    hook is fitted before each selection on the rows labeled so far (module docstring)."""
    train = splits.train
    selector = SelectorHooks(selector)
    if teacher_cost is None:
        teacher_cost = float(getattr(teacher, "cost_per_query", 0.0) or 0.0)
    check_budgets(int((~train.labeled).sum()), rounds=rounds, oracle_per_round=oracle_per_round,
                  teacher_per_round=teacher_per_round, has_teacher=teacher is not None,
                  teacher_cost=teacher_cost, max_cost=max_cost)
    check_selector(selector, int(train.labeled.sum()))
    no_label = int((train.y[~train.labeled] < 0).sum())
    if oracle_per_round and no_label:
        raise MentorError(f"active loop: {no_label} rows of the unlabeled pool have no label "
                          "to reveal (unlabeled in the data file), so oracle_per_round "
                          f"{oracle_per_round} cannot be served; expected a labeled pool for "
                          "the oracle (hidden labels) or oracle_per_round 0 with a teacher")
    c = splits.num_classes
    labeled = train.labeled.clone()
    queried = torch.zeros(len(train), dtype=torch.bool)
    store = torch.zeros(len(train), c)
    results: list[RoundResult] = []
    state = Path(state_dir) if state_dir is not None else None
    if state is not None and (state / "active.json").exists():
        labeled, queried, store, results = _load(state, len(train), c)
    counter = CountingTeacher(teacher, rounds * teacher_per_round, teacher_cost) \
        if teacher is not None else None
    if counter is not None:
        counter.queries = int(queried.sum())
    oracle_spent = results[-1].oracle_spent if results else 0
    student = None
    start = len(results)
    if start == 0:
        student, acc0, val0 = _train(splits, labeled, queried, store, make_student, spec, seed,
                                     alpha, temperature)
        results.append(RoundResult(0, int(labeled.sum()), 0, 0, 0.0, acc0, val_accuracy=val0))
        _save(state, labeled, queried, store, results, on_round)
    elif start <= rounds:
        student, _, _ = _train(splits, labeled, queried, store, make_student, spec,
                               seed + start - 1, alpha, temperature)
    for r in range(start if start else 1, rounds + 1):
        picked_o, picked_t = [], []
        if oracle_per_round:  # rows nobody has labeled yet: a pick is never repeated
            pos = (~labeled & ~queried).nonzero().squeeze(-1)
            pool = Pool(train.x[pos], pos, train.x[labeled | queried])
            _fit(selector, train, labeled, teacher, student)
            picks = pos[select(selector, pool, oracle_per_round, teacher, student)]
            labeled[picks] = True
            oracle_spent += len(picks)
            picked_o = picks.tolist()
        if teacher_per_round:
            pos = (~labeled & ~queried).nonzero().squeeze(-1)
            pool = Pool(train.x[pos], pos, train.x[labeled | queried])
            _fit(selector, train, labeled, teacher, student)
            picks = pos[select(selector, pool, teacher_per_round, teacher, student)]
            store[picks] = counter.label(train.x[picks], picks).float().cpu()
            queried[picks] = True
            picked_t = picks.tolist()
        student, acc, val = _train(splits, labeled, queried, store, make_student, spec,
                                   seed + r, alpha, temperature)
        spent = counter.queries if counter is not None else 0
        results.append(RoundResult(r, int(labeled.sum()), oracle_spent, spent,
                                   spent * teacher_cost, acc, picked_o, picked_t, val))
        _save(state, labeled, queried, store, results, on_round)
    return ActiveResult(results)


def check_budgets(n_pool: int, *, rounds: int, oracle_per_round: int, teacher_per_round: int,
                  has_teacher: bool, teacher_cost: float = 0.0,
                  max_cost: float | None = None) -> None:
    """One sentence for a budget that cannot be met (checked before any work starts)."""
    if rounds < 1:
        raise MentorError(f"active rounds must be >= 1, got {rounds}")
    if oracle_per_round < 0 or teacher_per_round < 0:
        raise MentorError("active budgets per round must be >= 0, got oracle "
                          f"{oracle_per_round}, teacher {teacher_per_round}")
    if oracle_per_round == 0 and teacher_per_round == 0:
        raise MentorError("active loop: both budgets are 0; expected oracle_per_round or "
                          "teacher_per_round > 0")
    if rounds * (oracle_per_round + teacher_per_round) > n_pool:
        raise MentorError(f"active budget {rounds} rounds x ({oracle_per_round} oracle + "
                          f"{teacher_per_round} teacher) rows exceeds the unlabeled pool of "
                          f"{n_pool} rows")
    if teacher_per_round and not has_teacher:
        raise MentorError("teacher_per_round > 0 needs a teacher")
    total_cost = rounds * teacher_per_round * teacher_cost
    if max_cost is not None and total_cost > max_cost:
        raise MentorError(f"the teacher budget costs {total_cost:g} ({rounds} x "
                          f"{teacher_per_round} queries x {teacher_cost:g}) but max_cost is "
                          f"{max_cost:g}")


def check_selector(selector, n_labeled: int) -> None:
    """One sentence for a selector that cannot run on this data (checked before any work): a
    selector with a ``fit`` hook needs rows with known labels."""
    hooks = SelectorHooks(selector)
    if hooks.fits and n_labeled < 1:
        raise MentorError(f"the {hooks.name} selector measures the student on rows with known "
                          "labels, but the training split has none; expected some labeled "
                          "rows (data.labeled_fraction > 0)")


def _fit(selector: SelectorHooks, train: Split, labeled: Tensor, teacher, student) -> None:
    """Fit a selector that has a ``fit`` hook on the rows labeled so far (no-op otherwise)."""
    if selector.fits:
        rows = labeled.nonzero().squeeze(-1)
        selector.fit(train.x[rows], train.y[rows], teacher, student, index=rows)


def _train(splits: Splits, labeled: Tensor, queried: Tensor, store: Tensor, make_student,
           spec: TrainSpec, seed: int, alpha: float, temperature: float):
    train = splits.train
    torch.manual_seed(seed)
    student = make_student()
    split = Split(train.x, train.y, labeled.clone(), train.source_index)
    objectives = [Objective("ce", 1.0 - alpha if queried.any() else 1.0, rows="labeled")]
    teacher = refiners = None
    if queried.any():
        objectives.append(Objective("kd", alpha, {"temperature": temperature}, rows="all"))
        teacher = _StoredOutputs(store, splits.num_classes)
        refiners = [_OnlyQueried(queried.clone())]
    res = fit(student, split, splits.val, objectives=objectives, refiners=refiners or (),
              teacher=teacher, spec=spec.model_copy(update={"collapse_steps": 0}), seed=seed,
              num_outputs=splits.num_classes)
    test = evaluate(res.model, splits.test.x, splits.test.y)["accuracy"]
    return res.model, test, res.best_val_accuracy


def _save(state: Path | None, labeled, queried, store, results, on_round) -> None:
    if on_round is not None:
        on_round(results[-1])
    if state is None:
        return
    state.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file
    tmp = state / "arrays.safetensors.tmp"
    save_file({"labeled": labeled.to(torch.uint8), "queried": queried.to(torch.uint8),
               "store": store.contiguous()}, str(tmp))
    tmp.replace(state / "arrays.safetensors")
    atomic_write_text(state / "active.json",
                      json.dumps({"rounds": [asdict(r) for r in results]}, indent=1))


def _load(state: Path, n: int, c: int):
    from .engine.checkpoint import read_safetensors  # safetensors only: never unpickled
    arrays, _ = read_safetensors(state / "arrays.safetensors", field="active state")
    missing = [k for k in ("labeled", "queried", "store") if k not in arrays]
    if missing:
        raise MentorError(f"active state '{state / 'arrays.safetensors'}' has no tensor "
                          f"{missing[0]!r}; expected the arrays an active run saves")
    labeled, queried = arrays["labeled"].bool(), arrays["queried"].bool()
    if len(labeled) != n or arrays["store"].shape != (n, c):
        raise MentorError(f"active state in '{state}' is for another data set ({len(labeled)} "
                          f"rows); expected {n} rows and {c} classes")
    try:
        from ._util.safeio import MAX_JSON_BYTES, FileProblem, read_bounded
        rounds = [RoundResult(**r) for r in
                  json.loads(read_bounded(state / "active.json", MAX_JSON_BYTES))["rounds"]]
    except (OSError, ValueError, KeyError, TypeError, RecursionError, FileProblem) as e:
        raise MentorError(f"active state '{state / 'active.json'}' is unreadable ({e!r}); "
                          "expected the round list an active run saves") from None
    return labeled, queried, arrays["store"], rounds
