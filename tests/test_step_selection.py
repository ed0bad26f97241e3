"""A recipe step's ``select``: its checkpoints scored on validation, the best one carried to the next step and
scored as the cell's model (medbench.step_selection), on the tiny random model."""

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from medbench.errors import MedbenchError
from medbench.records import read_records
from medbench.step_selection import candidate_value, choose, read_select
from medbench.sweeps import _cell_marker, describe, plan, read_recipe, run_sweep
from medbench.training import build_config

RECIPE = {
    "name": "epoch_choice",
    "scales": {"toy": {"model": "MODEL", "eval_limit": 3}},
    "grid": {"method": ["sft", "sft_then_more"], "seed": [1]},
    "cell": {
        "model": "{model}",
        "steps_by": "method",
        "steps": {
            "sft": [{"plugin": "sft", "task": "medqa", "select": {"split": "validation"},
                     "options": {"num_epochs": 2, "save_every_epoch": True, "max_examples": 4,
                                 "train_batch_size": 2}}],
            "sft_then_more": [
                {"plugin": "sft", "task": "medqa", "select": {"split": "validation"},
                 "options": {"num_epochs": 2, "save_every_epoch": True, "max_examples": 4, "train_batch_size": 2}},
                {"plugin": "sft", "task": "medqa", "options": {"max_steps": 1, "max_examples": 2,
                                                               "train_batch_size": 2}}],
        },
        "eval": {"tasks": ["medqa"], "limit": "{eval_limit}", "batch_size": 4},
    },
    "comparisons": [{"factor": "method", "levels": ["sft_then_more"], "baseline": "sft"}],
}


def write(tmp_path, model_dir, recipe=None):
    text = yaml.safe_dump(recipe or RECIPE).replace("MODEL", str(model_dir))
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return read_recipe(path)


def test_read_select_fills_the_step_task_and_refuses_test_and_bad_forms():
    assert read_select({"split": "validation"}, "uti", "step 1") == \
        {"split": "validation", "tasks": ["uti"], "ties": "first"}
    assert read_select({"tasks": ["a", "b", "a"], "ties": "middle"}, "uti", "s")["tasks"] == ["a", "b"]
    assert read_select({"metrics": {"uti": "macro_f1"}, "scoring": {"mode": "generate"}}, "uti", "s") == \
        {"split": "validation", "tasks": ["uti"], "ties": "first", "metrics": {"uti": "macro_f1"},
         "scoring": {"mode": "generate"}}
    for bad, words in [({"split": "test"}, "never on test"), ({"tasks": []}, "not a list of task names"),
                       ({"ties": "last"}, "not one of first, middle"), ("validation", "not a mapping"),
                       ({"split": "validation", "by": "loss"}, "not a mapping of metrics, over, scoring, split"),
                       ({"metrics": {"hyponatremia": "acc"}}, "must map its tasks to metric names"),
                       ({"scoring": {"judges": ["likert"]}}, "must set only mode"),
                       ({"scoring": {"mode": "vibes"}}, "mode: loglikelihood or generate"),
                       ({"over": {"learning_rate": []}}, "must map trainer options to lists of distinct"),
                       ({"over": {"learning_rate": [1e-5, 1e-5]}}, "lists of distinct values"),
                       ({"over": {"learning_rate": [{"x": 1}]}}, "lists of distinct values")]:
        with pytest.raises(MedbenchError, match=words) as caught:
            read_select(bad, "uti", "step 1 of cell {}")
        assert "write select: {split: validation" in caught.value.one_line()
    with pytest.raises(MedbenchError, match=r"20 trainings of one step \(the most is 16\)"):
        read_select({"over": {"a": list(range(5)), "b": list(range(4))}}, "uti", "step 1")


