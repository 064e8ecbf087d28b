"""How fast does mentor train from a folder of image files, against a plain PyTorch loop?

Writes a folder of small PNG files (default 20,000 training images: 32x32 RGB, 10 classes,
a class-dependent colour and stripe pattern plus noise, seeded; plus 500 validation and 500
test images, with Pillow, into a temporary folder removed at the end) and times KD epochs
over it, on the same files, models and batches:

  (p) plain PyTorch: the user's own map-style ``Dataset`` of ``(path, label)`` pairs (Pillow
      ``open``, ``convert("RGB")``, ``np.array``, to a (C, H, W) tensor, /255, per-channel
      normalize -- what torchvision's ``ToTensor`` + ``Normalize`` do), trained by
      ``loader_kd.plain``: a ``DataLoader`` over the epoch's batches (a permutation from a
      seeded ``torch.Generator``, 2 worker processes), an online teacher forward under
      no_grad, KD loss, Adam; then a validation pass through a DataLoader with the same
      workers
  (m) mentor: ``mentor.data.image_source.image_folder_splits(root, workers=2)`` (rows decoded
      by Pillow in DataLoader workers: ``mentor.data.images.ImageFiles`` through
      ``DatasetRows``), trained by ``get_method("kd").plan(...).fit(...)`` with
      ``cache_teacher="never"``, ``select="last"`` (its per-epoch validation is the same
      pass over the same validation files as the plain loop's)

Models: student ``mentor.models.cnn`` (8, 16 channels), teacher ``mentor.models.cnn``
(16, 16 channels, random init, frozen: only time is measured), batch 64, Adam lr 1e-3, KD
T=4 alpha=0.9 (``plain_loops.kd_loss``, written as mentor's ``kd`` computes it). mentor's
order is a ``torch.randperm`` from a generator seeded with --seed; the plain loop draws the
same permutation from its own generator with the same seed, over the same training files in
the same order, so both see the same batches.

Timed: one training epoch per side per round, from a fresh student (same seeded init): the
whole training call (mentor: its ``fit``, whose setup reads two rows through the workers to
check the model; both: worker start, every batch, the validation pass). Not timed: the
folder's setup. mentor's -- listing, verifying every file with Pillow, the split and the
per-channel mean/std of 2,048 training images -- is timed once and printed as
``RESULT setup_s_mentor`` (the plain loop's listing of the folder as ``RESULT
setup_s_plain``); it is not part of the ratio. A warm-up round on 512 of the training images
(lazy imports, mentor's first ``fit``) is not timed either.

ABBA: this VM's CPU speed drifts by up to 2x within a minute, so both sides run interleaved
in one process, an epoch at a time: round r runs mentor's epoch then the plain loop's when r
is even, the other way round when it is odd, so the epochs go A B B A A B ... (--rounds, 8).

Figures: images/s of each side = training images x rounds / its summed time;
``RATIO image_folder`` = mentor's images/s over the plain loop's (the plain loop's summed
time over mentor's; target >= 0.95); ``RESULT median_ratio_image_folder``: the same from
the medians of the per-round times. Sanity check, which fails the script (exit 1) when it
does not hold: both sides decode the same files into the same float32 values and train on
the same batches with the same loss, so the last round's students end with bit-identical
weights and the same validation accuracy.

Run:   PYTHONPATH=src python benchmarks/image_folder.py          (~5 min here, 1 thread)
       PYTHONPATH=src python benchmarks/image_folder.py --quick  (a smoke test: 1,000
                                                                  images, 1 round, no warm-up)
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__":  # the plain loop runs on the CPU: so does mentor's Accelerator
    os.environ.setdefault("MENTOR_CPU", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402

from mentor.data import Split  # noqa: E402
from mentor.data.image_source import image_folder_splits  # noqa: E402
from mentor.methods import get_method  # noqa: E402
from mentor.models import cnn  # noqa: E402
from mentor.recipe import TrainSpec  # noqa: E402
from mentor.teachers import as_teacher  # noqa: E402
from loader_kd import plain  # noqa: E402
from plain_loops import same_weights, set_threads  # noqa: E402

SIDE, CLASSES, BATCH, LR, T, ALPHA = 32, 10, 64, 1e-3, 4.0, 0.9


# ------------------------------------------------------------------------------- data

def write_folder(root: Path, per_class: int, seed: int) -> None:
    """``per_class`` PNGs in each of ``CLASSES`` sub-folders: a class colour, horizontal
    stripes of a class period, and uniform noise."""
    rng = np.random.default_rng(seed)
    rows = np.arange(SIDE)[:, None, None]
    for c in range(CLASSES):
        folder = root / f"class{c:02d}"
        folder.mkdir(parents=True)
        colour = rng.uniform(40, 215, size=3)
        stripes = 30.0 * ((rows // (c % 5 + 1)) % 2) * (1 if c < 5 else -1)
        base = colour + stripes  # (SIDE, 1, 3)
        noise = rng.uniform(-40, 40, size=(per_class, SIDE, SIDE, 3))
        pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
        for i in range(per_class):
            Image.fromarray(pixels[i]).save(folder / f"{i:05d}.png")


class PlainImages(Dataset):
    """A plain user's image dataset: ``(normalized (C, H, W) float tensor, label)``."""

    def __init__(self, files, labels, mean, std):
        self.files, self.labels = files, labels
        self.mean, self.std = torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with Image.open(self.files[i]) as im:
            a = np.array(im.convert("RGB"))
        x = torch.from_numpy(a).permute(2, 0, 1).contiguous().float().div(255)
        return x.sub_(self.mean).div_(self.std), self.labels[i]


