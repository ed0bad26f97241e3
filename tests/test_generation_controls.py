"""Generation controls: checked --gen-kwargs, a system prompt, reasoning stripped before answer extraction,
repeated samples with a majority vote and pass@k, and generation settings as part of a record's identity."""

import itertools
import json
import math
from collections import Counter
from pathlib import Path

import pytest
import yaml

from medbench.answers import annotate_samples, majority_vote, pass_at_k, pass_ks, strip_reasoning
from medbench.errors import MedbenchError
from medbench.evaluation import EvalConfig, RequestCache, evaluate
from medbench.generation import GenerationOptions, parse_gen_kwargs
from medbench.records import read_samples
from medbench.scoring import INVALID, extract_choice
from medbench.tasks import load_tasks

SAMPLING = {"temperature": 1.0, "max_new_tokens": 4}


# ------------------------------------------------------------------------------------ reasoning stripped


@pytest.mark.parametrize("text, answer", [
    ("<think>A looks right... no, B.</think>The answer is C.", "The answer is C."),
    ("<think>\nfirst thought\n</think>\n\nC", "C"),
    ("Let me think. <think>the answer is A", "Let me think."),  # unterminated: thinking cut off by the budget
    ("the answer is A, so...</think>Answer: D", "Answer: D"),  # the opening <think> was in the prompt
    ("<THINK>A</THINK>B", "B"),
    ("<thinking>A</thinking><reasoning>B</reasoning>Answer: C", "Answer: C"),
    ("<|begin_of_thought|>A<|end_of_thought|>\n<|begin_of_solution|>C", "<|begin_of_solution|>C"),
    ("<seed:think>A</seed:think>C", "C"),
    ("◁think▷A◁/think▷C", "C"),
    ("[THINK]A[/THINK]C", "C"),
    ("<|START_THINKING|>A<|END_THINKING|>C", "C"),
    ("<|channel|>analysis<|message|>A is tempting<|end|><|start|>assistant<|channel|>final<|message|>C", "C"),
    ("A plain answer, B.<|end|>", "A plain answer, B.<|end|>"),  # <|end|> alone ends a turn, not a thought
    ("  untouched  ", "  untouched  "),
])
def test_strip_reasoning(text, answer):
    assert strip_reasoning(text) == answer


def test_strip_reasoning_leaves_non_text_alone():
    assert strip_reasoning(None) is None and strip_reasoning(3) == 3


def test_thinking_is_never_extracted_as_the_answer():
    """Through the generate-mode pipeline medqa really runs: strip, extract the choice, take the first."""
    task = load_tasks(["medqa"], mode="generate", generation=GenerationOptions())["medqa"]
    doc = task.test_docs()[0]
    (pipeline,) = task._filters
    resps = [["<think>The answer is A.</think>The answer is C."], ["<think>The answer is B, clearly"],
             ["The answer is B, I think...</think>D."]]
    for step in pipeline.filters:
        resps = list(step().apply(resps, [doc] * 3))
    assert resps == ["C", INVALID, "D"]
    assert extract_choice("<think>The answer is A.</think>", ["A", "B", "C", "D"]) == "A"  # unstripped: the bug


# ------------------------------------------------------------------------------------ --gen-kwargs


def test_gen_kwargs_parse_to_lm_eval_names():
    assert parse_gen_kwargs('max_new_tokens=64,temperature=0.7,top_p=0.9,top_k=40,until=["\\n\\n","A, B"]') == {
        "max_gen_toks": 64, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "until": ["\n\n", "A, B"]}
    assert parse_gen_kwargs("stop=\\n\\n, max-tokens=8") == {"until": ["\n\n"], "max_gen_toks": 8}
    assert parse_gen_kwargs({"max_gen_toks": 5, "until": "Q:"}) == {"max_gen_toks": 5, "until": ["Q:"]}
    assert parse_gen_kwargs("") == {} and parse_gen_kwargs(None) == {}


