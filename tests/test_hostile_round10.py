"""Hostile inputs, round 10: a --config file naming files outside its folder; samples whose per-item values no
score comes from (1e308, -1); an option given twice with two values; launcher variables that are no numbers; a
plugins folder that is not one; a task folder's empty or damaged data file; a task YAML's generation settings,
filters and template fields that exhaust memory, score NaN or fail after scoring; a sweep's executor options and
empty model; an answer option that is a list; served-model options for an in-process model; a leaderboard folder
holding the user's own pages. Each is one line (exit 2) or a warning, before anything is lost."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from leaderboard_helpers import answers, make_record
from medbench.cli import main
from medbench.errors import MedbenchError
from test_task_input_round7 import eval_folder, task_folder
from test_task_inputs import one_line_error


# --- a --config file reads nothing outside its folder ------------------------------------------------------------

@pytest.mark.parametrize("value", ["../secret/pairs.jsonl", "{outside}/pairs.jsonl", "~/pairs.jsonl",
                                   "file:///etc/passwd", "inner/../../secret/pairs.jsonl"])
def test_a_config_files_file_options_stay_in_its_folder(tmp_path, value):
    from medbench.trainer_options import read_config_file

    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "pairs.jsonl").write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    folder = tmp_path / "configs"
    folder.mkdir()
    config = folder / "dpo.yaml"
    config.write_text(f"pairs: file\npairs_file: {value.format(outside=tmp_path / 'secret')}\n")
    with pytest.raises(MedbenchError, match="lies outside the config file's folder") as caught:
        read_config_file(config)
    assert "--pairs-file PATH" in caught.value.fix


def test_a_config_files_own_files_resolve_against_its_folder_and_nest(tmp_path, monkeypatch):
    from medbench.trainer_options import read_config_file

    folder = tmp_path / "configs"
    (folder / "data").mkdir(parents=True)
    config = folder / "curriculum.yaml"
    config.write_text("base_config: base.yaml\ndifficulty_file: data/tiers.csv\nbase_options: {pairs_file: ../x}\n")
    monkeypatch.chdir(tmp_path)  # relative to the config file, not the working directory
    with pytest.raises(MedbenchError, match="pairs_file '../x' lies outside"):
        read_config_file(config)
    config.write_text("base_config: base.yaml\ndifficulty_file: data/tiers.csv\nlearning_rate: 0.1\n")
    values = read_config_file(Path("configs/curriculum.yaml"))
    assert values == {"base_config": str(folder / "base.yaml"), "difficulty_file": str(folder / "data" / "tiers.csv"),
                      "learning_rate": 0.1}


# --- samples whose values no score comes from -------------------------------------------------------------------

def _with_acc(path: Path, value: str) -> None:
    samples = path.parent / "samples.jsonl"
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    samples.write_text("".join(json.dumps(row).replace(f'"acc": {row["acc"]}', f'"acc": {value}') + "\n"
                               for row in rows))


@pytest.mark.parametrize("value", ["1e308", "-1"])
def test_samples_with_values_no_score_comes_from_are_set_aside_and_never_rescored_into_the_record(tmp_path, capsys,
                                                                                                   value):
    make_record(tmp_path, "base", "medqa", *answers(10, 5))
    odd = make_record(tmp_path, "odd", "medqa", *answers(10, 3))
    before = odd.read_text()
    _with_acc(odd, value)
    main(["leaderboard", "--dir", str(tmp_path), "--no-baselines", "--format", "json", "--baseline", "base"])
    err = " ".join(capsys.readouterr().err.split())
    assert "shown without its samples" in err and "Error" not in err
    main(["leaderboard", "--dir", str(tmp_path), "--no-baselines", "--format", "json", "--rescore"])
    err = " ".join(capsys.readouterr().err.split())
    assert "record not re-scored: cannot re-score" in err and "Error" not in err
    assert odd.read_text() == before  # its record is not rewritten from those samples


def test_rescoring_one_record_with_such_samples_is_one_line(tmp_path):
    from medbench.leaderboard import rescore

    odd = make_record(tmp_path, "odd", "medqa", *answers(10, 3))
    _with_acc(odd, "1e308")
    with pytest.raises(MedbenchError, match="samples hold acc values no score comes from"):
        rescore(odd.parent)


# --- an option given twice with two values ----------------------------------------------------------------------

def _run(capsys, *args: str) -> tuple[int, str]:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0), capsys.readouterr().err
    return 0, capsys.readouterr().err


@pytest.mark.parametrize("args, expected", [
    (["eval", "--tasks", "uti", "--limit", "2", "--limit", "300"], "given --limit twice, as '2' and '300'"),
    (["eval", "--tasks", "uti", "--limit=2", "--tasks", "medqa"], "given --tasks twice, as 'uti' and 'medqa'"),
    (["leaderboard", "--dir", "a", "--leaderboard-dir", "b"],
     "given --dir twice, as --dir 'a' and --leaderboard-dir 'b'"),
    (["train", "--plugin", "sft", "--task", "uti", "--seed", "1", "--lora-r", "4", "--seed", "2"],
     "given --seed twice, as '1' and '2'"),
    (["eval", "--tasks", "uti", "--fewshot-rationales", "--fewshot-rationales", "why"],
     "given --fewshot-rationales twice, as no value and 'why'"),
    (["--plugins-dir", "a", "--plugins-dir", "b", "plugins"], "medbench is given --plugins-dir twice, as 'a' and 'b'"),
])
def test_an_option_given_twice_with_two_values_is_refused_before_anything_runs(tmp_path, capsys, monkeypatch, args,
                                                                               expected):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(*_run(capsys, *args))
    assert expected in line and "give --" in line
    assert list(tmp_path.iterdir()) == []


def test_the_same_value_twice_a_repeatable_option_or_help_is_no_conflict():
    import click

    from medbench.cli import cli
    from medbench.commands.repeated_options import refuse_repeated_options

    command = cli.commands["eval"]
    refuse_repeated_options(command, ["--limit", "2", "--limit=2", "--judge", "a", "--judge", "b"], "medbench eval")
    refuse_repeated_options(command, ["--limit", "2", "--limit", "3", "--help"], "medbench eval")
    refuse_repeated_options(command, ["--system-prompt", "--limit", "--limit", "3"], "medbench eval")  # a value
    assert isinstance(command, click.Command)


def test_the_in_process_command_line_refuses_it_too(medbench_cli):
    result = medbench_cli("eval", "--tasks", "uti", "--limit", "2", "--limit", "3")
    assert result.exit_code == 2 and "given --limit twice" in result.output


# --- launcher variables and the plugins folder named by the environment ----------------------------------------

@pytest.mark.parametrize("variable, value", [("WORLD_SIZE", "abc"), ("WORLD_SIZE", "0"), ("RANK", "x"),
                                             ("RANK", "-1")])
def test_a_launcher_variable_that_is_no_count_is_one_line(monkeypatch, variable, value):
    from medbench.training import process_rank, world_size

    monkeypatch.setenv(variable, value)
    with pytest.raises(MedbenchError, match=f"environment variable {variable} is '{value}'") as caught:
        (world_size if variable == "WORLD_SIZE" else process_rank)()
    assert f"unset {variable}" in caught.value.fix


def test_a_plugins_dir_variable_naming_no_folder_warns(tmp_path, monkeypatch):
    from medbench import plugins

    monkeypatch.setenv(plugins.PLUGINS_DIR_ENV, str(tmp_path / "nowhere"))
    plugins.reset()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plugins.get_plugin_manager()
    assert any("MEDBENCH_PLUGINS_DIR names" in str(w.message) and "not a directory" in str(w.message)
               for w in caught)


# --- a task folder's data file that is empty or damaged ---------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("", "is empty"),
    ("\n  \n", "is empty"),
    ('{"q": "a", "label": 1}\n{bad\n', "is not valid JSON lines"),
    ('{"q": "a", "label": 1}\n' + "[" * 3000 + "]" * 3000 + "\n", "is not valid JSON lines"),
    (b'{"q": "\xff", "label": 1}\n', "is not UTF-8 text"),
])
def test_a_task_folders_empty_or_damaged_data_file_is_named(tmp_path, tiny_model_dir, capsys, text, expected):
    folder = task_folder(tmp_path, "")
    data = folder / "data.jsonl"
    data.write_bytes(text if isinstance(text, bytes) else text.encode())
    line = one_line_error(*eval_folder(folder, tmp_path, tiny_model_dir, capsys))
    assert f"task 't' ({folder / 't.yaml'}): data file {data} {expected}" in line
    assert not (tmp_path / "lb" / "records").exists()


# --- generation settings and filters a task YAML gives ----------------------------------------------------------

GENERATE = {"output_type": "generate_until", "doc_to_choice": None, "metric_list": [{"metric": "exact_match"}]}


@pytest.mark.parametrize("overrides, expected", [
    ({"generation_kwargs": {"max_gen_toks": 4, "num_beams": 1_000_000}},
     "generation_kwargs.num_beams: 1000000, not a whole number from 1 to 64"),
    ({"generation_kwargs": {"max_gen_toks": -4}}, "generation_kwargs.max_gen_toks: -4, not a whole number from 1"),
    ({"generation_kwargs": {"temperature": "hot"}}, "generation_kwargs.temperature: 'hot', not a number of at least 0"),
    ({"generation_kwargs": {"top_p": 7}}, "generation_kwargs.top_p: 7, not a number in (0, 1]"),
    ({"generation_kwargs": {"until": 5}}, "generation_kwargs.until: 5, not a stop sequence or a list of them"),
    ({"filter_list": [{"name": "x", "filter": [{"function": "take_first_k", "k": -5}]}]},
     "filter_list[0].filter[0].k: -5, not a whole number from 1 to 1000"),
    ({"filter_list": [{"name": "x", "filter": [{"function": "custom", "filter_fn": "os.system"}]}]},
     "filter_list[0].filter[0].filter_fn: 'os.system', not a function"),
    ({"doc_to_text": ["a", "b"]}, "doc_to_text: ['a', 'b'], not a template, a field name or an index"),
    ({"doc_to_target": {"x": 1}}, "doc_to_target: {'x': 1}, not a template, a field name, an index or a list"),
    ({"description": [1, 2]}, "description: [1, 2], not text"),
    ({"target_delimiter": 5}, "target_delimiter: 5, not text"),
], ids=["beams", "tokens", "temperature", "top-p", "until", "take-first-k", "custom-filter", "text-list", "target-map",
        "description-list", "delimiter-number"])
def test_generation_settings_and_filters_are_checked_before_the_model_loads(tmp_path, capsys, overrides, expected):
    folder = task_folder(tmp_path, [{"q": "a", "label": 1}], **GENERATE, **overrides)
    line = one_line_error(*eval_folder(folder, tmp_path, tmp_path / "no-model-needed", capsys))
    assert f"task 't' ({folder / 't.yaml'}) sets {expected}" in line
    assert not (tmp_path / "lb" / "records").exists()


@pytest.mark.parametrize("line, expected", [
    ("doc_to_text: !!binary e3sgcSB9fQ==", "doc_to_text: b'{{ q }}', not a template"),
    ('doc_to_choice: !!set {"yes", "no"}', "doc_to_choice: {"),
    ("doc_to_choice: null", "doc_to_choice: None, not a template, a field name, or a list or mapping of choices"),
])
def test_yaml_tags_and_nulls_in_template_fields_are_one_line(tmp_path, capsys, line, expected):
    folder = task_folder(tmp_path, [{"q": "a", "label": 1}])
    config = json.loads((folder / "t.yaml").read_text())
    config.pop(line.split(":")[0])  # written again below with its tag: one YAML line a key, JSON values
    (folder / "t.yaml").write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in config.items()) + line + "\n")
    line_out = one_line_error(*eval_folder(folder, tmp_path, tmp_path / "no-model-needed", capsys))
    assert f"task 't' ({folder / 't.yaml'}) sets {expected}" in line_out


def test_settings_lm_eval_tasks_use_pass():
    from medbench.task_setting_checks import check_task_settings

    config = {"generation_kwargs": {"until": ["\n\n", "Question:"], "do_sample": False, "temperature": 0.0,
                                    "max_gen_toks": 256, "num_beams": 10, "top_p": 0.95, "early_stopping": "never",
                                    "max_new_tokens": "{{ generation_kwargs.max_gen_toks }}"},
              "filter_list": [{"name": "maj", "filter": [{"function": "take_first_k", "k": 5},
                                                         {"function": "custom", "filter_fn": "!function utils.f"}]}]}
    check_task_settings(SimpleNamespace(name="t", path=Path("t.yaml"), config=config))


# --- a sweep's executor options and model, checked before its folder is made ------------------------------------

RECIPE = """name: r
scales: {{toy: {{model: {model}}}}}
grid: {{method: [base]}}
cell:
  model: "{{model}}"
  steps_by: method
  steps: {{base: []}}
  eval: {{tasks: [uti], limit: 2}}
