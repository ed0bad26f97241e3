"""Hostile and bad input, round 14.

- Options with no effect in the run given were taken silently: `eval --data-file medqa:train=...` on a zero-shot
  eval, `train --plugin curriculum --ordering random --n-clusters 4`, `--lora-r` with `--method full`, `--density`
  on a slerp merge, `--dtype` for a served model, `--scorer` where every task generates, `--trust-task-code` with
  no task folder. Each is now one line (exit 2) saying why and what to do. Trainers declare their inert options
  through the SDK (a config's ``ignored_options()``); a recipe's shared options stay quiet.
- A killed writer (SIGKILL) left ``.record.json.*.tmp`` files in record folders for good, and a killed render its
  staging folder in the leaderboard. Temp files now name their writer; dead writers' leftovers are removed, live
  ones and anything not medbench's are never touched, and Ctrl-C removes a writer's own temp file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from medbench.errors import MedbenchError
from test_hostile_round10 import _run
from test_task_inputs import one_line_error

ROOT = Path(__file__).resolve().parents[1]


# --- options that change nothing in the run given ----------------------------------------------------------------

MEDQA = ROOT / "tasks" / "medqa" / "data"


def test_a_train_split_file_on_a_zero_shot_eval_is_refused(tmp_path, capsys):
    """Refused once the task's data is read, before the model loads (an unknown model is never reached)."""
    line = one_line_error(*_run(capsys, "eval", "--model", "no-such-model", "--tasks", "medqa", "--data-file",
                                f"medqa:train={MEDQA / 'train.jsonl'}", "--leaderboard-dir", str(tmp_path / "lb")))
    assert "--data-file medqa:train would never be read" in line and "zero-shot" in line
    assert "pass --num-fewshot N" in line
    assert not list((tmp_path / "lb").glob("records/*"))


@pytest.mark.parametrize("extra, splits, words", [
    (["--num-fewshot", "2"], ["train", "validation"], "medqa:validation would never be read: scoring medqa "
                                                      "reads its 'test' split and draws its demonstrations "
                                                      "from 'train'"),
])
def test_a_data_file_for_a_split_the_eval_never_reads_is_refused(tmp_path, capsys, extra, splits, words):
    files = [arg for split in splits for arg in ("--data-file", f"medqa:{split}={MEDQA / (split + '.jsonl')}")]
    line = one_line_error(*_run(capsys, "eval", "--model", "no-such-model", "--tasks", "medqa", *files,
                                "--leaderboard-dir", str(tmp_path / "lb"), *extra))
    assert words in line


def test_the_splits_an_eval_reads_decide_alone():
    """Control: the files an eval reads pass (demonstrations' pool on a few-shot eval, the split scored)."""
    from medbench.data_file_splits import refuse_unread_files
    from medbench.evaluation import EvalConfig
    from medbench.tasks import build_registry

    registry = build_registry()
    files = {"medqa": {"data_files": {"train": "/x/train.jsonl", "test": "/x/test.jsonl"}}}
    refuse_unread_files(EvalConfig(tasks=["medqa"], num_fewshot=2, task_metadata=files), registry)
    refuse_unread_files(EvalConfig(tasks=["medqa"], split="validation",
                                   task_metadata={"medqa": {"data_files": {"validation": "/x/v.jsonl"}}}), registry)
    with pytest.raises(MedbenchError, match="medqa:train would never be read"):
        only_train = {"medqa": {"data_files": {"train": "/x/train.jsonl"}}}
        refuse_unread_files(EvalConfig(tasks=["medqa"], num_fewshot=0, task_metadata=only_train), registry)


def test_a_test_file_alone_under_split_validation_is_refused(tmp_path, capsys):
    """The user's file replaces the task's data, so no validation split is left to score: said before any load."""
    test_file = ROOT / "tasks" / "uti" / "data" / "test.jsonl"
    line = one_line_error(*_run(capsys, "eval", "--model", "no-such-model", "--tasks", "uti", "--split", "validation",
                                "--data-file", f"uti={test_file}", "--leaderboard-dir", str(tmp_path / "lb")))
    assert "task 'uti' has no 'validation' items" in line and "--data-file uti:validation=PATH" in line


