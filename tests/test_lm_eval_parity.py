"""medbench's medqa and medmcqa score what stock lm-eval's own task definitions (medqa_4options, medmcqa) score on
the same data, item for item: the data in the hub's format as a user's file, and as the hub dataset read offline
from the local datasets cache (what stock lm-eval reads with no network). lm-eval's other medical tasks, which
medbench runs by name (pubmedqa, the MMLU clinical subjects), score as stock lm-eval scores them too."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from medbench.records import load_record, read_samples
from test_task_inputs import hub_cache_holding, run_eval, write_jsonl

REPO = Path(__file__).resolve().parent.parent
N_ITEMS = 12


def bundled_mcqs(task: str) -> list[dict]:
    from medbench.tasks import load_tasks

    return list(load_tasks([task])[task].test_docs())[:N_ITEMS]


def medqa_hub_rows() -> list[dict]:
    """GBaker/MedQA-USMLE-4-options-hf's columns, as `datasets` exports them."""
    return [{"id": str(i), "sent1": doc["question"], "sent2": "", "label": doc["gold"],
             **{f"ending{j}": choice for j, choice in enumerate(doc["choices"])}}
            for i, doc in enumerate(bundled_mcqs("medqa"))]


def medmcqa_hub_rows() -> list[dict]:
    """openlifescienceai/medmcqa's columns, cop 0-based as the hub copy (and a file exported from it) holds it."""
    rows = [{"id": str(i), "question": doc["question"], "cop": doc["gold"], "exp": "", "choice_type": "single",
             "subject_name": "Medicine", "topic_name": "", **dict(zip(("opa", "opb", "opc", "opd"), doc["choices"]))}
            for i, doc in enumerate(bundled_mcqs("medmcqa"))]
    assert {row["cop"] for row in rows} >= {0}  # what tells the file is 0-based
    return rows


