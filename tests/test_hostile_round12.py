"""Hostile inputs, round 12: a served model's URL whose port or IPv6 host cannot be parsed (it failed inside the
backend as "a bug in medbench", exit 1), and a --leaderboard-dir that is a FIFO (the directory lock's open()
blocked for ever). Each is one line naming the problem and the fix, exit 2, before anything is contacted or read."""

from __future__ import annotations

import os

import pytest

from test_hostile_round10 import _run
from test_task_inputs import one_line_error


BAD_URLS = ["http://[::1", "http://127.0.0.1:99999/v1", "http://127.0.0.1:abc/v1"]


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize("how", ["--base-url", "--backend-option", "--judge-base-url", "--judge-option"])
def test_a_served_models_url_that_cannot_be_parsed_is_one_line(tmp_path, capsys, monkeypatch, url, how):
    import medbench.backends

    def never(*args, **kwargs):  # the URL is refused before any backend opens
        raise AssertionError("a backend was opened")

    monkeypatch.setattr(medbench.backends, "open_backend", never)
    board = tmp_path / "board"
    args = {"--base-url": ["--model", "openai:x", "--base-url", url],
            "--backend-option": ["--model", "openai:x", "--backend-option", f"base_url={url}"],
            "--judge-base-url": ["--judge-model", "openai:x", "--judge-base-url", url, "--judge", "likert"],
            "--judge-option": ["--judge-option", "model=openai:x", "--judge-option", f"base_url={url}",
                               "--judge", "likert"]}[how]
    code, err = _run(capsys, "eval", "--tasks", "discharge_summary", "--limit", "1", "--leaderboard-dir", str(board),
                     *args)
    line = one_line_error(code, err)
    assert "is not a valid URL" in line and "http://HOST:PORT/v1" in line, line
    assert not board.exists()


def test_a_url_that_parses_still_reaches_the_backends_own_checks():
    from medbench.small_inputs import check_url

    for url in ("http://127.0.0.1:8000/v1", "https://[::1]:443", "http://host", None):
        check_url("--base-url", url)


@pytest.mark.parametrize("rescore", [False, True])
def test_a_leaderboard_dir_that_is_a_fifo_is_one_line_not_a_hang(tmp_path, capsys, rescore):
    fifo = tmp_path / "board"
    os.mkfifo(fifo)
    code, err = _run(capsys, "leaderboard", "--dir", str(fifo), "--no-baselines", *(["--rescore"] if rescore else []))
    line = one_line_error(code, err)
    assert "is a file, FIFO or device, not a folder" in line
    assert fifo.exists() and not fifo.is_dir()  # left as it was


def test_a_leaderboard_dir_linked_to_a_fifo_is_refused_too(tmp_path, capsys):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "board").symlink_to(tmp_path / "pipe")
    code, err = _run(capsys, "leaderboard", "--dir", str(tmp_path / "board"))
    assert "not a folder" in one_line_error(code, err)


@pytest.mark.parametrize("args", [
    ["leaderboard", "--dir", ""],
    ["eval", "--tasks", "medqa", "--leaderboard-dir", " "],
    ["train", "--plugin", "sft", "--task", "uti", "--output-dir", ""],
    ["train", "--plugin", "sft", "--task", "uti", "--leaderboard-dir", ""],
    ["sweep", "sft_vs_dpo", "--dry-run", "--output-dir", ""],
    ["tasks", "--include-path", ""],
])
def test_an_empty_folder_option_is_refused_not_read_as_the_working_directory(tmp_path, capsys, monkeypatch, args):
    monkeypatch.chdir(tmp_path)  # an empty value wrote pages, records and runs here
    (tmp_path / "notes.md").write_text("mine")
    code, err = _run(capsys, *args)
    assert "is empty" in one_line_error(code, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.md"]


@pytest.mark.parametrize("url", BAD_URLS)
def test_the_openai_client_itself_refuses_a_url_it_cannot_parse(url):
    """The root of the check above, for a recipe or a Python API caller that never passes the command line."""
    from medbench.errors import MedbenchError
    from medbench_plugins.openai_client import normalise_base_url

    with pytest.raises(MedbenchError, match="is not a valid URL"):
        normalise_base_url(url)


def test_the_leaderboard_lock_never_blocks_on_a_fifo(tmp_path):
    from medbench.leaderboard import locked

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with locked(fifo):  # O_NONBLOCK | O_DIRECTORY: fails at once, so nothing is locked and nothing waits
        pass


def test_a_task_folder_that_cannot_be_listed_is_one_line(tmp_path, capsys, monkeypatch):
    import pathlib

    def vanished(self, pattern):  # /proc/NNNN disappearing while --include-path / is walked
        raise FileNotFoundError(2, "No such file or directory", "/proc/1234")

    monkeypatch.setattr(pathlib.Path, "rglob", vanished)
    line = one_line_error(*_run(capsys, "eval", "--tasks", "medqa", "--include-path", str(tmp_path)))
    assert "could not be listed (No such file or directory)" in line and "--include-path a folder" in line


def test_a_smaller_record_replacing_a_whole_splits_score_says_so(tmp_path):
    """`eval --limit 2` after a full run replaces the full score (the newest wins), no longer silently."""
    from leaderboard_helpers import answers, make_record

    make_record(tmp_path, "base", "medqa", *answers(40, 20))
    with pytest.warns(UserWarning, match="its record of 40 items is replaced by one of 2"):
        make_record(tmp_path, "base", "medqa", *answers(2, 1))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_record(tmp_path, "base", "medqa", *answers(40, 20))  # more items: nothing to say


@pytest.mark.parametrize("args, expected", [
    (["leaderboard", "--baseline", ""], "--baseline is empty"),  # had meant no baseline
    (["sweep", "sft_vs_dpo", "--scale", " ", "--dry-run"], "--scale is empty"),  # had meant the first scale
    (["eval", "--tasks", "uti", "--fewshot-rationales", ""], "--fewshot-rationales FIELD is empty"),
    (["train", "--plugin", "sft", "--task", "uti", "--eval-fewshot-rationales", ""],
     "--eval-fewshot-rationales FIELD is empty"),
])
def test_an_empty_name_is_refused_not_read_as_the_default(tmp_path, capsys, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(*_run(capsys, *args))
    assert expected in line
    assert list(tmp_path.iterdir()) == []
