"""A sweep runs every cell in one process, so nothing a finished cell loaded (its model, trainer or lm-eval wrapper)
may stay alive into the next.

Automatic garbage collection is off while the rounds run: a real sweep's process is large and Python collects
reference cycles there only now and then, so what counts is what medbench frees by itself. The counts are of live
objects of the model's class, read without collecting."""

import contextlib
import gc

import yaml
from transformers import LlamaForCausalLM

from medbench import training
from medbench.evaluation import EvalConfig, evaluate
from medbench.sweeps import plan, read_recipe, run_sweep

ROUNDS = 3


def live_models() -> int:
    # type(), not isinstance(): reading __class__ of some module-level proxies warns
    return sum(issubclass(type(o), LlamaForCausalLM) for o in gc.get_objects())


@contextlib.contextmanager
def automatic_gc_off():
    """Yields the number of models alive before (earlier tests' garbage collected first)."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield live_models()
    finally:
        if enabled:
            gc.enable()


def test_training_and_scoring_rounds_leave_no_model_alive(tiny_model_dir, tmp_path):
    counts = []
    with automatic_gc_off() as before:
        for round_ in range(ROUNDS):
            for plugin in ("sft", "dpo"):
                config = training.build_config(training.get_trainer(plugin).config_class, {},
                                               {"max_steps": 1, "max_examples": 4, "train_batch_size": 2}, plugin)
                run_dir = tmp_path / f"{plugin}-{round_}"
                run_dir.mkdir()
                request = training.TrainRequest(model_ref=str(tiny_model_dir), task="medqa", output_dir=run_dir,
                                                config=config, seed=round_)
                checkpoints = training.train(plugin, request, run_dir.name)
                evaluate(str(checkpoints[-1].path), EvalConfig(tasks=["medqa"], limit=2, batch_size=2,
                                                               output_dir=tmp_path / "leaderboard"))
            counts.append(live_models())
    assert counts == [before] * ROUNDS, f"models alive after each round: {counts} (before: {before})"


RECIPE = """
name: memory_sweep
scales:
  toy: {{model: "{model}"}}
grid:
  method: [base, sft, too_long]
  seed: [1, 2]
cell:
  model: "{{model}}"
  steps_by: method
  steps:
    base: []
    sft: [{{plugin: sft, task: medqa, options: {{max_steps: 1, max_examples: 4, train_batch_size: 2}}}}]
    # fails after the model is loaded and handed to the trainer
    too_long: [{{plugin: sft, task: medqa, options: {{max_steps: 1, max_examples: 4, max_length: 16}}}}]
  eval: {{tasks: [medqa], limit: 2, batch_size: 2}}
baseline: {{method: base}}
"""


def test_sweep_cells_done_or_failed_leave_no_model_alive(tiny_model_dir, tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(yaml.safe_load(RECIPE.format(model=tiny_model_dir))))
    sweep = plan(read_recipe(path), out_dir=tmp_path / "sweep")
    counts = []
    with automatic_gc_off() as before:
        results = run_sweep(sweep, on_result=lambda result: counts.append(live_models()))
    assert sorted(r.status for r in results) == ["done"] * 4 + ["failed"] * 2
    assert counts == [before] * len(results), f"models alive after each cell: {counts} (before: {before})"
