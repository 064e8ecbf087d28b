"""Benchmark suites: the verdict rule, the comparison with each paper's claim, and a suite
run end to end on a tiny recipe."""

import json

import pytest
import yaml

import mentor.commands.bench as bench
from mentor.errors import MentorError


@pytest.mark.parametrize("mean,std,base,bstd,relation,observed,agrees", [
    (0.95, 0.005, 0.87, 0.008, ">", "higher", "yes"),
    (0.95, 0.005, 0.94, 0.008, ">", "not separated", "not shown"),
    (0.90, 0.005, 0.95, 0.008, ">", "lower", "no"),
    (0.95, 0.005, 0.94, 0.008, ">=", "not separated", "not shown"),
    (0.96, 0.001, 0.94, 0.002, ">=", "higher", "yes"),
    (0.51, 0.007, 0.54, 0.0098, ">=", "lower", "no"),
])
def test_judge_separates_only_beyond_twice_the_larger_std(mean, std, base, bstd, relation,
                                                          observed, agrees):
    v = bench.judge(mean, std, base, bstd, relation)
    assert (v.observed, v.agrees) == (observed, agrees)


def test_compare_uses_each_methods_claimed_baseline_in_the_same_setting():
    row = lambda s, m, a, sd: {"setting": s, "method": m, "method_name": m,  # noqa: E731
                               "test_accuracy_mean": a, "test_accuracy_std": sd, "seeds": [0]}
    results = {"rows": [row("a", "scratch", 0.80, 0.01), row("a", "kd", 0.90, 0.01),
                        row("a", "ls-kd", 0.70, 0.01), row("b", "ls-kd", 0.99, 0.0)]}
    rows = bench.compare(results, "r")
    got = {(r["setting"], r["method"]): (r["baseline"], r["observed"], r["agrees"]) for r in rows}
    assert got == {("a", "kd"): ("scratch", "higher", "yes"),
                   ("a", "ls-kd"): ("kd", "lower", "no")}  # setting b has no kd baseline
    assert "| r / a | `kd` | 90.00 ± 1.00 % |" in bench.markdown(rows)


def test_unknown_suite_is_refused_with_a_suggestion(tmp_path):
    with pytest.raises(MentorError, match=r"--suite 'kdd' is not a benchmark suite \(did you "
                                          r"mean 'kd'\?\)"):
        bench.run_suite("kdd", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_suite_runs_its_recipes_and_writes_the_table(tmp_path, monkeypatch):
    recipe = {"name": "tiny", "data": {"source": "iris"},
              "teacher": {"model": "mlp", "hidden": [16], "train": {"epochs": 10, "lr": 0.01}},
              "student": {"model": "mlp", "hidden": [4]},
              "methods": [{"name": "scratch"}, {"name": "kd"}],
              "train": {"epochs": 3, "seeds": [0, 1]}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    monkeypatch.setitem(bench.SUITES, "tiny", ("tiny",))
    monkeypatch.setattr(bench, "builtin_recipes", lambda: {"tiny": path})
    folder = bench.run_suite("tiny", tmp_path / "out", progress=False)
    rows = json.loads((folder / "bench.json").read_text())
    assert [r["method"] for r in rows] == ["kd"] and rows[0]["baseline"] == "scratch"
    assert (folder / "bench.md").read_text().startswith("| data / setting |")
    assert len(list(folder.glob("tiny-*/results.json"))) == 1
    assert [p.name for p in (tmp_path / "out").iterdir()] == [folder.name]
