"""Sweeps: recipes expand to cells, cells train and score, finished work is skipped, failures stay contained."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from pathlib import Path
from xml.etree import ElementTree

from medbench.errors import MedbenchError
from medbench.records import read_records
from medbench.sweeps import plan, read_recipe, run_sweep, substitute

RECIPE = """
name: tiny_sweep
scales:
  toy: {{model: "{model}", steps: 1, eval_limit: 3}}
grid:
  method: [base, sft]
  seed: [1, 2]
cell:
  model: "{{model}}"
  steps_by: method
  steps:
    base: []
    sft: [{{plugin: sft, task: medqa, options: {{max_steps: "{{steps}}", max_examples: 4, train_batch_size: 2}}}}]
  eval: {{tasks: [medqa], limit: "{{eval_limit}}", batch_size: 4}}
baseline: {{method: base}}
report: {{compare: method}}
"""


def write_recipe(tmp_path, model_dir, text=RECIPE, **changes):
    data = yaml.safe_load(text.format(model=model_dir))
    data.update(changes)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_plan_expands_the_grid_with_stable_identities(tmp_path, tiny_model_dir):
    recipe = read_recipe(write_recipe(tmp_path, tiny_model_dir))
    first, again = plan(recipe, out_dir=tmp_path / "s"), plan(recipe, out_dir=tmp_path / "s")
    assert [c.label for c in first.cells] == ["method=base,seed=1", "method=base,seed=2", "method=sft,seed=1",
                                              "method=sft,seed=2"]
    assert [c.key for c in first.cells] == [c.key for c in again.cells]
    assert len({c.key for c in first.cells}) == 4
    assert [c.is_baseline for c in first.cells] == [True, True, False, False]
    sft = first.cells[2]
    assert sft.steps[0].plugin == "sft" and sft.steps[0].options["max_steps"] == 1  # whole-string refs keep type
    changed = plan(read_recipe(write_recipe(tmp_path, tiny_model_dir, scales={"toy": {
        "model": str(tiny_model_dir), "steps": 2, "eval_limit": 3}})), out_dir=tmp_path / "s")
    assert changed.cells[0].key == first.cells[0].key  # base cells do not train: unchanged
    assert changed.cells[2].key != first.cells[2].key  # a different option is a different cell


def test_substitute_and_level_mappings():
    assert substitute({"a": "{x}", "b": "n={x}", "c": ["{y}"]}, {"x": 3, "y": [1, 2]}, "t") == \
        {"a": 3, "b": "n=3", "c": [[1, 2]]}
    with pytest.raises(MedbenchError, match=r"refers to \{zz\}.*did you mean zzz"):
        substitute("{zz}", {"z": 1, "zzz": 2}, "cell")


def test_a_level_can_bind_variables(tmp_path, tiny_model_dir):
    grid = {"method": ["sft"], "size": [{"name": "small", "n": 4}, {"name": "large", "n": 8}]}
    text = RECIPE.replace("max_examples: 4", 'max_examples: "{{n}}"')
    sweep = plan(read_recipe(write_recipe(tmp_path, tiny_model_dir, text=text, grid=grid, baseline=None)),
                 out_dir=tmp_path / "s")
    assert [(c.factors["size"], c.steps[0].options["max_examples"]) for c in sweep.cells] == [("small", 4),
                                                                                            ("large", 8)]


@pytest.mark.parametrize("change,message", [
    ({"grid": {}}, "empty grid"),
    ({"grid": {"method": []}}, "factor 'method' has no values"),
    ({"exclude": [{"method": "base"}, {"method": "sft"}]}, "empty grid"),
    ({"colour": "blue"}, "unknown key"),
    ({"cell": {"model": "x"}}, "cell has no eval"),
])
def test_bad_recipes_fail_in_one_line(tmp_path, tiny_model_dir, change, message):
    path = write_recipe(tmp_path, tiny_model_dir, **change)
    with pytest.raises(MedbenchError, match=message):
        plan(read_recipe(path), out_dir=tmp_path / "s")


def test_sweep_runs_every_cell_and_skips_finished_ones(tmp_path, tiny_model_dir, capsys):
    sweep = plan(read_recipe(write_recipe(tmp_path, tiny_model_dir)), out_dir=tmp_path / "s")
    results = run_sweep(sweep)
    assert [r.status for r in results] == ["done"] * 4
    scored = [line for line in capsys.readouterr().err.splitlines() if " · medqa " in line and "(100%)" in line]
    assert len(scored) >= 4  # every cell's scoring shows progress too (piped here: plain lines)
    records = read_records(sweep.leaderboard_dir)
    assert len(records) == 4
    factors = sorted((r["extra"]["factors"]["method"], r["extra"]["factors"]["seed"]) for r in records)
    assert factors == [("base", 1), ("base", 2), ("sft", 1), ("sft", 2)]
    trained = [r for r in records if r["extra"]["factors"]["method"] == "sft"]
    assert all(r["extra"]["training"]["plugin"] == "sft" for r in trained)
    assert len(list((sweep.out_dir / "steps").iterdir())) == 2  # one SFT per seed
    again = run_sweep(sweep)
    assert [r.status for r in again] == ["skipped"] * 4


def test_an_option_the_trainer_does_not_take_fails_the_plan(tmp_path, tiny_model_dir):
    text = RECIPE.replace("train_batch_size: 2", "train_batch_size: 2, no_such_option: 1")
    with pytest.raises(MedbenchError, match="no option no_such_option"):
        plan(read_recipe(write_recipe(tmp_path, tiny_model_dir, text=text)), out_dir=tmp_path / "s")


def test_a_failing_cell_is_recorded_and_the_others_finish(tmp_path, tiny_model_dir):
    missing = tmp_path / "no-such-model"  # fails only when the step loads it, after the plan
    text = RECIPE.replace("{{plugin: sft, task: medqa,", f"{{{{plugin: sft, task: medqa, model: '{missing}',")
    sweep = plan(read_recipe(write_recipe(tmp_path, tiny_model_dir, text=text)), out_dir=tmp_path / "s")
    results = {r.label: r for r in run_sweep(sweep)}
    assert results["method=base,seed=1"].status == "done"
    assert results["method=sft,seed=1"].status == "failed"
    assert "no-such-model" in results["method=sft,seed=1"].error
    marker = json.loads((sweep.out_dir / "cells" / f"{sweep.cells[2].key}.json").read_text())
    assert marker["status"] == "failed"


def test_killed_sweep_resumes_where_it_stopped(tmp_path, tiny_model_dir):
    recipe = write_recipe(tmp_path, tiny_model_dir)
    out = tmp_path / "s"
    command = [sys.executable, "-m", "medbench.cli", "sweep", str(recipe), "--output-dir", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    cells = out / "cells"
    deadline = time.time() + 240
    while time.time() < deadline and not (cells.exists() and any(cells.glob("*.json"))):
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished_before = {p.name: p.read_text() for p in cells.glob("*.json")}
    assert 1 <= len(finished_before) < 4, "the sweep should have been killed mid-way"
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {p.name: p.read_text() for p in cells.glob("*.json") if p.name in finished_before} == finished_before
    assert len(list(cells.glob("*.json"))) == 4
    assert len(read_records(out / "leaderboard")) == 4


def test_dry_run_prints_the_grid_and_runs_nothing(tmp_path, tiny_model_dir):
    recipe = write_recipe(tmp_path, tiny_model_dir)
    done = subprocess.run([sys.executable, "-m", "medbench.cli", "sweep", str(recipe), "--dry-run",
                           "--output-dir", str(tmp_path / "s")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert "method=sft,seed=2" in done.stdout and "4 cells" in done.stdout
    assert not (tmp_path / "s").exists()


def test_register_executors(plugin_registration, tmp_path, tiny_model_dir):
    from medbench import hookimpl
    from medbench.sweeps import executor_registry

    class Reversed:
        name = "reversed"
        description = "last cell first"

        def run(self, cells, run_cell, options):
            for cell in reversed(cells):
                yield run_cell(cell)

    class Plugin:
        @hookimpl
        def register_executors(self, register):
            register(Reversed())

    plugin_registration(Plugin(), "reversed-executor")
    assert {"local", "ray", "slurm", "reversed"} <= set(executor_registry())
    recipe = write_recipe(tmp_path, tiny_model_dir, grid={"method": ["base"], "seed": [1, 2]})
    sweep = plan(read_recipe(recipe), out_dir=tmp_path / "s")
    assert [r.label for r in run_sweep(sweep, "reversed")] == ["method=base,seed=2", "method=base,seed=1"]
    with pytest.raises(MedbenchError, match="unknown executor 'rey'.*did you mean ray"):
        run_sweep(sweep, "rey")


def test_slurm_executor_code_path_through_submitit_debug(tmp_path, tiny_model_dir):
    pytest.importorskip("submitit")
    recipe = write_recipe(tmp_path, tiny_model_dir, grid={"method": ["base"], "seed": [1, 2]})
    sweep = plan(read_recipe(recipe), out_dir=tmp_path / "s")
    results = run_sweep(sweep, "slurm", {"cluster": "debug", "folder": str(tmp_path / "slurm")})
    assert sorted(r.status for r in results) == ["done", "done"]


def test_ray_executor_on_a_local_cluster(tmp_path, tiny_model_dir):
    pytest.importorskip("ray")
    recipe = write_recipe(tmp_path, tiny_model_dir, grid={"method": ["base", "sft"], "seed": [1]})
    sweep = plan(read_recipe(recipe), out_dir=tmp_path / "s")
    results = run_sweep(sweep, "ray", {"num_cpus": "2"})
    assert sorted(r.status for r in results) == ["done", "done"]
    assert len(read_records(sweep.leaderboard_dir)) == 2


def test_study_report_pairs_each_level_with_its_baseline(tmp_path, tiny_model_dir):
    from medbench.sweep_report import study_report

    study = "Does <img src=x onerror=alert(1)> | SFT help?\n| forged | row |\u202e"  # a recipe is untrusted text
    sweep = plan(read_recipe(write_recipe(tmp_path, tiny_model_dir, study=study)), out_dir=tmp_path / "s")
    run_sweep(sweep)
    report = study_report(sweep)
    written = (sweep.out_dir / "report.md").read_text()
    assert "<img" not in written and "\u202e" not in written and "\n| forged" not in written
    assert "Does &lt;img src=x onerror=alert(1)&gt; \\| SFT help?" in written
    rows = [row for row in report["rows"] if not row["pooled"]]
    assert len(rows) == 2 and report["tests"] == 3  # sft vs base, once per seed, and once pooled over both
    (pooled,) = [row for row in report["rows"] if row["pooled"]]
    assert pooled["seeds"] == ["1", "2"] and pooled["comparison"]["test"] == "pooled over 2 seeds"
    assert pooled["comparison"]["n_paired"] == 3 and "pooled over seeds 1, 2" in report["markdown"]
    for row in rows:
        assert (row["factor"], row["level"], row["baseline_level"]) == ("method", "sft", "base")
        assert row["factors"]["seed"] == int(row["baseline"].rsplit("seed=", 1)[1])  # paired with its own seed
        comparison = row["comparison"]
        assert comparison["test"] == "mcnemar-exact" and comparison["n_paired"] == 3
        assert 0.0 <= comparison["p"] <= 1.0 and comparison["q"] >= comparison["p"]
    assert "| medqa | method: sft vs base |" in report["markdown"] and (sweep.out_dir / "report.md").exists()
    picture = ElementTree.fromstring((sweep.out_dir / "report.svg").read_text())  # well-formed
    assert len(picture.findall(".//{http://www.w3.org/2000/svg}circle")) == 1  # the pooled row stands for its seeds
    assert "](report.svg)" in (sweep.out_dir / "report.md").read_text()


RECIPES = sorted((Path(__file__).resolve().parent.parent / "recipes").glob("*.yaml"))
# The tiny model's tokenizer is byte-level: a history and its rationale that fit 1024 SmolLM2 tokens need ~2700 bytes.
# A random model rarely ends an answer inside the DPO length band: more samples per prompt give it the chance.
TINY_SETTINGS = {"max_steps": "1", "max_steps_2x": "2", "eval_limit": "2", "gen_eval_limit": "1", "max_examples": "8",
                 "max_length": "3000", "dpo_samples": "8"}


@pytest.mark.timeout(900)
@pytest.mark.parametrize("recipe_path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_recipe_runs_at_toy_scale(recipe_path, tmp_path, tiny_model_dir):
    """Each bundled recipe, toy scale, every cell, on the tiny model (--set model=...): the grid, its trainers,
    its evaluation and its closing report all run."""
    from medbench.sweep_report import study_report

    recipe = read_recipe(recipe_path)
    toy = recipe.scales["toy"]
    overrides = {k: v for k, v in TINY_SETTINGS.items() if k in toy}
    for name in ("model", "judge", "clinical_model"):
        if name in toy:
            overrides[name] = str(tiny_model_dir)
    for name in ("models", "ensemble"):
        if name in toy:
            overrides[name] = f"[{tiny_model_dir}]"
    if "sizes" in toy:
        overrides["sizes"] = "[8]"
    sweep = plan(recipe, "toy", tmp_path / "s", overrides)
    results = run_sweep(sweep)
    failed = [(r.label, r.error) for r in results if r.status != "done"]
    assert not failed
    report = study_report(sweep)
    assert report["rows"] and any(row["comparison"] for row in report["rows"])
    ElementTree.fromstring((sweep.out_dir / "report.svg").read_text())


def test_set_rejects_unknown_variables(tmp_path, tiny_model_dir):
    recipe = read_recipe(write_recipe(tmp_path, tiny_model_dir))
    with pytest.raises(MedbenchError, match="has no variable 'modle'"):
        plan(recipe, "toy", tmp_path / "s", {"modle": "x"})
