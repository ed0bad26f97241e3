"""The sweep report's statistics: one test pooled over seeds, a metric other than the primary, equivalence."""

import random

import pytest

from medbench.errors import MedbenchError
from medbench.leaderboard.table import Cell
from medbench.recipe import read_recipe
from medbench.sweep_report import on_metric, pooled_comparison


def cell(values, metric="acc", seed=0, **extra):
    samples = [{"doc_id": i, metric: float(v), "gold": 1, "pred": int(v), **{k: vs[i] for k, vs in extra.items()}}
               for i, v in enumerate(values)]
    score = sum(values) / len(values)
    record = {"metrics": {metric: {"value": score}, **{k: {"value": sum(v for v in vs if v is not None)
                                                           / max(1, sum(v is not None for v in vs))}
                                                       for k, vs in extra.items()}}}
    return Cell(score, None, len(values), metric, f"r{seed}", record=record, samples=samples)


def arms(n, p_base, p_member, seed):
    rng = random.Random(seed)
    base = [int(rng.random() < p_base) for _ in range(n)]
    member = [int(rng.random() < p_member) for _ in range(n)]
    return cell(base, seed=seed), cell(member, seed=seed)


def test_identical_arms_pool_to_no_difference():
    pairs = [(cell([1, 0, 1, 1, 0] * 8), cell([1, 0, 1, 1, 0] * 8)) for _ in range(3)]
    result = pooled_comparison(pairs, {})
    assert result.test == "pooled over 3 seeds" and result.n_paired == 40
    assert result.delta == 0 and result.p == 1.0 and result.direction == ""


def test_pooling_finds_an_effect_single_seeds_miss():
    """A 10-point gain on 150 items: single seeds disagree (some p > 0.3), the five seeds pooled give one answer."""
    from medbench.leaderboard import compare_cells

    pairs = [arms(150, 0.5, 0.6, seed) for seed in range(5)]
    single = [compare_cells(base, member, {}).p for base, member in pairs]
    pooled = pooled_comparison(pairs, {})
    assert pooled.p < 0.01 and pooled.direction == "better" and pooled.ci_low > 0
    assert pooled.p <= 0.001 and max(single) > 0.3


def test_items_not_scored_in_every_seed_are_left_out():
    base, member = cell([1, 1, 0, 0]), cell([1, 1, 1, 1])
    short_base, short_member = cell([1, 1, 0]), cell([1, 1, 1])
    result = pooled_comparison([(base, member), (short_base, short_member)], {})
    assert result.n_paired == 3


