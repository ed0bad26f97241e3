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
    """A 10-point gain on 150 items, five seeds, in 40 simulated studies: one seed alone finds it in under half of
    them (17), the five pooled (their run-to-run spread included) in most (33)."""
    from medbench.leaderboard import compare_cells

    single = pooled = 0
    for study in range(40):
        pairs = [arms(150, 0.5, 0.6, 100 * study + seed) for seed in range(5)]
        single += compare_cells(*pairs[0], {}).p < 0.05
        result = pooled_comparison(pairs, {})
        pooled += result.p < 0.05 and result.direction == "better" and result.ci_low > 0
    assert single / 40 < 0.55 and pooled / 40 >= 0.75


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
    assert "not shown equivalent within ±0.01" in note


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



def test_differences_that_are_all_zero_sit_on_a_readable_axis():
    import re

    from medbench.sweep_plot import svg_differences

    row = report_row("uti", 0.0)
    row["comparison"].ci_low = row["comparison"].ci_high = 0.0
    ticks = {float(t) for t in re.findall(r">([+\-−]?\d+\.\d+)</text>", svg_differences([row], 0.05))}
    assert ticks and max(abs(t) for t in ticks) >= 0.05  # not a ±0.001 axis that makes zero look resolved

# ------------------------------------------------------------------ pooled over factors (pool_over) and heterogeneity

def strata_of(effects, *, n=100, seeds=2, run_sd=0.0, item_sd=0.0, columns=2, rng=None, p_base=0.5):
    """Strata alternating over ``columns`` data sets (the strata of one data set share its items, each item with
    its own base rate and extra effect); each stratum's member arm gains ``effects[s]`` plus a shift per run."""
    from medbench.stratified import Stratum

    rng = rng or random.Random(0)
    rates = [[rng.uniform(p_base - 0.2, p_base + 0.2) for _ in range(n)] for _ in range(columns)]
    extra = [[rng.gauss(0, item_sd) for _ in range(n)] for _ in range(columns)]
    strata = []
    for s, effect in enumerate(effects):
        c = s % columns
        pairs = []
        for k in range(seeds):
            shift = rng.gauss(0, run_sd)
            base = [int(rng.random() < rates[c][i]) for i in range(n)]
            member = [int(rng.random() < rates[c][i] + effect + extra[c][i] + shift) for i in range(n)]
            pairs.append((cell(base, seed=k), cell(member, seed=k)))
        strata.append(Stratum(f"s{s}", f"data{c}", pairs))
    return strata


def test_the_pooled_estimate_is_the_mean_of_the_stratum_differences():
    """Every stratum weighs the same, whatever its items or seeds: a data set of 30 items counts as much as one of
    90, and a stratum's difference is the mean of its seeds' differences."""
    from medbench.stratified import Stratum, pool_strata

    rng = random.Random(3)

    def pair(n, p_member, seed):
        return (cell([int(rng.random() < 0.5) for _ in range(n)], seed=seed),
                cell([int(rng.random() < p_member) for _ in range(n)], seed=seed))

    strata = [Stratum("a", "small", [pair(30, 0.7, 1), pair(30, 0.6, 2)]),
              Stratum("b", "small", [pair(30, 0.5, 1)]),
              Stratum("c", "large", [pair(90, 0.4, 1), pair(90, 0.55, 2), pair(90, 0.5, 3)])]
    result = pool_strata(strata, {})
    by_hand = [sum(m.score - b.score for b, m in s.pairs) / len(s.pairs) for s in strata]
    assert [s["delta"] for s in result.strata] == pytest.approx(by_hand)
    assert [s["per_seed"] for s in result.strata][0] == pytest.approx([m.score - b.score for b, m in strata[0].pairs])
    assert result.comparison.delta == pytest.approx(sum(by_hand) / 3)
    assert result.comparison.n_paired == 120 and result.comparison.test == "stratified over 3 strata"
    assert result.comparison.ci_low < result.comparison.delta < result.comparison.ci_high


def test_a_common_effect_is_found_pooled_where_no_stratum_alone_is_significant():
    """A 6-point gain in each of 8 strata (4 models x 2 data sets, 2 seeds, 100 items): no stratum's own test,
    pooled over its seeds, reaches p < 0.05; the stratified test over all 8 does."""
    from medbench.stratified import pool_strata

    strata = strata_of([0.06] * 8, rng=random.Random(11))
    alone = [pooled_comparison([(b, m) for b, m in s.pairs], {}).p for s in strata]
    pooled = pool_strata(strata, {}).comparison
    assert min(alone) > 0.05
    assert pooled.p < 0.01 and pooled.direction == "better" and pooled.ci_low > 0


