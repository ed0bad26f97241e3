"""Planning a study: comparisons between cells that differ in one factor, errors that keep a study answerable,
cells shared across factor values, the user's data files in every identity, and the plan as JSON."""

import json

import pytest
import yaml

from medbench.errors import MedbenchError
from medbench.planning import plan
from medbench.recipe import read_recipe

BASE = {
    "name": "study",
    "scales": {"toy": {"model": "m", "steps": 1}},
    "grid": {"method": ["base", "sft", "dpo"], "seed": [1, 2]},
    "cell": {"model": "{model}", "steps_by": "method", "steps": {
        "base": [],
        "sft": [{"plugin": "sft", "task": "medqa", "options": {"max_steps": "{steps}"}}],
        "dpo": [{"plugin": "sft", "task": "medqa", "options": {"max_steps": "{steps}"}},
                {"plugin": "dpo", "task": "medqa", "options": {"max_steps": "{steps}"}}]},
        "eval": {"tasks": ["medqa"]}},
    "comparisons": [{"factor": "method", "baseline": "base"},
                    {"factor": "method", "levels": ["dpo"], "baseline": "sft"}],
}


def write(tmp_path, **changes):
    data = {**BASE, **changes}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return read_recipe(path)


def test_comparisons_pair_cells_that_differ_in_one_factor_only(tmp_path):
    sweep = plan(write(tmp_path), out_dir=tmp_path / "s")
    label = {c.key: c.label for c in sweep.cells}
    pairs = sorted((label[c.cell], label[c.baseline]) for c in sweep.comparisons)
    assert pairs == [("method=dpo,seed=1", "method=base,seed=1"), ("method=dpo,seed=1", "method=sft,seed=1"),
                     ("method=dpo,seed=2", "method=base,seed=2"), ("method=dpo,seed=2", "method=sft,seed=2"),
                     ("method=sft,seed=1", "method=base,seed=1"), ("method=sft,seed=2", "method=base,seed=2")]
    assert {c.label for c in sweep.cells if c.is_baseline} == {"method=base,seed=1", "method=base,seed=2"}


def test_dpo_starts_from_the_sft_step_of_its_own_cell(tmp_path):
    sweep = plan(write(tmp_path), out_dir=tmp_path / "s")
    cells = {c.label: c for c in sweep.cells}
    sft, dpo = cells["method=sft,seed=1"], cells["method=dpo,seed=1"]
    assert dpo.steps[0].key == sft.steps[0].key  # one SFT step, shared: it trains once
    assert dpo.steps[1].model == "{prev}" and dpo.steps[1].plugin == "dpo"
    assert cells["method=dpo,seed=2"].steps[0].key != sft.steps[0].key  # another seed, another SFT


def test_an_exclude_that_orphans_a_comparison_fails_at_plan_time(tmp_path):
    recipe = write(tmp_path, exclude=[{"method": "sft", "seed": 2}])
    with pytest.raises(MedbenchError, match=r"method=dpo,seed=2 has no baseline cell with method=sft \(exclude"):
        plan(recipe, out_dir=tmp_path / "s")


def test_a_comparison_whose_baseline_level_no_cell_has_is_listed_as_left_out(tmp_path, medbench_cli):
    path = tmp_path / "recipe.yaml"  # "sfft": an arm with steps that this scale leaves out (a typo is refused)
    cell = {**BASE["cell"], "steps": {**BASE["cell"]["steps"], "sfft": []}}
    scales = {"toy": {**BASE["scales"]["toy"], "methods": ["base", "sft", "dpo"]}}
    path.write_text(yaml.safe_dump({**BASE, "scales": scales, "grid": {**BASE["grid"], "method": "{methods}"},
                                    "cell": cell, "comparisons": [{"factor": "method", "baseline": "base"},
                                                                  {"factor": "method", "baseline": "sfft"}]}))
    sweep = plan(read_recipe(path), out_dir=tmp_path / "s")
    assert len(sweep.comparisons) == 4 and sweep.comparisons_left_out == [
        "method vs sfft: no cell has method=sfft"]
    result = medbench_cli("sweep", str(path), "--dry-run", "--output-dir", str(tmp_path / "s"))
    assert result.exit_code == 0 and "not compared at scale toy: method vs sfft" in result.output
    result = medbench_cli("sweep", str(path), "--dry-run", "--json", "--output-dir", str(tmp_path / "s"))
    assert json.loads(result.stdout)["comparisons_left_out"] == ["method vs sfft: no cell has method=sfft"]


