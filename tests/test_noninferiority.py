"""One-sided readings of a comparison (``noninferiority: m``, medbench.noninferiority), comparisons restricted to
some tasks (``tasks``), a select's tie rule (``ties: middle``), and an eval's ``require_real_data``: read, planned
and reported (the report on given scores, no model)."""

import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from medbench.errors import MedbenchError
from medbench.leaderboard.table import Cell
from medbench.noninferiority import verdict
from medbench.planning import PlannedComparison, plan
from medbench.recipe import read_recipe

RECIPE = {"name": "r", "scales": {"toy": {"model": "m"}}, "grid": {"method": ["base", "sft"], "seed": [1, 2]},
          "cell": {"model": "{model}", "steps_by": "method", "eval": {"tasks": ["medqa", "uti"]},
                   "steps": {"base": [], "sft": [{"plugin": "sft", "task": "uti"}]}}}


def write(tmp_path, **comparison):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({**RECIPE, "comparisons": [{"factor": "method", "baseline": "base",
                                                               **comparison}]}))
    return path


@pytest.mark.parametrize("ci, higher, expected", [
    ((0.01, 0.08), True, "non-inferior within 0.05 (superior); one-sided 95% bound +0.010"),
    ((-0.03, 0.04), True, "non-inferior within 0.05; one-sided 95% bound -0.030"),
    ((-0.07, 0.02), True, "not shown non-inferior within 0.05; one-sided 95% bound -0.070"),
    # lower is better (a loss, an error rate): the CI's upper end is the worse one
    ((-0.08, -0.01), False, "non-inferior within 0.05 (superior); one-sided 95% bound +0.010"),
    ((-0.02, 0.04), False, "non-inferior within 0.05; one-sided 95% bound -0.040"),
    ((-0.02, 0.06), False, "not shown non-inferior within 0.05; one-sided 95% bound -0.060"),
    ((None, None), True, "no CI: non-inferiority within 0.05 not tested"),
])
def test_the_verdict_reads_the_narrow_cis_worse_end_in_the_metrics_better_direction(ci, higher, expected):
    assert verdict({"ci_low": ci[0], "ci_high": ci[1]}, 0.05, higher) == expected


def test_a_cell_that_does_better_is_non_inferior_where_equivalence_would_refuse_it():
    """The point of the one-sided reading: a retention arm that keeps MORE is never "not on par"."""
    narrow = {"ci_low": 0.02, "ci_high": 0.09}  # clearly better: outside +-0.05, so TOST says "not equivalent"
    assert not (-0.05 < narrow["ci_low"] and narrow["ci_high"] < 0.05)
    assert verdict(narrow, 0.05, True).startswith("non-inferior within 0.05 (superior)")


@pytest.mark.parametrize("comparison, message", [
    ({"noninferiority": 0}, r"noninferiority: 0 must be a positive number"),
    ({"noninferiority": True}, r"noninferiority: True must be a positive number"),
    ({"noninferiority": 0.05, "margin": 0.05}, r"both margin \(two-sided equivalence\) and noninferiority"),
    ({"tasks": "medqa"}, r"tasks: 'medqa' must list task names, each once"),
    ({"tasks": ["medqa", "medqa"]}, r"must list task names, each once"),
    ({"select": {"split": "validation", "tasks": ["medqa"], "ties": "last"}}, r"ties: first or middle"),
])
def test_bad_one_sided_keys_stop_the_recipe_in_one_line(tmp_path, comparison, message):
    with pytest.raises(MedbenchError, match=message) as error:
        read_recipe(write(tmp_path, **comparison))
    assert "\n" not in str(error.value)


def test_tasks_and_noninferiority_are_planned_and_kept_apart_from_the_two_sided_reading(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({**RECIPE, "comparisons": [
        {"factor": "method", "baseline": "base", "margin": 0.05, "tasks": ["medqa"]},
        {"factor": "method", "baseline": "base", "noninferiority": 0.05, "tasks": ["uti"]}]}))
    sweep = plan(read_recipe(path), out_dir=tmp_path / "s")
    readings = {(tuple(c.tasks), c.margin, c.noninferiority) for c in sweep.comparisons}
    assert readings == {(("medqa",), 0.05, None), (("uti",), None, 0.05)}  # per seed: 2 seeds x 2 readings
    assert len(sweep.comparisons) == 4
    from medbench.sweeps import describe

    described = describe(sweep)["comparisons"]
    assert {d.get("noninferiority") for d in described} == {None, 0.05} and all("tasks" in d for d in described)
    path.write_text(yaml.safe_dump({**RECIPE, "comparisons": [{"factor": "method", "baseline": "base"}]}))
    assert not any(k in d for d in describe(plan(read_recipe(path), out_dir=tmp_path / "s"))["comparisons"]
                   for k in ("tasks", "noninferiority"))  # plans without them read as before


def test_a_task_no_compared_cell_scores_stops_the_plan(tmp_path):
    with pytest.raises(MedbenchError, match=r"names tasks medmcqa, which none of its cells scores"):
        plan(read_recipe(write(tmp_path, tasks=["medqa", "medmcqa"])), out_dir=tmp_path / "s")


def scored(values, seed):
    samples = [{"doc_id": i, "acc": float(v), "gold": 1, "pred": int(v)} for i, v in enumerate(values)]
    return Cell(sum(values) / len(values), None, len(values), "acc", f"r{seed}",
                record={"metrics": {"acc": {"value": sum(values) / len(values)}}}, samples=samples)


