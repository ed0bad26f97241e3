"""Reliability, round 13: failures that used to come only after every request had run now come before the model
loads, and things a run already wrote are not lost or served stale."""

from __future__ import annotations

import pytest

from test_task_input_round7 import GOOD, eval_folder, task_folder
from test_task_inputs import one_line_error

GENERATE = {"output_type": "generate_until", "doc_to_choice": None, "generation_kwargs": {"max_gen_toks": 2}}


def test_a_metric_option_its_function_refuses_fails_before_the_model_loads(tmp_path, tiny_model_dir, capsys,
                                                                            monkeypatch):
    import medbench.evaluation

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(medbench.evaluation, "open_for_evaluation", never)
    folder = task_folder(tmp_path, [GOOD, {"q": "b", "label": 0}], **GENERATE,
                         metric_list=[{"metric": "exact_match", "ignore_space": True}])
    line = one_line_error(*eval_folder(folder, tmp_path, tiny_model_dir, capsys))
    assert "task 't'" in line and "cannot score an answer to its first item, before any request runs" in line
    assert "its metric_list options: exact_match: ignore_space" in line and "ignore_case" in line, line
    assert not (tmp_path / "lb" / "records").exists()


@pytest.mark.parametrize("overrides", [
    {**GENERATE, "metric_list": [{"metric": "exact_match", "ignore_case": True, "ignore_punctuation": True}]},
    {"metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}, {"metric": "acc_mutual_info"}]},
    {"output_type": "loglikelihood", "doc_to_choice": None, "doc_to_target": " yes",
     "metric_list": [{"metric": "perplexity"}, {"metric": "acc"}]},
    {"output_type": "loglikelihood_rolling", "doc_to_choice": None, "doc_to_target": "{{q}}",
     "metric_list": [{"metric": "word_perplexity"}, {"metric": "bits_per_byte"}]},
], ids=["generate", "multiple-choice", "loglikelihood", "rolling"])
def test_a_placeholder_answer_scores_under_every_output_type(overrides, tmp_path):
    from medbench.scoring_preflight import check_scoring, placeholder_results
    from medbench.tasks import build_registry, load_tasks, task_sources

    folder = task_folder(tmp_path, [GOOD, {"q": "b", "label": 0}], **overrides)
    with task_sources([folder]):
        registry = build_registry()
        task = load_tasks(["t"], registry)["t"]
        check_scoring(task, "t", registry.get("t"))  # raises nothing
        shape = placeholder_results(task, task.eval_docs[0])
    assert len(shape) == {"multiple_choice": 4}.get(task.OUTPUT_TYPE, 1)  # 2 choices, conditional + unconditional


def test_a_full_fine_tunes_details_do_not_list_the_lora_settings_it_never_used(tmp_path):
    from test_newcomer_round10 import CONFIG, _board

    from medbench.leaderboard import render

    for method, shown in (("full", False), ("lora", True)):
        root = tmp_path / method
        _board(root, training={"plugin": "sft", "run_id": "sft", "step": 53, "config": {**CONFIG, "method": method}})
        render(root, ["html"], baseline="base")
        page = (root / "index.html").read_text()
        assert ("<th>lora_r</th>" in page) is shown and "<th>learning_rate</th>" in page


@pytest.mark.parametrize("name", ["..", "a/b", "run.", "x" * 49])
@pytest.mark.parametrize("resume", [False, True])
def test_a_run_name_is_kept_as_given_or_refused_never_renamed(name, resume, tmp_path, tiny_model_dir, capsys,
                                                               monkeypatch):
    from test_hostile_round8b import refused, resume_args

    monkeypatch.chdir(tmp_path)
    args = [a for a in resume_args(tiny_model_dir, name) if resume or a != "--resume"]
    line = refused(args, capsys)
    assert f"--run-name {name!r} is not a plain folder name (it would be stored as" in line, line
    assert "e.g. --run-name sft-medqa-1" in line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_cached_log_likelihood_that_no_model_gives_is_scored_again(tmp_path):
    import json

    from medbench.lm_wrapper import RequestCache

    path = tmp_path / "requests.jsonl"
    rows = {"nan": [float("nan"), True], "positive": [3.5, False], "inf": [float("inf"), True],
            "floor": [float("-inf"), False], "good": [-1.25, True], "zero": [0.0, True]}
    path.write_text(json.dumps(rows) + "\n")  # Python's json writes NaN and Infinity, as a crafted file may
    cache = RequestCache(path, tmp_path)
    assert {key for key in rows if cache.has("loglikelihood", key)} == {"floor", "good", "zero"}


def test_a_row_scored_on_fewer_items_of_a_column_is_never_ranked_against_the_others(tmp_path):
    from leaderboard_helpers import answers, make_record

    from medbench.leaderboard import build_table

    make_record(tmp_path, "full", "medqa", *answers(40, 10))
    make_record(tmp_path, "other", "medqa", *answers(40, 20))
    make_record(tmp_path, "limited", "medqa", *answers(4, 0))  # a --limit 4 run: 0/4 says little of the 40
    table = build_table(tmp_path, with_stats=True)
    rows = {row.label: row for row in table.rows}
    assert (rows["full"].win_rate, rows["other"].win_rate, rows["limited"].win_rate) == (0.0, 1.0, None)
    assert rows["full"].tier == rows["other"].tier != rows["limited"].tier


def test_curriculum_asked_to_wrap_itself_says_so(tmp_path, tiny_model_dir, capsys, monkeypatch):
    from test_hostile_round8b import refused

    monkeypatch.chdir(tmp_path)
    line = refused(["train", "--plugin", "curriculum", "--base", "curriculum", "--ordering", "random", "--model",
                    tiny_model_dir, "--task", "medqa", "--output-dir", "runs", "--leaderboard-dir", "lb"], capsys)
    assert "curriculum cannot wrap itself (--base curriculum)" in line and "pass --base NAME (installed:" in line
