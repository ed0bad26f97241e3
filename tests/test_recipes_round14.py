"""Fourteenth review of the study recipes: what each plan's primary family is, counted on the committed plans
(medbench.sweep_families, which the dry run prints), and the report's Benjamini-Hochberg families when a primary
row answers by an equivalence or non-inferiority verdict."""

import dataclasses
import json
from pathlib import Path

import pytest
import yaml
from test_sweep_statistics import fake_sweep

from medbench.commands.sweep import _chosen_on
from medbench.sweep_families import primary_answers, summary_lines

REPO = Path(__file__).resolve().parent.parent
PLANS = REPO / "docs" / "studies" / "plans"


def _plan(name: str) -> dict:
    return json.loads((PLANS / f"{name}.json").read_text())


def test_a_verdict_rows_difference_test_is_adjusted_with_the_secondary_family(tmp_path, monkeypatch):
    """Margin rows answer by TOST at alpha; their difference p (a sure difference there, say) must not ease the
    gain claims' Benjamini-Hochberg bar, as it did while it sat in the primary family."""
    from medbench.sweep_report import study_report

    sweep = fake_sweep(tmp_path, monkeypatch, pool_over=[], margin=0.05)
    sweep.comparisons = [c if "-a-" in c.cell else dataclasses.replace(c, margin=None) for c in sweep.comparisons]
    report = study_report(sweep)
    pooled = [r for r in report["rows"] if r["pooled"]]
    verdicts = [r for r in pooled if r["factors"]["model"] == "a"]
    gains = [r for r in pooled if r["factors"]["model"] == "b"]
    assert len(verdicts) == len(gains) == 2 and all(r["family"] == "primary" for r in pooled)  # shown as primary
    assert report["tests_by_family"]["primary"] == 2  # the two gain rows only (was 4)
    assert all(r["comparison"]["q"] is not None for r in pooled)  # every difference test still adjusted somewhere
    assert "answers by its verdict at 0.05, its difference test adjusted with the rest" in report["markdown"]


def test_a_noninferiority_row_pooled_over_factors_leaves_the_primary_family_empty(tmp_path, monkeypatch):
    from medbench.sweep_report import study_report

    report = study_report(fake_sweep(tmp_path, monkeypatch, pool_over=["model", "task"], noninferiority=0.05))
    (pooled,) = [r for r in report["rows"] if r.get("pooled_over") and not r.get("heterogeneity")]
    assert pooled["family"] == "primary" and "non-inferior" in pooled["comparison"]["note"]
    assert report["tests_by_family"]["primary"] == 0


def test_sft_vs_dpo_primary_family_is_the_four_gain_claims_and_four_verdicts():
    answers = primary_answers(_plan("sft_vs_dpo-full"))
    gains = {a.split(" on ")[1].split(" ")[0] for a in answers["adjusted"]}
    assert gains == {"clinical_reasoning_open", "triage_personnel", "triage_urgency", "discharge_summary"}
    assert all(a.startswith("method: dpo vs sft") for a in answers["adjusted"])
    assert any("discharge_summary by judge:likert" in a for a in answers["adjusted"])
    assert sorted(a.split(";")[0] for a in answers["verdicts"]) == [
        "method: dpo vs base on hyponatremia", "method: dpo vs sft on hyponatremia", "method: dpo vs sft on uti",
        "method: sft vs base on hyponatremia"]
    assert all(a.endswith("equivalence ±0.05") for a in answers["verdicts"])
    assert primary_answers(_plan("sft_vs_dpo-toy")) == answers  # one seed: the same rows, unpooled


def test_merge_retention_primary_family_keeps_noninferiority_out_of_bh():
    answers = primary_answers(_plan("merge_retention-toy"))
    assert len(answers["adjusted"]) == 12 and len(answers["verdicts"]) == 8
    assert all("non-inferiority −0.05" in a and "pooled over merge_method" in a for a in answers["verdicts"])
    # full_ft is planned once for both merge methods: the assay row says so, not "merge_method=linear"
    assert sum("full_ft vs instruct" in a and "merge_method=any" in a for a in answers["adjusted"]) == 2


def test_rationale_sft_and_curriculum_primary_families():
    rationale = primary_answers(_plan("rationale_sft-full"))
    assert len(rationale["adjusted"]) == 4 and not rationale["verdicts"]  # 2 claims x 2 test splits
    assert all("by macro_f1" in a and "writer=clinician" in a for a in rationale["adjusted"])
    curriculum = primary_answers(_plan("curriculum-toy"))
    assert len(curriculum["adjusted"]) == 11  # 8 orderings vs random (3 + 3 need difficulty) and 3 llm vs human
    assert all("pooled over model × task" in a and "medqa+medmcqa" in a for a in curriculum["adjusted"])


