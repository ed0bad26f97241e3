"""More of lm-eval's medical tasks, run by name through medbench, against stock lm-eval (HFLM) on the same synthetic
rows in each dataset's own format: a task with several filter pipelines (MMLU's flan variants) is one row per item
with each pipeline's metric; med_prescriptions draws the distractors stock lm-eval draws; medbench's own medqa and
medmcqa report acc_norm as stock's do; and tasks that already matched (glianorex, headqa_es, the hard
med_text_classification, chat template with a system prompt and shots, --limit, the generated and perplexity
tasks whose metrics `evaluate` would fetch from the hub) stay matched."""

from __future__ import annotations

import csv
import textwrap

import pytest

from medbench.records import load_record, read_samples
from test_lm_eval_parity import medmcqa_hub_rows, medqa_hub_rows, medbench_samples, stock_lm_eval
from test_lm_eval_parity_more import assert_same_scores, medbench_run, stock_run
from test_task_inputs import run_eval, write_jsonl


def mmlu_rows(subject: str, n: int) -> list[dict]:
    return [{"question": f"Which structure is labelled {i} in the figure? ", "subject": subject,
             "choices": [f"Vein {i}", "Artery", "Capillary bed", "Lymphatic duct"], "answer": (i * 7) % 4}
            for i in range(n)]


def test_a_task_with_two_filter_pipelines_is_one_row_per_item(tiny_model_dir, tmp_path, capsys):
    """lm-eval logs each item once per pipeline (strict-match, flexible-extract): the record held each item twice
    (n doubled) and kept whichever pipeline's exact_match came last under the plain name."""
    data = write_jsonl(tmp_path / "anatomy.jsonl", mmlu_rows("anatomy", 6))
    stock, results = stock_run("mmlu/flan_n_shot/generative",
                               ["mmlu_anatomy.yaml", "_mmlu_flan_generative_template_yaml"], [], "flan_local",
                               {"test": data, "dev": data}, tmp_path, tiny_model_dir, num_fewshot=2,
                               gen_kwargs="max_gen_toks=6")
    task = "mmlu_flan_n_shot_generative_anatomy"
    record, ours = medbench_run(task, {"": data, "dev": data}, tiny_model_dir, tmp_path, capsys,
                                "--num-fewshot", "2", "--gen-kwargs", "max_gen_toks=6")
    strict = [s for s in stock if s["filter"] == "strict-match"]
    flexible = [s for s in stock if s["filter"] == "flexible-extract"]
    assert record["n"] == len(ours) == 6 and [s["doc_id"] for s in ours] == list(range(6))
    assert [s["prompt"] for s in ours] == [s["arguments"][0][0] for s in strict]
    assert [s["pred"] for s in ours] == [s["filtered_resps"][0] for s in strict]
    assert [s["exact_match,flexible-extract"] for s in ours] == [s["exact_match"] for s in flexible]
    assert record["metrics"]["exact_match"]["value"] == pytest.approx(results["exact_match,strict-match"])
    assert record["metrics"]["exact_match,flexible-extract"]["value"] == \
        pytest.approx(results["exact_match,flexible-extract"])


