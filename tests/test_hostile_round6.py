"""Hostile input, round 6: small text inputs of megabytes (task YAMLs, trainer and accelerate configs, system
prompts, records), a task YAML that fails to parse under another file name, KEY=VALUE options given twice with
different values (the last silently won), conflicting sweep options (`--json` without `--dry-run` ran the whole
grid), an `--accelerate-config` accelerate could not read (a traceback from every process), a --max-steps no run
reaches, and MedQA rows whose options are not its four letters (a template error, or an option dropped unseen)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from medbench.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from leaderboard_helpers import answers, make_record  # noqa: E402

MEDQA_ROW = {"question": "A 30-year-old has fever. Best next step?", "answer": "Blood cultures",
             "options": {"A": "Blood cultures", "B": "MRI", "C": "Discharge", "D": "Biopsy"}, "answer_idx": "A"}


def refused(argv: list[str], capsys) -> str:
    """Run the command line; it must end in exit 2 and one 'Error:' line on stderr, which is returned."""
    with pytest.raises(SystemExit) as stopped:
        main([str(arg) for arg in argv])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stopped.value.code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("Error:"), lines
    assert "Traceback" not in lines[0]
    return lines[0]


def task_folder(root: Path, name: str, text: str, file: str = "t.yaml") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "data.jsonl").write_text('{"q": "Is this a question?"}\n')
    (folder / file).write_text(f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files: "
                               f"{{test: {folder}/data.jsonl}}\ntest_split: test\noutput_type: multiple_choice\n"
                               f"doc_to_choice: [yes, no]\ndoc_to_target: 0\nmetric_list: [{{metric: acc}}]\n" + text)
    return folder


def eval_args(model: Path, tmp_path: Path, *extra: str, tasks: str = "medqa") -> list[str]:
    return ["eval", "--model", model, "--tasks", tasks, "--limit", "1", "--leaderboard-dir", tmp_path / "lb", *extra]


def train_args(model: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["train", "--plugin", "sft", "--model", model, "--task", "medqa", "--output-dir", tmp_path / "runs",
            "--leaderboard-dir", tmp_path / "lb", "--eval-limit", "1", *extra]


# --- small text inputs of megabytes --------------------------------------------------------------------------------


def test_a_task_yaml_of_megabytes_is_refused_before_it_is_parsed(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """A 50 MB task YAML took PyYAML over two minutes, then ran; past 1 MiB it is no task file."""
    import yaml

    folder = task_folder(tmp_path, "bulky", 'doc_to_text: "{{q}}"\nmetadata: {pad: "' + "A" * (2 << 20) + '"}\n')
    parsed = []
    real = yaml.load
    monkeypatch.setattr(yaml, "load", lambda text, *a, **k: parsed.append(len(text)) or real(text, *a, **k))
    line = refused(eval_args(tiny_model_dir, tmp_path, "--include-path", folder, tasks="bulky"), capsys)
    assert f"task file {folder / 't.yaml'} is larger than 1,048,576 bytes" in line
    assert "put its data in a data file" in line
    assert not any(size > 1 << 20 for size in parsed)  # never handed to the parser
    assert not (tmp_path / "lb" / "records").exists()


def test_a_task_yaml_that_fails_under_another_file_name_reports_its_own_problem(tiny_model_dir, tmp_path, capsys):
    """The registry knew a broken file only by its stem: `--tasks NAME` said "unknown task" for t.yaml's task."""
    mark = tmp_path / "pwned"
    folder = task_folder(tmp_path, "tagged", f'doc_to_text: !!python/object/apply:os.system ["touch {mark}"]\n')
    line = refused(eval_args(tiny_model_dir, tmp_path, "--include-path", folder, tasks="tagged"), capsys)
    assert "unknown task" not in line
    assert f"task file {folder / 't.yaml'} has the YAML tag !!python/object/apply:os.system" in line
    assert not mark.exists()


def test_a_system_prompt_file_past_any_prompt_is_refused_when_read(tiny_model_dir, tmp_path, capsys):
    prompt = tmp_path / "system.txt"
    with open(prompt, "wb") as handle:
        handle.truncate(8_000_000)  # sparse: no disk used
    line = refused(eval_args(tiny_model_dir, tmp_path, "--system-prompt-file", prompt), capsys)
    assert f"--system-prompt-file {prompt}" in line and "larger than 4,000,000 bytes" in line
    assert "a system prompt is a few KB" in line


