"""Bad input, case by case: every case ends in one line on stderr that starts with 'Error:' and names the problem
and the fix, a non-zero exit, no traceback, and the records and runs already on disk left byte for byte as they were.

The cases run the real command line in this process (``medbench.cli.main``), so the matrix stays fast; none loads
the embedded model. See also test_cli.py (the same contract in fresh processes), test_nan_loss.py, test_resume.py
and test_security.py.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from medbench.cli import main

MEDQA_ROW = {"question": "A 30-year-old has fever. Best next step?", "answer": "Blood cultures",
             "options": {"A": "Blood cultures", "B": "MRI", "C": "Discharge", "D": "Biopsy"},
             "answer_idx": "A", "meta_info": "step2&3"}

# A complete task YAML with no code in it (lm-eval reads the json file itself, relative to the working directory,
# which is the case's scratch folder: the data sits inside the task folder, as an untrusted folder's data must).
PLAIN_TASK = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files: {{test: user_tasks/data.jsonl}}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{q}}}}"
doc_to_choice: ["yes", "no"]
doc_to_target: 0
metric_list: [{{metric: acc}}]
"""


@dataclass
class Ctx:
    """Where a case runs: a scratch folder, the tiny model, and the leaderboard and runs that must survive."""

    tmp: Path
    model: Path
    keep: Path  # everything under it exists before the case and must be byte-identical after it
    monkeypatch: pytest.MonkeyPatch

    @property
    def lb(self) -> str:
        return str(self.keep / "lb")

    @property
    def runs(self) -> str:
        return str(self.keep / "runs")

    def write(self, relative: str, text: str) -> Path:
        path = self.tmp / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def eval(self, *args: str, model: str | None = None) -> list[str]:
        limit = [] if "--limit" in args else ["--limit", "2"]  # an option given twice with two values is refused
        return ["eval", "--model", model or str(self.model), "--leaderboard-dir", self.lb, *limit, *args]

    def train(self, plugin: str, *args: str, model: str | None = None) -> list[str]:
        return ["train", "--plugin", plugin, "--model", model or str(self.model), "--task", "medqa",
                "--output-dir", self.runs, "--leaderboard-dir", self.lb, "--eval-limit", "2", *args]

    def medqa_file(self, *rows: dict | str) -> str:
        lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
        return f"medqa={self.write('data/mine.jsonl', ''.join(line + chr(10) for line in lines))}"


@dataclass
class Case:
    id: str
    argv: Callable[[Ctx], list[str]]
    problem: list[str]  # fragments of the error line that name the problem
    fix: list[str]  # fragments that name the fix
    warning: str | None = None  # a fragment of a 'Warning:' line that must come first (plugin load failures)
    extra: list[str] = field(default_factory=list)


# --- the cases' set-ups that need more than an argument list ----------------------------------------------------

def include_dir(ctx: Ctx, name: str, text: str) -> str:
    folder = ctx.tmp / "user_tasks"
    ctx.write(f"user_tasks/{name}.yaml", text)
    ctx.write("user_tasks/data.jsonl", '{"q": "Is this a question?"}\n')  # PLAIN_TASK's data, inside the folder
    return str(folder)


def copy_model(ctx: Ctx, name: str, keep: tuple[str, ...] = ("config.json", "tokenizer.json",
                                                              "tokenizer_config.json")) -> Path:
    target = ctx.tmp / name
    target.mkdir()
    for file in keep:
        if (ctx.model / file).exists():
            shutil.copy(ctx.model / file, target / file)
    return target


def garbage_weights(ctx: Ctx) -> list[str]:
    target = copy_model(ctx, "corrupt")
    (target / "model.safetensors").write_bytes(b"\x00not a safetensors file" * 8)
    return ctx.eval("--tasks", "medqa", model=str(target))


def truncated_weights(ctx: Ctx) -> list[str]:
    target = copy_model(ctx, "truncated")
    data = (ctx.model / "model.safetensors").read_bytes()
    (target / "model.safetensors").write_bytes(data[: len(data) // 2])  # a save or copy cut off half way
    return ctx.eval("--tasks", "medqa", model=str(target))


def no_weights(ctx: Ctx) -> list[str]:
    return ctx.eval("--tasks", "medqa", model=str(copy_model(ctx, "partial")))


def pickle_weights(ctx: Ctx) -> list[str]:
    import torch

    target = copy_model(ctx, "pickled")
    torch.save({}, target / "pytorch_model.bin")
    return ctx.eval("--tasks", "medqa", model=str(target))


def adapter_without_base(ctx: Ctx) -> list[str]:
    import torch
    from safetensors.torch import save_file

    adapter = ctx.tmp / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "base_model_name_or_path": str(ctx.tmp / "deleted-base"), "r": 4, "lora_alpha": 8,
        "target_modules": ["q_proj"], "task_type": "CAUSAL_LM"}))
    save_file({"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": torch.zeros(4, 32)},
              str(adapter / "adapter_model.safetensors"))
    return ctx.eval("--tasks", "medqa", model=str(adapter))