def test_a_comparison_needs_a_grid_factor(tmp_path):
    with pytest.raises(MedbenchError, match="comparison 1: factor 'metod' is not a grid factor"):
        write(tmp_path, comparisons=[{"factor": "metod", "baseline": "base"}])


def test_identical_cells_are_planned_once_and_compared_under_every_alias(tmp_path):
    grid = {"condition": ["base", "sft"], "size": [4, 8]}
    steps = {"base": [], "sft": [{"plugin": "sft", "task": "medqa", "options": {"max_examples": "{size}"}}]}
    recipe = write(tmp_path, grid=grid, cell={"model": "m", "steps_by": "condition", "steps": steps,
                                              "eval": {"tasks": ["medqa"]}},
                   comparisons=[{"factor": "condition", "baseline": "base"}])
    sweep = plan(recipe, out_dir=tmp_path / "s")
    # The shared cell is labelled with the levels it stands for, so no comparison reads as differing in size.
    assert [c.label for c in sweep.cells] == ["condition=base,size=any", "condition=sft,size=4", "condition=sft,size=8"]
    assert sweep.cells[0].aliases == [{"condition": "base", "size": 8}]
    base = sweep.cells[0].key
    assert sorted(c.baseline == base for c in sweep.comparisons) == [True, True]


def test_cyclic_scale_variables_fail_at_plan_time(tmp_path):
    recipe = write(tmp_path, scales={"toy": {"model": "{judge}", "judge": "{model}", "steps": 1}})
    with pytest.raises(MedbenchError, match=r"cycle \((model -> judge -> model|judge -> model -> judge)\)"):
        plan(recipe, out_dir=tmp_path / "s")
    chained = plan(write(tmp_path, scales={"toy": {"model": "m", "judge": "{model}", "steps": 1}}),
                   out_dir=tmp_path / "s")
    assert chained.variables["judge"] == "m"


def test_user_data_files_are_part_of_every_identity(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"question": "q", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer_idx": "A"}\n')
    first = plan(write(tmp_path), out_dir=tmp_path / "s", data_files={"medqa:train": str(data)})
    step = first.cells[2].steps[0]
    assert step.task_metadata == {"data_files": {"train": str(data.resolve())}}
    data.write_text(data.read_text().replace('"A"}', '"B"}'))
    edited = plan(write(tmp_path), out_dir=tmp_path / "s", data_files={"medqa:train": str(data)})
    assert [c.key for c in first.cells] != [c.key for c in edited.cells]  # an edited file re-runs what uses it
    assert first.cells[2].steps[0].key != edited.cells[2].steps[0].key
    with pytest.raises(MedbenchError, match="not a readable file"):
        plan(write(tmp_path), out_dir=tmp_path / "s", data_files={"medqa": str(tmp_path / "missing.jsonl")})


def test_recipe_data_files_resolve_against_the_recipe(tmp_path):
    (tmp_path / "mine.jsonl").write_text("{}\n")
    sweep = plan(write(tmp_path, data_files={"medqa": "mine.jsonl"}), out_dir=tmp_path / "s")
    assert sweep.cells[0].task_metadata == {"medqa": {"data_files": {"test": str((tmp_path / "mine.jsonl").resolve())}}}


def test_dry_run_json_shows_steps_inputs_eval_and_comparisons(tmp_path, medbench_cli):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**BASE, "cell": {**BASE["cell"], "eval": {
        "tasks": ["discharge_summary"], "judges": ["likert"], "judge_options": {"model": "judge-ref"}}}}))
    result = medbench_cli("sweep", str(path), "--dry-run", "--json", "--output-dir", str(tmp_path / "s"))
    assert result.exit_code == 0, result.output
    described = json.loads(result.output)
    dpo = next(c for c in described["cells"] if c["factors"] == {"method": "dpo", "seed": 1})
    assert [s["plugin"] for s in dpo["steps"]] == ["sft", "dpo"]
    assert dpo["steps"][0]["input"] == "m" and dpo["steps"][1]["input"] == "step:" + dpo["steps"][0]["name"]
    assert dpo["eval"]["judges"] == ["likert"] and dpo["eval"]["judge_options"] == {"model": "judge-ref"}
    assert set(dpo["eval"]) >= {"tasks", "mode", "num_fewshot", "chat_template", "judges"}
    ids = {c["id"] for c in described["cells"]}
    assert len(described["comparisons"]) == 6
    assert all({"cell", "baseline", "factor"} <= set(c) and {c["cell"], c["baseline"]} <= ids
               for c in described["comparisons"])