def test_every_split_of_a_dataset_given_beside_the_scored_one_is_a_warning():
    """A script giving each split of a dataset (stock reads them all) is not refused where the scored split's file is
    among them: the unread ones are named in a warning."""
    from medbench.data_file_splits import refuse_unread_files
    from medbench.evaluation import EvalConfig
    from medbench.tasks import build_registry

    registry = build_registry()
    files = {"medqa": {"data_files": {"train": "/x/t.jsonl", "validation": "/x/v.jsonl", "test": "/x/s.jsonl"}}}
    with pytest.warns(UserWarning, match="medqa:train would never be read.*zero-shot") as caught:
        refuse_unread_files(EvalConfig(tasks=["medqa"], task_metadata=files), registry)
    assert len(caught) == 2 and "medqa:validation" in str(caught[1].message)
    with pytest.warns(UserWarning, match="medqa:validation would never be read.*from 'train'"):
        refuse_unread_files(EvalConfig(tasks=["medqa"], num_fewshot=2, task_metadata=files), registry)


def test_train_refuses_a_scored_only_tasks_train_file(tmp_path, capsys):
    data = ROOT / "tasks" / "medmcqa" / "data" / "train.json"
    line = one_line_error(*_run(capsys, "train", "--plugin", "sft", "--task", "medqa", "--eval-tasks",
                                "medqa,medmcqa", "--data-file", f"medmcqa:train={data}",
                                "--output-dir", str(tmp_path / "runs")))
    assert "--data-file medmcqa:train would never be read" in line and "--task medqa" in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, words", [
    (["--plugin", "sft", "--method", "full", "--lora-r", "8"], "--lora-r has no effect in this run: --method full"),
    (["--plugin", "sft", "--max-steps", "5", "--num-epochs", "3"], "--num-epochs has no effect in this run"),
    (["--plugin", "sft", "--lr-scheduler-type", "constant", "--warmup-ratio", "0.1"],
     "constant schedule has no warmup"),
    (["--plugin", "dpo", "--samples-per-prompt", "3"], "only --pairs sampled samples answers"),
    (["--plugin", "merge", "--models", "a", "--method", "slerp", "--density", "0.3"],
     "--density has no effect in this run: --method slerp keeps every weight"),
    (["--plugin", "curriculum", "--base", "sft", "--ordering", "random", "--n-clusters", "4"],
     "--n-clusters has no effect in this run: the random ordering reads no categories"),
    (["--plugin", "curriculum", "--base", "sft", "--ordering", "blocked", "--n-clusters", "4"],
     "only --category-source llm_clusters makes clusters"),
    (["--plugin", "curriculum", "--base", "sft", "--ordering", "blocked", "--difficulty-file", "d.jsonl"],
     "--difficulty-file has no effect in this run: the blocked ordering reads no difficulty"),
    (["--plugin", "curriculum", "--base", "sft", "--ordering", "curriculum", "--tiers", "thresholds"],
     "only --difficulty-models scores difficulty into tiers"),
    (["--plugin", "curriculum", "--base", "sft", "--ordering", "random", "--sample-seed", "3"],
     "--sample-seed has no effect in this run"),
    (["--plugin", "curriculum", "--base", "sft", "--ordering", "random", "--base-options", "method=full,lora_r=4"],
     "--lora-r has no effect in this run"),  # the wrapped trainer's options are checked alike
])
def test_a_trainer_option_the_others_make_inert_is_refused(tmp_path, capsys, args, words):
    line = one_line_error(*_run(capsys, "train", "--task", "medqa", "--output-dir", str(tmp_path / "runs"), *args))
    assert words in line and "leave out" in line
    assert not (tmp_path / "runs").exists()


