"""What does the label store cost over doing the same work by hand?

Three measurements, in one process, on synthetic data the script makes itself:

  1. Labeling throughput. ``mentor.labels.write_store`` (kind ``logits``, float32, a fresh
     folder per repetition under a temp dir) versus the raw teacher forward loop over the same
     rows in the same batches (``--label-batch``, default 1024; shards of ``--shard-samples``
     2048 keep the store's batches identical), the raw loop keeping its logits (torch.cat).
     Timed for the store: the whole ``write_store`` call (fingerprints, forward, encoding,
     Arrow writing, sha256, fsync + rename of every file, manifest). Reported as rows/s;
     target ``store rows/s / raw rows/s >= 0.9``.

  2. Student epoch from the store. ``mentor.engine.fit`` for one epoch with the store's
     ``StoreTeacher`` (``cache_teacher="auto"``, the default: fit copies the store's
     outputs into its own cache; ``"never"`` is timed as well and reported for
     information) versus a lean PyTorch loop with the teacher logits precomputed in memory:
     randperm (a torch.Generator seeded as fit seeds it) + tensor indexing, KD loss
     ``(1-a)*CE + a*T^2*KL(p_t||p_s)`` (T=4, a=0.9), Adam lr 1e-3, same batch size, and the
     same per-epoch validation pass fit does (eval mode, arg-max accuracy on the val split).
     Timed: from optimizer creation to the returned model (mentor: the whole ``fit`` call).
     Not timed but reported separately: opening the store (``LabelStore.open``, which checks
     every shard's sha256) and decoding it (``as_teacher()`` -> dense tensor). Target
     ``mentor epoch / plain epoch <= 1.10``.

  3. Storage per sample: bytes on disk per row for full float32 logits, full float16 logits
     and top-k (k=5) of the same teacher on the same rows (hard labels as an extra), and
     the ratio to full float32.

Setup (defaults): 32768 train rows x 256 features in 100 Gaussian clusters (+ 2048 val
rows), teacher MLP 256-1024-1024-100 (random init: timing does not depend on its accuracy),
student MLP 256-128-100 re-initialised from the same seed before every run, student batch
256 (128 steps per epoch). Parts 1 and 2 are repeated --reps / --epoch-reps times with the
variants interleaved (round-robin, the order alternating between rounds) after --warmup
untimed rounds; medians are reported (and min-based ratios, less sensitive to other load;
for labeling also the median of per-round ratios and the ratio of CPU times, which CPU steal
and disk waits on a shared VM do not inflate, with the time spent in fsync).

Sanity checks, which fail the script (exit 1) when they do not hold: the store decoded by
``as_teacher()`` equals the teacher's float32 logits exactly, and both mentor epochs (auto
and never) end with the plain loop's weights bit for bit and its validation accuracy.

Machine-readable lines: ``RESULT name value`` (the ratios' alternatives, bytes per row of each
storage kind and their ratio to float32, the script's wall time), and last

    RATIO label_throughput <store rows/s / raw rows/s>     (target >= 0.9)
    RATIO store_epoch <mentor store epoch / plain epoch>   (target <= 1.10)

Run:   PYTHONPATH=src python benchmarks/label_throughput.py            (~1-2 min, 1 thread)
       PYTHONPATH=src python benchmarks/label_throughput.py --quick    (a few seconds: 2,048
                                               rows, 2 rounds; a smoke test, timings mean nothing)
       PYTHONPATH=src python benchmarks/label_throughput.py --profile label   (cProfile)
       PYTHONPATH=src python benchmarks/label_throughput.py --profile epoch
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

# --device is read before mentor is imported: mentor's Accelerator picks its device once.
_pre = argparse.ArgumentParser(add_help=False)
_pre.add_argument("--device", default="cpu")
if _pre.parse_known_args()[0].device == "cpu":
    os.environ["MENTOR_CPU"] = "1"

import torch  # noqa: E402

from mentor.data.splits import Split  # noqa: E402
from mentor.engine import fit  # noqa: E402
from mentor.labels import LabelStore, make_kind, write_store  # noqa: E402
from mentor.labels.fingerprint import data_fingerprint, teacher_fingerprint  # noqa: E402
from mentor.methods import get_method  # noqa: E402
from mentor.models import mlp  # noqa: E402
from mentor.recipe import TrainSpec  # noqa: E402
from mentor.teachers import ModuleTeacher  # noqa: E402
from plain_loops import plain_kd_loop, set_threads, sync  # noqa: E402

# Time spent in os.fsync (mentor._util.atomic fsyncs every file it writes), to tell waiting on the
# disk from CPU work in the labeling numbers. The wrapper costs ~1 us per call.
FSYNC = [0.0]
_os_fsync = os.fsync


def _timed_fsync(fd):
    t = time.perf_counter()
    try:
        return _os_fsync(fd)
    finally:
        FSYNC[0] += time.perf_counter() - t


os.fsync = _timed_fsync


# --------------------------------------------------------------------------- data, models

def make_data(n_train, n_val, features, classes, seed):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, features, generator=g)
    y = torch.randint(0, classes, (n_train + n_val,), generator=g)
    x = centers[y] + 2.0 * torch.randn(n_train + n_val, features, generator=g)
    x = (x - x[:n_train].mean(0)) / x[:n_train].std(0)
    x = x.contiguous()
    ones = torch.ones(n_train + n_val, dtype=torch.bool)
    train = Split(x[:n_train].clone(), y[:n_train].clone(), ones[:n_train].clone())
    val = Split(x[n_train:].clone(), y[n_train:].clone(), ones[n_train:].clone())
    return train, val


def make_teacher(features, classes, seed, device):
    torch.manual_seed(seed + 1000)
    teacher = mlp((features,), classes, hidden=(1024, 1024)).to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def fresh_student(features, classes, seed, device):
    torch.manual_seed(seed)
    return mlp((features,), classes, hidden=(128,)).to(device)


# ------------------------------------------------------------------------ 1. labeling

@torch.no_grad()
def raw_label(module, x, batch_size):
    """The hand-written labeling loop: forward in batches, keep the logits."""
    outs = [module(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat(outs)


def dir_bytes(path: Path, suffix: str | None = None) -> int:
    return sum(f.stat().st_size for f in path.iterdir()
               if f.is_file() and (suffix is None or f.name.endswith(suffix)))


# --------------------------------------------------------------------- 2. student epoch

def plain_epoch(student, x, y, xv, yv, zt_all, *, bs, lr, seed, T, alpha, epochs=1):
    """Lean PyTorch KD loop with the teacher logits already in memory (``zt_all``)."""
    return plain_kd_loop(student, x, y, xv, yv, zt_all, epochs=epochs, bs=bs, lr=lr, seed=seed,
                         T=T, alpha=alpha)


def mentor_epoch(student, train, val, store_teacher, objectives, *, bs, lr, seed, classes,
                 cache, epochs=1):
    spec = TrainSpec(epochs=epochs, batch_size=bs, lr=lr, cache_teacher=cache, select="last")
    res = fit(student, train, val, objectives=objectives, spec=spec, seed=seed,
              num_outputs=classes, teacher=store_teacher)
    return res.history["val_accuracy"][-1]


# ------------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=32768, help="training rows (default 32768)")
    ap.add_argument("--val-rows", type=int, default=2048)
    ap.add_argument("--features", type=int, default=256)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--label-batch", type=int, default=1024, help="labeling batch size")
    ap.add_argument("--shard-samples", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=256, help="student batch size")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--temperature", type=float, default=4.0)
    ap.add_argument("--alpha", type=float, default=0.9)
    ap.add_argument("--topk", type=int, default=5)
    ap.add_argument("--reps", type=int, default=9, help="timed labeling repetitions")
    ap.add_argument("--epoch-reps", type=int, default=11, help="timed epoch repetitions")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds before timing")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tmpdir", default=None, help="where the stores are written "
                    "(default: the system temp dir); removed at the end")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: label,epoch,"
                    "storage")
    ap.add_argument("--profile", choices=["label", "epoch"], default=None,
                    help="instead of the benchmark, cProfile one store write and one raw "
                    "loop (label) or one mentor epoch and one plain epoch (epoch)")
    ap.add_argument("--profile-top", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (2048 rows in shards of "
                    "1024, 2 timed rounds, no warm-up): checks the script runs and its sanity "
                    "checks hold; its timings mean nothing")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows, args.val_rows, args.shard_samples, args.label_batch = 2048, 256, 1024, 512
        args.reps, args.epoch_reps, args.warmup = 2, 2, 0

    t_script = time.perf_counter()
    set_threads(args.threads)
    device = args.device
    skip = {s for s in args.skip.split(",") if s}
    C = args.classes

    train, val = make_data(args.rows, args.val_rows, args.features, C, args.seed)
    x, y = train.x.to(device), train.y.to(device)
    xv, yv = val.x.to(device), val.y.to(device)
    teacher = make_teacher(args.features, C, args.seed, device)
    mteacher = ModuleTeacher(teacher, C, "MLP 256-1024-1024-100")
    kind32 = make_kind("logits", num_classes=C, dtype="float32")
    n = len(x)
    steps = -(-n // args.batch_size)

    print(f"torch {torch.__version__}  device={device}  threads={torch.get_num_threads()}  "
          f"interop={torch.get_num_interop_threads()}  python {sys.version.split()[0]}")
    print(f"data: synthetic {n} train rows x {args.features} features, {C} classes "
          f"(Gaussian clusters), {len(yv)} val rows")
    print(f"teacher: MLP {args.features}-1024-1024-{C} (random init); student: MLP "
          f"{args.features}-128-{C}; KD T={args.temperature:g} alpha={args.alpha:g}, Adam lr "
          f"{args.lr:g}")

    root = Path(tempfile.mkdtemp(prefix="mentor-label-bench-", dir=args.tmpdir))
    counter = iter(range(10 ** 9))

    def new_folder(tag: str) -> Path:
        return root / f"{tag}-{next(counter):04d}"

    last = {}  # CPU seconds and fsync seconds of the latest timed call

    def time_store_write(kind=kind32, folder=None):
        folder = folder or new_folder("store")
        gc.collect()
        sync(device)
        FSYNC[0] = 0.0
        c = time.process_time()
        t = time.perf_counter()
        write_store(mteacher, x, folder, kind, shard_samples=args.shard_samples,
                    batch_size=args.label_batch)
        sync(device)
        dt = time.perf_counter() - t
        last["cpu"], last["fsync"] = time.process_time() - c, FSYNC[0]
        return dt, folder

    def time_raw():
        gc.collect()
        sync(device)
        c = time.process_time()
        t = time.perf_counter()
        z = raw_label(teacher, x, args.label_batch)
        sync(device)
        dt = time.perf_counter() - t
        last["cpu"], last["fsync"] = time.process_time() - c, 0.0
        return dt, z

    try:
        if args.profile:
            return profile(args, locals())

        med_label = mins_label = None
        # ------------------------------------------------------------- 1. labeling
        if "label" not in skip:
            print(f"\n[1] labeling {n} rows, batches of {args.label_batch}, shards of "
                  f"{args.shard_samples} samples; warm-up {args.warmup}, timed {args.reps} "
                  "(raw/store interleaved, order alternating)", flush=True)
            for _ in range(args.warmup):
                time_raw()
                _, f = time_store_write()
                shutil.rmtree(f)
            times = {"raw": [], "store": []}
            cpu = {"raw": [], "store": []}
            fsyncs = []
            for r in range(args.reps):
                order = ("raw", "store") if r % 2 == 0 else ("store", "raw")
                for v in order:
                    if v == "raw":
                        dt, _ = time_raw()
                    else:
                        dt, f = time_store_write()
                        shutil.rmtree(f)
                        fsyncs.append(last["fsync"])
                    times[v].append(dt)
                    cpu[v].append(last["cpu"])
                print(f"  round {r + 1}/{args.reps}: raw={times['raw'][-1]:.3f}s "
                      f"(cpu {cpu['raw'][-1]:.3f})  store={times['store'][-1]:.3f}s (cpu "
                      f"{cpu['store'][-1]:.3f}, fsync {fsyncs[-1]:.3f})", flush=True)
            med_label = {v: statistics.median(ts) for v, ts in times.items()}
            mins_label = {v: min(ts) for v, ts in times.items()}
            # diagnostics less sensitive to a noisy host: the median of the per-round ratios
            # (each round's two runs are adjacent in time) and the ratio of median CPU times
            # (CPU steal and disk waits do not count)
            paired_label = statistics.median(a / b for a, b in zip(times["raw"], times["store"]))
            cpu_label = statistics.median(cpu["raw"]) / statistics.median(cpu["store"])
            # one-off costs inside write_store, for the breakdown
            t = time.perf_counter()
            data_fingerprint(x)
            t_dfp = time.perf_counter() - t
            t = time.perf_counter()
            teacher_fingerprint(mteacher, probe=x[:64])
            t_tfp = time.perf_counter() - t
            print()
            print(f"{'labeling':28s} {'median s':>9s} {'min s':>8s} {'max s':>8s} "
                  f"{'cpu s (med)':>11s} {'rows/s (median)':>16s}")
            for v, name in (("raw", "raw teacher loop"), ("store", "write_store (float32)")):
                print(f"{name:28s} {med_label[v]:9.3f} {mins_label[v]:8.3f} "
                      f"{max(times[v]):8.3f} {statistics.median(cpu[v]):11.3f} "
                      f"{n / med_label[v]:16,.0f}")
            over = med_label["store"] - med_label["raw"]
            print(f"store overhead: {over:+.3f}s median ({1e6 * over / n:+.2f} us/row); of "
                  f"which fsync (waiting on the disk) {statistics.median(fsyncs):.3f}s median "
                  f"(max {max(fsyncs):.3f}s), fingerprints (measured apart) data sha256 "
                  f"{t_dfp:.3f}s + teacher weights {t_tfp:.3f}s")

        # -------------------------------------------------------- 2. student epoch
        med_ep = mins_ep = None
        failed = []
        if "epoch" not in skip:
            store_dir = new_folder("epoch-store")
            t_w, _ = time_store_write(folder=store_dir)
            with torch.no_grad():
                zt_all = teacher(x)  # precomputed teacher logits for the plain loop
            objectives = get_method("kd").plan(temperature=args.temperature,
                                               alpha=args.alpha).objectives
            kw = {"bs": args.batch_size, "lr": args.lr, "seed": args.seed}
            holder = {}

            def run(v):
                student = fresh_student(args.features, C, args.seed, device)
                gc.collect()
                sync(device)
                t = time.perf_counter()
                if v == "open":
                    store = LabelStore.open(store_dir)
                    holder["teacher"] = store.as_teacher()
                    acc = float("nan")
                    student = None
                elif v == "plain":
                    acc = plain_epoch(student, x, y, xv, yv, zt_all, T=args.temperature,
                                      alpha=args.alpha, **kw)
                else:
                    acc = mentor_epoch(student, train, val, holder["teacher"], objectives,
                                       classes=C, cache="auto" if v == "auto" else "never",
                                       **kw)
                sync(device)
                return time.perf_counter() - t, acc, student

            variants = ["plain", "open", "auto", "never"]  # "open" precedes the fits
            print(f"\n[2] one student epoch: {n} rows, batch {args.batch_size} ({steps} "
                  f"steps), val {len(yv)} rows; store written in {t_w:.2f}s; warm-up "
                  f"{args.warmup}, timed {args.epoch_reps}", flush=True)
            for _ in range(args.warmup):
                for v in variants:
                    run(v)
            times = {v: [] for v in variants}
            accs, models = {}, {}
            for r in range(args.epoch_reps):
                order = variants if r % 2 == 0 else ["open", "never", "auto", "plain"]
                for v in order:
                    dt, acc, student = run(v)
                    times[v].append(dt)
                    accs[v], models[v] = acc, student
                print(f"  round {r + 1}/{args.epoch_reps}: " +
                      "  ".join(f"{v}={times[v][-1]:.3f}s" for v in variants), flush=True)
            med_ep = {v: statistics.median(ts) for v, ts in times.items()}
            mins_ep = {v: min(ts) for v, ts in times.items()}
            labels = {"plain": "plain loop, logits in memory",
                      "open": "store open + decode (one-time)",
                      "auto": "mentor fit, store, cache=auto",
                      "never": "mentor fit, store, cache=never"}
            print()
            print(f"{'epoch':32s} {'median s':>9s} {'min s':>8s} {'max s':>8s} "
                  f"{'us/step':>8s} {'val acc':>8s}")
            for v in variants:
                us = f"{1e6 * med_ep[v] / steps:8.1f}" if v != "open" else f"{'-':>8s}"
                a = f"{accs[v]:8.4f}" if v != "open" else f"{'-':>8s}"
                print(f"{labels[v]:32s} {med_ep[v]:9.3f} {mins_ep[v]:8.3f} "
                      f"{max(times[v]):8.3f} {us} {a}")
            st = holder["teacher"]
            dec = (st._table[:, 0] - zt_all).abs().max().item()
            print(f"sanity: decoded store logits vs teacher |diff| max {dec:.2e}")
            if not torch.equal(st._table[:, 0], zt_all):
                failed.append(f"the decoded store differs from the teacher's logits (max "
                              f"|diff| {dec:.2e}); expected them exactly (float32 store)")
            for v in ("auto", "never"):
                pairs = list(zip(models["plain"].parameters(), models[v].parameters(),
                                 strict=True))
                diff = max((a - b).abs().max().item() for a, b in pairs)
                print(f"sanity: val acc plain {accs['plain']:.4f} vs mentor {v} "
                      f"{accs[v]:.4f}; max |weight diff| {diff:.2e}")
                # accuracies are fractions of the val rows, computed in float32 on one side
                if (not all(torch.equal(a, b) for a, b in pairs)
                        or abs(accs["plain"] - accs[v]) > 0.5 / len(yv)):
                    failed.append(f"mentor {v} and the plain loop end with different weights "
                                  f"(max |diff| {diff:.2e}) or val accuracy ({accs[v]:.4f} vs "
                                  f"{accs['plain']:.4f}); expected bit-identical weights")
            for v in ("auto", "never"):
                print(f"mentor {v:5s} / plain = {med_ep[v] / med_ep['plain']:.3f} median, "
                      f"{mins_ep[v] / mins_ep['plain']:.3f} min   (mentor overhead "
                      f"{1e6 * (med_ep[v] - med_ep['plain']) / steps:+.1f} us/step)")
            print(f"store open+decode (not in the epoch times): {med_ep['open']:.3f}s median"
                  f" = {med_ep['open'] / med_ep['plain']:.2f} plain epochs")

        # ------------------------------------------------------------- 3. storage
        if "storage" not in skip:
            print(f"\n[3] storage per row, {n} rows x {C} classes (shards of "
                  f"{args.shard_samples}; sample_id int64 + view_id int32 in every row)")
            kinds = [("logits float32", kind32),
                     ("logits float16", make_kind("logits", num_classes=C, dtype="float16")),
                     (f"top-k k={args.topk}", make_kind("topk", num_classes=C, k=args.topk)),
                     ("hard (extra)", make_kind("hard", num_classes=C))]
            rows = []
            for name, kind in kinds:
                dt, folder = time_store_write(kind=kind)
                rows.append((name, dir_bytes(folder, ".arrow"), dir_bytes(folder), dt))
                shutil.rmtree(folder)
            base = rows[0][1]
            print(f"{'kind':16s} {'shard B/row':>12s} {'all files B/row':>16s} "
                  f"{'vs float32':>11s} {'write s':>8s}")
            for name, arrow_b, all_b, dt in rows:
                print(f"{name:16s} {arrow_b / n:12.1f} {all_b / n:16.1f} "
                      f"{arrow_b / base:11.3f} {dt:8.2f}")
            print(f"(payload alone: float32 {4 * C} B, float16 {2 * C} B, top-{args.topk} "
                  f"{8 * args.topk + 4} B per row; ids add 12 B)")
            for (name, arrow_b, _, _), key in zip(rows, ("float32", "float16", "topk", "hard")):
                print(f"RESULT bytes_per_row_{key} {arrow_b / n:.1f}")
                print(f"RESULT vs_float32_{key} {arrow_b / base:.3f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)

    if failed:
        print("SANITY FAILED: " + "; ".join(failed), file=sys.stderr)
        return 1
    print(f"\nscript time {time.perf_counter() - t_script:.1f}s")
    print(f"RESULT script_s {time.perf_counter() - t_script:.1f}")
    if med_label is not None:
        print(f"label throughput store/raw = {med_label['raw'] / med_label['store']:.3f} "
              f"median, {mins_label['raw'] / mins_label['store']:.3f} min, {paired_label:.3f} "
              f"median of per-round ratios, {cpu_label:.3f} CPU time   (target >= 0.9)")
        print(f"RESULT label_throughput_min {mins_label['raw'] / mins_label['store']:.3f}")
        print(f"RESULT label_throughput_paired {paired_label:.3f}")
        print(f"RESULT label_throughput_cpu {cpu_label:.3f}")
    if med_ep is not None:
        print(f"store epoch mentor(auto)/plain = {med_ep['auto'] / med_ep['plain']:.3f} median"
              f", {mins_ep['auto'] / mins_ep['plain']:.3f} min   (target <= 1.10)")
        print(f"RESULT store_epoch_min {mins_ep['auto'] / mins_ep['plain']:.3f}")
    lt = med_label["raw"] / med_label["store"] if med_label else float("nan")
    se = med_ep["auto"] / med_ep["plain"] if med_ep else float("nan")
    print(f"RATIO label_throughput {lt:.3f}")
    print(f"RATIO store_epoch {se:.3f}")
    return 0


def profile(args, env) -> int:
    import cProfile
    import pstats

    def show(name, fn):
        fn()  # warm
        pr = cProfile.Profile()
        t = time.perf_counter()
        pr.enable()
        out = fn()
        pr.disable()
        print(f"\n===== cProfile {name}: {time.perf_counter() - t:.3f}s under the profiler")
        pstats.Stats(pr, stream=sys.stdout).strip_dirs().sort_stats("tottime").print_stats(
            args.profile_top)
        return out

    if args.profile == "label":
        show("raw teacher loop", env["time_raw"])
        show("write_store float32", env["time_store_write"])
        return 0
    x, y, xv, yv, teacher = env["x"], env["y"], env["xv"], env["yv"], env["teacher"]
    C = env["C"]
    store_dir = env["new_folder"]("prof-store")
    env["time_store_write"](folder=store_dir)
    st = LabelStore.open(store_dir).as_teacher()
    with torch.no_grad():
        zt_all = teacher(x)
    objectives = get_method("kd").plan(temperature=args.temperature, alpha=args.alpha).objectives
    kw = {"bs": args.batch_size, "lr": args.lr, "seed": args.seed}
    show("plain epoch", lambda: plain_epoch(
        fresh_student(args.features, C, args.seed, args.device), x, y, xv, yv, zt_all,
        T=args.temperature, alpha=args.alpha, **kw))
    show("mentor epoch (store, auto)", lambda: mentor_epoch(
        fresh_student(args.features, C, args.seed, args.device), env["train"], env["val"], st,
        objectives, classes=C, cache="auto", **kw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
