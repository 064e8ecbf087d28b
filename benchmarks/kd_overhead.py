"""How much does mentor's training loop cost over a hand-written PyTorch loop?

Times five variants in one process, on the same data and models:

  (i)   plain student alone: lean PyTorch loop (randperm + tensor indexing, CE, Adam)
  (ii)  plain KD, online teacher (teacher forward under no_grad every step)
  (iii) plain KD, teacher logits computed once for the train split (timed) and indexed
  (iv)  mentor online KD:  mentor.engine.fit(..., cache_teacher="never", select="last")
  (v)   mentor cached KD:  mentor.engine.fit(..., cache_teacher="always", select="last")

Setup (defaults): digits train split (1078 rows x 64 features, 17 batches of 64 per epoch),
teacher MLP 64-256-256-10 pretrained here for --teacher-epochs (20) epochs with Adam (or
random init with --teacher-init random), student MLP 64-32-10 re-initialised from the same
seed before every run, batch 64, Adam lr 1e-3, KD T=4 alpha=0.9 (loss
(1-alpha)*CE + alpha*T^2*KL(p_t||p_s)), same epoch count and same data order (a
torch.Generator seeded with --seed, as mentor's fit does) for every variant. The plain loops
gather a batch's rows by ``x[idx]`` (``--plain-gather index_select``: as mentor does).

Fairness: mentor's fit evaluates the student on the validation split after every epoch, so
the plain loops do the same per-epoch validation pass (eval mode, no_grad, arg-max accuracy
on the full val split, 359 rows) -- ``--val full`` (default). ``--val tiny`` instead passes
a 16-row validation split to every variant, so the per-epoch evaluation is negligible on
both sides. Timed: everything from optimizer creation to the returned model (mentor: the
whole ``fit`` call, including its teacher-logit precompute for (v); plain (iii): the same
precompute). Not timed: student init, building the method's objectives / wrapping the
teacher (done once), and a warm-up round (--warmup, default 1) that absorbs one-time process
costs (Accelerator creation, lazy imports, allocator warm-up).

Lockstep: each mentor run (iv, v) goes in lockstep with its plain loop (ii, iii): mentor's
``fit`` runs an epoch, its ``on_epoch`` callback runs one epoch of the plain loop (a
generator), and so on; each side's time is summed over its own stretches. Both are timed over
the same seconds, so a change of the machine's speed during the run (on this project's VM the
same loop can take half again as long from one minute to the next) falls on both. Odd rounds run the
plain loop's epoch first and the pairs in reverse order. (i) runs alone. --reps (7) rounds;
medians are reported, and the RATIO lines are the median over rounds of each round's
mentor/plain ratio (the ratio of the medians is printed as ``RESULT median_ratio_*``).
Sanity check, which fails the script (exit 1) when it does not hold: mentor and the plain
loop do the same work, so (iv) ends with bit-identical weights and the same validation
accuracy as (ii), and (v) as (iii). Machine-readable lines: ``RESULT name value`` (medians in
seconds, ratios, mentor's overhead per step in microseconds, the plain loops' step time, the
min-based ratios), and last

    RATIO online_kd <median over rounds of (iv)/(ii)>
    RATIO cached_kd <median over rounds of (v)/(iii)>

then (unless ``--no-loader``) the DataLoader-fed case of ``benchmarks/loader_kd.py`` -- a
map-style dataset of 3x32x32 images read by 2 DataLoader workers, a CNN student and teacher,
mentor's ``fit`` on ``mentor.data.DatasetRows`` against the same plain DataLoader loop,
bit-identical weights checked -- ending with ``RATIO loader_kd <mentor/plain>``.

Run:   PYTHONPATH=src python benchmarks/kd_overhead.py            (~1-2 min, 1 thread)
       PYTHONPATH=src python benchmarks/kd_overhead.py --quick    (a few seconds: 3 epochs,
                                                                   2 rounds; a smoke test)
       PYTHONPATH=src python benchmarks/kd_overhead.py --profile online   (cProfile of (iv))
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

# --device is read before mentor is imported: mentor's Accelerator picks its device once.
_pre = argparse.ArgumentParser(add_help=False)
_pre.add_argument("--device", default="cpu")
if _pre.parse_known_args()[0].device == "cpu":
    os.environ["MENTOR_CPU"] = "1"

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import loader_kd  # noqa: E402
import mentor.data  # noqa: E402
from mentor.data.splits import Split  # noqa: E402
from mentor.engine import fit  # noqa: E402
from mentor.methods import get_method  # noqa: E402
from mentor.models import mlp  # noqa: E402
from mentor.recipe import TrainSpec  # noqa: E402
from mentor.teachers import as_teacher  # noqa: E402
from plain_loops import index_rows, kd_epochs, kd_loss, set_threads, sync, val_accuracy  # noqa: E402

VARIANTS = ["i", "ii", "iv", "iii", "v"]  # each mentor run right after its plain loop
LABELS = {
    "i": "(i)   plain student alone",
    "ii": "(ii)  plain KD, online teacher",
    "iii": "(iii) plain KD, cached teacher logits",
    "iv": "(iv)  mentor KD, cache_teacher=never",
    "v": "(v)   mentor KD, cache_teacher=always",
}


# ------------------------------------------------------------------------- plain loops

def plain_student(student, x, y, xv, yv, *, epochs, bs, lr, seed, **_):
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = len(x)
    acc = float("nan")
    student.train()
    for _epoch in range(epochs):
        order = torch.randperm(n, generator=gen).to(x.device)
        for i in range(0, n, bs):
            idx = order[i:i + bs]
            loss = F.cross_entropy(student(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        acc = val_accuracy(student, xv, yv)
    return acc


def plain_kd_online_epochs(student, x, y, xv, yv, *, teacher, epochs, bs, lr, seed, T, alpha,
                           gather=None, **_):
    """(ii) as a generator: one epoch and its validation per ``next``; rows by ``x[idx]``, or
    ``gather(x, idx)`` when given."""
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = len(x)
    student.train()
    for _epoch in range(epochs):
        order = torch.randperm(n, generator=gen).to(x.device)
        for i in range(0, n, bs):
            idx = order[i:i + bs]
            xb = x[idx] if gather is None else gather(x, idx)
            with torch.no_grad():
                zt = teacher(xb)
            loss = kd_loss(student(xb), zt, y[idx] if gather is None else gather(y, idx), T,
                           alpha)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        yield val_accuracy(student, xv, yv)


def plain_kd_cached_epochs(student, x, y, xv, yv, *, teacher, epochs, bs, lr, seed, T, alpha,
                           gather=None, **_):
    """(iii) as a generator; the teacher's logits are computed in the first ``next`` (timed,
    as mentor's fit computes them inside the timed call)."""
    with torch.no_grad():
        zt_all = teacher(x)
    yield from kd_epochs(student, x, y, xv, yv, zt_all, epochs=epochs, bs=bs, lr=lr, seed=seed,
                         T=T, alpha=alpha, gather=gather)


