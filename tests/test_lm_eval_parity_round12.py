"""Round 12: more of lm-eval's medical tasks and settings, medbench against stock lm-eval (HFLM) on the same rows:
MMLU's flan chain-of-thought variants (shots written inline in the YAML; a YAML that fixes num_fewshot 0, which
--num-fewshot does not change), CareQA's open perplexity, MedDialog's question summaries, another --seed, a YAML's
own repeats with sampling, a chat template with shots on a generating task, batch sizes 1 and 3, the closed-form and
bootstrap standard errors, output_type loglikelihood (greedy acc), acc_mutual_info and several gold answers, a
model window shorter than the prompts (truncation, rolling windows), the real SmolLM2 tokenizer, a system prompt
without a chat template, both med_prescriptions tasks in one run, and a `perplexity` metric that overflows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from test_lm_eval_parity import medbench_samples, medqa_hub_rows, stock_lm_eval
from test_lm_eval_parity_more import assert_same_scores, medbench_run, stock_run
from test_lm_eval_parity_round11 import StandInMetric, mmlu_rows
from medbench.records import load_record, read_samples
from test_task_inputs import run_eval, write_jsonl


def _run(args: list[str], lb, capsys) -> tuple[dict, list[dict], str]:
    """medbench eval with ``args``; the one record it wrote, its rows and what it printed to stderr."""
    batch = [] if "--batch-size" in args else ["--batch-size", "4"]
    code, err = run_eval([*args, *batch, "--leaderboard-dir", str(lb)], capsys)
    assert code == 0, err
    [path] = lb.glob("records/*/*/record.json")
    record = load_record(path)
    return record, read_samples(record), err


def _user_task(folder, name: str, rows: list[dict], body: str):
    """A task YAML of the user's (--include-path) over ``rows``."""
    import textwrap

    folder.mkdir(exist_ok=True)
    write_jsonl(folder / "rows.jsonl", rows)
    (folder / f"{name}.yaml").write_text(f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
                                         f"    test: {folder / 'rows.jsonl'}\ntest_split: test\n"
                                         + textwrap.dedent(body))
    return folder


def _stock_user(folder, model, task, **options):
    import lm_eval
    from lm_eval.tasks import TaskManager

    results = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model},dtype=float32",
                                      tasks=[task], batch_size=4, device="cpu", log_samples=True,
                                      task_manager=TaskManager(include_path=str(folder), include_defaults=False),
                                      **options)
    return sorted(results["samples"][task], key=lambda s: s["doc_id"]), results["results"][task]


def _medbench_user(folder, model, task, tmp_path, capsys) -> tuple[dict, list[dict]]:
    record, rows, _ = _run(["--model", str(model), "--tasks", task, "--include-path", str(folder)], tmp_path / "lb",
                           capsys)
    return record, rows


@pytest.fixture(scope="module")
def smollm_dir():
    """The embedded SmolLM2-135M-Instruct as a model folder: a real BPE tokenizer and chat template."""
    from medbench_plugins.builtin_models import EmbeddedModelLoader

    return EmbeddedModelLoader().ensure_converted()




def _same_generations(stock: list, ours: list[dict]) -> None:
    assert len(ours) == len(stock) > 0
    assert [s["prompt"] for s in ours] == [s["arguments"][0][0] for s in stock]
    assert [s.get("response", s["pred"]) for s in ours] == [s["resps"][0][0] for s in stock]


