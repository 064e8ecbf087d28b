"""`mentor run tagging`: the built-in sequence-tagging recipe (task: tagging, issue 20) and
what its leaderboard says. TB-SEQ tagging (3,000 sequences, its own 60/20/20 split); the
student (BiGRU tagger, embedding 16, 16 per direction) sees the tags of 10 % of the training
sequences; the teacher (embedding 32, 64 per direction) is trained on every training tag.
Methods scratch, KD (T 2, alpha 0.9) and DKD (alpha 1, beta 8, T 4) over the tokens of
every training sequence (the task's element view: one element per real token), 3 seeds,
selection on validation span F1; figures are test span F1. Quick form: 2 epochs, 1 seed."""

from __future__ import annotations

from ._fmt import method_figures, pct, verdicts
from ._run import one_torch_thread, row, run_builtin

QUICK = {"train": {"epochs": 2, "batch_size": 32, "lr": 0.01, "seeds": [0]}}
METHODS = ("scratch", "kd", "dkd")


def measure(quick: bool) -> dict[str, str]:
    with one_torch_thread():
        res = run_builtin("tagging", QUICK if quick else None)
    out = {"teacher": pct(res["teacher"]["test_accuracy"]),
           "data": res["settings"][0]["data"], "seeds": str(len(res["seeds"]))}
    f1 = {m: row(res, "default", m)["test_accuracies"] for m in METHODS}
    out.update(method_figures(f1, "f1", 2))
    out.update(verdicts(f1, (("kd", "scratch"), ("dkd", "scratch"))))
    return out


from . import measurement  # noqa: E402

measurement("tagging-recipe", about="`mentor run tagging`: TB-SEQ tagging, a BiGRU student "
            "sees 10 % of the training tags; scratch vs KD vs DKD from a teacher trained on "
            "every tag, test span F1, 3 seeds", ci="quick", minutes=3.5)(measure)
