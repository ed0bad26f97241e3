"""A newcomer's first hour, round ten: what `make demo` and the README's commands showed.

The page said "No baseline row, so no paired comparisons" under a table that had a baseline and a paired test; a
p-value under 0.001 read "q=<0.001"; a plain trainer's config was listed twice on the page; an 80-column terminal
cut the default model's name to "smollm2-135m-inst…"; `medbench --help` cut each command's summary with "...";
`--open` without a browser said nothing.
"""

from __future__ import annotations

import io
import re

from rich.table import Table

from leaderboard_helpers import answers, make_record, run_cli
from medbench.leaderboard import render

CONFIG = {"learning_rate": 0.002, "lora_r": 16, "max_steps": 53}


def _board(root, *, training=None):
    make_record(root, "base", "hyponatremia", *answers(105, 15))
    make_record(root, "sft", "hyponatremia", *answers(105, 45), base_ref="base", training=training)


def test_method_text_says_no_baseline_only_where_there_is_none(tmp_path):
    root = tmp_path / "lb"
    _board(root)
    render(root, ["md", "html"], baseline="base")
    for text in ((root / "leaderboard.md").read_text(), (root / "index.html").read_text()):
        assert "significantly better/worse than the baseline base" in text
        assert "No baseline row" not in text

    alone = tmp_path / "alone"
    make_record(alone, "only", "medqa", *answers(10, 4))
    render(alone, ["md", "html"])
    for text in ((alone / "leaderboard.md").read_text(), (alone / "index.html").read_text()):
        assert "No baseline row, so no paired comparisons (pass --baseline LABEL)." in text
        assert "significantly better/worse than the baseline" not in text


def test_a_p_value_under_0001_reads_less_than_not_equals_less_than(tmp_path):
    from medbench_plugins.leaderboard_text import p_text

    assert (p_text("p", 0.00013), p_text("q", 0.012), p_text("q", None)) == ("p<0.001", "q=0.012", "q=–")
    root = tmp_path / "lb"
    _board(root)
    render(root, ["md", "html"], baseline="base")
    markdown = (root / "leaderboard.md").read_text()
    line = next(line for line in markdown.splitlines() if line.startswith("| sft |") and "McNemar" in line)
    assert "(p<0.001, q<0.001, McNemar exact test, n=105, b=0 c=30)" in line
    page = (root / "index.html").read_text()
    assert "q=&lt;" not in page and "p=&lt;" not in page and "=<0.001" not in page
    assert "q&lt;0.001" in page and "p&lt;0.001, BH q&lt;0.001" in page  # the plot's tooltip and the cell's


def test_a_plain_trainers_config_is_listed_once_a_wrapped_ones_twice(tmp_path):
    root = tmp_path / "lb"
    _board(root, training={"plugin": "sft", "run_id": "sft", "step": 53, "config": CONFIG, "trainer_config": CONFIG})
    render(root, ["html"], baseline="base")
    page = (root / "index.html").read_text()
    assert page.count("<dt>config</dt>") == 1 and "<dt>trainer config</dt>" not in page

    wrapped = tmp_path / "wrapped"
    _board(wrapped, training={"plugin": "curriculum", "run_id": "c", "step": 53, "config": {"ordering": "random"},
                              "trainer_config": CONFIG})
    render(wrapped, ["html"], baseline="base")
    page = (wrapped / "index.html").read_text()
    assert page.count("<dt>config</dt>") == 1 and page.count("<dt>trainer config</dt>") == 1


def test_a_single_series_factor_plot_does_not_call_its_points_other_runs(tmp_path):
    root = tmp_path / "lb"
    _board(root, training={"plugin": "sft", "run_id": "sft", "step": 53, "config": CONFIG})
    render(root, ["html"], baseline="base")
    tips = re.findall(r"<title>([^<]*)</title>", (root / "index.html").read_text())
    point_tips = [tip for tip in tips if "method=" in tip]
    assert point_tips and not any("other runs" in tip for tip in point_tips), point_tips


