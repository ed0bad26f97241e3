"""Round 12 of writing third-party plugins from the docs alone: a package found by its entry point only (a
`.dist-info` on the path, as `pip install -e` leaves one) adds a samples metric and a leaderboard renderer, the
metric reaches a built-in task through the guide's include YAML, and the renderer runs after `eval`."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from medbench.tasks import build_registry

PLUGIN = '''\
"""Expected calibration error of P(chosen option), and a markdown page of it per leaderboard."""
import math

from medbench import hookimpl
from medbench.records import atomic_write_text

__version__ = "0.3.0"


def ece(samples, bins=5):
    pairs = []
    for sample in samples:
        logliks = sample.get("logliks")
        if logliks and sample.get("pred") is not None:
            weights = [math.exp(v - max(logliks)) for v in logliks]
            pairs.append((max(weights) / sum(weights), sample["pred"] == sample["gold"]))
    if not pairs:
        return float("nan")
    total = 0.0
    for b in range(bins):
        inside = [(p, ok) for p, ok in pairs if b / bins < p <= (b + 1) / bins]
        if inside:
            total += abs(sum(p - ok for p, ok in inside)) / len(pairs)
    return total


def render_calibration(table, out_dir):
    lines = [f"{row.label}\\t{column}\\t{ece(cell.samples or []):.4f}" for row in table.rows
             for column, cell in row.cells.items() if cell is not None and cell.score is not None]
    path = out_dir / "leaderboard_calibration.tsv"
    atomic_write_text(path, "\\n".join(lines) + "\\n")
    return path


@hookimpl
def register_metrics(register):
    register("r12_ece", ece, higher_is_better=False, needs="samples", description="ECE of P(chosen option)")


@hookimpl
def register_leaderboard_renderers(register):
    register("calib", render_calibration)
'''


def _package(root: Path) -> dict[str, str]:
    """The plugin as `pip install -e` would leave it, without pip: its source and a `.dist-info` on PYTHONPATH."""
    (root / "src" / "medbench_r12calib").mkdir(parents=True)
    (root / "src" / "medbench_r12calib" / "__init__.py").write_text(PLUGIN, encoding="utf-8")
    info = root / "site" / "medbench_r12calib-0.3.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: medbench-r12calib\nVersion: 0.3.0\n"
                                   "Requires-Dist: medbench>=0.1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[medbench]\nr12calib = medbench_r12calib\n", encoding="utf-8")
    path = os.pathsep.join([str(root / "site"), str(root / "src"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def _medbench(env, *args, cwd):
    done = subprocess.run([sys.executable, "-m", "medbench.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_an_entry_point_package_adds_a_metric_to_a_built_in_task_and_a_renderer_to_eval(tiny_model_dir, tmp_path):
    env = _package(tmp_path / "plugin")
    listed = json.loads(_medbench(env, "plugins", "--json", cwd=tmp_path))
    (mine,) = [p for p in listed if p["name"] == "r12calib"]
    assert (mine["package"], mine["version"], mine["source"]) == ("medbench-r12calib", "0.3.0", "entry point")
    assert mine["provides"] == {"metrics": ["r12_ece"], "leaderboard renderers": ["calib"]}

    # The guide's way to put a registered metric on a task that does not name it: a new task including the original.
    mine_dir = tmp_path / "mine"
    mine_dir.mkdir()
    (mine_dir / "medqa_ece.yaml").write_text(
        f"include: {build_registry().get('medqa').path}\ntask: medqa_ece\nmetadata:\n  version: 1.0\n"
        "  source: auto\n  data_files: null\n  primary_metric: acc\n  medbench_metrics: [macro_f1, r12_ece]\n",
        encoding="utf-8")
    board = tmp_path / "lb"
    printed = json.loads(_medbench(env, "eval", "--model", str(tiny_model_dir), "--tasks", "medqa_ece", "--limit", "4",
                                   "--include-path", str(mine_dir), "--trust-task-code", "--leaderboard-dir",
                                   str(board), "--json", cwd=tmp_path))
    (record,) = printed["records"]
    ece = record["metrics"]["r12_ece"]["value"]
    assert record["n"] == 4 and 0 <= ece <= 1 and record["metrics"]["macro_f1"]["value"] is not None
    # Every registered renderer runs after eval: the page of the plugin holds the same value the record does.
    (line,) = (board / "leaderboard_calibration.tsv").read_text(encoding="utf-8").splitlines()
    label, column, shown = line.split("\t")
    assert column == "medqa_ece" and math.isclose(float(shown), ece, abs_tol=1e-4)


def test_a_trainer_that_freezes_all_but_the_top_block_trains_that_block_alone(plugin_registration, tiny_model_dir,
                                                                               tmp_path):
    """The guide's SDK with one change of a TrlOptions default (`method: full`) and a model frozen after
    `load_policy`: the top block gets gradients (under gradient checkpointing too, the CPU's default, whose
    reentrant form would leave a block above frozen inputs untrained) and nothing below it moves."""
    from dataclasses import dataclass

    import torch
    from safetensors.torch import load_file

    import medbench
    from medbench import hookimpl
    from medbench.trainers.hf import (Formatter, PreparedRun, TrlOptions, capped, checkpoint_kind,
                                      checkpoint_recorder, load_policy, lora_config, training_arguments)

    @dataclass
    class TopOptions(TrlOptions):
        method: str = "full"  # the top blocks' own weights, no adapters
        top_blocks: int = 1

    class TopBlocks:
        name, description, config_class = "r12_top_blocks", "SFT of the top blocks only", TopOptions

        def train(self, request):
            from datasets import Dataset
            from trl import SFTConfig, SFTTrainer

            options = request.config
            examples = capped(request.training_examples(), options, "the task", request.seed)
            loaded = load_policy(request, options)
            decoder = loaded.model.get_decoder()
            keep = {id(p) for block in decoder.layers[-options.top_blocks:] for p in block.parameters()}
            for parameter in loaded.model.parameters():
                parameter.requires_grad = id(parameter) in keep
            text = Formatter(loaded.tokenizer, options.chat_template)
            recorder = checkpoint_recorder(request.model_ref)
            trainer = SFTTrainer(model=loaded.model, args=training_arguments(SFTConfig, request, options, 1e-2,
                                                                             completion_only_loss=True),
                                 train_dataset=Dataset.from_list([text.sft_row(e.prompt, e.completion)
                                                                  for e in examples]),
                                 processing_class=loaded.tokenizer, peft_config=lora_config(options),
                                 callbacks=[recorder])
            return PreparedRun(trainer, recorder, examples, checkpoint_kind(options), "top blocks",
                               model_ref=request.model_ref).run()

    class Plugin:
        @hookimpl
        def register_trainers(self, register):
            register(TopBlocks())

    plugin_registration(Plugin(), "r12_top_blocks")
    result = medbench.train("r12_top_blocks", "hyponatremia", str(tiny_model_dir),
                            options={"max_steps": 2, "max_examples": 8, "max_length": 4096},
                            output_dir=tmp_path / "runs", leaderboard_dir=tmp_path / "lb", eval_limit=2)
    (checkpoint,) = result.checkpoints
    assert checkpoint.kind == "model" and checkpoint.metrics["trainable_params"] < checkpoint.metrics["total_params"]
    before = load_file(next(Path(tiny_model_dir).glob("*.safetensors")))
    after = load_file(next(Path(checkpoint.path).glob("*.safetensors")))
    moved = {name for name in before if not torch.equal(before[name], after[name])}
    assert moved and all(name.startswith("model.layers.1.") for name in moved), sorted(moved)