"""


@pytest.mark.parametrize("extra, expected", [
    (["--executor-option", "gpus=-1"], "--executor-option gpus='-1' is not a whole number of 0 or more"),
    (["--executor-option", "workers=2"], "the local executor has no option(s) workers"),
    (["--set", "model="], "the model is 'None', not a model reference"),
])
def test_a_sweeps_bad_executor_option_or_empty_model_writes_nothing(tmp_path, capsys, monkeypatch, extra, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text(RECIPE.format(model="some/model"))
    line = one_line_error(*_run(capsys, "sweep", "r.yaml", "--output-dir", "out", *extra))
    assert expected in line
    assert not (tmp_path / "out").exists()


def test_the_local_executor_starts_no_more_workers_than_cells_or_gpus(monkeypatch):
    from medbench_plugins import executors

    monkeypatch.setattr(executors, "_gpu_count", lambda: 0)
    with pytest.raises(MedbenchError, match="gpus=2, but this machine has no GPU") as refused:
        executors.LocalExecutor().check_options({"gpus": "2"}, 3)  # N CPU workers, each with every thread
    assert "leave out --executor-option gpus" in refused.value.fix
    assert executors.LocalExecutor().check_options({"gpus": "1"}, 3) == 1
    monkeypatch.setattr(executors, "_gpu_count", lambda: 8)
    assert executors.LocalExecutor().check_options({"gpus": "8"}, 3) == 3
    monkeypatch.setattr(executors, "_gpu_count", lambda: 2)
    with pytest.raises(MedbenchError, match="gpus=4, but this machine has 2 GPU"):
        executors.LocalExecutor().check_options({"gpus": "4"}, 3)
    assert executors.LocalExecutor().check_options({}, 5) == 2


# --- an answer option that is a list or a mapping ---------------------------------------------------------------

@pytest.mark.parametrize("option", [["x"], {"y": 1}])
def test_an_answer_option_that_is_no_text_names_the_row(option):
    from medbench.taskdata import mcq_row

    with pytest.raises(MedbenchError, match="row 2: an answer option is a (list|mapping)"):
        mcq_row("Q?", ["a", option, "c", "d"], 1, "data.jsonl row 2")
    assert mcq_row("Q?", ["a", 2, 3.5, "d"], 1, "data.jsonl row 2")["choices"] == ["a", "2", "3.5", "d"]


# --- a served model's options, given for a model that runs in this process ---------------------------------------

@pytest.mark.parametrize("extra, expected", [
    (["--base-url", "http://127.0.0.1:9/v1"], "--base-url is for a served or plugin backend"),
    (["--concurrency", "4", "--backend-option", "foo=1"], "--concurrency, --backend-option foo are for a served"),
])
def test_served_model_options_for_an_in_process_model_are_refused_not_ignored(tmp_path, capsys, tiny_model_dir,
                                                                              extra, expected):
    line = one_line_error(*_run(capsys, "eval", "--model", str(tiny_model_dir), "--tasks", "uti", "--limit", "2",
                                "--leaderboard-dir", str(tmp_path / "lb"), *extra))
    assert expected in line and "runs in this process" in line and "--backend openai" in line
    assert not (tmp_path / "lb" / "records").exists()


# --- a leaderboard folder holding pages medbench did not write -------------------------------------------------

@pytest.mark.parametrize("name", ["index.html", "leaderboard.md", "leaderboard.csv", "leaderboard.json"])
def test_eval_into_a_folder_of_the_users_own_pages_overwrites_none(tmp_path, capsys, tiny_model_dir, name):
    site = tmp_path / "site"
    site.mkdir()
    (site / name).write_text("<html>my own page</html>\n")
    line = one_line_error(*_run(capsys, "eval", "--model", str(tiny_model_dir), "--tasks", "uti", "--limit", "2",
                                "--leaderboard-dir", str(site)))
    assert f"{site / name} already exists and is not a page of a medbench leaderboard" in line
    assert (site / name).read_text() == "<html>my own page</html>\n" and not (site / "records").exists()


def test_medbench_pages_or_a_records_folder_mark_a_leaderboard_folder(tmp_path):
    from medbench.leaderboard_folder import check_leaderboard_folder

    make_record(tmp_path / "board", "m", "medqa", *answers(4, 2))
    main(["leaderboard", "--dir", str(tmp_path / "board"), "--no-baselines"])
    check_leaderboard_folder(tmp_path / "board")  # its records/ beside
    for name in ("index.html", "leaderboard.md", "leaderboard.csv", "leaderboard.json"):
        (tmp_path / "pages").mkdir(exist_ok=True)
        (tmp_path / "pages" / name).write_bytes((tmp_path / "board" / name).read_bytes())
    check_leaderboard_folder(tmp_path / "pages")  # its records/ deleted: the pages are still medbench's
    (tmp_path / "other" / "records").mkdir(parents=True)
    (tmp_path / "other" / "index.html").write_text("anything")
    check_leaderboard_folder(tmp_path / "other")


@pytest.mark.parametrize("value", [["a", "b"], {"note": "x"}])
def test_a_list_or_mapping_where_a_task_reads_text_is_one_line(tmp_path, capsys, monkeypatch, value):
    # uti's normaliser wrote str(row["text"]): the Python text of the list was scored as the note.
    monkeypatch.chdir(tmp_path)
    tasks = Path(__file__).resolve().parent.parent / "tasks"
    rows = [json.loads(line) for line in (tasks / "uti" / "data" / "test.jsonl").read_text().splitlines()[:3]]
    rows[1]["text"] = value
    (tmp_path / "u.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    line = one_line_error(*_run(capsys, "eval", "--tasks", "uti", "--data-file", "uti=u.jsonl", "--limit", "1"))
    assert f"row 2: column text holds a {type(value).__name__} where the task reads text" in line


@pytest.mark.parametrize("label", [1.7, True, "1.5"])
def test_a_medqa_hf_label_that_is_not_a_whole_number_is_refused_not_truncated(label):
    # int() read 1.7 as 1 and true as 1: a wrong gold answer, never an error
    from task_files import task_module

    row = {"sent1": "Q?", "ending0": "a", "ending1": "b", "ending2": "c", "ending3": "d", "label": label}
    with pytest.raises(MedbenchError, match=r"is not the index \(0-3\) of the right ending"):
        task_module("medqa", "utils").normalize(row, "f.jsonl row 1")
    assert task_module("medqa", "utils").normalize({**row, "label": 1}, "f.jsonl row 1")["gold"] == 1
