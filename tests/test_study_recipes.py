"""The four bundled recipes plan the arms their studies need (no model is loaded): a reviewer's checklist."""

import itertools
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
        # Epochs are chosen on the task's validation split, for SFT (which DPO then starts from) and for DPO: a
        # fixed epoch count would decide dpo vs sft in advance (an under-trained SFT leaves room for DPO to fill).
        # And each step's sensitive knobs with its epochs (SFT's rate; DPO's rate and beta: in 8-20 steps an epoch
        # the rate, not beta, decides how far DPO moves, and a DPO that barely moves decides "dpo ~ sft"). Ties go
        # to the middle candidate: the least departure favours the null claims under DPO, the gain claims under SFT.
        grids = [{"learning_rate": [1.0e-4, 2.0e-4, 4.0e-4]},
                 {"learning_rate": [1.0e-5, 5.0e-5, 2.5e-4], "beta": [0.5, 0.1, 0.01]}] if scale == "full" \
            else [{"learning_rate": [2.0e-4]}, {"learning_rate": [5.0e-5], "beta": [0.1]}]
        for step, over in zip(dpo.steps, grids):
            # summaries are chosen on the judge they are compared on, not on ROUGE-L (thirteenth review)
            judged = {"metrics": {task: "judge:likert"}} if task == "discharge_summary" else {}
            assert step.select == {"split": "validation", "tasks": [task], "ties": "middle", "over": over, **judged}
            assert step.options["save_every_epoch"] is True and step.options["num_epochs"] >= 2
            assert not set(over) & set(step.options)  # no fixed value for a reader to mistake for the one used
            assert [{k: v.options[k] for k in over} for v in step.variants] == \
                [dict(zip(over, values)) for values in itertools.product(*over.values())]
        assert dpo.steps[0].options["num_epochs"] > dpo.steps[1].options["num_epochs"] or scale == "toy"
        pairs = [(c.factors["method"], b.factors["method"]) for c, b, _ in compared(sweep)
                 if c.factors["task"] == task and c.factors["seed"] == 1]
        assert {("sft", "base"), ("dpo", "base"), ("dpo", "sft")} <= set(pairs)
    # The primary family: dpo vs sft on the six study tasks (6 tests); the study's null claims
    # (uti, hyponatremia) also as equivalence within 0.05, the gain claims as differences only; and the seed's
    # hyponatremia claim against base ("neither SFT nor DPO improved the base model"): sft and dpo vs base, 0.05.
    labels = {c.key: c for c in sweep.cells}
    primary = {(labels[p.cell].factors["method"], labels[p.cell].factors["task"],
                labels[p.baseline].factors["method"], p.margin)
               for p in sweep.comparisons if p.primary and labels[p.cell].factors["seed"] == 1}
    study_tasks = ["uti", "hyponatremia", "clinical_reasoning_open", "triage_personnel", "triage_urgency",
                   "discharge_summary"]
    assert primary == {("dpo", task, baseline, 0.05 if task in ("uti", "hyponatremia") else None)
                       for task in study_tasks for baseline in ("sft",)} | \
        {("sft", "hyponatremia", "base", 0.05), ("dpo", "hyponatremia", "base", 0.05)}
    # hyponatremia vs base is planned once, as the primary reading (not also as a secondary difference)
    versus_base = [p for p in sweep.comparisons if labels[p.cell].factors["task"] == "hyponatremia"
                   and labels[p.baseline].factors["method"] == "base" and p.level in ("sft", "dpo")]
    assert versus_base and all(p.primary and p.margin == 0.05 for p in versus_base)
    summary = by_factors(sweep, task="discharge_summary", method="dpo", seed=1)
    assert summary.steps[1].options["pairs"] == "sampled"
    assert summary.eval["judges"] == ["likert"] and summary.eval["judge_options"]["model"]
    if scale == "full":
        assert summary.model == "meta-llama/Meta-Llama-3-8B-Instruct"  # the seed's Llama 3
        assert summary.eval["judge_options"]["model"] != summary.model  # the judge is not the model under test
        assert {c.factors["seed"] for c in sweep.cells} == {1, 2, 3, 4, 5}  # run variance needs df
        assert by_factors(sweep, task="uti", method="dpo_from_base", seed=1).steps[0].plugin == "dpo"


