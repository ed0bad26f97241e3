"""Control characters, round 7: a task name, label or record field carrying ESC[2J (clear the screen), an OSC
title sequence (ESC]0;...BEL) or a bare BEL reached the terminal through the progress bars (rich and plain), the
leaderboard.csv cells and the page template's own text (its task toggles). Every such path shows them escaped."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import click
import pytest
from rich.console import Console

from medbench import hookimpl, progress
from medbench.cli import main
from medbench.console import display_safe, terminal_safe

sys.path.insert(0, str(Path(__file__).parent))
from leaderboard_helpers import answers, make_record  # noqa: E402

PAYLOAD = "evil\x1b[2J\x1b[31mRED\x1b]0;PWNTITLE\x07x"
RAW = ("\x1b[2J", "\x1b]0;", "\x07")  # what must never reach a terminal or a file


def assert_clean(text: str, where: str) -> None:
    for raw in RAW:
        assert raw not in text, f"{raw!r} in {where}"


def terminal_console(monkeypatch) -> io.StringIO:
    """The progress console as a terminal writing into a buffer: new_progress() draws rich bars."""
    buffer = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=buffer, force_terminal=True, markup=False, width=200))
    return buffer


def piped_console(monkeypatch) -> io.StringIO:
    buffer = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=buffer, force_terminal=False, markup=False, width=200))
    return buffer


# --- progress descriptions and status fields ------------------------------------------------------------------------


def test_a_rich_bar_shows_its_description_and_status_escaped(monkeypatch):
    buffer = terminal_console(monkeypatch)
    with progress.new_progress() as bars:
        assert isinstance(bars, progress._TrackedProgress)
        bar = bars.add_task(PAYLOAD, total=2, status=PAYLOAD)
        bars.update(bar, advance=1, description="again " + PAYLOAD, status="status " + PAYLOAD)
        bars.refresh()
        assert bars.tasks[0].description == terminal_safe("again " + PAYLOAD)
        assert bars.tasks[0].fields["status"] == terminal_safe("status " + PAYLOAD)
    out = buffer.getvalue()
    assert_clean(out, "the rich bar")
    assert "\\x1b[2J" in out and "\\x07x" in out  # shown, as its escapes


def test_a_bar_nested_in_a_sweeps_display_is_escaped_too(monkeypatch):
    buffer = terminal_console(monkeypatch)
    with progress.new_progress() as sweep:
        sweep.add_task("sweep " + PAYLOAD, total=1, status="")
        with progress.new_progress() as cell:
            assert isinstance(cell, progress._NestedProgress)
            bar = cell.add_task("cell " + PAYLOAD, total=3, status=PAYLOAD)
            cell.update(bar, completed=2, status=PAYLOAD)
            sweep.refresh()
    assert_clean(buffer.getvalue(), "the nested bar")
    assert "cell evil\\x1b[2J" in buffer.getvalue()


def test_plain_progress_lines_are_escaped(monkeypatch):
    buffer = piped_console(monkeypatch)
    with progress.new_progress() as bars:
        assert isinstance(bars, progress.PlainProgress)
        bar = bars.add_task(PAYLOAD, total=2, status=PAYLOAD)
        bars.update(bar, completed=2, description="done " + PAYLOAD, status=PAYLOAD)
    out = buffer.getvalue()
    assert_clean(out, "the plain progress lines")
    assert out.count("\\x1b]0;PWNTITLE") >= 2 and "done evil\\x1b[2J" in out


@pytest.mark.parametrize("make_console", [terminal_console, piped_console])
def test_progress_bar_and_the_trainer_callback_escape_their_description(monkeypatch, make_console):
    buffer = make_console(monkeypatch)
    with progress.progress_bar("phase " + PAYLOAD, 2) as advance:
        advance(2)
    callback = progress.trainer_progress_callback("train " + PAYLOAD)
    state = SimpleNamespace(is_world_process_zero=True, max_steps=2, global_step=0)
    callback.on_train_begin(None, state, None)
    state.global_step = 1
    callback.on_step_end(None, state, None)
    callback.on_log(None, state, None, logs={"loss": 0.5})
    state.global_step = 2
    callback.on_step_end(None, state, None)
    callback.on_train_end(None, state, None)
    out = buffer.getvalue()
    assert_clean(out, "progress_bar / the trainer's bar")
    assert "phase evil\\x1b[2J" in out and "train evil\\x1b[2J" in out


# --- leaderboard files ----------------------------------------------------------------------------------------------


def test_csv_cells_escape_control_characters_and_keep_the_formula_guard(tmp_path):
    from medbench.leaderboard import render

    root = tmp_path / "lb"
    make_record(root, PAYLOAD, PAYLOAD, *answers(10, 5))
    make_record(root, "=" + PAYLOAD, PAYLOAD, *answers(10, 6))
    render(root, ["csv", "html", "md"])
    text = (root / "leaderboard.csv").read_text(encoding="utf-8")
    assert_clean(text, "leaderboard.csv")
    rows = list(csv.DictReader((root / "leaderboard.csv").open(newline="", encoding="utf-8")))
    assert {r["checkpoint"] for r in rows} == {display_safe(PAYLOAD), "'=" + display_safe(PAYLOAD)}
    assert {r["column"] for r in rows} == {display_safe(PAYLOAD)}
    page = (root / "index.html").read_text(encoding="utf-8")
    assert_clean(page, "index.html")
    assert 'data-toggle-col="evil\\x1b[2J' in page  # the template's own text, as the cells' data-col has it
    assert_clean((root / "leaderboard.md").read_text(encoding="utf-8"), "leaderboard.md")


# --- the command line's messages ------------------------------------------------------------------------------------


def test_a_plugin_commands_click_exception_is_printed_escaped(plugin_registration, capsys):
    class Plugin:
        @hookimpl
        def register_commands(self, cli):
            @cli.command("hostile-echo")
            def hostile_echo():
                raise click.ClickException(f"no such label {PAYLOAD}")

    plugin_registration(Plugin(), "hostile_echo_plugin")
    with pytest.raises(SystemExit) as stopped:
        main(["hostile-echo"])
    err = capsys.readouterr().err
    assert stopped.value.code == 1
    assert_clean(err, "the error line")
    assert err.startswith("Error: no such label evil\\x1b[2J")


def test_a_warning_is_printed_escaped(capsys):
    from medbench.cli import _show_warning

    _show_warning(UserWarning(PAYLOAD), UserWarning, "f.py", 1)
    err = capsys.readouterr().err
    assert_clean(err, "the warning line")
    assert "Warning: evil\\x1b[2J" in err


def test_a_library_log_line_is_printed_escaped(capsys):
    import logging

    from medbench.cli import _quiet_libraries

    _quiet_libraries()
    factory = logging.getLogRecordFactory()
    _quiet_libraries()
    assert logging.getLogRecordFactory() is factory  # wrapped once, however often the command line starts
    handler = logging.StreamHandler(sys.stderr)
    logging.getLogger("lm_eval").addHandler(handler)
    try:
        logging.getLogger("lm_eval").error("task %s: failed", PAYLOAD)
    finally:
        logging.getLogger("lm_eval").removeHandler(handler)
    err = capsys.readouterr().err
    assert_clean(err, "the log line")
    assert "task evil\\x1b[2J" in err


# --- end to end -----------------------------------------------------------------------------------------------------


def hostile_task_folder(root: Path) -> Path:
    folder = root / "ansi"
    folder.mkdir(parents=True)
    (folder / "data.jsonl").write_text('{"q": "hi", "label": 0}\n{"q": "yo", "label": 1}\n')
    # JSON's escapes are YAML's double-quoted ones: the file holds the name with its ESC and BEL characters.
    (folder / "t.yaml").write_text(
        f"task: {json.dumps(PAYLOAD)}\ndataset_path: json\n"
        f"dataset_kwargs: {{data_files: {{test: {folder / 'data.jsonl'}}}}}\noutput_type: multiple_choice\n"
        f'test_split: test\ndoc_to_text: "Q: {{{{q}}}}"\ndoc_to_choice: ["no\\e[5mBLINK", "yes"]\n'
        f'doc_to_target: "{{{{label}}}}"\nmetadata:\n  data_description: "desc\\e[41mBGRED\\e]0;T\\a"\n')
    return folder


def test_eval_of_a_task_named_with_escape_sequences_shows_them_escaped_everywhere(tiny_model_dir, tmp_path,
                                                                                  capsys, monkeypatch):
    bars = terminal_console(monkeypatch)  # the rich bars a terminal gets
    folder = hostile_task_folder(tmp_path)
    board = tmp_path / "lb"
    main(["eval", "--model", str(tiny_model_dir), "--tasks", PAYLOAD, "--include-path", str(folder), "--limit", "1",
          "--leaderboard-dir", str(board), "--device", "cpu"])
    out, err = capsys.readouterr()
    for text, where in ((out, "stdout"), (err, "stderr"), (bars.getvalue(), "the progress bars")):
        assert_clean(text, where)
    assert "evil\\x1b[2J" in bars.getvalue()
    for name in ("leaderboard.csv", "index.html", "leaderboard.md"):
        text = (board / name).read_text(encoding="utf-8")
        assert_clean(text, name)
        assert "\x1b" not in text, name
    assert display_safe(PAYLOAD) in (board / "leaderboard.csv").read_text(encoding="utf-8")