def fake_sweep(tmp_path, monkeypatch, gain, **planned):
    """Three seeds of base vs sft on two tasks, scored as given; the comparison read as ``planned`` says (two
    seeds leave the run variance 1 df: a t on 1 df shows little)."""
    from medbench import sweep_report
    from medbench.sweep_report import Entry

    rng = random.Random(3)
    cells, by_cell, comparisons = [], {}, []
    rates = [rng.uniform(0.3, 0.7) for _ in range(400)]
    for seed in (1, 2, 3):
        keys = {}
        for method, delta in (("base", 0.0), ("sft", gain)):
            key = f"{method}-{seed}"
            keys[method] = key
            factors = {"method": method, "seed": seed}
            cells.append(SimpleNamespace(key=key, label=key, factors=factors))
            by_cell[key] = [Entry(task, task, key, factors,
                                  scored([int(rng.random() < r + delta) for r in rates], seed)) for task in ("a", "b")]
        comparisons.append(PlannedComparison(keys["sft"], keys["base"], "method", "sft", "base", primary=True,
                                             **planned))
    monkeypatch.setattr(sweep_report, "_entries", lambda sweep: (by_cell, {}))
    recipe = SimpleNamespace(name="r", study="", grid={"method": [], "seed": []})
    return SimpleNamespace(recipe=recipe, scale="toy", cells=cells, comparisons=comparisons, out_dir=tmp_path,
                           skipped=[], comparisons_left_out=[], leaderboard_dir=tmp_path)


def test_the_report_reads_a_better_arm_as_non_inferior_and_superior_on_its_tasks_only(tmp_path, monkeypatch):
    from medbench.sweep_report import study_report

    report = study_report(fake_sweep(tmp_path, monkeypatch, 0.15, tasks=["a"], noninferiority=0.05))
    rows = report["rows"]
    assert {r["task"] for r in rows} == {"a"}  # task b is scored but not this comparison's
    pooled = [r for r in rows if r["pooled"]]
    assert len(pooled) == 1 and "non-inferior within 0.05 (superior)" in pooled[0]["comparison"]["note"]
    assert all("non-inferior within 0.05" in r["comparison"]["note"] for r in rows)  # each seed's row too
    assert "equivalent" not in " ".join(r["comparison"]["note"] for r in rows)
    worse = study_report(fake_sweep(tmp_path, monkeypatch, -0.2, noninferiority=0.05))["rows"]
    assert {r["task"] for r in worse} == {"a", "b"}
    assert all("not shown non-inferior within 0.05" in r["comparison"]["note"] for r in worse if r["pooled"])


def test_ties_middle_picks_the_middle_candidate_and_first_the_earliest():
    from medbench.sweep_report import Entry, selected_checkpoint

    order = [f"linear-t{t:g}" for t in (0, 0.25, 0.5, 0.75, 1)]
    entries = [Entry("x@validation", "x", name, {"t": t}, scored([1, 0, 1, 0], 0))
               for name, t in zip(order, (0, 0.25, 0.5, 0.75, 1))]  # every t ties
    select = {"split": "validation", "tasks": ["x"], "exclude": {"t": [0.0, 1.0]}}
    assert selected_checkpoint(entries, select, order)[0] == "linear-t0.25"
    assert selected_checkpoint(entries, {**select, "ties": "middle"}, order)[0] == "linear-t0.5"
    entries[1] = Entry("x@validation", "x", order[1], {"t": 0.25}, scored([1, 1, 1, 0], 0))  # a real winner
    assert selected_checkpoint(entries, {**select, "ties": "middle"}, order)[0] == "linear-t0.25"


def test_require_real_data_skips_a_cell_that_would_score_a_bundled_sample(tmp_path):
    recipe = {**RECIPE, "cell": {**RECIPE["cell"], "eval": {"tasks": ["medqa", "uti"],
                                                            "require_real_data": ["medqa"]}},
              "comparisons": [{"factor": "method", "baseline": "base"}]}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(MedbenchError, match=r"medqa would be scored on its bundled sample.*--data-file medqa:test="):
        plan(read_recipe(path), out_dir=tmp_path / "s")
    test_file = tmp_path / "medqa_test.jsonl"
    test_file.write_text((Path(__file__).resolve().parent.parent / "tasks" / "medqa" / "data" / "test.jsonl").read_text())
    sweep = plan(read_recipe(path), out_dir=tmp_path / "s", data_files={"medqa:test": str(test_file)})
    assert len(sweep.cells) == 4 and not sweep.skipped
    assert all("require_real_data" not in c.eval for c in sweep.cells)  # a check, not how the cell scores
    recipe["cell"]["eval"]["require_real_data"] = ["medmcqa"]
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(MedbenchError, match=r"eval.require_real_data \['medmcqa'\] must list tasks of eval.tasks"):
        plan(read_recipe(path), out_dir=tmp_path / "s")


def test_a_comparison_pooled_over_factors_gets_the_one_sided_reading_too(tmp_path, monkeypatch):
    """Its stratified row reads non-inferiority off its own 90% CI (run variance included); a comparison that
    differs only in its reading is pooled apart."""
    from medbench.sweep_report import study_report
    from test_sweep_statistics import fake_sweep as pooled_sweep

    def pooled_note(effect):
        rows = study_report(pooled_sweep(tmp_path, monkeypatch, pool_over=["model", "task"], seeds=(1, 2, 3),
                                         effect=effect, noninferiority=0.05))["rows"]
        (pooled,) = [r for r in rows if r.get("pooled_over") and not r.get("heterogeneity")]
        return pooled["comparison"]["note"]

    assert "non-inferior within 0.05 (superior)" in pooled_note(0.15) and "run-to-run SD" in pooled_note(0.15)
    assert "not shown non-inferior within 0.05" in pooled_note(-0.2)