def test_where_limits_a_comparison_to_some_cells(tmp_path):
    grid = {"method": ["base", "sft"], "scoring": ["loglikelihood", "generate"]}
    steps = {"base": [], "sft": [{"plugin": "sft", "task": "medqa"}]}
    cell = {"model": "m", "steps_by": "method", "steps": steps, "eval": {"tasks": ["medqa"], "mode": "{scoring}"}}
    everywhere = [{"factor": "scoring", "baseline": "loglikelihood"}]
    recipe = write(tmp_path, grid=grid, cell=cell, exclude=[{"method": "sft", "scoring": "loglikelihood"}],
                   comparisons=everywhere)
    with pytest.raises(MedbenchError, match="method=sft,scoring=generate has no baseline cell"):
        plan(recipe, out_dir=tmp_path / "s")
    recipe = write(tmp_path, grid=grid, cell=cell, exclude=[{"method": "sft", "scoring": "loglikelihood"}],
                   comparisons=[{**everywhere[0], "where": {"method": ["base"]}}])
    sweep = plan(recipe, out_dir=tmp_path / "s")
    assert [next(c.label for c in sweep.cells if c.key == p.cell) for p in sweep.comparisons] == \
        ["method=base,scoring=generate"]


def test_a_cell_shared_by_some_levels_names_them(tmp_path):
    grid = {"condition": ["base", "sft"], "size": [4, 8, 16]}
    steps = {"base": [], "sft": [{"plugin": "sft", "task": "medqa", "options": {"max_examples": "{size}"}}]}
    recipe = write(tmp_path, grid=grid, cell={"model": "m", "steps_by": "condition", "steps": steps,
                                              "eval": {"tasks": ["medqa"]}},
                   exclude=[{"condition": "base", "size": 8}], comparisons=[])
    sweep = plan(recipe, out_dir=tmp_path / "s")
    assert sweep.cells[0].label == "condition=base,size=4+16"


SELECT = {"split": "validation", "tasks": ["medqa"]}


def test_a_selected_comparison_is_planned_beside_the_plain_one_and_marks_both_cells(tmp_path):
    recipe = write(tmp_path, comparisons=[{"factor": "method", "levels": ["dpo"], "baseline": "sft", "primary": True,
                                           "select": SELECT},
                                          {"factor": "method", "levels": ["dpo"], "baseline": "sft"}])
    sweep = plan(recipe, out_dir=tmp_path / "s")
    label = {c.key: c.label for c in sweep.cells}
    pairs = sorted((label[c.cell], c.select is not None, c.primary) for c in sweep.comparisons)
    assert pairs == [("method=dpo,seed=1", False, False), ("method=dpo,seed=1", True, True),
                     ("method=dpo,seed=2", False, False), ("method=dpo,seed=2", True, True)]
    selected = {label[c.key] for c in sweep.cells if c.selections == [SELECT]}
    assert selected == {"method=dpo,seed=1", "method=dpo,seed=2", "method=sft,seed=1", "method=sft,seed=2"}
    assert not next(c for c in sweep.cells if c.factors["method"] == "base").selections


@pytest.mark.parametrize("select, message", [
    ({"split": "test", "tasks": ["medqa"]}, "selects on split 'test' of task 'medqa', which is its test split"),
    ({"split": "dev", "tasks": ["medqa"]}, "which is not one of its splits"),
])
def test_selection_on_the_test_split_or_a_missing_split_fails_at_plan_time(tmp_path, select, message):
    recipe = write(tmp_path, comparisons=[{"factor": "method", "baseline": "base", "select": select}])
    with pytest.raises(MedbenchError, match=message):
        plan(recipe, out_dir=tmp_path / "s")


@pytest.mark.parametrize("select", [{"split": "validation"}, {"split": "validation", "tasks": []}, "validation",
                                    {"split": "validation", "tasks": ["medqa"], "metric": "acc"}])
