"""Curriculum orderings on a hand-made fixture, the wrapping trainer, and `medbench difficulty`."""

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from medbench import hookimpl
from medbench.errors import MedbenchError
from medbench.testing import make_tiny_model
from medbench.training import CheckpointInfo, TrainRequest
from medbench.trainingdata import TrainingExample, examples_hash
from medbench_plugins.curriculum import CurriculumConfig, CurriculumTrainer
from medbench_plugins.curriculum.labels import example_key
from medbench_plugins.curriculum.orderings import (ORDERINGS, category_order, order_examples, seeded_order,
                                                    tier_of)

# (name, category, difficulty) in data order. Categories first appear as cardio, neuro, renal.
FIXTURE = [
    ("c1", "cardio", "hard"), ("n1", "neuro", "easy"), ("c2", "cardio", "easy"), ("r1", "renal", "medium"),
    ("n2", "neuro", "hard"), ("c3", "cardio", "medium"), ("c4", "cardio", "easy"), ("n3", "neuro", "medium"),
    ("r2", "renal", "easy"), ("n4", "neuro", "Easy"),  # labels are case-insensitive
]


def fixture_examples():
    return [TrainingExample(doc_id=i, prompt=name, completion=" A", rejected=[" B"], answer="A", category=category,
                            difficulty=difficulty, doc={"subject": category.upper(), "level": difficulty})
            for i, (name, category, difficulty) in enumerate(FIXTURE)]


def names(examples):
    return " ".join(e.prompt for e in examples)


def layout(examples, pattern):
    """Each example's group in the form ``pattern`` uses: c/n/r (category), E/M/H (tier) or both (cE)."""
    token = pattern.split()[0]
    return " ".join((e.category[0] if token[0].islower() else "") + (e.difficulty[0].upper() if token[-1].isupper()
                                                                     else "") for e in examples)


FIXTURE_TIERS = {"c": "EEMH", "n": "EEMH", "r": "EM"}  # each category's tiers, easy to hard