def test_options_the_run_reads_are_still_taken():
    """Controls: the same options where they apply build as before, inside the user's own run."""
    from medbench.trainer_options import build_config, typed_options
    from medbench_plugins.curriculum import CurriculumConfig
    from medbench_plugins.merge import MergeConfig

    with typed_options():
        build_config(CurriculumConfig, {}, {"base": "sft", "ordering": "blocked", "category_source": "llm_clusters",
                                            "n_clusters": "4", "sample_seed": "1",
                                            "base_options": "max_examples=10"}, "curriculum")
        build_config(CurriculumConfig, {}, {"base": "sft", "ordering": "random", "difficulty_file": "d.jsonl",
                                            "base_options": "exclude_difficulty=hard"}, "curriculum")
        build_config(MergeConfig, {}, {"models": "a", "method": "ties", "density": "0.3"}, "merge")


def test_a_recipes_shared_options_stay_quiet():
    """A recipe gives one options block to every arm of its grid (category_source under random too): only the
    user's own run refuses, so the committed curriculum recipe still plans."""
    from medbench.trainer_options import build_config, recipe_options
    from medbench_plugins.curriculum import CurriculumConfig

    with recipe_options("recipe x, step curriculum"):
        config = build_config(CurriculumConfig, {}, {"base": "sft", "ordering": "random", "n_clusters": 4,
                                                     "category_source": "llm_clusters"}, "curriculum")
    assert config.n_clusters == 4


def test_the_python_api_refuses_inert_options_in_its_own_spelling(tmp_path):
    import medbench

    with pytest.raises(MedbenchError, match=r"^lora_alpha has no effect in this run: method full") as refused:
        medbench.train("sft", "medqa", options={"method": "full", "lora_alpha": 8}, output_dir=tmp_path / "runs")
    assert "leave out lora_alpha" in str(refused.value)


@dataclass
class _ThirdPartyOptions:
    mode: str = "a"
    knob: int = 1  # read by mode b only

    def ignored_options(self):
        return {} if self.mode == "b" else {"knob": "only mode b reads it"}


@dataclass
class _BrokenOptions:
    knob: int = 1

    def ignored_options(self):
        raise RuntimeError("boom")


@dataclass
class _MistypedOptions:
    knob: int = 1

    def ignored_options(self):
        return ["knob"]


def test_a_third_party_trainer_declares_its_inert_options_through_the_sdk():
    from medbench.plugin_calls import PluginError
    from medbench.trainer_options import build_config, typed_options

    with typed_options(), pytest.raises(MedbenchError, match="--knob has no effect in this run: only mode b"):
        build_config(_ThirdPartyOptions, {}, {"knob": "2"}, "mine")
    with typed_options():
        assert build_config(_ThirdPartyOptions, {}, {"knob": "2", "mode": "b"}, "mine").knob == 2
        with pytest.raises(PluginError, match=r"failed in ignored_options\(\): RuntimeError: boom"):
            build_config(_BrokenOptions, {}, {"knob": "2"}, "mine")
        with pytest.raises(PluginError, match=r"ignored_options\(\): TypeError: it returned list, not a dict"):
            build_config(_MistypedOptions, {}, {"knob": "2"}, "mine")
    assert build_config(_ThirdPartyOptions, {}, {"knob": "2"}, "mine").knob == 2  # outside a typed run: quiet


def test_trust_task_code_without_a_task_folder_is_refused(tmp_path, capsys):
    import medbench

    line = one_line_error(*_run(capsys, "eval", "--tasks", "medqa", "--trust-task-code"))
    assert "--trust-task-code trusts the task folders given with --include-path, and none is given" in line
    with pytest.raises(MedbenchError, match="trust_task_code=True trusts the task folders given with include_paths"):
        medbench.evaluate(tasks="medqa", trust_task_code=True, leaderboard_dir=tmp_path / "lb")


def test_in_process_model_options_for_a_served_model_are_refused(tmp_path, capsys):
    """Refused before any request: nothing listens on port 9."""
    line = one_line_error(*_run(capsys, "eval", "--model", "openai:m", "--base-url", "http://127.0.0.1:9/v1",
                                "--tasks", "medqa", "--dtype", "bf16", "--batch-size", "4"))
    assert "--dtype, --batch-size set a model loaded in this process" in line and "'openai' backend" in line
    assert "--backend-option" in line


