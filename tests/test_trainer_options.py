"""Trainer options as users meet them: listed by `train --plugin X --help` and `medbench trainers`, spelt one way
(--max-steps) in every message, accepted as max_steps or max-steps in config files and recipes."""

import json

import pytest
from click.testing import CliRunner

from medbench.cli import cli
from medbench.errors import MedbenchError
from medbench.training import build_config, describe_options
from medbench_plugins.sft import SFTOptions


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_train_help_lists_the_named_trainers_options_with_their_comments():
    result = invoke("train", "--plugin", "sft", "--help")
    assert result.exit_code == 0
    section = result.output.split("Options of trainer 'sft'", 1)[1]
    assert "--max-steps" in section and "stop after this many optimizer steps" in section
    assert "--target" in section and "[str, default label]" in section.replace("\n", " ").replace("  ", " ")
    assert "--plugin NAME with --help" in invoke("train", "--help").output
    assert "did you mean sft" in " ".join(invoke("train", "--plugin", "stf", "--help").output.split())


def test_trainers_command_lists_every_trainer():
    rows = json.loads(invoke("trainers", "--json").output)
    by_name = {row["name"]: row for row in rows}
    assert {"sft", "dpo", "merge", "curriculum"} <= set(by_name)
    assert by_name["sft"]["resume"] and by_name["sft"]["options"] == len(describe_options(SFTOptions))
    assert by_name["sft"]["plugin"] == "sft" and by_name["orpo"]["plugin"] == "example"  # who provides each


def test_messages_spell_options_as_flags_and_suggest_the_close_one():
    with pytest.raises(MedbenchError) as error:
        build_config(SFTOptions, {}, {"max_step": "3"}, "sft")
    assert "has no option --max-step — did you mean --max-steps?" in str(error.value)
    assert "max_step" not in str(error.value).replace("--max-step", "")
    for theirs, ours in (("lr", "--learning-rate"), ("num_train_epochs", "--num-epochs"), ("max_seq_length", "--max-length")):
        with pytest.raises(MedbenchError) as error:  # the names TRL and transformers users type
            build_config(SFTOptions, {}, {theirs: "1"}, "sft")
        assert f"did you mean {ours}?" in str(error.value)
    with pytest.raises(MedbenchError, match="--lora-r 'x' is not an integer — give an integer for --lora-r"):
        build_config(SFTOptions, {}, {"lora_r": "x"}, "sft")
    with pytest.raises(MedbenchError, match="^--max-steps must be 1 to 1,000,000,000 optimizer steps"):
        build_config(SFTOptions, {}, {"max_steps": "0"}, "sft")


def test_config_files_and_recipes_take_either_spelling():
    assert build_config(SFTOptions, {"max-steps": 3}, {"lora_r": "8"}, "sft").max_steps == 3
    assert build_config(SFTOptions, {"max_steps": 3, "train-batch-size": 2}, {}, "sft").train_batch_size == 2


def test_one_name_for_the_leaderboard_folder(tiny_model_dir, tmp_path):
    result = CliRunner().invoke(cli, ["eval", "--model", str(tiny_model_dir), "--tasks", "medqa", "--limit", "1",
                                      "--leaderboard-dir", str(tmp_path / "lb")], catch_exceptions=False)
    assert result.exit_code == 0 and list((tmp_path / "lb").glob("records/*/medqa/record.json"))
    legacy = CliRunner().invoke(cli, ["eval", "--model", str(tiny_model_dir), "--tasks", "medqa", "--limit", "1",
                                      "--output-dir", str(tmp_path / "old")], catch_exceptions=False)
    assert legacy.exit_code == 0 and list((tmp_path / "old").glob("records/*/medqa/record.json"))
    assert "`eval --output-dir` is now `--leaderboard-dir`" in " ".join(legacy.output.split())
    assert "--output-dir" not in invoke("eval", "--help").output  # the old name still works, unadvertised
    listed = invoke("leaderboard", "--leaderboard-dir", str(tmp_path / "lb"), "--format", "md")
    assert listed.exit_code == 0 and (tmp_path / "lb" / "leaderboard.md").exists()