def test_rationale_model_is_scored_by_generation_and_label_model_both_ways():
    sweep = planned("rationale_sft")
    rationale = [c for c in sweep.cells if c.factors["condition"] == "rationale_sft"]
    assert rationale and all(c.eval["mode"] == "generate" for c in rationale)
    assert {c.eval["mode"] for c in sweep.cells if c.factors["condition"] == "label_sft"} == \
        {"loglikelihood", "generate"}
    pairs = {(c.factors["condition"], b.factors["condition"], c.factors.get("scoring")) for c, b, _ in compared(sweep)}
    assert ("rationale_sft", "label_sft", "generate") in pairs  # the headline, on the same reading
    # Each SFT arm's epochs are chosen on validation macro-F1 read by generation, so label_sft's two readings share
    # one step and one choice (generate vs log-likelihood compares one model) and neither target's count is fixed.
    for condition in ("label_sft", "rationale_sft"):
        trained = [c for c in sweep.cells if c.factors["condition"] == condition]
        for cell in trained:
            select = cell.steps[0].select
            assert select["metrics"] == {"adrd_prediction": "macro_f1"} and select["scoring"]["mode"] == "generate"
            assert cell.steps[0].options["save_every_epoch"] is True and select["over"] == {"learning_rate": [2.0e-4]}
        by_rows = {}
        for cell in trained:
            by_rows.setdefault((cell.factors["model"], cell.factors["examples"], cell.factors["train_rows"],
                                cell.factors["seed"]), set()).add(cell.steps[0].key)
        assert all(len(keys) == 1 for keys in by_rows.values())
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
    # both arms choose their rate from the same three, with the epoch: one rate would suit one target's length
    for cell in trained:
        assert cell.steps[0].select["over"] == {"learning_rate": [1.0e-4, 2.0e-4, 4.0e-4]}
        assert "learning_rate" not in cell.steps[0].options and len(cell.steps[0].variants) == 3


def test_rationale_reasoning_model_gets_room_to_think_in_generate_mode_only():
    sweep = planned("rationale_sft", "full")
    reasoning = [c for c in sweep.cells if "R1-Distill" in c.factors["model"]]
    assert reasoning
    for cell in sweep.cells:
        kwargs = cell.eval.get("gen_kwargs") or {}
        if cell in reasoning and cell.eval["mode"] == "generate":
            # medbench.scoring's default ("\n\n" stop, 320 tokens) would cut its <think> block short
            assert kwargs["max_gen_toks"] >= 2048 and "\n\n" not in kwargs["until"]
            assert kwargs["until"] == ["Longitudinal health history:"]
        elif cell.eval["mode"] == "generate":  # the other models: the task's stop and decoding, room for a rationale
            assert kwargs == {"max_gen_toks": 512}, cell.label
        else:  # log-likelihood cells generate nothing
            assert kwargs == {}, cell.label


@pytest.mark.parametrize("scale", ["toy", "full"])
def test_rationale_sensitivity_arm_trains_both_sft_arms_on_concordant_rows(scale):
    sweep = planned("rationale_sft", scale)
    sizes = sorted({c.factors["examples"] for c in sweep.cells if c.steps})
    writers = ["clinician", "heuristic"] if scale == "full" else ["clinician"]
    for cell in sweep.cells:
        if cell.steps:
            exclude = cell.steps[0].options["exclude_difficulty"]
            assert exclude == (["hard"] if cell.factors["train_rows"] == "concordant" else None)
            assert cell.steps[0].seed == cell.seed and cell.steps[0].options["max_examples"] == cell.factors["examples"]
    assert not sweep.skipped
    seed = 1
    for rows in ("all", "concordant"):
        for size in sizes:
            if rows == "concordant" and size > 152:  # the 152 concordant train rows cannot give 200
                assert not [c for c in sweep.cells if c.steps and c.factors["train_rows"] == rows
                            and c.factors["examples"] == size]
                continue
            for writer in writers:
                label = by_factors(sweep, condition="label_sft", scoring="generate", examples=size,
                                   train_rows=rows, seed=seed, model=sweep.cells[0].factors["model"], writer=writer)
                rationale = by_factors(sweep, condition="rationale_sft", scoring="generate", examples=size,
                                       train_rows=rows, seed=seed, model=sweep.cells[0].factors["model"],
                                       writer=writer)
                # the same rows for both arms: same task, seed, size and filter
                same = ("max_examples", "exclude_difficulty")
                assert {k: label.steps[0].options[k] for k in same} == \
                    {k: rationale.steps[0].options[k] for k in same}
    pairs = {(c.factors["condition"], c.factors["train_rows"], b.factors["train_rows"], f)
             for c, b, f in compared(sweep)}
    for arm in ("label_sft", "rationale_sft"):
        assert (arm, "concordant", "all", "train_rows") in pairs
    assert ("rationale_sft", "concordant", "concordant", "condition") in pairs  # the headline, within the arm
    base = by_factors(sweep, condition="base", scoring="generate", examples=sizes[0], train_rows="all", seed=seed,
                      model=sweep.cells[0].factors["model"])
    assert base is by_factors(sweep, condition="base", scoring="generate", examples=sizes[0], train_rows="concordant",
                              seed=seed, model=sweep.cells[0].factors["model"])  # untrained: planned once