def test_choice_takes_the_best_mean_and_breaks_ties_early_or_in_the_middle():
    values = [{"value": 0.5}, {"value": 0.7}, {"value": 0.7}, {"value": None}]
    assert choose(values) == 1 and choose(values, "middle") == 1
    assert choose([{"value": 0.6}] * 3, "middle") == 1 and choose([{"value": 0.6}] * 3) == 0
    with pytest.raises(MedbenchError, match="no checkpoint of the step has a validation score"):
        choose([{"value": None}, {"value": float("nan")}])
    records = [{"task": {"name": "a"}, "primary_metric": "acc",
                "metrics": {"acc": {"value": 0.8}, "macro_f1": {"value": 0.6}}},
               {"task": {"name": "b"}, "primary_metric": "perplexity", "metrics": {"perplexity": {"value": 2.0}}}]
    lower = {"perplexity"}
    value, scores = candidate_value(records, ["a", "b"], lambda m: m not in lower)
    assert value == pytest.approx((0.8 - 2.0) / 2) and scores == {"a": 0.8, "b": 2.0}
    assert candidate_value(records, ["a"], lambda m: True, {"a": "macro_f1"}) == (0.6, {"a": 0.6})
    assert candidate_value(records, ["a"], lambda m: True, {"a": "auroc"})[0] is None  # a metric it lacks
    assert candidate_value(records[:1], ["a", "b"], lambda m: True)[0] is None  # a task without a score: no value


def test_sft_keeps_a_checkpoint_at_the_end_of_every_epoch(tiny_model_dir, tmp_path):
    from medbench.training import TrainRequest
    from medbench.trainingdata import load_training_examples
    from medbench_plugins.sft import SFT, SFTOptions

    config = build_config(SFTOptions, {}, {"num_epochs": 2, "save_every_epoch": True, "max_examples": 4,
                                           "train_batch_size": 2}, "sft")
    checkpoints = SFT().train(TrainRequest(model_ref=str(tiny_model_dir), task="medqa", output_dir=tmp_path / "run",
                                           config=config, examples=load_training_examples("medqa")))
    assert [(c.step, c.final, c.metrics.get("epoch")) for c in checkpoints] == [(2, False, 1.0), (4, True, 2.0)]
    with pytest.raises(MedbenchError, match="both say when to keep a checkpoint"):
        build_config(SFTOptions, {}, {"save_steps": 2, "save_every_epoch": True}, "sft")


def test_a_selecting_step_feeds_its_validation_choice_on(tiny_model_dir, tmp_path):
    sweep = plan(write(tmp_path, tiny_model_dir), "toy", tmp_path / "s")
    alone, chained = sweep.cells
    assert alone.steps[0].key == chained.steps[0].key  # one step, trained and chosen once for both cells
    steps = {c["label"]: c["steps"] for c in describe(sweep)["cells"]}
    assert steps["method=sft,seed=1"][0]["select"] == {"split": "validation", "tasks": ["medqa"], "ties": "first"}
    assert steps["method=sft_then_more,seed=1"][1]["input"] == f"step:{chained.steps[0].name}@selected"

    assert all(r.status == "done" for r in run_sweep(sweep))
    step_dir = sweep.out_dir / "steps" / alone.steps[0].name
    selection = json.loads((step_dir / "selection.json").read_text())
    candidates = selection["candidates"]
    assert [c["epoch"] for c in candidates] == [1.0, 2.0] and selection["tasks"] == ["medqa"]
    assert all(c["value"] == c["scores"]["medqa"] for c in candidates)  # one task: its accuracy
    best = max(range(2), key=lambda i: (candidates[i]["value"], -i))  # ties to the earlier epoch
    assert selection["chosen"] == best
    chosen = candidates[best]["path"]
    validation = read_records(step_dir / "selection")  # the candidates' validation records, beside the step
    assert sorted(r["task"]["split"] for r in validation) == ["validation", "validation"]

    records = read_records(sweep.leaderboard_dir)
    by_cell = {r["extra"]["cell"]: r for r in records}
    assert len(records) == 2  # one test record per cell: the chosen checkpoint only, never the others on test
    alone_record = by_cell[alone.key]
    assert alone_record["extra"]["training"]["checkpoint"].endswith(chosen.split("/s/", 1)[1])  # records: relative
    picked = alone_record["extra"]["selected_checkpoints"]
    assert picked == [{"step": alone.steps[0].name, "checkpoint": chosen.rsplit("/", 1)[1], "epoch": best + 1.0,
                       "position": best + 1, "of": 2, "last": best == 1, "split": "validation", "tasks": ["medqa"],
                       "value": candidates[best]["value"]}]
    second = json.loads((sweep.out_dir / "steps" / chained.steps[1].name / "step.json").read_text())
    assert second["model"] == chosen  # the next step trained from the checkpoint chosen, not the last one
    assert by_cell[chained.key]["extra"]["selected_checkpoints"] == picked

    from medbench.sweep_report import study_report

    report = study_report(sweep)
    assert report["selected_checkpoints"] == {"method=sft,seed=1": picked, "method=sft_then_more,seed=1": picked}
    line = next(x for x in report["markdown"].splitlines() if x.startswith("- method=sft,seed=1:"))
    assert f"{chosen.rsplit('/', 1)[1]} ({best + 1} of 2, epoch {best + 1}" in line
    assert (", last)" in line) == (best == 1)
    assert all(r.status == "skipped" for r in run_sweep(plan(sweep.recipe, "toy", tmp_path / "s")))


