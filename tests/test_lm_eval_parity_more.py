"""lm-eval's other medical tasks, run by name through medbench, score as stock lm-eval scores them on the same
rows: CareQA, MedConceptsQA (a description and four first-n shots its YAML asks for), MMLU's continuation variant
(the choices' own text as continuations), a CSV task that scores its train split and whose process_docs keeps a
slice of the rows, a log-likelihood-rolling (perplexity) task, MMLU-Pro health and MMLU's generative variant
(generate_until with their own filters); and med_prescriptions, whose random process_docs must be read once.
The rows are synthetic, in each dataset's own column format."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from medbench.records import load_record, read_samples
from test_task_inputs import run_eval, write_jsonl

# Top-level keys that say where a task's data lives (or which group lists it): replaced by the local rows.
_WHERE = ("task", "dataset_path", "dataset_name", "dataset_kwargs", "tag", "include", "group")


def _kept_lines(text: str) -> list[str]:
    kept, dropping = [], False
    for line in text.splitlines():
        if line[:1] not in ("", " ", "-", "\t") or not line.strip():
            key = line.split(":", 1)[0].strip().strip("\"'")
            dropping = key in _WHERE
        if not dropping:
            kept.append(line)
    return kept


def stock_run(folder: str, yamls: list[str], code: list[str], name: str, data: dict[str, Path], tmp_path: Path,
              model_dir: Path, builder: str = "json", **options) -> tuple[list, dict]:
    """Stock lm-eval (HFLM) on its own task definition: ``yamls`` are the task's file then those it includes,
    merged base first as lm-eval merges them, copied unchanged but for where the data comes from."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    source = Path(lm_eval.__file__).parent / "tasks" / folder
    include = tmp_path / f"stock-{name}"
    include.mkdir()
    for file in code:
        shutil.copy(source / file, include / file)
    lines = [line for file in reversed(yamls) for line in _kept_lines((source / file).read_text())]
    lines += [f"task: {name}", f"dataset_path: {builder}", "dataset_kwargs:", "  data_files:",
              *[f"    {split}: {path}" for split, path in data.items()]]
    (include / f"{name}.yaml").write_text("\n".join(lines) + "\n")
    results = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model_dir},dtype=float32", tasks=[name],
                                      task_manager=TaskManager(include_path=str(include), include_defaults=False),
                                      batch_size=4, device="cpu", log_samples=True, **options)
    return sorted(results["samples"][name], key=lambda s: s["doc_id"]), results["results"][name]


def medbench_run(task: str, files: dict[str, Path], model_dir: Path, tmp_path: Path, capsys,
                 *extra: str) -> tuple[dict, list[dict]]:
    args = [arg for split, path in files.items()
            for arg in ("--data-file", f"{task}={path}" if split == "" else f"{task}:{split}={path}")]
    lb = tmp_path / "lb"
    code, err = run_eval(["--model", str(model_dir), "--tasks", task, *args, *extra, "--batch-size", "4",
                          "--leaderboard-dir", str(lb)], capsys)
    assert code == 0, err
    [path] = lb.glob("records/*/*/record.json")
    record = load_record(path)
    return record, read_samples(record)


def assert_same_scores(stock: list, results: dict, record: dict, ours: list[dict], metrics: list[str]) -> None:
    assert len(ours) == len(stock) > 0
    assert [s["prompt"] for s in ours] == [s["arguments"][0][0] for s in stock]
    for want, have in zip(stock, ours):
        if have.get("logliks") is not None:
            assert have["logliks"] == pytest.approx([float(ll) for ll, _ in want["filtered_resps"]], abs=1e-4)
        for metric in metrics:
            if metric in want and not isinstance(want[metric], (list, tuple)):
                assert have[metric] == pytest.approx(want[metric], abs=1e-6), metric
    for metric in metrics:
        [key] = [key for key in results if key.startswith(f"{metric},")]
        assert record["metrics"][metric]["value"] == pytest.approx(results[key], rel=1e-6), metric


def test_careqa_en_scores_as_stock_lm_eval(tiny_model_dir, tmp_path, capsys):
    """The prompt and the answer (cop, counted from 1) come from the task's own functions; letters are scored."""
    rows = [{"exam_id": 30 + i, "question": f"Which enzyme is deficient in disorder {i}?", "op1": "Hexosaminidase A",
             "op2": f"Glucocerebrosidase {i}", "op3": "Sphingomyelinase", "op4": "Galactosidase", "cop": i % 4 + 1,
             "year": 2020, "category": "Medicine", "unique_id": f"id-{i}"} for i in range(6)]
    data = write_jsonl(tmp_path / "careqa.jsonl", rows)
    stock, results = stock_run("careqa", ["careqa_en.yaml"], ["utils.py"], "careqa_local", {"test": data}, tmp_path,
                               tiny_model_dir)
    record, ours = medbench_run("careqa_en", {"": data}, tiny_model_dir, tmp_path, capsys)
    assert_same_scores(stock, results, record, ours, ["acc"])
    assert [s["gold"] for s in ours] == [s["target"] for s in stock] == [row["cop"] - 1 for row in rows]


