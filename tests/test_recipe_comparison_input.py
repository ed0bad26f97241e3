"""A recipe's comparisons, every field in a wrong form or naming a level the factor never has: one line naming the
comparison and the field, read before anything plans (medbench.recipe_comparisons); a level or ``where`` only
another scale plans is listed as not compared at this one, never dropped in silence (medbench.comparison_planning).
"""

import json
from pathlib import Path

import pytest
import yaml

from medbench.errors import MedbenchError
from medbench.planning import plan
from medbench.recipe import read_recipe

STEP = {"plugin": "sft", "task": "{task}", "options": {"max_steps": "{steps}"}}
RECIPE = {
    "name": "study",
    # dpo and a second seed are planned at full scale only: at toy their comparisons are listed as left out
    "scales": {"toy": {"model": "m", "steps": 1, "methods": ["base", "sft"], "seeds": [1]},
               "full": {"model": "m", "steps": 1, "methods": ["base", "sft", "dpo"], "seeds": [1, 2]}},
    "grid": {"method": "{methods}", "task": ["medqa"], "seed": "{seeds}"},
    "cell": {"model": "{model}", "steps_by": "method",
             "steps": {"base": [], "sft": [STEP], "dpo": [STEP, {**STEP, "plugin": "dpo"}]},
             "eval": {"tasks": ["{task}"]}},
    "comparisons": [{"factor": "method", "baseline": "base"}],
}
GOOD = {"factor": "method", "baseline": "base"}
SELECT = {"split": "validation", "tasks": ["medqa"]}


def write(tmp_path, **changes):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**RECIPE, **changes}, sort_keys=False))
    return path


def refused(tmp_path, **changes) -> str:
    with pytest.raises(MedbenchError) as error:  # never a TypeError, AttributeError or KeyError
        read_recipe(write(tmp_path, **changes))
    line = str(error.value)
    assert "\n" not in line and " — " in line, line  # one line: the problem, then its fix
    return line