def test_the_choice_is_part_of_the_step_identity(tiny_model_dir, tmp_path):
    base = plan(write(tmp_path, tiny_model_dir), "toy", tmp_path / "s").cells[1]
    other_limit = json.loads(json.dumps(RECIPE))
    other_limit["scales"]["toy"]["eval_limit"] = 5  # validation scored on other items: another choice
    changed = plan(write(tmp_path, tiny_model_dir, other_limit), "toy", tmp_path / "s").cells[1]
    assert changed.steps[0].key != base.steps[0].key and changed.steps[1].key != base.steps[1].key
    unselected = json.loads(json.dumps(other_limit))
    for steps in unselected["cell"]["steps"].values():
        steps[0].pop("select")
    plain, plain_again = (plan(write(tmp_path, tiny_model_dir, r), "toy", tmp_path / "s").cells[1]
                          for r in (unselected, {**unselected, "scales": {"toy": {"model": "MODEL", "eval_limit": 3}}}))
    assert plain.steps[0].key == plain_again.steps[0].key  # without select, the evaluation is not the step's


@pytest.mark.parametrize("select, words", [
    ({"split": "test"}, "never on test"),
    ({"tasks": ["no_such_task"]}, "no_such_task"),
    ({"tasks": "{eval_limit}"}, "not a list of task names"),
    ({"over": {"difficulty_file": ["../../etc/passwd"]}}, "lies outside the recipe's folder"),  # contained as options
    ({"over": {"learning_rate": ["{prev}"]}}, r"refers to \{prev\} in select.over"),
    ({"over": {"learnign_rate": [1e-4, 1e-3]}}, "learnign_rate"),  # each run's options checked as a step's are
])
def test_a_bad_select_fails_the_plan_in_one_line(tiny_model_dir, tmp_path, select, words):
    recipe = json.loads(json.dumps(RECIPE))
    recipe["cell"]["steps"]["sft"][0]["select"] = select
    with pytest.raises(MedbenchError, match=words) as caught:
        plan(write(tmp_path, tiny_model_dir, recipe), "toy", tmp_path / "s")
    assert "\n" not in caught.value.one_line()