def test_med_concepts_qa_takes_its_yamls_description_and_shots(tiny_model_dir, tmp_path, capsys):
    """The YAML asks for four first-n shots from the dev split under a description; the answer is a letter."""
    rows = [{"question_id": i, "question": f"What is the description of the medical code N0{i}.{i} in ATC?\n"
             f"A. Agent {i}\nB. Blocker\nC. Channel opener\nD. Diuretic", "answer": "Agent", "answer_id": "ABCD"[i % 4],
             "option1": f"Agent {i}", "option2": "Blocker", "option3": "Channel opener", "option4": "Diuretic"}
            for i in range(8)]
    test, dev = write_jsonl(tmp_path / "test.jsonl", rows[:4]), write_jsonl(tmp_path / "dev.jsonl", rows[4:])
    stock, results = stock_run("med_concepts_qa", ["med_concepts_qa_atc_easy.yaml", "_default_template_yaml"], [],
                               "mcqa_local", {"test": test, "dev": dev}, tmp_path, tiny_model_dir)
    record, ours = medbench_run("med_concepts_qa_atc_easy", {"": test, "dev": dev}, tiny_model_dir, tmp_path, capsys)
    assert ours[0]["prompt"].startswith("Answer A,B,C,D according to the answer to this multiple choice question.\n"
                                        "What is the description of the medical code N04.4")
    assert record["task"]["num_fewshot"] == 4
    assert_same_scores(stock, results, record, ours, ["acc"])


def test_mmlu_continuation_scores_the_choices_text(tiny_model_dir, tmp_path, capsys):
    """doc_to_choice is a template ("{{choices}}"): the answers' own text is scored, after first-n shots."""
    rows = [{"question": f"Which bone articulates with bone {i}? ", "subject": "anatomy",
             "choices": [f"Scapula {i}", "Humerus", "The ulna", "Radius"], "answer": (i * 3) % 4} for i in range(6)]
    data = write_jsonl(tmp_path / "anatomy.jsonl", rows)
    stock, results = stock_run("mmlu/continuation", ["mmlu_anatomy.yaml", "_continuation_template_yaml"], [],
                               "anatomy_local", {"test": data, "dev": data}, tmp_path, tiny_model_dir, num_fewshot=2)
    task = "mmlu_anatomy_continuation"
    record, ours = medbench_run(task, {"": data, "dev": data}, tiny_model_dir, tmp_path, capsys, "--num-fewshot", "2")
    assert ours[0]["choices"] == rows[0]["choices"]
    assert_same_scores(stock, results, record, ours, ["acc", "acc_norm"])


def test_med_text_classification_keeps_the_slice_its_process_docs_keeps(tiny_model_dir, tmp_path, capsys):
    """A CSV file (the task's own format), of which process_docs keeps the first tenth."""
    data = tmp_path / "med_text_class_train.csv"
    with data.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["class", "text"])
        writer.writeheader()
        writer.writerows({"class": i % 5 + 1, "text": f"Patient {i} presented with symptom {i}."} for i in range(30))
    stock, results = stock_run("med_text_classification", ["med_text_classification_easy.yaml"], ["utils.py"],
                               "mtc_local", {"train": data}, tmp_path, tiny_model_dir, builder="csv")
    record, ours = medbench_run("med_text_classification_easy", {"": data}, tiny_model_dir, tmp_path, capsys)
    assert len(ours) == 3
    assert_same_scores(stock, results, record, ours, ["acc"])


def test_a_perplexity_task_scores_as_stock_lm_eval(tiny_model_dir, tmp_path, capsys):
    """loglikelihood_rolling over the answer's text, with word/byte perplexity aggregated from (ll, count) pairs."""
    rows = [{"QUESTION": {"QID": f"q{i}", "QuestionText": f"What helps condition {i}?",
                          "AnswerList": [{"Answer": {"AID": f"a{i}", "SystemRank": 1, "ReferenceRank": 1,
                                                     "ReferenceScore": 4, "AnswerURL": "",
                                                     "AnswerText": f"Rest and fluids help condition {i} resolve."}}]}}
            for i in range(4)]
    data = write_jsonl(tmp_path / "mediqa.jsonl", rows)
    splits = {"train_live_qa_med": data, "validation": data, "test": data}
    stock, results = stock_run("mediqa_qa2019", ["mediqa_qa2019_perplexity.yaml"], ["utils_perplexity.py"],
                               "mediqa_ppl_local", splits, tmp_path, tiny_model_dir)
    record, ours = medbench_run("mediqa_qa2019_perplexity", {"": data}, tiny_model_dir, tmp_path, capsys)
    assert [s["pred"] for s in ours] == pytest.approx([s["filtered_resps"][0] for s in stock], abs=1e-4)
    assert_same_scores(stock, results, record, ours, ["perplexity", "word_perplexity", "byte_perplexity",
                                                      "bits_per_byte"])
    assert record["metrics"]["word_perplexity"].get("higher_is_better") is False