WRONG_FORMS = [
    # factor: the compared grid factor, by name
    ({"factor": ["method"]}, "comparison 2: factor ['method'] is not a grid factor — use one of method, task, seed"),
    ({"factor": 5}, "comparison 2: factor 5 is not a grid factor"),
    ({"factor": None}, "comparison 2: factor None is not a grid factor"),
    ({"factor": True}, "comparison 2: factor True is not a grid factor"),
    ({"factor": {"method": "base"}}, "comparison 2: factor {'method': 'base'} is not a grid factor"),
    ({"factor": "metod"}, "comparison 2: factor 'metod' is not a grid factor"),
    # baseline: one level
    ({"baseline": ["base"]}, "comparison 2 (method): baseline: ['base'] must be one level of method"),
    ({"baseline": None}, "comparison 2 (method): baseline: None must be one level of method"),
    ({"baseline": {"method": "base"}}, "comparison 2 (method): baseline: {'method': 'base'} must be one level"),
    ({"baseline": ""}, "comparison 2 (method): baseline: '' must be one level of method"),
    ({"baseline": "nope"}, "comparison 2 (method vs nope): baseline is 'nope', which is not a level of method — "
                           "use one of base, sft, dpo"),
    # levels: a list of the factor's levels, each once, not the baseline
    ({"levels": 5}, "comparison 2 (method vs base): levels: 5 must list levels of method, each once — "
                    "write levels: [sft]"),
    ({"levels": "sft"}, "comparison 2 (method vs base): levels: 'sft' must list levels of method, each once — "
                        "write levels: [sft]"),  # never read letter by letter
    ({"levels": True}, "levels: True must list levels of method"),
    ({"levels": {"sft": 1}}, "levels: {'sft': 1} must list levels of method"),
    ({"levels": [["sft"]]}, "levels: [['sft']] must list levels of method"),
    ({"levels": [None]}, "levels: [None] must list levels of method"),
    ({"levels": []}, "levels: [] must list levels of method"),
    ({"levels": ["sft", "sft"]}, "levels: ['sft', 'sft'] must list levels of method, each once"),
    ({"levels": ["base"]}, "comparison 2 (method vs base): levels lists the baseline 'base' itself, which would be "
                           "compared with itself"),
    ({"levels": ["sft", "nope"]}, "comparison 2 (method vs base): levels names 'nope', which is not a level of "
                                  "method — use one of base, sft, dpo"),
    # where: grid factors mapped to levels
    ({"where": ["task"]}, "comparison 2 (method vs base): where: ['task'] must map grid factors to lists of levels"),
    ({"where": "task"}, "where: 'task' must map grid factors to lists of levels"),
    ({"where": 5}, "where: 5 must map grid factors to lists of levels"),
    ({"where": False}, "where: False must map grid factors to lists of levels"),
    ({"where": {"task": []}}, "where: {'task': []} must map grid factors to lists of levels"),
    ({"where": {"task": None}}, "where: {'task': None} must map grid factors to lists of levels"),
    ({"where": {"task": [["medqa"]]}}, "where: {'task': [['medqa']]} must map grid factors to lists of levels"),
    ({"where": {"task": {"medqa": 1}}}, "where: {'task': {'medqa': 1}} must map grid factors to lists of levels"),
    ({"where": {"tsk": ["medqa"]}}, "where: {'tsk': ['medqa']} must map grid factors to lists of levels"),
    ({"where": {"task": ["nope"]}}, "comparison 2 (method vs base): where names task='nope', which is not a level "
                                    "of task — use one of medqa"),
    # primary, metrics, margin, noninferiority, tasks, select, pool_over
    ({"primary": "yes"}, "comparison 2 (method vs base): primary: 'yes' must be true or false"),
    ({"primary": 1}, "primary: 1 must be true or false"),
    ({"primary": None}, "primary: None must be true or false"),
    ({"primary": [True]}, "primary: [True] must be true or false"),
    ({"metrics": ["medqa"]}, "comparison 2 (method vs base): metrics: ['medqa'] must map task names to metric names"),
    ({"metrics": "acc"}, "metrics: 'acc' must map task names to metric names"),
    ({"metrics": False}, "metrics: False must map task names to metric names"),
    ({"metrics": 5}, "metrics: 5 must map task names to metric names"),
    ({"metrics": {"medqa": 5}}, "metrics: {'medqa': 5} must map task names to metric names"),
    ({"metrics": {"medqa": None}}, "metrics: {'medqa': None} must map task names to metric names"),
    ({"margin": "0.05"}, "comparison 2 (method vs base): margin: '0.05' must be a positive number"),
    ({"margin": [0.05]}, "margin: [0.05] must be a positive number"),
    ({"margin": True}, "margin: True must be a positive number"),
    ({"margin": {"medqa": 0.05}}, "margin: {'medqa': 0.05} must be a positive number"),
    ({"margin": 0}, "margin: 0 must be a positive number"),
    ({"noninferiority": "0.05"}, "comparison 2 (method vs base): noninferiority: '0.05' must be a positive number"),
    ({"noninferiority": [0.05]}, "noninferiority: [0.05] must be a positive number"),
    ({"noninferiority": None}, "noninferiority: None must be a positive number"),
    ({"noninferiority": False}, "noninferiority: False must be a positive number"),
    ({"noninferiority": {"a": 1}}, "noninferiority: {'a': 1} must be a positive number"),
    ({"tasks": "medqa"}, "comparison 2 (method vs base): tasks: 'medqa' must list task names, each once"),
    ({"tasks": 5}, "tasks: 5 must list task names, each once"),
    ({"tasks": True}, "tasks: True must list task names, each once"),
    ({"tasks": {"medqa": 1}}, "tasks: {'medqa': 1} must list task names, each once"),
    ({"tasks": [5]}, "tasks: [5] must list task names, each once"),
    ({"tasks": []}, "tasks: [] must list task names, each once"),
    ({"select": "validation"}, "comparison 2 (method vs base): select: 'validation' must name a split and the tasks"),
    ({"select": ["validation"]}, "select: ['validation'] must name a split"),
    ({"select": 5}, "select: 5 must name a split"),
    ({"select": True}, "select: True must name a split"),
    ({"select": {**SELECT, "split": 5}}, "must name a split and the tasks scored on it"),
    ({"select": {**SELECT, "split": None}}, "must name a split and the tasks scored on it"),
    ({"select": {**SELECT, "tasks": "medqa"}}, "must name a split and the tasks scored on it"),
    ({"select": {**SELECT, "exclude": ["t"]}}, "must name a split and the tasks scored on it"),
    ({"select": {**SELECT, "exclude": {"t": 0.0}}}, "must name a split and the tasks scored on it"),
    ({"select": {**SELECT, "ties": ["first"]}}, "must name a split and the tasks scored on it"),
    ({"select": {**SELECT, "ties": None}}, "must name a split and the tasks scored on it"),
    ({"pool_over": "task"}, "comparison 2 (method vs base): pool_over: 'task' must list grid factors, each once"),
    ({"pool_over": 5}, "pool_over: 5 must list grid factors, each once"),
    ({"pool_over": None}, "pool_over: None must list grid factors, each once"),
    ({"pool_over": {"task": 1}}, "pool_over: {'task': 1} must list grid factors, each once"),
    ({"pool_over": [["task"]]}, "pool_over: [['task']] must list grid factors, each once"),
    # keys: factor and baseline required, the rest known (keys of any type named, not sorted into a TypeError)
    ({"levles": ["sft"]}, "needs factor and baseline (unknown: levles)"),
    ({1: "x", "foo": "y"}, "needs factor and baseline (unknown: 1, foo)"),
]