def broken_plugin(ctx: Ctx) -> list[str]:
    ctx.write("plugins/my_trainer.py", "import medbench\nimport no_such_dependency_xyz\n")
    return ["--plugins-dir", str(ctx.tmp / "plugins"), *ctx.train("my_trainer")]


def raising_plugin(ctx: Ctx) -> list[str]:
    ctx.write("plugins/raiser.py", "from medbench import hookimpl\n\n\n@hookimpl\ndef register_tasks(register):\n"
                                   "    raise RuntimeError('the task index is gone')\n")
    return ["--plugins-dir", str(ctx.tmp / "plugins"), *ctx.eval("--tasks", "medqa")]


def disk_full_on_write(ctx: Ctx) -> list[str]:
    """The disk fills up while the record is written (after scoring): the rename into place fails."""
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if str(ctx.keep) in str(dst):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst, *args, **kwargs)

    ctx.monkeypatch.setattr(os, "replace", replace)
    return ctx.eval("--tasks", "medqa", "--label", "new-model")


def permission_denied(ctx: Ctx) -> list[str]:
    """A read-only leaderboard (chmod is no protection for root, so the refusal is simulated)."""
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and str(ctx.keep) in str(dir):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real(*args, dir=dir, **kwargs)

    ctx.monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    return ctx.eval("--tasks", "medqa")


def started_run(ctx: Ctx) -> list[str]:
    """A run killed before its first checkpoint, resumed with another --max-steps."""
    from dataclasses import asdict

    from medbench_plugins.sft import SFTOptions

    run = ctx.tmp / "runs" / "killed"
    run.mkdir(parents=True)
    (run / "medbench_run.json").write_text(json.dumps({
        "run_id": "killed", "plugin": "sft", "model_ref": str(ctx.model), "task": "medqa", "seed": 1234,
        "status": "running", "config": asdict(SFTOptions(max_steps=6, save_steps=2))}))
    return ["train", "--plugin", "sft", "--model", str(ctx.model), "--task", "medqa", "--output-dir",
            str(ctx.tmp / "runs"), "--leaderboard-dir", ctx.lb, "--run-name", "killed", "--resume",
            "--max-steps", "8", "--save-steps", "2"]


def finished_run(ctx: Ctx) -> list[str]:
    run = ctx.tmp / "runs" / "done"
    run.mkdir(parents=True)
    (run / "medbench_run.json").write_text(json.dumps({"run_id": "done", "plugin": "sft", "status": "complete"}))
    return ["train", "--plugin", "sft", "--model", str(ctx.model), "--task", "medqa", "--output-dir",
            str(ctx.tmp / "runs"), "--leaderboard-dir", ctx.lb, "--run-name", "done", "--resume"]


