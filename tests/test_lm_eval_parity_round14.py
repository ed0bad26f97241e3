"""Round 14: medbench against stock lm-eval (HFLM, the same YAML, model and rows) on what users bring in an
--include-path folder: copies of lm-eval's own medqa_4options, medmcqa and pubmedqa YAMLs (their !function code
beside them, local JSON in place of the hub) under a group of the user's, few-shot and in a chat template with a
system prompt; a system prompt on a task whose description meets it with its own fewshot_delimiter (or with
whitespace), which medbench had split with a paragraph where stock does not; and --gen-kwargs on a generating task
that sets no generation_kwargs, where the record now holds the settings stock runs (lm-eval's greedy defaults)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from test_lm_eval_parity_round13 import _by_doc, _medbench
from test_lm_eval_parity_round13 import _stock as stock_on_folder
from test_task_inputs import run_eval, write_jsonl


def _stock(folder: Path, model: Path, tasks: list[str], **options) -> dict:
    """Stock lm-eval on ``folder``'s tasks, with its stderr bootstrap as medbench runs it."""
    return stock_on_folder(folder, model, tasks, bootstrap_iters=1000, **options)


def _assert_same(stock: dict, ours: dict[str, tuple[dict, list]], task: str, metrics: tuple[str, ...]) -> None:
    record, rows = ours[task]
    samples, results = _by_doc(stock["samples"][task]), stock["results"][task]
    assert record["n"] == len(rows) == len(samples) > 0
    assert [row["prompt"] for row in rows] == [s["arguments"][0][0] for s in samples]
    for metric in metrics:
        assert [row[metric] for row in rows] == [s[metric] for s in samples], (task, metric)
        assert record["metrics"][metric]["value"] == pytest.approx(results[f"{metric},none"]), (task, metric)
        assert record["metrics"][metric]["stderr"] == pytest.approx(results[f"{metric}_stderr,none"]), (task, metric)
    assert record["task"]["num_fewshot"] == stock["configs"][task]["num_fewshot"]


# --- lm-eval's own YAMLs, copied into a user's folder ------------------------------------------------------------

def _medqa_rows(n: int) -> list[dict]:
    return [{"id": str(i), "sent1": f"A {30 + i}-year-old presents with fever{' and cough' * (i % 3)}. Next step?",
             "sent2": "", "ending0": "Antibiotics", "ending1": f"Rest {i}", "ending2": "Surgery — now",
             "ending3": "Ñ observe", "label": (i * 5) % 4} for i in range(n)]


def _medmcqa_rows(n: int) -> list[dict]:
    return [{"id": str(i), "question": f"Drug of choice for case {i}?", "opa": "A drug", "opb": f"B drug {i}",
             "opc": "Cé", "opd": "D", "cop": (i * 3) % 4, "choice_type": "single", "exp": "", "subject_name": "x",
             "topic_name": ""} for i in range(n)]


def _pubmedqa_rows(n: int) -> list[dict]:
    return [{"QUESTION": f"Does drug {i} help?", "CONTEXTS": [f"Context {i} a.", "Context b."],
             "final_decision": ["yes", "no", "maybe"][i % 3], "LONG_ANSWER": "", "QUESTION_ID": str(i)}
            for i in range(n)]


def _copied_stock_tasks(folder: Path) -> Path:
    """medqa_4options, medmcqa and pubmedqa as lm-eval ships them, each reading three local JSON splits, and a
    group of the user's over them."""
    import lm_eval

    shipped = Path(lm_eval.__file__).parent / "tasks"
    folder.mkdir(parents=True)
    for name, make_rows, code in (("medqa", _medqa_rows, "preprocess_medqa.py"),
                                  ("medmcqa", _medmcqa_rows, "utils_medmcqa.py"),
                                  ("pubmedqa", _pubmedqa_rows, "preprocess_pubmedqa.py")):
        files = {split: write_jsonl(folder / f"{name}_{split}.jsonl", make_rows(n))
                 for split, n in (("train", 7), ("validation", 6), ("test", 8))}
        local = "dataset_path: json\ndataset_kwargs:\n  data_files:\n" + "".join(
            f"    {split}: {path}\n" for split, path in files.items())
        text = re.sub(r"^dataset_path:.*\n", local, (shipped / name / f"{name}.yaml").read_text(), flags=re.M)
        (folder / f"{name}.yaml").write_text(text)
        shutil.copy(shipped / name / code, folder)
    (folder / "multi.yaml").write_text("group: my_multimedqa\ntask: [pubmedqa, medmcqa, medqa_4options]\n"
                                       "aggregate_metric_list:\n  - {metric: acc, weight_by_size: true}\n")
    return folder