def test_a_written_choice_is_reused_and_a_damaged_one_is_one_line(tmp_path):
    from medbench.step_selection import select_checkpoint

    checkpoints = [{"path": str(tmp_path / f"checkpoint-{n}"), "step": n, "final": n == 4} for n in (2, 4)]
    select = {"split": "validation", "tasks": ["medqa"], "ties": "first"}
    written = {"step": "sft-x", "split": "validation", "tasks": ["medqa"], "ties": "first", "chosen": 0,
               "candidates": [{"path": checkpoints[0]["path"], "value": 0.5}, {"path": checkpoints[1]["path"],
                                                                                "value": 0.4}]}
    (tmp_path / "selection.json").write_text(json.dumps(written))

    def never(*_):
        raise AssertionError("a written choice is not scored again")

    assert select_checkpoint(tmp_path, "sft-x", select, checkpoints, None, never) == written
    for damaged in ("{", json.dumps({**written, "chosen": 5}), json.dumps({**written, "chosen": -1}),
                    json.dumps({**written, "candidates": [{"path": "/elsewhere/checkpoint-2", "value": 1.0}]})):
        (tmp_path / "selection.json").write_text(damaged)
        with pytest.raises(MedbenchError, match="selection.json is damaged") as caught:
            select_checkpoint(tmp_path, "sft-x", select, checkpoints, None, never)
        assert "delete" in caught.value.one_line()


def test_the_choice_reads_the_users_validation_file_of_a_task_the_cell_does_not_score(tiny_model_dir, tmp_path):
    from medbench.sweeps import _selection_config

    (tmp_path / "val.jsonl").write_text("".join(open("tasks/medmcqa/data/dev.json").readlines()[:5]))
    recipe = json.loads(json.dumps(RECIPE))
    recipe["grid"]["method"] = ["sft"]
    recipe["comparisons"] = []
    recipe["data_files"] = {"medmcqa:validation": "val.jsonl"}
    recipe["cell"]["steps"]["sft"][0]["select"] = {"tasks": ["medmcqa"]}  # the cell scores medqa only
    cell = plan(write(tmp_path, tiny_model_dir, recipe), "toy", tmp_path / "s").cells[0]
    assert "medmcqa" not in cell.task_metadata
    config = _selection_config(cell, cell.steps[0], tmp_path / "s")
    assert config.task_metadata["medmcqa"]["data_files"] == {"validation": str(tmp_path / "val.jsonl")}
    assert _selection_config(cell, dataclasses.replace(cell.steps[0], select=None), tmp_path / "s") is None


def test_select_scoring_lets_cells_of_two_readings_share_one_choice(tiny_model_dir, tmp_path):
    recipe = json.loads(json.dumps(RECIPE))
    recipe["grid"] = {"method": ["sft"], "scoring": ["loglikelihood", "generate"], "seed": [1]}
    recipe["comparisons"] = [{"factor": "scoring", "baseline": "loglikelihood"}]
    recipe["cell"]["eval"]["mode"] = "{scoring}"
    by_reading = plan(write(tmp_path, tiny_model_dir, recipe), "toy", tmp_path / "s").cells
    assert by_reading[0].steps[0].key != by_reading[1].steps[0].key  # each reading would choose for itself
    recipe["cell"]["steps"]["sft"][0]["select"] = {"scoring": {"mode": "generate", "gen_kwargs": {"max_gen_toks": 8}},
                                                   "metrics": {"medqa": "acc"}}
    shared = plan(write(tmp_path, tiny_model_dir, recipe), "toy", tmp_path / "s").cells
    assert shared[0].steps[0].key == shared[1].steps[0].key  # one step, one choice, read both ways
    assert shared[0].steps[0].select["scoring"] == {"mode": "generate", "gen_kwargs": {"max_gen_toks": 8}}
    recipe["cell"]["steps"]["sft"][0]["select"]["scoring"] = {"limit": 0}
    with pytest.raises(MedbenchError, match="step 1 select.scoring.limit 0 is not a whole number 1 or more"):
        plan(write(tmp_path, tiny_model_dir, recipe), "toy", tmp_path / "s")