def test_rationale_writer_is_a_factor_read_on_the_clinician_and_planned_once_where_no_rationale_is_read():
    """Rationale quality (the reviewer's confound): the clinician writer is primary, the heuristic one secondary;
    conditions that read no rationale are one cell for both writers, the two that do are one cell per writer."""
    sweep = planned("rationale_sft", "full")
    model, fields = sweep.cells[0].factors["model"], {"clinician": "rationale_clinician", "heuristic": "rationale"}
    for condition in ("base", "label_sft", "demos_plain"):
        cells = [c for c in sweep.cells if c.factors["condition"] == condition]
        assert cells and all({f["writer"] for f in (c.factors, *c.aliases)} == set(fields) for c in cells)
        assert all("writer=any" in c.label for c in cells)
    steps = {}
    for writer, field in fields.items():
        sft = by_factors(sweep, condition="rationale_sft", writer=writer, scoring="generate", examples=50,
                         train_rows="all", seed=1, model=model)
        assert sft.steps[0].options["target"] == "rationale" and sft.steps[0].options["rationale_field"] == field
        steps[writer] = sft.steps[0].key
        demos = by_factors(sweep, condition="demos_rationales", writer=writer, scoring="generate", seed=1,
                           model=model)
        assert demos.eval["fewshot_rationales"] == field and demos.eval["num_fewshot"] == 3
    assert steps["clinician"] != steps["heuristic"]  # two writers never share a trained step
    label = {c.key: c for c in sweep.cells}
    primary = [p for p in sweep.comparisons if p.primary]
    assert primary and {label[p.cell].factors["writer"] for p in primary} == {"clinician"}
    secondary = {(label[p.cell].factors["condition"], label[p.baseline].factors["condition"])
                 for p in sweep.comparisons if not p.primary and label[p.cell].factors["writer"] == "heuristic"}
    assert {("rationale_sft", "label_sft"), ("demos_rationales", "demos_plain")} <= secondary
    by_writer = {(label[p.cell].factors["condition"], label[p.cell].factors["writer"],
                  label[p.baseline].factors["writer"]) for p in sweep.comparisons if p.factor == "writer"}
    assert by_writer == {("rationale_sft", "heuristic", "clinician"), ("demos_rationales", "heuristic", "clinician")}
    assert {c.factors["writer"] for c in planned("rationale_sft").cells} == {"clinician"}  # toy: the primary writer


