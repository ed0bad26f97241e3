"""Untrusted files that are not what they claim: a FIFO where a file should be, JSON nested past the parser,
YAML alias bombs, paths leading out of a recipe's folder, values of the wrong type. Each is one line naming the
problem and the fix (exit 2), or a skipped record with a warning; none hangs or crashes."""

import json
import os
import textwrap
import warnings
from pathlib import Path

import pytest

from medbench.errors import MedbenchError
from medbench.records import RecordError, load_record, read_regular_text
from medbench.recipe import read_recipe
from medbench.sweeps import plan
from medbench.task_yaml import read_task_yaml
from medbench.training import build_config, read_config_file
from medbench_plugins.sft import SFTOptions

fifo_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


@fifo_only
def test_a_fifo_is_refused_not_read(tmp_path):
    fifo = tmp_path / "task.yaml"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        read_regular_text(fifo)
    with pytest.raises(MedbenchError, match=r"task file .*task.yaml cannot be read \(not a regular file\)"):
        read_task_yaml(fifo)
    with pytest.raises(RecordError, match="unreadable"):
        load_record(fifo)
    with pytest.raises(MedbenchError, match=r"config file .* cannot be read \(not a regular file\)"):
        read_config_file(fifo)
    with pytest.raises(MedbenchError, match=r"recipe .* cannot be read \(not a regular file\)"):
        read_recipe(fifo)


@pytest.mark.parametrize("text, reason", [("[" * 100_000 + "]" * 100_000, "RecursionError"),
                                          ('{"score": ' + "9" * 5000 + "}", "ValueError")])
def test_a_record_json_past_the_parsers_limits_is_a_record_error(tmp_path, text, reason):
    path = tmp_path / "record.json"
    path.write_text(text)
    with pytest.raises(RecordError, match=f"not readable JSON \\({reason}"):
        load_record(path)


def test_a_damaged_record_is_skipped_and_the_leaderboard_still_renders(tmp_path, capsys):
    from leaderboard_helpers import make_record
    from medbench.cli import main

    make_record(tmp_path, "base", "medqa", [1, 0, 1], [1, 1, 1])
    bad = tmp_path / "records" / "deep" / "medqa" / "record.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("[" * 100_000 + "]" * 100_000)
    try:
        main(["leaderboard", "--leaderboard-dir", str(tmp_path)])
    except SystemExit as exit_:
        assert exit_.code in (0, None), capsys.readouterr().err
    err = capsys.readouterr().err
    assert "RecursionError" in err and (tmp_path / "leaderboard.md").exists()


RECIPE = """
name: hostile
scales: {toy: {model: m}}
grid: {method: [base]}
cell:
  model: "{model}"
  steps: []
  eval: {tasks: [medqa]%s}
"""


@pytest.mark.parametrize("eval_extra, expected", [
    (", system_prompt_file: ../outside.txt", "system_prompt-file ../outside.txt lies outside the recipe's folder"),
    (", limit: -1", "eval.limit -1 is not a whole number 1 or more"),
    (", limit: lots", "eval.limit 'lots' is not a whole number 1 or more"),
    (", batch_size: most", "eval.batch_size 'most' is not a whole number 1 or more or auto"),
    (", judge_options: [1, 2]", "eval.judge_options is not a mapping"),
])
def test_a_recipe_is_checked_at_plan_time(tmp_path, eval_extra, expected):
    folder = tmp_path / "recipes"
    folder.mkdir()
    (tmp_path / "outside.txt").write_text("You are a helpful assistant.")
    recipe = folder / "r.yaml"
    recipe.write_text(RECIPE % eval_extra)
    with pytest.raises(MedbenchError) as error:
        plan(read_recipe(recipe), "toy", tmp_path / "out")
    assert expected in error.value.one_line()


def test_a_recipe_may_leave_the_scoring_batch_to_the_gpu(tmp_path):
    folder = tmp_path / "recipes"
    folder.mkdir()
    recipe = folder / "r.yaml"
    recipe.write_text(RECIPE % ", batch_size: auto")
    (cell,) = plan(read_recipe(recipe), "toy", tmp_path / "out").cells
    assert cell.eval["batch_size"] == "auto"


def test_a_recipe_reads_no_data_file_outside_its_folder(tmp_path):
    folder = tmp_path / "recipes"
    folder.mkdir()
    (tmp_path / "secret.jsonl").write_text("{}\n")
    recipe = folder / "r.yaml"
    recipe.write_text(RECIPE % "" + "data_files: {medqa: ../secret.jsonl}\n")
    with pytest.raises(MedbenchError, match="lies outside the recipe's folder.*pass --data-file medqa="):
        plan(read_recipe(recipe), "toy", tmp_path / "out")


@pytest.mark.parametrize("body, expected", [
    ("scales: [toy]\ngrid: {method: [base]}\ncell: {eval: {tasks: [medqa]}}\n",
     "scales must map each scale's name to its variables"),
    ('x: &a ["lol", "lol"]\ny: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nz: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n'
     'w: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\nv: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n'
     'u: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n', "expands to more than 100000 values"),
    ("toy: &t {self: *t}\n", "expands to"),
    ("bad: \xff\n", None),
])
def test_a_malformed_recipe_is_one_line(tmp_path, body, expected):
    recipe = tmp_path / "r.yaml"
    if expected is None:
        recipe.write_bytes(b"name: r\nbad: \xff\n")
        expected = "is not UTF-8 text"
    else:
        recipe.write_text("name: r\n" + body)
    with pytest.raises(MedbenchError) as error:
        read_recipe(recipe)
    assert expected in error.value.one_line()


