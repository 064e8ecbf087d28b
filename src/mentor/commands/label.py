"""What ``mentor label`` and ``mentor inspect`` do (the CLI only parses and prints)."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import MentorError
from ..labels.kinds import make_kind
from ..labels.store import LabelStore, store_lock, write_store
from ..labels.views import Views

SPLITS = ("train", "val", "test")


def load_inputs(source: str, split: str, split_seed: int = 0, val_fraction: float = 0.2,
                test_fraction: float = 0.2):
    """The inputs of one split of a data source, as a recipe's ``data`` section loads them
    (same split and standardization), and the splits themselves."""
    from ..recipe import DataSpec

    if split not in SPLITS:
        raise MentorError(f"--split {split!r} is not a split; expected one of "
                          f"{', '.join(SPLITS)}")
    splits = DataSpec(source=source, split_seed=split_seed, val_fraction=val_fraction,
                      test_fraction=test_fraction).load()
    return getattr(splits, split).x, splits


def label(*, teacher_path: str, source: str, out: Path, split: str = "train",
          split_seed: int = 0, views: int = 1, augment: str | None = None,
          augment_params: dict[str, Any] | None = None, augment_seed: int = 0,
          topk: int | None = None, hard: bool = False, dtype: str = "float32",
          temperature: float = 1.0, shard_samples: int = 2048, batch_size: int = 1024,
          progress: bool = True, features: tuple[str, ...] = ()) -> Path | None:
    """Label a split of ``source`` with the checkpoint teacher into the store ``out``."""
    from ..engine.accel import get_accelerator
    from ..registry import AUGMENTS
    from ..teachers import load_checkpoint_teacher

    x, splits = load_inputs(source, split, split_seed)
    teacher = load_checkpoint_teacher(teacher_path, input_shape=splits.input_shape,
                                      num_classes=splits.num_classes, field="--teacher")
    if topk is not None and hard:
        raise MentorError("--topk and --hard choose different kinds; expected one of them")
    if topk is not None:
        kind = make_kind("topk", num_classes=splits.num_classes, k=topk,
                         temperature=temperature)
    elif hard:
        kind = make_kind("hard", num_classes=splits.num_classes)
    else:
        kind = make_kind("logits", num_classes=splits.num_classes, dtype=dtype)
    if views < 1:
        raise MentorError(f"--views must be >= 1, got {views}")
    if shard_samples < 1:
        raise MentorError(f"--shard-samples must be >= 1, got {shard_samples}")
    view_spec = None
    if augment is not None:
        if augment not in AUGMENTS:
            from ..registry import suggest
            raise MentorError(f"--augment {augment!r} is not a registered augmentation"
                              f"{suggest(augment, AUGMENTS.names())}; expected one of "
                              f"{', '.join(AUGMENTS.names())}")
        view_spec = Views(augment, views, augment_seed, splits.input_shape, augment_params)
    elif views != 1:
        raise MentorError(f"--views {views} needs --augment NAME: views are augmentations")
    acc = get_accelerator("no")
    teacher.to(acc.device)
    x = x.to(acc.device)
    total = len(x) * views
    n_shards = math.ceil(len(x) / shard_samples)
    mine = sum(min((s + 1) * shard_samples, len(x)) - s * shard_samples
               for s in range(acc.process_index, n_shards, acc.num_processes)) * views
    extra = {"source": {"data": source, "split": split, "split_seed": split_seed,
                        "teacher_checkpoint": str(teacher_path)}}
    with contextlib.ExitStack() as stack:
        if acc.num_processes > 1:  # one process: write_store takes the store's lock itself
            if acc.is_main_process:
                Path(out).mkdir(parents=True, exist_ok=True)
                stack.enter_context(store_lock(out))
            acc.wait_for_everyone()  # the other ranks start once rank 0 holds the lock
        with _RowsProgress(progress and acc.is_main_process, mine,
                           f"labeling {total} rows" if acc.num_processes == 1 else
                           f"rank 0: {mine} of {total} rows") as bar:
            return write_store(teacher, x, out, kind, views=view_spec,
                               shard_samples=shard_samples, batch_size=batch_size,
                               on_rows=bar.advance, rank=acc.process_index,
                               world=acc.num_processes, barrier=acc.wait_for_everyone,
                               extra_manifest=extra, features=tuple(features))


class _RowsProgress:
    """A rich progress bar counting rows, with rows/s."""

    def __init__(self, enabled: bool, total: int, title: str):
        self.enabled, self.total, self.title = enabled, total, title

    def __enter__(self):
        if self.enabled:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(),
                                     TextColumn("{task.fields[rate]} rows/s"),
                                     TimeElapsedColumn())
            self.progress.__enter__()
            self.task = self.progress.add_task(self.title, total=self.total, rate="-")
        return self

    def advance(self, n: int) -> None:
        if self.enabled:
            self.progress.advance(self.task, n)
            speed = self.progress.tasks[0].speed
            if speed:
                self.progress.update(self.task, rate=f"{speed:,.0f}")

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.__exit__(*exc)


def inspect(path: Path, bins: int = 5) -> dict[str, Any]:
    """What ``mentor inspect`` prints: verified contents, sizes and teacher confidence."""
    store = LabelStore.open(path, allow_mismatch=True, verify=True)  # checksums verified
    m = store.manifest
    on_disk = sum((Path(path) / s["file"]).stat().st_size for s in m["shards"])
    info: dict[str, Any] = {
        "path": str(path), "kind": m["kind"], "samples": m["samples"],
        "views_per_sample": m["views_per_sample"], "rows": m["rows"],
        "views": m.get("views"), "shards": len(m["shards"]), "bytes_on_disk": on_disk,
        "features": m.get("features") or {},
        "bytes_per_row": on_disk / max(m["rows"], 1), "teacher": m["teacher"],
        "data": m["data"], "checksums": ("verified (sha256 of every shard and of the manifest)"
                      if m.get("format_version", 1) >= 2 else "verified (sha256 of every "
                      "shard; a format-1 manifest carries no checksum of its own)"),
        "source": m.get("source"), "mentor_version": m.get("mentor_version"),
    }
    if store.kind.name != "tensor":
        c = store.kind.num_classes
        info["bytes_full_float32_per_row"] = 4 * c
        info["compression_ratio"] = 4 * c * m["rows"] / max(on_disk, 1)
        p = torch.softmax(store.outputs().reshape(-1, c) /
                          getattr(store.kind, "temperature", 1.0), dim=-1)
        conf, pred = p.max(-1)
        edges = np.linspace(0, 1, bins + 1)
        hist = {}
        for k in range(c):
            sel = conf[pred == k].numpy()
            counts, _ = np.histogram(sel, bins=edges)
            hist[str(k)] = {"rows": int(len(sel)),
                            "mean_confidence": float(sel.mean()) if len(sel) else None,
                            "histogram": counts.tolist()}
        info["confidence_bins"] = edges.tolist()
        info["confidence_by_class"] = hist
    return info


def inspect_json(path: Path) -> str:
    return json.dumps(inspect(path), indent=1)