@pytest.mark.parametrize("text, message", [
    ("temprature=0.5", "no setting 'temprature' (did you mean temperature?)"),
    ("max_new_tokens=lots", "max_new_tokens='lots' is not a whole number"),
    ("max_new_tokens=2.5", "is not a whole number"),
    ("max_new_tokens=0", "must be 1 or more"),
    ("temperature=-1", "is negative"),
    ("temperature=nan", "is not a number"),
    ("temperature=0.7,top_p=1.5", "outside (0, 1]"),
    ("top_p=0.9", "top_p shapes sampling, but decoding is greedy"),
    ("until=[1,2]", "is not a stop sequence"),
    ("max_new_tokens", "is not KEY=VALUE"),
    ("max_new_tokens=4,max_tokens=5", "sets max_gen_toks twice"),
])
def test_bad_gen_kwargs_are_one_line(text, message):
    with pytest.raises(MedbenchError) as caught:
        parse_gen_kwargs(text)
    assert message in caught.value.one_line() and "\n" not in caught.value.one_line()


def test_options_refuse_repeats_without_sampling_and_differ_in_their_suffix():
    with pytest.raises(MedbenchError, match="greedy decoding gives 3 identical answers"):
        GenerationOptions(repeats=3)
    suffixes = {GenerationOptions().suffix(), GenerationOptions({"max_new_tokens": 4}).suffix(),
                GenerationOptions({"max_new_tokens": 5}).suffix(), GenerationOptions(SAMPLING, repeats=3).suffix(),
                GenerationOptions(system_prompt="Be brief.").suffix()}
    assert len(suffixes) == 5 and "" in suffixes
    assert GenerationOptions(SAMPLING, repeats=3).suffix().startswith("@maj3@gk-")


# ------------------------------------------------------------------------------------ vote and pass@k


def test_pass_at_k_is_the_unbiased_estimator():
    for n, c, k in itertools.product(range(1, 7), range(0, 7), range(1, 7)):
        if c <= n and k <= n:  # by enumeration: the share of k-subsets of the n samples with a correct one
            subsets = list(itertools.combinations([1] * c + [0] * (n - c), k))
            assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(5, 2))
    assert pass_ks(3) == [1, 2, 3] and pass_ks(10) == [1, 2, 4, 8, 10] and pass_ks(1) == [1]


def test_majority_vote():
    assert majority_vote(["B", "C", "B"]) == "B"
    assert majority_vote(["C", "B"]) == "C"  # a tie goes to the answer sampled first
    assert majority_vote([INVALID, INVALID, "A"]) == "A"  # an answer that names nothing does not vote
    assert majority_vote([INVALID, " "]) == INVALID
    assert majority_vote(["Sepsis ", "pneumonia", "sepsis"]) == "Sepsis "  # text compared without case/spaces


def test_repeated_samples_are_voted_and_scored_per_sample():
    """The rows medqa@gen gets from three samples, each read by the task's own filters and metric."""
    options = GenerationOptions(SAMPLING, repeats=3)
    task = load_tasks(["medqa"], mode="generate", generation=options)["medqa"]
    docs = [task.test_docs()[i] for i in range(2)]
    gold = [["A", "B", "C", "D"][doc["gold"]] for doc in docs]
    wrong = [next(x for x in "ABCD" if x != g) for g in gold]
    raw = [{"doc": docs[0], "filter": "choice", "resps": [[f"<think>The answer is {gold[0]}</think>{wrong[0]}.",
                                                           f"The answer is {gold[0]}", f"({wrong[0]})"]]},
           {"doc": docs[1], "filter": "choice", "resps": [["no idea", f"Answer: {gold[1]}", "none"]]}]
    rows = [{"pred": ["A", "B", "C", "D"].index(wrong[0])}, {"pred": ["A", "B", "C", "D"].index(gold[1])}]
    metrics = annotate_samples(rows, raw, task, 3, "exact_match")
    assert rows[0]["answers"] == [wrong[0], gold[0], wrong[0]] and rows[0]["votes"] == 2
    assert rows[0]["correct"] == [0.0, 1.0, 0.0] and rows[0]["raw_response"].startswith("<think>")
    assert rows[1]["answers"] == [INVALID, gold[1], INVALID] and rows[1]["votes"] == 1
    assert rows[1]["correct"] == [0.0, 1.0, 0.0]
    for k in (1, 2, 3):  # one correct of three in both rows
        assert metrics[f"pass@{k}"]["value"] == pytest.approx(1 - math.comb(2, k) / math.comb(3, k))


