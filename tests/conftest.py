"""Test-wide settings: one torch thread (the models are tiny; on 2 shared cores extra threads
only contend), and the same for subprocesses the tests start."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