def stock_manager(include: Path):
    """lm-eval's task manager for the copied task alone: indexing its ~13k bundled YAMLs too costs ~10 s a test."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(include), include_defaults=False)


def stock_lm_eval(folder: str, files: list[str], name: str, data: Path, model_dir: Path, tmp_path: Path,
                  num_fewshot: int | None = None) -> list:
    """Stock lm-eval with HFLM on its own task definition, copied unchanged but for where the data comes from."""
    import lm_eval
    import yaml

    source = Path(lm_eval.__file__).parent / "tasks" / folder
    include = tmp_path / f"stock-{folder}"
    include.mkdir()
    for file in files:
        shutil.copy(source / file, include / file)
    text = (source / f"{folder}.yaml").read_text()
    config = yaml.safe_load(text.replace("!function", "function"))  # to read the names only
    lines = [line for line in text.splitlines() if not line.startswith(("task:", "dataset_path:"))]
    splits = {config[key] for key in ("training_split", "validation_split", "test_split") if config.get(key)}
    lines += [f"task: {name}", "dataset_path: json",
              "dataset_kwargs:", "  data_files:", *[f"    {split}: {data}" for split in sorted(splits)]]
    (include / f"{name}.yaml").write_text("\n".join(lines) + "\n")
    results = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model_dir},dtype=float32",
                                      tasks=[name], task_manager=stock_manager(include),
                                      batch_size=4, device="cpu", log_samples=True, num_fewshot=num_fewshot)
    return sorted(results["samples"][name], key=lambda sample: sample["doc_id"])


def medbench_samples(args: list[str], task: str, capsys, lb: Path) -> tuple[dict, list[dict]]:
    code, err = run_eval([*args, "--batch-size", "4", "--leaderboard-dir", str(lb)], capsys)
    assert code == 0, err
    [path] = lb.glob(f"records/*/{task}*/record.json")
    record = load_record(path)
    return record, read_samples(record)


def assert_same_items(stock: list, ours: list[dict]) -> None:
    assert len(ours) == len(stock) == N_ITEMS
    for want, have in zip(stock, ours):
        logliks = [float(ll) for ll, _ in want["filtered_resps"]]
        assert have["logliks"] == pytest.approx(logliks, abs=1e-4)
        assert float(have["pred"] == have["gold"]) == want["acc"]
        target = want["target"]  # a choice's text (pubmedqa's "yes") is kept as the index lm-eval scores it by
        assert have["gold"] == (have["choices"].index(target) if isinstance(target, str) else target)


@pytest.mark.parametrize("task, folder, files, stock_name", [
    ("medqa", "medqa", ["preprocess_medqa.py"], "medqa_4options_local"),
    ("medmcqa", "medmcqa", ["utils_medmcqa.py"], "medmcqa_local"),
    ("medqa_4options", "medqa", ["preprocess_medqa.py"], "medqa_4options_local"),  # lm-eval's own, run by medbench
])
def test_a_hub_format_file_scores_as_stock_lm_evals_own_task(task, folder, files, stock_name, tiny_model_dir,
                                                              tmp_path, capsys):
    rows = medmcqa_hub_rows() if task == "medmcqa" else medqa_hub_rows()
    data = write_jsonl(tmp_path / f"{task}.jsonl", rows)
    stock = stock_lm_eval(folder, files, stock_name, data, tiny_model_dir, tmp_path)
    record, ours = medbench_samples(["--model", str(tiny_model_dir), "--tasks", task, "--data-file",
                                     f"{task}={data}"], task, capsys, tmp_path / "lb")
    assert record["data_source"]["kind"] == "file"
    assert_same_items(stock, ours)
    assert record["score"] == pytest.approx(sum(s["acc"] for s in stock) / N_ITEMS)


@pytest.mark.parametrize("task, hub", [("medqa", "GBaker/MedQA-USMLE-4-options-hf"),
                                       ("medmcqa", "openlifescienceai/medmcqa")])
def test_offline_the_cached_hub_dataset_is_scored_not_the_bundled_sample(task, hub, tiny_model_dir, tmp_path,
                                                                         capsys, monkeypatch):
    import datasets

    rows = medqa_hub_rows() if task == "medqa" else medmcqa_hub_rows()
    rows = [{**row, "sent1" if task == "medqa" else "question": f"(cached) {row.get('sent1') or row['question']}"}
            for row in rows]
    cache = tmp_path / "hf-datasets"
    hub_cache_holding(cache, hub, "default", rows, tmp_path)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)  # read at import; this process imported it
    record, ours = medbench_samples(["--model", str(tiny_model_dir), "--tasks", task], task, capsys, tmp_path / "lb")
    assert record["data_source"]["kind"] == "hub" and record["data_source"]["name"] == hub
    assert "local datasets cache" in record["data_source"]["description"]
    assert all(sample["prompt"].startswith("Question: (cached) ") for sample in ours)


def test_without_a_cache_offline_the_bundled_sample_is_scored(tmp_path, capsys, monkeypatch, tiny_model_dir):
    import datasets

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "empty")
    record, _ = medbench_samples(["--model", str(tiny_model_dir), "--tasks", "medqa", "--limit", "2"], "medqa",
                                 capsys, tmp_path / "lb")
    assert record["data_source"]["kind"] == "bundled"


@pytest.mark.parametrize("cops, gold", [([0, 1, 3], [0, 1, 3]), ([1, 4, 2], [0, 3, 1])])
def test_medmcqa_files_say_whether_cop_counts_from_0_or_1(cops, gold, tmp_path):
    from medbench.tasks import load_tasks

    rows = [{"question": f"Q{i}?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": cop}
            for i, cop in enumerate(cops)]
    data = write_jsonl(tmp_path / "dev.jsonl", rows)
    task = load_tasks(["medmcqa"], metadata={"medmcqa": {"data_files": {"test": str(data)}}})["medmcqa"]
    assert [doc["gold"] for doc in task.test_docs()] == gold


def test_a_medmcqa_file_mixing_both_conventions_is_refused(tmp_path, tiny_model_dir, capsys):
    from test_task_inputs import one_line_error

    rows = [{"question": f"Q{i}?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": cop}
            for i, cop in enumerate([0, 4])]
    data = write_jsonl(tmp_path / "mixed.jsonl", rows)
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "medmcqa", "--data-file", f"medmcqa={data}",
                          "--leaderboard-dir", str(tmp_path / "lb")], capsys)
    assert "mixes cop 0 (hub export, 0-based) and cop 4" in one_line_error(code, err)


def test_few_shot_prompts_and_scores_match_stock_lm_eval(tiny_model_dir, tmp_path, capsys):
    """Few-shot examples drawn from the training split as stock lm-eval draws them (same seed, same sampler):
    the same prompts, the same log-likelihoods."""
    data = write_jsonl(tmp_path / "medqa.jsonl", medqa_hub_rows())
    stock = stock_lm_eval("medqa", ["preprocess_medqa.py"], "medqa_4options_local", data, tiny_model_dir, tmp_path,
                          num_fewshot=2)
    record, ours = medbench_samples(["--model", str(tiny_model_dir), "--tasks", "medqa", "--num-fewshot", "2",
                                     "--data-file", f"medqa={data}", "--data-file", f"medqa:train={data}"],
                                    "medqa", capsys, tmp_path / "lb")
    assert record["task"]["num_fewshot"] == 2
    assert [s["prompt"] for s in ours] == [s["arguments"][0][0] for s in stock]
    assert_same_items(stock, ours)


def stock_lm_eval_with_template(folder: str, task_file: str, template: str | None, code: list[str], name: str,
                                splits: list[str], data: Path, model_dir: Path, tmp_path: Path,
                                num_fewshot: int | None = None) -> tuple[list, dict]:
    """Stock lm-eval on a task defined by a file and the template it includes, if any (an MMLU subject, a
    KorMedMCQA exam), copied unchanged but for where the data comes from: ``data`` for every split in ``splits``."""
    import lm_eval

    source = Path(lm_eval.__file__).parent / "tasks" / folder
    include = tmp_path / "stock-included"
    include.mkdir()
    for file in code:
        shutil.copy(source / file, include / file)
    kept = [line for text in [(source / file).read_text() for file in (task_file, template) if file]
            for line in text.splitlines()
            if not line.replace('"', "").replace(" ", "").startswith(("task:", "dataset_path:", "dataset_name:", "tag:",
                                                                "include:"))]
    kept += [f"task: {name}", "dataset_path: json", "dataset_kwargs:", "  data_files:",
             *[f"    {split}: {data}" for split in splits]]
    (include / f"{name}.yaml").write_text("\n".join(kept) + "\n")
    results = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model_dir},dtype=float32",
                                      tasks=[name], task_manager=stock_manager(include),
                                      batch_size=4, device="cpu", log_samples=True, num_fewshot=num_fewshot)
    return sorted(results["samples"][name], key=lambda sample: sample["doc_id"]), results["results"][name]


def test_pubmedqa_scores_as_stock_lm_evals_own_task(tiny_model_dir, tmp_path, capsys):
    """Text choices (yes/no/maybe) after a multi-part abstract, built by lm-eval's own doc_to_text function."""
    rows = [{"QUESTION": f"Does regimen {i} lower systolic pressure in adults over 65?",
             "CONTEXTS": [f"Background: trial {i} enrolled {40 + i} patients.", "Results: pressure fell by 6 mmHg."],
             "final_decision": ("yes", "no", "maybe")[i % 3], "LONG_ANSWER": "It did.", "LABELS": [], "MESHES": [],
             "YEAR": "2001"} for i in range(N_ITEMS)]
    data = write_jsonl(tmp_path / "pubmedqa.jsonl", rows)
    stock = stock_lm_eval("pubmedqa", ["preprocess_pubmedqa.py"], "pubmedqa_local", data, tiny_model_dir, tmp_path)
    record, ours = medbench_samples(["--model", str(tiny_model_dir), "--tasks", "pubmedqa", "--data-file",
                                     f"pubmedqa={data}"], "pubmedqa", capsys, tmp_path / "lb")
    assert [s["prompt"] for s in ours] == [s["arguments"][0][0] for s in stock]
    assert_same_items(stock, ours)
    assert record["score"] == pytest.approx(sum(s["acc"] for s in stock) / N_ITEMS)


