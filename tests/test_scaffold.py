"""`medbench plugin new NAME`: a new plugin package from the template the example plugin is rendered from."""

import importlib
import py_compile
import shlex
import sys
import tomllib
from pathlib import Path

import pytest

import medbench
from medbench.errors import MedbenchError
from medbench_plugins import scaffold

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "medbench-plugin-example"


def test_template_and_example_stay_in_sync(tmp_path):
    rendered = tmp_path / "rendered"
    scaffold.render(scaffold.EXAMPLE_VALUES, rendered)
    produced = {p.relative_to(rendered).as_posix(): p for p in scaffold.template_output_files(rendered)}
    example = {p.relative_to(EXAMPLE).as_posix(): p for p in scaffold.template_output_files(EXAMPLE)}
    fix = "edit plugins/plugin_template, then run `.venv/bin/python -m medbench_plugins.scaffold --update-example`"
    assert sorted(produced) == sorted(example), fix
    different = [name for name in produced if produced[name].read_bytes() != example[name].read_bytes()]
    assert not different, f"{different} differ from the template: {fix}"


def test_template_ships_as_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "plugin_template/**/*" in config["tool"]["setuptools"]["package-data"]["medbench_plugins"]
    files = scaffold.template_files()
    # Code and config are .tmpl files, so no tool (pytest, a linter, a build backend) takes them for the real thing.
    assert files and all(f.name.endswith(".tmpl") or f.suffix == ".jsonl" for f in files)


def test_names_derive_from_name():
    values = scaffold.values_for("Cardio-Notes")
    assert values == {"dist": "medbench-cardio-notes", "package": "medbench_cardio_notes",
                      "entry_point": "cardio_notes", "task": "cardio_notes_drug_interaction",
                      "trainer": "cardio_notes_orpo", "metric": "cardio_notes_cohen_kappa",
                      "medbench_version": medbench.__version__}
    assert scaffold.values_for("medbench-triage")["package"] == "medbench_triage"  # no double prefix


@pytest.mark.parametrize("name, message", [
    ("cardio notes", "plugin name 'cardio notes' is not valid — use lowercase letters, digits"),
    ("1cardio", "is not valid"),
    ("cardio--notes", "is not valid"),
    ("cardio.notes", "is not valid"),
    ("medbench", "too generic"),
    ("plugin", "too generic"),
])
def test_invalid_names_are_refused(name, message, tmp_path):
    with pytest.raises(MedbenchError, match=message):
        scaffold.new_plugin(name, tmp_path)
    assert not list(tmp_path.iterdir())


def test_a_name_taken_by_an_installed_plugin_is_refused(tmp_path):
    with pytest.raises(MedbenchError, match="plugin name 'sft' is already used by package medbench"):
        scaffold.new_plugin("sft", tmp_path)


def test_an_existing_directory_is_never_overwritten(medbench_cli, tmp_path):
    existing = tmp_path / "medbench-cardio"
    existing.mkdir()
    (existing / "mine.txt").write_text("keep me")
    result = medbench_cli("plugin", "new", "cardio", "--dir", tmp_path)
    assert result.exit_code != 0 and isinstance(result.exception, MedbenchError)
    message = str(result.exception)
    assert message == (f"{existing} already exists — pick another NAME, pass --dir to write elsewhere, or move that "
                       f"directory away")
    assert [p.name for p in existing.iterdir()] == ["mine.txt"]


def test_plugin_new_writes_a_package_whose_task_trainer_and_metric_register(medbench_cli, tmp_path, monkeypatch,
                                                                           plugin_registration):
    from medbench.tasks import read_task_yaml

    result = medbench_cli("plugin", "new", "cardio-notes", "--dir", tmp_path / "work")
    assert result.exit_code == 0, result.output
    package_dir = tmp_path / "work" / "medbench-cardio-notes"
    assert f"wrote {package_dir}" in result.output
    # The install line names the interpreter medbench runs in, not whichever pip is first on PATH.
    assert f"{shlex.quote(sys.executable)} -m pip install -e {shlex.quote(str(package_dir))}" in result.output

    files = {p.relative_to(package_dir).as_posix() for p in package_dir.rglob("*") if p.is_file()}
    task_dir = "src/medbench_cardio_notes/tasks/cardio_notes_drug_interaction"
    assert files == {"pyproject.toml", "README.md", "tests/test_medbench_cardio_notes.py",
                     "src/medbench_cardio_notes/__init__.py", "src/medbench_cardio_notes/trainer.py",
                     "src/medbench_cardio_notes/metrics.py", f"{task_dir}/cardio_notes_drug_interaction.yaml",
                     f"{task_dir}/utils.py", f"{task_dir}/data/train.jsonl", f"{task_dir}/data/validation.jsonl",
                     f"{task_dir}/data/test.jsonl"}
    for path in package_dir.rglob("*"):
        if path.is_file():
            assert "%%" not in path.read_text(), path
            if path.suffix == ".py":
                py_compile.compile(str(path), doraise=True, cfile=str(tmp_path / "pyc" / path.name))

    project = tomllib.loads((package_dir / "pyproject.toml").read_text())["project"]
    assert project["name"] == "medbench-cardio-notes"
    assert f"medbench[train]>={medbench.__version__}" in project["dependencies"]
    assert project["entry-points"]["medbench"] == {"cardio_notes": "medbench_cardio_notes"}
    config = read_task_yaml(package_dir / task_dir / "cardio_notes_drug_interaction.yaml")
    assert config["task"] == "cardio_notes_drug_interaction"
    assert config["metadata"]["medbench_metrics"] == ["cardio_notes_cohen_kappa", "f1"]

    # Without pip: put the package on sys.path and register its module as its entry point would.
    monkeypatch.syspath_prepend(str(package_dir / "src"))
    module = importlib.import_module("medbench_cardio_notes")
    try:
        check_registers(module, plugin_registration)
    finally:
        for module_name in [m for m in sys.modules if m.startswith("medbench_cardio_notes")]:
            del sys.modules[module_name]


def check_registers(module, plugin_registration):
    from medbench.metrics import metric_registry
    from medbench.tasks import build_registry, load_tasks, split_sizes
    from medbench.training import trainer_registry

    name = plugin_registration(module, "cardio_notes")
    registry = build_registry()
    assert registry.get("cardio_notes_drug_interaction").plugin == name
    task = load_tasks(["cardio_notes_drug_interaction"], registry)["cardio_notes_drug_interaction"]
    assert split_sizes(task) == {"train": 32, "validation": 8, "test": 20}
    trainer = trainer_registry()["cardio_notes_orpo"]
    assert trainer.config_class.__name__ == "ORPOOptions"
    metric = metric_registry()["cardio_notes_cohen_kappa"]
    assert metric.plugin == name and metric.fn([0, 1, 1, 0], [0, 1, 1, 0]) == 1.0
    # Beside the installed example: its own task, trainer and metric are still there, under their names.
    assert registry.get("drug_interaction").plugin == "example" and trainer_registry()["orpo"] is not trainer
