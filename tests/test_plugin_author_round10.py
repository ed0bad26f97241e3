"""Round 10 of writing a third-party plugin from the docs alone: a task's metadata.cluster_field that names no
field of its rows was silently ignored (the leaderboard then treated clustered items as independent)."""

import json
import warnings
from pathlib import Path

import pytest

from medbench import hookimpl
from medbench.errors import MedbenchError
from medbench.evaluation import EvalConfig, evaluate
from medbench.testing import read_leaderboard

YAML = """\
task: {task}
custom_dataset: !function utils.load
output_type: multiple_choice
test_split: test
doc_to_text: "Which class is {{{{drug}}}}?\\nA. {{{{options[0]}}}}\\nB. {{{{options[1]}}}}\\nAnswer:"
doc_to_choice: ["A", "B"]
doc_to_target: gold
metric_list: [{{metric: acc, aggregation: mean, higher_is_better: true}}]
metadata: {{version: 1.0, source: auto, data_files: null, cluster_field: {cluster_field}}}
"""

UTILS = """\
from pathlib import Path
from medbench.taskdata import load_splits

def load(**metadata):
    return load_splits(Path(__file__).parent, normalize=lambda row, source: row, **metadata,
                       bundled={"test": "data/test.jsonl"})
"""

ROWS = [{"drug": drug, "options": ["statin", "beta blocker"], "gold": gold, "drug_class": cls}
        for drug, gold, cls in [("atorvastatin", 0, "statin"), ("simvastatin", 0, "statin"),
                                ("metoprolol", 1, "beta blocker"), ("atenolol", 1, "beta blocker")]]


def _task_plugin(root: Path, task: str, cluster_field: str):
    folder = root / task
    (folder / "data").mkdir(parents=True)
    (folder / f"{task}.yaml").write_text(YAML.format(task=task, cluster_field=cluster_field), encoding="utf-8")
    (folder / "utils.py").write_text(UTILS, encoding="utf-8")
    (folder / "data" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")

    class Plugin:
        @hookimpl
        def register_tasks(self, register):
            register(folder)

    return Plugin()


def test_a_cluster_field_its_bundled_rows_lack_stops_before_the_model_loads(plugin_registration, tmp_path):
    plugin_registration(_task_plugin(tmp_path / "tasks", "r10_cluster_typo", "drugclas"))
    with pytest.raises(MedbenchError) as caught:  # the model reference is never opened: the check comes first
        evaluate(str(tmp_path / "no-such-model"), EvalConfig(tasks=["r10_cluster_typo"], limit=4,
                                                             output_dir=tmp_path / "lb"))
    message = caught.value.one_line()
    assert "metadata.cluster_field names 'drugclas'" in message
    assert "4 of the 4 scored rows of its 'test' split have no such field (first: row 1)" in message
    assert "r10_cluster_typo.yaml" in message and "leave cluster_field out" in message
    assert not (tmp_path / "lb").exists()


def test_a_cluster_field_the_rows_fill_is_written_into_every_sample(plugin_registration, tiny_model_dir, tmp_path):
    plugin_registration(_task_plugin(tmp_path / "tasks", "r10_cluster_ok", "drug_class"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no cluster warning either
        (record,) = evaluate(str(tiny_model_dir), EvalConfig(tasks=["r10_cluster_ok"], output_dir=tmp_path / "lb"))
    assert record["n"] == 4
    (read,) = read_leaderboard(tmp_path / "lb")
    assert [s["cluster"] for s in read["samples"]] == ["statin", "statin", "beta blocker", "beta blocker"]


def test_a_users_file_without_the_cluster_field_warns_and_still_scores(plugin_registration, tiny_model_dir,
                                                                       tmp_path):
    plugin_registration(_task_plugin(tmp_path / "tasks", "r10_cluster_file", "drug_class"))
    mine = tmp_path / "mine.jsonl"
    mine.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "drug_class"}) + "\n" for r in ROWS),
                    encoding="utf-8")
    config = EvalConfig(tasks=["r10_cluster_file"], output_dir=tmp_path / "lb",
                        task_metadata={"r10_cluster_file": {"data_files": str(mine)}})
    with pytest.warns(UserWarning, match=r"cluster_field names 'drug_class'.*treat every item as independent"):
        (record,) = evaluate(str(tiny_model_dir), config)
    assert record["n"] == 4 and record["data_source"]["kind"] == "file"
    (read,) = read_leaderboard(tmp_path / "lb")
    assert all("cluster" not in s for s in read["samples"])