def test_over_trains_one_step_per_setting_and_chooses_among_all_their_checkpoints(tiny_model_dir, tmp_path):
    from click.testing import CliRunner

    from medbench.cli import cli
    from medbench.sweep_report import study_report

    recipe = json.loads(json.dumps(RECIPE))
    recipe["grid"]["method"] = ["sft"]
    recipe["comparisons"] = []
    recipe["cell"]["steps"]["sft"][0]["select"]["over"] = {"learning_rate": [1.0e-4, 1.0e-3]}
    path = tmp_path / "recipe.yaml"
    sweep = plan(write(tmp_path, tiny_model_dir, recipe), "toy", tmp_path / "s")
    step = sweep.cells[0].steps[0]
    assert [v.options["learning_rate"] for v in step.variants] == [1.0e-4, 1.0e-3]
    plain = json.loads(json.dumps(recipe))
    plain["cell"]["steps"]["sft"][0].pop("select")
    plain["cell"]["steps"]["sft"][0]["options"]["learning_rate"] = 1.0e-3
    # a setting trains exactly as the plain step with that option would: one folder, shared
    assert plan(write(tmp_path, tiny_model_dir, plain), "toy", tmp_path / "s").cells[0].steps[0].key == \
        step.variants[1].key
    sweep = plan(write(tmp_path, tiny_model_dir, recipe), "toy", tmp_path / "s")
    assert describe(sweep)["cells"][0]["steps"][0]["variants"] == [
        {"name": v.name, "options": {"learning_rate": v.options["learning_rate"]}} for v in step.variants]
    shown = CliRunner().invoke(cli, ["sweep", str(path), "--scale", "toy", "--output-dir", str(tmp_path / "s"),
                                     "--dry-run", "--prune-unchosen"], terminal_width=400)
    assert "learning_rate 0.0001|0.001, best on medqa@validation" in " ".join(shown.output.split()), shown.output
    assert "--prune-unchosen: 1 of 1 choosing steps delete" in " ".join(shown.output.split())

    ran = CliRunner().invoke(cli, ["sweep", str(path), "--scale", "toy", "--output-dir", str(tmp_path / "s"),
                                   "--prune-unchosen"], terminal_width=400)
    assert ran.exit_code == 0 and "pruned: 3 unchosen checkpoints in" in ran.output, ran.output
    steps = sweep.out_dir / "steps"
    for variant in step.variants:  # each setting trained in its own folder, with its own value
        assert json.loads((steps / variant.name / "step.json").read_text())["options"]["learning_rate"] == \
            variant.options["learning_rate"]
    assert not (steps / step.name / "step.json").exists()  # the selecting step holds the choice only
    selection = json.loads((steps / step.name / "selection.json").read_text())
    candidates = selection["candidates"]
    assert [(c["options"]["learning_rate"], c["epoch"]) for c in candidates] == \
        [(1.0e-4, 1.0), (1.0e-4, 2.0), (1.0e-3, 1.0), (1.0e-3, 2.0)]
    best = max(range(4), key=lambda i: (candidates[i]["value"], -i))  # ties: the first setting, fewest epochs
    assert selection["chosen"] == best
    record = read_records(sweep.leaderboard_dir)[0]
    picked = record["extra"]["selected_checkpoints"][0]
    assert (picked["options"], picked["edge"], picked["position"], picked["of"], picked["last"]) == \
        ({"learning_rate": candidates[best]["options"]["learning_rate"]}, ["learning_rate"], best % 2 + 1, 2,
         best % 2 == 1)
    assert record["extra"]["training"]["checkpoint"].endswith(candidates[best]["path"].split("/s/", 1)[1])
    line = next(x for x in study_report(sweep)["markdown"].splitlines() if x.startswith("- method=sft,seed=1:"))
    assert f"learning_rate={candidates[best]['options']['learning_rate']} (edge of grid), {best % 2 + 1} of 2" in line
    assert all(r.status == "skipped" for r in run_sweep(plan(sweep.recipe, "toy", tmp_path / "s")))
    # --prune-unchosen: the three checkpoints not chosen lost their weights, the chosen one kept its own
    for i, candidate in enumerate(candidates):
        folder = Path(candidate["path"])
        assert (folder / "PRUNED.json").is_file() == (i != best) and (folder / "adapter_config.json").is_file()
        assert bool(list(folder.glob("*.safetensors"))) == (i == best)
    # a later choice over them (its selection deleted) stops in one line naming the folders to delete
    (steps / step.name / "selection.json").unlink()
    _cell_marker(sweep.out_dir, sweep.cells[0]).unlink()
    again = run_sweep(plan(sweep.recipe, "toy", tmp_path / "s"))[0]
    assert again.status == "failed" and "deleted by --prune-unchosen" in again.error
    assert "delete " + " ".join(sorted(str(steps / v.name) for v in step.variants)) in again.error


