"""The leaderboard's outputs: index.html (escaping, self-contained, driven in headless Chromium), md, csv, json."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from leaderboard_helpers import answers, make_record
from medbench.leaderboard import render
from medbench.leaderboard.stats import wilson_interval

EVIL = "<script>alert(1)</script>"
EVIL_TASK = "x<script>alert(1)</script>"
EVIL_PROMPT = "Q{i} </script><script>alert(2)</script><!-- & asked of {label}"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@pytest.fixture
def board(tmp_path):
    """base (the baseline), better (significantly better on medqa, worse on medmcqa) and a row and a column whose
    names are script tags. Default order: base, EVIL (3 of 3 tasks, by mean), better (2 of 3); by medqa: better,
    EVIL, base."""
    root = tmp_path / "lb"
    make_record(root, "base", "medqa", *answers(60, 15))
    make_record(root, "base", "medmcqa", *answers(30, 20))
    make_record(root, "base", EVIL_TASK, *answers(10, 9))
    make_record(root, "better", "medqa", *answers(60, 45), base_ref="base")
    make_record(root, "better", "medmcqa", *answers(30, 10), base_ref="base")
    make_record(root, EVIL, "medqa", *answers(60, 20), base_ref="base", prompt=EVIL_PROMPT)
    make_record(root, EVIL, "medmcqa", *answers(30, 25), base_ref="base", prompt=EVIL_PROMPT)
    make_record(root, EVIL, EVIL_TASK, *answers(10, 1), base_ref="base", prompt=EVIL_PROMPT)
    return root


def embedded_data(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="medbench-data">(.*?)</script>', page, re.S)
    return json.loads(match.group(1))


def test_names_and_prompts_are_escaped_in_every_output(board):
    paths = render(board)
    assert {p.name for p in paths} == {"index.html", "leaderboard.md", "leaderboard.csv", "leaderboard.json"}
    page = (board / "index.html").read_text()
    assert EVIL not in page and "alert(2)" not in page.replace("alert(2)\\u003c", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script") == 2 and page.count("</script>") == 2  # only the page's own two blocks
    assert "<!--" not in page
    data = embedded_data(page)  # valid JSON that gives back the exact strings
    assert EVIL_PROMPT.format(i=0, label=EVIL) in data["prompts"]
    assert {cell["row"] for cell in data["cells"].values()} == {"base", "better", EVIL}
    assert EVIL_TASK in {cell["column"] for cell in data["cells"].values()}

    markdown = (board / "leaderboard.md").read_text()
    assert "<script>" not in markdown and "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown
    rows = list(csv.DictReader((board / "leaderboard.csv").open()))
    assert EVIL in {r["checkpoint"] for r in rows} and EVIL_TASK in {r["column"] for r in rows}  # raw in data
    assert EVIL in {r["label"] for r in json.loads((board / "leaderboard.json").read_text())["rows"]}


def test_html_is_one_self_contained_file(board):
    (path,) = render(board, ["html"])
    page = path.read_text()
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) <= {"http://www.w3.org/2000/svg"}  # no CDN, no server
    assert "<link" not in page and not re.search(r"<script[^>]+src=", page) and "<img" not in page
    assert "<style>" in page and "<svg" in page
    assert "Research use only, not for clinical decisions." in page
    assert page.count('class="plot forest"') == 3  # one score-with-CI plot per task column
    assert "against method" not in page  # every row is untrained: no factor varies


def test_drilldown_samples_are_capped_per_cell(board, monkeypatch):
    import medbench_plugins.leaderboard_page as page

    monkeypatch.setattr(page, "SAMPLES_PER_CELL", 5)
    (path,) = render(board, ["html"])
    cells = embedded_data(path.read_text())["cells"].values()
    medqa = [c for c in cells if c["column"] == "medqa"]
    assert all(len(c["samples"]) == 5 and c["total"] == 60 for c in medqa)
    better = next(c for c in medqa if c["row"] == "better")
    assert better["comparison"]["test"] == "mcnemar-exact" and better["comparison"]["significant"]
    assert all("bp" in s for s in better["samples"])  # the baseline's prediction on the same item
    assert better["provenance"]["task"]["data_hash"] == "data-medqa" and better["provenance"]["versions"]


def test_markdown_csv_and_json_carry_cis_and_significance(board):
    render(board, ["md", "csv", "json"])
    markdown = (board / "leaderboard.md").read_text()
    better_line = next(line for line in markdown.splitlines() if line.startswith("| better |"))
    lo, hi = wilson_interval(45, 60)
    assert f"0.750 [{lo:.3f}, {hi:.3f}] (n=60) ▲" in better_line and "▼" in better_line  # medqa up, medmcqa down
    assert "`" in better_line and "(baseline)" in next(line for line in markdown.splitlines()
                                                       if line.startswith("| base |"))
    assert "Benjamini-Hochberg" in markdown and "McNemar" in markdown and "Research use only" in markdown

    rows = list(csv.DictReader((board / "leaderboard.csv").open()))
    assert len(rows) == 8  # one line per scored (checkpoint, column)
    medqa = next(r for r in rows if r["checkpoint"] == "better" and r["column"] == "medqa")
    assert medqa["ci_method"] == "wilson" and medqa["test"] == "mcnemar-exact" and medqa["significant"] == "True"
    assert (medqa["b"], medqa["c"]) == ("0", "30") and float(medqa["q_value"]) < 0.05

    table = json.loads((board / "leaderboard.json").read_text())
    assert table["baseline"]["label"] == "base" and table["statistics"]["correction"] == "benjamini-hochberg"
    better = next(r for r in table["rows"] if r["label"] == "better")
    assert better["cells"]["medmcqa"]["comparison"]["direction"] == "worse"
    assert better["win_rate"] is not None and better["weighted_mean"] == pytest.approx((45 + 10) / 90)


def test_a_latex_renderer_plugs_in(board, plugin_registration):
    from medbench import hookimpl

    class Latex:
        @hookimpl
        def register_leaderboard_renderers(self, register):
            def render_latex(table, out_dir: Path) -> Path:
                lines = [" & ".join(["checkpoint", *table.columns]) + r" \\"]
                for row in table.rows:
                    lines.append(" & ".join([row.label, *[f"{row.cells[c].score:.3f}" if c in row.cells else "--"
                                                          for c in table.columns]]) + r" \\")
                path = out_dir / "leaderboard.tex"
                path.write_text("\n".join(lines))
                return path

            register("latex", render_latex)

    plugin_registration(Latex(), "latex-renderer")
    (path,) = render(board, ["latex"])
    assert path.read_text().splitlines()[1].startswith("base & ")


def medbench(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "medbench.cli", *args], capture_output=True, text=True, env=ENV,
                          cwd=cwd, timeout=600)


def test_leaderboard_command_formats_and_baseline(board):
    result = medbench("leaderboard", "--dir", str(board), "--format", "md", "--format", "csv,json",
                      "--baseline", "better")
    assert result.returncode == 0, result.stderr
    assert not (board / "index.html").exists()
    assert json.loads((board / "leaderboard.json").read_text())["baseline"]["label"] == "better"
    assert "(baseline)" in result.stdout and "wrote" in result.stderr
    bad = medbench("leaderboard", "--dir", str(board), "--baseline", "nosuch")
    assert bad.returncode == 2 and "matches no leaderboard row" in bad.stderr and "Traceback" not in bad.stderr


# ------------------------------------------------------------------------------------------ the browser test


def _browser() -> tuple[str | None, str | None, str | None]:
    """(chromium, chromedriver, why not) for Debian's chromium and chromium-driver packages."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return None, None, "selenium is not installed (pip install -e '.[test]')"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
    if not chromium or not driver:
        return chromium, driver, ("chromium and chromedriver are not installed (`make setup` installs Debian's "
                                  "chromium and chromium-driver with apt-get where it can)")
    return chromium, driver, None