def epoch_pair(train: Split, val: Split, plain_train, plain_val, teacher, *, seed, workers,
               mentor_first):
    """One round: a fresh student on each side (same seeded init) trained one epoch, mentor
    on the splits ``train``/``val``, the plain loop (``loader_kd.plain``) on the datasets of
    the same files, in the order the round says; returns ({side: seconds}, {side: val acc},
    {side: student})."""
    spent, acc, students = {}, {}, {}
    for side in ("m", "p") if mentor_first else ("p", "m"):
        torch.manual_seed(seed)
        students[side] = cnn((3, SIDE, SIDE), CLASSES, channels=(8, 16))
        gc.collect()
        t = time.perf_counter()
        if side == "p":
            acc[side] = plain(students[side], teacher, plain_train, plain_val, epochs=1,
                              bs=BATCH, lr=LR, seed=seed, T=T, alpha=ALPHA, workers=workers)
        else:
            res = get_method("kd").plan(temperature=T, alpha=ALPHA).fit(
                students[side], train, val, seed=seed, num_outputs=CLASSES,
                spec=TrainSpec(epochs=1, batch_size=BATCH, lr=LR, cache_teacher="never",
                               select="last"),
                teacher=as_teacher(teacher, CLASSES))
            acc[side] = res.history["val_accuracy"][-1]
        spent[side] = time.perf_counter() - t
    return spent, acc, students


# ------------------------------------------------------------------------------ main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=20000, help="training images (a multiple "
                    "of 10; the folder also holds 1/40 as many validation and test images)")
    ap.add_argument("--rounds", type=int, default=8, help="timed rounds (an epoch per side)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="1,000 training images, 1 round, no "
                    "warm-up: the script runs and its sanity check holds; its timings mean "
                    "nothing")
    args = ap.parse_args(argv)
    if args.quick:
        args.images, args.rounds = 1000, 1
    set_threads(1)
    train_per_class = args.images // CLASSES
    held = max(2, train_per_class // 40)  # validation (and test) images per class
    per_class = train_per_class + 2 * held
    root = Path(tempfile.mkdtemp(prefix="mentor-image-folder-"))
    try:
        t0 = time.perf_counter()
        write_folder(root, per_class, args.seed)
        t_write = time.perf_counter() - t0
        return run(args, root, held / per_class, t_write)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(args, root: Path, fraction: float, t_write: float) -> int:
    t0 = time.perf_counter()
    splits = image_folder_splits(root, image_size=SIDE, workers=args.workers,
                                 val_fraction=fraction, test_fraction=fraction,
                                 split_seed=args.seed)
    setup_mentor = time.perf_counter() - t0
    t0 = time.perf_counter()  # the plain user's listing: sorted class folders, sorted files
    files = [str(f) for d in sorted(p for p in root.iterdir() if p.is_dir())
             for f in sorted(d.glob("*.png"))]
    setup_plain = time.perf_counter() - t0
    pixels = SIDE * SIDE
    mean, std = splits.mean[::pixels].tolist(), splits.std[::pixels].tolist()

    def plain_split(part, split, count=None):
        ids = splits.rows[part][:count]
        return PlainImages([files[i] for i in ids], split.y[:len(ids)].tolist(), mean, std)
    plain_train, plain_val = plain_split("train", splits.train), plain_split("val", splits.val)
    n = len(plain_train)
    torch.manual_seed(args.seed + 1000)
    teacher = cnn((3, SIDE, SIDE), CLASSES, channels=(16, 16)).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    print(f"torch {torch.__version__}  threads={torch.get_num_threads()}  workers="
          f"{args.workers}; {len(files)} PNGs ({SIDE}x{SIDE} RGB, {CLASSES} classes) written "
          f"in {t_write:.1f}s: train {n}, val {len(plain_val)}; an epoch is {-(-n // BATCH)} "
          f"steps of {BATCH}", flush=True)

    kw = dict(seed=args.seed, workers=args.workers)
    if not args.quick:  # warm-up on 512 rows: lazy imports, mentor's first fit, allocator
        few = torch.arange(min(512, n))
        part = Split(splits.train.x.subset(few), splits.train.y[few], splits.train.labeled[few])
        epoch_pair(part, splits.val, plain_split("train", splits.train, len(few)), plain_val,
                   teacher, **kw, mentor_first=True)
    times = {"p": [], "m": []}
    for r in range(args.rounds):  # m p, p m, m p, ...: epochs in the order A B B A A B ...
        spent, acc, students = epoch_pair(splits.train, splits.val, plain_train, plain_val,
                                          teacher, **kw, mentor_first=r % 2 == 0)
        for side in times:
            times[side].append(spent[side])
        print(f"  round {r + 1}/{args.rounds} ({'mentor' if r % 2 == 0 else 'plain'} first): "
              f"plain {spent['p']:.2f}s  mentor {spent['m']:.2f}s  (mentor images/s over "
              f"plain: {spent['p'] / spent['m']:.3f})", flush=True)

    if not same_weights(students["p"], students["m"], acc["p"], acc["m"]):
        return 1
    rate = {side: n * len(ts) / sum(ts) for side, ts in times.items()}
    med = {side: statistics.median(ts) for side, ts in times.items()}
    for name, value in (("images_per_s_plain", f"{rate['p']:.1f}"),
                        ("images_per_s_mentor", f"{rate['m']:.1f}"), ("images", n),
                        ("rounds", args.rounds), ("setup_s_mentor", f"{setup_mentor:.2f}"),
                        ("setup_s_plain", f"{setup_plain:.2f}"),
                        ("median_ratio_image_folder", f"{med['p'] / med['m']:.3f}")):
        print(f"RESULT {name} {value}")
    print(f"RATIO image_folder {rate['m'] / rate['p']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
