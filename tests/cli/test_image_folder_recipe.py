"""A recipe on a folder of PNGs: validates, runs KD and FixMatch end to end with images decoded
by DataLoader workers, writes its split, and exports the student to ONNX with parity checked on
the reloaded test images; a truncated image stops the run before it starts (exit 2, the file
named, no run folder)."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image


def _folder(root, n=15):
    rng = np.random.default_rng(0)
    for c, name in enumerate(("red", "green", "blue")):
        (root / name).mkdir(parents=True)
        for i in range(n):
            a = rng.integers(0, 80, (10, 10, 3)).astype(np.uint8)
            a[..., c] += 160
            Image.fromarray(a).save(root / name / f"{i:02d}.png")


def _recipe(recipe_dict):
    return recipe_dict(name="img", data={"source": "imgs", "image_size": 8, "workers": 1},
                       student={"model": "cnn", "channels": [4]},
                       teacher={"model": "cnn", "channels": [8], "train": {"epochs": 8,
                                                                          "lr": 0.01}},
                       methods=[{"name": "kd"}, {"name": "fixmatch"}],
                       train={"epochs": 6, "lr": 0.01, "seeds": [0],
                              "allow_unequal": ["views"]})


def test_an_image_folder_recipe_runs_and_exports(mentor, validated_run, write_recipe,
                                                 recipe_dict, tmp_path):
    _folder(tmp_path / "imgs")
    write_recipe(_recipe(recipe_dict), "img.yaml")
    run, results = validated_run("img.yaml")
    assert results["settings"][0]["data"].endswith("train 27 (27 labeled), val 9, test 9, "
                                                   "3 classes")
    assert {r["method"] for r in results["rows"]} == {"kd", "fixmatch"}
    assert max(r["test_accuracy_mean"] for r in results["rows"]) > 0.5  # chance is 1/3
    split = json.loads((run / "splits" / "default.json").read_text())
    assert sorted(split["train"] + split["val"] + split["test"]) == list(range(45))
    proc = mentor("export", str(run), "--format", "onnx", "--out", "onnx")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "on test split of imgs reloaded from input.yaml (9 rows)" in proc.stdout.replace(
        "\n", " ")


def test_a_truncated_image_stops_the_run_before_it_starts(mentor, write_recipe, recipe_dict,
                                                          refused, tmp_path):
    _folder(tmp_path / "imgs")
    bad = tmp_path / "imgs" / "green" / "07.png"
    bad.write_bytes(bad.read_bytes()[:50])
    write_recipe(_recipe(recipe_dict), "img.yaml")
    refused(mentor("run", "img.yaml", "--out", "runs"), "image 'imgs/green/07.png' cannot be "
            "read")
