"""Tests for medbench-plugin-example, on medbench's test helpers.

The fixtures (``tiny_model_dir``, ``leaderboard_dir``, ``plugin_registration``) come from ``medbench.testing``,
which pytest loads as a plugin once medbench is installed. The tests pass whether or not this package is
installed: pyproject.toml puts ``src/`` on pytest's path, and ``plugin_registration`` registers the module for one
test when no entry point has loaded it.
"""

import math

import pytest

import medbench_plugin_example as plugin
from medbench.evaluation import EvalConfig, evaluate
from medbench.metrics import metric_registry
from medbench.tasks import build_registry, load_tasks, split_sizes
from medbench.training import TrainRequest, build_config, get_trainer

TASK = "drug_interaction"


@pytest.fixture
def plugin_name(plugin_registration):
    return plugin_registration(plugin)


def test_register_tasks(plugin_name):
    registry = build_registry()
    entry = registry.get(TASK)
    assert entry.plugin == plugin_name
    assert entry.primary_metric == "acc" and "cohen_kappa" in entry.metadata["medbench_metrics"]
    assert split_sizes(load_tasks([TASK], registry)[TASK]) == {"train": 32, "validation": 8, "test": 20}


def test_register_metrics(plugin_name):
    metric = metric_registry()["cohen_kappa"]
    assert metric.plugin == plugin_name
    assert metric.fn([0, 1, 0, 1], [0, 1, 0, 1]) == 1.0
    assert metric.fn([0, 1, 0, 1], [1, 1, 1, 1]) == 0.0  # always "yes": chance level, though accuracy is 0.5
    assert metric.fn([0, 1, 0, 1], [1, 0, 1, 0]) == -1.0
    assert math.isnan(metric.fn([], []))


def test_register_trainers(plugin_name, tiny_model_dir, tmp_path, leaderboard_dir):
    trainer = get_trainer("orpo")
    config = build_config(trainer.config_class, {}, {"max_steps": "2", "train_batch_size": "2", "max_examples": "4"},
                          trainer.name)
    request = TrainRequest(model_ref=str(tiny_model_dir), task=TASK, output_dir=tmp_path / "run", config=config)
    (checkpoint,) = trainer.train(request)
    assert checkpoint.final and checkpoint.kind == "adapter" and checkpoint.step == 2
    assert math.isfinite(checkpoint.metrics["loss"]) and checkpoint.data_hash
    assert not list(checkpoint.path.glob("*.bin"))  # safetensors only

    (record,) = evaluate(str(checkpoint.path), EvalConfig(tasks=[TASK], limit=4, output_dir=leaderboard_dir))
    assert record["n"] == 4 and record["model"]["kind"] == "peft"
    assert set(record["metrics"]) >= {"acc", "cohen_kappa", "f1"}