def test_a_trainer_config_file_of_megabytes_is_refused(tiny_model_dir, tmp_path, capsys):
    config = tmp_path / "options.yaml"
    config.write_text("max_steps: 1\npad: '" + "A" * (2 << 20) + "'\n")
    line = refused(train_args(tiny_model_dir, tmp_path, "--config", config), capsys)
    assert f"config file {config} cannot be read (larger than 1,048,576 bytes)" in line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_record_past_the_record_bound_is_skipped_unread_and_the_rest_renders(tmp_path, capsys):
    from medbench.records import MAX_RECORD_BYTES

    golds, preds = answers(10, 6)
    make_record(tmp_path, "good", "medqa", golds, preds)
    crafted = tmp_path / "records" / "crafted" / "medqa" / "record.json"
    crafted.parent.mkdir(parents=True)
    with open(crafted, "wb") as handle:
        handle.truncate(MAX_RECORD_BYTES + 1)  # sparse: read whole, a larger one would exhaust memory
    main(["leaderboard", "--dir", str(tmp_path), "--no-baselines", "--format", "json"])
    err = capsys.readouterr().err
    assert f"skipping record {crafted}: unreadable (larger than {MAX_RECORD_BYTES:,} bytes)" in " ".join(err.split())
    rows = json.loads((tmp_path / "leaderboard.json").read_text())
    assert "good" in json.dumps(rows)


# --- an option given twice with different values ----------------------------------------------------------------


@pytest.mark.parametrize("extra, expected", [
    (["--backend-option", "x=1", "--backend-option", "x=2"], "--backend-option gives x two values, '1' and '2'"),
    (["--data-file", "medqa=FIRST", "--data-file", "medqa:test=SECOND"],
     "--data-file gives medqa (as medqa and as medqa:test) two values"),
])
def test_an_eval_option_given_twice_with_different_values_is_refused(tiny_model_dir, tmp_path, capsys, extra,
                                                                     expected):
    for name in ("FIRST", "SECOND"):
        (tmp_path / name).write_text(json.dumps(MEDQA_ROW) + "\n")
    extra = [arg.replace("FIRST", str(tmp_path / "FIRST")).replace("SECOND", str(tmp_path / "SECOND")) for arg in extra]
    line = refused(eval_args(tiny_model_dir, tmp_path, *extra), capsys)
    assert expected in line and "pass " in line and " once for " in line
    assert not (tmp_path / "lb").exists()


def test_the_same_value_twice_or_two_splits_are_no_conflict(tmp_path):
    from medbench.commands.common import data_file_pairs, key_values

    assert key_values(("x=1", "x=1"), "--backend-option") == {"x": "1"}
    assert key_values(("medqa=a.jsonl", "medqa:train=b.jsonl"), "--data-file") == {"medqa": "a.jsonl",
                                                                                   "medqa:train": "b.jsonl"}
    data = tmp_path / "test.jsonl"
    data.write_text(json.dumps(MEDQA_ROW) + "\n")
    assert data_file_pairs((f"medqa={data}", f"medqa:test={data}")) == {"medqa": str(data), "medqa:test": str(data)}


def test_a_trainer_option_or_a_recipe_variable_given_twice_is_refused(tiny_model_dir, tmp_path, capsys):
    line = refused(train_args(tiny_model_dir, tmp_path, "--max-steps", "1", "--max-steps", "2"), capsys)
    assert "--max-steps is given twice, as '1' and '2'" in line and "pass --max-steps once" in line
    line = refused(["sweep", "sft_vs_dpo", "--dry-run", "--set", "eval_limit=1", "--set", "eval_limit=2"], capsys)
    assert "--set gives eval_limit two values, '1' and '2'" in line


# --- conflicting and unknown sweep options ---------------------------------------------------------------------


def test_sweep_json_without_dry_run_is_refused_not_a_run_of_the_whole_grid(tmp_path, capsys):
    out = tmp_path / "sweep"
    line = refused(["sweep", "sft_vs_dpo", "--json", "--output-dir", out], capsys)
    assert "--json prints the plan, which only --dry-run does" in line and "add --dry-run" in line
    assert not out.exists()


def test_an_unknown_executor_is_refused_before_the_plan_or_its_folder(tmp_path, capsys):
    out = tmp_path / "sweep"
    line = refused(["sweep", "sft_vs_dpo", "--executor", "nope", "--output-dir", out], capsys)
    assert "unknown executor 'nope'" in line
    assert not out.exists()


# --- training: the accelerate config and --max-steps -----------------------------------------------------------


@pytest.mark.parametrize("content, expected", [
    ("\x1b[31m not yaml", "is not valid YAML"),
    ("- a list\n", "is not a mapping of accelerate settings"),
    (None, "cannot be read (not a regular file)"),
])
def test_an_accelerate_config_accelerate_cannot_read_is_one_line_before_any_launch(tiny_model_dir, tmp_path,
                                                                                   capsys, content, expected):
    config = tmp_path / "accelerate.yaml"
    if content is None:
        os.mkfifo(config)
    else:
        config.write_text(content)
    line = refused(train_args(tiny_model_dir, tmp_path, "--accelerate-config", config, "--max-steps", "1"), capsys)
    assert f"--accelerate-config {config} {expected}" in line and "leave out --accelerate-config" in line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # no run directory made


