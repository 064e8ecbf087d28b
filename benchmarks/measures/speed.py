"""README's "## Speed": ``benchmarks/kd_overhead.py`` (mentor's training loop against lean
plain-PyTorch loops on digits), ``benchmarks/image_folder.py`` (KD from a folder of PNG files
against a plain DataLoader + Pillow loop) and ``benchmarks/label_throughput.py`` (the label
store against the raw teacher loop, a student epoch from the store, bytes per row of each
storage kind).

Each reruns the script (one torch thread, a fresh process) and reads its ``RESULT`` /
``RATIO`` lines; the scripts fail (exit 1, so the measurement fails) when their sanity checks
do not hold: bit-identical weights of mentor and the plain loop, and a decoded store equal to
the teacher's logits. Every figure except the bytes per row is a machine timing: it moves
with the load on the machine, so CI checks the quick form (``--quick``: tiny sizes) by name.
"""

from __future__ import annotations

import time

from . import measurement
from ._run import result_lines, run_script


def wall(seconds: float) -> str:
    """A script's wall time as the docs write it: ``'48 s'``, ``'2 min'``."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _script(path: str, quick: bool, *args: str) -> tuple[dict[str, str], float]:
    t0 = time.perf_counter()
    out = run_script(path, *args, *(["--quick"] if quick else []))
    secs = time.perf_counter() - t0
    values = result_lines(out)
    values.update(result_lines(out, "RATIO"))
    return values, secs


def kd_overhead(quick: bool) -> dict[str, str]:
    r, secs = _script("benchmarks/kd_overhead.py", quick)
    out = {f"median.{v}": r[f"median_s_{v}"] for v in ("i", "ii", "iii", "iv", "v")}
    out.update({
        "ratio.ii_i": f"{r['ratio_ii_i']}", "ratio.iii_i": f"{r['ratio_iii_i']}",
        "online": f"{r['online_kd']} ×", "cached": f"{r['cached_kd']} ×",
        "median_ratio.online": r["median_ratio_online_kd"],
        "median_ratio.cached": r["median_ratio_cached_kd"],
        "median_ratio.loader": r["median_ratio_loader_kd"],
        "min.online": r["min_online_kd"], "min.cached": r["min_cached_kd"],
        "overhead.online": f"{float(r['overhead_us_online']):+.0f} µs",
        "overhead.cached": f"{float(r['overhead_us_cached']):+.0f} µs",
        "step.online": f"{float(r['us_per_step_ii']):.0f} µs",
        "step.cached": f"{float(r['us_per_step_iii']):.0f} µs",
        "loader": f"{r['loader_kd']} ×", "loader.min": r["min_loader_kd"],
        "loader.plain": f"{r['median_s_p']} s", "loader.mentor": f"{r['median_s_m']} s",
        "wall": wall(secs),
    })
    return out


def label_throughput(quick: bool) -> dict[str, str]:
    r, secs = _script("benchmarks/label_throughput.py", quick)
    lt, se = float(r["label_throughput"]), float(r["store_epoch"])
    return {
        "label_throughput": r["label_throughput"], "store_epoch": r["store_epoch"],
        "label_throughput.target": "meets" if lt >= 0.9 else "misses",
        "store_epoch.target": "meets" if se <= 1.10 else "misses",
        "label_throughput.min": r["label_throughput_min"],
        "label_throughput.cpu": r["label_throughput_cpu"],
        "store_epoch.min": r["store_epoch_min"],
        **{f"bytes.{k}": f"{r[f'bytes_per_row_{k}']} B"
           for k in ("float32", "float16", "topk", "hard")},
        "vs_float32.float16": f"{r['vs_float32_float16']} ×",
        "vs_float32.topk": f"{r['vs_float32_topk']} ×",
        "wall": wall(secs),
    }


def kd_overhead_same_gather(quick: bool) -> dict[str, str]:
    """The lockstep ratios with the plain loops gathering rows by ``index_select``, as mentor
    does: what is left is mentor's own per-step work."""
    r, secs = _script("benchmarks/kd_overhead.py", quick, "--plain-gather", "index_select",
                      "--no-loader")
    return {"online": f"{r['online_kd']} ×", "cached": f"{r['cached_kd']} ×",
            "overhead.online": f"{float(r['overhead_us_online']):+.0f} µs",
            "overhead.cached": f"{float(r['overhead_us_cached']):+.0f} µs", "wall": wall(secs)}