def test_a_grid_too_large_to_plan_is_refused(tmp_path):
    recipe = tmp_path / "r.yaml"
    grid = {f"f{i}": list(range(10)) for i in range(5)}
    recipe.write_text(textwrap.dedent(RECIPE % "").replace("grid: {method: [base]}", f"grid: {json.dumps(grid)}"))
    with pytest.raises(MedbenchError, match=r"grid expands to 100,000 cells \(10 x 10 x 10 x 10 x 10\)"):
        plan(read_recipe(recipe), "toy", tmp_path / "out")


@pytest.mark.parametrize("metadata, expected", [
    ("metadata: hello", "metadata is 'hello', not a mapping"),
    ("metadata: {primary_metric: [acc]}", "metadata.primary_metric is ['acc'], not a string"),
    ("metadata: {medbench_metrics: macro_f1}", "metadata.medbench_metrics is 'macro_f1', not a list of names"),
    ("metadata: {baseline_ceiling: high}", "metadata.baseline_ceiling is 'high', not a number in (0, 1]"),
    ("num_fewshot: -1", "num_fewshot is -1, not a whole number 0 or more"),
])
def test_task_yaml_fields_of_the_wrong_type_are_one_line(tmp_path, metadata, expected):
    path = tmp_path / "t.yaml"
    path.write_text(f"task: t\ndataset_path: json\ndoc_to_text: q\ndoc_to_target: a\n{metadata}\n")
    with pytest.raises(MedbenchError) as error:
        read_task_yaml(path)
    assert expected in error.value.one_line()


@pytest.mark.parametrize("options, expected", [
    ({"learning_rate": "nan"}, "--learning-rate nan is not a finite number"),
    ({"num_epochs": "inf"}, "--num-epochs inf is not a finite number"),
    ({"max_steps": 1.7}, "--max-steps 1.7 is not an integer"),
])
def test_trainer_numbers_that_are_no_numbers_are_refused_before_training(options, expected):
    with pytest.raises(MedbenchError, match=expected):
        build_config(SFTOptions, {}, options, "sft")


def test_nothing_warns_for_the_bundled_recipes():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        for path in sorted((Path(__file__).resolve().parent.parent / "recipes").glob("*.yaml")):
            read_recipe(path)


@pytest.mark.parametrize("template, expected", [
    ("{{ 'a' * 30000000 }}{{ q }}", "repeating a sequence 30000000 times"),
    ("{{ 9 ** 9999999 }}", r"the power 9 \*\* 9999999 is too large"),
    ("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}", "rendering took more than"),
    ("{{ q | regex_replace('^(a|aa)+$', 'x') }}", None),  # answers (the regex module) or stops at its time limit
])
def test_an_untrusted_template_cannot_hang_or_exhaust_medbench(template, expected, monkeypatch):
    import lm_eval.utils as lm_utils
    from jinja2.sandbox import SecurityError

    from medbench import task_trust

    monkeypatch.setattr(task_trust, "MAX_RENDER_SECONDS", 0.5)
    with task_trust.sandboxed_templates():
        if expected is None:
            try:
                lm_utils.apply_template(template, {"q": "a" * 40 + "!"})
            except SecurityError as exc:
                assert "regex_replace ran past" in str(exc) or "rendering took more than" in str(exc)
            return
        with pytest.raises(SecurityError, match=expected):
            lm_utils.apply_template(template, {"q": "x"})
    assert lm_utils.apply_template("{{ q }}", {"q": "back"}) == "back"  # the stock renderer is restored


def test_a_user_task_whose_rows_do_not_fit_its_yaml_is_one_line(medbench_cli, tiny_model_dir, tmp_path,
                                                                 monkeypatch):
    folder = tmp_path / "rows"
    folder.mkdir()
    (folder / "t.yaml").write_text(textwrap.dedent("""
        task: rows_mismatch
        dataset_path: json
        dataset_kwargs:
          data_files: {test: d.jsonl}
        output_type: multiple_choice
        test_split: test
        doc_to_text: "{{ q }}"
        doc_to_target: a
        doc_to_choice: ["x", "y"]
    """))
    (folder / "d.jsonl").write_text('{"q": "x", "a": 0}\n{"z": 1}\n')
    monkeypatch.chdir(folder)  # lm-eval's dataset_kwargs paths are relative to the working directory
    result = medbench_cli("eval", "--model", tiny_model_dir, "--tasks", "rows_mismatch", "--include-path", folder,
                          "--limit", "2", "--leaderboard-dir", tmp_path / "lb")
    assert result.exit_code == 2, result.output
    line = " ".join(result.output.split())  # the row and the field it lacks, before the model scores anything
    assert "task 'rows_mismatch': row 2 of its 'test' split has no value for" in line


def test_a_limit_past_any_split_is_refused_before_the_model_loads():
    from medbench.evaluation import EvalConfig

    with pytest.raises(MedbenchError, match="--limit 100000000000000000000 is more items than any task holds"):
        EvalConfig(tasks=["medqa"], limit=10**20)