def test_flan_cot_fewshot_takes_the_shots_written_in_its_yaml(tiny_model_dir, tmp_path, capsys):
    """The subject's YAML lists its four worked examples (fewshot_config.samples, first_n) and asks for them
    (num_fewshot 4 in the template): the same prompts, answers and exact_match, and the record says 4 shots."""
    data = write_jsonl(tmp_path / "ck.jsonl", mmlu_rows("clinical_knowledge", 4))
    stock, results = stock_run("mmlu/flan_cot_fewshot", ["mmlu_clinical_knowledge.yaml",
                                                         "_mmlu_flan_cot_fewshot_template_yaml"], [],
                               "cot_local", {"test": data, "validation": data}, tmp_path, tiny_model_dir,
                               gen_kwargs="max_gen_toks=6")
    record, ours = medbench_run("mmlu_flan_cot_fewshot_clinical_knowledge", {"": data, "validation": data},
                                tiny_model_dir, tmp_path, capsys, "--gen-kwargs", "max_gen_toks=6")
    _same_generations(stock, ours)
    assert "The answer is (C)." in ours[0]["prompt"]  # the YAML's first worked example
    assert [s["exact_match"] for s in ours] == [s["exact_match"] for s in stock]
    assert record["metrics"]["exact_match"]["value"] == pytest.approx(results["exact_match,get-answer"])
    assert record["task"]["num_fewshot"] == 4


def test_a_yaml_that_fixes_zero_shots_stays_zero_shot_and_says_so(tiny_model_dir, tmp_path, capsys):
    """lm-eval ignores --num-fewshot for a task whose YAML sets num_fewshot 0 (the flan zero-shot MMLU). medbench
    scored it zero-shot too, but recorded the shots asked for (num_fewshot 2, column '@2shot'), so the
    leaderboard showed a 2-shot score of zero-shot prompts. Now the record says 0 and a note names the task."""
    data = write_jsonl(tmp_path / "ck.jsonl", mmlu_rows("clinical_knowledge", 4))
    yamls = ["mmlu_clinical_knowledge.yaml", "_mmlu_flan_cot_zeroshot_template_yaml"]
    stock, _ = stock_run("mmlu/flan_cot_zeroshot", yamls, [], "z_local", {"dev": data, "validation": data},
                         tmp_path, tiny_model_dir, num_fewshot=2, gen_kwargs="max_gen_toks=4")
    task = "mmlu_flan_cot_zeroshot_clinical_knowledge"
    record, ours, err = _run(["--model", str(tiny_model_dir), "--tasks", task, "--data-file", f"{task}={data}",
                              "--data-file", f"{task}:dev={data}", "--num-fewshot", "2", "--gen-kwargs",
                              "max_gen_toks=4"], tmp_path / "lb", capsys)
    assert [s["prompt"] for s in ours] == [s["arguments"][0][0] for s in stock if s["filter"] == "strict-match"]
    assert record["task"]["num_fewshot"] == 0 and "@2shot" not in record["record_key"]
    assert f"--num-fewshot 2 does not apply to {task}: its YAML sets num_fewshot 0" in " ".join(err.split())