def test_pipelines_that_disagree_keep_their_own_scores_through_rescoring(tiny_model_dir, tmp_path, capsys):
    """A second pipeline that always answers "B" scores 0.5 where the generated text scores 0: each keeps its own
    value, per item too, so re-scoring from the samples gives them back."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from medbench.leaderboard.rescoring import rescore

    folder = tmp_path / "tasks"
    folder.mkdir()
    write_jsonl(folder / "rows.jsonl", [{"question": f"Which letter names option {i}?", "answer": "BC"[i % 2]}
                                        for i in range(6)])
    (folder / "two_pipelines.yaml").write_text(textwrap.dedent("""
        task: two_pipelines
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: rows.jsonl
        output_type: generate_until
        test_split: test
        doc_to_text: "Q: {{question}}\\nA:"
        doc_to_target: "{{answer}}"
        generation_kwargs: {until: ["\\n"], max_gen_toks: 4, do_sample: false}
        filter_list:
          - name: as-generated
            filter: [{function: take_first}]
          - name: always-b
            filter: [{function: regex, regex_pattern: "(NEVER MATCHES)", fallback: "B"}, {function: take_first}]
        metric_list: [{metric: exact_match}]
    """).replace("rows.jsonl", str(folder / "rows.jsonl")))
    stock = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={tiny_model_dir},dtype=float32",
                                    tasks=["two_pipelines"], batch_size=4, device="cpu",
                                    task_manager=TaskManager(include_path=str(folder), include_defaults=False))
    lb = tmp_path / "lb"
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "two_pipelines", "--include-path", str(folder),
                          "--leaderboard-dir", str(lb)], capsys)
    assert code == 0, err
    [path] = lb.glob("records/*/two_pipelines*/record.json")
    record = load_record(path)
    values = {name: metric["value"] for name, metric in record["metrics"].items()}
    assert values == pytest.approx({"exact_match": stock["results"]["two_pipelines"]["exact_match,as-generated"],
                                    "exact_match,always-b": 0.5})
    assert record["n"] == 6 and [s["exact_match,always-b"] for s in read_samples(record)] == [1.0, 0.0] * 3
    assert {name: metric["value"] for name, metric in rescore(path.parent)["metrics"].items()} == \
        pytest.approx(values)


@pytest.mark.parametrize("task", ["med_prescriptions_easy", "med_prescriptions_hard"])
def test_med_prescriptions_draws_the_distractors_stock_lm_eval_draws(task, tiny_model_dir, tmp_path, capsys):
    """doc_to_choice draws its distractors from Python's random each time it is called. medbench reseeded random
    for each lm-eval call after checking the documents (which draws too), so the prompts listed, and the choices
    scored, were other than stock's; now the draws continue from where building the task left them, as stock's."""
    medicines = [{"medicine_name": f"Drug{i}", "medicine_frequency": "Twice a day", "course_duration": "5 Days"}
                 for i in range(3)]
    rows = [{"results": str({"procedure": {"chief_complaints_diagnosis": f"Fever and cough, day {i}"},
                             "medicine_details": medicines})} for i in range(6)]
    data = write_jsonl(tmp_path / "prescriptions.jsonl", rows)
    yamls = [f"{task}.yaml"] + (["med_prescriptions_easy.yaml"] if task.endswith("hard") else [])
    stock, results = stock_run("med_prescriptions", yamls, ["utils.py"], "rx_local", {"train": data}, tmp_path,
                               tiny_model_dir)
    record, ours = medbench_run(task, {"": data}, tiny_model_dir, tmp_path, capsys)
    assert_same_scores(stock, results, record, ours, ["acc"])
    assert [s["gold"] for s in ours] == [s["target"] for s in stock]


@pytest.mark.parametrize("task, folder, code", [("medmcqa", "medmcqa", "utils_medmcqa.py"),
                                                ("medqa", "medqa", "preprocess_medqa.py")])
def test_medbenchs_own_medqa_and_medmcqa_report_acc_norm_as_stock_does(task, folder, code, tiny_model_dir, tmp_path,
                                                                        capsys):
    """Stock medqa_4options and medmcqa list acc and acc_norm; medbench's tasks of those names listed acc only."""
    rows = medmcqa_hub_rows() if task == "medmcqa" else medqa_hub_rows()
    data = write_jsonl(tmp_path / f"{task}.jsonl", rows)
    stock = stock_lm_eval(folder, [code], f"{task}_local", data, tiny_model_dir, tmp_path)
    record, ours = medbench_samples(["--model", str(tiny_model_dir), "--tasks", task, "--data-file",
                                     f"{task}={data}"], task, capsys, tmp_path / "lb")
    assert [s["acc_norm"] for s in ours] == [s["acc_norm"] for s in stock]
    assert record["metrics"]["acc_norm"]["value"] == pytest.approx(sum(s["acc_norm"] for s in stock) / len(stock))


