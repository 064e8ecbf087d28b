"""Does memory grow with the data set when mentor trains from disk?

KD over an on-disk source: a file of N images (3x32x32, uint8, 3 KiB per row) read row by
row with ``os.pread`` by a map-style dataset (no memory map: the page cache is the kernel's,
not the process's), fed to ``mentor.engine.fit`` as ``mentor.data.DatasetRows`` with 2
DataLoader workers; an MLP student, a frozen MLP teacher whose outputs mentor caches
(``cache_teacher: auto``: one pass over the rows, N x 10 floats kept), 1 epoch, batch 256.
Each size runs in a fresh process; its peak resident memory (``ru_maxrss`` of the training
process plus that of its largest worker -- an over-count: a forked worker's resident pages
include those it shares with the training process) is read at the end. mentor reads the
rows for the teacher cache and validation in chunks of 4,096, so the peak reaches its
plateau from 4,096 rows on: both sizes start there.

``--source table``: the same rows as a Parquet file (a list column ``emb`` of 768 float32
values -- 3 KiB per row, like an embedding -- and ``label``), loaded by
``mentor.data.load(..., stream=True)`` (``data.stream: true``: labels read first, the features
converted once into a scratch file of float32 rows, the splits read from it with ``os.pread``
by the same DataLoader workers; 60/20/20 train/val/test). The 1x file holds the 10x file's
first N rows. The read-count check does not apply (the source counts nothing).

Run with N rows and with 10 x N rows; the data file grows 10 x (61 MiB -> 614 MiB by
default), what the process holds should not:

    RESULT rss_mib_1x <peak MiB>
    RESULT rss_mib_10x <peak MiB>
    RESULT data_mib_10x <file size MiB>
    RATIO stream_rss <peak 10x / peak 1x>      (target <= 1.2)

Sanity check (exit 1 otherwise): every row was read once per epoch by the training (the
workers count reads in a shared tensor).

Run:   PYTHONPATH=src python benchmarks/stream_memory.py           (under a minute)
       PYTHONPATH=src python benchmarks/stream_memory.py --quick   (4,096 / 40,960 rows)
       PYTHONPATH=src python benchmarks/stream_memory.py --source table [--quick]
       (prints RATIO stream_table_rss)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROW = 3 * 32 * 32  # bytes per image


def write_file(path: Path, n: int, seed: int) -> None:
    """``n`` rows of uint8 images, written in chunks (never all in memory)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        for start in range(0, n, 8192):
            k = min(8192, n - start)
            labels = (np.arange(start, start + k) % 10).astype(np.uint8)
            rows = rng.integers(0, 64, size=(k, ROW), dtype=np.uint8) + labels[:, None] * 19
            f.write(rows.tobytes())


EMB = ROW // 4  # float32 values per row of the Parquet table (the same bytes per row)


