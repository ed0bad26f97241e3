"""Hostile input, round 4: links out of a leaderboard's records/ (every reader), a single-file task include whose
siblings lm-eval indexes, --rescore that cannot re-score, the page's JSON shown as text, recipes and --set values
built to explode, sweep folders and state files, request caches, data files, models, labels and plugins."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from medbench.errors import MedbenchError

sys.path.insert(0, str(Path(__file__).parent))
from leaderboard_helpers import answers, make_record  # noqa: E402


def record(root: Path, label: str = "m1") -> Path:
    golds, preds = answers(10, 6)
    return make_record(root, label, "medqa", golds, preds)


def one_error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# --- a. links out of records/ ------------------------------------------------------------------------------------


@pytest.fixture
def linked_board(tmp_path):
    outside = tmp_path / "outside"
    record(outside, "m-out")
    board = tmp_path / "board"
    board.mkdir()
    (board / "records").symlink_to(outside / "records")
    return board


def test_a_records_folder_that_is_a_link_is_refused_by_every_reader(linked_board, capsys):
    from medbench.cli import main
    from medbench.evaluation import EvalConfig
    from medbench.leaderboard import rescore_all
    from medbench.records import ensure_leaderboard_dir, find_reusable, read_records

    for read in (lambda: read_records(linked_board), lambda: rescore_all(linked_board),
                 lambda: ensure_leaderboard_dir(linked_board),
                 lambda: find_reusable(linked_board, "m-out", "0" * 32, "medqa", "d", EvalConfig(["medqa"]), {})):
        with pytest.raises(MedbenchError, match="records is a link"):
            read()
    with pytest.raises(SystemExit) as refused:
        main(["leaderboard", "--dir", str(linked_board), "--no-baselines", "--format", "json"])
    assert refused.value.code == 2 and "is a link" in one_error_line(capsys)
    assert not (linked_board / "leaderboard.json").exists()


def test_a_model_or_task_folder_reached_through_a_link_is_skipped(tmp_path):
    from medbench.records import RecordWarning, read_records

    outside, board = tmp_path / "outside", tmp_path / "board"
    record(outside, "m-out")
    record(board, "m-in")
    record(board, "m-two")
    (board / "records" / "linked").symlink_to(next((outside / "records").iterdir()))
    first = sorted((board / "records").glob("m-in*"))[0]
    second = sorted((board / "records").glob("m-two*"))[0]
    (first / "copy").symlink_to(second / "medqa")  # inside the board, but a second copy of a record
    with pytest.warns(RecordWarning, match="a link pointing outside the records folder, or to another"):
        found = read_records(board)
    assert sorted(r["model"]["label"] for r in found) == ["m-in", "m-two"]


# --- b. a single-file include ------------------------------------------------------------------------------------

TASK = ("task: t\ndataset_path: json\ndataset_kwargs: {data_files: {test: rows.jsonl}}\noutput_type: multiple_choice\n"
        "test_split: test\ndoc_to_text: \"{{ q }}\"\ndoc_to_choice: [\"yes\", \"no\"]\ndoc_to_target: a\n"
        "metric_list: [{metric: acc}]\n")


def test_a_single_file_include_vets_the_folder_lm_eval_indexes(tmp_path, monkeypatch):
    from lm_eval.tasks import _yaml_loader

    from medbench.tasks import build_registry, task_sources

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "rows.jsonl").write_text('{"q": "sky blue?", "a": 0}\n')
    mark = tmp_path / "ran"
    (tasks / "utils.py").write_text(f"open({str(mark)!r}, 'w')\ndef evil(*a, **k):\n    return None\n")
    (tasks / "t.yaml").write_text(TASK)
    (tasks / "evil.yaml").write_text(TASK.replace("task: t", "task: evil") + "metadata:\n  ? !function utils.evil\n  : 1\n")
    monkeypatch.chdir(tasks)
    with task_sources([tasks / "t.yaml"]):
        entry = build_registry().entries["t"]
        assert entry.refusal is None  # its data file next to it is inside the folder it is confined to
        with pytest.raises(MedbenchError, match="imports code"):
            _yaml_loader.load_yaml(tasks / "evil.yaml")  # a sibling lm-eval would index: vetted too
    assert not mark.exists()


# --- c. --rescore says what it could not re-score ----------------------------------------------------------------


def test_rescore_warns_for_empty_samples_and_a_score_it_kept(tmp_path):
    from medbench.leaderboard import rescore_all
    from medbench.records import RecordWarning

    empty = record(tmp_path / "a")
    (empty.parent / "samples.jsonl").write_text("")
    before = empty.read_text()
    with pytest.warns(RecordWarning, match="holds no samples"):
        assert rescore_all(tmp_path / "a") == []
    assert empty.read_text() == before  # never rewritten with n=0 and the old score
    kept = record(tmp_path / "b")
    (kept.parent / "samples.jsonl").write_text('{"doc_id": 1}\n')
    with pytest.warns(RecordWarning, match=r"its score \(acc\) was kept as it was"):
        rescore_all(tmp_path / "b")


# --- d. the page's JSON ------------------------------------------------------------------------------------------


def test_the_pages_json_cannot_close_its_script_and_shows_labels_display_safe(tmp_path):
    import re

    from medbench.leaderboard import render

    record(tmp_path, "evil</script><!--\u2028\u202ex\x1b[2J")
    (path,) = render(tmp_path, ["html"])
    page = path.read_text(encoding="utf-8")
    block = re.search(r'<script type="application/json" id="medbench-data">(.*?)</script>', page, re.S).group(1)
    assert "<" not in block and "\u2028" not in block
    rows = {cell["row"] for cell in json.loads(block)["cells"].values()}
    assert rows == {"evil</script><!--\u2028\\u202ex\\x1b[2J"}
    assert "\u202e" not in page and "\x1b" not in page


# --- recipes and --set -------------------------------------------------------------------------------------------

RECIPE = {"name": "r", "scales": {"toy": {"model": "m", "limit": 2}}, "grid": {"seed": [1, 2]},
          "cell": {"model": "{model}", "steps": [], "eval": {"tasks": ["medqa"], "limit": "{limit}"}}}
BOMB = "[" + ", ".join(["&a [x,x,x,x,x,x,x,x,x]"] + [f"&{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]"
                                                        for i in range(7)]) + "]"


def write_recipe(tmp_path, text: str | None = None, **changes) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text if text is not None else yaml.safe_dump({**RECIPE, **changes}))
    return path


@pytest.mark.parametrize("value, match", [(BOMB, "expands to more than"), ("9" * 5000, "not valid YAML"),
                                          ("[unclosed", "not valid YAML")])
def test_a_set_value_is_read_with_the_recipes_limits(tmp_path, value, match):
    from medbench.planning import plan
    from medbench.recipe import read_recipe

    with pytest.raises(MedbenchError, match=match):
        plan(read_recipe(write_recipe(tmp_path)), overrides={"limit": value})


@pytest.mark.parametrize("text, match", [
    ("name: r\ndescription: '" + "x" * (1 << 20) + "'\n", r"larger than 1,048,576 bytes"),
    ("name: " + "9" * 5000 + "\n", "holds a value YAML cannot read"),
])
def test_a_recipe_too_big_to_be_one_or_with_an_unreadable_number_is_one_line(tmp_path, text, match):
    from medbench.recipe import read_recipe

    with pytest.raises(MedbenchError, match=match):
        read_recipe(write_recipe(tmp_path, text))


def test_eval_tasks_that_are_no_list_of_names_fail_at_plan_time(tmp_path):
    from medbench.planning import plan
    from medbench.recipe import read_recipe

    recipe = read_recipe(write_recipe(tmp_path, cell={**RECIPE["cell"], "eval": {"tasks": 5}}))
    with pytest.raises(MedbenchError, match="scores no tasks"):
        plan(recipe, out_dir=tmp_path / "s")


def test_the_sweep_table_shows_recipe_text_without_control_sequences(tmp_path, tiny_model_dir):
    from medbench.testing import invoke_cli

    path = write_recipe(tmp_path, name="a\x1b[2Jb", grid={"style": ["x\x1b]0;t\x07", "y"]},
                        scales={"toy": {"model": str(tiny_model_dir), "limit": 2}})
    result = invoke_cli("sweep", str(path), "--dry-run", "--output-dir", str(tmp_path / "s"))
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output and "\\x1b[2J" in result.output


# --- sweep folders and state -------------------------------------------------------------------------------------


def test_a_sweep_never_writes_into_a_folder_of_other_files(tmp_path):
    from medbench.sweeps import check_out_dir

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.md").write_text("precious")
    with pytest.raises(MedbenchError, match="is not a sweep's"):
        check_out_dir(mine)
    (mine / "plan.json").write_text('{"mine": 1}')
    with pytest.raises(MedbenchError, match="is not a sweep's"):
        check_out_dir(mine)
    assert (mine / "report.md").read_text() == "precious"
    sweep = tmp_path / "sweep"
    (sweep / "cells").mkdir(parents=True)
    (sweep / "plan.json").write_text("{")  # a sweep's own folder, its plan damaged: still resumable
    check_out_dir(sweep)
    check_out_dir(tmp_path / "new")


def test_a_cell_marker_that_is_damaged_a_fifo_or_lists_missing_records_runs_the_cell_again(tmp_path):
    from medbench.planning import CellSpec
    from medbench.sweeps import _finished

    cell = CellSpec("k1", "seed=1", {"seed": 1}, "m", [], {"tasks": ["medqa"]}, 1)
    marker = tmp_path / "cells" / "k1.json"
    marker.parent.mkdir()
    kept = tmp_path / "leaderboard" / "records" / "m" / "medqa" / "record.json"
    kept.parent.mkdir(parents=True)
    from leaderboard_helpers import answers, make_record

    whole = make_record(tmp_path / "other", "m", "medqa", *answers(4, 2))
    kept.write_text(whole.read_text())
    elsewhere = "/somewhere/else/s/leaderboard/records/m/medqa/record.json"  # run from another directory
    for content, done in [({"status": "done", "records": [elsewhere]}, True),
                          ({"status": "done", "records": ["leaderboard/records/gone/medqa/record.json"]}, False),
                          ({"status": "done", "records": 5}, False), ({"status": "done", "records": []}, False),
                          ({"status": "done", "records": ["records/../../../etc/passwd"]}, False)]:
        marker.write_text(json.dumps(content))
        assert (_finished(tmp_path, cell) is not None) is done, content
    marker.write_text(json.dumps({"status": "done", "records": [elsewhere]}))
    kept.write_text("{}")  # a record the leaderboard would skip as damaged: its cell scores again
    assert _finished(tmp_path, cell) is None
    kept.unlink()
    kept.symlink_to(whole)  # a link in its place (to a whole record elsewhere) is not the sweep's record
    assert _finished(tmp_path, cell) is None
    marker.write_text('{"status": "do')
    assert _finished(tmp_path, cell) is None
    marker.unlink()
    os.mkfifo(marker)
    assert _finished(tmp_path, cell) is None  # without blocking on the FIFO


@pytest.mark.parametrize("content", ["{", '{"checkpoints": 5}', '{"checkpoints": [{"path": 1}]}', "[]"])
def test_a_damaged_step_marker_is_one_line_naming_it(tmp_path, content):
    from medbench.sweeps import _step_checkpoints

    (tmp_path / "step.json").write_text(content)
    with pytest.raises(MedbenchError, match=r"step marker .*step.json is damaged"):
        _step_checkpoints(tmp_path / "step.json")


# --- request and baseline caches ---------------------------------------------------------------------------------


def test_a_request_cache_swapped_for_a_fifo_or_a_link_is_refused(tmp_path):
    from medbench.lm_wrapper import RequestCache

    root = tmp_path / "board"
    path = root / ".cache" / "requests" / "m" / "t.jsonl"
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    with pytest.raises(MedbenchError, match="is a link, FIFO or device"):
        RequestCache(path, root)
    path.unlink()
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")  # no newline: opening the cache would cut the "torn" line
    path.symlink_to(secret)
    with pytest.raises(MedbenchError, match="is a link, FIFO or device"):
        RequestCache(path, root)
    assert secret.read_text() == "secret"


def test_a_request_cache_larger_than_any_eval_writes_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from medbench import lm_wrapper

    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"a": [-1.5, True]}) + "\n" + " " * 4096 + "\n")
    monkeypatch.setattr(lm_wrapper, "MAX_CACHE_BYTES", 1024)
    with pytest.raises(MedbenchError, match="is over 1,024 bytes.*delete it"):
        lm_wrapper.RequestCache(path, tmp_path)
    assert path.stat().st_size > 4096  # refused, not cut


def test_cached_results_of_the_wrong_shape_are_scored_again(tmp_path):
    from medbench.lm_wrapper import RequestCache

    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"a": "text", "b": [-1.5, True], "c": [1, 2, 3], "d": 5, "e": [True, True]}) + "\n")
    cache = RequestCache(path, tmp_path)
    assert [cache.has("loglikelihood", k) for k in "abcde"] == [False, True, False, False, False]
    assert cache.has("generate_until", "a") and not cache.has("generate_until", "b")


def test_a_baselines_cache_file_that_is_a_fifo_is_a_miss(tmp_path):
    from medbench.leaderboard.references import CACHE_DIR, _read_cache

    path = tmp_path / CACHE_DIR / "medqa-0.json"
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    assert _read_cache(path, {}) is None


# --- data files, prompts, models, labels -------------------------------------------------------------------------


def test_a_data_file_past_the_bound_is_refused_before_it_is_read(tmp_path):
    from medbench.commands.common import data_file_pairs
    from medbench.recipe import data_file_overrides
    from medbench.taskdata import MAX_DATA_FILE_BYTES

    big = tmp_path / "big.jsonl"
    with open(big, "wb") as handle:
        handle.truncate(MAX_DATA_FILE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(MedbenchError, match=r"more than the 512 MiB"):
        data_file_pairs((f"medqa={big}",))
    with pytest.raises(MedbenchError, match=r"more than the 512 MiB"):
        data_file_overrides({"medqa": "big.jsonl"}, tmp_path)


def test_a_prompt_of_megabytes_is_refused_before_it_is_tokenized():
    from types import SimpleNamespace

    from medbench.lm_wrapper import MAX_REQUEST_CHARS, check_request_sizes

    check_request_sizes("t", [SimpleNamespace(args=("q" * 100, " a"))])
    with pytest.raises(MedbenchError, match="has a prompt of"):
        check_request_sizes("t", [SimpleNamespace(args=("q" * MAX_REQUEST_CHARS, " a"))])


@pytest.mark.parametrize("label", ["", "  ", "a\nb", "a\x1b[2Jb", "a\x00b", "x" * 1001])
def test_a_label_that_is_empty_huge_or_has_control_characters_is_refused(label):
    from medbench.evaluation import EvalConfig

    with pytest.raises(MedbenchError, match="--label"):
        EvalConfig(["medqa"], label=label)
    EvalConfig(["medqa"], label="team/model v2 (ünïcode)")


def test_an_empty_model_reference_is_refused_not_taken_for_the_default():
    from medbench.models import resolve_model

    with pytest.raises(MedbenchError, match="model reference is empty"):
        resolve_model("")


@pytest.mark.parametrize("template, match", [
    ("{{ 'x' }}" * 200_000, r"more than 1,048,576"),
    ("{% for i in range(10**9) %}x{% endfor %}", "cannot render a one-line question"),
    ("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}", "cannot render"),
])
def test_a_chat_template_that_is_huge_or_loops_is_refused(template, match):
    from medbench.models import require_chat_template
    from medbench.testing import make_byte_tokenizer

    tokenizer = make_byte_tokenizer()
    tokenizer.chat_template = template
    with pytest.raises(MedbenchError, match=match):
        require_chat_template(tokenizer, "m")


def test_a_model_folder_holding_a_fifo_is_refused_without_blocking(tiny_model_dir, tmp_path):
    from medbench.models import resolve_model
    from medbench.run_dirs import safetensors_complete

    model = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model)
    (model / "model.safetensors").unlink()
    os.mkfifo(model / "model.safetensors")
    assert not safetensors_complete(model / "model.safetensors")
    with pytest.raises(MedbenchError, match="FIFO, device or socket"):
        resolve_model(str(model))


def test_a_medbench_cache_that_is_a_file_is_one_line(tmp_path, monkeypatch):
    from medbench_plugins.builtin_models import EmbeddedModelLoader

    (tmp_path / "cf").write_text("x")
    monkeypatch.setenv("MEDBENCH_CACHE", str(tmp_path / "cf"))
    with pytest.raises(MedbenchError, match="is a file, not a folder"):
        EmbeddedModelLoader().ensure_converted()


def test_a_renderer_returning_a_path_it_did_not_write_is_refused(tmp_path):
    from medbench.leaderboard import _render_staged, build_table

    record(tmp_path)
    table = build_table(tmp_path, with_stats=False)
    with pytest.raises(MedbenchError, match="not a file it wrote"):
        _render_staged(table, tmp_path, [lambda table, out: "/etc/passwd"])
    assert not list(tmp_path.glob(".medbench-render-*"))



def test_a_task_loader_refuses_an_oversized_data_file_before_reading_it(tmp_path):
    """The bound holds in the reader too, so a data file named by a task's own metadata (not --data-file) is
    refused before it is read into memory."""
    from medbench.errors import MedbenchError
    from medbench.tasks import load_tasks

    sparse = tmp_path / "huge.jsonl"
    with sparse.open("wb") as fh:
        fh.truncate(600 << 20)  # sparse: no disk used
    with pytest.raises(MedbenchError, match=r"is 600 MiB, more than the 512 MiB"):
        load_tasks(["medqa"], metadata={"medqa": {"data_files": {"test": str(sparse)}}})
