"""The four bundled recipes plan the arms their studies need (no model is loaded): a reviewer's checklist."""

from pathlib import Path

import pytest

from medbench.planning import plan
from medbench.recipe import read_recipe

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def planned(name, scale="toy", **overrides):
    return plan(read_recipe(RECIPES / f"{name}.yaml"), scale, Path("/nonexistent/sweep"), overrides)


def by_factors(sweep, **factors):
    found = [c for c in sweep.cells
             if any(all(str(f.get(k)) == str(v) for k, v in factors.items()) for f in (c.factors, *c.aliases))]
    assert len(found) == 1, (factors, [c.label for c in found])
    return found[0]


def compared(sweep):
    labels = {c.key: c for c in sweep.cells}
    return [(labels[c.cell], labels[c.baseline], c.factor) for c in sweep.comparisons]


@pytest.mark.parametrize("scale", ["toy", "full"])
def test_sft_vs_dpo_continues_dpo_from_the_sft_step_and_compares_dpo_with_sft(scale):
    sweep = planned("sft_vs_dpo", scale)
    for task in ("uti", "clinical_reasoning_open", "discharge_summary"):
        sft = by_factors(sweep, task=task, method="sft", seed=1)
        dpo = by_factors(sweep, task=task, method="dpo", seed=1)
        assert [s.plugin for s in dpo.steps] == ["sft", "dpo"]
        assert dpo.steps[0].key == sft.steps[0].key  # the very SFT step of the sft cell, trained once
        assert dpo.steps[1].model == "{prev}"  # DPO's input is that SFT checkpoint
        pairs = [(c.factors["method"], b.factors["method"]) for c, b, _ in compared(sweep)
                 if c.factors["task"] == task and c.factors["seed"] == 1]
        assert {("sft", "base"), ("dpo", "base"), ("dpo", "sft")} <= set(pairs)
    summary = by_factors(sweep, task="discharge_summary", method="dpo", seed=1)
    assert summary.steps[1].options["pairs"] == "sampled"
    assert summary.eval["judges"] == ["likert"] and summary.eval["judge_options"]["model"]
    if scale == "full":
        assert summary.eval["judge_options"]["model"] != summary.model  # the judge is not the model under test
        assert {c.factors["seed"] for c in sweep.cells} == {1, 2, 3}
        assert by_factors(sweep, task="uti", method="dpo_from_base", seed=1).steps[0].plugin == "dpo"


def test_rationale_model_is_scored_by_generation_and_label_model_both_ways():
    sweep = planned("rationale_sft")
    rationale = [c for c in sweep.cells if c.factors["condition"] == "rationale_sft"]
    assert rationale and all(c.eval["mode"] == "generate" for c in rationale)
    assert {c.eval["mode"] for c in sweep.cells if c.factors["condition"] == "label_sft"} == \
        {"loglikelihood", "generate"}
    pairs = {(c.factors["condition"], b.factors["condition"], c.factors.get("scoring")) for c, b, _ in compared(sweep)}
    assert ("rationale_sft", "label_sft", "generate") in pairs  # the headline, on the same reading
    assert ("demos_rationales", "demos_plain", "generate") in pairs  # rationales vs having examples at all
    plain = by_factors(sweep, condition="demos_plain", scoring="generate", examples=16, seed=1)
    with_rationales = by_factors(sweep, condition="demos_rationales", scoring="generate", examples=16, seed=1)
    assert plain.eval["num_fewshot"] == with_rationales.eval["num_fewshot"] == 3
    assert not plain.eval["fewshot_rationales"] and with_rationales.eval["fewshot_rationales"]


def test_rationale_full_scale_spans_sizes_models_and_seeds():
    sweep = planned("rationale_sft", "full")
    trained = [c for c in sweep.cells if c.steps]
    assert len({c.factors["examples"] for c in trained}) >= 3
    assert len({c.factors["model"] for c in trained}) >= 2
    assert len({c.factors["seed"] for c in trained}) >= 3


