"""Compress my model: distill a large PyTorch classifier you already have into a small one.

Your teacher is any trained ``torch.nn.Module`` (here a 64-512-512-10 MLP trained on the
digits images with a plain PyTorch loop, standing in for the model you have). The student
sees the inputs of the whole training split but the labels of only 10 % of them (a labeling
budget); the teacher's soft labels cover every input. mentor trains a 64-32-10 student two
ways -- on the labels alone and with Hinton's knowledge distillation -- over three seeds, with
model selection on the validation split, then reports test accuracy, parameters and the
inference speed-up, and saves the distilled student as safetensors.

Run:  python examples/compress_my_model.py [OUTPUT_FOLDER]
"""

import statistics
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

import mentor
from mentor.latency import speedup
from mentor.models import count_params

torch.set_num_threads(1)
# your own arrays: mentor.data.from_arrays(x, y, unlabeled=x_without_labels)
splits = mentor.load_data("digits", labeled_fraction=0.1)

# --- the model you already have (trained here, on every training label, so the script is
# self-contained) ----------------------------------------------------------------------
torch.manual_seed(0)
teacher = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                        nn.Linear(512, 10))
opt = torch.optim.Adam(teacher.parameters(), lr=1e-3)
for epoch in range(30):
    for idx in torch.randperm(len(splits.train)).split(64):
        loss = nn.functional.cross_entropy(teacher(splits.train.x[idx]), splits.train.y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
teacher.eval()
with torch.no_grad():
    t_acc = (teacher(splits.test.x).argmax(-1) == splits.test.y).float().mean().item()


# --- the small student, trained on labels alone and distilled ---------------------------
def small_student() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


results = {}
for method, options in [("scratch", {}), ("kd", {"temperature": 4.0, "alpha": 0.9})]:
    accs = []
    for seed in (0, 1, 2):
        # a factory, not a module: the seed then fixes the student's initial weights too
        d = mentor.Distiller(small_student, teacher, method=method, seed=seed, epochs=40,
                             batch_size=64, lr=3e-3, **options)
        d.fit(splits)
        accs.append(d.evaluate(splits)["accuracy"])
    results[method] = (accs, d)

print(f"teacher: {count_params(teacher):,} parameters, test accuracy {100 * t_acc:.2f} %")
for method, (accs, d) in results.items():
    print(f"student {method:>7}: {count_params(d.model):,} parameters, test accuracy "
          f"{100 * statistics.fmean(accs):.2f} ± {100 * statistics.pstdev(accs):.2f} % "
          f"(3 seeds)")
distilled = results["kd"][1]
lat = speedup(teacher, distilled.model, splits.test.x)
print(f"speed-up on the test split (batch {lat['batch']}, {lat['threads']} thread): "
      f"{lat['speedup']:.1f}x")
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
path = distilled.save(out / "student.safetensors")
print(f"saved the distilled student (seed 2) to {path}")