measurement("kd-overhead", about="`benchmarks/kd_overhead.py` (digits, 100 epochs, medians of "
            "7 lockstep rounds, 1 thread): plain loops vs mentor, seconds, ratios, overhead "
            "per step; the DataLoader-fed case (3x32x32 images, 2 workers, CNN); wall time "
            "(machine timings)", ci="quick", minutes=2)(kd_overhead)
def stream_memory(quick: bool) -> dict[str, str]:
    r, secs = _script("benchmarks/stream_memory.py", quick)
    return {"ratio": r["stream_rss"], "rss_1x": f"{r['rss_mib_1x']} MiB",
            "rss_10x": f"{r['rss_mib_10x']} MiB", "data_10x": f"{r['data_mib_10x']} MiB",
            "target": "meets" if float(r["stream_rss"]) <= 1.2 else "misses", "wall": wall(secs)}


def stream_table(quick: bool) -> dict[str, str]:
    r, secs = _script("benchmarks/stream_memory.py", quick, "--source", "table")
    return {"ratio": r["stream_table_rss"], "rss_1x": f"{r['rss_mib_1x']} MiB",
            "rss_10x": f"{r['rss_mib_10x']} MiB", "data_10x": f"{r['data_mib_10x']} MiB",
            "target": "meets" if float(r["stream_table_rss"]) <= 1.2 else "misses",
            "wall": wall(secs)}


def image_folder(quick: bool) -> dict[str, str]:
    r, secs = _script("benchmarks/image_folder.py", quick)
    return {"ratio": f"{r['image_folder']} ×", "median_ratio": r["median_ratio_image_folder"],
            "plain": f"{float(r['images_per_s_plain']):,.0f}",
            "mentor": f"{float(r['images_per_s_mentor']):,.0f}",
            "images": f"{int(r['images']):,}", "rounds": r["rounds"],
            "setup": f"{float(r['setup_s_mentor']):.1f} s",
            "target": "meets" if float(r["image_folder"]) >= 0.95 else "misses",
            "wall": wall(secs)}


measurement("kd-overhead-same-gather", about="`benchmarks/kd_overhead.py --plain-gather "
            "index_select --no-loader`: the lockstep ratios when the plain loops gather rows "
            "as mentor does (machine timings)", ci="quick", minutes=2)(kd_overhead_same_gather)
measurement("stream-memory", about="`benchmarks/stream_memory.py` (KD from a file of 3x32x32 "
            "images read row by row, 20,000 and 200,000 rows): peak resident memory of each, "
            "their ratio, wall time", ci="quick", minutes=1)(stream_memory)
measurement("stream-table", about="`benchmarks/stream_memory.py --source table` (KD from a "
            "Parquet table of 768-float rows streamed by mentor, data.stream, 20,000 and "
            "200,000 rows): peak resident memory of each, their ratio, wall time", ci="quick",
            minutes=1)(stream_table)
measurement("image-folder", about="`benchmarks/image_folder.py` (KD epochs over 20,000 "
            "generated 32x32 PNGs, 2 DataLoader workers, 8 rounds of an epoch per side in "
            "ABBA order, 1 thread): images/s of mentor and of a plain DataLoader + Pillow "
            "loop, their ratio, mentor's verify + statistics setup, wall time (machine "
            "timings)", ci="quick", minutes=5)(image_folder)
measurement("label-throughput", about="`benchmarks/label_throughput.py` (synthetic 100-class "
            "teacher, 32,768 rows, 1 thread): store vs raw labeling, store epoch vs plain, "
            "bytes per row, wall time (machine timings but the bytes)", ci="quick",
            minutes=2)(label_throughput)
