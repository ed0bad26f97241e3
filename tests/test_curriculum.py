"""Curriculum orderings on a hand-made fixture, the wrapping trainer, and `medbench difficulty`."""

import dataclasses
import json
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
from medbench_plugins.curriculum import (
    CurriculumConfig,
    CurriculumTrainer,
    example_key,
    order_examples,
    tier_of,
)

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


@pytest.mark.parametrize("ordering, expected", [
    # cardio, neuro, renal blocks, each in data order
    ("blocked", "c1 c2 c3 c4 n1 n2 n3 n4 r1 r2"),
    # chunks: cardio [c1 c2] [c3] [c4], neuro [n1 n2] [n3] [n4], renal [r1] [r2] []; chunk i of each in turn
    ("interleaved", "c1 c2 n1 n2 r1 c3 n3 r2 c4 n4"),
    # easy, medium, hard; data order within a tier
    ("curriculum", "n1 c2 c4 r2 n4 r1 c3 n3 c1 n2"),
    # each block easy to hard
    ("blocked_curriculum", "c2 c4 c3 c1 n1 n4 n3 n2 r2 r1"),
    # easy of cardio, neuro, renal; then medium of each; then hard of each
    ("interleaved_curriculum", "c2 c4 n1 n4 r2 c3 n3 r1 c1 n2"),
])
def test_each_ordering_yields_its_definition(ordering, expected):
    assert names(order_examples(fixture_examples(), ordering, seed=0)) == expected


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
    assert names(seen.examples) == "c2 c4 n1 n4 r2 c3 n3 r1 c1 n2" and seen.keep_order is True
    assert seen.config == RecordingConfig(learning_rate=0.5, steps=4)
    assert (seen.model_ref, seen.task, seen.seed) == ("tiny", "medqa", 3)
    assert checkpoint.metrics == {"loss": 0.5, "ordering": "interleaved_curriculum", "base_trainer": "recording"}
    assert checkpoint.trainer_config == {"learning_rate": 0.5, "steps": 4}
    assert checkpoint.data_hash == examples_hash(seen.examples)


def test_fields_override_the_task_metadata(tmp_path, recording):
    request = curriculum_request(tmp_path, fixture_examples(), base="recording", ordering="blocked_curriculum",
                                 category_field="subject", difficulty_field="level")
    CurriculumTrainer().train(request)
    (seen,) = recording.requests
    assert names(seen.examples) == "c2 c4 c3 c1 n1 n4 n3 n2 r2 r1"
    assert [e.category for e in seen.examples[:4]] == ["CARDIO"] * 4
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
    assert names(recording.requests[0].examples) == "c1 n2 r1 c3 n3 n1 c2 c4 r2 n4"
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
        "--easy-max", "0.7499995", "--medium-max", "0.7500025"])
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
    from medbench_plugins.curriculum import p_correct

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