def test_a_max_steps_no_run_reaches_is_refused(tiny_model_dir, tmp_path, capsys):
    line = refused(train_args(tiny_model_dir, tmp_path, "--max-steps", "99999999999999999999999"), capsys)
    assert "--max-steps must be 1 to 1,000,000,000 optimizer steps" in line and "got 99999999999999999999999" in line


# --- MedQA rows whose options are not A to D ---------------------------------------------------------------------


@pytest.mark.parametrize("options, shown", [
    ({"A": "Blood cultures"}, "got A"),  # the prompt's choices[1] failed inside lm-eval's template
    ({"A": "a", "B": "b", "C": "c", "D": "d", "E": "e"}, "got A, B, C, D, E"),  # E was dropped unseen
])
def test_a_medqa_row_without_exactly_its_four_letters_names_the_row(tiny_model_dir, tmp_path, capsys, options,
                                                                    shown):
    data = tmp_path / "mine.jsonl"
    data.write_text(json.dumps({**MEDQA_ROW, "options": options}) + "\n")
    line = refused(eval_args(tiny_model_dir, tmp_path, "--data-file", f"medqa={data}"), capsys)
    assert f"{data} row 1: options must map the letters A, B, C and D" in line and shown in line
    assert "UndefinedError" not in line


# --- difficulty: the file it writes over, and its own --data-file --------------------------------------------------


def test_difficulty_never_writes_over_a_file_it_did_not_write(tiny_model_dir, tmp_path, capsys):
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps(MEDQA_ROW) + "\n")
    precious = tmp_path / "notes.jsonl"
    precious.write_text("my own notes\n")
    line = refused(["difficulty", "--models", tiny_model_dir, "--task", "medqa", "--output", precious,
                    "--data-file", f"medqa:train={train}"], capsys)
    assert f"--output {precious} already exists and is not a file this command wrote" in line
    assert precious.read_text() == "my own notes\n"
    line = refused(["difficulty", "--models", tiny_model_dir, "--task", "medqa", "--output", tmp_path / "new.jsonl",
                    "--data-file", f"medqa:train={train}", "--data-file", f"medqa:train={precious}"], capsys)
    assert "--data-file gives medqa:train two values" in line
    assert not (tmp_path / "new.jsonl").exists()


def test_a_previous_difficulty_file_or_an_empty_one_may_be_written_again(tmp_path):
    from medbench.errors import MedbenchError
    from medbench.small_inputs import refuse_foreign_output

    previous = tmp_path / "medqa-difficulty.jsonl"
    previous.write_text(json.dumps({"key": "k", "difficulty": 0.5, "tier": "easy"}) + "\n")
    (tmp_path / "empty.jsonl").write_text("")
    for ours in (previous, tmp_path / "empty.jsonl", tmp_path / "missing.jsonl"):
        refuse_foreign_output(ours, "--output", ("key", "difficulty"))
    (tmp_path / "link.jsonl").symlink_to(previous)
    os.mkfifo(tmp_path / "fifo.jsonl")
    for foreign in ("link.jsonl", "fifo.jsonl"):
        with pytest.raises(MedbenchError, match="is not a file this command wrote"):
            refuse_foreign_output(tmp_path / foreign, "--output", ("key", "difficulty"))


# --- listings print names from task YAMLs and folders as text ----------------------------------------------------


def test_the_tasks_listing_shows_a_yamls_control_sequences_and_markup_as_text(tmp_path, capsys):
    """`medbench tasks` printed a user YAML's task name, metric and metadata raw: ESC[2J cleared the screen."""
    folder = task_folder(tmp_path, "placeholder", "")
    text = (folder / "t.yaml").read_text().replace("task: placeholder", 'task: "evil\\e[2Jname"')
    (folder / "t.yaml").write_text(text + 'metadata: {primary_metric: "[bold]acc\\e]0;title\\a"}\n')
    main(["tasks", "--include-path", str(folder)])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "evil\\x1b[2Jname" in out and "[bold]acc\\x1b]0;title\\x07" in " ".join(out.split())


def test_a_listing_row_is_text_never_a_control_sequence(capsys):
    from medbench.commands.common import print_listing

    print_listing([{"ref": "model\x1b[31m[red]x"}], "models", {"ref": lambda r: r["ref"]}, False)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "model\\x1b[31m[red]x" in out