def test_curriculum_compares_each_ordering_with_random_in_its_difficulty_source_and_human_with_llm():
    sweep = planned("curriculum")
    random_cell = by_factors(sweep, task="medqa", ordering="random", difficulty="llm", seed=1)
    assert random_cell is by_factors(sweep, task="medqa", ordering="random", difficulty="human", seed=1)
    assert random_cell.factors["difficulty"] == "none"  # it uses no difficulty, and stands for every level
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
    sweep = plan(recipe, "toy", tmp_path / "s", {"medqa_categories": "task"}, {"medqa:train": str(data)})
    skipped = {s["cell"].split("ordering=")[1].split(",")[0] for s in sweep.skipped if "task=medqa" in s["cell"]}
    assert skipped == {"blocked", "interleaved", "curriculum", "blocked_curriculum", "interleaved_curriculum"}
    assert all("category" in s["reason"] or "difficulty" in s["reason"] for s in sweep.skipped)
    # With categories clustered from the questions (the recipe's default for MedQA), only the cells that need
    # human difficulty labels are skipped.
    sweep = plan(recipe, "toy", tmp_path / "s", {}, {"medqa:train": str(data)})
    skipped = [s["cell"] for s in sweep.skipped if "task=medqa" in s["cell"]]
    assert sorted(c.split("ordering=")[1].split(",")[0] for c in skipped) == \
        ["blocked_curriculum", "curriculum", "interleaved_curriculum"]
    assert all("difficulty=human" in c for c in skipped)
    kept = {(c.factors["ordering"], c.factors["difficulty"]) for c in sweep.cells if c.factors["task"] == "medqa"}
    assert ("random", "none") in kept and ("curriculum", "llm") in kept and ("blocked", "none") in kept
    # The comparisons those skipped cells take with them are listed, never silently dropped: the human-label
    # curriculum vs random question goes unanswered on this data, and the plan says so.
    gone = [line for line in sweep.comparisons_left_out if "task=medqa" in line and "difficulty=human" in line]
    assert gone and all("the compared cell was skipped at plan time" in line for line in gone)
    assert any(line.startswith("ordering=curriculum vs random") for line in gone)


def real_test_files(tmp_path):
    """Stand-ins for the real MedQA/MedMCQA test sets (user files, not the bundled samples)."""
    tasks = RECIPES.parent / "tasks"
    files = {}
    for task, name in (("medqa", "test.jsonl"), ("medmcqa", "test.json")):
        path = tmp_path / f"{task}_{name}"
        path.write_text((tasks / task / "data" / name).read_text())
        files[f"{task}:test"] = str(path)
    return files


def test_merge_full_scale_refuses_the_bundled_medqa_and_medmcqa_samples():
    from medbench.errors import MedbenchError

    with pytest.raises(MedbenchError, match=r"empty grid.*medqa would be scored on its bundled sample"):
        planned("merge_retention", "full")


