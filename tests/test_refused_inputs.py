"""Inputs that used to fail deep inside a dependency (an assert, a long message with the wrong advice) or to write
something misleading: each is now one line naming the problem and the fix, with exit 2, before any work."""

import json
import shutil

import pytest

from medbench.errors import MedbenchError


def test_asking_for_more_new_tokens_than_the_model_reads_is_refused(medbench_cli, tiny_model_dir, tmp_path):
    result = medbench_cli("eval", "--model", tiny_model_dir, "--tasks", "clinical_reasoning_open", "--limit", "1",
                          "--gen-kwargs", "max_new_tokens=100000", "--leaderboard-dir", tmp_path / "lb")
    assert result.exit_code == 2, result.output
    assert "asks for 100000 new tokens, but the model reads at most" in result.output
    assert "--gen-kwargs max_new_tokens=" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "lb" / "records").exists()


@pytest.mark.parametrize("field, value, expected", [
    ("question", None, "has no value in column(s) question"),
    ("question", "   ", "has no value in column(s) question"),
    ("answer_idx", None, "has no value in column(s) answer_idx"),
])
def test_a_null_or_blank_field_is_refused_not_rendered_as_none(tmp_path, field, value, expected):
    from medbench_tasks.medqa.utils import normalize

    row = {"question": "Which drug?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer_idx": "B"}
    row[field] = value
    with pytest.raises(MedbenchError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        normalize(row, "rows.jsonl row 2")


def test_a_null_answer_option_is_refused():
    from medbench.taskdata import mcq_row

    with pytest.raises(MedbenchError, match="an answer option is empty or null"):
        mcq_row("Which drug?", ["a", None, "c"], 0, "rows.jsonl row 1")


def test_a_model_that_ships_its_own_code_asks_for_trust_first(medbench_cli, tiny_model_dir, tmp_path):
    model = tmp_path / "custom"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_custom.CustomModel"}
    (model / "config.json").write_text(json.dumps(config))
    result = medbench_cli("eval", "--model", model, "--tasks", "medqa", "--limit", "1",
                          "--leaderboard-dir", tmp_path / "lb")
    assert result.exit_code == 2, result.output
    assert "ships its own model code (auto_map in config.json)" in result.output
    assert "--trust-remote-code" in result.output and "corrupt" not in result.output


def test_a_folder_in_the_way_of_a_page_file_leaves_every_page_file_as_it_was(tmp_path):
    from leaderboard_helpers import make_record
    from medbench.leaderboard import render

    make_record(tmp_path, "base", "medqa", [1, 0, 1], [1, 1, 1])
    first = render(tmp_path)
    before = {path: path.read_bytes() for path in first if path.is_file() and path.name != "leaderboard.md"}
    (tmp_path / "leaderboard.md").unlink()
    (tmp_path / "leaderboard.md").mkdir()
    make_record(tmp_path, "tuned", "medqa", [1, 0, 1], [1, 0, 1])
    with pytest.raises(MedbenchError, match=r"leaderboard\.md is a folder in the way"):
        render(tmp_path)
    assert {path: path.read_bytes() for path in before} == before  # nothing replaced half-way
    assert not list(tmp_path.glob(".medbench-render-*"))


def test_a_hub_dataset_is_scored_as_published_even_with_a_blank_option():
    """lm-eval scores a published dataset's rows as they are; refusing one would change the items and the score."""
    from medbench.taskdata import RowSource, mcq_row

    row = mcq_row("Which drug?", ["a", "", "c", "d"], 0, RowSource.hub("hub row 7"))
    assert row["choices"] == ["a", "", "c", "d"]


def test_a_checkpoints_own_max_new_tokens_does_not_outrun_the_tasks_budget(medbench_cli, tiny_model_dir, tmp_path):
    """transformers lets generation_config.json's max_new_tokens win over the length lm-eval asks for; the answers
    must keep to the budget the record states."""
    model = tmp_path / "long"
    shutil.copytree(tiny_model_dir, model)
    (model / "generation_config.json").write_text(json.dumps({"max_new_tokens": 300, "eos_token_id": 10**6}))
    board = tmp_path / "lb"
    result = medbench_cli("eval", "--model", model, "--tasks", "clinical_reasoning_open", "--limit", "2",
                          "--gen-kwargs", "max_new_tokens=6", "--leaderboard-dir", board)
    assert result.exit_code == 0, result.output
    samples = [json.loads(line) for line in next(board.glob("records/*/*/samples.jsonl")).read_text().splitlines()]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    for sample in samples:
        response = sample["pred"]
        assert len(tokenizer(str(response), add_special_tokens=False)["input_ids"]) <= 6, sample


def test_repeats_past_what_memory_holds_and_an_unclosed_stop_list_are_refused():
    from medbench.generation import GenerationOptions, parse_gen_kwargs

    with pytest.raises(MedbenchError, match="more samples per item than medbench keeps"):
        GenerationOptions(gen_kwargs={"temperature": 0.7}, repeats=10**9)
    with pytest.raises(MedbenchError, match="starts a JSON list or mapping but does not end it"):
        parse_gen_kwargs('until=["a')
    assert parse_gen_kwargs("until=Question:") == {"until": ["Question:"]}


def test_a_config_no_model_can_have_is_refused_before_building_the_model(medbench_cli, tiny_model_dir, tmp_path):
    model = tmp_path / "deep"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["num_hidden_layers"] = 10**9
    (model / "config.json").write_text(json.dumps(config))
    result = medbench_cli("eval", "--model", model, "--tasks", "medqa", "--limit", "1",
                          "--leaderboard-dir", tmp_path / "lb")
    assert result.exit_code == 2, result.output
    assert "config.json no model can have: num_hidden_layers=1000000000" in result.output


def test_a_recipes_file_options_stay_in_its_folder(tmp_path):
    from medbench.recipe import read_recipe
    from medbench.sweeps import plan

    outside = tmp_path / "secret.csv"
    outside.write_text("key,tier\n")
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "tiers.csv").write_text("key,tier\n")
    body = """
name: files
scales:
  toy: {{model: smollm2-135m-instruct}}
grid:
  seed: [1]
cell:
  model: "{{model}}"
  steps:
    - plugin: curriculum
      task: medqa
      options: {{base: sft, ordering: curriculum, difficulty_file: {path}}}
  eval: {{tasks: [medqa], limit: 2}}
comparisons: []
"""
    for path in (str(outside), "../secret.csv"):
        (folder / "r.yaml").write_text(body.format(path=path))
        with pytest.raises(MedbenchError, match="lies outside the recipe's folder"):
            plan(read_recipe(folder / "r.yaml"), "toy", tmp_path / "out")
    (folder / "r.yaml").write_text(body.format(path="tiers.csv"))
    try:
        sweep = plan(read_recipe(folder / "r.yaml"), "toy", tmp_path / "out")
    except MedbenchError as exc:  # the empty tiers file may be refused by the trainer, never for its place
        assert "outside" not in str(exc), exc
    else:  # resolved against the recipe's folder, not the working directory
        assert sweep.cells[0].steps[0].options["difficulty_file"] == str((folder / "tiers.csv").resolve())


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs FIFOs")
def test_keyed_and_pairs_files_refuse_fifos_and_read_json_lines_with_line_separators(tmp_path):
    import os

    from medbench_plugins.curriculum.labels import read_keyed_file
    from medbench_plugins.dpo import file_pairs

    fifo = tmp_path / "tiers.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(MedbenchError, match="cannot be read"):
        read_keyed_file(fifo, "tier", "difficulty")
    with pytest.raises(MedbenchError, match="cannot be read"):
        file_pairs(str(fifo))
    lines = tmp_path / "u2028.jsonl"
    lines.write_text(json.dumps({"key": "a\u2028b", "tier": "easy"}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert read_keyed_file(lines, "tier", "difficulty") == {"a\u2028b": "easy"}
    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(MedbenchError, match="does not give key and tier"):
        read_keyed_file(deep, "tier", "difficulty")


def test_a_full_disk_while_saving_scored_requests_is_one_line(tmp_path, monkeypatch):
    import errno
    import os

    from medbench.lm_wrapper import RequestCache

    cache = RequestCache(tmp_path / "cache" / "r.jsonl")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "open", full)
    with pytest.raises(MedbenchError, match=r"cannot save scored requests .* \(No space left on device\)"):
        cache.add({"k": 1.0})


def test_a_chat_template_that_breaks_out_of_the_sandbox_is_one_line(medbench_cli, tiny_model_dir, tmp_path):
    model = tmp_path / "ssti"
    shutil.copytree(tiny_model_dir, model)
    mark = tmp_path / "ran"
    (model / "chat_template.jinja").write_text("{{ cycler.__init__.__globals__.os.system('touch %s') }}" % mark)
    result = medbench_cli("eval", "--model", model, "--tasks", "medqa", "--limit", "1", "--chat-template",
                          "--leaderboard-dir", tmp_path / "lb")
    assert result.exit_code == 2, result.output
    assert "tried an operation Jinja's sandbox forbids" in result.output and not mark.exists()
