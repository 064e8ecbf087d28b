"""A ``task: tokens`` recipe on WordNet's dictionary entries (``data.testbed: wordnet``): the
corpus of mentor.lm.corpus with its BPE tokenizer saved beside the students, GPT-2 models sized
by the data's positions, a test perplexity column beside exact match in results.json, the
leaderboard and the HTML report, selection by validation perplexity; fields of another data
set are refused in one sentence. The built-in recipe ``wordnet-lm`` parses, and its full run
is the measurement the docs quote (benchmarks/measures/lm_corpus.py)."""

from __future__ import annotations

import json

import pytest

from mentor.commands.run import run_recipe
from mentor.errors import RecipeError
from mentor.lm import corpus
from mentor.lm.recipe import parse_tokens_recipe

pytest.importorskip("transformers")
needs_wordnet = pytest.mark.skipif(not (corpus.WORDNET / "data.noun").exists(),
                                   reason="apt-get install wordnet-base (.ci/run does)")
GPT2 = {"model_type": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2, "n_positions": 64,
        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}


def _recipe(select: str) -> dict:
    return {"name": "wordnet-small", "task": "tokens",
            "data": {"testbed": "wordnet", "val": 16, "test": 24, "vocab_size": 400,
                     "max_length": 24, "teacher_sequences": 256, "student_sequences": 128},
            "teacher": {"arch": "hf", "config": GPT2, "steps": 4, "batch_size": 16,
                        "eval_every": 2},
            "student": {"arch": "hf", "config": {**GPT2, "n_embd": 8}},
            "methods": [{"name": "data", "regime": "supervised"},
                        {"name": "forward-kl", "regime": "off_policy"}],
            "train": {"steps": 4, "batch_size": 8, "eval_every": 2, "seeds": [0, 1],
                      "select": select}}


@needs_wordnet
def test_a_wordnet_run_reports_perplexity_and_selects_by_it(tmp_path, capsys):
    from rich.console import Console
    console = Console(width=200, record=True)
    run = run_recipe(_recipe("perplexity"), tmp_path, progress=False, console=console)
    results = json.loads((run / "results.json").read_text())
    assert results["settings"][0]["data"].startswith("WordNet 3.0 dictionary entries")
    assert "perplexity on the validation rows" in results["selection"]
    teacher = results["teacher"]
    assert teacher["test_perplexity"] > 1 and "val_perplexity" in teacher
    for row in results["rows"]:
        assert len(row["test_perplexities"]) == 2 and row["test_perplexity_mean"] > 1
        assert "val_perplexity_mean" in row and "val_accuracy_mean" not in row
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(x["best_step"] in (2, 4) and x["val_perplexity"] > 1 for x in lines)
    printed = console.export_text()
    assert "test perplexity" in printed and f"{results['rows'][0]['test_perplexity_mean']:.1f}" \
        in printed
    html = (run / "report.html").read_text()
    assert '<th class="num">test perplexity</th>' in html
    assert f"{results['rows'][1]['test_perplexity_mean']:.1f} ± " in html
    # the students read the corpus tokenizer's ids: it is saved with them
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(run / "tokenizer"))
    assert tok.eos_token == "<eos>" and tok.decode(tok("dog: a pet (noun)")["input_ids"]) == \
        "dog: a pet (noun)"


def test_fields_of_another_data_set_are_refused():
    base = _recipe("exact_match")
    for data, match in (({"testbed": "wordnet", "digits": 3}, r"data.digits is for testbed "
                         r"'addition', not 'wordnet'"),
                        ({"vocab_size": 500}, r"data.vocab_size is for testbed 'wordnet', not "
                         r"'addition'"),
                        ({"testbed": "wordnet", "max_length": 8}, r"data.max_length 8 is too "
                         r"short for a dictionary entry"),
                        ({"testbed": "wordnet", "source": "x.jsonl", "tokenizer": "tok"},
                         r"data.testbed 'wordnet' and data.source are two data sets")):
        with pytest.raises(RecipeError, match=match):
            parse_tokens_recipe({**base, "data": data})
    with pytest.raises(RecipeError, match=r"select"):
        parse_tokens_recipe({**base, "train": {"select": "loss"}})
