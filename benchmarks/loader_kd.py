"""What does mentor's loop cost when its data comes through a DataLoader?

Times two variants INTERLEAVED (round-robin) in one process, on the same data and models:

  (p) plain PyTorch KD over a map-style dataset: per epoch a permutation from a seeded
      ``torch.Generator``, a ``DataLoader`` over those batches (2 worker processes), an online
      teacher forward under no_grad, KD loss, Adam; a validation pass per epoch through a
      DataLoader with the same workers
  (m) mentor: ``mentor.engine.fit`` on ``mentor.data.DatasetRows`` of the same datasets
      (2 workers), ``cache_teacher="never"``, ``select="last"``

Setup: 2,048 training and 512 validation images, 3x32x32, 10 classes, generated here (a
class-dependent colour pattern plus noise, held as uint8; each item is converted to float
and normalized in the worker, as an image dataset's transform does); teacher CNN
(32, 64 channels, random init: only time is measured), student CNN (16, 32 channels)
re-initialised from the same seed before every run, batch 64, Adam lr 1e-3, KD T=4
alpha=0.9, 3 epochs. Timed: the whole training call (workers start per epoch on both sides).
A warm-up round is not timed.

Each variant is repeated --reps (7) times in the order p,m,p,m,...; medians are reported and
``RATIO loader_kd`` is the median over rounds of each round's m/p (paired: the two runs of a
round are back to back).
Sanity check, which fails the script (exit 1) when it does not hold: both read the same rows
in the same order and compute the same loss, so they end with bit-identical weights.
Machine-readable lines: ``RESULT name value`` and last ``RATIO loader_kd <paired m/p>``.

Run:   PYTHONPATH=src python benchmarks/loader_kd.py            (~1-2 min, 1 torch thread)
       PYTHONPATH=src python benchmarks/loader_kd.py --quick    (a smoke test: 1 epoch, 2
                                                                 rounds, 512 rows)
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

if __name__ == "__main__":  # the plain loop runs on the CPU: so does mentor's Accelerator
    os.environ.setdefault("MENTOR_CPU", "1")

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from mentor.data import DatasetRows, Split  # noqa: E402
from mentor.engine import fit  # noqa: E402
from mentor.methods import get_method  # noqa: E402
from mentor.recipe import TrainSpec  # noqa: E402
from mentor.teachers import as_teacher  # noqa: E402
from plain_loops import kd_loss, same_weights, set_threads  # noqa: E402

SHAPE = (3, 32, 32)


class Images(Dataset):
    """uint8 images; an item is ``(float image in [-1, 1], label)``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i].float().div_(127.5).sub_(1.0), int(self.labels[i])


def make_images(n: int, seed: int) -> Images:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    base = torch.rand(10, *SHAPE, generator=g)
    x = 0.6 * base[y] + 0.4 * torch.rand(n, *SHAPE, generator=g)
    return Images((x * 255).to(torch.uint8), y)


def image_cnn(c1: int, c2: int) -> nn.Module:
    """Conv-ReLU-pool, conv-ReLU, global average pool, linear: 3x32x32 -> 10 logits."""
    return nn.Sequential(nn.Conv2d(3, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(c2, 10))


def _collate(items):
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])


def plain(student, teacher, train: Images, val: Images, *, epochs, bs, lr, seed, T, alpha,
          workers) -> float:
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = len(train)
    acc = float("nan")
    student.train()
    for _epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        batches = [order[i:i + bs].tolist() for i in range(0, n, bs)]
        for xb, yb in DataLoader(train, batch_sampler=batches, num_workers=workers,
                                 collate_fn=_collate):
            with torch.no_grad():
                zt = teacher(xb)
            loss = kd_loss(student(xb), zt, yb, T, alpha)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        student.eval()
        right = 0
        with torch.no_grad():
            for xb, yb in DataLoader(val, batch_size=4096, num_workers=workers,
                                     collate_fn=_collate):
                right += int((student(xb).argmax(-1) == yb).sum())
        student.train()
        acc = right / len(val)
    return acc


def mentor_run(student, teacher, train: Images, val: Images, *, epochs, bs, lr, seed, T, alpha,
               workers) -> float:
    def split(ds):
        return Split(DatasetRows(ds, num_workers=workers), ds.labels,
                     torch.ones(len(ds), dtype=torch.bool))
    objectives = get_method("kd").plan(temperature=T, alpha=alpha).objectives
    res = fit(student, split(train), split(val), objectives=objectives,
              spec=TrainSpec(epochs=epochs, batch_size=bs, lr=lr, cache_teacher="never",
                             select="last"),
              seed=seed, num_outputs=10, teacher=as_teacher(teacher, 10))
    return res.history["val_accuracy"][-1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rows", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="1 epoch, 2 rounds, 512 rows: the "
                    "script runs and its sanity check holds; its timings mean nothing")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs, args.reps, args.rows = 1, 2, 512
    set_threads(args.threads)
    train, val = make_images(args.rows, args.seed), make_images(args.rows // 4, args.seed + 1)
    torch.manual_seed(args.seed + 1000)
    teacher = image_cnn(32, 64).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    kw = dict(epochs=args.epochs, bs=64, lr=1e-3, seed=args.seed, T=4.0, alpha=0.9,
              workers=args.workers)
    runners = {"p": plain, "m": mentor_run}
    print(f"torch {torch.__version__}  threads={torch.get_num_threads()}  workers="
          f"{args.workers}; train {len(train)} x {SHAPE}, val {len(val)}; {args.epochs} "
          f"epochs of {-(-len(train) // 64)} steps")

    def run_once(v):
        torch.manual_seed(args.seed)
        student = image_cnn(16, 32)
        gc.collect()
        t = time.perf_counter()
        acc = runners[v](student, teacher, train, val, **kw)
        return time.perf_counter() - t, acc, student

    if not args.quick:
        for v in runners:
            run_once(v)
    times = {v: [] for v in runners}
    models, accs = {}, {}
    for r in range(args.reps):
        for v in runners:
            dt, accs[v], models[v] = run_once(v)
            times[v].append(dt)
        print(f"  round {r + 1}/{args.reps}: " +
              "  ".join(f"{v}={times[v][-1]:.3f}s" for v in runners), flush=True)
    if not same_weights(models["p"], models["m"], accs["p"], accs["m"]):
        return 1
    med = {v: statistics.median(ts) for v, ts in times.items()}
    for v in runners:
        print(f"RESULT median_s_{v} {med[v]:.3f}")
    print(f"RESULT min_loader_kd {min(times['m']) / min(times['p']):.3f}")
    print(f"RESULT median_ratio_loader_kd {med['m'] / med['p']:.3f}")
    print("RATIO loader_kd %.3f" % statistics.median(m / p for m, p in zip(times["m"],
                                                                         times["p"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
