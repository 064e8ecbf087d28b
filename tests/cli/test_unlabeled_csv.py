"""``mentor recipes validate`` and ``mentor run`` on a CSV whose unlabeled rows have empty
label cells (the issue: pandas writes ``0.0, 1.0, ...`` and empty cells; ``""`` used to be
class 0). The run trains kd with the unlabeled pool and scores the labeled test rows."""

from __future__ import annotations

import numpy as np


def test_validate_and_run_a_csv_with_empty_label_cells(validated_run, write_recipe,
                                                        recipe_dict, tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    x = np.eye(3)[y] * 4 + rng.normal(0, 0.5, size=(90, 3))
    lines = ["a,b,c,label"] + [",".join(f"{v:.4f}" for v in row)
                               + ("," if i % 4 == 0 else f",{float(c)}")
                               for i, (row, c) in enumerate(zip(x, y))]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    write_recipe(recipe_dict(name="unl", data={"source": "d.csv", "target": "label"},
                             teacher={"model": "mlp", "hidden": [16],
                                      "train": {"epochs": 20, "lr": 0.01}},
                             methods=[{"name": "kd"}],
                             train={"epochs": 20, "lr": 0.01, "seeds": [0]}), "unl.yaml")
    run, results = validated_run("unl.yaml")
    (setting,) = results["settings"]
    # 67 labeled rows split 3 ways, the 23 empty-cell rows in train only; 3 classes, not 4
    assert setting["data"].endswith("train 64 (41 labeled, 23 unlabeled), val 13, test 13, "
                                    "3 classes"), setting["data"]
    (row,) = results["rows"]
    acc = row["test_accuracy_mean"]
    assert abs(round(acc * 13) - acc * 13) < 1e-9, acc  # a share of the 13 test rows
    assert acc > 0.9, acc  # a class index shifted by one would score near zero