def test_a_corpus_metric_is_pooled_over_seeds():
    from medbench.metrics import metric_registry

    def f1_cell(preds, seed):
        golds = [1, 0] * (len(preds) // 2)
        samples = [{"doc_id": i, "gold": g, "pred": p} for i, (g, p) in enumerate(zip(golds, preds))]
        return Cell(0.0, None, len(preds), "f1", f"r{seed}", samples=samples)

    pairs = [(f1_cell([0, 0] * 20, s), f1_cell([1, 0] * 20, s)) for s in range(2)]
    result = pooled_comparison(pairs, metric_registry())
    assert result.delta == pytest.approx(1.0) and result.p < 0.01


def test_equivalence_needs_the_narrow_ci_inside_the_margin():
    same = [(cell([1, 0] * 100, seed=s), cell([1, 0] * 100, seed=s)) for s in range(2)]
    assert "equivalent within ±0.05" in pooled_comparison(same, {}, margin=0.05).note
    different = [arms(60, 0.5, 0.5, seed) for seed in range(2)]
    note = pooled_comparison(different, {}, margin=0.01).note
    assert note.startswith("not shown equivalent within ±0.01")


def test_a_comparison_can_read_another_metric_of_the_record():
    judged = cell([1, 0, 1, 0], metric="rougeL", **{"judge:likert": [4.0, None, 3.0, 5.0]})
    on_judge = on_metric(judged, "judge:likert", {})
    assert on_judge.metric == "judge:likert" and on_judge.score == pytest.approx(4.0)
    assert [s["doc_id"] for s in on_judge.samples] == [0, 2, 3]  # the unrated item is not paired
    assert on_metric(judged, "", {}) is judged


@pytest.mark.parametrize("bad, message", [
    ({"primary": "yes"}, "primary: 'yes' must be true or false"),
    ({"margin": -1}, "margin: -1 must be a positive number"),
    ({"metrics": ["likert"]}, "metrics: \\['likert'\\] must map task names to metric names"),
])
def test_recipe_comparison_options_are_checked(tmp_path, bad, message):
    import yaml

    recipe = {"name": "r", "scales": {"toy": {"model": "m"}}, "grid": {"method": ["base", "sft"]},
              "cell": {"model": "{model}", "steps": [], "eval": {"tasks": ["medqa"]}},
              "comparisons": [{"factor": "method", "baseline": "base", **bad}]}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(MedbenchError, match=message):
        read_recipe(path)


def test_the_selected_checkpoint_is_the_best_on_the_held_out_split_ties_to_the_earliest():
    from medbench.sweep_report import Entry, selected_checkpoint

    def entry(label, task, score, higher=True):
        c = Cell(score, None, 10, "acc", label, higher_is_better=higher)
        return Entry(f"{task}@validation", task, label, {}, c)

    select = {"split": "validation", "tasks": ["a", "b"]}
    order = ["linear-t0", "linear-t0.5", "linear-t1"]
    entries = [entry("m/linear-t0", "a", 0.5), entry("m/linear-t0", "b", 0.7),
               entry("m/linear-t0.5", "a", 0.7), entry("m/linear-t0.5", "b", 0.5),
               entry("m/linear-t1", "a", 0.9)]  # t1 lacks task b: not a candidate
    assert selected_checkpoint(entries, select, order) == ("m/linear-t0", pytest.approx(0.6))  # tie: earliest
    entries.append(entry("m/linear-t1", "b", 0.4))
    assert selected_checkpoint(entries, select, order)[0] == "m/linear-t1"  # mean 0.65
    assert selected_checkpoint([], select, order) == (None, pytest.approx(float("nan"), nan_ok=True))


def test_excluded_factor_values_are_never_selected():
    """A merge's endpoints (t 0: the instruct model itself) stay on the curve but are never the chosen checkpoint,
    even when best on validation; factor values compare as numbers (t 0 excludes 0.0)."""
    from medbench.sweep_report import Entry, selected_checkpoint

    def entry(label, t, score):
        return Entry("a@validation", "a", label, {"merge.t": t, "t": t}, Cell(score, None, 10, "acc", label))

    entries = [entry("m/linear-t0", 0.0, 0.9), entry("m/linear-t0.5", 0.5, 0.6), entry("m/linear-t1", 1.0, 0.8)]
    order = ["linear-t0", "linear-t0.5", "linear-t1"]
    assert selected_checkpoint(entries, {"split": "validation", "tasks": ["a"]}, order)[0] == "m/linear-t0"
    excluded = {"split": "validation", "tasks": ["a"], "exclude": {"t": [0, 1]}}
    assert selected_checkpoint(entries, excluded, order) == ("m/linear-t0.5", pytest.approx(0.6))
    assert selected_checkpoint(entries[:1], excluded, order)[0] is None


def test_a_baseline_checkpoint_is_paired_at_the_members_checkpoint_factors():
    from medbench.sweep_report import Entry, _partner

    def entry(label, **factors):
        return Entry("medqa", "medqa", label, factors, Cell(0.5, None, 10, "acc", label))

    member = entry("slerp/t0.5", merge_method="slerp", t=0.5, seed=1)
    candidates = [entry("linear/t0", merge_method="linear", t=0.0, seed=1),
                  entry("linear/t0.5", merge_method="linear", t=0.5, seed=1),
                  entry("linear/t1", merge_method="linear", t=1.0, seed=1)]
    assert _partner(member, candidates, "merge_method").label == "linear/t0.5"
    assert _partner(entry("x", t=0.3), candidates, "merge_method").label == "linear/t1"  # no match: the last


def test_equivalence_is_not_claimed_on_a_handful_of_items():
    same = [(cell([1, 0, 1, 1]), cell([1, 0, 1, 1]))]
    assert "too few items (4) for an equivalence verdict" in pooled_comparison(same, {}, margin=0.05).note


def report_row(column, delta, *, family="primary", pooled=False, seeds=("1",), significant=False, margin=None,
               score=0.5, metric="acc", note=""):
    from medbench.leaderboard.table import Comparison

    comparison = Comparison("mcnemar-exact", n_paired=40, delta=delta, p=0.01 if significant else 0.4,
                            q=0.02 if significant else 0.6, significant=significant,
                            direction="better" if delta and delta > 0 else "worse", ci_low=None if delta is None
                            else delta - 0.1, ci_high=None if delta is None else delta + 0.1, note=note)
    return {"task": column, "column": column, "factor": "method", "level": "dpo", "baseline_level": "sft",
            "factors": {"task": column, "method": "dpo", "seed": seeds[0], "arm": "x"}, "family": family,
            "pooled": pooled, "seeds": list(seeds), "score": score, "baseline_score": score, "metric": metric,
            "n": 40, "comparison": comparison, "_margin": margin}


def test_the_report_picture_draws_each_answer_once_and_escapes_every_name():
    from xml.etree import ElementTree

    from medbench.sweep_plot import svg_differences

    rows = [report_row("uti", 0.2, pooled=True, seeds=("1", "2"), significant=True),
            report_row("uti", 0.1, seeds=("1",)), report_row("uti", 0.3, seeds=("2",)),  # shown by the pooled row
            report_row('<script>alert("x")</script>', -0.05, family="secondary", margin=0.05),
            report_row("summary", 1.5, family="secondary", score=3.5, metric="likert"),  # its own axis
            report_row("hypo", None, family="secondary", note="no paired items")]
    svg = svg_differences(rows, 0.05)
    root = ElementTree.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    circles = root.findall(f".//{ns}circle")
    assert len(circles) == 3  # pooled uti, the hostile-named row, the likert row; the untested row is a note
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    texts = [t.text or "" for t in root.iter(f"{ns}text")]
    assert any("difference in likert" in t for t in texts) and any("0-1 metrics" in t for t in texts)
    assert any("no paired items" in t for t in texts) and any("2 seeds pooled" in t for t in texts)
    assert circles[0].get("fill") != "white" and circles[1].get("fill") == "white"  # significant is filled
    assert any("equivalence margin" in (r.findtext(f"{ns}title") or "") for r in root.iter(f"{ns}rect"))
    assert svg_differences([], 0.05) is None