def test_a_malformed_select_is_refused_when_the_recipe_is_read(tmp_path, select):
    with pytest.raises(MedbenchError, match=r"comparison 1 \(method vs base\): select: .* must name a split and "
                                            "the tasks scored on it"):
        write(tmp_path, comparisons=[{"factor": "method", "baseline": "base", "select": select}])


def test_the_plan_lists_the_checkpoints_a_trainer_declares(tmp_path):
    steps = {"base": [], "sft": [{"plugin": "sft", "task": "medqa"}],
             "dpo": [{"plugin": "sft", "task": "medqa"},
                     {"plugin": "merge", "task": "medqa", "options": {"models": ["{prev}"], "t": [0, 0.5]}}]}
    recipe = write(tmp_path, cell={**BASE["cell"], "steps": steps})
    sweep = plan(recipe, out_dir=tmp_path / "s")
    cells = {c.label: c for c in sweep.cells}
    assert cells["method=dpo,seed=1"].checkpoints == ["slerp-t0", "slerp-t0.5"]
    assert cells["method=sft,seed=1"].checkpoints == [] and cells["method=base,seed=1"].checkpoints == []
    compared = [c for c in sweep.comparisons if c.cell == cells["method=dpo,seed=1"].key]
    assert compared and all(c.checkpoints == ["slerp-t0", "slerp-t0.5"] for c in compared)


def test_a_file_option_enters_a_steps_identity_by_content_not_by_path(tmp_path):
    """The same recipe folder copied elsewhere plans the same steps (nothing re-runs); an edited file is a new step."""
    from medbench.planning import _by_content

    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        (folder / "tiers.csv").write_text("key,tier\nq1,easy\n")

    def identity(folder):
        return _by_content({"difficulty_file": str(folder / "tiers.csv"), "lr": 1e-4,
                            "inner": {"base_config": str(folder / "tiers.csv")}, "missing_file": "nowhere.csv"})

    assert identity(first) == identity(second)
    assert identity(first)["missing_file"] == "nowhere.csv" and identity(first)["lr"] == 1e-4
    (second / "tiers.csv").write_text("key,tier\nq1,hard\n")
    assert identity(first)["difficulty_file"] != identity(second)["difficulty_file"]
    assert identity(first)["inner"] != identity(second)["inner"]


def test_dry_run_shows_the_factors_a_comparison_is_pooled_over(tmp_path, medbench_cli):
    grid = {"method": ["base", "sft"], "shots": [0, 3], "seed": [1, 2]}
    cell = {**BASE["cell"], "steps": {"base": [], "sft": BASE["cell"]["steps"]["sft"]},
            "eval": {"tasks": ["medqa"], "num_fewshot": "{shots}"}}
    comparisons = [{"factor": "method", "baseline": "base", "primary": True, "pool_over": ["shots"]}]
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**BASE, "grid": grid, "cell": cell, "comparisons": comparisons}))
    result = medbench_cli("sweep", str(path), "--dry-run", "--json", "--output-dir", str(tmp_path / "s"))
    assert result.exit_code == 0, result.output
    described = json.loads(result.output)["comparisons"]
    assert len(described) == 4 and all(c["pool_over"] == ["shots"] for c in described)
    text = medbench_cli("sweep", str(path), "--dry-run", "--output-dir", str(tmp_path / "s"))
    assert text.exit_code == 0 and text.output.count("[primary; also pooled over shots]") == 4
    path.write_text(yaml.safe_dump({**BASE, "grid": grid, "cell": cell, "comparisons": [
        {"factor": "method", "baseline": "base"}]}))
    plain = json.loads(medbench_cli("sweep", str(path), "--dry-run", "--json", "--output-dir",
                                    str(tmp_path / "s")).output)
    assert all("pool_over" not in c for c in plain["comparisons"])  # plans without it read as before


def test_the_plan_shows_the_decoding_a_recipe_sets(tmp_path, medbench_cli):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**BASE, "cell": {**BASE["cell"], "eval": {
        "tasks": ["medqa"], "mode": "generate", "gen_kwargs": {"max_new_tokens": 64, "temperature": 0.6},
        "repeats": 3}}}))
    result = medbench_cli("sweep", str(path), "--dry-run", "--json", "--output-dir", str(tmp_path / "s"))
    evaluation = json.loads(result.stdout)["cells"][0]["eval"]
    assert evaluation["repeats"] == 3 and evaluation["gen_kwargs"]["temperature"] == 0.6
    path.write_text(yaml.safe_dump(BASE))
    plain = json.loads(medbench_cli("sweep", str(path), "--dry-run", "--json", "--output-dir",
                                    str(tmp_path / "p")).stdout)
    assert not {"gen_kwargs", "repeats", "system_prompt"} & set(plain["cells"][0]["eval"])  # the task's own


