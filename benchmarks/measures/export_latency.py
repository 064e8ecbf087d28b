"""README's "## Export" figures, on a fresh `mentor run` (built-in recipe ``default``):

- ``latency``: ``mentor bench --latency RUN_DIR`` with one torch thread
  (:func:`mentor.commands.latency.bench_run`): the teacher's latency at batch 1 and 256, and the MLP
  students' (the few-labels and compress settings; medians over them) with their speed-ups.
  Machine timings.
- ``export-parity``: ``mentor export RUN_DIR --format F`` for ONNX, TorchScript and
  safetensors (:func:`mentor.commands.export.export_student`) without --setting/--method/--seed (the
  student chosen on validation accuracy), and ONNX with ``--setting compress`` (the MLP student
  chosen the same way within that setting): the maximum absolute logit difference each export
  measured.

Both rerun the same run when they run in one process (``docs_numbers.py run latency
export-parity``); the quick form trains the recipe for 1-2 epochs and one seed.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from . import measurement

_RUNS: dict[bool, tuple] = {}  # quick -> (TemporaryDirectory, run folder), one per process


def default_run(quick: bool) -> Path:
    """A finished `mentor run` of the built-in recipe ``default`` (quick: 2 teacher epochs,
    1 student epoch, seed 0), in a temporary folder kept for this process."""
    if quick not in _RUNS:
        from mentor.recipe import builtin_recipes, read_yaml
        from mentor.commands.run import run_recipe
        raw = read_yaml(builtin_recipes()["default"])
        if quick:
            raw["teacher"]["train"]["epochs"] = 2
            raw["train"] = {**raw["train"], "epochs": 1, "seeds": [0]}
            for s in raw["settings"]:
                if "train" in s:
                    s["train"]["epochs"] = 1
        tmp = tempfile.TemporaryDirectory(prefix="measure-default-run-")
        _RUNS[quick] = (tmp, run_recipe(raw, tmp.name, progress=False))
    return _RUNS[quick][1]


def ms(seconds: float) -> str:
    """A latency in milliseconds with two significant figures: ``'0.030 ms'``, ``'0.50 ms'``."""
    v = 1e3 * seconds
    digits = max(0, 1 - int(f"{v:e}".split("e")[1]))
    return f"{v:.{digits}f} ms"


def sci(x: float) -> str:
    """A small difference as the README writes it: ``'2.9e-6'``, ``'0'``."""
    if x == 0:
        return "0"
    mant, exp = f"{x:.1e}".split("e")
    return f"{mant}e{int(exp)}"


def architecture(meta: dict) -> str:
    arch = meta["mentor.model"]
    shape, classes = meta["mentor.input_shape"], meta["mentor.num_classes"]
    features = 1
    for n in shape:
        features *= int(n)
    if arch.get("model") == "mlp":
        return "MLP " + "-".join(str(n) for n in (features, *arch.get("hidden", ()), classes))
    if arch.get("model") == "cnn":
        return (f"CNN, channels {'-'.join(map(str, arch.get('channels', ())))}, hidden "
                f"{'-'.join(map(str, arch.get('hidden', ())))}")
    return str(arch.get("model"))


def latency(quick: bool) -> dict[str, str]:
    from mentor.commands.latency import bench_run
    _, data = bench_run(default_run(quick))
    (teacher,) = data["teachers"]
    mlp = [s for s in data["students"] if s["setting"] in ("few-labels", "compress")]
    params = {s["params"] for s in mlp}
    if len(params) != 1:
        raise RuntimeError(f"the MLP students have {sorted(params)} parameters; expected one "
                           "architecture")

    def med(key, b):
        return statistics.median(s["batches"][b][key] for s in mlp)
    return {"threads": str(data["threads"]), "students.n": str(len(mlp)),
            "students.params": f"{params.pop():,}",
            "teacher.b1": ms(teacher["batches"]["1"]["latency_s"]),
            "teacher.b256": ms(teacher["batches"]["256"]["latency_s"]),
            "students.b1": ms(med("latency_s", "1")),
            "students.b256": ms(med("latency_s", "256")),
            "speedup.b1": f"{med('speedup', '1'):.1f}×",
            "speedup.b256": f"{med('speedup', '256'):.1f}×"}


def parity(quick: bool) -> dict[str, str]:
    from mentor.commands.export import export_student
    from mentor.runs.read import load_model
    run = default_run(quick)
    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="measure-export-") as d:
        for fmt in ("onnx", "torchscript", "safetensors"):
            _, card = export_student(run, fmt, Path(d) / fmt)
            out[fmt] = sci(card["parity"]["max_abs_diff"])
            s = card["student"]
            chosen = f"{s['setting']} / {s['method']}, seed {s['seed']}"
            if out.setdefault("chosen", chosen) != chosen:
                raise RuntimeError(f"the formats exported different students: {chosen} vs "
                                   f"{out['chosen']}")
        _, meta = load_model(run / card["student"]["checkpoint"], "student")
        out["chosen.arch"] = architecture(meta)
        _, card = export_student(run, "onnx", Path(d) / "mlp", setting="compress")
        s = card["student"]
        out["compress.onnx"] = sci(card["parity"]["max_abs_diff"])
        out["compress.chosen"] = f"{s['method']}, seed {s['seed']}"
        _, meta = load_model(run / s["checkpoint"], "student")
        out["compress.arch"] = architecture(meta)
    return out


measurement("latency", about="`mentor bench --latency` on a fresh `mentor run` (1 thread): "
            "teacher and MLP-student latency at batch 1 and 256, speed-ups (machine timings)",
            ci="quick", minutes=4)(latency)
measurement("export-parity", about="`mentor export` (ONNX, TorchScript, safetensors) of the "
            "student `mentor run` chooses on validation, and ONNX of the compress setting's MLP: "
            "max |logit difference| to the PyTorch student", ci="quick", minutes=4)(parity)
