"""Prompts and completions from files (issue 21 point 1): JSON Lines, Parquet and a
``DatasetDict`` folder, text or chat turns, a local tokenizer with a chat template; each row
keeps its own completion mask ending with end-of-sequence; a tokens recipe runs on them with
Hugging Face models; bad input is one sentence and nothing is written."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from mentor.errors import DataError  # noqa: E402
from mentor.lm.completions import CompletionOptions, completion_splits  # noqa: E402

WORDS = ["<pad>", "</s>", "<unk>", "<user>", "<assistant>", "<system>", "reverse", "say",
         "a", "b", "c", "d", "hi", "hello", "please"]
TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} </s> {% endfor %}"
            "{% if add_generation_prompt %}<assistant> {% endif %}")


def save_tokenizer(folder, template=TEMPLATE):
    from tokenizers import Tokenizer, models, pre_tokenizers
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>",
                                                eos_token="</s>", unk_token="<unk>")
    if template:
        fast.chat_template = template
    fast.save_pretrained(str(folder))
    return str(folder)


def rows(n=40):
    out = []
    for i in range(n):
        s = ["a", "b", "c", "d"][: 1 + i % 4]
        out.append({"prompt": "reverse " + " ".join(s), "completion": " ".join(s[::-1])})
    return out


def write_jsonl(path, items):
    path.write_text("".join(json.dumps(r) + "\n" for r in items))
    return str(path)


def ids(*words):
    return [WORDS.index(w) for w in words]


def test_text_rows_keep_their_own_completion(tmp_path):
    s = completion_splits(CompletionOptions(write_jsonl(tmp_path / "d.jsonl", rows()),
                                            save_tokenizer(tmp_path / "tok"), val=5, test=5))
    assert (len(s.train), len(s.val), len(s.test), s.vocab_size) == (30, 5, 5, len(WORDS))
    everything = [(p, c) for d in (s.train, s.val, s.test)
                  for p, c in zip(d.prompt_lists(), d.completion_lists())]
    assert (ids("reverse", "a", "b"), ids("b", "a", "</s>")) in everything
    assert (ids("reverse", "a", "b", "c", "d"), ids("d", "c", "b", "a", "</s>")) in everything
    d = s.train
    assert d.eos_id == WORDS.index("</s>") and d.pad_id == 0
    assert set((d.lengths - d.prompt_lens).tolist()) == {2, 3, 4, 5}
    assert not (d.target & ~d.attention).any()


def test_messages_and_conversational_rows_use_the_chat_template(tmp_path):
    tok = save_tokenizer(tmp_path / "tok")
    msgs = [{"messages": [{"role": "user", "content": "say hi"},
                          {"role": "assistant", "content": "hello"}]}] * 12
    s = completion_splits(CompletionOptions(write_jsonl(tmp_path / "m.jsonl", msgs), tok,
                                            messages="messages", val=1, test=1))
    assert s.train.prompt_lists()[0] == ids("<user>", "say", "hi", "</s>", "<assistant>")
    assert s.train.completion_lists()[0] == ids("hello", "</s>")
    conv = [{"prompt": [{"role": "user", "content": "say hi"}],
             "completion": [{"role": "assistant", "content": "hello"}]}] * 12
    c = completion_splits(CompletionOptions(write_jsonl(tmp_path / "c.jsonl", conv), tok,
                                            val=1, test=1))
    assert c.train.prompt_lists() == s.train.prompt_lists()
    assert c.train.completion_lists() == s.train.completion_lists()
    text = completion_splits(CompletionOptions(
        write_jsonl(tmp_path / "t.jsonl", [{"prompt": "say hi", "completion": "hello"}] * 12),
        tok, chat=True, val=1, test=1))
    assert text.train.prompt_lists() == s.train.prompt_lists()


def test_parquet_and_a_dataset_dict_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    tok = save_tokenizer(tmp_path / "tok")
    data = rows(40)
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.Table.from_pylist(data), tmp_path / "d.parquet")
    a = completion_splits(CompletionOptions(str(tmp_path / "d.parquet"), tok, val=5, test=5))
    b = completion_splits(CompletionOptions(write_jsonl(tmp_path / "d.jsonl", data), tok,
                                            val=5, test=5))
    assert a.train.ids.tolist() == b.train.ids.tolist()
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(data[:30]),
                               "validation": datasets.Dataset.from_list(data[30:35]),
                               "test": datasets.Dataset.from_list(data[35:])})
    dd.save_to_disk(str(tmp_path / "hf"))
    c = completion_splits(CompletionOptions(str(tmp_path / "hf"), tok))
    assert (len(c.train), len(c.val), len(c.test)) == (30, 5, 5)


def test_long_rows_are_refused_or_dropped(tmp_path):
    tok = save_tokenizer(tmp_path / "tok")
    path = write_jsonl(tmp_path / "d.jsonl", rows(40))
    with pytest.raises(DataError, match=r"row 3 has 10 tokens, more than 8"):
        completion_splits(CompletionOptions(path, tok, max_length=8, val=2, test=2))
    s = completion_splits(CompletionOptions(path, tok, max_length=8, too_long="drop", val=2,
                                            test=2))
    assert s.dropped == 10 and len(s.train) + len(s.val) + len(s.test) == 30


@pytest.mark.parametrize("item, opts, message", [
    ({"prompt": "say hi", "answer": "hello"}, {}, "data.completion: .* has no column "
     "'completion'"),
    ({"messages": [{"role": "user", "content": "hi"}]}, {"messages": "messages"},
     "does not end with an assistant turn"),
    ({"messages": "hi"}, {"messages": "messages"}, "is not a list of chat turns"),
    ({"prompt": "say hi", "completion": [{"role": "assistant", "content": "x"}]}, {},
     "mixes a text and chat turns"),
])
def test_bad_rows_are_one_sentence(tmp_path, item, opts, message):
    tok = save_tokenizer(tmp_path / "tok")
    with pytest.raises(DataError, match=message):
        completion_splits(CompletionOptions(write_jsonl(tmp_path / "d.jsonl", [item] * 10),
                                            tok, val=1, test=1, **opts))


def test_chat_turns_need_a_template(tmp_path):
    tok = save_tokenizer(tmp_path / "tok", template=None)
    with pytest.raises(DataError, match="no chat template"):
        completion_splits(CompletionOptions(
            write_jsonl(tmp_path / "d.jsonl", [{"prompt": "say hi", "completion": "hello"}] * 9),
            tok, chat=True, val=1, test=1))


def _recipe(tmp_path, **data):
    gpt2 = {"arch": "hf", "config": {"model_type": "gpt2", "n_embd": 16, "n_layer": 1,
                                     "n_head": 2, "n_positions": 32}}
    return {"name": "files", "task": "tokens",
            "data": {"source": write_jsonl(tmp_path / "d.jsonl", rows(60)),
                     "tokenizer": save_tokenizer(tmp_path / "tok"), "val": 8, "test": 8,
                     "student_sequences": None, **data},
            "teacher": {**gpt2, "steps": 6, "batch_size": 8, "eval_every": 3},
            "student": gpt2,
            "train": {"steps": 4, "batch_size": 8, "eval_every": 2, "seeds": [0]},
            "methods": [{"name": "kd", "regime": "off_policy"},
                        {"name": "gkd", "regime": "on_policy", "divergence": "jsd",
                         "lam": 0.5}]}


def test_a_tokens_recipe_runs_on_a_file_with_hugging_face_models(tmp_path):
    from mentor.commands.tokens import run_tokens
    run = run_tokens(_recipe(tmp_path), tmp_path / "runs", progress=False)
    results = json.loads((run / "results.json").read_text())
    assert [r["method"] for r in results["rows"]] == ["kd", "gkd"]
    assert "prompts and completions of d.jsonl" in results["settings"][0]["data"]
    assert (run / "tokenizer" / "tokenizer.json").is_file()


def test_the_cli_refuses_a_bad_source_in_one_sentence(tmp_path):
    recipe = _recipe(tmp_path, completion="answer")
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    r = subprocess.run([sys.executable, "-m", "mentor", "run", str(path), "--out",
                        str(tmp_path / "runs")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "data.completion" in r.stderr and "has no column 'answer'" in r.stderr
    assert not any((tmp_path / "runs").glob("*/results.json"))


def test_a_trained_teacher_folder_is_used_as_it_is(tmp_path):
    """teacher.steps 0: the folder's model teaches unchanged (no training on the data)."""
    from safetensors.torch import load_file

    from mentor.commands.tokens import run_tokens
    from mentor.errors import RecipeError
    from mentor.lm.recipe import parse_tokens_recipe
    cfg = transformers.GPT2Config(vocab_size=len(WORDS), n_positions=32, n_embd=16,
                                  n_layer=1, n_head=2)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(str(tmp_path / "teacher"))
    folder = transformers.GPT2LMHeadModel.from_pretrained(str(tmp_path / "teacher"))
    raw = _recipe(tmp_path)
    raw["teacher"] = {"arch": "hf", "path": str(tmp_path / "teacher"), "steps": 0}
    raw["methods"] = raw["methods"][:1]
    run = run_tokens(raw, tmp_path / "runs", progress=False)
    saved = load_file(str(run / "teacher" / "model.safetensors"))
    for k, v in folder.state_dict().items():
        assert (saved[k] == v).all(), k
    assert json.loads((run / "results.json").read_text())["teacher"]["sequences"] == 0
    raw["teacher"] = {"arch": "hf", "config": {"model_type": "gpt2"}, "steps": 0}
    with pytest.raises(RecipeError, match="teacher.steps 0 uses the teacher as it is"):
        parse_tokens_recipe(raw)


def test_positions_cover_the_longest_prompt_and_the_longest_completion(tmp_path):
    """Generation appends a batch's longest completion to its longest prompt, which need not
    be one row: a model with positions for the longest row only is refused before training
    (it would fail mid-run when sampling)."""
    from mentor.commands.tokens import run_tokens
    from mentor.errors import MentorError
    items = [{"prompt": "reverse a b c d", "completion": "a"},
             {"prompt": "say", "completion": "a b c d a b c d"}] * 10
    raw = _recipe(tmp_path)
    raw["data"]["source"] = write_jsonl(tmp_path / "d.jsonl", items)
    raw["data"].update(val=2, test=2)
    # longest row: 1 + 8 + eos = 10 tokens; longest prompt 5 + longest completion 9 = 14
    for side in ("teacher", "student"):
        raw[side]["config"]["n_positions"] = 12
    with pytest.raises(MentorError, match="reads at most 12 positions but the data's "
                       "sequences have 14"):
        run_tokens(raw, tmp_path / "runs", progress=False)
