"""Every registered refiner, teacher updater, selector, mixer and task adapter through its
protocol in :mod:`mentor.contracts` (the way ``test_losses.py`` runs every loss): the engine
reads parts only through the declared hooks, so a part that breaks its protocol fails here,
not half-way through a user's run.

- refiners: ``Targets -> Targets`` of the right shapes and types, the input left untouched,
  deterministic, and a checkpointed state that resumes to the same output;
- updaters: a frozen updater leaves the teacher alone, any other moves it; declared hooks
  have the declared types; checkpointed state round-trips;
- selectors: one score per pool row, ``pick`` returns ``budget`` distinct rows, after a
  ``fit`` on labeled rows for those that declare one (read through the hooks);
- mixers: mixed rows of the input's shape, finite, from the same rows;
- task adapters: outputs counted, predictions and per-row correctness of the right shape, and
  the batch hooks (forward, take, hide, known, pseudo_labels, same, example) and the
  metric gathered over shards (metric_state, metric_value).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import mentor  # noqa: F401  (registers the built-ins)
from mentor.contracts import (Batch, RefinerHooks, SelectorHooks, TaskAdapter, Targets,
                              TeacherHooks, UpdaterHooks, takes_labels)
from mentor.errors import MentorError
from mentor.registry import MIXERS, REFINERS, SELECTORS, TASKS, UPDATERS

B, C, D, M = 24, 4, 6, 3  # rows, classes, features, committee members

# parameters a part cannot do without (everything else: its defaults)
REFINER_ARGS = {"prototype_soft_labels": {"feature": "feat:f"}, "cluster_labels": {"k": 3}}


def _targets(seed: int) -> Targets:
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(B, C, generator=g)
    labels = logits.argmax(-1)
    extra = {"members": 3 * torch.randn(B, M, C, generator=g),
             "feat:f": torch.randn(B, 5, generator=g), "logits": logits}
    return Targets(logits, labels, extra=extra)


def _batch(seed: int, epoch: int, step: int) -> Batch:
    g = torch.Generator().manual_seed(1000 + seed)
    labeled = torch.arange(B) % 3 == 0
    y = torch.randint(C, (B,), generator=g)
    weak = torch.where(torch.rand(B, generator=g) < 0.5, torch.randint(C, (B,), generator=g),
                       torch.full((B,), -1))
    return Batch(torch.randn(B, D, generator=g), torch.where(labeled, y, -1),
                 torch.arange(B) + seed * B, labeled, epoch, step, weak)


def _bound(name: str) -> RefinerHooks:
    r = RefinerHooks(REFINERS.get(name)(**REFINER_ARGS.get(name, {})))
    g = torch.Generator().manual_seed(7)
    pool_labeled = torch.arange(4 * B) % 3 == 0
    r.reset()
    r.bind(pool_labeled, torch.randint(C, (4 * B,), generator=g), C)
    r.bind_inputs(torch.randn(4 * B, D, generator=g))
    return r


def _run(r: RefinerHooks, steps: range) -> list[Targets]:
    return [r(_targets(s), _batch(s % 4, s // 4, s)) for s in steps]


def _same(a: Targets, b: Targets) -> bool:
    def eq(u, v):
        return (u is None and v is None) or (u is not None and v is not None
                                             and torch.equal(u, v))
    return eq(a.logits, b.logits) and eq(a.labels, b.labels) and eq(a.mask, b.mask) \
        and eq(a.weight, b.weight)


@pytest.mark.parametrize("name", REFINERS.names())
def test_every_refiner_keeps_its_protocol(name):
    r = _bound(name)
    for s, out in zip(range(12), _run(r, range(12))):
        assert isinstance(out, Targets), type(out)
        assert out.logits.shape == (B, C) and out.labels.shape == (B,), name
        assert out.labels.dtype == torch.long
        if out.mask is not None:
            assert out.mask.shape == (B,) and out.mask.dtype == torch.bool
        if out.weight is not None:
            assert out.weight.shape == (B,)
            assert torch.isfinite(out.weight).all() and (out.weight >= 0).all()
    fresh = _targets(99)
    before = copy.deepcopy(fresh)
    r(fresh, _batch(1, 3, 12))
    assert _same(fresh, before), f"{name} changed its input targets in place"
    thresholds = r.thresholds
    assert thresholds is None or len(thresholds) in (1, C)


@pytest.mark.parametrize("name", REFINERS.names())
def test_every_refiner_is_deterministic_and_resumes_from_its_state(name):
    a, b = _bound(name), _bound(name)
    assert all(_same(x, y) for x, y in zip(_run(a, range(8)), _run(b, range(8))))
    state = a.state_dict()
    resumed = _bound(name)
    if state is not None:
        assert all(isinstance(v, torch.Tensor) for v in state.values()), name
        resumed.load_state_dict(copy.deepcopy(state))
    else:
        _run(resumed, range(8))  # stateless or state rebuilt from the same calls
    assert all(_same(x, y) for x, y in zip(_run(a, range(8, 14)), _run(resumed, range(8, 14)))), \
        f"{name}: the resumed refiner gives other targets than the uninterrupted one"


def test_the_refiner_battery_fails_on_a_broken_refiner():
    """A refiner that returns a float label vector, or mutates its input, is caught."""
    class Broken:
        def __call__(self, targets, batch):
            targets.labels.add_(0)
            return targets.with_(labels=targets.labels.float())
    REFINERS.register("broken_for_test", description="test")(Broken)
    try:
        with pytest.raises(AssertionError):
            test_every_refiner_keeps_its_protocol("broken_for_test")
    finally:
        REFINERS.unregister("broken_for_test")


def _pair(seed: int) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    return nn.Linear(D, C), nn.Linear(D, C)


def _updater(name: str):
    """(bound updater, teacher module, student) as the engine sets them up."""
    u = UpdaterHooks(UPDATERS.get(name)())
    u.bind_steps(5)
    teacher, student = _pair(0)
    if u.build_teacher is not None:
        given = mentor.teachers.ModuleTeacher(copy.deepcopy(teacher), C) \
            if u.needs_external else None
        built = TeacherHooks(u.build_teacher(given, copy.deepcopy(student), C))
        assert built.module is not None
        teacher = built.module
    elif u.from_student:
        teacher = student if u.live else copy.deepcopy(student)
    return u, teacher, student


@pytest.mark.parametrize("name", UPDATERS.names())
def test_every_updater_keeps_its_protocol(name):
    u, teacher, student = _updater(name)
    assert isinstance(u.frozen, bool) and isinstance(u.from_student, bool)
    assert isinstance(u.live, bool) and isinstance(u.needs_external, bool)
    assert isinstance(u.ahead, int) and u.ahead >= 0
    assert u.build_teacher is None or callable(u.build_teacher)
    assert u.observe_gradients is None or callable(u.observe_gradients)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)  # the student moved
    if u.observe_gradients is not None:
        for p in student.parameters():
            p.grad = torch.ones_like(p)
        u.observe_gradients(student)
    for step in range(1, 11):
        u.update(teacher, student, step)
    moved = any(not torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    if u.frozen:
        assert not moved, f"{name} is frozen but moved the teacher"
    state = u.state_dict()
    if state is not None:
        assert all(isinstance(v, torch.Tensor) for v in state.values()), name
        again, _, _ = _updater(name)
        again.load_state_dict(copy.deepcopy(state))
        restored = again.state_dict()
        assert restored.keys() == state.keys()
        assert all(torch.equal(restored[k], state[k]) for k in state), name


@pytest.mark.parametrize("name", SELECTORS.names())
def test_every_selector_keeps_its_protocol(name):
    from mentor.contracts import Pool, Selector, selector_needs_teacher
    from mentor.teachers import ModuleTeacher
    torch.manual_seed(0)
    selector = SELECTORS.get(name)()
    assert isinstance(selector, Selector)
    hooks = SelectorHooks(selector)
    assert hooks.needs_teacher == selector_needs_teacher(selector)
    pool = Pool(torch.randn(30, D), torch.arange(30), labeled_x=torch.randn(5, D))
    teacher = ModuleTeacher(nn.Linear(D, C), C)
    student = nn.Sequential(nn.Linear(D, 8), nn.ReLU(), nn.Linear(8, C))
    given = teacher if hooks.needs_teacher else None
    if hooks.fits:  # e.g. skills: measures the student on rows with known labels first
        # training positions 30..49 (not the pool's): a teacher may answer by position
        hooks.fit(torch.randn(20, D), torch.randint(C, (20,)), given, student,
                  index=torch.arange(30, 50))
    scores = hooks.score(pool, given, student)
    assert scores.shape[0] == 30 and torch.isfinite(scores.float()).all()
    picked = hooks.pick(scores, 7)
    assert len(picked) == 7 and len(set(picked.tolist())) == 7
    assert 0 <= int(picked.min()) and int(picked.max()) < 30


@pytest.mark.parametrize("name", MIXERS.names())
def test_every_mixer_is_registered_with_its_parts(name):
    entry = MIXERS.entry(name)
    assert entry.description and callable(entry.obj)
    mixer = entry.obj()
    assert mixer is not None


class _TinyLM(nn.Module):
    """ids (B, L) -> next-token logits (B, L, V)."""

    def __init__(self, vocab: int):
        super().__init__()
        self.emb, self.head = nn.Embedding(vocab, 8), nn.Linear(8, vocab)

    def forward(self, ids):
        return self.head(self.emb(ids))


def _task_example(name):
    """(model, inputs, outputs per row, rows) of each registered task."""
    torch.manual_seed(0)
    if name in ("classification", "graph_nodes"):  # a node is a row of node features
        return nn.Linear(D, C), torch.randn(5, D), C, 5
    if name == "tokens":
        return _TinyLM(7), torch.randint(0, 7, (5, 6)), 7, 5
    if name == "tagging":
        from mentor.models.tagger import BiGRUTagger
        return BiGRUTagger(9, 5, 4, 4), torch.randint(1, 9, (5, 6)), 5, 5
    raise AssertionError(f"task {name!r} has no example in this battery; add one")


@pytest.mark.parametrize("name", TASKS.names())
def test_every_task_adapter_keeps_its_protocol(name):
    task = TASKS.get(name)
    assert isinstance(task, TaskAdapter)
    model, x, outputs, rows = _task_example(name)
    assert task.num_outputs(model, x) == outputs
    task.check(model, None, x, outputs)
    with pytest.raises(MentorError):
        task.check(model, None, x, outputs + 1)
    logits = model(x)
    pred = task.predict(logits)
    assert pred.shape[0] == rows
    assert task.correct(logits, pred).all()
    assert task.correct(logits, logits).all()  # agreement with another model's outputs
    # the validation metric: its name, direction and per-row values
    assert isinstance(task.metric, str) and isinstance(task.higher_is_better, bool)
    assert task.score(logits, pred).shape == (rows,)
    assert (task.score(logits, pred) == 1).all()  # each row scores fully against itself
    wrong = (pred + 1) % outputs
    assert task.score(logits, wrong).double().sum() < rows
    _check_batch_hooks(task, model, x, outputs, rows)


def _check_batch_hooks(task, model, x, outputs, rows):
    """The hooks the engine builds a batch with: the model called on the inputs, labels
    taken by sample id and hidden, pseudo-labels, agreement, the probing example."""
    from mentor.contracts import Batch
    logits = model(x)
    assert torch.equal(task.forward(model, x), logits)
    y = task.predict(logits)
    ids = torch.tensor([3, 0])
    assert torch.equal(task.take(y, ids), y[ids])
    assert torch.equal(task.take(y, slice(1, 3)), y[1:3])
    seen = torch.tensor([True, False, True, False, True])[:rows]
    hidden = task.hide(y, seen)
    assert task.known(hidden).tolist() == seen.tolist()
    assert torch.equal(task.take(hidden, seen.nonzero()[:, 0]), y[seen])
    # pseudo-labels: seen labels kept, the others the prediction from the (teacher) outputs
    other = torch.randn_like(logits)
    batch = Batch(x, task.hide((y + 1) % outputs, seen), torch.arange(rows), seen)
    pl = task.pseudo_labels(other, batch)
    assert torch.equal(pl[seen], ((y + 1) % outputs)[seen])
    assert torch.equal(pl[~seen], task.predict(other)[~seen])
    assert task.same(y, y).all() and not task.same((y + 1) % outputs, y).any()
    assert task.same(y, hidden).all()  # unseen labels do not count against agreement
    # the metric gathered over shards: summed states give the metric of the whole split
    whole = task.metric_state(logits, y)
    assert whole.dtype == torch.float64 and whole.ndim == 1
    parts = task.metric_state(logits[:2], y[:2]) + task.metric_state(logits[2:], other[2:]
                                                                   .argmax(-1))
    assert task.metric_state(None, None).shape == whole.shape  # an empty shard
    assert not task.metric_state(None, None).any()
    assert task.metric_value(whole) == 1.0  # every row scores against its own prediction
    mixed = torch.cat([y[:2], task.predict(other)[2:]])
    assert torch.allclose(parts, task.metric_state(logits, mixed))  # states add over shards
    assert task.metric_value(parts) == pytest.approx(
        task.metric_value(task.metric_state(logits, mixed)))
    # the objectives' elements: rows as they are, or one element per token (tagging)
    elem_out, _, elem_batch = task.elements(logits, None, Batch(x, y, torch.arange(rows), seen))
    assert elem_out.shape[:-1] == elem_batch.y.shape and elem_out.shape[-1] == outputs
    assert elem_batch.labeled.shape == elem_batch.y.shape[:1]
    zeros, labels = task.example(outputs)
    assert len(zeros) == len(labels) == 2 and zeros.shape[-1] == outputs
    assert isinstance(task.label_name(labels[0]), str)


def test_the_tokens_metric_ignores_unlabeled_positions_and_needs_every_labeled_one():
    """Exact match per row: prompt positions (label -1) are not scored; one wrong labeled
    position fails the row."""
    task = TASKS.get("tokens")
    logits = torch.zeros(3, 4, 5)
    logits[..., 2] = 1.0  # arg-max 2 everywhere
    y = torch.tensor([[-1, -1, 2, 2], [-1, 3, 2, 2], [-1, -1, -1, 2]])
    assert task.score(logits, y).tolist() == [True, False, True]


def test_optional_hooks_have_declared_defaults():
    """A part with only its required members gets every optional hook's default."""
    class Plain:
        frozen = True

        def update(self, teacher, student, step):
            return None

        def logits(self, x):
            return x

    u, t, s = UpdaterHooks(Plain()), TeacherHooks(Plain()), SelectorHooks(Plain())
    assert (u.from_student, u.live, u.needs_external, u.ahead) == (False, False, False, 0)
    assert u.build_teacher is None and u.observe_gradients is None and u.state_dict() is None
    assert t.cacheable and t.outputs is None and t.views is None and t.store_samples is None
    assert t.module is None and t.description == "Plain"
    r = RefinerHooks(lambda targets, batch: targets)
    r.reset(), r.bind(None, None, C), r.bind_inputs(None)
    assert r.state_dict() is None and r.thresholds is None
    assert not takes_labels(nn.Linear(2, 2))
    assert not s.needs_teacher and not s.fits and s.name == "Plain"
    s.fit(None, None, None, None, index=None), s.reseed(3)  # declared no-ops
    assert SelectorHooks(s).part is s.part  # wrapping twice does not hide the hooks
