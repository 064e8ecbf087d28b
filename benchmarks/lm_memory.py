"""Peak memory of a language-model token loss: full logits vs chunked head (CPU).

Setup (defaults): batch 1, sequence 512, hidden D=256, vocabulary 50_000, float32, forward KL,
temperature 1. The student is ``(hidden, head)`` with an ``nn.Linear(D, V)`` head (weights and
bias trained), the teacher ``(teacher_hidden, teacher_head)`` with its own head.

  naive    logits = head(hidden) for student and teacher (teacher under no_grad), then
           ``token_divergence`` in one pass, then backward.
  chunked  ``chunked_head_divergence(hidden, head, (teacher_hidden, teacher_head),
           chunk_size=32)``, then backward: the B×L×V logits never exist.

Each variant runs in a FRESH subprocess (this script with ``--child VARIANT``), twice: with
glibc's default malloc and with ``MALLOC_MMAP_THRESHOLD_=65536`` (every block >= 64 KiB is
mmapped and returned at free, so the RSS peak is the peak of live tensors; by default glibc
raises its mmap threshold after the first frees and keeps later multi-MiB chunk buffers in
the heap, so the RSS then also counts allocator retention). The RATIO uses the second. Each
child imports
torch, builds the inputs in place (no temporaries), runs a tiny warm-up call of the same
variant (lazy initialisation of autograd / checkpoint), then reads ``ru_maxrss`` as the
baseline, runs the variant once and reports ``ru_maxrss - baseline``: only the loss's extra
memory (logits, softmax intermediates, gradients including the head's weight gradient) is
compared. The parent also checks that both variants give the same loss and gradients (max
absolute difference at most 1e-4; otherwise the script fails with exit 1).

The last two lines are machine-readable:

    RATIO lm_memory_glibc_default <the same ratio with glibc's default malloc>
    RATIO lm_memory <chunked extra peak / naive extra peak>     (target <= 0.25)

Run:   PYTHONPATH=src python benchmarks/lm_memory.py          (~10-30 s on 1 thread)
       PYTHONPATH=src python benchmarks/lm_memory.py --quick  (V 8,000, L 128: a few seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

VARIANTS = ("naive", "chunked")
# glibc malloc settings of the child processes (see the table's note)
ALLOCATORS = {"default": {}, "mmap": {"MALLOC_MMAP_THRESHOLD_": "65536"}}


def _rss_mib() -> float:
    """Current resident set size (MiB), from /proc (Linux)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(args) -> int:
    import resource

    import torch

    torch.set_num_threads(1)
    from mentor.losses.tokens import chunked_head_divergence, token_divergence

    def inputs(b, n, d, v, seed):
        g = torch.Generator().manual_seed(seed)
        h = torch.empty(b, n, d).normal_(generator=g).requires_grad_()
        th = torch.empty(b, n, d).normal_(generator=g)
        head, thead = torch.nn.Linear(d, v), torch.nn.Linear(d, v)
        with torch.no_grad():
            for p in (*head.parameters(), *thead.parameters()):
                p.normal_(generator=g).mul_(d ** -0.5)
        thead.requires_grad_(False)
        return h, th, head, thead

    def run(variant, h, th, head, thead):
        if variant == "naive":
            zs = head(h)
            with torch.no_grad():
                zt = thead(th)
            loss = token_divergence(zs, zt, kind="forward_kl")
        else:
            loss = chunked_head_divergence(h, head, (th, thead), kind="forward_kl",
                                           chunk_size=args.chunk_size)
        loss.backward()
        return loss

    run(args.child, *inputs(1, 8, 16, 64, 1))  # warm-up: lazy init, tiny shapes
    h, th, head, thead = inputs(args.batch, args.seq, args.hidden, args.vocab, args.seed)
    base_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    base_now = _rss_mib()
    loss = run(args.child, h, th, head, thead)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    torch.save({"loss": loss.detach(), "grad_hidden": h.grad, "grad_bias": head.bias.grad,
                "grad_weight_norm": head.weight.grad.norm(), "grad_weight_row0":
                head.weight.grad[:64].clone()}, args.out)
    print(json.dumps({"extra_mib": peak - base_peak, "baseline_peak_mib": base_peak,
                      "baseline_rss_mib": base_now, "peak_mib": peak}))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab", type=int, default=50_000)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--chunk-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true",
                    help="small shapes (vocabulary 8,000, sequence 128): a smoke run")
    ap.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    if args.quick:
        args.vocab, args.seq = 8_000, 128

    import torch

    shared = [f"--vocab={args.vocab}", f"--seq={args.seq}", f"--batch={args.batch}",
              f"--hidden={args.hidden}", f"--chunk-size={args.chunk_size}",
              f"--seed={args.seed}"]
    base_env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    base_env.pop("MALLOC_MMAP_THRESHOLD_", None)
    res, saved = {}, {}
    print(f"B={args.batch} L={args.seq} D={args.hidden} V={args.vocab} float32 forward_kl, "
          f"chunk_size={args.chunk_size}; one fresh process per variant and allocator setting",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for alloc, extra_env in ALLOCATORS.items():
            for v in VARIANTS:
                out = os.path.join(tmp, f"{v}.pt")
                proc = subprocess.run([sys.executable, __file__, f"--child={v}", f"--out={out}",
                                       *shared], env={**base_env, **extra_env},
                                      capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    print(proc.stdout + proc.stderr, file=sys.stderr)
                    return 1
                res[alloc, v] = json.loads(proc.stdout.strip().splitlines()[-1])
                if alloc == "mmap":
                    saved[v] = torch.load(out)

    logits_mib = args.batch * args.seq * args.vocab * 4 / 2**20
    wgrad_mib = args.vocab * args.hidden * 4 / 2**20
    print(f"(one B×L×V float32 tensor = {logits_mib:.1f} MiB; the head's weight gradient = "
          f"{wgrad_mib:.1f} MiB, needed by both)")
    print(f"{'variant':10s} {'extra peak MiB, glibc default':>30s} "
          f"{'extra peak MiB, mmap >= 64 KiB':>31s}")
    for v in VARIANTS:
        d, m = res["default", v]["extra_mib"], res["mmap", v]["extra_mib"]
        print(f"{v:10s} {d:30.1f} {m:31.1f}")
    print("(glibc default: freed multi-MiB chunk buffers stay in the heap once glibc raises its "
          "dynamic mmap threshold, so RSS also counts allocator retention; with "
          "MALLOC_MMAP_THRESHOLD_=65536 every large tensor is returned at free and the RSS "
          "peak is the peak of live tensors -- the RATIO uses this column)")
    n, c = saved["naive"], saved["chunked"]
    diffs = {
        "loss": (n["loss"] - c["loss"]).abs().item(),
        "grad hidden": (n["grad_hidden"] - c["grad_hidden"]).abs().max().item(),
        "grad head bias": (n["grad_bias"] - c["grad_bias"]).abs().max().item(),
        "grad head weight (64 rows)": (n["grad_weight_row0"]
                                       - c["grad_weight_row0"]).abs().max().item(),
        "|grad head weight| norm": (n["grad_weight_norm"] - c["grad_weight_norm"]).abs().item(),
    }
    print(f"loss naive {n['loss'].item():.6f} chunked {c['loss'].item():.6f}; max |diff|: "
          + ", ".join(f"{k} {val:.2e}" for k, val in diffs.items()))
    if max(diffs.values()) > 1e-4:
        print("SANITY FAILED: the naive and chunked variants disagree (max |diff| "
              f"{max(diffs.values()):.2e}); expected the same loss and gradients within 1e-4",
              file=sys.stderr)
        return 1
    def ratio(alloc):
        return res[alloc, "chunked"]["extra_mib"] / res[alloc, "naive"]["extra_mib"]

    print(f"RATIO lm_memory_glibc_default {ratio('default'):.3f}")
    print(f"RATIO lm_memory {ratio('mmap'):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
