"""Rerun the measurements behind the figures in README.md and docs/, and publish them.

    python benchmarks/docs_numbers.py list                 # measurements, cost, CI mode
    python benchmarks/docs_numbers.py run NAME [NAME ...]  # rerun in full, update docs/numbers.json
    python benchmarks/docs_numbers.py run --all            # every measurement (hours, 1 thread)
    python benchmarks/docs_numbers.py run NAME --quick     # the reduced form CI runs (prints)
    python benchmarks/docs_numbers.py render               # docs/templates -> README.md, docs/
    python benchmarks/docs_numbers.py check                # exit 1 if a published figure differs
    python benchmarks/docs_numbers.py quote T OLD NEW      # replace the one OLD in template T

A full run replaces the measurement's entry in ``docs/numbers.json`` (values, date, seconds);
``render`` then writes the docs. Measurements run with one torch thread, as the docs say.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from benchmarks.measures import registry  # noqa: E402
from benchmarks.measures._docs import (NUMBERS, TEMPLATES, DocsError,  # noqa: E402
                                       expected_outputs, first_difference, load_numbers,
                                       numbers_lock, write_json_atomic)


def _threads() -> None:
    import torch
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass


def cmd_list() -> int:
    numbers = load_numbers()
    for name, m in registry().items():
        n = len(numbers.get(name, {}).get("values", {}))
        print(f"{name:<22} ci={m.ci:<5} ~{m.minutes:g} min  {n:>3} figures  {m.about}")
    return 0


def cmd_run(names: list[str], run_all: bool, quick: bool) -> int:
    reg = registry()
    if run_all:
        names = list(reg)
    unknown = [n for n in names if n not in reg]
    if unknown or not names:
        print(f"unknown measurement {unknown[0]!r}; expected one of {', '.join(reg)}"
              if unknown else "name a measurement or give --all", file=sys.stderr)
        return 2
    _threads()
    status = 0
    for name in names:
        t0 = time.time()
        values = reg[name](quick)
        secs = time.time() - t0
        for k, v in sorted(values.items()):
            print(f"{name}.{k} = {v}")
        if quick:
            have = set(load_numbers().get(name, {}).get("values", {}))
            if have and have != set(values):
                print(f"{name}: the quick form gives keys {sorted(set(values) ^ have)} that "
                      "differ from docs/numbers.json", file=sys.stderr)
                status = 1
            continue
        with numbers_lock():
            numbers = load_numbers()
            numbers[name] = {"values": values, "seconds": round(secs, 1),
                             "measured": datetime.date.today().isoformat(),
                             "machine": machine(), "command": reg[name].command}
            write_json_atomic(NUMBERS, numbers)
        print(f"{name}: {len(values)} figures in {secs:.0f} s -> {NUMBERS.relative_to(ROOT)}")
    return status


def machine() -> str:
    """The CPU a measurement ran on and the kernels torch picked for it (float results of
    some models, e.g. the GRUs of `tokens`, differ between CPUs)."""
    import platform

    import torch
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            name = next((line.split(":", 1)[1].strip() for line in fh
                         if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{name}, torch {torch.__version__} {torch.backends.cpu.get_cpu_capability()}"


def cmd_render(check: bool) -> int:
    try:
        want = expected_outputs(registry(), load_numbers())
    except DocsError as e:
        print(e, file=sys.stderr)
        return 1
    stale = []
    for path, text in want.items():
        have = path.read_text(encoding="utf-8") if path.exists() else ""
        if have != text:
            stale.append(path)
            if check:
                print(f"{path.relative_to(ROOT)}: {first_difference(have, text)}",
                      file=sys.stderr)
            else:
                path.write_text(text, encoding="utf-8")
                print(f"wrote {path.relative_to(ROOT)}")
    if check and stale:
        print("the published docs differ from docs/templates + docs/numbers.json; edit the "
              "template and run: python benchmarks/docs_numbers.py render", file=sys.stderr)
        return 1
    return 0


def cmd_quote(template: str, old: str, new: str) -> int:
    """Replace the single occurrence of ``old`` in ``docs/templates/<template>`` by ``new``
    (under the numbers lock, so several editors never overwrite each other's changes)."""
    path = TEMPLATES / template
    with numbers_lock():
        text = path.read_text(encoding="utf-8")
        n = text.count(old)
        if n != 1:
            print(f"{path.relative_to(ROOT)} has {n} occurrences of {old[:80]!r}; expected "
                  "exactly one (give more context)", file=sys.stderr)
            return 1
        path.write_text(text.replace(old, new), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    run = sub.add_parser("run")
    run.add_argument("names", nargs="*")
    run.add_argument("--all", action="store_true")
    run.add_argument("--quick", action="store_true", help="the reduced form (nothing written)")
    sub.add_parser("render")
    sub.add_parser("check")
    quote = sub.add_parser("quote")
    quote.add_argument("template", help="file name in docs/templates, e.g. methods.md")
    quote.add_argument("old")
    quote.add_argument("new")
    args = ap.parse_args(argv)
    if args.cmd == "list":
        return cmd_list()
    if args.cmd == "run":
        return cmd_run(args.names, args.all, args.quick)
    if args.cmd == "quote":
        return cmd_quote(args.template, args.old, args.new)
    return cmd_render(check=args.cmd == "check")


if __name__ == "__main__":
    sys.exit(main())