@pytest.fixture
def browser(tmp_path):
    chromium, driver_path, why_not = _browser()
    if why_not:
        if os.environ.get("CI") and shutil.which("apt-get"):
            pytest.fail(f"on CI the browser test must run, but {why_not}")
        pytest.skip(why_not)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)  # no selenium-manager download
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.mark.timeout(300)
def test_page_in_headless_chromium(board, browser, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    (path,) = render(board, ["html"])
    browser.get(path.resolve().as_uri())
    assert browser.execute_script("return typeof window.medbenchLeaderboard") == "object"  # the script ran

    def labels(visible_only=False):
        rows = browser.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")
        return [r.get_attribute("data-label") for r in rows if r.is_displayed() or not visible_only]

    # By mean, among rows scored on the same tasks: better has 2 of the 3 columns, so it ranks below both.
    assert labels() == ["base", EVIL, "better"]
    mean_header = browser.find_elements(By.CSS_SELECTOR, "#leaderboard thead th")[2]
    mean_header.click()  # best first: the complete rows, then the partial one, whatever its mean
    assert mean_header.get_attribute("aria-sort") == "descending" and labels() == ["base", EVIL, "better"]
    mean_header.click()
    assert mean_header.get_attribute("aria-sort") == "ascending" and labels() == [EVIL, "base", "better"]
    header = browser.find_element(By.CSS_SELECTOR, '#leaderboard thead th[data-col="medqa"]')
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    assert labels() == ["better", EVIL, "base"]  # medqa 0.750, 0.333, 0.250
    header.click()
    assert header.get_attribute("aria-sort") == "ascending" and labels() == ["base", EVIL, "better"]

    search = browser.find_element(By.ID, "filter")
    search.send_keys("bett")
    assert labels(visible_only=True) == ["better"]
    search.clear()
    search.send_keys(" ")  # an input event with an empty query shows every row again
    assert len(labels(visible_only=True)) == 3

    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")
               if r.get_attribute("data-label") == "better")
    row.find_element(By.CSS_SELECTOR, 'td[data-col="medqa"]').click()
    dialog = browser.find_element(By.ID, "drilldown")
    assert dialog.get_attribute("open") is not None
    assert browser.find_element(By.ID, "dd-title").text == "better — medqa"
    samples = browser.find_elements(By.CSS_SELECTOR, "#dd-samples tbody tr")
    assert len(samples) == 60 and "asked of better" in samples[0].text
    assert "McNemar" in browser.find_element(By.ID, "dd-summary").text
    browser.save_screenshot(str(tmp_path / "drilldown.png"))
    browser.find_element(By.ID, "dd-close").click()

    evil_row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")
                    if r.get_attribute("data-label") == EVIL)
    evil_row.find_element(By.CSS_SELECTOR, 'td[data-col="medqa"]').click()
    assert browser.find_element(By.ID, "dd-title").text == f"{EVIL} — medqa"  # shown as text, never run
    first_prompt = browser.find_element(By.CSS_SELECTOR, "#dd-samples tbody tr details")
    browser.execute_script("arguments[0].open = true", first_prompt)
    assert "</script><script>alert(2)</script>" in first_prompt.find_element(By.TAG_NAME, "pre").text
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text

    screenshot = tmp_path / "leaderboard.png"
    assert browser.save_screenshot(str(screenshot))
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