def expected_layout(ordering, order):
    """The layout of ``ordering`` when the seed lays the categories out in ``order`` (letters c, n, r): the
    patterns below are this for the order cardio, neuro, renal."""
    tiers = {c: FIXTURE_TIERS[c] for c in order}
    if ordering == "blocked":
        return " ".join(c for c in order for _ in tiers[c])
    if ordering == "interleaved":  # three parts per category, the larger first
        parts = {c: [len(tiers[c]) // 3 + (i < len(tiers[c]) % 3) for i in range(3)] for c in order}
        return " ".join(c for i in range(3) for c in order for _ in range(parts[c][i]))
    if ordering == "blocked_curriculum":
        return " ".join(c + t for c in order for t in tiers[c])
    if ordering == "interleaved_curriculum":
        return " ".join(c + t for level in "EMH" for c in order for t in tiers[c] if t == level)
    return "E E E E E M M M H H"  # curriculum: no categories


@pytest.mark.parametrize("ordering, pattern", [
    # cardio, neuro, renal blocks (for a seed that lays the categories out in that order; expected_layout)
    ("blocked", "c c c c n n n n r r"),
    # parts: cardio's four [2] [1] [1], neuro's [2] [1] [1], renal's two [1] [1] []; part i of each in turn
    ("interleaved", "c c n n r c n r c n"),
    ("curriculum", "E E E E E M M M H H"),
    # each block easy to hard
    ("blocked_curriculum", "cE cE cM cH nE nE nM nH rE rM"),
    # easy of cardio, neuro, renal; then medium of each; then hard of each
    ("interleaved_curriculum", "cE cE nE nE rE cM nM rM cH nH"),
])
def test_each_ordering_lays_out_its_groups_and_shuffles_inside_them_by_seed(ordering, pattern):
    assert expected_layout(ordering, "cnr") == pattern
    orders, category_orders = set(), set()
    for seed in range(6):
        ordered = order_examples(fixture_examples(), ordering, seed)
        order = "".join(c[0] for c in category_order(fixture_examples(), seed))
        category_orders.add(order)
        assert layout(ordered, pattern) == expected_layout(ordering, order)  # the groups, in the seed's order
        assert names(order_examples(fixture_examples(), ordering, seed)) == names(ordered)  # the seed repeats
        position = {e.prompt: i for i, e in enumerate(seeded_order(fixture_examples(), seed))}
        groups = {}
        for example in ordered:  # inside a (category, tier) group: the seed's order
            groups.setdefault((example.category, example.difficulty.lower()), []).append(position[example.prompt])
        assert all(group == sorted(group) for group in groups.values())
        orders.add(names(ordered))
    assert len(orders) > 1  # other seeds, other orders inside the groups
    assert len(category_orders) > 1  # and other orders of the categories (the same subject is not always last)


def test_a_seeds_order_is_the_same_in_another_process():
    import subprocess
    import sys

    from medbench.trainingdata import load_training_examples

    code = ("from medbench.trainingdata import load_training_examples; "
            "from medbench_plugins.curriculum.orderings import order_examples; "
            "print([e.doc_id for e in order_examples(load_training_examples('medqa'), 'interleaved_curriculum', 5)])")
    env = {**os.environ, "PYTHONHASHSEED": "4321", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    here = [e.doc_id for e in order_examples(load_training_examples("medqa"), "interleaved_curriculum", 5)]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == here
    assert here != [e.doc_id for e in order_examples(load_training_examples("medqa"), "interleaved_curriculum", 6)]


def test_random_is_a_seeded_shuffle():
    examples = fixture_examples()
    first = order_examples(examples, "random", seed=7)
    assert names(first) == names(order_examples(examples, "random", seed=7))
    assert names(first) != names(order_examples(examples, "random", seed=8))
    assert sorted(names(first).split()) == sorted(names(examples).split()) and names(first) != names(examples)


def test_orderings_name_what_is_missing():
    examples = fixture_examples()
    examples[3].category = None
    with pytest.raises(MedbenchError, match="training example 3 has no category"):
        order_examples(examples, "blocked", seed=0)
    examples[3].difficulty = "tricky"
    with pytest.raises(MedbenchError, match="training example 3 has difficulty 'tricky'.*medbench difficulty"):
        order_examples(examples, "curriculum", seed=0)
    with pytest.raises(MedbenchError, match="unknown ordering 'spiral'"):
        order_examples(examples, "spiral", seed=0)


def test_tiers_follow_the_thresholds():
    assert [tier_of(s) for s in (0.0, 0.66, 0.661, 0.8, 0.81, 1.0)] == ["easy", "easy", "medium", "medium", "hard",
                                                                         "hard"]
    assert tier_of(0.5, easy_max=0.4, medium_max=0.6) == "medium"


@dataclass
class RecordingConfig:
    learning_rate: float = 0.1
    steps: int = 1


@dataclass
class RecordingTrainer:
    """Keeps the request it was given and returns one checkpoint, like a real trainer would."""

    name: str = "recording"
    description: str = "test trainer"
    config_class: type = RecordingConfig
    requests: list = field(default_factory=list)

    def train(self, request):
        self.requests.append(request)
        path = Path(request.output_dir) / "final"
        if Path(request.model_ref).is_dir():  # a real starting model: save it unchanged, so it can be scored
            shutil.copytree(request.model_ref, path)
        return [CheckpointInfo(path=path, kind="model", final=True, metrics={"loss": 0.5})]


@pytest.fixture
def recording(plugin_registration):
    trainer = RecordingTrainer()

    class Plugin:
        @hookimpl
        def register_trainers(self, register):
            register(trainer)

    plugin_registration(Plugin(), "recording-plugin")
    return trainer


def curriculum_request(tmp_path, examples=None, **config):
    return TrainRequest(model_ref="tiny", task="medqa", output_dir=tmp_path, config=CurriculumConfig(**config),
                        seed=3, examples=examples)


def test_wraps_the_base_trainer_with_the_ordered_examples(tmp_path, recording):
    base_yaml = tmp_path / "base.yaml"
    base_yaml.write_text("learning-rate: 0.5\nsteps: 4\n")
    request = curriculum_request(tmp_path, fixture_examples(), base="recording", ordering="interleaved_curriculum",
                                 base_config=str(base_yaml))
    (checkpoint,) = CurriculumTrainer().train(request)
    (seen,) = recording.requests
    assert names(seen.examples) == names(order_examples(fixture_examples(), "interleaved_curriculum", 3))
    assert seen.keep_order is True
    assert seen.config == RecordingConfig(learning_rate=0.5, steps=4)
    assert (seen.model_ref, seen.task, seen.seed) == ("tiny", "medqa", 3)
    assert checkpoint.metrics == {"loss": 0.5, "ordering": "interleaved_curriculum", "base_trainer": "recording",
                                  "difficulty_tiers": {"easy": 5, "medium": 3, "hard": 2}}  # logged and recorded
    assert checkpoint.trainer_config == {"learning_rate": 0.5, "steps": 4}
    assert checkpoint.data_hash == examples_hash(seen.examples)


def test_fields_override_the_task_metadata(tmp_path, recording):
    request = curriculum_request(tmp_path, fixture_examples(), base="recording", ordering="blocked_curriculum",
                                 category_field="subject", difficulty_field="level")
    CurriculumTrainer().train(request)
    (seen,) = recording.requests
    # the field's values are the categories (so the seed's category order is that of CARDIO, NEURO, RENAL)
    relabelled = [dataclasses.replace(e, category=e.doc["subject"]) for e in fixture_examples()]
    assert names(seen.examples) == names(order_examples(relabelled, "blocked_curriculum", 3))
    assert {e.category for e in seen.examples} == {"CARDIO", "NEURO", "RENAL"}
    with pytest.raises(MedbenchError, match="no field 'subject_name'.*fields are: level, subject"):
        CurriculumTrainer().train(curriculum_request(tmp_path, fixture_examples(), base="recording",
                                                     ordering="blocked", category_field="subject_name"))


def test_a_difficulty_file_replaces_the_labels(tmp_path, recording):
    examples = fixture_examples()
    # Reverse the human labels: the file's tiers win.
    flipped = {"easy": "hard", "medium": "medium", "hard": "easy"}
    path = tmp_path / "difficulty.jsonl"
    path.write_text("".join(json.dumps({"key": example_key(e), "tier": flipped[e.difficulty.lower()]}) + "\n"
                            for e in examples))
    CurriculumTrainer().train(curriculum_request(tmp_path, examples, base="recording", ordering="curriculum",
                                                 difficulty_file=str(path)))
    by_tier = [set(names(recording.requests[0].examples).split()[a:b]) for a, b in ((0, 2), (2, 5), (5, 10))]
    assert by_tier == [{"c1", "n2"}, {"r1", "c3", "n3"}, {"n1", "c2", "c4", "r2", "n4"}]  # the human hard are easy
    path.write_text(path.read_text().splitlines()[0] + "\n")
    with pytest.raises(MedbenchError, match="has no entry for 9 of 10 training examples"):
        CurriculumTrainer().train(curriculum_request(tmp_path, examples, base="recording", ordering="curriculum",
                                                     difficulty_file=str(path)))


def test_config_errors_name_the_fix(tmp_path, recording):
    with pytest.raises(MedbenchError, match=r"needs the trainer it wraps.*--base NAME \(installed: .*recording"):
        CurriculumTrainer().train(curriculum_request(tmp_path, fixture_examples(), ordering="blocked"))
    with pytest.raises(MedbenchError, match="needs an ordering, got 'spiral'"):
        CurriculumTrainer().train(curriculum_request(tmp_path, fixture_examples(), base="recording",
                                                     ordering="spiral"))
    with pytest.raises(MedbenchError, match="unknown trainer plugin 'recordin'"):
        CurriculumTrainer().train(curriculum_request(tmp_path, fixture_examples(), base="recordin",
                                                     ordering="blocked"))


def test_train_command_orders_the_task_data_by_its_category_field(tmp_path, recording, tiny_model_dir):
    from medbench.cli import cli
    from medbench.leaderboard import build_table
    from medbench.training import MANIFEST_NAME

    result = CliRunner().invoke(cli, [
        "train", "--plugin", "curriculum", "--model", str(tiny_model_dir), "--task", "medqa", "--eval-limit", "2",
        "--output-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"),
        "--base", "recording", "--ordering", "blocked"])
    assert result.exit_code == 0, result.output
    (seen,) = recording.requests
    assert len(seen.examples) == 60 and seen.keep_order
    categories = [e.category for e in seen.examples]
    assert len(set(categories)) == 6 and categories == sorted(categories, key=categories.index)  # 6 blocks
    (manifest_path,) = (tmp_path / "runs").glob(f"*/final/{MANIFEST_NAME}")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["plugin"] == "curriculum" and manifest["config"]["ordering"] == "blocked"
    assert manifest["train_metrics"]["ordering"] == "blocked" and manifest["data_hash"] == examples_hash(seen.examples)
    assert manifest["trainer_config"] == dataclasses.asdict(seen.config)
    assert len(build_table(tmp_path / "lb").rows) == 1


@pytest.fixture(scope="module")
def difficulty_file(tmp_path_factory, tiny_model_dir):
    from medbench.cli import cli
    from medbench.plugins import get_plugin_manager

    root = tmp_path_factory.mktemp("difficulty")
    other = make_tiny_model(root / "other", seed=7)
    get_plugin_manager().hook.register_commands(cli=cli)  # what `medbench` does at start-up
    output = root / "medqa-difficulty.jsonl"
    result = CliRunner().invoke(cli, [
        "difficulty", "--models", f"{tiny_model_dir},{other}", "--task", "medqa", "--output", str(output),
        "--tiers", "thresholds", "--easy-max", "0.7499995", "--medium-max", "0.7500025"])
    assert result.exit_code == 0, result.output
    assert "60 items of medqa" in result.output
    return output, [str(tiny_model_dir), str(other)]


def test_difficulty_writes_one_minus_mean_p_correct_with_tiers(difficulty_file):
    path, models = difficulty_file
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 60 and [row["doc_id"] for row in rows] == list(range(60))
    for row in rows:
        assert sorted(row["p_correct"]) == sorted(models) and all(0 <= p <= 1 for p in row["p_correct"].values())
        assert row["difficulty"] == pytest.approx(1 - sum(row["p_correct"].values()) / 2)
        assert 0 <= row["difficulty"] <= 1
        assert row["tier"] == tier_of(row["difficulty"], 0.7499995, 0.7500025)
    # Two random models sit at chance (difficulty ~0.75; averaged over the option orders their letter preferences
    # cancel, leaving differences in the 6th decimal), so thresholds around it give all three tiers.
    assert {row["tier"] for row in rows} == {"easy", "medium", "hard"}


def test_p_correct_is_the_softmax_over_the_options_log_likelihoods(tiny_model_dir):
    import torch

    from medbench.models import resolve_model
    from medbench_plugins.curriculum.difficulty import p_correct

    loaded = resolve_model(str(tiny_model_dir))
    example = TrainingExample(doc_id=0, prompt="Question: which?\nA. x\nB. y\nC. z\nAnswer:", completion=" B",
                              rejected=[" A", " C"])

    def loglik(option):
        prompt_ids = loaded.tokenizer(example.prompt)["input_ids"]
        ids = loaded.tokenizer(example.prompt + option)["input_ids"]
        with torch.no_grad():
            logprobs = loaded.model(torch.tensor([ids])).logits[0].double().log_softmax(-1)
        return sum(float(logprobs[i - 1, ids[i]]) for i in range(len(prompt_ids), len(ids)))

    logliks = torch.tensor([loglik(" B"), loglik(" A"), loglik(" C")])
    advanced = []
    (p,) = p_correct(loaded, [example], batch_size=2, advance=advanced.append)
    assert p == pytest.approx(float(logliks.softmax(0)[0]), rel=1e-4) and advanced == [1]


def test_a_difficulty_file_drives_the_curriculum_on_task_data(tmp_path, recording, difficulty_file):
    path, _ = difficulty_file
    tiers = {row["key"]: row["tier"] for row in map(json.loads, path.read_text().splitlines())}
    CurriculumTrainer().train(curriculum_request(tmp_path, base="recording", ordering="curriculum",
                                                 difficulty_file=str(path)))
    seen = recording.requests[0].examples
    ranks = [("easy", "medium", "hard").index(tiers[example_key(e)]) for e in seen]
    assert len(seen) == 60 and ranks == sorted(ranks)


# --- letter bias, categories and difficulty on any data, plan_check ----------------------------------------------

@pytest.fixture(scope="module")
def medqa_task():
    from medbench_plugins.curriculum.difficulty import load_task

    return load_task("medqa")


@pytest.fixture(scope="module")
def medqa_examples():
    from medbench.trainingdata import load_training_examples

    return load_training_examples("medqa")


def prefers_letter_a(pairs):
    """A model with a pure answer-letter bias: 'A' is likely whatever the question."""
    return [0.0 if continuation.strip() == "A" else -3.0 for _context, continuation in pairs]


def test_cyclic_option_orders_move_the_gold_letter_and_cancel_a_pure_letter_bias(medqa_task, medqa_examples):
    from medbench_plugins.curriculum.difficulty import p_correct, permuted_items, render_shift

    example = medqa_examples[0]  # gold C: RET
    letters = []
    for shift in range(4):
        prompt, options = render_shift(medqa_task, example, shift)
        letters.append(options[0].strip())
        assert f"\n{options[0].strip()}. RET\n" in prompt + "\n" and sorted(options) == [" A", " B", " C", " D"]
    assert letters == ["C", "B", "A", "D"]  # every letter once
    assert render_shift(medqa_task, example, 0) == (example.prompt, [example.completion, *example.rejected])

    gold_letters = [e.answer for e in medqa_examples]
    one_order = p_correct(prefers_letter_a, [[render_shift(medqa_task, e, 0)] for e in medqa_examples])
    # In one order, difficulty is a function of the gold letter alone (A easy, the rest hard) ...
    by_letter = {}
    for letter, p in zip(gold_letters, one_order):
        by_letter.setdefault(letter, set()).add(round(p, 9))
    assert all(len(values) == 1 for values in by_letter.values())
    assert min(p for g, p in zip(gold_letters, one_order) if g == "A") > max(
        p for g, p in zip(gold_letters, one_order) if g != "A")
    assert len(set(gold_letters)) == 4
    # ... over all cyclic orders it is the same for every item: the bias no longer decides any tier.
    averaged = p_correct(prefers_letter_a, permuted_items(medqa_task, medqa_examples))
    assert max(averaged) - min(averaged) < 1e-12


def test_a_seeded_subset_of_option_orders(medqa_task, medqa_examples):
    from medbench_plugins.curriculum.difficulty import option_shifts, permuted_items

    shifts = [option_shifts(e, 2, seed=5) for e in medqa_examples]
    assert all(len(s) == 2 and len(set(s)) == 2 for s in shifts) and len({tuple(s) for s in shifts}) > 1
    assert shifts == [option_shifts(e, 2, seed=5) for e in medqa_examples]
    assert shifts != [option_shifts(e, 2, seed=6) for e in medqa_examples]
    assert [len(v) for v in permuted_items(medqa_task, medqa_examples[:3], 9)] == [4, 4, 4]  # at most all k


def test_p_correct_of_an_item_is_the_mean_over_its_option_orders(tiny_model_dir, medqa_task, medqa_examples):
    from medbench.models import resolve_model
    from medbench_plugins.curriculum.difficulty import p_correct, permuted_items

    loaded = resolve_model(str(tiny_model_dir))
    (variants,) = permuted_items(medqa_task, medqa_examples[:1])
    per_order = p_correct(loaded, [[variant] for variant in variants], batch_size=4)
    (mean,) = p_correct(loaded, [variants], batch_size=4)
    assert len(per_order) == 4 and mean == pytest.approx(sum(per_order) / 4, rel=1e-6)


def test_categories_and_tiers_from_keyed_csv_and_jsonl_files(tmp_path, recording):
    examples = fixture_examples()
    for e in examples:
        e.category, e.difficulty = None, None  # a user's data without labels
    categories = tmp_path / "categories.csv"
    categories.write_text("key,category\n" + "".join(f"{example_key(e)},{name[0]}\n"
                                                     for e, (name, _c, _d) in zip(examples, FIXTURE)))
    tiers = tmp_path / "tiers.csv"
    tiers.write_text("key,tier\n" + "".join(f"{example_key(e)},{d.lower()}\n" for e, (_n, _c, d) in zip(examples,
                                                                                                       FIXTURE)))
    CurriculumTrainer().train(curriculum_request(tmp_path, examples, base="recording", ordering="blocked_curriculum",
                                                 category_file=str(categories), difficulty_file=str(tiers)))
    seen = recording.requests[0].examples
    order = "".join(category_order(seen, 3))  # the file's categories are c, n, r
    assert layout(seen, "cE") == expected_layout("blocked_curriculum", order)  # the file's categories and tiers
    relabelled = [dataclasses.replace(e, category=e.category[0]) for e in fixture_examples()]
    assert names(seen) == names(order_examples(relabelled, "blocked_curriculum", 3))
    with pytest.raises(MedbenchError, match=r"category file .*categories.csv does not give key and category"):
        categories.write_text("key,subject\nx,y\n")
        CurriculumTrainer().train(curriculum_request(tmp_path, examples, base="recording", ordering="blocked",
                                                     category_file=str(categories)))


def test_llm_clusters_give_categories_to_data_without_them(tmp_path, recording, medqa_examples):
    from sklearn.metrics import adjusted_rand_score

    from medbench_plugins.curriculum.labels import cluster_categories

    unlabelled = [dataclasses.replace(e, category=None) for e in medqa_examples]
    clustered = cluster_categories(unlabelled, 6, seed=0)
    labels = [e.category for e in clustered]
    assert labels[0] == "cluster-1" and set(labels) == {f"cluster-{i}" for i in range(1, 7)}
    assert [e.category for e in cluster_categories(unlabelled, 6, seed=0)] == labels  # seeded
    # Clusters of the question text agree with the human subjects better than chance (a weak topic model on 60
    # short items: the docstring says so); chance: the same cluster sizes, shuffled.
    subjects = [e.category for e in medqa_examples]
    rng = __import__("random").Random(0)
    chance = []
    for _ in range(50):
        shuffled = list(labels)
        rng.shuffle(shuffled)
        chance.append(adjusted_rand_score(subjects, shuffled))
    assert adjusted_rand_score(subjects, labels) > max(chance)

    CurriculumTrainer().train(curriculum_request(tmp_path, unlabelled, base="recording", ordering="interleaved",
                                                 category_source="llm_clusters"))
    seen = recording.requests[0].examples
    assert len(seen) == 60 and seen[0].category == category_order(seen, 3)[0] and len({e.category for e in seen}) == 6
    with pytest.raises(MedbenchError, match=r"--n-clusters must lie between 2 and the 60 training examples, got 61"):
        cluster_categories(unlabelled, 61, seed=0)
    with pytest.raises(MedbenchError, match="unknown category_source 'subjects'"):
        CurriculumConfig(category_source="subjects")


@dataclass
class CappedConfig:
    max_examples: int | None = None


def test_max_examples_is_one_seeded_stratified_sample_for_every_arm_and_seed(tmp_path, plugin_registration):
    trainer = RecordingTrainer(name="recording-capped", config_class=CappedConfig)

    class Plugin:
        @hookimpl
        def register_trainers(self, register):
            register(trainer)

    plugin_registration(Plugin(), "recording-capped-plugin")
    # 30 items, answers A A B A A B ...: 20 A and 10 B; a sample of 12 keeps the shares, 8 and 4
    examples = [dataclasses.replace(e, doc_id=10 * copy + e.doc_id, prompt=f"{e.prompt}-{copy}",
                                    answer="B" if (10 * copy + e.doc_id) % 3 == 2 else "A")
                for copy in range(3) for e in fixture_examples()]

    def seen_rows(ordering, seed, **config):
        request = curriculum_request(tmp_path, examples, base="recording-capped", ordering=ordering,
                                     base_options={"max_examples": 12}, **config)
        (checkpoint,) = CurriculumTrainer().train(dataclasses.replace(request, seed=seed))
        assert checkpoint.trainer_config == {"max_examples": 12}  # recorded as asked
        seen = trainer.requests[-1]
        assert seen.config.max_examples is None  # taken here, so the base trains on all it is given
        return seen.examples

    rows = {(ordering, seed): seen_rows(ordering, seed) for ordering in ORDERINGS for seed in (1, 2)}
    chosen = {e.doc_id for e in rows["random", 1]}
    assert all({e.doc_id for e in seen} == chosen for seen in rows.values())  # every arm and seed: the same rows
    assert sorted(e.answer for e in rows["random", 1]) == ["A"] * 8 + ["B"] * 4
    assert chosen != set(range(12))  # a sample, not the first rows of the file
    assert {e.doc_id for e in seen_rows("blocked", 1, sample_seed=1)} != chosen  # the recipe's constant draws it
    # ordered after the draw: the sample, in the arm's order (not the first 12 of an ordered split)
    sample = sorted(rows["random", 1], key=lambda e: e.doc_id)
    assert names(rows["blocked", 2]) == names(order_examples(sample, "blocked", 2))
    with pytest.raises(MedbenchError, match=r"--max-examples 11 but task 'medqa'.s training data holds only 10"):
        CurriculumTrainer().train(curriculum_request(tmp_path, fixture_examples(), base="recording-capped",
                                                     ordering="blocked", base_options={"max_examples": 11}))


def write_user_medqa(path, rows=12):
    """A user's MedQA training file in the published format: no subject, no difficulty."""
    import random as _random

    rng = _random.Random(0)
    topics = ["kidney sodium", "heart murmur", "lung cough", "skin rash"]
    path.write_text("".join(json.dumps({
        "question": f"A patient with {topics[i % 4]} number {i}. What is the next step?",
        "options": {"A": "one", "B": "two", "C": "three", "D": "four"},
        "answer_idx": rng.choice("ABCD"), "meta_info": "step1"}) + "\n" for i in range(rows)))
    return path


def test_plan_check_names_why_a_cell_cannot_run_on_the_data(tmp_path, recording):
    trainer = CurriculumTrainer()
    user = {"medqa:train": str(write_user_medqa(tmp_path / "train.jsonl"))}
    assert trainer.plan_check("medqa", {"base": "recording", "ordering": "curriculum"}) is None  # bundled labels
    assert trainer.plan_check("medqa", {"base": "recording", "ordering": "interleaved"}) is None

    reason = trainer.plan_check("medqa", {"base": "recording", "ordering": "curriculum"}, user)
    assert reason == ("no human difficulty labels in medqa's training data, which curriculum needs — pass "
                      "difficulty_file (key + tier rows: per-item easy/medium/hard labels, as LEK's from exam "
                      "statistics) or difficulty_field, or difficulty_models for LLM difficulty")
    reason = trainer.plan_check("medqa", {"base": "recording", "ordering": "blocked"}, user)
    assert reason.startswith("medqa's training data has a single category ('step1'), so blocked would not order")
    assert "category_source: llm_clusters" in reason
    assert trainer.plan_check("medqa", {"base": "recording", "ordering": "blocked", "category_source": "llm_clusters",
                                        "n_clusters": "3"}, user) is None
    assert trainer.plan_check("medqa", {"base": "recording", "ordering": "curriculum",
                                        "difficulty_models": ["some-model"]}, user) is None  # computed when training
    assert trainer.plan_check("medqa", {"base": "recording", "ordering": "random"}, user) is None
    with pytest.raises(MedbenchError, match="needs an ordering, got 'spiral'"):  # a recipe error: raised
        trainer.plan_check("medqa", {"base": "recording", "ordering": "spiral"})
    # The same reason stops training on that data.
    from medbench.trainingdata import load_training_examples
    from medbench.trainingdata import data_file_metadata

    examples = load_training_examples("medqa", data_file_metadata("medqa", user))
    with pytest.raises(MedbenchError, match="single category"):
        trainer.train(curriculum_request(tmp_path, examples, base="recording", ordering="interleaved"))


def test_difficulty_command_reads_a_users_training_file(tmp_path, tiny_model_dir):
    from medbench.testing import invoke_cli

    user = write_user_medqa(tmp_path / "train.jsonl", rows=5)
    output = tmp_path / "d.jsonl"
    result = invoke_cli("difficulty", "--models", str(tiny_model_dir), "--task", "medqa", "--data-file",
                        f"medqa:train={user}", "--option-orders", "2", "--output", str(output))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == 5 and rows[0]["doc_id"] == 0 and all(0 <= r["difficulty"] <= 1 for r in rows)


# --- tiers by tertiles, real data at full scale, the recipe's arms ------------------------------------------------

def test_tertiles_cut_the_scored_items_into_thirds_by_rank():
    from medbench_plugins.curriculum.orderings import assign_tiers, tertile_tiers

    # ranks: 0.1 0.2 0.3 | 0.5 0.7 | 0.8 0.9 (7 items: thirds of 3, 2, 2, the larger first)
    assert tertile_tiers([0.9, 0.1, 0.5, 0.7, 0.3, 0.2, 0.8]) == ["hard", "easy", "medium", "medium", "easy", "easy",
                                                                  "hard"]
    assert tertile_tiers([0.5] * 4) == ["easy", "easy", "medium", "hard"]  # ties keep data order
    assert tertile_tiers([]) == []
    with pytest.raises(MedbenchError, match="unknown tier rule 'quartiles'"):
        assign_tiers([0.1], "quartiles")
    with pytest.raises(MedbenchError, match="unknown tiers 'quartiles'"):
        CurriculumConfig(tiers="quartiles")


def test_a_chance_level_ensemble_is_all_medium_by_the_studys_cut_offs_but_thirds_by_tertiles():
    """What SmolLM2-135M gives on the 60 bundled MedQA items: 1 - P(correct) between 0.739 and 0.771, so the study's
    cut-offs (0.66, 0.80) make every item medium and a curriculum would be the data order."""
    from medbench_plugins.curriculum.difficulty import count_tiers, difficulty_rows, retiered

    examples = [TrainingExample(doc_id=i, prompt=f"q{i}", completion=" A", rejected=[" B"]) for i in range(60)]
    p = {"a": [0.25 + 0.0005 * ((7 * i) % 60) for i in range(60)], "b": [0.24 + 0.0004 * i for i in range(60)]}
    rows = difficulty_rows(examples, p)
    assert count_tiers(rows) == {"easy": 20, "medium": 20, "hard": 20}
    assert {row["tier_rule"] for row in rows} == {"tertiles"}
    assert rows[0]["difficulty"] == pytest.approx(1 - (p["a"][0] + p["b"][0]) / 2)
    hardest = max(rows, key=lambda row: row["difficulty"])
    easiest = min(rows, key=lambda row: row["difficulty"])
    assert (hardest["tier"], easiest["tier"]) == ("hard", "easy")
    assert count_tiers(retiered(rows, "thresholds")) == {"easy": 0, "medium": 60, "hard": 0}


def test_difficulty_command_refuses_cut_offs_without_threshold_tiers():
    from medbench.testing import invoke_cli

    result = invoke_cli("difficulty", "--models", "unused", "--task", "medqa", "--easy-max", "0.7")
    assert result.exit_code != 0 and "add --tiers thresholds" in result.output


def test_llm_tiers_are_cut_over_the_training_items_and_recorded(tmp_path, recording, monkeypatch):
    """The ensemble's scores are cached once; each tier rule cuts them anew; the counts reach the checkpoint."""
    import medbench.models
    from medbench_plugins.curriculum import difficulty

    calls = []

    def fake_ensemble(examples, refs, task, **kwargs):
        calls.append(len(examples))
        p = {refs[0]: [0.245 + 0.01 * i for i in range(len(examples))]}  # later items easier; all near chance
        return difficulty.difficulty_rows(examples, p, "thresholds")

    monkeypatch.setattr(difficulty, "ensemble_difficulty", fake_ensemble)
    monkeypatch.setattr(medbench.models, "cache_dir", lambda: tmp_path / "cache")
    (checkpoint,) = CurriculumTrainer().train(curriculum_request(
        tmp_path, fixture_examples(), base="recording", ordering="curriculum", difficulty_models=["m"]))
    assert checkpoint.metrics["difficulty_tiers"] == {"easy": 4, "medium": 3, "hard": 3}
    # thirds of 4, 3, 3 by score: the last four items easy, the first three hard
    seen = names(recording.requests[0].examples).split()
    assert [set(seen[:4]), set(seen[4:7]), set(seen[7:])] == [{"c4", "n3", "r2", "n4"}, {"r1", "n2", "c3"},
                                                               {"c1", "n1", "c2"}]
    (checkpoint,) = CurriculumTrainer().train(curriculum_request(
        tmp_path, fixture_examples(), base="recording", ordering="curriculum", difficulty_models=["m"],
        tiers="thresholds"))
    assert calls == [10]  # scored once; cut twice
    assert checkpoint.metrics["difficulty_tiers"] == {"easy": 0, "medium": 10, "hard": 0}  # 0.665..0.755: medium


def write_user_medmcqa(path, rows=12):
    """A user's MedMCQA file in the raw release format (cop 1-based): subjects, no difficulty."""
    path.write_text("".join(json.dumps({
        "question": f"Question {i} on {['nerves', 'drugs', 'bones'][i % 3]}?", "opa": "w", "opb": "x", "opc": "y",
        "opd": "z", "cop": 1 + i % 4, "subject_name": ["Anatomy", "Pharmacology", "Physiology"][i % 3]}) + "\n"
        for i in range(rows)))
    return path


def test_require_real_data_refuses_the_bundled_sample_at_plan_and_train_time(tmp_path, recording):
    trainer = CurriculumTrainer()
    options = {"base": "recording", "ordering": "random", "require_real_data": True}
    reason = trainer.plan_check("medqa", options)
    assert reason.startswith("medqa's data is the medqa bundled sample (written for medbench, not the real data set)")
    assert "pass --data-file medqa:train=PATH --data-file medqa:test=PATH" in reason
    assert "medbench --online sweep" in reason and "GBaker/MedQA-USMLE-4-options-hf" in reason
    train = {"medqa:train": str(write_user_medqa(tmp_path / "train.jsonl"))}
    assert "--data-file medqa:test=PATH too" in trainer.plan_check("medqa", options, train)
    both = {**train, "medqa:test": str(write_user_medqa(tmp_path / "test.jsonl", rows=4))}
    assert trainer.plan_check("medqa", options, both) is None
    assert trainer.plan_check("medqa", {**options, "require_real_data": False}) is None  # the toy's bundled run

    with pytest.raises(MedbenchError, match="bundled sample"):
        trainer.train(curriculum_request(tmp_path, None, **options))
    request = curriculum_request(tmp_path, None, **options)
    request.task_metadata = {"data_files": {"train": both["medqa:train"], "test": both["medqa:test"]}}
    trainer.train(request)
    assert len(recording.requests[-1].examples) == 12


def plan_recipe(scale, overrides=None, data_files=None, out=Path("/nonexistent/sweep")):
    from medbench.planning import plan
    from medbench.recipe import read_recipe

    recipe = read_recipe(Path(__file__).resolve().parent.parent / "recipes" / "curriculum.yaml")
    return plan(recipe, scale, out, overrides or {}, data_files)


def real_files(tmp_path):
    return {"medqa:train": str(write_user_medqa(tmp_path / "medqa_train.jsonl", rows=30)),
            "medqa:test": str(write_user_medqa(tmp_path / "medqa_test.jsonl", rows=4)),
            "medmcqa:train": str(write_user_medmcqa(tmp_path / "medmcqa_train.json", rows=30)),
            "medmcqa:test": str(write_user_medmcqa(tmp_path / "medmcqa_test.json", rows=4))}


def test_the_full_scale_does_not_plan_on_the_bundled_samples():
    with pytest.raises(MedbenchError) as error:
        plan_recipe("full")
    assert "empty grid" in error.value.one_line()
    assert "--data-file medqa:train=PATH --data-file medqa:test=PATH" in error.value.one_line()


def test_the_full_scale_on_real_data_runs_every_arm_the_data_supports(tmp_path):
    # MedMCQA's cap (10,178 rows) is larger than this 30-row file: every MedMCQA cell says so ...
    capped = plan_recipe("full", data_files=real_files(tmp_path))
    assert {c.factors["task"] for c in capped.cells} == {"medqa"}
    assert any("task=medmcqa" in s["cell"] and "--max-examples 10178 but task 'medmcqa'" in s["reason"]
               for s in capped.skipped)
    # ... so the plan on it asks for 20
    sweep = plan_recipe("full", {"medmcqa_max_examples": 20}, data_files=real_files(tmp_path))
    arms = {(c.factors["task"], c.factors["ordering"], c.factors["difficulty"]) for c in sweep.cells}
    orderings = ("random", "blocked", "interleaved")
    curricula = ("curriculum", "blocked_curriculum", "interleaved_curriculum")
    for task in ("medqa", "medmcqa"):  # MedQA's categories are clustered: blocked and interleaved stay
        assert {(task, o, "none") for o in orderings} | {(task, o, "llm") for o in curricula} == \
            {a for a in arms if a[0] == task}
    # No human labels in the real data: those cells are skipped, each with the way to supply labels.
    assert sweep.skipped and all("difficulty=human" in s["cell"] and "LEK" in s["reason"] for s in sweep.skipped)
    assert {c.factors["seed"] for c in sweep.cells} == {1, 2, 3, 4, 5}
    steps = {c.factors["task"]: c.steps[0].options for c in sweep.cells if c.factors["difficulty"] == "llm"}
    assert steps["medqa"]["category_source"] == "llm_clusters" and steps["medmcqa"]["category_source"] == "task"
    # the study's cut-offs at full scale (its ensemble's open members); tertiles at toy scale (a 135M "ensemble")
    assert steps["medqa"]["tiers"] == "thresholds" and steps["medqa"]["require_real_data"] is True
    base = steps["medqa"]["base_options"]
    assert (base["method"], base["lora_r"], base["lora_alpha"], base["num_epochs"]) == ("qlora", 16, 64, 1)
    # each of the study's four models at the rate and effective batch its code gives that model
    trained = {c.factors["model"]: c.steps[0].options["base_options"] for c in sweep.cells}
    assert {model: (options["learning_rate"], options["train_batch_size"] * options["gradient_accumulation_steps"])
            for model, options in trained.items()} == {
        "TinyLlama/TinyLlama-1.1B-Chat-v0.4": (5e-4, 16), "meta-llama/Llama-2-7b-chat-hf": (1e-4, 8),
        "meta-llama/Llama-2-13b-chat-hf": (1e-4, 8), "mistralai/Mistral-7B-v0.1": (1e-4, 8)}
    # the schedule, written down: linear decay to 0, no warmup, no weight decay, LoRA dropout 0.1
    assert (base["lr_scheduler_type"], base["warmup_ratio"], base["weight_decay"], base["lora_dropout"]) == \
        ("linear", 0.0, 0.0, 0.1)
    # MedQA's whole split; MedMCQA's sample, drawn by a constant (not the cell's seed) in every cell
    assert base["max_examples"] is None and steps["medmcqa"]["base_options"]["max_examples"] == 20
    assert {c.steps[0].options["sample_seed"] for c in sweep.cells} == {0}
    from medbench.recipe import read_recipe

    full = read_recipe(Path(__file__).resolve().parent.parent / "recipes" / "curriculum.yaml").scales["full"]
    assert (full["medqa_max_examples"], full["medmcqa_max_examples"]) == (None, 10178)  # MedQA's train size
    models = {c.factors["model"] for c in sweep.cells}
    ensemble = set(steps["medqa"]["difficulty_models"])
    assert len(ensemble) == 3 and not ensemble & models  # no trained model scores its own difficulty


def test_every_comparison_differs_in_its_own_factor_only(tmp_path):
    for sweep in (plan_recipe("toy"), plan_recipe("full", data_files=real_files(tmp_path))):
        cells = {c.key: c for c in sweep.cells}
        assert sweep.comparisons
        for comparison in sweep.comparisons:
            cell, base = cells[comparison.cell], cells[comparison.baseline]
            pairs = [(f, g) for f in (cell.factors, *cell.aliases) for g in (base.factors, *base.aliases)
                     if {k for k in f if f[k] != g[k]} == {comparison.factor}]
            assert pairs, (cell.label, base.label)
        random_cells = [c for c in sweep.cells if c.factors["ordering"] == "random"]
        assert random_cells and all(c.factors["difficulty"] == "none" for c in random_cells)
        assert {a["difficulty"] for a in random_cells[0].aliases} == {"human", "llm"}
        assert not [c for c in sweep.cells if c.factors["ordering"].endswith("curriculum")
                    and c.factors["difficulty"] == "none"]