@pytest.mark.parametrize("change, words", WRONG_FORMS, ids=[f"{next(iter(c))}-{i}" for i, (c, _) in
                                                             enumerate(WRONG_FORMS)])
def test_a_wrongly_formed_comparison_field_is_refused_in_one_line_naming_it(tmp_path, change, words):
    line = refused(tmp_path, comparisons=[GOOD, {**GOOD, **change}])
    assert words in line
    assert "comparison 2" in line or "unknown" in line


def test_a_missing_factor_or_baseline_names_the_comparison(tmp_path):
    assert "comparison 2 {'factor': 'method'} needs factor and baseline" in refused(
        tmp_path, comparisons=[GOOD, {"factor": "method"}])


@pytest.mark.parametrize("comparisons", ["method", 5, {"factor": "method"}, [GOOD, 5], [["method", "base"]]])
def test_comparisons_that_are_not_a_list_of_mappings_are_refused(tmp_path, comparisons):
    assert "comparisons must be a list of mappings" in refused(tmp_path, comparisons=comparisons)


@pytest.mark.parametrize("baseline, words", [
    ({"method": "nope"}, "comparison 1 (method vs nope): baseline is 'nope', which is not a level of method"),
    ({"methd": "base"}, "comparison 1: factor 'methd' is not a grid factor"),
    ({"method": ["base"]}, "comparison 1 (method): baseline: ['base'] must be one level of method"),
])
def test_the_older_baseline_form_is_checked_as_a_comparison_is(tmp_path, baseline, words):
    recipe = {k: v for k, v in RECIPE.items() if k != "comparisons"}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**recipe, "baseline": baseline}))
    with pytest.raises(MedbenchError) as error:
        read_recipe(path)
    assert words in str(error.value)


def test_a_level_of_a_literal_grid_list_is_checked_against_it(tmp_path):
    # seed as a plain list: every scale has exactly these seeds, so 3 is a typo
    assert "where names seed=3, which is not a level of seed — use one of 1, 2" in refused(
        tmp_path, grid={**RECIPE["grid"], "seed": [1, 2]}, comparisons=[{**GOOD, "where": {"seed": [3]}}])
    assert "comparison 1 (seed vs 1): levels names 3, which is not a level of seed" in refused(
        tmp_path, grid={**RECIPE["grid"], "seed": [1, 2]}, comparisons=[{"factor": "seed", "baseline": 1,
                                                                         "levels": [3]}])


def test_the_command_line_refuses_a_wrong_form_in_one_line_and_exits_2(tmp_path, medbench_cli):
    path = write(tmp_path, comparisons=[GOOD, {**GOOD, "levels": 5}])
    result = medbench_cli("sweep", str(path), "--scale", "toy", "--dry-run", "--output-dir", str(tmp_path / "s"))
    assert result.exit_code == 2 and isinstance(result.exception, MedbenchError)
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: recipe ") and "comparison 2 (method vs base): levels: 5 must list levels of " \
        "method, each once — write levels: [sft]" in last
    assert "Traceback" not in result.output and "TypeError" not in result.output