@pytest.mark.parametrize("shots, chat", [(2, False), (1, True)])
def test_copies_of_lm_evals_medical_yamls_in_a_users_group_score_as_stock(shots, chat, tiny_model_dir, tmp_path,
                                                                          capsys):
    """Each member's prompts, per-item acc/acc_norm, scores and stderrs are stock's; the shots of the two tasks that
    draw them at random (from train) are stock's draws; the group itself has no record (README)."""
    folder = _copied_stock_tasks(tmp_path / "tasks")
    options = {"apply_chat_template": True, "system_instruction": "You are a physician."} if chat else {}
    stock = _stock(folder, tiny_model_dir, ["my_multimedqa"], num_fewshot=shots, **options)
    extra = ["--chat-template", "--system-prompt", "You are a physician."] if chat else []
    ours = _medbench(folder, tiny_model_dir, "my_multimedqa", tmp_path / "lb", capsys, "--trust-task-code",
                     "--num-fewshot", str(shots), *extra)
    assert sorted(ours) == ["medmcqa", "medqa_4options", "pubmedqa"]
    for task in ("medmcqa", "medqa_4options"):
        _assert_same(stock, ours, task, ("acc", "acc_norm"))
    _assert_same(stock, ours, "pubmedqa", ("acc",))
    assert ours["medmcqa"][0]["n"] == 6  # its YAML scores the validation split


# --- a system prompt meeting a task's description ----------------------------------------------------------------

def _described_task(folder: Path, description: str, fewshot_delimiter: str) -> Path:
    rows = [{"question": f"Patient {i} has fever{'?' * (i % 3)} Which drug", "opts": ["aspirin", "heparin", "ñ"],
             "ans": (i * 7) % 3} for i in range(6)]
    folder.mkdir(parents=True)
    write_jsonl(folder / "rows.jsonl", rows)
    (folder / "described.yaml").write_text(
        f"task: described\ndataset_path: json\ndataset_kwargs:\n  data_files: {{test: {folder / 'rows.jsonl'}}}\n"
        "test_split: test\nfewshot_split: test\noutput_type: multiple_choice\n"
        f"description: {json.dumps(description)}\nfewshot_delimiter: {json.dumps(fewshot_delimiter)}\n"
        "doc_to_text: \"Q: {{question}}\\nA:\"\ndoc_to_choice: \"{{opts}}\"\ndoc_to_target: ans\n"
        "num_fewshot: 1\nmetric_list: [{metric: acc}, {metric: acc_norm}]\n")
    return folder


@pytest.mark.parametrize("description, fewshot_delimiter, start", [
    ("Answer briefly.", "\n", "Be exact.\nAnswer briefly."),      # joined by the task's own delimiter
    ("\nAnswer briefly.", "\n\n", "Be exact.\nAnswer briefly."),  # a description led by whitespace: glued
])
def test_a_system_prompt_meets_a_tasks_description_as_in_stock(description, fewshot_delimiter, start,
                                                               tiny_model_dir, tmp_path, capsys):
    """medbench made a raw system prompt its own paragraph ("Be exact.\\n\\n") whatever the task: stock joins it
    to the task's description with the task's fewshot_delimiter, or with nothing where either side has whitespace.
    A task without a description keeps medbench's paragraph (test_lm_eval_parity_round12, README). Training
    formats a raw prompt the same way (medbench.trainers.chat_format)."""
    from medbench.testing import make_byte_tokenizer
    from medbench.trainers.chat_format import Formatter
    from medbench.trainingdata import TrainingExample

    folder = _described_task(tmp_path / "tasks", description, fewshot_delimiter)
    stock = _stock(folder, tiny_model_dir, ["described"], system_instruction="Be exact.")
    ours = _medbench(folder, tiny_model_dir, "described", tmp_path / "lb", capsys, "--system-prompt", "Be exact.")
    _assert_same(stock, ours, "described", ("acc", "acc_norm"))
    assert ours["described"][1][0]["prompt"].startswith(start)

    question = "Q: Patient 0 has fever Which drug\nA:"
    zero_shot = _stock(folder, tiny_model_dir, ["described"], system_instruction="Be exact.", num_fewshot=0)
    example = TrainingExample(doc_id=0, prompt=description + question, completion=" aspirin",
                              description=description, fewshot_delimiter=fewshot_delimiter)
    trained = Formatter(make_byte_tokenizer(), False, system_prompt="Be exact.").prompt(example)
    assert trained == _by_doc(zero_shot["samples"]["described"])[0]["arguments"][0][0]