def test_curriculum_compares_each_ordering_with_random_in_its_difficulty_source_and_human_with_llm():
    sweep = planned("curriculum")
    random_cell = by_factors(sweep, task="medqa", ordering="random", difficulty="llm", seed=1)
    assert random_cell is by_factors(sweep, task="medqa", ordering="random", difficulty="human", seed=1)
    pairs = {(c.factors["ordering"], b.factors["ordering"], c.factors["difficulty"]) for c, b, f in compared(sweep)
             if f == "ordering" and c.factors["task"] == "medqa"}
    for ordering in ("blocked", "interleaved", "curriculum", "blocked_curriculum", "interleaved_curriculum"):
        assert any(p[0] == ordering and p[1] == "random" for p in pairs), ordering
    for difficulty in ("human", "llm"):
        assert ("curriculum", "random", difficulty) in pairs
    versus = {(c.factors["ordering"]) for c, b, f in compared(sweep) if f == "difficulty"}
    assert versus == {"curriculum", "blocked_curriculum", "interleaved_curriculum"}
    llm = by_factors(sweep, task="medqa", ordering="curriculum", difficulty="llm", seed=1)
    assert llm.steps[0].options["difficulty_models"] and llm.steps[0].options["base_options"]["lora_r"] == 16


def test_curriculum_skips_human_difficulty_cells_on_data_without_labels(tmp_path):
    data = tmp_path / "medqa_train.jsonl"
    rows = [{"question": f"Question {i} about a patient?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"},
             "answer_idx": "ABCD"[i % 4], "meta_info": "step1"} for i in range(20)]
    import json

    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = read_recipe(RECIPES / "curriculum.yaml")
    sweep = plan(recipe, "toy", tmp_path / "s", {}, {"medqa:train": str(data)})
    skipped = {s["cell"].split("ordering=")[1].split(",")[0] for s in sweep.skipped if "task=medqa" in s["cell"]}
    assert skipped == {"blocked", "interleaved", "curriculum", "blocked_curriculum", "interleaved_curriculum"}
    assert all("category" in s["reason"] or "difficulty" in s["reason"] for s in sweep.skipped)
    # With categories clustered from the questions, only the cells that need human difficulty labels are skipped.
    sweep = plan(recipe, "toy", tmp_path / "s", {"category_source": "llm_clusters"}, {"medqa:train": str(data)})
    skipped = [s["cell"] for s in sweep.skipped if "task=medqa" in s["cell"]]
    assert sorted(c.split("ordering=")[1].split(",")[0] for c in skipped) == \
        ["blocked_curriculum", "curriculum", "interleaved_curriculum"]
    assert all("difficulty=human" in c for c in skipped)
    kept = {(c.factors["ordering"], c.factors["difficulty"]) for c in sweep.cells if c.factors["task"] == "medqa"}
    assert ("random", "human") in kept and ("curriculum", "llm") in kept and ("blocked", "human") in kept


def test_merge_interpolates_two_full_models_and_has_full_fine_tuning_arms():
    sweep = planned("merge_retention")
    merge = by_factors(sweep, shots=64, arm="merge", seed=1)
    cpt, kshot, merged = merge.steps
    assert cpt.options["method"] == "full" and cpt.options["loss_on"] == "all"  # a clinical model, all weights
    assert kshot.options["max_examples"] == 64
    assert merged.plugin == "merge" and merged.model == merge.model  # merged with the instruct model itself
    assert merged.options["models"] == ["{prev}"] and merged.options["t"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert by_factors(sweep, shots=256, arm="merge", seed=1).steps[1].options["max_examples"] == 256
    full = by_factors(sweep, shots=64, arm="full_ft", seed=1)
    assert full.steps[0].options["method"] == "full" and full.steps[0].options["max_examples"] == 64
    assert merge.eval["chat_template"] is True
    assert {"instruction_following", "clinical_reasoning_open", "discharge_summary"} <= set(merge.eval["tasks"])
    pairs = {(c.factors["arm"], b.factors["arm"]) for c, b, f in compared(sweep) if f == "arm"}
    assert ("merge", "full_ft") in pairs and ("merge", "full_ft_all") in pairs
