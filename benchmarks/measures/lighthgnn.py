"""LightHGNN / LightHGNN⁺ (METHODS.md §38) on the generated testbed TB-GRAPH
(:func:`mentor.graphs.contextual_hypergraph` with its defaults: 2,000 nodes, 5 classes, 64
noisy features, 1,500 hyperedges of 3-8 nodes, homophily 0.8, 20 % drawn at random; 20
labeled nodes per class, 100 validation nodes per class, the rest test; the same data for
every seed). Per seed 0/1/2, LightHGNN's protocol (``trans_train.py``: full batch, Adam lr
0.01, weight decay 5e-4, 200 epochs, the weights of the best validation accuracy):

- ``teacher``: HGNN, 2 layers, hidden 32 (:func:`mentor.graphs.train_hgnn`), test accuracy
  on its graph and with the graph removed at inference (every node alone);
- ``mlp``: the student MLP 64-128-5 (batch norm, dropout 0.5) on the 100 labels alone;
- ``lighthgnn``: the same MLP from the teacher's soft labels on all 2,000 nodes (λ 0, τ 1);
- ``lighthgnn_plus``: plus the reliable-hyperedge term ``L_HC`` (hc_noise_level 1);
- ``engine``: the LightHGNN student trained by mentor's engine instead
  (``mentor.Distiller``, method ``kd`` α 1 T 1, full batch, the teacher's logits served by
  node id through :class:`mentor.graphs.NodeLogitsTeacher`).

Students never see the graph: their accuracy is without it. Also the mean reliability
``ρ_e`` of the randomly drawn and of the class-homophilous hyperedges, and inference latency
(one torch thread, :func:`mentor.latency.speedup`): the teacher (propagation included) and the
student on all nodes, at 2,000 nodes and on a 20,000-node hypergraph of the same generator
(untrained weights: latency does not depend on them), the same for an MLP as narrow as the
teacher (hidden 32: the difference is the graph propagation), and the student on one node.

Figures: docs/methods.md's row "38 LightHGNN".
"""

from __future__ import annotations

import torch

from ._fmt import mean_std, pm, seeds as per_seed, verdict, wins

SEEDS = (0, 1, 2)


def _ms(seconds: float) -> str:
    v = 1e3 * seconds
    return f"{v:.3f} ms" if v < 1 else f"{v:.2f} ms" if v < 10 else f"{v:.1f} ms"


def _rho(values: list[float]) -> str:
    m, s = mean_std(values)
    return f"{m:.3f} ± {s:.3f}"