CASES = [
    # task YAMLs
    Case("malformed-task-yaml",
         lambda c: c.eval("--include-path", include_dir(c, "broken", "task: broken\ndoc_to_text: [unclosed\n"),
                          "--tasks", "broken"),
         ["broken.yaml is not valid YAML at line"], ["fix the YAML syntax"]),
    Case("task-yaml-missing-fields",
         lambda c: c.eval("--include-path", include_dir(c, "bare", "task: bare\ntest_split: test\n"), "--tasks", "bare"),
         ["task 'bare'", "is missing doc_to_text, doc_to_target"], ["add the missing field"]),
    Case("task-yaml-unknown-field",
         lambda c: c.eval("--include-path", include_dir(c, "extra", PLAIN_TASK.format(name="extra")
                                                        + "primary_metric: acc\n"), "--tasks", "extra"),
         ["has unknown key(s) primary_metric"], ["under `metadata:`"]),
    Case("task-yaml-imports-untrusted-code",
         lambda c: c.eval("--include-path", include_dir(c, "coded", PLAIN_TASK.format(name="coded").replace(
             "dataset_path: json", "custom_dataset: !function utils.load")), "--tasks", "coded"),
         ["imports code (!function utils.load)", "does not trust"], ["--trust-task-code"]),
    Case("include-path-missing", lambda c: c.eval("--include-path", str(c.tmp / "no-such-folder"), "--tasks", "medqa"),
         ["--include-path", "does not exist"], ["pass a folder of task YAMLs"]),
    Case("unknown-task", lambda c: c.eval("--tasks", "medqaa"), ["unknown task 'medqaa'"],
         ["did you mean medqa", "medbench tasks"]),
    Case("unknown-metric",
         lambda c: c.eval("--include-path", include_dir(c, "scored", PLAIN_TASK.format(name="scored")
                                                        + "metadata: {medbench_metrics: [no_such_metric]}\n"),
                          "--tasks", "scored"),
         ["unknown metric(s) no_such_metric"], ["use registered metrics", "macro_f1"]),
    # plugins and their options
    Case("unknown-trainer-plugin", lambda c: c.train("sftt"), ["unknown trainer plugin 'sftt'"], ["did you mean sft"]),
    Case("unknown-trainer-option", lambda c: c.train("sft", "--no-such-option", "1"),
         ["trainer 'sft' has no option --no-such-option"], ["lists its options:", "--learning-rate"]),
    Case("unknown-ordering", lambda c: c.train("curriculum", "--base", "sft", "--ordering", "backwards"),
         ["curriculum needs an ordering, got 'backwards'"], ["--ordering one of", "interleaved_curriculum"]),
    Case("plugin-fails-to-import", broken_plugin, ["unknown trainer plugin 'my_trainer'"],
         ["install the plugin that provides it"], warning="no_such_dependency_xyz"),
    Case("plugin-hook-raises", raising_plugin, ["raiser", "register_tasks", "the task index is gone"],
         ["fix"]),
    Case("malformed-config-yaml",
         lambda c: c.train("sft", "--config", str(c.write("opts.yaml", "max_steps: [1,\n"))),
         ["opts.yaml is not valid YAML at line"], ["fix the YAML syntax"]),
    Case("missing-config-file", lambda c: c.train("sft", "--config", str(c.tmp / "nope.yaml")),
         ["config file", "nope.yaml does not exist"], ["check the path given to --config"]),
    # data files
    Case("data-file-missing", lambda c: c.eval("--tasks", "medqa", "--data-file", f"medqa={c.tmp / 'none.jsonl'}"),
         ["none.jsonl does not exist"], ["check the path"]),
    Case("data-file-empty", lambda c: c.eval("--tasks", "medqa", "--data-file", c.medqa_file()),
         ["mine.jsonl is empty"], ["at least one example"]),
    Case("data-file-not-json", lambda c: c.eval("--tasks", "medqa", "--data-file", c.medqa_file("{not json")),
         ["is not valid JSON lines"], ["one JSON object per line"]),
    Case("data-file-wrong-columns",
         lambda c: c.eval("--tasks", "medqa", "--data-file", c.medqa_file({"question": "Q?", "choices": ["a"]})),
         ["mine.jsonl row 1 is missing column(s)"], ["convert the file to the task's published format"]),
    Case("label-not-among-choices",
         lambda c: c.eval("--tasks", "medqa", "--data-file", c.medqa_file({**MEDQA_ROW, "answer_idx": "E"})),
         ["mine.jsonl row 1", "not among the 4 choices"], ["fix the answer field"]),
    Case("data-file-argument-malformed", lambda c: c.eval("--tasks", "medqa", "--data-file", "medqa"),
         ["--data-file 'medqa' is not TASK=PATH"], ["write --data-file medqa=/path/to/test.jsonl"]),
    Case("dpo-pair-chosen-equals-rejected",
         lambda c: c.train("dpo", "--pairs", "file", "--pairs-file", str(c.write("pairs.jsonl", json.dumps(
             {"prompt": "Q? Answer:", "chosen": " C", "rejected": " C "}) + "\n"))),
         ["pairs.jsonl line 1: chosen and rejected are the same text"], ["differs from the chosen one"]),
    # models and checkpoints
    Case("model-path-missing", lambda c: c.eval("--tasks", "medqa", model=str(c.tmp / "no-such-model")),
         ["no-such-model' does not exist"], ["check the path"]),
    Case("corrupt-checkpoint", garbage_weights, ["could not be loaded", "model.safetensors is truncated or corrupt"],
         ["use an earlier checkpoint"]),
    Case("truncated-checkpoint", truncated_weights, ["model.safetensors is truncated or corrupt"],
         ["the save was interrupted"]),
    Case("checkpoint-without-weights", no_weights, ["has config.json but no weights"], ["the checkpoint is partial"]),
    Case("pickle-checkpoint", pickle_weights, ["holds only pickle weights", "can run code"],
         ["convert them to safetensors"]),
    Case("adapter-base-missing", adapter_without_base, ["the base model of adapter", "cannot be loaded",
                                                        "deleted-base' does not exist"],
         ["edit base_model_name_or_path"]),
    # numbers
    Case("limit-zero", lambda c: c.eval("--tasks", "medqa", "--limit", "0"), ["--limit must be a positive", "got 0"],
         ["pass --limit 1 or more"]),
    Case("limit-negative", lambda c: c.eval("--tasks", "medqa", "--limit", "-3"), ["got -3"], ["--limit 1 or more"]),
    Case("batch-size-zero", lambda c: c.eval("--tasks", "medqa", "--batch-size", "0"),
         ["--batch-size must be a positive whole number or auto"], ["--batch-size auto"]),
    Case("unknown-dtype", lambda c: c.eval("--tasks", "medqa", "--dtype", "fp8"), ["unknown dtype 'fp8'"],
         ["auto, bf16, fp16, fp32"]),
    # training that goes wrong
    Case("nan-loss", lambda c: c.train("sft", "--run-name", "nan", "--learning-rate", "1e30", "--max-steps", "3",
                                       "--save-steps", "1", "--max-examples", "4", "--train-batch-size", "2"),
         ["training diverged at step 2", "loss nan", "last good checkpoint", "checkpoint-1 is kept"],
         ["lower --learning-rate (this run: 1e+30)"]),
    Case("resume-without-run-name", lambda c: c.train("sft", "--resume"), ["--resume needs the run to continue"],
         ["pass --run-name NAME"]),
    Case("resume-a-finished-run", finished_run, ["run", "done is already complete"], ["nothing to resume"]),
    Case("resume-a-run-that-does-not-exist", lambda c: c.train("sft", "--run-name", "never", "--resume"),
         ["cannot resume: run directory", "never does not exist"], ["check --run-name and --output-dir"]),
    Case("resume-with-other-options", started_run,
         ["--resume with options that differ from run killed", "--max-steps was 6, now 8"],
         ["pass the options of the original run"]),
    # recipes (medbench sweep)
    Case("recipe-with-empty-grid",
         lambda c: ["sweep", str(c.write("recipe.yaml", "name: empty\ngrid: {}\ncell: {plugin: sft}\n")),
                    "--output-dir", c.runs, "--dry-run"],
         ["recipe.yaml", "has an empty grid"], ["list at least one factor"]),
    # writing records
    Case("records-dir-under-a-file", lambda c: ["eval", "--model", str(c.model), "--tasks", "medqa",
                                                "--leaderboard-dir", str(c.keep / "notes.txt" / "lb")],
         ["cannot write to", "notes.txt/lb", "Not a directory"], ["pass another --leaderboard-dir"]),
    Case("records-dir-permission-denied", permission_denied, ["cannot write to", "Permission denied"],
         ["write permission"]),
    Case("disk-full-writing-a-record", disk_full_on_write, ["cannot write", "record", "No space left on device"],
         ["check free disk space"]),
]


