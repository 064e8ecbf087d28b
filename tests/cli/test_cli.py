"""The ``mentor`` command on good input: listing, validation, a tiny run end to end, and a
second run whose teacher is the first run's checkpoint."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from methodargs import METHOD_ARGS

from mentor.recipe import builtin_recipes

METHODS = ("scratch", "kd", "ls-kd", "dkd", "ls-dkd")
ROW_KEYS = {"method", "params", "seeds", "test_accuracy_mean", "test_accuracy_std"}


def _ok(proc):
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def test_recipes_lists_methods_and_builtins(mentor):
    out = _ok(mentor("recipes"))
    names = {line.split("│")[1].strip() for line in out.splitlines() if line.count("│") >= 2}
    assert set(METHODS) <= names, out
    assert "default" in names, out


def test_validate_builtin(mentor, tmp_path):
    out = _ok(mentor("recipes", "validate", "default"))
    assert out.startswith("ok"), out
    assert "3 setting(s), 7 method(s), 39 student run(s)" in out, out
    assert list(tmp_path.iterdir()) == []  # validate writes nothing


def test_validate_bad(mentor, write_recipe, recipe_dict, refused):
    write_recipe(recipe_dict(train={"epochs": 0}), "bad.yaml")
    refused(mentor("recipes", "validate", "bad.yaml"), "bad.yaml",
            "train.epochs must be >= 1, got 0")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, cli, recipe_dict):
    """One tiny end-to-end run (iris, MLP 8 student, MLP 16 teacher, scratch + kd, 2 seeds)."""
    cwd = tmp_path_factory.mktemp("tiny")
    (cwd / "tiny.yaml").write_text(yaml.safe_dump(recipe_dict()))
    proc = cli(["run", "tiny.yaml", "--out", cwd / "runs", "--quiet"], cwd)
    _ok(proc)
    return cwd, proc


def test_run_writes_one_complete_folder(tiny_run):
    cwd, proc = tiny_run
    folders = list((cwd / "runs").iterdir())
    assert len(folders) == 1, folders
    run = folders[0]
    assert run.name.startswith("tiny-")
    for name in ("results.json", "report.html", "recipe.yaml", "env.json", "metrics.jsonl",
                 "teacher/model.safetensors"):
        assert (run / name).is_file(), name
    assert (run / "checkpoints").is_dir()
    results = json.loads((run / "results.json").read_text())
    rows = results["rows"]
    assert [r["method"] for r in rows] == ["scratch", "kd"]
    for r in rows:
        assert ROW_KEYS <= set(r), r
        assert r["seeds"] == [0, 1]
        assert 0.0 <= r["test_accuracy_mean"] <= 1.0 and r["test_accuracy_std"] >= 0.0
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 4  # 2 methods x 2 seeds
    saved = yaml.safe_load((run / "recipe.yaml").read_text())
    assert [m["name"] for m in saved["methods"]] == ["scratch", "kd"]
    assert str(run) in proc.stdout.replace("\n", "")


def test_run_with_checkpoint_teacher(tiny_run, mentor, write_recipe, recipe_dict, tmp_path):
    cwd, _ = tiny_run
    ckpt = next((cwd / "runs").iterdir()) / "teacher" / "model.safetensors"
    r = recipe_dict(name="from-ckpt", teacher={"checkpoint": str(ckpt)},
                    methods=[{"name": "kd"}])
    write_recipe(r, "ckpt.yaml")
    _ok(mentor("run", "ckpt.yaml", "--out", "runs", "--quiet", "--set", "train.epochs=2",
               "--set", "train.seeds=[0]"))
    (run,) = list((tmp_path / "runs").iterdir())
    results = json.loads((run / "results.json").read_text())
    assert "model.safetensors" in results["teacher"]["description"]
    assert [r["method"] for r in results["rows"]] == ["kd"]
    assert results["rows"][0]["seeds"] == [0]
    assert not (run / "teacher").exists()  # nothing trained: the checkpoint is the teacher


def test_non_finite_loss_stops_the_run_with_exit_1_and_leaves_nothing(mentor, write_recipe,
                                                                     recipe_dict, tmp_path):
    """A runtime fault (here an absurd learning rate) names the objective and the step, exits
    1 (not a user-input error) and removes the half-written run folder."""
    write_recipe(recipe_dict(train={"epochs": 3, "lr": 1e30, "optimizer": "sgd",
                                    "seeds": [0]}), "nan.yaml")
    proc = mentor("run", "nan.yaml", "--out", "runs", "--quiet")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "non-finite loss" in proc.stderr and "training step" in proc.stderr
    runs = tmp_path / "runs"
    assert not runs.exists() or list(runs.iterdir()) == []


@pytest.mark.parametrize("name", sorted(builtin_recipes()))
def test_every_builtin_recipe_validates(mentor, name):
    out = _ok(mentor("recipes", "validate", name))
    assert out.startswith("ok"), out


def test_run_with_a_confidence_weighted_committee_of_checkpoints(tiny_run, mentor, write_recipe,
                                                                 recipe_dict, tmp_path):
    """A recipe ensemble fuses checkpoint teachers with the committee's modes."""
    cwd, _ = tiny_run
    ckpt = str(next((cwd / "runs").iterdir()) / "teacher" / "model.safetensors")
    r = recipe_dict(name="committee", methods=[{"name": "kd"}],
                    teacher={"ensemble": [{"checkpoint": ckpt}, {"checkpoint": ckpt}],
                             "combine": "confidence"})
    write_recipe(r, "committee.yaml")
    _ok(mentor("run", "committee.yaml", "--out", "runs", "--quiet", "--set", "train.epochs=1",
               "--set", "train.seeds=[0]"))
    (run,) = list((tmp_path / "runs").iterdir())
    results = json.loads((run / "results.json").read_text())
    assert "committee of 2 (confidence fusion" in results["teacher"]["description"]


