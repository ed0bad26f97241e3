import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from medbench.errors import MedbenchError
from medbench.tasks import build_registry, load_tasks, read_task_yaml, split_sizes

REPO = Path(__file__).resolve().parent.parent
MEDQA_ROW = {"question": "A 30-year-old has fever. Best next step?", "answer": "Blood cultures",
             "options": {"A": "Blood cultures", "B": "MRI", "C": "Discharge", "D": "Biopsy"},
             "answer_idx": "A", "meta_info": "step2&3"}


def test_builtin_tasks_are_registered_with_their_plugin():
    registry = build_registry()
    assert {"medqa", "medmcqa"} <= set(registry.entries)
    assert registry.entries["medqa"].plugin == "builtin_tasks"
    assert registry.entries["medqa"].primary_metric == "acc"
    assert not registry.problems


@pytest.mark.parametrize("name", ["medqa", "medmcqa"])
def test_bundled_samples_load_with_all_splits(name):
    task = load_tasks([name])[name]
    assert split_sizes(task) == {"train": 60, "validation": 20, "test": 40}
    doc = task.test_docs()[0]
    assert len(doc["choices"]) == 4 and 0 <= doc["gold"] < 4
    assert doc["subject"] and doc["difficulty"] in {"easy", "medium", "hard"}


def _lm_eval_task_module(folder: str, module: str):
    """A helper module of one of lm-eval's own task folders (they are files, not an importable package)."""
    import importlib.util

    import lm_eval

    path = Path(lm_eval.__file__).parent / "tasks" / folder / f"{module}.py"
    spec = importlib.util.spec_from_file_location(f"lm_eval_task_{module}", path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def test_mcq_prompts_are_stock_lm_evals_character_for_character():
    """medqa / medmcqa score what lm-eval's medqa_4options / medmcqa score, so the two harnesses' numbers on the
    same data compare: same prompt text, same letters, same gold index."""
    medqa = _lm_eval_task_module("medqa", "preprocess_medqa")
    medmcqa = _lm_eval_task_module("medmcqa", "utils_medmcqa")
    tasks = load_tasks(["medqa", "medmcqa"])
    for doc in tasks["medqa"].test_docs():
        hub_row = {"sent1": doc["question"], **{f"ending{i}": c for i, c in enumerate(doc["choices"])},
                   "label": doc["gold"]}
        assert tasks["medqa"].doc_to_text(doc) == medqa.doc_to_text(hub_row)
        assert tasks["medqa"].doc_to_target(doc) == medqa.doc_to_target(hub_row)
    for doc in tasks["medmcqa"].test_docs():
        hub_row = {"question": doc["question"], **dict(zip(("opa", "opb", "opc", "opd"), doc["choices"]))}
        assert tasks["medmcqa"].doc_to_text(doc) == medmcqa.doc_to_text(hub_row)
    for name in ("medqa", "medmcqa"):
        assert tasks[name].doc_to_choice(tasks[name].test_docs()[0]) == ["A", "B", "C", "D"]


def test_data_paths_resolve_relative_to_the_yaml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert len(load_tasks(["medqa"])["medqa"].test_docs()) == 40


def test_user_file_in_published_medqa_format(tmp_path):
    path = tmp_path / "my_medqa.jsonl"
    path.write_text("\n".join(json.dumps({**MEDQA_ROW, "answer_idx": letter}) for letter in "ABCD"))
    task = load_tasks(["medqa"], metadata={"medqa": {"data_files": {"test": str(path)}}})["medqa"]
    assert [d["gold"] for d in task.test_docs()] == [0, 1, 2, 3]


def test_user_file_in_hub_medqa_format(tmp_path):
    row = {"id": "x", "sent1": "Which drug?", "sent2": "", "ending0": "a", "ending1": "b", "ending2": "c",
           "ending3": "d", "label": 2}
    path = tmp_path / "hf.jsonl"
    path.write_text(json.dumps(row))
    task = load_tasks(["medqa"], metadata={"medqa": {"data_files": {"test": str(path)}}})["medqa"]
    assert task.test_docs()[0]["gold"] == 2 and task.test_docs()[0]["question"] == "Which drug?"


@pytest.mark.parametrize("cop_base,cop,gold", [(None, 1, 0), (None, 4, 3), (0, 0, 0), (0, 3, 3)])
def test_medmcqa_cop_base(tmp_path, cop_base, cop, gold):
    row = {"id": "1", "question": "Q?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": cop,
           "subject_name": "Medicine"}
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(row))
    overrides = {"data_files": {"test": str(path)}}
    if cop_base is not None:
        overrides["cop_base"] = cop_base
    if cop_base is None and cop in (1, 2, 3):  # the file alone cannot say which convention it follows
        with pytest.warns(UserWarning, match="no row has cop 0 or 4, so cop is read as 1-based"):
            task = load_tasks(["medmcqa"], metadata={"medmcqa": overrides})["medmcqa"]
    else:
        task = load_tasks(["medmcqa"], metadata={"medmcqa": overrides})["medmcqa"]
    assert task.test_docs()[0]["gold"] == gold


def test_wrong_columns_name_the_file_and_the_columns(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"question": "Q?", "choices": ["a", "b"]}))
    with pytest.raises(MedbenchError, match=r"bad.jsonl row 1 is missing column\(s\) sent1"):
        load_tasks(["medqa"], metadata={"medqa": {"data_files": {"test": str(path)}}})