def _glianorex(tmp_path):
    rows = [{"question": f"Which gland secretes glianorin {i}?", "answer_idx": "ABCD"[i % 4],
             "options": {"A": "Glianorex", "B": f"Pituitary {i}", "C": "Adrenal cortex", "D": "Thymus gland"},
             "language": "fr" if i % 3 == 2 else "en"} for i in range(9)]
    data = write_jsonl(tmp_path / "glianorex.jsonl", rows)
    return ("glianorex", ["glianorex_en.yaml"], ["preprocess_glianorex.py"], {"test": data}, "json"), {"": data}


def _headqa_es(tmp_path):
    rows = [{"qtext": f"¿Qué nervio inerva el músculo {i}?", "ra": i % 4 + 1, "category": "medicina", "qid": i,
             "name": "examen", "year": "2013", "image": "",
             "answers": [{"aid": j + 1, "atext": ("Cubital", "Mediano", "Radial", "Rama del axilar")[j]}
                         for j in range(4)]} for i in range(8)]
    data = write_jsonl(tmp_path / "headqa.jsonl", rows)
    splits = {"train": data, "validation": data, "test": data}
    return ("headqa", ["headqa_es.yaml", "headqa_en.yaml"], [], splits, "json"), {"": data}


def _med_text_classification_hard(tmp_path):
    data = tmp_path / "mtsamples.csv"
    with data.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["description", "medical_specialty", "sample_name",
                                                    "transcription", "keywords"])
        writer.writeheader()
        writer.writerows({"description": "note", "medical_specialty": (" Urology", " Dentistry", " Neurology")[i % 3],
                          "sample_name": f"s{i}", "transcription": f"Patient {i} was seen for follow-up.",
                          "keywords": "k"} for i in range(6))
    return ("med_text_classification", ["med_text_classification_hard.yaml", "med_text_classification_easy.yaml"],
            ["utils.py"], {"train": data}, "csv"), {"": data}


@pytest.mark.parametrize("task, build", [("glianorex_en", _glianorex), ("headqa_es", _headqa_es),
                                         ("med_text_classification_hard", _med_text_classification_hard)])
def test_more_multiple_choice_tasks_score_as_stock(task, build, tiny_model_dir, tmp_path, capsys):
    """A process_docs that keeps one language, a task whose YAML includes another's, a CSV with its labels'
    leading spaces: the same prompts, log-likelihoods and acc (and acc_norm where the task lists it)."""
    (folder, yamls, code, splits, builder), files = build(tmp_path)
    stock, results = stock_run(folder, yamls, code, "mc_local", splits, tmp_path, tiny_model_dir, builder=builder)
    record, ours = medbench_run(task, files, tiny_model_dir, tmp_path, capsys)
    assert_same_scores(stock, results, record, ours, [m for m in ("acc", "acc_norm") if f"{m},none" in results])


@pytest.mark.parametrize("args, options", [
    (["--chat-template", "--num-fewshot", "2", "--system-prompt", "Be exact."],
     {"apply_chat_template": True, "num_fewshot": 2, "system_instruction": "Be exact."}),
    (["--limit", "3"], {"limit": 3}),
])
def test_chat_template_shots_system_prompt_and_limit_as_stock(args, options, tiny_model_dir, tmp_path, capsys):
    """Shots as turns under the subject's description and the system prompt (lm-eval's fewshot_as_multiturn,
    on by default with a chat template), and --limit's first N items."""
    data = write_jsonl(tmp_path / "college_medicine.jsonl", mmlu_rows("college_medicine", 6))
    stock, results = stock_run("mmlu/default", ["mmlu_college_medicine.yaml", "_default_template_yaml"], [],
                               "cm_local", {"test": data, "dev": data}, tmp_path, tiny_model_dir, **options)
    record, ours = medbench_run("mmlu_college_medicine", {"": data, "dev": data}, tiny_model_dir, tmp_path, capsys,
                                *args)
    assert len(ours) == options.get("limit", 6)
    assert_same_scores(stock, results, record, ours, ["acc"])