def latency(n: int, repeats: int) -> dict[str, float]:
    """Teacher (HGNN with its propagation) and student latency on all ``n`` nodes of a
    generated hypergraph (``0.75·n`` hyperedges, as the testbed), and the student's on one
    node."""
    from mentor.graphs import HGNN, contextual_hypergraph, hgnn_propagation, student_mlp
    from mentor.latency import median_latency, speedup
    d = contextual_hypergraph(num_nodes=n, num_hyperedges=3 * n // 4)
    prop = hgnn_propagation(d.hypergraph)
    torch.manual_seed(0)
    teacher = HGNN(d.x.shape[1], d.num_classes).eval()
    student = student_mlp(d.x.shape[1], d.num_classes).eval()
    narrow = student_mlp(d.x.shape[1], d.num_classes, hidden=32).eval()
    r = speedup(lambda v: teacher(v, prop), student, d.x, repeats=repeats)
    r32 = speedup(lambda v: teacher(v, prop), narrow, d.x, repeats=repeats)
    one = median_latency(student, d.x[:1], repeats=repeats)
    return {"teacher": r["teacher_latency_s"], "student": r["student_latency_s"],
            "speedup": r["speedup"], "student32": r32["student_latency_s"],
            "speedup32": r32["speedup"], "one": one}


def measure(quick: bool) -> dict[str, str]:
    import mentor
    from mentor.graphs import (NodeLogitsTeacher, contextual_hypergraph, distill_mlp,
                               hyperedge_reliability, student_mlp, train_hgnn)
    data = contextual_hypergraph()
    seeds, epochs = ((0,), 20) if quick else (SEEDS, 200)
    hg = data.hypergraph
    acc: dict[str, list[float]] = {k: [] for k in ("teacher", "teacher.no_graph", "mlp",
                                                   "lighthgnn", "lighthgnn_plus", "engine")}
    rho_noise, rho_clean = [], []
    for s in seeds:
        t = train_hgnn(data, seed=s, epochs=epochs)
        acc["teacher"].append(t.test_accuracy)
        acc["teacher.no_graph"].append(t.test_accuracy_without_graph)
        z = t.logits(data.x)
        rho = hyperedge_reliability(t.logits, data.x, hg.with_singletons(),
                                    generator=torch.Generator().manual_seed(s))
        own = rho[:hg.num_edges]
        rho_noise.append(float(own[data.noise_edges].mean()))
        rho_clean.append(float(own[~data.noise_edges].mean()))
        acc["mlp"].append(distill_mlp(data, None, lamb=1.0, seed=s, epochs=epochs).test_accuracy)
        acc["lighthgnn"].append(distill_mlp(data, z, seed=s, epochs=epochs).test_accuracy)
        acc["lighthgnn_plus"].append(distill_mlp(data, z, rho=rho, seed=s,
                                                 epochs=epochs).test_accuracy)
        splits = data.splits()
        d = mentor.Distiller(lambda: student_mlp(data.x.shape[1], data.num_classes),
                             NodeLogitsTeacher(z, "HGNN logits"), method="kd", alpha=1.0,
                             temperature=1.0, epochs=epochs, batch_size=data.num_nodes,
                             lr=0.01, weight_decay=5e-4, seed=s)
        d.fit(splits)
        acc["engine"].append(d.evaluate(splits)["accuracy"])
    small = latency(data.num_nodes, 5 if quick else 25)
    big_n = 4000 if quick else 20000
    big = latency(big_n, 3 if quick else 15)
    a = acc
    out = {"data": data.describe(), "seeds": str(len(seeds)),
           **{k: pm(v) for k, v in a.items()},
           **{f"{k}.per_seed": per_seed(a[k]) for k in ("teacher", "lighthgnn",
                                                        "lighthgnn_plus")},
           "lighthgnn_vs_mlp": verdict(a["lighthgnn"], a["mlp"]),
           "lighthgnn_vs_mlp.wins": wins(a["lighthgnn"], a["mlp"]),
           "plus_vs_lighthgnn": verdict(a["lighthgnn_plus"], a["lighthgnn"]),
           "plus_vs_lighthgnn.wins": wins(a["lighthgnn_plus"], a["lighthgnn"]),
           "lighthgnn_vs_teacher": verdict(a["lighthgnn"], a["teacher"]),
           "lighthgnn_vs_teacher_no_graph": verdict(a["lighthgnn"], a["teacher.no_graph"]),
           "engine_vs_mlp": verdict(a["engine"], a["mlp"]),
           "engine_vs_lighthgnn": verdict(a["engine"], a["lighthgnn"]),
           "rho.noise": _rho(rho_noise), "rho.homophilous": _rho(rho_clean),
           "rho.noise_vs_homophilous": verdict(rho_noise, rho_clean),
           "threads": str(torch.get_num_threads()),
           "latency.teacher": _ms(small["teacher"]), "latency.student": _ms(small["student"]),
           "latency.speedup": f"{small['speedup']:.2f}×",
           "latency.student32": _ms(small["student32"]),
           "latency.speedup32": f"{small['speedup32']:.2f}×",
           "latency.student_one_node": _ms(small["one"]),
           "large.nodes": f"{big_n:,}",
           "large.teacher": _ms(big["teacher"]), "large.student": _ms(big["student"]),
           "large.speedup": f"{big['speedup']:.2f}×",
           "large.student32": _ms(big["student32"]),
           "large.speedup32": f"{big['speedup32']:.2f}×"}
    return out


from . import measurement  # noqa: E402

measurement("lighthgnn", about="LightHGNN / LightHGNN+ on TB-GRAPH (2,000-node contextual "
            "stochastic block hypergraph, 20 labels per class): HGNN teacher with and without "
            "the graph, MLP on labels, LightHGNN, LightHGNN+, LightHGNN on mentor's engine, "
            "3 seeds; hyperedge reliability; inference latency (1 thread)", ci="quick",
            minutes=2.5, volatile=("latency.*", "large.teacher", "large.student*",
                                   "large.speedup*"))(measure)
