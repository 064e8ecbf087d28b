"""Semi-supervised presets on the tagging task (issue 20): `mentor run tagging` with its
teacher removed and the methods scratch, FixMatch and mean teacher at their defaults, the
rows seen through the tagging task's position-keeping views (weak: 10 % of the tokens
resampled from their row, strong: 30 %; `token_resample`). TB-SEQ tagging as the built-in
recipe (3,000 sequences, 10 % of the training sequences tagged), the same student
(BiGRU tagger, embedding 16, 16 per direction), 20 epochs of 32 labeled rows per step plus 3
unlabeled rows per labeled one (`train.unlabeled_ratio` 3: every method, scratch included,
draws the same labeled batches; scratch sees the labeled rows' weak view as the presets do),
3 seeds, selection on validation span F1; figures are test span F1. Settings fixed before
any run (the presets' defaults, the recipe's optimizer). Quick form: 2 epochs, 1 seed."""

from __future__ import annotations

from ._fmt import method_figures, verdicts
from ._run import one_torch_thread, row, run_builtin

TRAIN = {"epochs": 20, "batch_size": 32, "lr": 0.01, "unlabeled_ratio": 3,
         "seeds": [0, 1, 2]}
METHODS = ("scratch", "fixmatch", "mean-teacher")


def measure(quick: bool) -> dict[str, str]:
    train = dict(TRAIN, epochs=2, seeds=[0]) if quick else TRAIN
    with one_torch_thread():
        res = run_builtin("tagging", {"teacher": None, "train": train,
                                      "methods": [{"name": m} for m in METHODS]})
    out = {"data": res["settings"][0]["data"], "seeds": str(len(res["seeds"]))}
    f1 = {m: row(res, "default", m)["test_accuracies"] for m in METHODS}
    out.update(method_figures(f1, "f1", 2))
    out.update(verdicts(f1, (("fixmatch", "scratch"), ("mean-teacher", "scratch"))))
    return out


from . import measurement  # noqa: E402

measurement("tagging-ssl", about="semi-supervised presets on the tagging task: scratch vs "
            "FixMatch vs mean teacher through position-keeping token views, TB-SEQ tagging "
            "with 10 % of the training tags, test span F1, 3 seeds", ci="quick",
            minutes=6)(measure)