def test_an_mmlu_subject_few_shot_scores_as_stock_lm_eval(tiny_model_dir, tmp_path, capsys):
    """Letter choices under the subject's description, with few-shot examples taken first-n from the dev split."""
    rows = [{"question": f"Which vessel drains territory {i}? ", "subject": "clinical_knowledge",
             "choices": [f"Vein {i}", "Artery", "Capillary bed", "Lymphatic duct"], "answer": (i * 7) % 4}
            for i in range(N_ITEMS)]
    data = write_jsonl(tmp_path / "clinical_knowledge.jsonl", rows)
    stock, _ = stock_lm_eval_with_template("mmlu/default", "mmlu_clinical_knowledge.yaml", "_default_template_yaml", [],
                                           "mmlu_clinical_knowledge_local", ["test", "dev"], data, tiny_model_dir,
                                           tmp_path, num_fewshot=2)
    task = "mmlu_clinical_knowledge"
    record, ours = medbench_samples(["--model", str(tiny_model_dir), "--tasks", task, "--num-fewshot", "2",
                                     "--data-file", f"{task}={data}", "--data-file", f"{task}:dev={data}"],
                                    task, capsys, tmp_path / "lb")
    assert ours[0]["prompt"].startswith("The following are multiple choice questions (with answers) about clinical")
    assert [s["prompt"] for s in ours] == [s["arguments"][0][0] for s in stock]
    assert_same_items(stock, ours)