@pytest.mark.parametrize("scale", ["toy", "full"])
def test_merge_interpolates_a_clinical_model_and_picks_t_on_validation(scale, tmp_path):
    sweep = planned("merge_retention", scale) if scale == "toy" else \
        plan(read_recipe(RECIPES / "merge_retention.yaml"), scale, Path("/nonexistent/sweep"), {},
             real_test_files(tmp_path))
    merge = by_factors(sweep, shots=64, arm="merge", merge_method="linear", seed=1)
    cpt, kshot, merged = merge.steps
    # The clinical model is continued-trained from the base model, on notes of a task that is not scored.
    assert cpt.model == sweep.variables["base_model"] and cpt.task not in merge.eval["tasks"]
    assert cpt.options["method"] == "full" and cpt.options["loss_on"] == "all"
    if scale == "full":  # a public clinical model continued-pretrained from the instruct model's own base
        assert cpt.model == "meta-llama/Meta-Llama-3-8B" and merge.model == "meta-llama/Meta-Llama-3-8B-Instruct"
        assert sweep.variables["clinical_model"] == "Henrychur/MMed-Llama-3-8B"
    given = by_factors(sweep, shots=64, arm="merge_given", merge_method="linear", seed=1)
    given_kshot, given_merge = given.steps  # the study's arm: the named clinical model, tuned on the k shots
    assert given_kshot.model == sweep.variables["clinical_model"] and given_kshot.options == kshot.options
    assert given_merge.model == merge.model and given_merge.options["models"] == ["{prev}"]
    assert kshot.options["max_examples"] == 64 and kshot.options["method"] == "lora"
    assert merged.plugin == "merge" and merged.model == merge.model  # merged with the instruct model itself
    assert merged.options["models"] == ["{prev}"] and merged.options["method"] == "linear"
    assert merge.checkpoints == [f"linear-t{t:g}" for t in sweep.variables["t_grid"]]
    slerp = by_factors(sweep, shots=64, arm="merge", merge_method="slerp", seed=1)
    assert slerp.steps[2].options["method"] == "slerp" and slerp.steps[1].key == kshot.key  # one k-shot run
    assert by_factors(sweep, shots=256, arm="merge", merge_method="linear", seed=1).steps[1].options["max_examples"] \
        == 256
    full = by_factors(sweep, shots=64, arm="full_ft", merge_method="linear", seed=1)
    assert full is by_factors(sweep, shots=64, arm="full_ft", merge_method="slerp", seed=1)  # planned once
    assert full.steps[0].options["method"] == "full" and full.steps[0].options["max_examples"] == 64
    assert full.steps[0].options["num_epochs"] == kshot.options["num_epochs"]  # the same optimizer steps
    # Each primary arm's training step chooses its rate with its epoch on the task it trains (full_ft's full
    # fine-tuning rate; the merge arm's LoRA rate, before the merge chooses t), ties to the middle candidate (the
    # least-trained one leans retention one way or the other): a fine-tune tuned for its task, not toward retention.
    epochs = {"split": "validation", "tasks": ["clinical_reasoning"], "ties": "middle"}
    full_rates = [1.0e-5, 2.0e-5, 5.0e-5] if scale == "full" else [2.0e-5]
    lora_rates = [1.0e-4, 2.0e-4, 4.0e-4] if scale == "full" else [2.0e-4]
    lora_ft = by_factors(sweep, shots=64, arm="lora_ft", merge_method="linear", seed=1).steps[0]
    for step, rates in ((full.steps[0], full_rates), (kshot, lora_rates), (given_kshot, lora_rates),
                        (lora_ft, lora_rates)):
        assert step.select == {**epochs, "over": {"learning_rate": rates}} and rates == sorted(rates)
        assert [v.options["learning_rate"] for v in step.variants] == rates
        assert "learning_rate" not in step.options  # no fixed rate for a reader to mistake for the one used
    assert lora_ft.options == kshot.options and lora_ft.model == merge.model  # the merge arm's settings, from instruct
    full_all = by_factors(sweep, shots=64, arm="full_ft_all", merge_method="linear", seed=1)
    assert full_all.steps[0].select == epochs and full_all.steps[0].options["learning_rate"] == 2.0e-5
    if scale == "full":  # the runs the header counts: 5 CPT + 3 rates x 2 shots x 5 seeds x (2 merge arms, lora_ft,
        # full_ft) + 5 full_ft_all
        trained = {v.key for c in sweep.cells for s in c.steps if s.plugin == "sft" for v in (s.variants or [s])}
        merges = {s.key for c in sweep.cells for s in c.steps if s.plugin == "merge"}
        assert len(sweep.cells) == 70 and len(trained) == 130 and len(merges) * len(sweep.variables["t_grid"]) == 200
    instruct = by_factors(sweep, shots=256, arm="instruct", merge_method="slerp", seed=1)
    assert instruct.steps == [] and instruct.label == "shots=any,arm=instruct,merge_method=any,seed=1"
    assert merge.eval["chat_template"] is True
    assert {"instruction_following", "clinical_reasoning_open", "discharge_summary", "medqa", "medmcqa"} <= \
        set(merge.eval["tasks"])
    arms = [(c.factors["arm"], b.factors["arm"], p) for c, b, _ in compared(sweep)
            for p in sweep.comparisons if (p.cell, p.baseline) == (c.key, b.key)]
    primary = {(c, b) for c, b, p in arms if p.primary}
    assert primary == {("merge_given", "full_ft"), ("merge_given", "instruct"), ("full_ft", "instruct")}
    # Every reading is one-sided or a difference test: a merge better than full_ft is "on par" too. "On par" is
    # read on the task the shots train (both forms); the others are carried over (secondary).
    trained = ("clinical_reasoning", "clinical_reasoning_open")
    clinical = ["clinical_reasoning", "clinical_reasoning_open", "discharge_summary", "medqa", "medmcqa"]
    readings = {(c, b, tuple(p.tasks), p.margin, p.noninferiority) for c, b, p in arms if p.primary}
    assert readings == {("merge_given", "full_ft", trained, None, 0.05),
                        ("merge_given", "full_ft", ("instruction_following",), None, 0.05),
                        ("merge_given", "instruct", ("instruction_following",), None, 0.05),
                        ("merge_given", "instruct", tuple(clinical), None, None),
                        ("full_ft", "instruct", ("clinical_reasoning",), None, None)}  # assay sensitivity
    assert not [p for _, _, p in arms if p.margin]  # no two-sided equivalence anywhere
    # the negative control: the untouched instruct model put through "on par"; it must fail (secondary). On the MC
    # form only: the letter shots teach nothing of the open form, where the instruct model is expected to pass.
    assert {(c, b, tuple(p.tasks), p.noninferiority) for c, b, p in arms if c == "instruct"} == \
        {("instruct", "full_ft", ("clinical_reasoning",), 0.05)}
    # one answer per shot count, over both merge methods (the per-method rows secondary)
    assert all(p.pool_over == ["merge_method"] for c, _, p in arms if p.primary and c == "merge_given")
    # summaries by key-fact coverage, the same system prompt for every arm (no preamble cut by the "\n\n" stop)
    assert all(p.metrics == {"discharge_summary": "coverage"} for _, _, p in arms if "discharge_summary" in p.tasks
               and len(p.tasks) > 1)
    assert "introduction" in merge.eval["system_prompt"] and given.eval == merge.eval
    assert ("merge_given", "merge") in {(c, b) for c, b, p in arms if not p.primary}  # what pretraining adds
    # The study's answer is the checkpoint chosen on validation, never an endpoint (t 0 is the instruct model
    # itself: "kept" by construction); the curve (every t) is never primary.
    assert all(p.select == {"split": "validation", "tasks": ["clinical_reasoning", "instruction_following"],
                            "exclude": {"t": [0.0, 1.0]}, "ties": "middle"} for c, _, p in arms
               if p.primary and c == "merge_given")
    assert merge.eval.get("require_real_data") is None  # a plan-time check, not part of the scoring
    assert cpt.options["chat_template"] is True  # full CPT trains the chat tokens the k-shot LoRA step reads
    assert {(c, b) for c, b, p in arms if not p.primary and p.select is None} >= \
        {("merge_given", "full_ft"), ("merge_given", "instruct"), ("merge", "full_ft"), ("full_ft", "instruct")}
    assert merge.selections and not instruct.selections  # the untrained model has one checkpoint: nothing to pick