def test_the_dry_run_summary_counts_the_family_not_the_per_seed_lines():
    plan = _plan("sft_vs_dpo-full")
    assert sum(c["primary"] for c in plan["comparisons"]) == 40  # 8 rows x 5 seeds: what a reader would count
    lines = summary_lines(plan)
    assert "  4 difference tests, Benjamini-Hochberg across them:" in lines
    assert any(line.startswith("  4 rows answered by their equivalence") for line in lines)


def test_a_choosing_step_shows_the_metric_and_mode_it_chooses_by():
    by_cell = {c["label"]: c for c in _plan("sft_vs_dpo-full")["cells"]}
    summary = by_cell["task=discharge_summary,method=dpo,seed=1"]["steps"]
    assert [_chosen_on(s["select"]) for s in summary] == ["discharge_summary@validation by judge:likert"] * 2
    rationale = next(c for c in _plan("rationale_sft-full")["cells"] if c["steps"])
    assert _chosen_on(rationale["steps"][0]["select"]) == \
        "adrd_prediction@validation by macro_f1, scored by generate"


@pytest.mark.parametrize("plan", ["sft_vs_dpo-full", "sft_vs_dpo-toy"])
def test_triage_power_reads_the_whole_grown_test_split(plan):
    """The triage power figure (and its DPO-over-SFT detectable gain) is for 396 items: every triage cell of the
    full plan scores the whole test split, and the split still has them."""
    cells = [c for c in _plan(plan)["cells"] if c["factors"]["task"].startswith("triage")]
    assert cells and all(c["eval"]["limit"] is None for c in cells) == plan.endswith("full")
    rows = (REPO / "tasks" / "triage" / "data" / "test.jsonl").read_text().splitlines()
    assert len([r for r in rows if r.strip()]) >= 396
    header = (REPO / "recipes" / "sft_vs_dpo.yaml").read_text()
    assert yaml.safe_load(header)["scales"]["full"]["eval_limit"] is None


def test_two_candidates_equally_near_the_middle_go_to_a_drawn_side_not_always_the_earlier():
    from medbench.step_selection import choose

    tied = [{"value": 0.6}] * 4  # an even grid: 1 and 2 are equally near its middle
    assert choose(tied, "middle", side=0) == 1 and choose(tied, "middle", side=1) == 2
    assert choose(tied, "first", side=1) == 0  # "first" stays the earliest
    ends = [{"value": 0.7}, {"value": 0.5}, {"value": 0.7}]  # the two ends tie, the middle is worse
    assert choose(ends, "middle", side=0) == 0 and choose(ends, "middle", side=1) == 2


def test_a_merge_tie_between_t_quarter_and_three_quarters_is_not_always_the_lower_t():
    from test_noninferiority import scored

    from medbench.sweep_report import Entry, selected_checkpoint

    order = [f"linear-t{t:g}" for t in (0, 0.25, 0.5, 0.75, 1)]
    marks = {0.25: [1, 1, 0, 0], 0.5: [1, 0, 0, 0], 0.75: [1, 1, 0, 0]}
    entries = [Entry("x@validation", "x", name, {"t": t}, scored(marks.get(t, [0, 0, 0, 0]), 0))
               for name, t in zip(order, (0, 0.25, 0.5, 0.75, 1))]
    select = {"split": "validation", "tasks": ["x"], "exclude": {"t": [0.0, 1.0]}, "ties": "middle"}
    assert selected_checkpoint(entries, select, order, side=0)[0] == "linear-t0.25"
    assert selected_checkpoint(entries, select, order, side=1)[0] == "linear-t0.75"


@pytest.mark.parametrize("name", ["sft_vs_dpo-full", "rationale_sft-full", "merge_retention-toy"])
def test_the_plans_choosing_steps_draw_both_sides_of_a_middle_tie(name):
    """Every choosing step of the recipes breaks ties to the middle; across a plan's steps (one per task, seed,
    model...) the side two equally near candidates go to is drawn, so neither the less nor the more trained
    candidate is every step's tie choice (sft_vs_dpo's 12 and 18, rationale_sft's 12 candidates are even grids)."""
    from medbench.step_selection import tie_side

    steps = {s["name"]: s for c in _plan(name)["cells"] for s in c["steps"] if s.get("select")}
    assert steps and all(s["select"]["ties"] == "middle" for s in steps.values())
    later = sum(tie_side(step) for step in steps) / len(steps)
    assert 0.2 < later < 0.8, later
    cells = [c["id"] for c in _plan(name)["cells"]]
    assert 0.2 < sum(tie_side(cell) for cell in cells) / len(cells) < 0.8  # a comparison's select (merge t)