def test_pass_at_k_needs_a_0_1_metric():
    task = load_tasks(["discharge_summary"], generation=GenerationOptions(SAMPLING, repeats=2))["discharge_summary"]
    doc = task.test_docs()[0]
    summary = task.doc_to_target(doc)
    rows = [{"pred": summary}]
    half = summary[:len(summary) // 2]
    raw = [{"doc": doc, "filter": "none", "resps": [[f"<think>draft</think>{summary}", half]]}]
    assert annotate_samples(rows, raw, task, 2, "rougeL") == {}
    assert 1 == rows[0]["sample_scores"][0] > rows[0]["sample_scores"][1] > 0 and "correct" not in rows[0]
    assert rows[0]["responses"] == [summary, half] and rows[0]["votes"] == 1


# ------------------------------------------------------------------------------------ real runs


def _run(model, tmp_path, tasks=("clinical_reasoning_open",), **options):
    generation = GenerationOptions(**options)
    return evaluate(str(model), EvalConfig(tasks=list(tasks), limit=2, output_dir=tmp_path, batch_size=2,
                                           generation=generation))


def test_max_new_tokens_is_respected_and_recorded(tiny_model_dir, tmp_path):
    (record,) = _run(tiny_model_dir, tmp_path, gen_kwargs={"max_new_tokens": 5, "until": ["<never>"]})
    assert record["generation"]["generation_kwargs"]["max_gen_toks"] == 5
    assert record["generation"]["generation_kwargs"]["until"] == ["<never>"]
    assert record["config"]["generation"]["gen_kwargs"] == {"max_gen_toks": 5, "until": ["<never>"]}
    # One byte token a character here (the tiny model repeats an ASCII character); EOS never comes.
    assert [len(row["pred"]) for row in read_samples(record)] == [5, 5]
    (longer,) = _run(tiny_model_dir, tmp_path, gen_kwargs={"max_new_tokens": 9, "until": ["<never>"]})
    assert [len(row["pred"]) for row in read_samples(longer)] == [9, 9]


def test_stop_sequences_end_the_answer(tiny_model_dir, tmp_path):
    # Sampled with one seed, the same tokens come until the stop sequence shows: a varied text to cut.
    settings = {"temperature": 5.0, "max_new_tokens": 16}
    (free,) = _run(tiny_model_dir, tmp_path, gen_kwargs={**settings, "until": ["<never>"]})
    text = read_samples(free)[0]["pred"]
    cut = next(i for i in range(1, len(text)) if text[i] not in text[:i] and text[i].isascii()
               and text[i].isprintable() and not text[i].isspace())
    (stopped,) = _run(tiny_model_dir, tmp_path, gen_kwargs={**settings, "until": [text[cut]]})
    assert read_samples(stopped)[0]["pred"] == text[:cut] != ""
    assert stopped["generation"]["generation_kwargs"]["until"] == [text[cut]]
    assert stopped["record_key"] != free["record_key"]


@pytest.mark.parametrize("chat", [False, True])
def test_the_system_prompt_reaches_the_prompt(tiny_model_dir, tmp_path, medbench_cli, chat):
    prompt_file = tmp_path / "system.txt"
    prompt_file.write_text("You are a terse clinical assistant.\n", encoding="utf-8")
    result = medbench_cli("eval", "--model", tiny_model_dir, "--tasks", "medqa", "--limit", "1", "--mode",
                          "generate", "--gen-kwargs", "max_new_tokens=2", "--system-prompt-file", prompt_file,
                          "--leaderboard-dir", tmp_path / "board", *(["--chat-template"] if chat else []))
    assert result.exit_code == 0, result.output
    record = json.loads(next((tmp_path / "board" / "records").glob("*/*/record.json")).read_text())
    (row,) = [json.loads(line) for line in (tmp_path / "board" / "records").glob("*/*/samples.jsonl").__next__()
              .read_text().splitlines()]
    expected = ("<|system|>\nYou are a terse clinical assistant.<|end|>\n<|user|>\n" if chat
                else "You are a terse clinical assistant.\n\nQuestion:")
    assert row["prompt"].startswith(expected)
    assert record["config"]["generation"]["system_prompt"] == "You are a terse clinical assistant."
    assert "@sys-" in record["record_key"]


def test_repeats_give_k_samples_a_majority_vote_and_pass_at_k(tiny_model_dir, tmp_path):
    labels = ["A", "B", "C", "D"]
    (record,) = evaluate(str(tiny_model_dir), EvalConfig(
        tasks=["medqa"], limit=3, output_dir=tmp_path, batch_size=3, mode="generate", seed=7,
        generation=GenerationOptions({**SAMPLING, "temperature": 3.0}, repeats=3)))
    rows = read_samples(record)
    assert record["record_key"].startswith("medqa@gen@maj3@gk-")
    assert record["generation"]["repeats"] == 3 and record["generation"]["sampling_seed"] == 7
    assert record["generation"]["generation_kwargs"]["do_sample"] is True
    for row in rows:
        assert len(row["responses"]) == len(row["correct"]) == 3
        answers = row.get("answers", row["responses"])
        counts = Counter(a for a in answers if a != INVALID)  # the vote, by hand
        vote = next((a for a in answers if counts and counts[a] == max(counts.values())), INVALID)
        assert row["pred"] == (labels.index(vote) if vote in labels else None)
        assert row["exact_match"] == float(vote == labels[row["gold"]])
        assert row["correct"] == [float(a == labels[row["gold"]]) for a in answers]
        c = int(sum(row["correct"]))
        for k in (1, 2, 3):
            assert row[f"pass@{k}"] == pytest.approx(1 - math.comb(3 - c, k) / math.comb(3, k))
    assert record["primary_metric"] == "exact_match"
    assert record["score"] == pytest.approx(sum(r["exact_match"] for r in rows) / 3)
    for k in (1, 2, 3):
        assert record["metrics"][f"pass@{k}"]["value"] == pytest.approx(sum(r[f"pass@{k}"] for r in rows) / 3)
    assert len({tuple(r["responses"]) for r in rows}) == 3  # sampled, not one answer copied


def test_sampling_is_reproducible_from_the_recorded_seed(tiny_model_dir, tmp_path):
    def responses(seed):
        config = EvalConfig(tasks=["clinical_reasoning_open"], limit=2, output_dir=tmp_path, seed=seed,
                            reuse_records=False, generation=GenerationOptions({**SAMPLING, "temperature": 3.0},
                                                                               repeats=2))
        (record,) = evaluate(str(tiny_model_dir), config)
        assert record["generation"]["sampling_seed"] == seed and record["seed"] == seed
        return [row["responses"] for row in read_samples(record)]

    assert responses(11) == responses(11) != responses(12)


def test_other_generation_settings_never_reuse_a_record(tiny_model_dir, tmp_path):
    first, = _run(tiny_model_dir, tmp_path, gen_kwargs={"max_new_tokens": 3})
    same, = _run(tiny_model_dir, tmp_path, gen_kwargs={"max_new_tokens": 3})
    other, = _run(tiny_model_dir, tmp_path, gen_kwargs={"max_new_tokens": 4})
    prompt, = _run(tiny_model_dir, tmp_path, gen_kwargs={"max_new_tokens": 3}, system_prompt="Be brief.")
    assert same.get("_reused") and same["record_key"] == first["record_key"]
    assert not other.get("_reused") and not prompt.get("_reused")
    assert len({first["record_key"], other["record_key"], prompt["record_key"]}) == 3
    assert first["_path"] != other["_path"]  # the first record is still there, not overwritten


def test_loglikelihood_tasks_ignore_generation_settings_with_a_note(tiny_model_dir, tmp_path):
    plain, = evaluate(str(tiny_model_dir), EvalConfig(tasks=["medqa"], limit=2, output_dir=tmp_path))
    with pytest.warns(UserWarning, match="do not apply to medqa"):
        records = evaluate(str(tiny_model_dir), EvalConfig(
            tasks=["medqa", "clinical_reasoning_open"], limit=2, output_dir=tmp_path,
            generation=GenerationOptions({"max_new_tokens": 3})))
    by_task = {r["task"]["name"]: r for r in records}
    assert by_task["medqa"]["record_key"] == "medqa" and by_task["medqa"].get("_reused")  # same record as before
    assert plain["record_key"] == "medqa" and "generation" not in plain
    assert by_task["clinical_reasoning_open"]["record_key"].startswith("clinical_reasoning_open@gk-")
    with pytest.raises(MedbenchError, match="medqa is scored by log-likelihood"):
        evaluate(str(tiny_model_dir), EvalConfig(tasks=["medqa"], limit=2, output_dir=tmp_path,
                                                 generation=GenerationOptions({"max_new_tokens": 3})))


def test_a_resumed_run_serves_each_repeat_its_own_sample(tiny_model_dir, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(RequestCache, "discard", lambda self: None)  # keep the cache, as a killed run leaves it
    config = EvalConfig(tasks=["clinical_reasoning_open"], limit=2, output_dir=tmp_path, seed=3,
                        generation=GenerationOptions({**SAMPLING, "temperature": 3.0}, repeats=3))
    (first,) = evaluate(str(tiny_model_dir), config)
    shutil.rmtree(Path(first["_path"]).parent)
    (resumed,) = evaluate(str(tiny_model_dir), config)
    assert resumed["resumed_requests"] == 6
    rows = read_samples(resumed)
    assert [r["responses"] for r in rows] == [r["responses"] for r in read_samples(first)]
    assert all(len(set(r["responses"])) == 3 for r in rows)


def test_request_cache_keys_tell_repeats_and_seeds_apart():
    keys = RequestCache.keys("generate_until", [("p", {"t": 1}), ("q", {}), ("p", {"t": 1}), ("p", {"t": 1})])
    assert len(set(keys)) == 4 and keys[0] == RequestCache.key("generate_until", ("p", {"t": 1}))
    sampled = GenerationOptions(SAMPLING, repeats=2)
    assert sampled.cache_salt(1) != sampled.cache_salt(2)
    greedy = GenerationOptions({"max_new_tokens": 3})
    assert greedy.cache_salt(1) == greedy.cache_salt(2)  # greedy answers do not depend on the seed


# ------------------------------------------------------------------------------------ command line and recipes


@pytest.mark.parametrize("args, message", [
    (["--mode", "generate", "--gen-kwargs", "temprature=0.5"], "--gen-kwargs has no setting 'temprature'"),
    (["--mode", "generate", "--gen-kwargs", "max_new_tokens=-3"], "must be 1 or more"),
    (["--gen-kwargs", "max_new_tokens=8"], "medqa is scored by log-likelihood"),
    (["--mode", "generate", "--repeats", "3"], "greedy decoding gives 3 identical answers"),
    (["--mode", "generate", "--repeats", "0"], "--repeats must be a positive number"),
    (["--system-prompt", "x", "--system-prompt-file", "x.txt"], "both --system-prompt and --system-prompt-file"),
])
def test_bad_generation_options_exit_2_with_one_line(tiny_model_dir, tmp_path, medbench_cli, args, message):
    result = medbench_cli("eval", "--model", tiny_model_dir, "--tasks", "medqa", "--limit", "1",
                          "--leaderboard-dir", tmp_path, *args)
    assert result.exit_code == 2
    assert message in result.output.strip().splitlines()[-1]


def test_train_checks_its_eval_generation_options_before_training(medbench_cli, tmp_path):
    result = medbench_cli("train", "--plugin", "sft", "--task", "medqa", "--output-dir", tmp_path,
                          "--eval-gen-kwargs", "max_new_tokens=many")
    assert result.exit_code == 2 and "--eval-gen-kwargs max_new_tokens='many'" in result.output
    result = medbench_cli("train", "--plugin", "sft", "--task", "medqa", "--output-dir", tmp_path,
                          "--eval-gen-kwargs", "temperature=0.7", "--eval-repeats", "3")
    assert result.exit_code == 2 and "medqa is scored by log-likelihood" in result.output
    assert not any(tmp_path.iterdir())  # refused before a run directory was made


def test_recipes_set_generation_controls_in_either_spelling(tmp_path):
    from medbench.planning import plan
    from medbench.recipe import read_recipe
    from medbench.sweeps import eval_config

    (tmp_path / "system.txt").write_text("Answer with one letter.\n", encoding="utf-8")
    recipe = {"name": "g", "scales": {"toy": {"model": "m"}}, "grid": {"seed": [1]},
              "cell": {"model": "{model}", "eval": {"tasks": ["medqa"], "mode": "generate", "repeats": 3,
                                                     "gen-kwargs": "max_new_tokens=8,temperature=0.5",
                                                     "system-prompt-file": "system.txt"}}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    (cell,) = plan(read_recipe(tmp_path / "recipe.yaml"), out_dir=tmp_path / "s").cells
    config = eval_config(cell, tmp_path / "s")
    assert config.generation == GenerationOptions({"max_gen_toks": 8, "temperature": 0.5}, "Answer with one letter.",
                                                  3)
    recipe["cell"]["eval"] = {**recipe["cell"]["eval"], "gen-kwargs": {"max_new_tokens": 9, "temperature": 0.5}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    (other,) = plan(read_recipe(tmp_path / "recipe.yaml"), out_dir=tmp_path / "s").cells
    assert other.key != cell.key  # other generation settings, another cell identity
    recipe["cell"]["eval"]["gen_kwargs"] = recipe["cell"]["eval"].pop("gen-kwargs") | {"top_p": 2}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.raises(MedbenchError, match=r"eval\.gen_kwargs top_p=2 is outside"):
        plan(read_recipe(tmp_path / "recipe.yaml"), out_dir=tmp_path / "s")


def test_the_leaderboard_pairs_majority_answers_per_item(tiny_model_dir, tmp_path):
    """Two models' repeated runs: one row per item (the majority answer), paired on doc_id."""
    from medbench.leaderboard import build_table
    from medbench.testing import make_tiny_model

    other = make_tiny_model(tmp_path / "other", seed=1)
    options = GenerationOptions({**SAMPLING, "temperature": 3.0}, repeats=3)
    records = {label: evaluate(str(model), EvalConfig(tasks=["medqa"], limit=4, output_dir=tmp_path / "board",
                                                      mode="generate", label=label, generation=options))[0]
               for label, model in (("base", tiny_model_dir), ("other", other))}
    table = build_table(tmp_path / "board", baseline="base", references="off")
    (column,) = table.columns
    cell = next(row for row in table.rows if row.label == "other").cells[column]
    assert cell.metric == "exact_match" and cell.score == records["other"]["score"]
    rows = {label: {r["doc_id"]: r for r in read_samples(record)} for label, record in records.items()}
    assert sorted(rows["base"]) == sorted(rows["other"]) == [0, 1, 2, 3]
    b = sum(rows["base"][d]["exact_match"] == 1 and rows["other"][d]["exact_match"] == 0 for d in range(4))
    c = sum(rows["base"][d]["exact_match"] == 0 and rows["other"][d]["exact_match"] == 1 for d in range(4))
    assert (cell.comparison.test, cell.comparison.n_paired, cell.comparison.b, cell.comparison.c) == \
        ("mcnemar-exact", 4, b, c)
    assert {"pass@1", "pass@3"} <= set(cell.as_dict()["provenance"]["metrics"])
