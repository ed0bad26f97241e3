"""lm-eval's groups and tags by name: `--tasks multimedqa` (the MultiMedQA benchmark group) scores its member
tasks, as `--tasks triage` does medbench's own group; tags (`headqa`) and nested groups (`mmlu` > `mmlu_other` >
the tag `mmlu_other_tasks`) expand too. A member with settings of its own is refused rather than scored otherwise."""

from __future__ import annotations

import re
import textwrap

import pytest

from medbench import lm_eval_tasks
from medbench.errors import MedbenchError
from medbench.tasks import build_registry
from test_task_inputs import records, run_eval, write_jsonl


def test_multimedqa_expands_to_its_nine_tasks_with_medbenchs_medmcqa():
    registry = build_registry()
    assert registry.expand(["multimedqa"]) == [
        "pubmedqa", "medmcqa", "medqa_4options", "mmlu_anatomy", "mmlu_clinical_knowledge", "mmlu_college_medicine",
        "mmlu_medical_genetics", "mmlu_professional_medicine", "mmlu_college_biology"]
    assert registry.get("medmcqa").plugin == "builtin_tasks" and registry.get("pubmedqa").plugin == "lm-eval"


def test_tags_and_nested_groups_expand():
    registry = build_registry()
    assert registry.expand(["headqa"]) == ["headqa_en", "headqa_es"]  # headqa_es has the tag through its include
    subjects = registry.expand(["mmlu"])
    assert len(subjects) == 57 and "mmlu_clinical_knowledge" in subjects and len(set(subjects)) == 57


@pytest.fixture
def own_lm_eval_tasks(tmp_path, monkeypatch):
    """A stand-in for lm-eval's bundled task folder, holding the YAMLs a test writes."""
    folder = tmp_path / "lm_eval_tasks"
    folder.mkdir()
    monkeypatch.setattr(lm_eval_tasks, "tasks_dir", lambda: folder)
    monkeypatch.setattr(lm_eval_tasks, "_index", None)
    return folder


def write_task(folder, name: str, data) -> None:
    (folder / f"{name}.yaml").write_text(textwrap.dedent(f"""
        task: {name}
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: {data}
        output_type: multiple_choice
        test_split: test
        doc_to_text: "{{{{question}}}}\\nAnswer:"
        doc_to_choice: ["yes", "no"]
        doc_to_target: "{{{{answer}}}}"
    """))


def test_a_group_is_scored_as_its_member_tasks(own_lm_eval_tasks, tiny_model_dir, tmp_path, capsys):
    data = write_jsonl(tmp_path / "rows.jsonl", [{"question": f"Is {i} even?", "answer": i % 2} for i in range(4)])
    for name in ("renal_qa", "hepatic_qa"):
        write_task(own_lm_eval_tasks, name, data)
    (own_lm_eval_tasks / "_organs.yaml").write_text(
        "group: organ_qa\ntask:\n  - renal_qa\n  - task: hepatic_qa\n    task_alias: liver\n")
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "organ_qa", "--leaderboard-dir",
                          str(tmp_path / "lb")], capsys)
    assert code == 0, err
    assert set(records(tmp_path / "lb")) == {"renal_qa", "hepatic_qa"}


@pytest.mark.parametrize("group, message", [
    ("group: shots\ntask:\n  - task: renal_qa\n    num_fewshot: 5\n",
     "sets num_fewshot for its member 'renal_qa', which medbench does not apply"),
    ("group: loop\ntask:\n  - renal_qa\n  - loop\n", re.escape("group 'loop' contains itself (loop > loop)")),
])
def test_a_group_medbench_cannot_score_as_lm_eval_would_is_refused(group, message, own_lm_eval_tasks, tmp_path):
    write_task(own_lm_eval_tasks, "renal_qa", write_jsonl(tmp_path / "rows.jsonl", [{"question": "q", "answer": 0}]))
    (own_lm_eval_tasks / "group.yaml").write_text(group)
    name = group.split("\n")[0].split(": ")[1]
    with pytest.raises(MedbenchError, match=message):
        build_registry().expand([name])


def test_a_common_word_is_not_taken_for_a_group_nor_parses_every_yaml():
    """`--tasks test`: "test" is in nearly every lm-eval YAML (test_split: test), yet names no group or tag; only
    files that could define one are parsed."""
    parsed = len(lm_eval_tasks._configs)
    assert lm_eval_tasks.group_members("test") is None
    assert len(lm_eval_tasks._configs) - parsed < 50