def test_a_backend_declares_the_in_process_options_it_reads(monkeypatch):
    from medbench import backends

    class Reads:
        name, eval_options = "mine", ("batch_size",)

    monkeypatch.setattr(backends, "backend_for", lambda ref, name: (Reads(), ref))
    backends.refuse_in_process_options("mine:x", None, ["batch_size"])
    with pytest.raises(MedbenchError, match="--device sets a model loaded in this process"):
        backends.refuse_in_process_options("mine:x", None, ["batch_size", "device"])


def test_a_scorer_where_every_task_generates_is_refused(capsys):
    line = one_line_error(*_run(capsys, "eval", "--tasks", "medqa", "--mode", "generate", "--scorer", "hflm"))
    assert "--scorer picks how log-likelihoods are computed" in line and "leave out --scorer" in line


@pytest.mark.parametrize("args, words", [
    (["--seed", "3"], "--seed draws --option-orders' subset of orders"),
    (["--data-file", "medqa=x.jsonl"], "--data-file medqa is never read: difficulty scores the 'train' split"),
    (["--data-file", "medmcqa:train=x.jsonl"], "--data-file medmcqa:train is never read"),
])
def test_difficulty_refuses_what_it_would_never_read(tmp_path, capsys, args, words):
    line = one_line_error(*_run(capsys, "difficulty", "--models", "m", "--task", "medqa", "--output",
                                str(tmp_path / "o.jsonl"), *args))
    assert words in line and not (tmp_path / "o.jsonl").exists()


# --- temp files a killed writer leaves --------------------------------------------------------------------------

def _aged(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)
    return path


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_dead_writers_temp_files_are_removed_and_nothing_else(tmp_path):
    from medbench.records import ensure_leaderboard_dir, read_records
    from medbench.temp_files import HOST_TAG
    from leaderboard_helpers import make_record

    board = tmp_path / "lb"
    make_record(board, "m", "medqa", [0, 1, 1], [0, 1, 0])
    [folder] = board.glob("records/*/medqa")
    dead, live = _dead_pid(), os.getpid()
    stale = {f".record.json.{HOST_TAG}-{dead}.abcd_123.tmp": 120,  # this machine, its writer gone
             ".samples.jsonl.k2j4h5g6.tmp": 7200}  # the older naming, untouched for two hours
    kept = {f".record.json.{HOST_TAG}-{live}.zzzz1111.tmp": 120,  # a live writer's
            f".record.json.{HOST_TAG}-{dead}.yyyy2222.tmp": 0,  # a dead writer's, touched just now
            ".record.json.0badc0de-1.xxxx3333.tmp": 120,  # another machine's, within the hour
            ".notes.txt.abcd1234.tmp": 7200,  # not a file medbench writes there
            "my.tmp": 7200}
    for name, age in {**stale, **kept}.items():
        (folder / name).write_text("{half a rec")
        _aged(folder / name, age)
    link = folder / ".record.json.abcdefgh.tmp"  # a link with medbench's naming: never followed nor removed
    link.symlink_to(tmp_path / "elsewhere")
    _aged(link, 7200)
    assert [r["model"]["label"] for r in read_records(board)] == ["m"]  # leftovers are never read as records
    ensure_leaderboard_dir(board)
    assert not any((folder / name).exists() for name in stale)
    assert all((folder / name).exists() for name in kept) and link.is_symlink()


_KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from medbench import records

    def interrupt(fd):
        os.kill(os.getpid(), getattr(signal, sys.argv[2]))
        import time; time.sleep(5)  # the signal lands here, mid-write, before the rename

    records.os.fsync = interrupt
    try:
        records.atomic_write_json(Path(sys.argv[1]) / "record.json", {"half": "written"})
    except KeyboardInterrupt:
        sys.exit(130)