# --- --gen-kwargs on a task that sets no generation_kwargs -------------------------------------------------------

def test_gen_kwargs_over_a_task_without_generation_kwargs_record_stocks_settings(tiny_model_dir, tmp_path, capsys):
    """lm-eval gives such a task greedy defaults (temperature 0, do_sample false, until its fewshot_delimiter,
    256 new tokens) and --gen-kwargs updates them: the record held only the option's keys and `until`."""
    folder = tmp_path / "tasks"
    folder.mkdir()
    write_jsonl(folder / "rows.jsonl", [{"q": f"What is {i}+{i}?", "a": str(2 * i)} for i in range(5)])
    (folder / "open.yaml").write_text(f"task: open\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
                                      f"    test: {folder / 'rows.jsonl'}\ntest_split: test\n"
                                      "output_type: generate_until\ndoc_to_text: \"Q: {{q}}\\nA:\"\n"
                                      "doc_to_target: \"{{a}}\"\nfewshot_delimiter: \"\\n\"\n"
                                      "metric_list: [{metric: exact_match}]\n")
    stock = _stock(folder, tiny_model_dir, ["open"], gen_kwargs="max_gen_toks=5")
    record, rows = _medbench(folder, tiny_model_dir, "open", tmp_path / "lb", capsys,
                             "--gen-kwargs", "max_gen_toks=5")["open"]
    assert record["generation"]["generation_kwargs"] == stock["configs"]["open"]["generation_kwargs"] == {
        "temperature": 0.0, "do_sample": False, "max_gen_toks": 5, "until": ["\n"]}
    samples = _by_doc(stock["samples"]["open"])
    assert [row.get("response", row["pred"]) for row in rows] == [s["resps"][0][0] for s in samples]
    assert record["metrics"]["exact_match"]["value"] == pytest.approx(stock["results"]["open"]["exact_match,none"])


# --- --limit as a fraction ---------------------------------------------------------------------------------------

def test_a_fractional_limit_scores_stocks_share_of_each_task(tiny_model_dir, tmp_path, capsys):
    """lm-eval reads --limit below 1 as a share of each task's items, rounded up (0.35 of 10: 4; of 6: 3); medbench
    refused it as not a whole number. A number that is neither (1.5) is one line naming both forms."""
    from test_task_inputs import one_line_error

    folder = tmp_path / "tasks"
    for name, n in (("ten", 10), ("six", 6)):
        _described_task(folder / name, "Answer briefly.", "\n\n")
        write_jsonl(folder / name / "rows.jsonl", [{"question": f"{name} case {i}", "opts": ["a", "bb", "ccc"],
                                                    "ans": i % 3} for i in range(n)])
        text = (folder / name / "described.yaml").read_text()
        (folder / name / f"{name}.yaml").write_text(text.replace("task: described", f"task: {name}"))
        (folder / name / "described.yaml").unlink()
    stock = _stock(folder, tiny_model_dir, ["ten", "six"], limit=0.35)
    ours = _medbench(folder, tiny_model_dir, "ten,six", tmp_path / "lb", capsys, "--limit", "0.35")
    for name, scored, size in (("ten", 4, 10), ("six", 3, 6)):
        _assert_same(stock, ours, name, ("acc", "acc_norm"))
        record = ours[name][0]
        assert record["n"] == scored and record["task"]["split_size"] == size
        assert record["config"]["limit"] == 0.35
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "ten", "--include-path", str(folder),
                          "--limit", "1.5", "--leaderboard-dir", str(tmp_path / "lb2")], capsys)
    assert "--limit must be a whole number of items or a fraction below 1, got '1.5'" in one_line_error(code, err)
