"""Start a script on 2 gloo processes with torchrun (Accelerate on CPU) for the scale-out
tests; the script writes its results into ``out``."""

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"


def torchrun_two_ranks(script: str, out: Path, timeout: float = 240) -> None:
    env = {**os.environ, "MENTOR_CPU": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--standalone", str(HERE / script), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]


def rank_weights(out: Path, rank: int, name: str) -> dict:
    """The weights rank ``rank`` wrote for setting ``name`` (``rank{r}-{name}.safetensors``)."""
    from safetensors.torch import load_file
    return load_file(str(out / f"rank{rank}-{name}.safetensors"))


def rank_info(out: Path, rank: int, name: str) -> dict:
    """What rank ``rank`` recorded for setting ``name`` (``rank{r}-{name}.json``)."""
    return json.loads((out / f"rank{rank}-{name}.json").read_text())