# ------------------------------------------------------------------------------------------ counts, intervals, terminal


def test_counts_are_pluralised_in_the_page_and_the_method_text(tmp_path):
    root = tmp_path / "lb"
    make_record(root, "only", "medqa", *answers(10, 4))
    (page_path,) = render(root, ["html"])
    page = page_path.read_text()
    assert "1 checkpoint × 1 task from 1 record ·" in page and "1 checkpoints" not in page

    make_record(root, "tuned", "medqa", *answers(10, 6), base_ref="only")
    render(root, ["md", "html"], baseline="only")
    for text in ((root / "leaderboard.md").read_text(), (root / "index.html").read_text()):
        assert "across the 1 comparison in the table" in text and "1 comparisons" not in text
    assert "2 checkpoints × 1 task from 2 records" in (root / "index.html").read_text()


def test_a_zero_width_interval_is_marked_not_shown_as_certainty(tmp_path):
    root = tmp_path / "lb"
    # every gold 0, every prediction 1: macro F1 is 0 in every bootstrap resample, so the interval is [0, 0]
    make_record(root, "stuck", "adrd", [0, 0, 0, 0], [1, 1, 1, 1], metric="macro_f1")
    make_record(root, "stuck", "medqa", *answers(4, 0))  # acc 0 of 4: Wilson [0, 0.490], not zero-width
    render(root, ["md", "json", "html"])
    table = json.loads((root / "leaderboard.json").read_text())
    cells = table["rows"][0]["cells"]
    assert (cells["adrd"]["ci_low"], cells["adrd"]["ci_high"], cells["adrd"]["ci_method"]) == (0.0, 0.0, "bootstrap")
    markdown = (root / "leaderboard.md").read_text()
    line = next(line for line in markdown.splitlines() if line.startswith("| stuck |"))
    assert "0.000 [0.000, 0.000]† (n=4)" in line and "0.490] (n=4)" in line and "0.490]†" not in line
    assert "† zero-width interval" in markdown and "does not mean the score is certain" in markdown
    page = (root / "index.html").read_text()
    assert '<span class="ci degenerate">[0.000, 0.000]†</span>' in page and "† zero-width interval" in page
    data = embedded_data(page)
    assert {c["column"]: c["ci_degenerate"] for c in data["cells"].values()} == {"adrd": True, "medqa": False}