def assert_same_generations(stock: list, results: dict, record: dict, ours: list[dict], key: str) -> None:
    """The same prompts, the same greedy continuations, the task's own filter's answers, the same exact_match."""
    assert len(ours) == len(stock) > 0
    assert [s["prompt"] for s in ours] == [s["arguments"][0][0] for s in stock]
    assert [s.get("response", s["pred"]) for s in ours] == [s["resps"][0][0] for s in stock]
    assert [s["exact_match"] for s in ours] == [s["exact_match"] for s in stock]
    assert record["metrics"]["exact_match"]["value"] == pytest.approx(results[f"exact_match,{key}"])


def test_mmlu_pro_health_keeps_its_subject_and_shows_shots_its_own_way(tiny_model_dir, tmp_path, capsys):
    """process_docs keeps the health rows of a file holding every subject; the shots are rendered by the
    fewshot_config's own functions (the worked answer), and the answer letter is the regex filter's."""
    rows = [{"question_id": i, "question": f"Which vitamin deficiency causes sign {i}?",
             "options": [f"Vitamin {c}" for c in "ABCDEFGHIJ"], "answer": "ABCDEFGHIJ"[i % 10], "answer_index": i % 10,
             "cot_content": f"A: Let's think step by step. Sign {i} means the answer is ({'ABCDEFGHIJ'[i % 10]}).",
             "category": "biology" if i == 3 else "health", "src": "ori_mmlu-nutrition"} for i in range(6)]
    data = write_jsonl(tmp_path / "pro.jsonl", rows)
    stock, results = stock_run("mmlu_pro", ["mmlu_pro_health.yaml", "_default_template_yaml"], ["utils.py"],
                               "pro_local", {"test": data, "validation": data}, tmp_path, tiny_model_dir,
                               num_fewshot=2, gen_kwargs="max_gen_toks=8")
    record, ours = medbench_run("mmlu_pro_health", {"": data, "validation": data}, tiny_model_dir, tmp_path, capsys,
                                "--num-fewshot", "2", "--gen-kwargs", "max_gen_toks=8")
    assert len(ours) == 5 and "Sign 0 means the answer is (A)." in ours[0]["prompt"]
    assert_same_generations(stock, results, record, ours, "custom-extract")


def test_mmlu_generative_variant_scores_as_stock_lm_eval(tiny_model_dir, tmp_path, capsys):
    """generate_until with the variant's filter chain (regex, whitespace, regex, take_first) and an exact_match
    that ignores case and punctuation."""
    rows = [{"question": f"Which vessel drains territory {i}? ", "subject": "clinical_knowledge",
             "choices": [f"Vein {i}", "Artery", "Capillary bed", "Lymphatic duct"], "answer": (i * 7) % 4}
            for i in range(4)]
    data = write_jsonl(tmp_path / "ck.jsonl", rows)
    stock, results = stock_run("mmlu/generative", ["mmlu_clinical_knowledge.yaml", "_default_template_yaml"], [],
                               "ckgen_local", {"test": data, "dev": data}, tmp_path, tiny_model_dir,
                               gen_kwargs="max_gen_toks=8")
    task = "mmlu_clinical_knowledge_generative"
    record, ours = medbench_run(task, {"": data, "dev": data}, tiny_model_dir, tmp_path, capsys,
                                "--gen-kwargs", "max_gen_toks=8")
    assert_same_generations(stock, results, record, ours, "get_response")


def test_a_process_docs_that_draws_at_random_is_scored_on_the_documents_it_drew(tiny_model_dir, tmp_path, capsys):
    """med_prescriptions' process_docs puts the answer at a random position, and lm-eval reads a split more than
    once (building the requests, then scoring them). Stock lm-eval's dataset comes back from the datasets cache
    on the later reads, so every read holds the same positions; a --data-file's rows, held in memory, were drawn
    afresh each read, and items were scored against a position other than the one their prompt showed. Python's
    random is seeded before the task is built (lm-eval's default 0), so every run draws the same documents, and
    for one task the ones stock lm-eval draws (tests/test_lm_eval_parity_round11.py)."""
    medicines = [{"medicine_name": f"Drug{i}", "medicine_frequency": "Twice a day", "course_duration": "5 Days"}
                 for i in range(2)]
    rows = [{"results": str({"procedure": {"chief_complaints_diagnosis": f"Fever and cough, day {i}"},
                             "medicine_details": medicines})} for i in range(6)]
    data = write_jsonl(tmp_path / "prescriptions.jsonl", rows)
    record, ours = medbench_run("med_prescriptions_easy", {"": data}, tiny_model_dir, tmp_path, capsys)
    assert len(ours) == 6
    for sample in ours:
        gold = sample["gold"]
        assert sample["choices"][gold] in ("Drug0, twice a day, 5 days", "Drug1, twice a day, 5 days")
        assert f"\n{'ABCD'[gold]}. {sample['choices'][gold]} \n" in sample["prompt"]
        assert sample["acc"] == float(sample["pred"] == gold)
    again = tmp_path / "again"
    again.mkdir()
    _, rerun = medbench_run("med_prescriptions_easy", {"": data}, tiny_model_dir, again, capsys)
    assert [s["prompt"] for s in rerun] == [s["prompt"] for s in ours]