def test_careqa_open_perplexity_scores_as_stock(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """loglikelihood_rolling over the answer, with an empty doc_to_text and an include of the generating task."""
    import evaluate

    monkeypatch.setattr(evaluate, "load", lambda name, *args, **kwargs: StandInMetric(name))  # careqa_open's code
    rows = [{"exam_id": i, "question": f"What enzyme breaks down substrate {i}?", "answer": f"Enzyme {i} does.",
             "year": 2020, "category": "Medicine", "unique_id": f"u{i}"} for i in range(5)]
    data = write_jsonl(tmp_path / "rows.jsonl", rows)
    stock, results = stock_run("careqa", ["careqa_open_perplexity.yaml", "careqa_open.yaml"],
                               ["utils_open.py", "utils_perplexity.py"], "cop_local", {"test": data}, tmp_path,
                               tiny_model_dir)
    record, ours = medbench_run("careqa_open_perplexity", {"": data}, tiny_model_dir, tmp_path, capsys)
    assert [s["pred"] for s in ours] == pytest.approx([s["filtered_resps"][0] for s in stock], abs=1e-4)
    assert_same_scores(stock, results, record, ours, ["word_perplexity", "byte_perplexity", "bits_per_byte"])


def test_meddialog_question_summaries_score_as_stock(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """A task that includes another's YAML (its metrics, its "\n\n" stop), its own doc_to_text/process_results."""
    import evaluate

    monkeypatch.setattr(evaluate, "load", lambda name, *args, **kwargs: StandInMetric(name))
    rows = [{"src": f"Patient: I have had a cough for {i} days and a mild fever, should I worry?",
             "tgt": f"Is a cough for {i} days with fever serious?", "id": i} for i in range(5)]
    data = write_jsonl(tmp_path / "rows.jsonl", rows)
    stock, results = stock_run("meddialog", ["meddialog_qsumm.yaml", "meddialog_raw_dialogues.yaml"], ["utils.py"],
                               "md_local", {"train": data, "validation": data, "test": data}, tmp_path,
                               tiny_model_dir, gen_kwargs="max_gen_toks=8")
    record, ours = medbench_run("meddialog_qsumm", {"": data}, tiny_model_dir, tmp_path, capsys,
                                "--gen-kwargs", "max_gen_toks=8")
    _same_generations(stock, ours)
    assert_same_scores(stock, results, record, ours, ["bleu", "rouge1", "rouge2", "rougeL", "bleurt", "bert_score"])


def test_another_seed_draws_the_shots_stock_draws_with_it(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """--seed 7 against stock's --seed 7 (every generator seeded 7): the same random few-shot examples."""
    import lm_eval

    original = lm_eval.simple_evaluate
    monkeypatch.setattr(lm_eval, "simple_evaluate", lambda *args, **kwargs: original(
        *args, **{**kwargs, "random_seed": 7, "numpy_random_seed": 7, "torch_random_seed": 7,
                  "fewshot_random_seed": 7}))
    data = write_jsonl(tmp_path / "medqa.jsonl", medqa_hub_rows())
    stock = stock_lm_eval("medqa", ["preprocess_medqa.py"], "medqa_4options_local", data, tiny_model_dir,
                          tmp_path, num_fewshot=2)
    monkeypatch.setattr(lm_eval, "simple_evaluate", original)
    (tmp_path / "default").mkdir()
    default = stock_lm_eval("medqa", ["preprocess_medqa.py"], "medqa_default", data, tiny_model_dir,
                            tmp_path / "default", num_fewshot=2)
    _, ours = medbench_samples(["--model", str(tiny_model_dir), "--tasks", "medqa", "--num-fewshot", "2", "--seed",
                                "7", "--data-file", f"medqa={data}", "--data-file", f"medqa:train={data}"],
                               "medqa", capsys, tmp_path / "lb")
    assert [s["prompt"] for s in ours] == [s["arguments"][0][0] for s in stock]
    assert [s["prompt"] for s in ours] != [s["arguments"][0][0] for s in default]  # the seed chose other shots


def test_the_closed_form_stderr_is_stocks(tiny_model_dir, tmp_path, capsys):
    """acc's standard error (the sample standard deviation over sqrt(n)) as stock reports it, MMLU medical
    genetics with one first-n shot."""
    data = write_jsonl(tmp_path / "mg.jsonl", mmlu_rows("medical_genetics", 7))
    stock, results = stock_run("mmlu/default", ["mmlu_medical_genetics.yaml", "_default_template_yaml"], [],
                               "mg_local", {"test": data, "dev": data}, tmp_path, tiny_model_dir, num_fewshot=1)
    record, ours = medbench_run("mmlu_medical_genetics", {"": data, "dev": data}, tiny_model_dir, tmp_path, capsys,
                                "--num-fewshot", "1")
    assert_same_scores(stock, results, record, ours, ["acc"])
    assert record["metrics"]["acc"]["stderr"] > 0
    assert record["metrics"]["acc"]["stderr"] == pytest.approx(results["acc_stderr,none"], rel=1e-9)


def test_bootstrapped_stderr_is_stocks_first_thousand_resamples(tiny_model_dir, tmp_path, capsys):
    """f1 and mcc (and the nanmean of the generated tasks' ROUGE and BLEURT) have a bootstrapped standard error.
    medbench asks lm-eval for 1000 resamples, stock for 100000 (minutes of CPU for a thousand items); lm-eval
    seeds each chunk of 1000 by its number, so medbench's value is exactly stock's at bootstrap_iters=1000, and
    differs from stock's default by that estimate's own Monte Carlo error (a few percent)."""
    rows = [{"question": f"Is finding {i} benign?", "answer": (i * 5) % 3 % 2,
             "options": ["no" * (1 + i % 4), "yes" * (1 + i % 3)]} for i in range(16)]
    folder = _user_task(tmp_path / "tasks", "yn", rows, """
        output_type: multiple_choice
        doc_to_text: "Q: {{question}}\\nA:"
        doc_to_choice: "{{options}}"
        doc_to_target: answer
        metric_list: [{metric: acc}, {metric: f1}, {metric: mcc}]
    """)
    _, results = _stock_user(folder, tiny_model_dir, "yn", bootstrap_iters=1000)
    record, _ = _medbench_user(folder, tiny_model_dir, "yn", tmp_path, capsys)
    assert record["metrics"]["mcc"]["stderr"] > 0
    for metric in ("acc", "f1", "mcc"):
        assert record["metrics"][metric]["value"] == pytest.approx(results[f"{metric},none"])
        assert record["metrics"][metric]["stderr"] == pytest.approx(results[f"{metric}_stderr,none"]), metric


def test_a_yamls_own_repeats_sampled_and_voted_as_stock(tiny_model_dir, tmp_path, capsys):
    """repeats: 3 in the YAML with sampling and a majority_vote pipeline: the same samples (torch seeded as stock
    seeds it), the same votes, the same exact_match."""
    rows = [{"question": f"Which letter names option {i}?", "answer": "BC"[i % 2]} for i in range(6)]
    folder = _user_task(tmp_path / "tasks", "sampled", rows, """
        output_type: generate_until
        doc_to_text: "Q: {{question}}\\nA:"
        doc_to_target: "{{answer}}"
        repeats: 3
        generation_kwargs: {until: ["\\n"], max_gen_toks: 4, do_sample: true, temperature: 1.0}
        filter_list:
          - name: vote
            filter: [{function: majority_vote}, {function: take_first}]
        metric_list: [{metric: exact_match}]
    """)
    stock, results = _stock_user(folder, tiny_model_dir, "sampled")
    record, ours = _medbench_user(folder, tiny_model_dir, "sampled", tmp_path, capsys)
    assert len({text for s in stock for text in s["resps"][0]}) > 1  # sampled: the answers differ
    assert [s.get("response", s["pred"]) for s in ours] == [s["resps"][0][0] for s in stock]
    assert [s["pred"] for s in ours] == [s["filtered_resps"][0] for s in stock]
    assert record["metrics"]["exact_match"]["value"] == pytest.approx(results["exact_match,vote"])


def test_chat_template_shots_and_system_prompt_on_a_generating_task(tiny_model_dir, tmp_path, capsys):
    """Shots as chat turns (fewshot_as_multiturn) under a system prompt, then generation and MMLU's filters."""
    data = write_jsonl(tmp_path / "ck.jsonl", mmlu_rows("clinical_knowledge", 5))
    stock, results = stock_run("mmlu/generative", ["mmlu_clinical_knowledge.yaml", "_default_template_yaml"], [],
                               "ckgen_local", {"test": data, "dev": data}, tmp_path, tiny_model_dir,
                               gen_kwargs="max_gen_toks=5", apply_chat_template=True, num_fewshot=2,
                               system_instruction="Be exact.")
    record, ours = medbench_run("mmlu_clinical_knowledge_generative", {"": data, "dev": data}, tiny_model_dir,
                                tmp_path, capsys, "--gen-kwargs", "max_gen_toks=5", "--chat-template",
                                "--num-fewshot", "2", "--system-prompt", "Be exact.")
    _same_generations(stock, ours)
    assert record["metrics"]["exact_match"]["value"] == pytest.approx(results["exact_match,get_response"])


@pytest.mark.parametrize("batch", ["1", "3"])
def test_batch_size_changes_no_score(batch, tiny_model_dir, tmp_path, capsys):
    """The prefix scorer left-pads its batches (stock HFLM right-pads): at batch 1 and 3 the log-likelihoods are
    stock's at batch 4 in fp32, and acc and acc_norm item for item."""
    data = write_jsonl(tmp_path / "medqa.jsonl", medqa_hub_rows())
    stock = stock_lm_eval("medqa", ["preprocess_medqa.py"], "medqa_4options_local", data, tiny_model_dir, tmp_path,
                          num_fewshot=1)
    _, ours, _ = _run(["--model", str(tiny_model_dir), "--tasks", "medqa", "--num-fewshot", "1", "--data-file",
                       f"medqa={data}", "--data-file", f"medqa:train={data}", "--batch-size", batch],
                      tmp_path / "lb", capsys)
    assert len(ours) == len(stock)
    for want, have in zip(stock, ours):
        assert have["logliks"] == pytest.approx([float(ll) for ll, _ in want["filtered_resps"]], abs=1e-5)
        assert (have["acc"], have["acc_norm"]) == (want["acc"], want["acc_norm"])


def test_loglikelihood_output_type_greedy_acc_and_perplexity(tiny_model_dir, tmp_path, capsys):
    """output_type loglikelihood: acc is whether the continuation is the greedy one (the prefix scorer's own
    check over multi-token continuations), perplexity is bootstrapped as above."""
    rows = [{"text": f"The patient in bed {i} was given", "word": " aspirin" * (1 + i % 3)} for i in range(8)]
    folder = _user_task(tmp_path / "tasks", "ll", rows + [{"text": "a" * 30, "word": "a"}], """
        output_type: loglikelihood
        doc_to_text: "{{text}}"
        doc_to_target: "{{word}}"
        target_delimiter: ""
        metric_list: [{metric: perplexity}, {metric: acc}]
    """)
    stock, results = _stock_user(folder, tiny_model_dir, "ll", bootstrap_iters=1000)
    record, ours = _medbench_user(folder, tiny_model_dir, "ll", tmp_path, capsys)
    assert [s["acc"] for s in ours] == [s["acc"] for s in stock]
    for metric in ("acc", "perplexity"):
        assert record["metrics"][metric]["value"] == pytest.approx(results[f"{metric},none"], rel=1e-5)
        assert record["metrics"][metric]["stderr"] == pytest.approx(results[f"{metric}_stderr,none"], rel=1e-4)


@pytest.mark.parametrize("several", [True, False])
def test_mutual_information_and_several_gold_answers_score_as_stock(several, tiny_model_dir, tmp_path, capsys):
    """acc_mutual_info (each choice's log-likelihood less its unconditional one, scored from a one-token context)
    and a doc_to_target that lists several right answers (stock's acc_mutual_info fails on those)."""
    metrics = ["acc", "acc_norm"] if several else ["acc", "acc_norm", "acc_mutual_info"]
    rows = [{"question": f"Which drug treats case {i}?", "gold": [i % 3, (i + 1) % 3] if several else i % 3,
             "options": [f"drug {'x' * (i % 4)}", "placebo", f"dose {i}"]} for i in range(10)]
    folder = _user_task(tmp_path / "tasks", "mt", rows, f"""
        output_type: multiple_choice
        doc_to_text: "Q: {{{{question}}}}\\nA:"
        doc_to_choice: "{{{{options}}}}"
        doc_to_target: gold
        metric_list: [{", ".join("{metric: " + m + "}" for m in metrics)}]
    """)
    stock, results = _stock_user(folder, tiny_model_dir, "mt")
    record, ours = _medbench_user(folder, tiny_model_dir, "mt", tmp_path, capsys)
    for metric in metrics:
        assert [s[metric] for s in ours] == [s[metric] for s in stock], metric
        assert record["metrics"][metric]["value"] == pytest.approx(results[f"{metric},none"])
        assert record["metrics"][metric]["stderr"] == pytest.approx(results[f"{metric}_stderr,none"])


def test_smollm_chat_template_and_shots_score_as_stock(smollm_dir, tmp_path, capsys):
    """A real BPE tokenizer and chat template (SmolLM2-135M-Instruct): MedQA with two random shots as turns
    (5 items: on 2 CPU cores the whole 40-item sample took 47 s of the suite)."""
    data = write_jsonl(tmp_path / "medqa.jsonl", medqa_hub_rows()[:5])
    stock, results = stock_run("medqa", ["medqa.yaml"], ["preprocess_medqa.py"], "mq_local",
                               {"train": data, "validation": data, "test": data}, tmp_path, smollm_dir,
                               num_fewshot=2, apply_chat_template=True)
    record, ours = medbench_run("medqa_4options", {"": data, "train": data}, smollm_dir, tmp_path, capsys,
                                "--num-fewshot", "2", "--chat-template")
    assert_same_scores(stock, results, record, ours, ["acc", "acc_norm"])
    assert [s["pred"] for s in ours] == [max(range(4), key=lambda j: float(s["filtered_resps"][j][0]))
                                         for s in stock]


def test_smollm_generates_as_stock_with_a_chat_template(smollm_dir, tmp_path, capsys):
    data = write_jsonl(tmp_path / "ck.jsonl", mmlu_rows("clinical_knowledge", 6))
    stock, results = stock_run("mmlu/generative", ["mmlu_clinical_knowledge.yaml", "_default_template_yaml"], [],
                               "ckgen_local", {"test": data, "dev": data}, tmp_path, smollm_dir,
                               gen_kwargs="max_gen_toks=24", num_fewshot=1, apply_chat_template=True)
    record, ours = medbench_run("mmlu_clinical_knowledge_generative", {"": data, "dev": data}, smollm_dir,
                                tmp_path, capsys, "--gen-kwargs", "max_gen_toks=24", "--num-fewshot", "1",
                                "--chat-template")
    _same_generations(stock, ours)
    assert record["metrics"]["exact_match"]["value"] == pytest.approx(results["exact_match,get_response"])


@pytest.fixture(scope="module")
def short_window_model(tmp_path_factory):
    """The tiny model with a 48-token window: prompts longer than it are cut from the left, texts rolled."""
    import json

    from medbench.testing import make_tiny_model

    path = make_tiny_model(tmp_path_factory.mktemp("short-window"))
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 48}))
    return path