def test_the_same_pair_on_another_metric_is_another_comparison(tmp_path):
    recipe = write(tmp_path, comparisons=[{"factor": "method", "levels": ["dpo"], "baseline": "sft"},
                                          {"factor": "method", "levels": ["dpo"], "baseline": "sft",
                                           "metrics": {"medqa": "exact_match"}},
                                          {"factor": "method", "levels": ["dpo"], "baseline": "sft"}])  # repeated
    sweep = plan(recipe, out_dir=tmp_path / "s")
    assert sorted(json.dumps(c.metrics) for c in sweep.comparisons) == ['{"medqa": "exact_match"}'] * 2 + ["{}"] * 2


@pytest.mark.parametrize("options, message", [
    ({"max_steps": "{steps}", "lora_r": "sixteen"}, "step sft (task medqa): lora_r 'sixteen' is not an integer — "
                                                    "give an integer for lora_r"),
    ({"max_steps": "{steps}", "lora_rank": 8}, "step sft (task medqa): trainer 'sft' has no option lora_rank — did "
                                               "you mean lora_r?"),
])
def test_a_bad_trainer_option_in_a_recipe_is_named_as_the_recipe_writes_it(tmp_path, medbench_cli, options, message):
    """Not the command line's --lora-r: the recipe's own key, its file and the step, in one line and exit 2."""
    cell = {**BASE["cell"], "steps": {**BASE["cell"]["steps"], "sft": [
        {"plugin": "sft", "task": "medqa", "options": options}]}}
    recipe = write(tmp_path, cell=cell)
    with pytest.raises(MedbenchError) as error:
        plan(recipe, out_dir=tmp_path / "s")
    assert str(error.value).startswith(f"recipe {recipe.path}, {message}") and "--lora" not in str(error.value)
    result = medbench_cli("sweep", str(recipe.path), "--dry-run")
    assert result.exit_code == 2 and message in result.output


def test_a_level_variable_may_use_another_factors_level_variable(tmp_path):
    """A condition's eval reads the writer level's field; a cell that reads neither is planned once for both."""
    recipe = write(tmp_path, scales={"toy": {"model": "m", "steps": 1, "shots": 3}},
                   grid={"writer": [{"name": "a", "field": "rationale_a"}, {"name": "b", "field": "rationale_b"}],
                         "method": [{"name": "base", "demos": False, "shots": 0},
                                    {"name": "sft", "demos": "{field}", "shots": "{shots}"}]},
                   cell={"model": "{model}", "steps_by": "method", "steps": {"base": [], "sft": []},
                         "eval": {"tasks": ["medqa"], "fewshot_rationales": "{demos}", "num_fewshot": "{shots}"}},
                   comparisons=[{"factor": "method", "baseline": "base"}])
    cells = {c.label: c for c in plan(recipe, out_dir=tmp_path / "s").cells}
    assert set(cells) == {"method=base,writer=any", "method=sft,writer=a", "method=sft,writer=b"}  # yaml sorts
    assert cells["method=sft,writer=a"].eval["fewshot_rationales"] == "rationale_a"
    assert cells["method=sft,writer=b"].eval["fewshot_rationales"] == "rationale_b"
    assert cells["method=sft,writer=a"].eval["num_fewshot"] == 3  # its own name: the scale's variable, as before


@pytest.mark.parametrize("y, message", [
    ({"name": "b", "q": "{p}"}, r"level variables refer to each other in a cycle \(p -> q -> p\)"),
    ({"name": "b", "q": "{feild}"}, r"refers to \{feild\}, which is neither"),
])
def test_level_variables_in_a_cycle_or_naming_nothing_fail_at_plan_time(tmp_path, y, message):
    recipe = write(tmp_path, grid={"x": [{"name": "a", "p": "{q}"}], "y": [y], "method": ["base", "sft"]},
                   comparisons=[{"factor": "method", "baseline": "base"}])
    with pytest.raises(MedbenchError, match=message):
        plan(recipe, out_dir=tmp_path / "s")
