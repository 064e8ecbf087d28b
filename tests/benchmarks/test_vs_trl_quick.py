"""benchmarks/vs_trl.py in its ``--quick`` form (a fresh process, one torch thread): mentor's
off-policy JSD distillation against TRL's GKDTrainer on the same GPT-2 models, data, batches
and optimizer. Checked: the losses are equal (mentor's jsd × β(1-β) is TRL's
``generalized_jsd_loss``, float64 to 1e-8, and the first real training step's loss of both
paths), both students end with the same validation JSD, the on-policy comparison (TRL
``lmbda=1``) samples with the same effective generation settings on both sides, and the
machine-readable lines are printed. The timings and memory of a quick run mean nothing and
are not looked at.
Skipped without trl (``pip install -e .[bench]``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("datasets")

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def _value(name: str, out: str) -> float:
    m = re.search(rf"^{name} ({NUMBER})\s*$", out, flags=re.M)
    assert m, (name, out[-3000:])
    return float(m.group(1))


def test_vs_trl_quick_losses_agree_and_results_print():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "vs_trl.py"), "--quick"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, (out[-3000:], proc.stderr[-3000:])
    assert "SANITY FAILED" not in out + proc.stderr
    assert re.search(r"^LOSS_EQUAL mentor jsd x beta\(1-beta\) == TRL generalized_jsd_loss",
                     out, flags=re.M), out[-3000:]
    assert _value("RESULT vs_trl_loss_rel_diff_float64", out) <= 1e-8
    assert _value("RESULT vs_trl_loss_rel_diff_float32", out) <= 1e-3
    vm, vt = _value("RESULT vs_trl_val_jsd_mentor", out), _value("RESULT vs_trl_val_jsd_trl", out)
    assert abs(vm - vt) <= 1e-2 * vt, (vm, vt)  # same batches, same Adam: the same student
    for line in ("RATIO vs_trl_step", "RATIO vs_trl_memory", "RATIO vs_trl_on_policy_step"):
        _value(line, out)
    # on-policy: both sides sample the full distribution with the KV cache and no eos, so
    # each generates exactly N tokens a step (the script also checks every call's length)
    for side in ("mentor", "trl"):
        assert re.search(rf"^  {side} generate\(\) settings \(effective\): do_sample=True, "
                         r"temperature=1.0, top_k=0, top_p=1.0, use_cache=True, "
                         r"max_new_tokens=16, eos_token_id=None", out, flags=re.M), out[-3000:]
        assert _value(f"RESULT vs_trl_on_policy_tokens_per_s_{side}_N16", out) > 0