def _sourced_board(root: Path) -> None:
    from test_leaderboard_plots import write

    source = {"kind": "hub", "name": "an-org/a-rather-long-medical-dataset-name-for-the-terminal",
              "revision": "0123456789abcdef", "description": "the organisers' test split, as released in 2026"}
    write(root, "base", *answers(20, 5), data_source=source)
    write(root, "tuned", *answers(20, 9), method="sft", data_source=source)
    make_record(root, "base", "adrd", [0, 0, 0, 0], [1, 1, 1, 1], metric="macro_f1")


def test_terminal_view_names_each_columns_metric_and_data_source_in_full_when_piped(tmp_path):
    root = tmp_path / "lb"
    _sourced_board(root)
    result = medbench("leaderboard", "--dir", str(root), "--format", "md", "--no-baselines")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = "\n".join(line for line in lines if line.startswith("┃"))
    assert "medqa" in header and "acc" in header and "macro_f1" in header  # the metric under each task
    source = next(line for line in lines if line.startswith("  medqa:"))
    assert source == ("  medqa: hub: an-org/a-rather-long-medical-dataset-name-for-the-terminal@0123456789abcdef — "
                      "the organisers' test split, as released in 2026; name: an-org/a-rather-long-medical-dataset-"
                      "name-for-the-terminal; revision: 0123456789abcdef")  # piped: whole, one line
    assert any(line.startswith("  adrd: unknown source") for line in lines)
    assert "0.000 [0.000, 0.000]†" in result.stdout and "† zero-width interval" in result.stdout


def test_terminal_view_fits_a_narrow_terminal(tmp_path, capsys, monkeypatch):
    import io

    from rich.console import Console

    import medbench.commands.leaderboard as command
    from leaderboard_helpers import run_cli

    root = tmp_path / "lb"
    _sourced_board(root)
    screen = io.StringIO()
    monkeypatch.setattr(command, "console", Console(file=screen, force_terminal=True, width=70, color_system=None,
                                                    markup=False))
    code, _, err = run_cli(capsys, "leaderboard", "--dir", root, "--format", "md", "--no-baselines")
    assert code == 0, err
    lines = screen.getvalue().splitlines()
    assert all(len(line) <= 70 for line in lines), max(lines, key=len)
    source = next(line for line in lines if line.startswith("  medqa:"))
    assert source.startswith("  medqa: hub: an-org/") and source.endswith("…")  # cut to the width, one line


@pytest.mark.timeout(300)
def test_page_without_a_baseline_in_headless_chromium(tmp_path, browser):
    from selenium.webdriver.common.by import By

    root = tmp_path / "lb"
    make_record(root, "alone", "medqa", [0], [0])  # one item: "1 item", never "1 items"
    make_record(root, "other", "medqa", *answers(10, 4))
    (path,) = render(root, ["html"], baseline="none")
    browser.get(path.resolve().as_uri())
    assert browser.execute_script("return typeof window.medbenchLeaderboard") == "object"  # the script ran whole
    assert not browser.find_elements(By.ID, "only-sig")
    browser.find_element(By.ID, "filter").send_keys("alo")  # the filter still works without the checkbox
    shown = [r.get_attribute("data-label") for r in browser.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")
             if r.is_displayed()]
    assert shown == ["alone"]
    browser.find_element(By.CSS_SELECTOR, 'tr[data-label="alone"] td[data-col="medqa"]').click()
    assert browser.find_element(By.ID, "dd-count").text == "1 item"
    changed = browser.find_element(By.CSS_SELECTOR, '#dd-which option[value="changed"]')
    assert browser.execute_script("return arguments[0].hidden", changed)  # no baseline predictions to differ from