def test_label_not_among_choices(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({**MEDQA_ROW, "answer_idx": "E"}))
    with pytest.raises(MedbenchError, match="not among the 4 choices"):
        load_tasks(["medqa"], metadata={"medqa": {"data_files": {"test": str(path)}}})


def test_empty_and_missing_data_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(MedbenchError, match="is empty"):
        load_tasks(["medqa"], metadata={"medqa": {"data_files": {"test": str(empty)}}})
    with pytest.raises(MedbenchError, match="does not exist"):
        load_tasks(["medqa"], metadata={"medqa": {"data_files": {"test": str(tmp_path / "none.jsonl")}}})


def test_unknown_task_suggests_close_names():
    with pytest.raises(MedbenchError, match="unknown task 'medqaa'.*did you mean medqa"):
        build_registry().get("medqaa")


def test_malformed_yaml_and_unknown_keys_are_one_line_problems(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: broken\ndoc_to_text: [unclosed\n")
    with pytest.raises(MedbenchError, match="not valid YAML at line"):
        read_task_yaml(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("task: x\nprimary_metric: acc\n")
    with pytest.raises(MedbenchError, match="unknown key.*primary_metric.*metadata"):
        read_task_yaml(unknown)


def test_register_tasks(plugin_registration, tmp_path):
    """A plugin's task directory is indexed; its broken files are reported, its incomplete tasks refused."""
    from medbench import hookimpl

    (tmp_path / "ok.yaml").write_text(textwrap.dedent("""
        task: plugin_task
        dataset_path: json
        test_split: train
        doc_to_text: "{{q}}"
        doc_to_target: "{{a}}"
        metric_list: [{metric: exact_match}]
    """))
    (tmp_path / "incomplete.yaml").write_text("task: incomplete_task\ntest_split: test\n")
    (tmp_path / "broken.yaml").write_text("task: [\n")

    class Plugin:
        @hookimpl
        def register_tasks(self, register):
            register(tmp_path)

    plugin_registration(Plugin(), "my-tasks")
    registry = build_registry()
    assert registry.entries["plugin_task"].plugin == "my-tasks"
    assert registry.entries["plugin_task"].primary_metric == "exact_match"
    assert len(registry.problems) == 1 and "broken.yaml" in registry.problems[0]
    with pytest.raises(MedbenchError, match="incomplete_task.*missing doc_to_text, doc_to_target"):
        load_tasks(["incomplete_task"], registry)


def test_yamls_run_under_stock_lm_eval_cli(tiny_model_dir, tmp_path):
    """Our task YAMLs are plain lm-eval task files: `lm_eval --include_path tasks` runs them unchanged."""
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={tiny_model_dir}",
           "--include_path", str(REPO / "tasks"), "--tasks", "medqa,medmcqa", "--limit", "4",
           "--output_path", str(out), "--device", "cpu"]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    files = list(out.rglob("results_*.json"))
    assert files, result.stdout[-2000:]
    results = json.loads(files[0].read_text())["results"]
    for name in ("medqa", "medmcqa"):
        assert 0.0 <= results[name]["acc,none"] <= 1.0


def test_unreachable_hub_falls_back_to_the_bundled_sample_with_a_warning(monkeypatch):
    """Online but no network: warn, then read the bundled raw-format file (MedMCQA's cop stays 1-based)."""
    import datasets

    def unreachable(*args, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.warns(UserWarning, match="openlifescienceai/medmcqa is unreachable.*bundled sample"):
        task = load_tasks(["medmcqa"])["medmcqa"]
    bundled = [json.loads(line) for line in (REPO / "tasks/medmcqa/data/train.json").read_text().splitlines()]
    assert [d["gold"] for d in task.training_docs()] == [row["cop"] - 1 for row in bundled]


def test_malformed_hub_rows_are_an_error_not_a_fallback(monkeypatch):
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    bad = datasets.DatasetDict({"validation": datasets.Dataset.from_list([{"question": "Q?", "cop": 0}])})
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: bad)
    with pytest.raises(MedbenchError, match=r"medmcqa\[validation\] row 1 is missing column\(s\) opa"):
        load_tasks(["medmcqa"])


def test_medmcqa_validation_is_carved_from_train_not_the_test_split(monkeypatch):
    """The hub's MedMCQA validation split is what is scored as test (its test split has no answers): the
    validation split medbench selects on is a seeded holdout of train, disjoint from both."""
    import datasets

    def row(i, split):
        return {"question": f"{split} question {i}?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": i % 4}

    hub = datasets.DatasetDict({"train": datasets.Dataset.from_list([row(i, "train") for i in range(2500)]),
                                "validation": datasets.Dataset.from_list([row(i, "validation") for i in range(30)])})
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: hub)
    task = load_tasks(["medmcqa"])["medmcqa"]
    train = {d["question"] for d in task.training_docs()}
    validation = {d["question"] for d in task.validation_docs()}
    test = {d["question"] for d in task.test_docs()}
    assert len(train) == 500 and len(validation) == 2000 and len(test) == 30
    assert not train & validation and not validation & test and all(q.startswith("train") for q in validation)
    again = {d["question"] for d in load_tasks(["medmcqa"])["medmcqa"].validation_docs()}
    assert again == validation  # the same holdout every time