def test_merge_then_tune_is_the_other_order_planned_on_request(tmp_path):
    arms = ["instruct", "merge_given", "full_ft", "merge_then_tune"]
    sweep = plan(read_recipe(RECIPES / "merge_retention.yaml"), "full", Path("/nonexistent/sweep"), {"arms": arms},
                 real_test_files(tmp_path))
    other = by_factors(sweep, shots=64, arm="merge_then_tune", merge_method="slerp", seed=1)
    given = by_factors(sweep, shots=64, arm="merge_given", merge_method="slerp", seed=1)
    merged, kshot = other.steps
    assert merged.plugin == "merge" and merged.options["models"] == [sweep.variables["clinical_model"]]
    assert merged.options["t"] == [0.5] and merged.options["method"] == "slerp"
    assert kshot.plugin == "sft" and kshot.model == "{prev}" and kshot.options == given.steps[0].options
    baselines = {sweep.cells[[c.key for c in sweep.cells].index(p.baseline)].factors["arm"]
                 for p in sweep.comparisons if p.cell == other.key}
    assert baselines == {"full_ft", "instruct"} and not any(p.primary for p in sweep.comparisons
                                                            if other.key in (p.cell, p.baseline))


def test_curriculum_constant_lr_control_is_a_schedule_level_planned_on_request():
    default = planned("curriculum")
    assert {c.factors["schedule"] for c in default.cells} == {"linear"}
    sweep = planned("curriculum", schedules=["linear", "constant"])
    assert {c.factors["schedule"] for c in sweep.cells} == {"linear", "constant"}
    assert len(sweep.cells) == 2 * len(default.cells)
    flat = by_factors(sweep, task="medqa", ordering="curriculum", difficulty="llm", schedule="constant", seed=1)
    assert flat.steps[0].options["base_options"]["lr_scheduler_type"] == "constant"
    labels = {c.key: c for c in sweep.cells}
    primary = {labels[p.cell].factors["schedule"] for p in sweep.comparisons if p.primary}
    assert primary == {"linear"}  # the study's schedule; the control is secondary
    assert any(p.factor == "schedule" and not p.primary for p in sweep.comparisons)