def _to_end(epochs_of):
    def run(*args, **kw):
        acc = float("nan")
        for acc in epochs_of(*args, **kw):
            pass
        return acc
    return run


def make_mentor(cache: str):
    def run(student, x, y, xv, yv, *, train_split, val_split, mteacher, objectives, epochs,
            bs, lr, seed, on_epoch=None, **_):
        spec = TrainSpec(epochs=epochs, batch_size=bs, lr=lr, cache_teacher=cache,
                         select="last")
        res = fit(student, train_split, val_split, objectives=objectives, spec=spec,
                  seed=seed, num_outputs=10, teacher=mteacher, on_epoch=on_epoch)
        return res.history["val_accuracy"][-1]
    return run


RUNNERS = {"i": plain_student, "ii": _to_end(plain_kd_online_epochs),
           "iii": _to_end(plain_kd_cached_epochs), "iv": make_mentor("never"),
           "v": make_mentor("always")}
PLAIN_EPOCHS = {"ii": plain_kd_online_epochs, "iii": plain_kd_cached_epochs}
PAIRS = (("ii", "iv", "online"), ("iii", "v", "cached"))  # (plain, mentor, name)


# ------------------------------------------------------------------------------- setup

def pretrain_teacher(x, y, xv, yv, *, epochs, seed, device):
    torch.manual_seed(seed + 1000)
    teacher = mlp((64,), 10, hidden=(256, 256)).to(device)
    if epochs > 0:
        plain_student(teacher, x, y, xv, yv, epochs=epochs, bs=64, lr=1e-3, seed=seed + 1000)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def fresh_student(seed, device):
    torch.manual_seed(seed)
    return mlp((64,), 10, hidden=(32,)).to(device)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=100, help="epochs per run (default 100)")
    ap.add_argument("--reps", type=int, default=7, help="timed repetitions per variant")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds before timing")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--temperature", type=float, default=4.0)
    ap.add_argument("--alpha", type=float, default=0.9)
    ap.add_argument("--teacher-init", choices=["pretrain", "random"], default="pretrain")
    ap.add_argument("--teacher-epochs", type=int, default=20)
    ap.add_argument("--val", choices=["full", "tiny"], default="full",
                    help="full: every variant evaluates the whole val split each epoch; "
                    "tiny: every variant gets a 16-row val split")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="comma list of variants to time (default all)")
    ap.add_argument("--profile", choices=["online", "cached"], default=None,
                    help="instead of the benchmark, cProfile one mentor run (iv or v) and "
                    "its plain counterpart (ii or iii), sorted by tottime")
    ap.add_argument("--profile-top", type=int, default=35)
    ap.add_argument("--plain-gather", choices=["index", "index_select"], default="index",
                    help="how the plain loops gather a batch's rows: x[idx] (default, as most "
                    "hand-written loops do) or index_select, as mentor does")
    ap.add_argument("--no-loader", dest="loader", action="store_false",
                    help="skip the DataLoader-fed case (benchmarks/loader_kd.py) run last")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (3 epochs, 2 timed "
                    "rounds, no warm-up, a 2-epoch teacher): checks the script runs and its "
                    "sanity checks hold; its timings mean nothing")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs, args.reps, args.warmup, args.teacher_epochs = 3, 2, 0, 2

    t_script = time.perf_counter()
    set_threads(args.threads)
    device = args.device

    splits = mentor.data.load("digits")
    train, val = splits.train, splits.val
    if args.val == "tiny":
        val = Split(val.x[:16], val.y[:16], val.labeled[:16])
    x, y = train.x.to(device), train.y.to(device)
    xv, yv = val.x.to(device), val.y.to(device)
    n = len(x)
    steps_per_epoch = -(-n // args.batch_size)

    t0 = time.perf_counter()
    teacher = pretrain_teacher(x, y, xv, yv, device=device, seed=args.seed,
                               epochs=args.teacher_epochs if args.teacher_init == "pretrain"
                               else 0)
    t_teacher = time.perf_counter() - t0
    t_acc = val_accuracy(teacher, xv, yv)
    teacher.eval()
    mteacher = as_teacher(teacher, splits.num_classes)
    objectives = get_method("kd").plan(temperature=args.temperature,
                                       alpha=args.alpha).objectives

    kw = dict(teacher=teacher, mteacher=mteacher, objectives=objectives, train_split=train,
              val_split=val, epochs=args.epochs, bs=args.batch_size, lr=args.lr,
              seed=args.seed, T=args.temperature, alpha=args.alpha,
              gather=index_rows if args.plain_gather == "index_select" else None)

    print(f"torch {torch.__version__}  device={device}  threads={torch.get_num_threads()}  "
          f"interop={torch.get_num_interop_threads()}  python {sys.version.split()[0]}")
    print(f"data: digits train {n} rows ({steps_per_epoch} steps/epoch of "
          f"{args.batch_size}), val {len(yv)} rows (--val {args.val}: evaluated after every "
          f"epoch by every variant)")
    if args.teacher_init == "pretrain":
        print(f"teacher: MLP 64-256-256-10, pretrained {args.teacher_epochs} epochs "
              f"({t_teacher:.1f}s), val acc {t_acc:.3f}")
    else:
        print(f"teacher: MLP 64-256-256-10, random init, val acc {t_acc:.3f}")
    print(f"student: MLP 64-32-10, fresh init (seed {args.seed}) per run; Adam lr {args.lr:g},"
          f" {args.epochs} epochs; KD T={args.temperature:g} alpha={args.alpha:g}")
    print(f"plain loops gather a batch's rows by "
          f"{'x[idx]' if args.plain_gather == 'index' else 'index_select'} "
          "(mentor: index_select)")

    def run_once(v):
        student = fresh_student(args.seed, device)
        gc.collect()
        sync(device)
        t = time.perf_counter()
        acc = RUNNERS[v](student, x, y, xv, yv, **kw)
        sync(device)
        return time.perf_counter() - t, acc, student

    def lockstep(plain_v, mentor_v, plain_first):
        """mentor's fit and the plain loop, one epoch each in turn (the plain loop's epochs
        run from mentor's epoch callback); each side's time is summed over its own stretches,
        so both are timed over the same seconds of the machine."""
        s_plain, s_mentor = fresh_student(args.seed, device), fresh_student(args.seed, device)
        epochs = PLAIN_EPOCHS[plain_v](s_plain, x, y, xv, yv, **kw)
        spent = {"plain": 0.0, "mentor": 0.0, "acc": float("nan")}

        def plain_epoch():
            sync(device)
            t = time.perf_counter()
            spent["acc"] = next(epochs, spent["acc"])
            sync(device)
            spent["plain"] += time.perf_counter() - t

        mark = [0.0]

        def on_epoch(_epoch, _metrics):
            sync(device)
            spent["mentor"] += time.perf_counter() - mark[0]
            plain_epoch()
            mark[0] = time.perf_counter()

        gc.collect()
        if plain_first:  # the plain loop's epoch k runs before mentor's epoch k
            plain_epoch()
        mark[0] = time.perf_counter()
        acc_m = RUNNERS[mentor_v](s_mentor, x, y, xv, yv, **kw, on_epoch=on_epoch)
        sync(device)
        spent["mentor"] += time.perf_counter() - mark[0]
        return spent["plain"], spent["mentor"], spent["acc"], acc_m, s_plain, s_mentor

    if args.profile:
        return profile(args, run_once)

    variants = [v for v in args.variants.split(",") if v]
    pairs = [pr for pr in PAIRS if pr[0] in variants and pr[1] in variants]
    alone = [v for v in variants if not any(v in pr[:2] for pr in pairs)]
    print(f"warm-up rounds: {args.warmup}; timed rounds: {args.reps} ((i) alone, then each "
          "mentor run in lockstep with its plain loop, one epoch each in turn)", flush=True)
    for r in range(args.warmup):
        for v in alone:
            run_once(v)
        for plain_v, mentor_v, _ in pairs:
            lockstep(plain_v, mentor_v, plain_first=bool(r % 2))

    times = {v: [] for v in variants}
    accs, models = {}, {}
    t_all = time.perf_counter()
    for r in range(args.reps):
        for v in alone:
            dt, accs[v], models[v] = run_once(v)
            times[v].append(dt)
        # odd rounds run the pairs in reverse order and the plain loop's epoch first: a
        # pair's place in the round and the side that goes first in a turn alternate
        for plain_v, mentor_v, _ in (pairs if r % 2 == 0 else pairs[::-1]):
            (t_p, t_m, accs[plain_v], accs[mentor_v], models[plain_v],
             models[mentor_v]) = lockstep(plain_v, mentor_v, plain_first=bool(r % 2))
            times[plain_v].append(t_p)
            times[mentor_v].append(t_m)
        print(f"  round {r + 1}/{args.reps}: " +
              "  ".join(f"{v}={times[v][-1]:.3f}s" for v in variants), flush=True)
    print(f"timed rounds took {time.perf_counter() - t_all:.1f}s")

    med = {v: statistics.median(ts) for v, ts in times.items()}
    total_steps = steps_per_epoch * args.epochs
    print()
    print(f"{'variant':40s} {'median s':>9s} {'min s':>8s} {'max s':>8s} {'us/step':>8s} "
          f"{'final val acc':>13s}")
    for v in variants:
        print(f"{LABELS[v]:40s} {med[v]:9.3f} {min(times[v]):8.3f} {max(times[v]):8.3f} "
              f"{1e6 * med[v] / total_steps:8.1f} {accs[v]:13.4f}")

    # Sanity: mentor and the plain loop do the same work (same init, same data order, same
    # loss) -> the same accuracy and bit-identical weights; anything else fails the script.
    print()
    failed = []
    for plain_v, mentor_v, name in pairs:
        pairs_w = list(zip(models[plain_v].parameters(), models[mentor_v].parameters(),
                           strict=True))
        diff = max((a - b).abs().max().item() for a, b in pairs_w)
        same = all(torch.equal(a, b) for a, b in pairs_w)
        print(f"sanity {name:6s}: final val acc plain {accs[plain_v]:.4f}  mentor "
              f"{accs[mentor_v]:.4f}  (|diff| {abs(accs[plain_v] - accs[mentor_v]):.4f});"
              f" max |weight diff| {diff:.2e} ({'bit-identical' if same else 'DIFFERENT'})")
        # accuracies are fractions of the val rows, computed in float32 on one side
        if not same or abs(accs[plain_v] - accs[mentor_v]) > 0.5 / len(yv):
            failed.append(f"{name}: ({mentor_v}) and ({plain_v}) end with different "
                          f"weights (max |diff| {diff:.2e}) or val accuracy "
                          f"({accs[mentor_v]:.4f} vs {accs[plain_v]:.4f})")
    if failed:
        print("SANITY FAILED: " + "; ".join(failed) + "; expected bit-identical weights "
              "(mentor and the plain loop do the same work)", file=sys.stderr)
        return 1

    def ratio(a, b):
        return med[a] / med[b] if a in med and b in med else float("nan")

    def paired(a, b):  # the median of the rounds' ratios (each round's pair ran in lockstep)
        if a not in times or b not in times:
            return float("nan")
        return statistics.median(m / p for m, p in zip(times[a], times[b]))

    print()
    for a, b, what in (("ii", "i", "online KD cost over student alone"),
                       ("iii", "i", "cached KD cost over student alone")):
        print(f"({a})/({b}) = {ratio(a, b):.3f}   {what} (ratio of the medians)")
    for plain_v, mentor_v, name in pairs:
        over = 1e6 * (med[mentor_v] - med[plain_v]) / total_steps
        print(f"({mentor_v})/({plain_v}) = {paired(mentor_v, plain_v):.3f}   mentor {name} KD /"
              f" plain {name} KD, median of the rounds' lockstep ratios (mentor overhead "
              f"{over:+.1f} us/step)")
    mins = {v: min(ts) for v, ts in times.items()}
    for plain_v, mentor_v, name in pairs:
        print(f"RESULT min_{name}_kd {mins[mentor_v] / mins[plain_v]:.3f}")
    for v in variants:
        print(f"RESULT median_s_{v} {med[v]:.3f}")
        print(f"RESULT us_per_step_{v} {1e6 * med[v] / total_steps:.1f}")
    for a, b in (("ii", "i"), ("iii", "i")):
        if a in med and b in med:
            print(f"RESULT ratio_{a}_{b} {ratio(a, b):.2f}")
    for plain_v, mentor_v, name in pairs:
        print(f"RESULT overhead_us_{name} "
              f"{1e6 * (med[mentor_v] - med[plain_v]) / total_steps:.1f}")
    print(f"RESULT script_s {time.perf_counter() - t_script:.1f}")
    for plain_v, mentor_v, name in pairs:
        print(f"RESULT median_ratio_{name}_kd {ratio(mentor_v, plain_v):.3f}")
    for plain_v, mentor_v, name in pairs:
        print(f"RATIO {name}_kd {paired(mentor_v, plain_v):.3f}")
    if args.loader and device == "cpu":  # DataLoader-fed: an image dataset, 2 workers, a CNN
        print("\nDataLoader-fed KD (benchmarks/loader_kd.py):", flush=True)
        return loader_kd.main(["--threads", str(args.threads), "--reps", str(args.reps),
                               *(["--quick"] if args.quick else [])])
    return 0


def profile(args, run_once) -> int:
    import cProfile
    import pstats

    mentor_v, plain_v = ("iv", "ii") if args.profile == "online" else ("v", "iii")
    for _ in range(max(args.warmup, 1)):
        run_once(mentor_v)
        run_once(plain_v)
    for v in (plain_v, mentor_v):
        pr = cProfile.Profile()
        pr.enable()
        dt, acc, _ = run_once(v)
        pr.disable()
        print(f"\n===== cProfile {LABELS[v]}: {dt:.3f}s under the profiler, val acc {acc:.4f}")
        st = pstats.Stats(pr, stream=sys.stdout)
        st.strip_dirs().sort_stats("tottime").print_stats(args.profile_top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
