"""Hostile input, round 8: an untrusted task folder that reaches code or files outside it through what lm-eval and
`datasets` do by themselves: generation_kwargs passed to model.generate (custom_generate with trust_remote_code
imports a folder's code), a data file named with a one-colon URL prefix (file:/abs and local:/abs, which fsspec
reads as /abs), and a packaged builder that opens files beside the data files named (harbor's instruction.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from medbench.cli import main


def refused(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as stopped:
        main([str(arg) for arg in argv])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stopped.value.code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("Error:") and "Traceback" not in lines[0], lines
    return lines[0]


def untrusted_task(folder: Path, body: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rows.jsonl").write_text('{"q": "Is the sky blue?", "a": 0}\n{"q": "Is fire cold?", "a": 1}\n')
    (folder / "t.yaml").write_text("task: t\ntest_split: test\ndoc_to_text: '{{ q }}'\n"
                                   "metric_list:\n  - metric: acc\n" + body)


def eval_untrusted(model: Path, tmp_path: Path) -> list:
    return ["eval", "--model", model, "--tasks", "t", "--include-path", tmp_path / "tasks", "--limit", "2",
            "--leaderboard-dir", tmp_path / "lb"]


@pytest.mark.parametrize("keys", ["custom_generate: {code}\n  trust_remote_code: true", "trust_remote_code: true",
                                  "custom_generate: {code}"])
def test_generation_kwargs_that_reach_code_are_refused(keys, tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = tmp_path / "tasks" / "gen"
    (code / "custom_generate").mkdir(parents=True)
    (code / "custom_generate" / "generate.py").write_text(
        f"open({str(tmp_path / 'RAN')!r}, 'w').write('ran')\ndef generate(model, input_ids, **kw):\n"
        "    return input_ids\n")
    untrusted_task(tmp_path / "tasks", "dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: tasks/rows.jsonl\n"
                   "output_type: generate_until\ndoc_to_target: '{{ a }}'\ngeneration_kwargs:\n  until: ['\\n']\n"
                   f"  max_gen_toks: 4\n  {keys.format(code=code)}\n")
    line = refused(eval_untrusted(tiny_model_dir, tmp_path), capsys)
    assert "generation_kwargs" in line and "--trust-task-code" in line
    assert not (tmp_path / "RAN").exists()


@pytest.mark.parametrize("prefix", ["file:", "local:", "FILE:"])
def test_a_one_colon_url_prefix_cannot_name_a_file_outside(prefix, tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.jsonl").write_text('{"q": "SECRET-MARKER", "a": 0}\n')
    (tmp_path / "tasks" / "ds").mkdir(parents=True)
    (tmp_path / "tasks" / "ds" / "rows.jsonl").write_text('{"q": "x", "a": 0}\n')
    untrusted_task(tmp_path / "tasks", f"dataset_path: ./tasks/ds\ndataset_kwargs:\n  data_files:\n"
                   f"    test: '{prefix}{tmp_path / 'outside' / 'secret.jsonl'}'\noutput_type: multiple_choice\n"
                   "doc_to_choice: ['yes', 'no']\ndoc_to_target: a\n")
    line = refused(eval_untrusted(tiny_model_dir, tmp_path), capsys)
    assert "outside the --include-path folder" in line
    assert not any("SECRET-MARKER" in p.read_text(errors="replace") for p in (tmp_path / "lb").rglob("*")
                   if p.is_file()) if (tmp_path / "lb").exists() else True


def test_a_builder_that_opens_files_beside_its_data_is_refused(tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.md").write_text("SECRET-MARKER\n")
    task = tmp_path / "tasks" / "h" / "a"
    task.mkdir(parents=True)
    (task / "task.toml").write_text('[task]\nname = "a"\n')
    os.symlink(tmp_path / "outside" / "secret.md", task / "instruction.md")
    untrusted_task(tmp_path / "tasks", f"dataset_path: harbor\ndataset_kwargs:\n  data_files:\n"
                   f"    test: {task / 'task.toml'}\noutput_type: multiple_choice\ndoc_to_choice: ['yes', 'no']\n"
                   "doc_to_target: 0\n")
    line = refused(eval_untrusted(tiny_model_dir, tmp_path), capsys)
    assert "'harbor'" in line and "json, csv, parquet, text, arrow" in line


def test_a_trusted_folder_keeps_its_generation_settings_and_builders(tmp_path):
    """The checks are for untrusted folders: with --trust-task-code the same YAML reads as written."""
    from medbench.tasks import build_registry, task_sources

    untrusted_task(tmp_path / "tasks", "dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: rows.jsonl\n"
                   "output_type: generate_until\ndoc_to_target: '{{ a }}'\ngeneration_kwargs:\n"
                   "  until: ['\\n']\n  trust_remote_code: true\n")
    with task_sources([str(tmp_path / "tasks")], True):
        entry = build_registry().get("t")
    assert entry.refusal is None and entry.config["generation_kwargs"]["trust_remote_code"] is True


RECIPE = """name: x
scales:
  toy: {model: smollm2-135m-instruct}
grid:
  seed: [1]
cell:
  model: "{model}"
  steps: []
  eval: {tasks: [uti], limit: 2}
comparisons: []
"""


@pytest.mark.parametrize("old, new, expected", [
    ("eval: {tasks: [uti], limit: 2}", "eval: [uti]", "cell.eval is list, not a mapping"),
    ("seed: [1]", "seed: [1]\n  5: [a]", "grid factor '5' is not a name"),
    ("seed: [1]", "seed: [null]", "seed 'None' is not a whole number"),
    ("seed: [1]", "seed: [abc]", "seed 'abc' is not a whole number"),
    ("seed: [1]", "seed: [true]", "seed 'True' is not a whole number"),
])
def test_recipe_values_of_the_wrong_type_are_one_line_at_dry_run(old, new, expected, tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.replace(old, new))
    assert expected in refused(["sweep", recipe, "--dry-run"], capsys)


LOADER = """from medbench import hookimpl
class Loader:
    name, priority = {name!r}, {priority!r}
    def can_load(self, ref): return ref.startswith("junk:")
    def load(self, ref, options): raise RuntimeError
    def describe(self): return {rows!r}
@hookimpl
def register_model_loaders(register):
    register(Loader())
"""


@pytest.mark.parametrize("name, priority, rows, command, expected", [
    ("junk", "high", [], "models", "priority is 'high', not a number"),
    (5, 1, [], "models", "name is 5, not a name"),
    ("junk", 1, [{"ref": "junk:x"}], "models", "describe() must return a list of {ref, kind, status"),
])
def test_a_plugin_object_of_the_wrong_shape_is_one_line_naming_the_plugin(name, priority, rows, command, expected,
                                                                          tmp_path, capsys):
    """A registered object is checked when it is registered (and describe() rows when listed): a wrong type was a
    bare TypeError or KeyError in an unrelated command, naming no plugin."""
    (tmp_path / "plugs").mkdir()
    (tmp_path / "plugs" / "junk.py").write_text(LOADER.format(name=name, priority=priority, rows=rows))
    with pytest.raises(SystemExit) as stopped:
        main(["--plugins-dir", str(tmp_path / "plugs"), command])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error:")]
    assert stopped.value.code in (1, 2) and len(lines) == 1, lines  # 1: the plugin's code failed, not the input
    assert "plugin 'junk'" in lines[0] and expected in lines[0]