def _mediqa_rows(repeats: int, tail: str = "") -> list[dict]:
    return [{"QUESTION": {"QID": f"q{i}", "QuestionText": f"What helps condition {i}?",
                          "AnswerList": [{"Answer": {"AID": f"a{i}", "SystemRank": 1, "ReferenceRank": 1,
                                                     "ReferenceScore": 4, "AnswerURL": "", "AnswerText":
                                                     f"Rest and fluids help condition {i} resolve {tail}" * repeats}}]}}
            for i in range(4)]


def test_a_window_shorter_than_the_texts_scores_as_stock(short_window_model, tmp_path, capsys):
    """Rolling windows (perplexity over answers longer than the window), truncated multiple-choice prompts (scored
    by HFLM's own code in the prefix scorer) and truncated generation prompts."""
    data = write_jsonl(tmp_path / "mediqa.jsonl", _mediqa_rows(1, "in a week or so."))
    (tmp_path / "a").mkdir()
    stock, results = stock_run("mediqa_qa2019", ["mediqa_qa2019_perplexity.yaml"], ["utils_perplexity.py"],
                               "mediqa_ppl_local", {"train_live_qa_med": data, "validation": data, "test": data},
                               tmp_path / "a", short_window_model)
    record, ours = medbench_run("mediqa_qa2019_perplexity", {"": data}, short_window_model, tmp_path / "a", capsys)
    assert [s["pred"] for s in ours] == pytest.approx([s["filtered_resps"][0] for s in stock], abs=1e-4)
    assert_same_scores(stock, results, record, ours, ["perplexity", "word_perplexity", "bits_per_byte"])

    data = write_jsonl(tmp_path / "medqa.jsonl", medqa_hub_rows())
    (tmp_path / "b").mkdir()
    stock, results = stock_run("medqa", ["medqa.yaml"], ["preprocess_medqa.py"], "mq_local",
                               {"train": data, "validation": data, "test": data}, tmp_path / "b", short_window_model)
    record, ours = medbench_run("medqa_4options", {"": data}, short_window_model, tmp_path / "b", capsys)
    assert_same_scores(stock, results, record, ours, ["acc", "acc_norm"])

    data = write_jsonl(tmp_path / "ck.jsonl", mmlu_rows("clinical_knowledge", 4))
    (tmp_path / "c").mkdir()
    stock, _ = stock_run("mmlu/generative", ["mmlu_clinical_knowledge.yaml", "_default_template_yaml"], [],
                         "ckgen_local", {"test": data, "dev": data}, tmp_path / "c", short_window_model,
                         gen_kwargs="max_gen_toks=6")
    _, ours = medbench_run("mmlu_clinical_knowledge_generative", {"": data, "dev": data}, short_window_model,
                           tmp_path / "c", capsys, "--gen-kwargs", "max_gen_toks=6")
    _same_generations(stock, ours)