""")


@pytest.mark.parametrize("signal_name, code", [("SIGINT", 130), ("SIGKILL", -9)])
def test_a_signal_mid_write_leaves_no_record_and_at_most_a_dead_writers_temp(tmp_path, signal_name, code):
    from medbench.temp_files import remove_stale_temps

    folder = tmp_path / "records" / "m" / "medqa"
    folder.mkdir(parents=True)
    writer = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(folder), signal_name],
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    _, err = writer.communicate(timeout=60)
    assert writer.returncode == code, err
    assert not (folder / "record.json").exists()
    left = list(folder.iterdir())
    if signal_name == "SIGINT":  # Ctrl-C: the writer removed its own temp file
        assert left == []
        return
    [temp] = left  # SIGKILL: nothing could run; the temp file names its writer, now dead
    assert temp.name.startswith(".record.json.") and f"-{writer.pid}." in temp.name
    assert remove_stale_temps(folder, ["record.json"]) == []  # just written: left alone for a minute
    _aged(temp, 120)
    assert remove_stale_temps(folder, ["record.json"]) == [temp] and not temp.exists()


def test_the_weights_cache_entry_writer_removes_its_temp_on_ctrl_c(tmp_path, monkeypatch):
    from medbench import weights_identity

    monkeypatch.setattr(weights_identity, "digest_cache_dir", lambda: tmp_path / "cache")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(weights_identity.json, "dump", interrupted)
    signature = weights_identity.FileSignature(*([1] * len(weights_identity.FileSignature._fields)))
    with pytest.raises(KeyboardInterrupt):
        weights_identity._write_cache_entry(tmp_path / "model.safetensors", signature, "0" * 64)
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_killed_renders_staging_folder_is_removed_by_the_next_render(tmp_path):
    from medbench.leaderboard import render
    from leaderboard_helpers import make_record

    board = tmp_path / "lb"
    make_record(board, "m", "medqa", [0, 1, 1], [0, 1, 0])
    staged = board / ".medbench-render-abcd1234"  # the older naming: age alone decides
    staged.mkdir()
    (staged / "leaderboard.md").write_text("half a page")
    _aged(staged, 7200)
    mine = board / ".medbench-render-keep"  # not a name mkdtemp makes: not medbench's
    mine.mkdir()
    _aged(mine, 7200)
    render(board, formats=["md"])
    assert not staged.exists() and mine.exists()
    assert not [p for p in board.iterdir() if p.name.startswith(".medbench-render-") and p != mine]


# --- an untrusted task folder's data files ----------------------------------------------------------------------

def _task_folder(tmp_path: Path, rows_text: str) -> Path:
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "test.jsonl").write_text(rows_text)
    config = {"task": "wide", "dataset_path": "json", "output_type": "multiple_choice", "test_split": "test",
              "doc_to_text": "Q: {{q}}", "doc_to_choice": ["no", "yes"], "doc_to_target": "{{label}}",
              "metric_list": [{"metric": "acc"}],
              "dataset_kwargs": {"data_files": {"test": str(folder / "test.jsonl")}}}
    (folder / "wide.yaml").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("rows, words", [
    # 200,000 fields in one row kept `datasets` busy for minutes (an Arrow column each); now medbench's bounded
    # reader reads an untrusted folder's files first
    (json.dumps({**{f"c{i}": i for i in range(5000)}, "q": "x", "label": 1}) + "\n", "more than 4,096 distinct fields"),
    ('{"q": "x", "label": 1}\nnull\n', "does not hold one object per row"),  # was read as if the row were not there
])
def test_an_untrusted_folders_data_file_is_read_by_the_bounded_reader_first(tmp_path, capsys, tiny_model_dir, rows,
                                                                            words):
    folder = _task_folder(tmp_path, rows)
    line = one_line_error(*_run(capsys, "eval", "--model", str(tiny_model_dir), "--tasks", "wide", "--include-path",
                                str(folder), "--leaderboard-dir", str(tmp_path / "lb")))
    assert "task 'wide'" in line and words in line


@pytest.mark.parametrize("model, words", [("/no/such/model", "model path '/no/such/model' does not exist"),
                                          ("no-such-model", "unknown model 'no-such-model'"),
                                          ("", "the model reference is empty")])
def test_train_refuses_a_model_no_loader_takes_before_announcing_a_run(tmp_path, capsys, model, words):
    """A mistyped --model was announced as a run ("training sft on medqa from ... → runs/...") before it failed."""
    code, err = _run(capsys, "train", "--plugin", "sft", "--task", "medqa", "--model", model,
                     "--output-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"))
    assert code == 2 and words in one_line_error(code, err)
    assert "training sft" not in err and not (tmp_path / "runs").exists()