def test_a_generating_task_with_its_own_answer_filter_runs_as_stock_lm_eval(tiny_model_dir, tmp_path, capsys):
    """KorMedMCQA generates and extracts the letter with a filter class from its own code (``!function`` in a
    filter_list): medbench wraps each filter pipeline (reasoning stripped first), so it must hand lm-eval the
    class, not the tag's text ("Unknown filter '!function utils.ExtractChoiceFilter'" before)."""
    rows = [{"question": f"질문 {i}?", **{letter: f"보기 {letter}" for letter in "ABCDE"}, "answer": i % 5 + 1,
             "subject": "doctor", "year": 2023, "period": 1, "q_number": i, "cot": ""} for i in range(4)]
    data = write_jsonl(tmp_path / "kormedmcqa.jsonl", rows)
    stock, results = stock_lm_eval_with_template("kormedmcqa", "doctor.yaml", "_template_yaml", ["utils.py"],
                                                 "kormedmcqa_local", ["test", "fewshot"], data, tiny_model_dir,
                                                 tmp_path)
    task = "kormedmcqa_doctor"
    record, ours = medbench_samples(["--model", str(tiny_model_dir), "--tasks", task, "--data-file", f"{task}={data}"],
                                    task, capsys, tmp_path / "lb")
    assert [s["prompt"] for s in ours] == [s["arguments"][0][0] for s in stock]
    assert [s.get("response", s["pred"]) for s in ours] == [s["resps"][0][0] for s in stock]
    assert [s["pred"] for s in ours] == [s["filtered_resps"][0] for s in stock]  # the task's own extraction
    assert record["metrics"]["exact_match"]["value"] == pytest.approx(results["exact_match,extract_answer"])


def test_headqa_scores_acc_norm_as_stock_lm_eval(tiny_model_dir, tmp_path, capsys):
    """Choices built by a Jinja filter chain, the answer by arithmetic in a template ("{{ra - 1}}"), and acc_norm
    (log-likelihood per byte of each choice), which differs from acc when the choices differ in length."""
    rows = [{"qtext": f"Which nerve supplies muscle {i}?", "ra": i % 4 + 1, "category": "medicine", "qid": i,
             "name": "exam", "year": "2013", "image": "",
             "answers": [{"aid": j + 1, "atext": ("Ulnar", "Median nerve", "Radial", "Axillary nerve branch")[j]}
                         for j in range(4)]} for i in range(N_ITEMS)]
    data = write_jsonl(tmp_path / "headqa.jsonl", rows)
    stock, results = stock_lm_eval_with_template("headqa", "headqa_en.yaml", None, [], "headqa_local",
                                                 ["train", "validation", "test"], data, tiny_model_dir, tmp_path)
    record, ours = medbench_samples(["--model", str(tiny_model_dir), "--tasks", "headqa_en", "--data-file",
                                     f"headqa_en={data}"], "headqa_en", capsys, tmp_path / "lb")
    assert_same_items(stock, ours)
    assert [s["acc_norm"] for s in ours] == [s["acc_norm"] for s in stock]
    assert record["metrics"]["acc_norm"]["value"] == pytest.approx(results["acc_norm,none"])