def test_an_overflowing_perplexity_metric_is_one_line(tiny_model_dir, tmp_path, capsys):
    """mediqa_qa2019_perplexity's `perplexity` is exp(-mean of each answer's whole log-likelihood): past ~700 nats
    (a few hundred tokens of a real answer) it overflows, in stock lm-eval too, after every request is scored.
    medbench printed "Error: OverflowError: math range error" with no task or way out."""
    data = write_jsonl(tmp_path / "mediqa.jsonl", _mediqa_rows(6))
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "mediqa_qa2019_perplexity", "--data-file",
                          f"mediqa_qa2019_perplexity={data}", "--leaderboard-dir", str(tmp_path / "lb")], capsys)
    assert code == 2
    assert err.splitlines()[-1].startswith("Error: task 'mediqa_qa2019_perplexity': a metric overflowed after "
                                           "scoring (math range error)")
    assert "without that metric (--include-path)" in err
    with pytest.raises(OverflowError):
        stock_run("mediqa_qa2019", ["mediqa_qa2019_perplexity.yaml"], ["utils_perplexity.py"], "mediqa_ppl_local",
                  {"train_live_qa_med": data, "validation": data, "test": data}, tmp_path, tiny_model_dir)


def test_a_system_prompt_without_a_chat_template_is_its_own_paragraph(tiny_model_dir, tmp_path, capsys):
    """Where the task has a description, lm-eval puts the fewshot delimiter between the two, as medbench does.
    Where it has none, stock glues the system prompt onto the question ("Be exact.Question: ..."); medbench
    deliberately makes it its own paragraph: its prompts are stock's for the system prompt "Be exact.\n\n"."""
    data = write_jsonl(tmp_path / "cm.jsonl", mmlu_rows("college_medicine", 3))
    stock, _ = stock_run("mmlu/default", ["mmlu_college_medicine.yaml", "_default_template_yaml"], [], "cm_local",
                         {"test": data, "dev": data}, tmp_path, tiny_model_dir, system_instruction="Be exact.",
                         num_fewshot=1)
    _, ours = medbench_run("mmlu_college_medicine", {"": data, "dev": data}, tiny_model_dir, tmp_path, capsys,
                           "--system-prompt", "Be exact.", "--num-fewshot", "1")
    assert [s["prompt"] for s in ours] == [s["arguments"][0][0] for s in stock]
    assert ours[0]["prompt"].startswith("Be exact.\n\nThe following are multiple choice questions")

    data = write_jsonl(tmp_path / "medqa.jsonl", medqa_hub_rows()[:3])
    (tmp_path / "medqa").mkdir()
    glued, _ = stock_run("medqa", ["medqa.yaml"], ["preprocess_medqa.py"], "mq_local",
                         {"train": data, "validation": data, "test": data}, tmp_path / "medqa", tiny_model_dir,
                         system_instruction="Be exact.")
    (tmp_path / "paragraph").mkdir()
    paragraph, _ = stock_run("medqa", ["medqa.yaml"], ["preprocess_medqa.py"], "mq_local",
                             {"train": data, "validation": data, "test": data}, tmp_path / "paragraph",
                             tiny_model_dir, system_instruction="Be exact.\n\n")
    _, ours = medbench_run("medqa_4options", {"": data}, tiny_model_dir, tmp_path / "medqa", capsys,
                           "--system-prompt", "Be exact.")
    assert glued[0]["arguments"][0][0].startswith("Be exact.Question: ")
    assert [s["prompt"] for s in ours] == [s["arguments"][0][0] for s in paragraph]