def write_table(path: Path, n: int, seed: int) -> None:
    """``n`` rows of a Parquet table (``emb``: EMB float32 values, ``label``), written in
    row groups (never all in memory); the same rows whatever ``n``'s multiple."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    rng = np.random.default_rng(seed)
    schema = pa.schema([("emb", pa.list_(pa.float32(), EMB)), ("label", pa.int64())])
    with pq.ParquetWriter(path, schema) as w:
        for start in range(0, n, 8192):
            k = min(8192, n - start)
            labels = np.arange(start, start + k) % 10
            rows = (rng.normal(size=(k, EMB)) + labels[:, None] * 0.1).astype(np.float32)
            emb = pa.FixedSizeListArray.from_arrays(pa.array(rows.reshape(-1)), EMB)
            w.write_table(pa.table({"emb": emb, "label": pa.array(labels)}, schema=schema))


def table_child(path: Path, epochs: int, workers: int) -> dict:
    """Train from the Parquet table at ``path`` streamed by mentor; peak memory as
    :func:`child`."""
    os.environ.setdefault("MENTOR_CPU", "1")
    import torch

    from mentor.data import load
    from mentor.engine import fit
    from mentor.methods import get_method
    from mentor.models import mlp
    from mentor.recipe import TrainSpec
    from mentor.teachers import as_teacher

    torch.set_num_threads(1)
    t = time.perf_counter()
    s = load(str(path), target="label", stream=True, images={"workers": workers})
    load_secs = time.perf_counter() - t
    torch.manual_seed(0)
    teacher = mlp((EMB,), 10, hidden=[64]).eval()
    torch.manual_seed(1)
    student = mlp((EMB,), 10, hidden=[32])
    t = time.perf_counter()
    res = fit(student, s.train, s.val, objectives=get_method("kd").plan().objectives,
              teacher=as_teacher(teacher, 10), seed=0, num_outputs=10,
              spec=TrainSpec(epochs=epochs, batch_size=256, lr=1e-3, select="last"))
    secs = time.perf_counter() - t
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"rss_mib": own + kids, "own_mib": own, "worker_mib": kids, "seconds": secs,
            "load_seconds": load_secs, "reads_ok": True, "cached": res.teacher_cached,
            "train_rows": len(s.train)}


def child(path: Path, n: int, epochs: int, workers: int) -> dict:
    """Train in this process; return its peak memory and the read counts."""
    os.environ.setdefault("MENTOR_CPU", "1")
    import torch
    from torch.utils.data import Dataset

    from mentor.data import DatasetRows, Split
    from mentor.engine import fit
    from mentor.methods import get_method
    from mentor.models import mlp
    from mentor.recipe import TrainSpec
    from mentor.teachers import as_teacher

    class DiskImages(Dataset):
        def __init__(self, path: Path, n: int, offset: int = 0):
            self.path, self.n, self.offset = str(path), n, offset
            self.reads = torch.zeros(n, dtype=torch.int32).share_memory_()
            self.fd = None

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            if self.fd is None:  # opened in each worker
                self.fd = os.open(self.path, os.O_RDONLY)
            raw = os.pread(self.fd, ROW, (self.offset + i) * ROW)
            self.reads[i] += 1
            x = torch.frombuffer(bytearray(raw), dtype=torch.uint8).float().div_(255.0)
            return x, (self.offset + i) % 10

    torch.set_num_threads(1)
    labels = torch.arange(n) % 10
    train_ds = DiskImages(path, n)
    n_val = 1024  # the same validation rows at every size: the file's first rows
    val_ds = DiskImages(path, n_val)
    train = Split(DatasetRows(train_ds, num_workers=workers), labels,
                  torch.ones(n, dtype=torch.bool))
    val = Split(DatasetRows(val_ds, num_workers=workers), labels[:n_val],
                torch.ones(n_val, dtype=torch.bool))
    torch.manual_seed(0)
    teacher = mlp((ROW,), 10, hidden=[64]).eval()
    torch.manual_seed(1)
    student = mlp((ROW,), 10, hidden=[32])
    t = time.perf_counter()
    res = fit(student, train, val, objectives=get_method("kd").plan().objectives,
              teacher=as_teacher(teacher, 10), seed=0, num_outputs=10,
              spec=TrainSpec(epochs=epochs, batch_size=256, lr=1e-3, select="last"))
    secs = time.perf_counter() - t
    reads = train_ds.reads
    cached = res.teacher_cached  # the cache pass reads every row once more
    expected = epochs + (1 if cached else 0)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    # rows 0 and 1 are read again as the example the student is checked with (and row 0 for
    # the input shape): every other row only by the training
    return {"rss_mib": own + kids, "own_mib": own, "worker_mib": kids, "seconds": secs,
            "reads_ok": bool((reads[2:] == expected).all()), "min_reads": int(reads.min()),
            "max_reads": int(reads.max()), "expected_reads": expected, "cached": cached}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=20_000, help="rows of the 1x run")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="4,096 / 40,960 rows")
    ap.add_argument("--source", choices=("file", "table"), default="file",
                    help="file: a raw file of rows read by a dataset of this script; table: a "
                    "Parquet table streamed by mentor (data.stream)")
    ap.add_argument("--child", nargs=2, metavar=("FILE", "ROWS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        path, n = Path(args.child[0]), int(args.child[1])
        got = (table_child(path, args.epochs, args.workers) if args.source == "table"
               else child(path, n, args.epochs, args.workers))
        print("CHILD " + json.dumps(got))
        return 0
    if args.quick:
        args.rows = 4_096
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MENTOR_CPU": "1"}
    got = {}
    table = args.source == "table"
    with tempfile.TemporaryDirectory(prefix="mentor-stream-") as tmp:
        path = Path(tmp) / "images.u8"
        if table:
            for scale in (1, 10):
                write_table(Path(tmp) / f"rows{scale}x.parquet", scale * args.rows, seed=0)
        else:
            write_file(path, 10 * args.rows, seed=0)
        for scale in (1, 10):
            n = scale * args.rows
            source = Path(tmp) / f"rows{scale}x.parquet" if table else path
            proc = subprocess.run([sys.executable, __file__, "--child", str(source), str(n),
                                   "--epochs", str(args.epochs), "--workers",
                                   str(args.workers), "--source", args.source], env=env,
                                  capture_output=True, text=True, timeout=1800)
            line = [x for x in proc.stdout.splitlines() if x.startswith("CHILD ")]
            if proc.returncode != 0 or not line:
                print(proc.stdout[-2000:], proc.stderr[-3000:], file=sys.stderr)
                return 1
            got[scale] = json.loads(line[0][6:])
            g = got[scale]
            reads = ("" if table else
                     f", reads per row {g['min_reads']}..{g['max_reads']}")
            loaded = f"loaded in {g['load_seconds']:.1f} s, " if table else ""
            print(f"{n:>9,} rows ({n * ROW / 2**20:,.0f} MiB of float32 rows): peak "
                  f"{g['rss_mib']:.0f} MiB (training process {g['own_mib']:.0f}, largest "
                  f"worker {g['worker_mib']:.0f}), {loaded}{g['seconds']:.1f} s of training, "
                  f"teacher cached {g['cached']}{reads}", flush=True)
        data_mib = 10 * args.rows * ROW / 2**20
    bad = [s for s, g in got.items() if not g["reads_ok"]]
    if bad:
        print(f"SANITY FAILED: at {bad[0]}x some row was not read exactly "
              f"{got[bad[0]]['expected_reads']} times; expected once per epoch (and once for "
              "the teacher cache)", file=sys.stderr)
        return 1
    print(f"RESULT rss_mib_1x {got[1]['rss_mib']:.0f}")
    print(f"RESULT rss_mib_10x {got[10]['rss_mib']:.0f}")
    print(f"RESULT data_mib_10x {data_mib:.0f}")
    tag = "stream_table_rss" if table else "stream_rss"
    print(f"RATIO {tag} {got[10]['rss_mib'] / got[1]['rss_mib']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
