"""Where a ``task: graph_nodes`` recipe's nodes come from (:func:`graph_splits`): the
generated testbed ``contextual-hypergraph`` (TB-GRAPH) or a ``.npz`` file of node features,
labels and edges.

The splits are transductive, as LightHGNN trains (METHODS.md §38): the training split is
every node in id order (so a training row's position is its node id, which a graph teacher
serves its outputs by), its labels only on the training nodes -- every other node is an
unlabeled row of the transfer set, its label ``-1``, so no validation or test label reaches a
teacher or student; validation and test are the masked nodes. ``Splits.graph`` is the
:class:`~mentor.graphs.testbed.Hypergraph` a graph teacher propagates over; the student reads
node features only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..data.splits import Split, Splits, draw_labeled, draw_parts
from ..errors import DataError
from .testbed import Hypergraph, contextual_hypergraph

if TYPE_CHECKING:
    from ..recipe import DataSpec

TESTBED = "contextual-hypergraph"
# DataSpec fields a graph source reads; any other field set in a recipe is refused
READS = {"source", "val_fraction", "test_fraction", "labeled_fraction", "labeled_sampling",
         "split_seed", "num_classes", "standardize"}
EDGE_ARRAYS = ("edges", "incidence")
MASKS = ("train_mask", "val_mask", "test_mask")


def _refuse_other_fields(spec: "DataSpec") -> None:
    for name, field in type(spec).model_fields.items():
        if name not in READS and getattr(spec, name) != field.default:
            raise DataError(f"data.{name} is set for task: graph_nodes; expected only "
                            f"{', '.join('data.' + f for f in sorted(READS))} (a graph source "
                            "is node features, labels and edges)")


def graph_splits(spec: "DataSpec") -> Splits:
    """The splits of a ``task: graph_nodes`` recipe's ``data`` section.

    ``contextual-hypergraph``: TB-GRAPH (:func:`mentor.graphs.contextual_hypergraph` with its
    defaults, drawn with ``split_seed``: 2,000 nodes, 5 classes, 1,500 hyperedges; 20
    training, 100 validation nodes per class, the rest test).

    A ``.npz`` file: ``features`` ``(N, F)``, ``labels`` ``(N,)`` (a class id, ``-1`` where
    unknown) and exactly one of ``edges`` ``(M, 2)`` (a plain graph: node-id pairs) or
    ``incidence`` ``(K, 2)`` (a hypergraph: ``(node id, hyperedge id)`` pairs, hyperedge ids
    ``0 .. E-1``); optionally ``train_mask``, ``val_mask``, ``test_mask`` (``N`` booleans each,
    disjoint, only over labeled nodes). Without masks the labeled nodes are split by
    ``val_fraction`` / ``test_fraction`` per class (``split_seed``), the rest are training
    nodes. ``num_classes`` is the class count (default: the largest label + 1).

    Either way ``labeled_fraction`` of the training nodes keep their labels for the student
    (``labeled_sampling``); the teacher trains on every training node's label. With
    ``standardize`` the features are standardized by the mean and std over all nodes (all
    are training rows)."""
    _refuse_other_fields(spec)
    rng = np.random.default_rng(spec.split_seed)
    if spec.source == TESTBED:
        data = contextual_hypergraph(seed=spec.split_seed)
        if spec.num_classes is not None and spec.num_classes != data.num_classes:
            raise DataError(f"data.num_classes is {spec.num_classes} but {TESTBED} has "
                            f"{data.num_classes} classes; expected it unset or "
                            f"{data.num_classes}")
        x, y, graph = data.x.numpy(), data.y.numpy(), data.hypergraph
        masks = tuple(m.numpy() for m in (data.train_mask, data.val_mask, data.test_mask))
        num_classes, name = data.num_classes, TESTBED
    else:
        path = Path(spec.source)
        if path.suffix != ".npz":
            raise DataError(f"data.source {spec.source!r} is not a graph source; expected "
                            f"{TESTBED!r} or a .npz file with arrays 'features', 'labels' and "
                            "'edges' or 'incidence'")
        x, y, graph, given = _load(path)
        num_classes = _num_classes(spec, y)
        masks = given if given is not None else _draw_masks(y, spec, rng)
        name = path.name
    return node_splits(name, x, y, graph, masks, num_classes, spec, rng)


def node_splits(name: str, x: np.ndarray, y: np.ndarray, graph: Hypergraph,
                masks: tuple[np.ndarray, np.ndarray, np.ndarray], num_classes: int,
                spec: "DataSpec", rng: np.random.Generator) -> Splits:
    """Transductive :class:`Splits` of nodes (see the module docstring)."""
    train_m, val_m, test_m = (np.asarray(m, dtype=bool) for m in masks)
    ids = np.arange(len(x))
    x = np.asarray(x, dtype=np.float32)
    mean = std = None
    if spec.standardize:
        mean = x.mean(0)
        std = np.where(x.std(0) > 0, x.std(0), 1.0).astype(np.float32)
        x = (x - mean) / std
    tr = ids[train_m]
    labeled = np.zeros(len(x), dtype=bool)
    labeled[tr[draw_labeled(y[tr], spec.labeled_fraction, spec.labeled_sampling, rng)]] = True
    y_train = np.where(train_m, y, -1)  # no other node's label reaches the training split
    xt, yt = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))

    def part(mask: np.ndarray) -> Split:
        return Split(xt[mask], yt[mask], torch.ones(int(mask.sum()), dtype=torch.bool))
    train = Split(xt, torch.from_numpy(y_train.astype(np.int64)), torch.from_numpy(labeled))
    return Splits(name, train, part(val_m), part(test_m), int(num_classes), (x.shape[1],),
                  int(spec.split_seed), mean=mean, std=std,
                  rows={"train": ids, "val": ids[val_m], "test": ids[test_m]},
                  unknown_rows="unlabeled nodes", teacher_inputs="standardized", graph=graph)


def _load(path: Path):
    if not path.is_file():
        raise DataError(f"data.source {str(path)!r} does not exist; expected a .npz file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise DataError(f"data.source {str(path)!r} cannot be read as .npz ({e}); expected "
                        "arrays 'features', 'labels' and 'edges' or 'incidence'") from None
    src = f"data.source {str(path)!r}"
    for key in ("features", "labels"):
        if key not in arrays:
            raise DataError(f"{src} has no array {key!r}; expected arrays 'features', "
                            "'labels' and 'edges' or 'incidence'")
    x, y = arrays["features"], arrays["labels"]
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{src}: features has shape {x.shape} and dtype {x.dtype}; expected "
                        "numbers of shape (nodes, features)")
    if not np.isfinite(x).all():
        raise DataError(f"{src}: features holds NaN or infinite values; expected finite "
                        "numbers")
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{src}: labels has shape {y.shape} and dtype {y.dtype}; expected "
                        f"{len(x)} integer class ids, one per node (-1: unknown)")
    if (y < -1).any():
        raise DataError(f"{src}: labels holds {int(y[y < -1][0])}; expected class ids >= 0 "
                        "or -1 for an unknown label")
    kinds = [k for k in EDGE_ARRAYS if k in arrays]
    if len(kinds) != 1:
        held = "both" if kinds else "neither"
        raise DataError(f"{src} has {held} of 'edges' and 'incidence'; expected exactly one "
                        "(edges: node-id pairs, incidence: (node, hyperedge) pairs)")
    graph = _graph(len(x), kinds[0], arrays[kinds[0]])
    present = [m for m in MASKS if m in arrays]
    if present and len(present) != 3:
        raise DataError(f"{src} has {', '.join(map(repr, present))} but not all of "
                        f"{', '.join(map(repr, MASKS))}; expected all three masks or none")
    masks = None
    if present:
        masks = tuple(_mask(src, m, arrays[m], y) for m in MASKS)
        overlap = sum(m.astype(int) for m in masks) > 1
        if overlap.any():
            raise DataError(f"{src}: node {int(np.flatnonzero(overlap)[0])} is in two of "
                            "train_mask, val_mask and test_mask; expected disjoint masks")
        if not masks[0].any():
            raise DataError(f"{src}: train_mask marks no node; expected at least one "
                            "training node")
    return x, y, graph, masks


def _graph(n: int, kind: str, e: np.ndarray) -> Hypergraph:
    if e.ndim != 2 or e.shape[1] != 2 or not np.issubdtype(e.dtype, np.integer):
        raise DataError(f"{kind} has shape {e.shape} and dtype {e.dtype}; expected integer "
                        "pairs of shape (M, 2)")
    if kind == "edges":  # as (2, M): from_graph reads a (2, 2) array as two columns
        return Hypergraph.from_graph(n, np.ascontiguousarray(e.T))
    bad = (e[:, 0] < 0) | (e[:, 0] >= n)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DataError(f"incidence[{k}] names node {int(e[k, 0])}, but there are {n} nodes; "
                        f"expected ids in 0..{n - 1}")
    if len(e) and int(e[:, 1].min()) < 0:
        raise DataError(f"incidence holds hyperedge id {int(e[:, 1].min())}; expected ids "
                        ">= 0")
    num_edges = int(e[:, 1].max()) + 1 if len(e) else 0
    order = np.argsort(e[:, 1], kind="stable")
    members = np.split(e[order, 0], np.cumsum(np.bincount(e[:, 1], minlength=num_edges))[:-1])
    for k, m in enumerate(members):
        if not len(m):
            raise DataError(f"incidence has no node for hyperedge {k}; expected hyperedge ids "
                            f"0..{num_edges - 1} each with at least one node")
    return Hypergraph.from_lists(n, members, field_name="incidence hyperedge")


def _mask(src: str, name: str, m: np.ndarray, y: np.ndarray) -> np.ndarray:
    if m.shape != y.shape or m.dtype != bool:
        raise DataError(f"{src}: {name} has shape {m.shape} and dtype {m.dtype}; expected "
                        f"{len(y)} booleans, one per node")
    unknown = m & (y < 0)
    if unknown.any():
        raise DataError(f"{src}: {name} marks node {int(np.flatnonzero(unknown)[0])}, whose "
                        "label is unknown (-1); expected masks over labeled nodes only")
    return m


def _num_classes(spec: "DataSpec", y: np.ndarray) -> int:
    known = y[y >= 0]
    if not len(known):
        raise DataError(f"data.source {spec.source!r}: no node has a label; expected class ids "
                        ">= 0 on some nodes")
    top = int(known.max()) + 1
    if spec.num_classes is None:
        if top < 2:
            raise DataError(f"data.source {spec.source!r}: every labeled node has class 0; "
                            "expected at least two classes")
        return top
    if top > spec.num_classes:
        raise DataError(f"data.source {spec.source!r}: labels holds class {top - 1}, beyond "
                        f"data.num_classes {spec.num_classes}; expected classes 0.."
                        f"{spec.num_classes - 1}")
    return spec.num_classes


def _draw_masks(y: np.ndarray, spec: "DataSpec", rng: np.random.Generator):
    tr, va, te = draw_parts(y, np.flatnonzero(y >= 0), rng, spec.val_fraction,
                            spec.test_fraction)
    out = []
    for idx in (tr, va, te):
        m = np.zeros(len(y), dtype=bool)
        m[idx] = True
        out.append(m)
    return tuple(out)