def test_both_med_prescriptions_tasks_in_one_run_draw_as_stock(tiny_model_dir, tmp_path, capsys):
    """`--tasks med_prescriptions` (its tag: easy and hard, one process_docs on one dataset). In stock the hard task
    reads the easy one's processed documents from datasets' cache, drawing nothing; medbench drew a second set, so
    Python's random stood elsewhere when the distractors were drawn: both tasks listed other choices than stock's."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from test_lm_eval_parity_more import _kept_lines

    medicines = [{"medicine_name": f"Drug{i}", "medicine_frequency": "Twice a day", "course_duration": "5 Days"}
                 for i in range(3)]
    rows = [{"results": str({"procedure": {"chief_complaints_diagnosis": f"Fever and cough, day {i}"},
                             "medicine_details": medicines})} for i in range(6)]
    data = write_jsonl(tmp_path / "prescriptions.jsonl", rows)
    source = Path(lm_eval.__file__).parent / "tasks" / "med_prescriptions"
    include = tmp_path / "stock"
    include.mkdir()
    shutil.copy(source / "utils.py", include / "utils.py")
    for level, yamls in [("easy", ["med_prescriptions_easy.yaml"]),
                         ("hard", ["med_prescriptions_hard.yaml", "med_prescriptions_easy.yaml"])]:
        lines = [line for file in reversed(yamls) for line in _kept_lines((source / file).read_text())]
        lines += [f"task: rx_{level}", "dataset_path: json", "dataset_kwargs:", "  data_files:", f"    train: {data}"]
        (include / f"rx_{level}.yaml").write_text("\n".join(lines) + "\n")
    results = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={tiny_model_dir},dtype=float32",
                                      tasks=["rx_easy", "rx_hard"], batch_size=4, device="cpu", log_samples=True,
                                      task_manager=TaskManager(include_path=str(include), include_defaults=False))
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "med_prescriptions", "--data-file",
                          f"med_prescriptions_easy={data}", "--data-file", f"med_prescriptions_hard={data}",
                          "--batch-size", "4", "--leaderboard-dir", str(tmp_path / "lb")], capsys)
    assert code == 0, err
    for level in ("easy", "hard"):
        stock = sorted(results["samples"][f"rx_{level}"], key=lambda s: s["doc_id"])
        [path] = (tmp_path / "lb").glob(f"records/*/med_prescriptions_{level}*/record.json")
        ours = read_samples(load_record(path))
        assert [s["prompt"] for s in ours] == [s["arguments"][0][0] for s in stock], level
        assert [s["acc"] for s in ours] == [s["acc"] for s in stock]