def test_committee_weights_of_the_wrong_length_are_refused(tiny_run, mentor, write_recipe,
                                                          recipe_dict, refused):
    cwd, _ = tiny_run
    ckpt = str(next((cwd / "runs").iterdir()) / "teacher" / "model.safetensors")
    r = recipe_dict(name="committee", methods=[{"name": "kd"}],
                    teacher={"ensemble": [{"checkpoint": ckpt}, {"checkpoint": ckpt}],
                             "combine": "weighted", "weights": [1.0]})
    write_recipe(r, "w.yaml")
    refused(mentor("run", "w.yaml", "--out", "runs", "--quiet"), "weights has 1 entries",
            "expected 2, one per member")


def test_generated_inputs_from_a_recipe(mentor, write_recipe, recipe_dict, tmp_path):
    """data.generated appends teacher-labeled inputs from the source's own generator; the
    teacher itself trains on the real rows only."""
    r = recipe_dict(name="gen", data={"source": "mnist1d", "generated": 500},
                    methods=[{"name": "kd"}], train={"epochs": 1, "seeds": [0]})
    write_recipe(r, "gen.yaml")
    _ok(mentor("run", "gen.yaml", "--out", "runs", "--quiet"))
    (run,) = list((tmp_path / "runs").iterdir())
    results = json.loads((run / "results.json").read_text())
    assert "train 3500 (3000 labeled, 500 generated)" in results["settings"][0]["data"]


def test_generated_inputs_need_a_source_with_a_generator(mentor, write_recipe, recipe_dict,
                                                         refused):
    write_recipe(recipe_dict(data={"source": "iris", "generated": 10}), "g.yaml")
    refused(mentor("run", "g.yaml", "--out", "runs", "--quiet"),
            "data.generated needs a source with a generator (mnist1d), got source 'iris'")


def test_label_assisted_teacher_from_a_recipe(mentor, write_recipe, recipe_dict, tmp_path):
    """teacher.privileged (LAD): the teacher trains on [x || label code] with dual-path
    consistency; the results record its accuracy with and without the code, and a setting
    with a different teacher trains (and reports) its own."""
    r = recipe_dict(name="lad", teacher={"model": "mlp", "hidden": [16], "train": {"epochs": 3},
                                         "privileged": {"kind": "labels", "train_noise": 0.3}},
                    methods=[{"name": "kd"}], train={"epochs": 2, "seeds": [0]},
                    settings=[{"name": "lad"},
                              {"name": "plain", "teacher": {"privileged": None}}])
    write_recipe(r, "lad.yaml")
    out = _ok(mentor("run", "lad.yaml", "--out", "runs", "--quiet"))
    assert "label-assisted MLP (4+3)-16-3" in out and "plain teacher: MLP 4-16-3" in out
    (run,) = list((tmp_path / "runs").iterdir())
    results = json.loads((run / "results.json").read_text())
    lad, plain = (s["teacher"] for s in results["settings"])
    assert "dual-path consistency x5" in lad["description"]
    assert 0 <= lad["test_accuracy_without_labels"] <= 1
    assert "test_accuracy_without_labels" not in plain
    assert {r["setting"] for r in results["rows"]} == {"lad", "plain"}
    assert all(r["teacher_agreement_mean"] is not None for r in results["rows"])