def _heterogeneity_p_values(effects, sims, **options):
    from medbench.stratified import pool_strata

    rng = random.Random(2024)
    return sorted(pool_strata(strata_of(effects, rng=rng, **options), {}, iters=200).heterogeneity.p
                  for _ in range(sims))


@pytest.mark.parametrize("run_sd", [0.0, 0.03], ids=["same runs", "runs that vary"])
def test_the_heterogeneity_test_is_calibrated_under_a_common_effect(run_sd):
    """H0 (the same 5-point effect in 4 strata; items with their own effects, shared within a data set, and a
    run-to-run shift): p-values about uniform, so seed noise is not read as an effect that differs by stratum."""
    p = _heterogeneity_p_values([0.05] * 4, 120, seeds=3, run_sd=run_sd, item_sd=0.1, n=150)
    uniform = [(i + 1) / len(p) for i in range(len(p))]
    assert max(abs(a - b) for a, b in zip(p, uniform)) < 0.15  # Kolmogorov-Smirnov distance
    assert sum(x < 0.05 for x in p) / len(p) <= 0.1 and 0.4 < sum(p) / len(p) < 0.62


def test_the_heterogeneity_test_finds_a_real_interaction():
    p = _heterogeneity_p_values([0.0, 0.15, 0.0, 0.15], 20, seeds=3, run_sd=0.02, item_sd=0.1, n=150)
    assert p[len(p) // 2] < 0.01


def test_heterogeneity_is_not_tested_on_one_seed_per_stratum():
    from medbench.stratified import pool_strata

    result = pool_strata(strata_of([0.0, 0.2], seeds=1), {})
    assert result.comparison.p is not None and result.heterogeneity.p is None
    assert "training-run noise cannot be told apart from heterogeneity" in result.heterogeneity.note


def test_the_chi_square_tail_matches_its_closed_forms():
    from medbench.stratified import chi2_sf

    assert chi2_sf(3.841458820694124, 1) == pytest.approx(0.05)
    assert chi2_sf(5.991464547107979, 2) == pytest.approx(0.05)
    assert chi2_sf(14.067140449340169, 7) == pytest.approx(0.05)
    assert chi2_sf(0.0, 3) == 1.0


def test_each_seed_difference_is_listed_and_their_mean_is_the_pooled_one():
    from medbench.sweep_report import pooled_over_seeds

    pairs = [arms(80, 0.5, 0.6, seed) for seed in range(3)]
    comparison, per_seed = pooled_over_seeds(pairs, {})
    assert per_seed == pytest.approx([m.score - b.score for b, m in pairs])
    assert sum(per_seed) / 3 == pytest.approx(comparison.delta)


POOLED_RECIPE = {"name": "r", "scales": {"toy": {"model": "m"}}, "grid": {"method": ["base", "sft"],
                                                                           "model": ["a", "b"], "seed": [1, 2]},
                 "cell": {"model": "{model}", "steps": [], "eval": {"tasks": ["medqa"]}}}


@pytest.mark.parametrize("pool_over, message", [
    ("model", r"pool_over: 'model' must list grid factors, each once"),
    ([], r"pool_over: \[\] must list grid factors"),
    (["model", "model"], r"must list grid factors, each once"),
    (["method"], r"comparison of method pools over method itself"),
    (["seed"], r"pool_over lists seed, which every pooled row pools over already"),
    (["modle"], r"pool_over names 'modle', which is not a grid factor"),
])
def test_recipe_pool_over_is_checked(tmp_path, pool_over, message):
    import yaml

    recipe = {**POOLED_RECIPE, "comparisons": [{"factor": "method", "baseline": "base", "pool_over": pool_over}]}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(MedbenchError, match=message) as error:
        read_recipe(path)
    assert "\n" not in str(error.value)


def test_pooling_strata_scored_on_different_metrics_stops_the_plan(tmp_path):
    import yaml

    from medbench.planning import plan

    recipe = {**POOLED_RECIPE, "grid": {"method": ["base", "sft"], "task": ["medqa", "uti"]},
              "cell": {"model": "m", "steps_by": "method", "eval": {"tasks": ["{task}"]},
                       "steps": {"base": [], "sft": [{"plugin": "sft", "task": "{task}"}]}},
              "comparisons": [{"factor": "method", "baseline": "base", "pool_over": ["task"]}]}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(MedbenchError, match=r"pools over task, whose strata are scored on different metrics "
                                            r"\(medqa: acc, uti: f1\)"):
        plan(read_recipe(path), out_dir=tmp_path / "s")
    recipe["comparisons"][0]["metrics"] = {"uti": "acc"}  # both on accuracy: one scale
    path.write_text(yaml.safe_dump(recipe))
    assert plan(read_recipe(path), out_dir=tmp_path / "s").comparisons[0].pool_over == ["task"]


def fake_sweep(tmp_path, monkeypatch, *, pool_over, seeds=(1, 2), effect=0.1, **planned):
    """A planned sweep over method x model x task x seed whose cells' scores are given, not trained: the report's
    rows and families without a model. ``planned``: more of the comparison's keys."""
    from types import SimpleNamespace

    from medbench import sweep_report
    from medbench.planning import PlannedComparison
    from medbench.sweep_report import Entry

    rng = random.Random(5)
    cells, by_cell, comparisons = [], {}, []
    for model in ("a", "b"):
        for task in ("t1", "t2"):
            rates = [rng.uniform(0.3, 0.7) for _ in range(60)]
            for seed in seeds:
                keys = {}
                for method, gain in (("base", 0.0), ("sft", effect)):
                    factors = {"method": method, "model": model, "task": task, "seed": seed}
                    key = f"{method}-{model}-{task}-{seed}"
                    keys[method] = key
                    cells.append(SimpleNamespace(key=key, label=key, factors=factors))
                    scored = cell([int(rng.random() < r + gain) for r in rates], seed=seed)
                    by_cell[key] = [Entry(task, task, key, factors, scored)]
                comparisons.append(PlannedComparison(keys["sft"], keys["base"], "method", "sft", "base", primary=True,
                                                     pool_over=list(pool_over), **planned))
    monkeypatch.setattr(sweep_report, "_entries", lambda sweep: (by_cell, {}))
    recipe = SimpleNamespace(name="r", study="", grid={"method": [], "model": [], "task": [], "seed": []})
    return SimpleNamespace(recipe=recipe, scale="toy", cells=cells, comparisons=comparisons, out_dir=tmp_path,
                           skipped=[], comparisons_left_out=[], leaderboard_dir=tmp_path)


def test_a_primary_comparison_pooled_over_factors_is_the_primary_family(tmp_path, monkeypatch):
    from medbench.sweep_report import study_report

    report = study_report(fake_sweep(tmp_path, monkeypatch, pool_over=["model", "task"]))
    rows = report["rows"]
    (pooled,) = [r for r in rows if r.get("pooled_over") and not r.get("heterogeneity")]
    (spread,) = [r for r in rows if r.get("heterogeneity")]
    assert pooled["family"] == "primary" and pooled["column"] == "t1+t2" and len(pooled["strata"]) == 4
    assert pooled["comparison"]["delta"] == pytest.approx(sum(s["delta"] for s in pooled["strata"]) / 4)
    assert pooled["comparison"]["p"] < 0.01 and pooled["comparison"]["q"] is not None
    assert spread["family"] == "secondary" and spread["comparison"]["test"].startswith("heterogeneity over 4 strata")
    assert all(r["family"] == "secondary" for r in rows if not r.get("pooled_over"))
    assert report["tests_by_family"] == {"primary": 1, "secondary": 8 + 4 + 1}  # per seed, per stratum, spread
    text = report["markdown"]
    primary = text.split("## Primary")[1].split("## Secondary")[0]
    assert "pooled over model × task (4 strata), seeds 1, 2" in primary and "heterogeneity" not in primary
    assert "seed-to-seed variance beyond item noise" in text and "per-stratum rows move to the secondary" in text
    assert "(per seed: " in text and "heterogeneity over 4 strata: model=a, task=t1 " in text


def test_without_pool_over_the_rows_pooled_over_seeds_stay_primary(tmp_path, monkeypatch):
    from medbench.sweep_report import study_report

    report = study_report(fake_sweep(tmp_path, monkeypatch, pool_over=[]))
    assert not any(r.get("pooled_over") or r.get("heterogeneity") for r in report["rows"])
    assert report["tests_by_family"] == {"primary": 4, "secondary": 8}
    assert "A row pooled over factors" not in report["markdown"]


def test_the_picture_draws_a_pooled_over_factors_row_but_no_heterogeneity_row(tmp_path, monkeypatch):
    from xml.etree import ElementTree

    from medbench.sweep_report import study_report

    study_report(fake_sweep(tmp_path, monkeypatch, pool_over=["model", "task"]))
    svg = ElementTree.fromstring((tmp_path / "report.svg").read_text())
    ns = "{http://www.w3.org/2000/svg}"
    titles = [c.findtext(f"{ns}title") or "" for c in svg.iter(f"{ns}circle")]
    assert len(titles) == 1 + 4  # the pooled answer, and each stratum pooled over its seeds
    assert any("pooled over model × task and 2 seeds" in t for t in titles)
    assert not any("heterogeneity" in t for t in titles)


def test_a_corpus_metric_is_pooled_over_strata_with_or_without_its_fast_form():
    """F1 has no per-item value: each stratum's difference is the metric's own, replicates recompute it (through
    the metric's declared fast form, or item by item where it declares none), with the same answer."""
    from medbench.metrics import Metric, metric_registry
    from medbench.stratified import Stratum, pool_strata

    def f1_cell(preds, seed):
        golds = [1, 0] * (len(preds) // 2)
        samples = [{"doc_id": i, "gold": g, "pred": p} for i, (g, p) in enumerate(zip(golds, preds))]
        return Cell(0.0, None, len(preds), "f1", f"r{seed}", samples=samples)

    rng = random.Random(4)
    strata = [Stratum(f"s{s}", f"data{s % 2}", [(f1_cell([rng.randint(0, 1) for _ in range(40)], k),
                                                 f1_cell([1, 0] * 20, k)) for k in range(2)]) for s in range(4)]
    registry = metric_registry()
    fast = pool_strata(strata, registry, iters=100)
    slow = pool_strata(strata, {"f1": Metric("f1", registry["f1"].fn)}, iters=100)
    f1 = registry["f1"].fn

    def preds(c):
        return [x["pred"] for x in c.samples]

    by_hand = [sum(f1([1, 0] * 20, preds(m)) - f1([1, 0] * 20, preds(b)) for b, m in s.pairs) / 2 for s in strata]
    assert fast.comparison.delta == pytest.approx(sum(by_hand) / 4) == pytest.approx(slow.comparison.delta)
    assert fast.comparison.p < 0.05 and slow.comparison.p < 0.05 and fast.comparison.ci_low > 0


def test_a_score_read_out_of_free_text_shows_how_many_items_were_answered():
    from types import SimpleNamespace

    from medbench.sweep_report import _score

    samples = [{"choices": ["no", "yes"], "response": "Answer: yes", "pred": 1},
               {"choices": ["no", "yes"], "response": "A: 1", "pred": None},
               {"choices": ["no", "yes"], "response": "no", "pred": 0}]
    generated = SimpleNamespace(score=0.5, ci_low=0.1, ci_high=0.9, samples=samples)
    assert _score(generated) == "0.500 [0.100, 0.900]; answered 2/3"
    scored_by_loglikelihood = SimpleNamespace(score=0.5, ci_low=None, ci_high=None, samples=[{"pred": 1}])
    assert _score(scored_by_loglikelihood) == "0.500"


def test_gail_simon_qualitative_interaction_p():
    """The test of an effect that changes sign between strata: Gail & Simon's critical value for two strata at
    alpha 0.05 is 2.71; one sign everywhere gives (2^k - 2) / 2^k; and with no effect anywhere (the boundary of its
    null) it rejects at no more than alpha."""
    import numpy as np

    from medbench.stratified import qualitative_interaction_p

    assert qualitative_interaction_p(np.array([1.645, -1.645]), np.ones(2)) == pytest.approx(0.05, abs=1e-3)
    assert qualitative_interaction_p(np.array([0.2, 0.3, 0.1, 0.4]), np.full(4, 0.01)) == pytest.approx(14 / 16)
    assert qualitative_interaction_p(np.array([0.05, -0.05, 0.04, -0.06]), np.full(4, 1e-4)) < 1e-6
    rng = np.random.default_rng(0)
    draws = [qualitative_interaction_p(rng.normal(0, 1, 6), np.ones(6)) for _ in range(4000)]
    assert np.mean(np.array(draws) <= 0.05) <= 0.06