@pytest.mark.parametrize("flag, value, spelled", [("--limit", "5", "--eval-limit"), ("--mode", "generate", "--eval-mode"),
                                                  ("--gen-kwargs", "temperature=0", "--eval-gen-kwargs")])
def test_an_eval_option_without_trains_eval_prefix_names_the_spelling_train_takes(medbench_cli, tmp_path, flag,
                                                                                   value, spelled):
    result = medbench_cli("train", "--plugin", "sft", "--task", "medqa", "--output-dir", str(tmp_path / "runs"),
                          flag, value)
    assert result.exit_code == 2
    assert f"train has no option {flag}" in result.output and f"pass {spelled}" in result.output
    assert not (tmp_path / "runs").exists()  # refused before a run directory was made


def test_train_help_says_how_scoring_options_are_spelled(medbench_cli):
    text = " ".join(medbench_cli("train", "--help").output.split())  # help text is wrapped to the terminal
    assert "--eval-batch-size" in text and "with eval- in front" in text


def test_a_mapping_option_is_read_from_the_command_line():
    """`--base-options max_steps=1` (or a JSON object) reaches a dict option as a mapping, not as a crash."""
    from medbench.errors import MedbenchError
    from medbench.training import _coerce

    annotation = dict[str, object] | None
    assert _coerce("max_steps=1,learning-rate=2e-4", annotation, "base_options") == {"max_steps": "1",
                                                                                    "learning_rate": "2e-4"}
    assert _coerce('{"max_steps": 1}', annotation, "base_options") == {"max_steps": 1}
    with pytest.raises(MedbenchError, match=r"--base-options 'max_steps' is not a mapping"):
        _coerce("max_steps", annotation, "base_options")


def _value(choice):
    return getattr(choice, "value", choice)  # an enum member in the config


def test_the_learning_rate_schedule_is_an_option_that_reaches_the_trainer(tmp_path):
    from trl import DPOConfig, SFTConfig

    from medbench.models import LoadOptions
    from medbench.trainers.hf import training_arguments
    from medbench.training import TrainRequest

    options = {"lr_scheduler_type": "cosine", "warmup_ratio": 0.1, "weight_decay": 0.01}
    config = build_config(SFTOptions, {}, options, "sft")
    request = TrainRequest(model_ref="unused", task="medqa", output_dir=tmp_path, config=config,
                           load_options=LoadOptions(device="cpu"))
    for config_class in (SFTConfig, DPOConfig):
        args = training_arguments(config_class, request, config, 1e-4)
        assert _value(args.lr_scheduler_type) == "cosine" and args.weight_decay == 0.01
        assert args.get_warmup_steps(100) == 10  # a tenth of the optimizer steps
    defaults = training_arguments(SFTConfig, request, build_config(SFTOptions, {}, {}, "sft"), 1e-4)
    assert _value(defaults.lr_scheduler_type) == "linear" and defaults.get_warmup_steps(100) == 0
    for bad, message in (({"lr_scheduler_type": "cosin"}, "unknown --lr-scheduler-type 'cosin'"),
                         ({"warmup_ratio": 1.0}, "--warmup-ratio must lie in"),
                         ({"weight_decay": -1}, "--weight-decay be 0 or more")):
        with pytest.raises(MedbenchError, match=message):
            build_config(SFTOptions, {}, bad, "sft")


def test_a_wrapped_trainers_option_given_to_the_wrapper_names_base_options():
    from medbench_plugins.curriculum import CurriculumConfig

    with pytest.raises(MedbenchError, match="the wrapped trainer's options go in --base-options max_steps=VALUE"):
        build_config(CurriculumConfig, {}, {"max_steps": 2}, "curriculum")