def _terminal(width):
    from medbench.console import PipeFriendlyConsole

    screen = io.StringIO()
    return PipeFriendlyConsole(file=screen, force_terminal=True, width=width, color_system=None, markup=False), screen


def test_a_terminal_table_keeps_every_word_whole_where_the_words_fit(tmp_path):
    console, screen = _terminal(80)
    table = Table(title="results")
    for column in ("model", "task", "metric", "score", "± stderr", "n", "other metrics"):
        table.add_column(column)
    table.add_row("smollm2-135m-instruct", "medqa", "acc", "0.250", "0.099", "20", "macro_f1 0.100")
    console.print(table)
    lines = screen.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert "smollm2-135m-instruct" in screen.getvalue() and "…" not in screen.getvalue()
    assert "macro_f1" in screen.getvalue()  # wrapped between words, never cut inside one
    assert all(column.width is None for column in table.columns)  # the layout was for this print only


def test_a_terminal_table_too_narrow_for_its_words_keeps_the_names_and_hides_nothing(tmp_path):
    console, screen = _terminal(72)
    table = Table(title="medbench tasks")
    for column in ("task", "plugin", "splits", "metric", "type", "data"):
        table.add_column(column)
    table.add_row("adrd_prediction_prevalence", "builtin_tasks", "train 200, validation 50, test 400",
                  "prompt_level_strict_acc", "multiple_choice", "bundled: generated by adrd_prediction/generate.py")
    console.print(table)
    text = screen.getvalue()
    assert all(len(line) <= 72 for line in text.splitlines())
    assert "adrd_prediction_prevalence" in text and "…" not in text  # the name whole; the rest folded, not cut
    assert all(column.overflow == "ellipsis" and column.width is None for column in table.columns)


def test_the_command_list_shows_each_summary_whole(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    commands = out.split("Commands:")[1]
    assert "..." not in commands
    assert "every checkpoint is scored" in " ".join(commands.split())  # train's summary, wrapped not cut


def test_a_mistyped_command_points_at_the_commands(capsys):
    code, _, err = run_cli(capsys, "evl")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "Did you mean 'eval'?" in err and "for the valid commands" in err


def test_a_limit_that_is_not_a_number_says_what_to_pass(capsys):
    code, _, err = run_cli(capsys, "eval", "--tasks", "medqa", "--limit", "abc")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--limit must be a whole number, got 'abc'" in err and "pass --limit a whole number, e.g. --limit 1" in err


def test_open_without_a_browser_says_where_the_page_is(tmp_path, capsys, monkeypatch):
    import webbrowser

    root = tmp_path / "lb"
    _board(root)
    monkeypatch.setattr(webbrowser, "open", lambda url: False)
    code, _, err = run_cli(capsys, "leaderboard", "--dir", root, "--no-baselines", "--open")
    assert code == 0, err
    assert f"--open: no web browser found here; open {(root / 'index.html').resolve()} in one" in err


def test_the_page_says_what_a_column_suffix_means_when_one_is_shown(tmp_path):
    """Round twelve: the page never explained @gen, @chat or @3shot@rationales."""
    from medbench_plugins.leaderboard_text import column_legend

    root = tmp_path / "lb"
    make_record(root, "base", "medqa@gen@chat", *answers(10, 4))
    render(root, ["md", "html"])
    for text in ((root / "leaderboard.md").read_text(), (root / "index.html").read_text()):
        assert "@gen, the model answered freely" in text and "@chat, prompts in the model" in text
        assert "few-shot" not in text  # only the suffixes the table carries
    assert column_legend(["adrd@3shot@rationales=rationale_clinician", "uti@data-1234abcd@validation"]).split("; ") \
        == ["@Nshot, with N few-shot examples",
            "@rationales, few-shot examples with their rationales (=FIELD: from that field)",
            "@data-HASH, on the user's own data file (--data-file), not the task's", "@validation, the validation split"]
    assert column_legend(["medqa", "uti"]) == ""
