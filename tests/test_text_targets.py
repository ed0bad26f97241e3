"""A multiple-choice answer written as the choice's text (``doc_to_target: "{{label}}"`` naming "malignant", or
lm-eval's pubmedqa naming "yes") is kept in samples.jsonl as the choice's index, as lm-eval scores it: label
metrics (macro-F1, per-label F1), the page's per-item marks and paired comparisons read ``gold`` against ``pred``,
an index, so a text gold would count every item wrong. A metric's direction as lm-eval reports it is kept too."""

from __future__ import annotations

import json
import textwrap

import pytest

from medbench.records import load_record, read_samples
from test_task_inputs import run_eval, write_jsonl

LABELS = ("benign", "malignant", "indeterminate")


def text_label_task(tmp_path) -> str:
    """A task folder whose answers are the label's text; returns the folder."""
    folder = tmp_path / "my_tasks"
    folder.mkdir()
    rows = [{"report": f"Lesion {i}: {4 + i} mm, smooth margins.", "label": LABELS[i % 3]} for i in range(9)]
    data = write_jsonl(folder / "lesions.jsonl", rows)
    (folder / "lesion_class.yaml").write_text(textwrap.dedent(f"""
        task: lesion_class
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: {data}
        output_type: multiple_choice
        test_split: test
        doc_to_text: "Report: {{{{report}}}}\\nFinding:"
        doc_to_choice: {json.dumps(list(LABELS))}
        doc_to_target: "{{{{label}}}}"
        metric_list:
          - metric: acc
        metadata:
          primary_metric: macro_f1
          medbench_metrics: [macro_f1]
    """))
    return str(folder)


def test_a_text_answer_is_stored_as_its_choice_index_and_label_metrics_agree_with_acc(tiny_model_dir, tmp_path,
                                                                                      capsys):
    from medbench_plugins.builtin_metrics import macro_f1

    board = tmp_path / "lb"
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "lesion_class", "--include-path",
                          text_label_task(tmp_path), "--leaderboard-dir", str(board)], capsys)
    assert code == 0, err
    [path] = board.glob("records/*/lesion_class*/record.json")
    record = load_record(path)
    samples = read_samples(record)
    assert [s["gold"] for s in samples] == [i % 3 for i in range(9)]
    assert [float(s["gold"] == s["pred"]) for s in samples] == [s["acc"] for s in samples]
    golds, preds = [s["gold"] for s in samples], [s["pred"] for s in samples]
    assert record["metrics"]["macro_f1"]["value"] == pytest.approx(macro_f1(golds, preds))
    assert record["metrics"]["acc"]["value"] == pytest.approx(sum(s["acc"] for s in samples) / 9)


def test_a_text_answer_is_scored_when_the_choice_is_generated(tiny_model_dir, tmp_path, capsys):
    """--mode generate: lm-eval reads a generating task's answer as ``choices[gold]``, so a text answer crashed
    ("list indices must be integers or slices, not str") on pubmedqa and on any task like this one."""
    board = tmp_path / "lb"
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "lesion_class", "--include-path",
                          text_label_task(tmp_path), "--mode", "generate", "--gen-kwargs", "max_new_tokens=4",
                          "--leaderboard-dir", str(board)], capsys)
    assert code == 0, err
    [path] = board.glob("records/*/lesion_class*/record.json")
    samples = read_samples(load_record(path))
    assert [s["gold"] for s in samples] == [i % 3 for i in range(9)]
    assert [s["exact_match"] for s in samples] == [float(s["pred"] == s["gold"]) for s in samples]


def test_a_lower_is_better_metric_keeps_its_direction_in_the_record(tiny_model_dir, tmp_path, capsys):
    """lm-eval reports each metric's direction (bits_per_byte: lower is better); the record keeps it, so a
    leaderboard reading the record later ranks by it even for a metric medbench has no name for."""
    folder = tmp_path / "lm_tasks"
    folder.mkdir()
    data = write_jsonl(folder / "notes.jsonl", [{"text": f"Patient {i} has chest pain on exertion."} for i in range(3)])
    (folder / "notes_ppl.yaml").write_text(textwrap.dedent(f"""
        task: notes_ppl
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: {data}
        output_type: loglikelihood_rolling
        test_split: test
        doc_to_text: ""
        doc_to_target: "{{{{text}}}}"
        metric_list:
          - metric: bits_per_byte
    """))
    board = tmp_path / "lb"
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "notes_ppl", "--include-path", str(folder),
                          "--leaderboard-dir", str(board)], capsys)
    assert code == 0, err
    [path] = board.glob("records/*/notes_ppl*/record.json")
    assert json.loads(path.read_text())["metrics"]["bits_per_byte"]["higher_is_better"] is False