def test_a_file_without_the_columns_the_task_reads_is_named_with_them(tiny_model_dir, tmp_path, capsys):
    """The original MMLU release is a header-less CSV: given to lm-eval's MMLU task (which reads the hub's
    question/choices/answer), the one line names the missing columns and the file's own, not "'question' is
    undefined"."""
    from test_task_inputs import one_line_error

    data = tmp_path / "clinical_knowledge_test.csv"
    data.write_text("Which organ makes insulin?,Liver,Pancreas,Kidney,Spleen,B\nWhat is 2+2?,3,4,5,6,B\n")
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "mmlu_clinical_knowledge", "--data-file",
                          f"mmlu_clinical_knowledge={data}", "--leaderboard-dir", str(tmp_path / "lb")], capsys)
    line = one_line_error(code, err)
    assert "the 'test' data file lacks the columns 'answer', 'choices', 'question', which its templates read " \
           "(its columns: 'Which organ makes insulin?', 'Liver'," in line


def test_a_file_without_a_field_the_tasks_code_reads_names_the_field(tiny_model_dir, tmp_path, capsys):
    """pubmedqa's prompt is built by its own code (doc["CONTEXTS"]), which no template check can see."""
    from test_task_inputs import one_line_error

    data = write_jsonl(tmp_path / "pubmedqa.jsonl", [{"QUESTION": "Does it work?", "final_decision": "yes"}])
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "pubmedqa", "--data-file", f"pubmedqa={data}",
                          "--leaderboard-dir", str(tmp_path / "lb")], capsys)
    line = one_line_error(code, err)
    assert "KeyError 'CONTEXTS', most likely a field its code reads that the data rows lack" in line
    assert "give data with the fields pubmedqa.yaml reads" in line


@pytest.mark.parametrize("task, files, split, expected", [
    # MMLU names no validation split: no file can give one
    ("mmlu_clinical_knowledge", ["mmlu_clinical_knowledge"], "validation",
     "has no validation split apart from its test split — choose on a task with a validation split, or score a "
     "copy of its YAML that sets validation_split (--include-path)"),
    # pubmedqa names one, but a file given for the test split only leaves it empty
    ("pubmedqa", ["pubmedqa"], "validation",
     "task 'pubmedqa' has no 'validation' items in its data — give one with --data-file pubmedqa:validation=PATH"),
    # a file for the validation split only leaves the scored (test) split empty
    ("pubmedqa", ["pubmedqa:validation"], "test",
     "its 'test' split, the one it scores, has no rows — give it rows (--data-file pubmedqa:test=PATH)"),
])
def test_a_split_the_run_needs_but_the_data_lacks_is_one_line(task, files, split, expected, tiny_model_dir, tmp_path,
                                                               capsys):
    from test_task_inputs import one_line_error

    rows = ([{"question": "Which organ makes insulin?", "subject": "x", "choices": ["a", "b", "c", "d"], "answer": 1}]
            if task.startswith("mmlu") else
            [{"QUESTION": "Does it work?", "CONTEXTS": ["It did."], "final_decision": "yes"}])
    data = write_jsonl(tmp_path / "rows.jsonl", rows)
    args = [arg for spec in files for arg in ("--data-file", f"{spec}={data}")]
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", task, *args, "--split", split,
                          "--leaderboard-dir", str(tmp_path / "lb")], capsys)
    assert expected in one_line_error(code, err)


def test_fields_made_by_process_docs_are_not_asked_of_the_file(tiny_model_dir, tmp_path, capsys):
    """A task whose process_docs builds the fields its templates read (as hellaswag builds `query`) takes a file in
    the raw format: only the raw columns are the file's to give."""
    folder = tmp_path / "tasks"
    folder.mkdir()
    data = write_jsonl(folder / "raw.jsonl", [{"stem": f"Is {i} even?", "answer": i % 2} for i in range(4)])
    (folder / "utils.py").write_text("def process_docs(dataset):\n"
                                     "    return dataset.map(lambda doc: {'query': doc['stem'] + ' Answer:'})\n")
    (folder / "even.yaml").write_text(f"task: even\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
                                      f"    test: {data}\noutput_type: multiple_choice\ntest_split: test\n"
                                      "process_docs: !function utils.process_docs\ndoc_to_text: '{{query}}'\n"
                                      "doc_to_choice: ['yes', 'no']\ndoc_to_target: answer\n")
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "even", "--include-path", str(folder),
                          "--trust-task-code", "--leaderboard-dir", str(tmp_path / "lb")], capsys)
    assert code == 0, err