def test_a_dho_student_checkpoint_is_a_teacher_for_a_second_run(mentor, write_recipe,
                                                                recipe_dict, tmp_path):
    """The dual-head student of one run, loaded as the next run's teacher, scores exactly
    what it scored as a student (its inference combination is rebuilt from the metadata)."""
    write_recipe(recipe_dict(name="dho", methods=[{"name": "dho"}],
                             train={"epochs": 3, "seeds": [0]}), "dho.yaml")
    _ok(mentor("run", "dho.yaml", "--out", "first", "--quiet"))
    (run,) = list((tmp_path / "first").iterdir())
    student_acc = json.loads((run / "results.json").read_text())["rows"][0]["test_accuracies"][0]
    ckpt = run / "checkpoints" / "default" / "dho" / "seed0" / "student.safetensors"
    write_recipe(recipe_dict(name="again", teacher={"checkpoint": str(ckpt)},
                             methods=[{"name": "kd"}], train={"epochs": 1, "seeds": [0]}),
                 "again.yaml")
    _ok(mentor("run", "again.yaml", "--out", "second", "--quiet"))
    (run2,) = list((tmp_path / "second").iterdir())
    teacher = json.loads((run2 / "results.json").read_text())["teacher"]
    assert "(dual_head)" in teacher["description"]
    assert teacher["test_accuracy"] == student_acc


def test_every_preset_runs_from_a_label_store(tiny_run, mentor, write_recipe, recipe_dict,
                                                    tmp_path, refused):
    """`mentor label` keeps the teacher's outputs (and, with --feature, a module's output);
    every preset then trains from the store (teacher: {store: ...}), the feature presets from
    the stored feature; a tap of a module the store lacks is refused before anything is
    written."""
    from mentor.registry import METHODS
    cwd, _ = tiny_run
    ckpt = next((cwd / "runs").iterdir()) / "teacher" / "model.safetensors"
    _ok(mentor("label", "--teacher", str(ckpt), "--data", "iris", "--out", "store",
               "--views", "2", "--augment", "crop", "--feature", "1", "--quiet"))
    shown = _ok(mentor("inspect", "store"))
    for needle in ("kind logits, num_classes 3", "rows: 180 (90 samples x 2 views)",
                   "'augment': 'crop'", "compression vs float32 full logits",
                   "checksums: verified", "features: 1 [16]",
                   "teacher confidence by predicted class"):
        assert needle in shown, (needle, shown)
    info = json.loads(_ok(mentor("inspect", "store", "--json")))
    assert info["rows"] == 180 and info["teacher"]["method"] == "weights"
    assert sum(h["rows"] for h in info["confidence_by_class"].values()) == 180
    names = METHODS.names()
    write_recipe(recipe_dict(name="store", teacher={"store": "store"},
                             methods=[{"name": n, **METHOD_ARGS.get(n, {})} for n in names],
                             train={"epochs": 1, "seeds": [0],
                                    "allow_unequal": ["views", "rows"]}), "store.yaml")
    _ok(mentor("run", "store.yaml", "--out", "runs", "--quiet"))
    (run,) = list((tmp_path / "runs").iterdir())
    results = json.loads((run / "results.json").read_text())
    assert sorted(r["method"] for r in results["rows"]) == sorted(names)
    assert "label store store (logits, 90 samples x 2 views" in results["teacher"]["description"]
    shutil.rmtree(tmp_path / "runs")
    write_recipe(recipe_dict(name="taps", teacher={"store": "store"},
                             methods=[{"name": "feature-kd", "student_layer": "1",
                                       "teacher_layer": "0"}]), "t.yaml")
    refused(mentor("run", "t.yaml", "--out", "runs", "--quiet"),
            "method 'feature-kd' reads teacher module '0'", "holds no such feature (it holds "
            "'1')", "--feature 0")


def test_a_semi_supervised_setting_with_its_own_methods(mentor, write_recipe, recipe_dict,
                                                       tmp_path):
    """A setting may list its own methods: here semi-supervised presets on 10 % of the digits
    labels beside the recipe's distillation methods. Their pseudo-label quality is recorded
    per epoch and plotted in the report."""
    ssl = {"name": "ssl", "data": {"labeled_fraction": 0.1},
           "train": {"epochs": 2, "batch_size": 8, "unlabeled_ratio": 3, "seeds": [0]},
           "methods": [{"name": "scratch"}, {"name": "fixmatch", "threshold": 0.5},
                       {"name": "mean-teacher"}]}
    write_recipe(recipe_dict(name="ssl", data={"source": "digits"},
                             train={"epochs": 2, "seeds": [0]},
                             settings=[{"name": "kd"}, ssl]), "ssl.yaml")
    _ok(mentor("run", "ssl.yaml", "--out", "runs", "--quiet"))
    (run,) = list((tmp_path / "runs").iterdir())
    results = json.loads((run / "results.json").read_text())
    by_setting = {}
    for r in results["rows"]:
        by_setting.setdefault(r["setting"], set()).add(r["method"])
    assert by_setting == {"kd": {"scratch", "kd"}, "ssl": {"scratch", "fixmatch", "mean-teacher"}}
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    fm = next(x for x in lines if x["setting"] == "ssl" and x["method"] == "fixmatch")
    assert len(fm["history"]["pl_precision"]) == 2
    assert all(0 <= c <= 1 for c in fm["history"]["pl_coverage"])
    assert fm["history"]["pl_thresholds"][-1] == [0.5] * 10
    assert (run / "plots" / "pseudo_labels.png").stat().st_size > 0
    assert "Pseudo-label quality" in (run / "report.html").read_text()