def make_keep(root: Path) -> None:
    """A leaderboard with one record, a finished run and a stray file: what earlier work left on disk."""
    record = root / "lb" / "records" / "earlier-model-0123456789ab" / "medqa"
    record.mkdir(parents=True)
    (record / "record.json").write_text(json.dumps({"record_key": "medqa", "score": 0.5, "n": 2,
                                                    "samples_file": "samples.jsonl"}))
    (record / "samples.jsonl").write_text('{"doc_id": 0, "pred": 1, "gold": 1}\n')
    (root / "lb" / "leaderboard.md").write_text("| checkpoint | medqa |\n|---|---|\n| earlier-model | 0.500 |\n")
    checkpoint = root / "runs" / "earlier-run" / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    (checkpoint / "adapter_model.safetensors").write_bytes(b"weights")
    (checkpoint / "medbench_manifest.json").write_text('{"step": 2}')
    (root / "notes.txt").write_text("a file, not a folder\n")


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_naming_problem_and_fix(case, tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    keep = tmp_path / "keep"
    make_keep(keep)
    before = snapshot(keep)
    ctx = Ctx(tmp=tmp_path, model=tiny_model_dir, keep=keep, monkeypatch=monkeypatch)
    argv = case.argv(ctx)

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()

    assert exit_info.value.code not in (0, None), err
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, err
    error = errors[0]
    assert " — " in error, error  # problem — fix
    problem, _, fix = error.partition(" — ")
    for fragment in case.problem:
        assert fragment in problem, f"{fragment!r} not in {problem!r}"
    for fragment in case.fix:
        assert fragment in fix, f"{fragment!r} not in {fix!r}"
    if case.warning:
        assert any(line.startswith("Warning:") and case.warning in line for line in lines), err
    assert exit_info.value.code == 2, error  # input errors exit 2; 1 is for unexpected failures
    after = snapshot(keep)
    changed = [name for name, data in before.items() if after.get(name) != data]
    assert not changed, f"files written before the failing command were changed or removed: {changed}"


def test_the_matrix_covers_what_issue_8_lists():
    ids = {case.id for case in CASES}
    assert len(ids) == len(CASES) >= 25
    for needed in ("malformed-task-yaml", "task-yaml-missing-fields", "task-yaml-unknown-field", "unknown-task",
                   "unknown-trainer-plugin", "unknown-metric", "unknown-ordering", "data-file-missing",
                   "data-file-empty", "data-file-wrong-columns", "label-not-among-choices",
                   "dpo-pair-chosen-equals-rejected", "model-path-missing", "corrupt-checkpoint",
                   "truncated-checkpoint", "adapter-base-missing", "plugin-fails-to-import", "plugin-hook-raises",
                   "limit-zero", "limit-negative", "nan-loss", "disk-full-writing-a-record", "recipe-with-empty-grid",
                   "records-dir-permission-denied"):
        assert needed in ids


def test_debug_shows_the_traceback_instead(tmp_path, monkeypatch, capsys):
    from medbench.errors import MedbenchError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(MedbenchError, match="unknown task 'medqaa'"):
        main(["--debug", "eval", "--tasks", "medqaa"])


def test_task_pairs_with_a_wrong_choice_equal_to_the_gold_answer_are_refused():
    from medbench.errors import MedbenchError
    from medbench.trainingdata import TrainingExample
    from medbench_plugins.dpo import task_pairs

    same = TrainingExample(doc_id=4, prompt="Q?", completion=" aspirin", rejected=[" ibuprofen", " aspirin"],
                           answer="aspirin")
    with pytest.raises(MedbenchError, match="training document 5: a wrong choice is the same text as the gold answer"):
        task_pairs([same], seed=1, task="mytask")


def test_a_training_label_not_among_the_choices_is_named(tmp_path):
    """A user training file whose answer names no option fails with the document, not a ValueError."""
    from types import SimpleNamespace

    from medbench.errors import MedbenchError
    from medbench.trainingdata import examples_from_task

    docs = [{"q": "Q1"}, {"q": "Q2"}]
    config = SimpleNamespace(task="mine", training_split="train", process_docs=None, target_delimiter=" ",
                             description="", fewshot_delimiter="\n\n", output_type="multiple_choice")
    task = SimpleNamespace(config=config, dataset={"train": docs}, training_docs=lambda: docs,
                           doc_to_text=lambda doc: doc["q"], doc_to_choice=lambda doc: ["yes", "no"],
                           doc_to_target=lambda doc: "yes" if doc["q"] == "Q1" else "maybe")
    with pytest.raises(MedbenchError, match=r"train document 2: the answer 'maybe' is not among its 2 choices"):
        examples_from_task(task, {})


def test_brackets_in_an_error_or_a_warning_are_printed_as_written(monkeypatch, capsys):
    """`pip install 'medbench[vllm]'` or a JSON list in a message is text: rich markup must not swallow it."""
    import warnings

    import medbench.cli as cli
    from medbench.errors import MedbenchError

    def fail(*args, **kwargs):
        warnings.warn("plugin [bold]x[/bold] said [1, 2]")
        raise MedbenchError("needs medbench[vllm] and [red]nothing else", "pip install 'medbench[vllm]'")

    monkeypatch.setattr(cli.cli, "main", fail)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["tasks"])
    assert exit_info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "needs medbench[vllm] and [red]nothing else — pip install 'medbench[vllm]'" in err
    assert "plugin [bold]x[/bold] said [1, 2]" in err


def test_brackets_in_labels_and_paths_are_printed_as_written(tiny_model_dir, tmp_path):
    """Informational lines and tables carry labels, paths and task names: `team[a]/m` or a folder `runs[1]` is
    text, not rich markup (which would swallow `[a]` and `[1]`)."""
    from click.testing import CliRunner

    from medbench.cli import cli

    board = tmp_path / "board[a]"
    result = CliRunner().invoke(cli, ["eval", "--model", str(tiny_model_dir), "--tasks", "medqa", "--limit", "2",
                                      "--label", "team[bold]a[/bold]/m", "--leaderboard-dir", str(board)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "│ team[bold]a[/bold]/m │ medqa" in text  # the results table's model cell
    assert f"{board}/records" in text  # the closing line naming where the records went