def test_every_field_in_its_right_form_plans(tmp_path):
    comparison = {"factor": "method", "baseline": "base", "levels": ["sft", "dpo"], "where": {"task": "medqa"},
                  "primary": True, "metrics": {}, "margin": 0.05, "tasks": ["medqa"], "select": SELECT,
                  "pool_over": ["task"]}
    sweep = plan(read_recipe(write(tmp_path, comparisons=[comparison, {**GOOD, "noninferiority": 0.05}])), "full",
                 tmp_path / "s")
    assert sweep.comparisons_left_out == []
    assert {(c.level, c.margin, c.noninferiority) for c in sweep.comparisons} == {
        ("sft", 0.05, None), ("dpo", 0.05, None), ("sft", None, 0.05), ("dpo", None, 0.05)}


def test_what_only_another_scale_plans_is_listed_as_not_compared_never_dropped(tmp_path, medbench_cli):
    comparisons = [GOOD,
                   {"factor": "method", "levels": ["dpo"], "baseline": "sft", "primary": True},  # dpo: full only
                   {"factor": "method", "levels": ["sft", "dpo"], "baseline": "base", "tasks": ["medqa"]},
                   {"factor": "method", "baseline": "dpo"},
                   {**GOOD, "where": {"seed": [2]}},  # seed 2: full only
                   {**GOOD, "where": {"method": ["base"]}}]  # only baseline cells: nothing to compare
    recipe = read_recipe(write(tmp_path, comparisons=comparisons))
    toy = plan(recipe, "toy", tmp_path / "s")
    assert toy.comparisons_left_out == [
        "method=dpo vs sft (primary): no cell has method=dpo",
        "method=dpo vs base: no cell has method=dpo",
        "method vs dpo: no cell has method=dpo",
        "method vs base: where {seed: [2]} matches no cell",
        "method vs base: no cell at its levels and where has a baseline cell other than itself"]
    assert {(c.level, tuple(c.tasks)) for c in toy.comparisons} == {("sft", ()), ("sft", ("medqa",))}  # the rest
    full = plan(recipe, "full", tmp_path / "s")
    assert full.comparisons_left_out == [
        "method vs base: no cell at its levels and where has a baseline cell other than itself"]
    assert {c.level for c in full.comparisons} == {"base", "sft", "dpo"} and len(full.comparisons) == 14
    out = str(tmp_path / "s")
    result = medbench_cli("sweep", str(recipe.path), "--scale", "toy", "--dry-run", "--output-dir", out)
    assert result.exit_code == 0, result.output
    assert "not compared at scale toy: method=dpo vs sft (primary): no cell has method=dpo" in result.output
    result = medbench_cli("sweep", str(recipe.path), "--scale", "toy", "--dry-run", "--json", "--output-dir", out)
    assert json.loads(result.stdout)["comparisons_left_out"] == toy.comparisons_left_out


def test_a_level_that_set_adds_without_a_step_list_is_one_line(tmp_path, medbench_cli):
    recipe = Path(__file__).resolve().parent.parent / "recipes" / "sft_vs_dpo.yaml"
    result = medbench_cli("sweep", str(recipe), "--scale", "toy", "--dry-run", "--output-dir", str(tmp_path / "s"),
                          "--set", "methods=[base, sft, nope]")
    assert result.exit_code == 2 and "cell.steps has no entry for method=nope" in " ".join(result.output.split())


def test_a_metrics_key_naming_a_task_no_compared_cell_scores_is_one_line(tmp_path):
    from medbench.planning import plan

    recipe = read_recipe(write(tmp_path, comparisons=[{**GOOD, "metrics": {"medqa_typo": "acc"}}]))
    with pytest.raises(MedbenchError, match="names task 'medqa_typo' in its metrics, which is no task medbench knows"):
        plan(recipe, "toy", tmp_path / "s")


def test_the_same_pair_at_two_margins_is_two_readings(tmp_path):
    from medbench.planning import plan

    recipe = read_recipe(write(tmp_path, comparisons=[{**GOOD, "margin": 0.05}, {**GOOD, "margin": 0.1}, GOOD]))
    margins = sorted(str(c.margin) for c in plan(recipe, "toy", tmp_path / "s").comparisons)
    assert len(set(margins)) == 3 and {"0.05", "0.1", "None"} == set(margins)  # never the first one only