def test_a_choice_inside_the_grid_is_not_at_its_edge():
    from medbench.step_selection import summary

    over = {"learning_rate": [1e-5, 2e-5, 5e-5], "scheduler": ["linear", "cosine"]}
    candidates = [{"path": f"/r/{lr}-{s}/checkpoint-{n}", "epoch": float(n), "value": 0.1,
                   "options": {"learning_rate": lr, "scheduler": s}}
                  for lr in over["learning_rate"] for s in over["scheduler"] for n in (1, 2)]
    candidates[4]["value"] = 0.9  # 2e-5, linear, epoch 1
    picked = summary({"step": "sft-x", "split": "validation", "tasks": ["uti"], "over": over,
                      "candidates": candidates, "chosen": 4})
    assert (picked["options"], picked["edge"], picked["position"], picked["of"], picked["last"]) == \
        ({"learning_rate": 2e-5, "scheduler": "linear"}, [], 1, 2, False)  # a word is never "at the edge"


def test_the_report_reads_damaged_choices_in_records_without_failing():
    from medbench.step_selection import report_lines

    lines = report_lines({"a": [{"step": "s", "options": ["lr"], "edge": 3, "of": "2", "last": True, "tasks": [1],
                                 "value": 0.5, "epoch": "x"}, 7], "b": 5,
                          "c": [{"step": "t", "options": {"lr": 2e-05}, "edge": ["lr"], "position": 1, "of": 3,
                                 "tasks": ["uti"], "value": 0.25}]})
    assert lines[1] == "- a: s: None (None of 2), 1 = 0.500" and lines[2] == "- b: "
    assert lines[3] == "- c: t: None (lr=2e-05 (edge of grid), 1 of 3), uti = 0.250"


@pytest.mark.parametrize("metrics, judged", [({"discharge_summary": "judge:likert"}, True),
                                             ({"discharge_summary": "coverage"}, False), (None, False)])
def test_a_choice_on_a_judges_score_is_scored_by_the_cells_judge_and_only_then(tmp_path, metrics, judged):
    from medbench.evaluation import EvalConfig
    from medbench.step_selection import select_checkpoint, selection_settings

    checkpoints = [{"path": str(tmp_path / f"checkpoint-{n}"), "step": n, "final": n == 4} for n in (2, 4)]
    select = {"split": "validation", "tasks": ["discharge_summary"], "ties": "first",
              **({"metrics": metrics} if metrics else {})}
    config = EvalConfig(tasks=["discharge_summary"], judges=["likert"], judge_options={"model": "judge-model"})
    seen = []

    def score(checkpoint, scored_with, label):
        seen.append((scored_with.judges, scored_with.judge_options, scored_with.split))
        value = 4.0 if checkpoint["step"] == 4 else 3.0
        return [{"task": {"name": "discharge_summary"}, "primary_metric": "rougeL",
                 "metrics": {"rougeL": {"value": 0.3}, "coverage": {"value": 0.5}, "judge:likert": {"value": value}}}]

    selection = select_checkpoint(tmp_path, "sft-x", select, checkpoints, config, score)
    expected = (["likert"], {"model": "judge-model"}) if judged else ([], {})
    assert seen == [(*expected, "validation")] * 2
    assert selection["chosen"] == (1 if judged else 0)  # the judge prefers step 4; rougeL and coverage tie
    cell = {"judges": ["likert"], "judge_options": {"model": "judge-model"}}
    assert ("judges" in selection_settings(select, cell)) is judged  # a judged choice's step changes with its judge
