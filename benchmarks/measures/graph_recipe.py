"""`mentor run graph`: the built-in graph-nodes recipe (task: graph_nodes, issue 20) and what
its leaderboard says. TB-GRAPH (contextual-hypergraph: 2,000 nodes, 5 classes, 64 noisy
features, 1,500 hyperedges; 20 training nodes per class); the teacher, an HGNN (hidden 32),
reads the hypergraph and trains full batch on the 100 training nodes (200 epochs, Adam lr
0.01, weight decay 5e-4, the best validation epoch); the students, MLPs 64-128-5 (batch norm,
dropout 0.5), read node features only, full batch for 200 epochs on the engine: scratch
(cross-entropy on the 100 labeled nodes) and KD at T 1, alpha 1 over every node (LightHGNN),
3 seeds, selection on validation accuracy; figures are test accuracy. Speed-up: the
teacher's inference on the first 512 test nodes (the whole propagation, which every node
needs) against the student's, one torch thread. Quick form: 20 epochs, 1 seed."""

from __future__ import annotations

from ._fmt import method_figures, pct, verdicts
from ._run import one_torch_thread, row, run_builtin

QUICK = {"train": {"epochs": 20, "batch_size": 2000, "lr": 0.01, "weight_decay": 0.0005,
                   "seeds": [0]}}
METHODS = ("scratch", "kd")


def measure(quick: bool) -> dict[str, str]:
    with one_torch_thread():
        res = run_builtin("graph", QUICK if quick else None)
    t = res["teacher"]
    out = {"teacher": pct(t["test_accuracy"]),
           "teacher.no_graph": pct(t["test_accuracy_without_graph"]),
           "data": res["settings"][0]["data"], "seeds": str(len(res["seeds"]))}
    acc = {m: row(res, "default", m)["test_accuracies"] for m in METHODS}
    out.update(method_figures(acc, "accuracy", 1))
    for m in METHODS:
        out[f"{m}.speedup"] = f"{row(res, 'default', m)['speedup']:.1f}×"
    out.update(verdicts(acc, (("kd", "scratch"),)))
    out["kd.agreement"] = pct(row(res, "default", "kd")["teacher_agreement_mean"])
    return out


from . import measurement  # noqa: E402

measurement("graph-recipe", about="`mentor run graph`: TB-GRAPH, an HGNN teacher reads the "
            "hypergraph, MLP students read node features; scratch vs KD (LightHGNN), test "
            "accuracy, 3 seeds", ci="quick", minutes=1.5)(measure)