def _active_recipe(**over):
    r = {"name": "act", "data": {"source": "digits", "labeled_fraction": 0.02},
         "student": {"model": "mlp", "hidden": [8]},
         "active": {"selectors": ["random", {"name": "kcenter"}], "rounds": 2,
                    "oracle_per_round": 10},
         "train": {"epochs": 2, "batch_size": 32, "seeds": [0]}}
    r.update(over)
    return r


def test_mentor_active_writes_rounds_and_a_curve(mentor, write_recipe, tmp_path):
    write_recipe(_active_recipe(), "act.yaml")
    out = _ok(mentor("active", "act.yaml", "--out", "runs"))
    assert "Active distillation" in out and "round 2" in out
    (run,) = list((tmp_path / "runs").iterdir())
    assert run.name.startswith("act-active-") and not run.name.endswith(".partial")
    data = json.loads((run / "active.json").read_text())
    assert [(r["selector"], r["round"]) for r in data["rounds"]] == [
        (s, i) for s in ("random", "kcenter") for i in range(3)]
    labels0 = data["rounds"][0]["labels"]
    assert [r["labels"] for r in data["rounds"][:3]] == [labels0, labels0 + 10, labels0 + 20]
    assert (run / "plots" / "active_curve.png").stat().st_size > 0
    page = (run / "report.html").read_text()
    assert "mentor active report" in page and "data:image/png;base64," in page
    assert page.count("<tr") == 1 + 6 and "http" not in page.replace("http-equiv", "")


def test_mentor_active_resume_finishes_an_interrupted_folder(mentor, write_recipe, tmp_path):
    """An interrupted folder (.partial, one loop finished, one never started) resumes: the
    finished loop is not retrained and every number equals the uninterrupted run's."""
    write_recipe(_active_recipe(), "act.yaml")
    _ok(mentor("active", "act.yaml", "--out", "full"))
    (done,) = list((tmp_path / "full").iterdir())
    part = tmp_path / "cut" / ("." + done.name + ".partial")
    shutil.copytree(done, part)
    for f in ("active.json", "report.html"):
        (part / f).unlink()
    shutil.rmtree(part / "plots")
    shutil.rmtree(part / "state" / "kcenter")
    kept = part / "state" / "random" / "seed0" / "arrays.safetensors"
    stamp = kept.stat().st_mtime_ns
    out = _ok(mentor("active", "act.yaml", "--resume", str(part)))
    assert "kcenter seed 0 round 2" in out and "random seed 0 round 1" not in out
    resumed = tmp_path / "cut" / done.name
    assert not part.exists() and resumed.is_dir()
    assert (resumed / kept.relative_to(part)).stat().st_mtime_ns == stamp
    assert (json.loads((resumed / "active.json").read_text())["rounds"]
            == json.loads((done / "active.json").read_text())["rounds"])
    write_recipe(_active_recipe(name="other"), "other.yaml")
    shutil.copytree(resumed, part)
    refused = mentor("active", "other.yaml", "--resume", str(part))
    assert refused.returncode == 2 and "different recipe" in refused.stderr + refused.stdout


def test_mentor_active_refuses_bad_budgets_and_selectors(mentor, write_recipe, refused):
    write_recipe(_active_recipe(active={"selectors": ["random"], "rounds": 2,
                                        "oracle_per_round": 5000}), "big.yaml")
    refused(mentor("active", "big.yaml", "--out", "runs"), "exceeds the unlabeled pool")
    write_recipe(_active_recipe(active={"selectors": ["pcorset"], "rounds": 1,
                                        "oracle_per_round": 5}), "typo.yaml")
    refused(mentor("active", "typo.yaml", "--out", "runs"), "'pcorset'",
            "did you mean 'pcoreset'")
    write_recipe(_active_recipe(active={"selectors": ["rad"], "rounds": 1,
                                        "oracle_per_round": 5}), "noteacher.yaml")
    refused(mentor("active", "noteacher.yaml", "--out", "runs"), "need a 'teacher' section")
    write_recipe(_active_recipe(), "act.yaml")
    refused(mentor("run", "act.yaml", "--out", "runs"), "run it with `mentor active`")