class StandInMetric:
    """What `evaluate.load` gives these tasks' code, offline: the hub's bleu/rouge/bertscore/bleurt scripts are
    not reachable, and stock and medbench call the same object, so only what surrounds the metric is compared."""

    def __init__(self, name: str) -> None:
        self.name = name

    def compute(self, predictions, references, **_):
        said, wanted = set(predictions[0].split()), set(str(references[0]).split())
        share = (len(said & wanted) + 1) / (len(wanted) + 2)
        return {"bleu": {"bleu": share}, "rouge": {"rouge1": share, "rouge2": share / 2, "rougeL": share / 3},
                "bertscore": {"f1": [share / 4]}, "bleurt": {"scores": [share / 5]}}[self.name]


GENERATED = ["bleu", "rouge1", "rouge2", "rougeL", "bleurt", "bert_score"]
PERPLEXITY = ["word_perplexity", "byte_perplexity", "bits_per_byte"]


@pytest.mark.parametrize("task, folder, yamls, code, splits, row, metrics, gen_kwargs", [
    ("meqsum", "meqsum", ["meqsum.yaml"], ["utils.py"], ["train"],
     lambda i: {"CHQ": f"SUBJECT: rash MESSAGE: I have had a rash on my arm for {i} days, what is it?",
                "Summary": f"What causes a rash lasting {i} days?", "File": f"f{i}"}, GENERATED, "max_gen_toks=8"),
    ("careqa_open", "careqa", ["careqa_open.yaml"], ["utils_open.py"], ["test"],
     lambda i: {"exam_id": i, "question": f"What enzyme breaks down substrate {i}?", "answer": f"Enzyme {i}",
                "year": 2020, "category": "Medicine", "unique_id": f"u{i}"}, GENERATED, None),
    ("olaph_perplexity", "olaph", ["olaph_perplexity.yaml"], ["utils.py", "utils_perplexity.py"], ["test"],
     lambda i: {"ID": f"q{i}", "Question": f"Is drug {i} safe in pregnancy?", "Must_have": [], "Nice_to_have": [],
                "Free_form_answer": f"Drug {i} is generally avoided in the first trimester."}, PERPLEXITY, None),
])
def test_generated_and_perplexity_tasks_score_as_stock(task, folder, yamls, code, splits, row, metrics, gen_kwargs,
                                                       tiny_model_dir, tmp_path, capsys, monkeypatch):
    """The task's description, its "\\n\\n" stop, lm-eval's default of 256 new tokens or --gen-kwargs, the split it
    scores (train for meqsum), olaph's first-tenth slice: the same prompts, answers and metric values."""
    import evaluate

    monkeypatch.setattr(evaluate, "load", lambda name, *args, **kwargs: StandInMetric(name))
    data = write_jsonl(tmp_path / "rows.jsonl", [row(i) for i in range(20 if folder == "olaph" else 6)])
    options = {"gen_kwargs": gen_kwargs} if gen_kwargs else {}
    stock, results = stock_run(folder, yamls, code, "gen_local", {split: data for split in splits}, tmp_path,
                               tiny_model_dir, **options)
    record, ours = medbench_run(task, {"": data}, tiny_model_dir, tmp_path, capsys,
                                *(["--gen-kwargs", gen_kwargs] if gen_kwargs else []))
    if metrics is GENERATED:
        assert [s.get("response", s["pred"]) for s in ours] == [s["resps"][0][0] for s in stock]
    assert_same_scores(stock, results, record, ours, metrics)
