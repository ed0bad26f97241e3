"""The leaderboard page's plots say what they show, and its drill-down reads well (DOM-level checks).

A board like `make demo` leaves plus the conditions that used to collapse into one unlabelled plot: medqa scored
by log-likelihood (raw prompt and chat template) and by generated answer with the chat template
(``medqa@gen@chat``, exact_match), for the base model and three trained methods.
"""

import hashlib
import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from leaderboard_helpers import answers
from medbench.leaderboard import build_table, render
from medbench.records import write_record
from medbench_plugins.leaderboard_plots import factor_points

SVG = "{http://www.w3.org/2000/svg}"
CHAT_PROMPT = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
               "<|im_start|>user\nQuestion {i}: which drug causes ototoxicity in {label}?\nA. x\nB. y\nC. z\nD. w\n"
               "Answer:<|im_end|>\n<|im_start|>assistant\n")


def write(root: Path, label: str, golds, preds, *, method: str | None = None, mode: str = "loglikelihood",
          chat: bool = False, shots: int = 0, choices: bool = True, metric: str = "acc",
          created: str = "2026-01-01T00:00:00Z", config: dict | None = None, data_hash: str = "data-medqa",
          data_source: dict | None = None) -> Path:
    weights = hashlib.blake2b(label.encode(), digest_size=16).hexdigest()
    samples = []
    for i, (gold, pred) in enumerate(zip(golds, preds)):
        prompt = CHAT_PROMPT.format(i=i, label=label) if chat else f"Question {i}: which drug in {label}?\nAnswer:"
        sample = {"doc_id": i, "gold": gold, "pred": pred, metric: float(gold == pred), "prompt": prompt}
        if choices:
            sample["choices"] = ["A", "B", "C", "D"]
        samples.append(sample)
    n = len(samples)
    value = sum(s[metric] for s in samples) / n
    stderr = math.sqrt(sum((s[metric] - value) ** 2 for s in samples) / (n - 1)) / math.sqrt(n)
    key = "medqa" + (f"@{shots}shot" if shots else "") + ("@gen" if mode == "generate" else "") + \
        ("@chat" if chat else "")
    record = {
        "record_key": key,
        "task": {"name": "medqa", "version": 1.0, "plugin": "test", "split": "test", "num_fewshot": shots,
                 "data_hash": data_hash, "split_size": n,
                 "output_type": "generate_until" if mode == "generate" else "multiple_choice",
                 "scoring": {"mode": mode, "fewshot_rationales": False}},
        "model": {"label": label, "ref": label, "kind": "local", "path": None, "base_ref": None,
                  "weights_hash": weights, "parameters": 1000},
        "metrics": {metric: {"value": value, "stderr": stderr}}, "primary_metric": metric, "score": value,
        "stderr": stderr, "n": n,
        "config": {"batch_size": 8, "label": label, "limit": None, "num_fewshot": None, "seed": 1,
                   "task_metadata": {}, "chat_template": chat, "mode": mode},
        "seed": 1, "versions": {"medbench": "0.1.0"}, "created": created,
        **({"data_source": data_source} if data_source else {}),
    }
    if method:
        record["extra"] = {"training": {"plugin": method, "run_id": method, "step": 6,
                                        "config": config or {"learning_rate": 0.0002, "auto_batch_size": True,
                                                             "max_steps": 6}}}
    return write_record(root, record, samples)


@pytest.fixture
def board(tmp_path):
    root = tmp_path / "lb"
    for label, method, right in (("base", None, 15), ("sft", "sft", 40), ("dpo", "dpo", 20), ("merge", "merge", 30)):
        write(root, label, *answers(60, right), method=method)
        write(root, label, *answers(60, right - 5), method=method, chat=True)
    # generated answers with the chat template, scored by exact match: base and sft only
    write(root, "base", *answers(60, 10), mode="generate", chat=True, metric="exact_match")
    write(root, "sft", *answers(60, 30), method="sft", mode="generate", chat=True, metric="exact_match")
    return root


def plots(page: str, kind: str) -> list[ET.Element]:
    found = re.findall(r'<svg class="plot ' + kind + r'".*?</svg>', page, re.S)
    return [ET.fromstring(svg) for svg in found]


def texts(svg: ET.Element, css: str) -> list[str]:
    return ["".join(t.itertext()) for t in svg.iter(SVG + "text") if css in (t.get("class") or "").split()]


def test_no_plot_mixes_metrics_or_scoring_modes(board):
    table = build_table(board)
    for (task, metric, scoring, factor), items in factor_points(table).items():
        assert {c.metric for _, c in items} == {metric}
        assert {((c.record["task"].get("scoring") or {}).get("mode")) for _, c in items} == {scoring}
    (page_path,) = render(board, ["html"])
    page = page_path.read_text(encoding="utf-8")
    factor_plots = plots(page, "factor")
    assert factor_plots
    by = {(p.get("data-metric"), p.get("data-scoring"), p.get("data-factor")): p for p in factor_plots}
    # the log-likelihood acc plot against method: one base point per prompt format, each in its own series
    method_plot = by[("acc", "loglikelihood", "method")]
    series = {g.get("data-series"): g for g in method_plot.iter(SVG + "g") if g.get("class") == "series"}
    assert set(series) == {"prompt=chat", "prompt=raw"}
    for group in series.values():
        assert len([c for c in group.iter(SVG + "circle") if c.get("class") == "point"]) == 4  # base sft dpo merge
    # exact_match from generated answers is its own plot, never on the acc axis
    gen_plot = by[("exact_match", "generate", "method")]
    assert "generated answers" in "".join(texts(gen_plot, "plot-title"))
    assert "prompt: chat" in "".join(texts(gen_plot, "subtitle"))
    # acc against prompt: the four methods at "raw" are four named series, not a stack of unlabelled points
    prompt_plot = by[("acc", "loglikelihood", "prompt")]
    names = [g.get("data-series") for g in prompt_plot.iter(SVG + "g") if g.get("class") == "series"]
    assert sorted(names) == ["method=base", "method=dpo", "method=merge", "method=sft"]


def test_every_plot_has_axis_labels_and_a_legend_for_its_series(board):
    (page_path,) = render(board, ["html"], baseline="base")
    page = page_path.read_text(encoding="utf-8")
    for svg in plots(page, "factor"):
        metric, factor = svg.get("data-metric"), svg.get("data-factor")
        assert texts(svg, "y-label") == [f"{metric} (95% CI)"]
        assert len(texts(svg, "x-label")) == 1 and factor.split(".")[0] in texts(svg, "x-label")[0]
        series = [g.get("data-series") for g in svg.iter(SVG + "g") if g.get("class") == "series"]
        legend = [g.get("data-series") for g in svg.iter(SVG + "g") if g.get("class") == "legend-item"]
        if len(series) > 1:
            assert set(series) <= set(legend), (series, legend)
        assert any("baseline" in name for name in legend)  # the ringed point is explained
    forests = plots(page, "forest")
    assert len(forests) == 3  # medqa, medqa@chat, medqa@gen@chat
    for svg in forests:
        assert texts(svg, "x-label") == [f"{svg.get('data-metric')} (95% CI)"]
        legend = [g.get("data-series") for g in svg.iter(SVG + "g") if g.get("class") == "legend-item"]
        assert "baseline" in legend and "dashed: the baseline's score" in legend


# ------------------------------------------------------------------------------------------ forest labels and states

MERGES = [f"merge:merge-medqa-20261203-193108/slerp-t{t}" for t in ("0.25", "0.5", "0.75")]


def test_forest_labels_fit_their_area_and_keep_their_distinguishing_ends(tmp_path):
    from medbench_plugins.leaderboard_text_fit import LABEL_PX, text_width

    root = tmp_path / "lb"
    labels = ["base", "sft:sft-medqa-20261203-190525/checkpoint-2", *MERGES, "x" * 120, "漢" * 40]
    for k, label in enumerate(labels):
        write(root, label, *answers(20, 5 + k))
    (page_path,) = render(root, ["html"], baseline="base")
    (forest,) = plots(page_path.read_text(encoding="utf-8"), "forest")
    shown = {}
    for group in forest.iter(SVG + "g"):
        if group.get("class") != "point-group":
            continue
        (label,) = [t for t in group.iter(SVG + "text") if t.get("class") == "label"]
        full = group.get("data-label")
        assert group.find(SVG + "title").text.startswith(full + ":")  # the whole name in the tooltip
        # right-aligned at x: it must fit between the plot's left edge (and a margin) and x
        assert text_width(label.text, LABEL_PX) <= float(label.get("x")) - 4, (full, label.text)
        shown[full] = label.text
    assert set(shown) == set(labels)
    assert shown["base"] == "base"
    merged = [shown[label] for label in MERGES]
    assert len(set(merged)) == 3 and all("…" in text for text in merged)
    assert [text.rsplit("-", 1)[1] for text in merged] == ["t0.25", "t0.5", "t0.75"]  # the ends that differ
    assert all(text.startswith("merge:merge-medqa") for text in merged)  # and the start
    assert shown["sft:sft-medqa-20261203-190525/checkpoint-2"].startswith("sft:sft")


def test_fit_text_cuts_in_the_middle_and_text_width_is_conservative():
    from medbench_plugins.leaderboard_text_fit import fit_text, text_width

    assert fit_text("short", 200) == "short"
    cut = fit_text("merge:merge-medqa-20261203-193108/slerp-t0.5", 150)
    assert cut.startswith("merge") and cut.endswith("t0.5") and "…" in cut and text_width(cut) <= 150
    assert fit_text("abcdef", 1) == "…"
    # DejaVu Sans at 12 px (the page's font on Linux, the widest common one): widths measured in Chromium
    for text, measured in (("m" * 10, 116.9), ("W" * 10, 118.7), ("0123456789", 76.4), ("i" * 10, 33.3),
                           ("-" * 10, 43.3), ("@" * 10, 120.0)):
        assert text_width(text, 12) >= measured


def test_without_a_baseline_no_point_is_called_not_significantly_different(tmp_path):
    root = tmp_path / "lb"
    write(root, "base", *answers(20, 5))
    write(root, "tuned", *answers(20, 9), method="sft")
    (page_path,) = render(root, ["html"], baseline="none")
    page = page_path.read_text(encoding="utf-8")
    assert "not significantly different" not in page and "differ significantly" not in page
    assert 'id="only-sig"' not in page  # the filter needs a baseline: not offered without one
    (forest,) = plots(page, "forest")
    legend = [g.get("data-series") for g in forest.iter(SVG + "g") if g.get("class") == "legend-item"]
    assert legend == ["no baseline chosen: no significance tests"]
    assert {g.get("data-state") for g in forest.iter(SVG + "g") if g.get("class") == "point-group"} == {"unranked"}

    (page_path,) = render(root, ["html"], baseline="base")
    assert 'id="only-sig"' in page_path.read_text(encoding="utf-8")


def test_a_point_never_compared_with_the_baseline_says_so(tmp_path):
    root = tmp_path / "lb"
    write(root, "base", *answers(20, 5))
    write(root, "tuned", *answers(20, 6), method="sft")
    write(root, "tuned", *answers(20, 6), method="sft", shots=3)  # a column the baseline was never scored on
    (page_path,) = render(root, ["html"], baseline="base")
    by_col = {svg.get("data-column"): svg for svg in plots(page_path.read_text(encoding="utf-8"), "forest")}
    lonely = by_col["medqa@3shot"]
    (point,) = [g for g in lonely.iter(SVG + "g") if g.get("class") == "point-group"]
    assert point.get("data-state") == "untested"
    assert "not compared with the baseline" in point.find(SVG + "title").text
    legend = [g.get("data-series") for g in lonely.iter(SVG + "g") if g.get("class") == "legend-item"]
    assert legend == ["not compared with the baseline (hover for why)"]
    tested = [g for g in by_col["medqa"].iter(SVG + "g") if g.get("data-label") == "tuned"]
    assert tested[0].get("data-state") == "same"  # 6 vs 5 of 20: tested, and not different


# ------------------------------------------------------------------------------------------ the drill-down

EVIL = "<script>alert(1)</script>"


def embedded(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="medbench-data">(.*?)</script>', page, re.S)
    return json.loads(match.group(1))


@pytest.mark.parametrize("prompt", [
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nQ?\nA. x<|im_end|>\n<|im_start|>assistant\n",
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user"
    "<|end_header_id|>\n\nQ?\nA. x<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    "<bos><start_of_turn>user\nQ?\nA. x<end_of_turn>\n<start_of_turn>model\n",
    "<|system|>\nBe brief.<|end|>\n<|user|>\nQ?\nA. x<|end|>\n<|assistant|>\n",
    "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nQ?\nA. x [/INST]",
])
def test_the_question_is_found_in_common_chat_templates(prompt):
    from medbench_plugins.leaderboard_page import chat_question

    assert chat_question(prompt) == "Q?\nA. x"


def test_few_shot_chat_prompts_show_the_last_user_turn_and_plain_prompts_none():
    from medbench_plugins.leaderboard_page import chat_question

    multi = ("<|im_start|>user\nExample Q<|im_end|>\n<|im_start|>assistant\nB<|im_end|>\n"
             "<|im_start|>user\nReal Q<|im_end|>\n<|im_start|>assistant\n")
    assert chat_question(multi) == "Real Q"
    assert chat_question("Question: plain\nAnswer:") is None


def test_drilldown_answers_share_one_format_and_chat_rows_lead_with_the_question(tmp_path):
    root = tmp_path / "lb"
    write(root, "new", *answers(8, 4))
    write(root, "old", *answers(8, 2), choices=False)  # written before samples carried their choices
    write(root, EVIL, *answers(8, 3), chat=True)
    # other data, and no record of it names its choices: the bare index; no answer at all: a dash
    write(root, "lonely", [0, 1, 2], [1, 1, None], choices=False, data_hash="other-data")
    (page_path,) = render(root, ["html"], baseline="new")
    page = page_path.read_text(encoding="utf-8")
    data = embedded(page)
    by_row = {(c["row"], c["column"]): c for c in data["cells"].values()}
    pattern = re.compile(r"^[0-3] · [A-D]$")
    for key in (("new", "medqa"), ("old", "medqa"), (EVIL, "medqa@chat")):
        for sample in by_row[key]["samples"]:
            assert pattern.match(sample["gold"]) and pattern.match(sample["pred"]), (key, sample)
    old = by_row[("old", "medqa")]["samples"]
    assert all(pattern.match(s["bp"]) for s in old)  # the baseline's predictions read the same way
    lonely = by_row[("lonely", "medqa")]["samples"]
    assert [(s["gold"], s["pred"]) for s in lonely] == [(0, 1), (1, 1), (2, "–")]
    chat = by_row[(EVIL, "medqa@chat")]["samples"][0]
    question = data["prompts"][chat["q"]]
    assert question.startswith("Question 0: which drug causes ototoxicity") and "<|im_start|>" not in question
    assert data["prompts"][chat["p"]].startswith("<|im_start|>system")
    assert EVIL in question and EVIL not in page  # the question text stays data, escaped in the page
    assert "q" not in by_row[("new", "medqa")]["samples"][0]  # raw prompts are shown as they are


def test_checkpoint_details_show_the_training_config_as_a_key_value_table(tmp_path):
    root = tmp_path / "lb"
    write(root, "tuned", *answers(8, 4), method="sft",
          config={"auto_batch_size": True, "learning_rate": 0.0002, EVIL: "x</td></tr>", "target_modules": ["q", "v"]})
    (page_path,) = render(root, ["html"])
    page = page_path.read_text(encoding="utf-8")
    table = re.search(r'<table class="kv">(.*?)</table>', page, re.S).group(1)
    rows = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", table))
    assert rows["auto_batch_size"] == "true" and rows["learning_rate"] == "0.0002"
    assert rows["target_modules"] == "[&quot;q&quot;, &quot;v&quot;]"
    assert rows["&lt;script&gt;alert(1)&lt;/script&gt;"] == "x&lt;/td&gt;&lt;/tr&gt;"
    assert EVIL not in page and '"auto_batch_size"' not in page.split('id="medbench-data"')[0]


# ------------------------------------------------------------------------------------------ in a browser


@pytest.fixture
def browser(tmp_path):
    from test_leaderboard_html import _browser

    chromium, driver_path, why_not = _browser()
    if why_not:
        pytest.skip(why_not)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.mark.timeout(300)
def test_forest_labels_stay_inside_the_plot_in_headless_chromium(tmp_path, browser):
    from selenium.webdriver.common.by import By

    root = tmp_path / "lb"
    for k, label in enumerate(["base", "sft:sft-medqa-20261203-190525/checkpoint-2", *MERGES,
                               "renal_smooth_sft:renal_smooth_sft-renal_aki_stage-20261203-191810/checkpoint-2"]):
        write(root, label, *answers(20, 5 + k))
    (path,) = render(root, ["html"], baseline="base")
    browser.get(path.resolve().as_uri())
    labels = browser.find_elements(By.CSS_SELECTOR, "svg.forest text.label")
    assert len(labels) == 6
    for label in labels:  # the drawn text, measured by the browser, starts inside the SVG
        assert browser.execute_script("return arguments[0].getBBox().x", label) >= 0, label.text


@pytest.mark.timeout(300)
def test_plots_and_drilldown_in_headless_chromium(board, browser):
    from selenium.webdriver.common.by import By

    write(board, "old", *answers(60, 12), choices=False)
    (path,) = render(board, ["html"], baseline="base")
    browser.get(path.resolve().as_uri())
    method_plot = browser.find_element(
        By.CSS_SELECTOR, 'svg.factor[data-factor="method"][data-scoring="loglikelihood"]')
    legend = [e.text for e in method_plot.find_elements(By.CSS_SELECTOR, "g.legend-item")]
    assert "prompt=chat" in legend and "prompt=raw" in legend
    assert method_plot.find_element(By.CSS_SELECTOR, "text.y-label").text == "acc (95% CI)"
    assert method_plot.find_element(By.CSS_SELECTOR, "text.x-label").text.startswith("method")
    for item in method_plot.find_elements(By.CSS_SELECTOR, "g.legend-item"):
        assert item.is_displayed() and item.rect["width"] > 0

    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-label="sft"]')
    row.find_element(By.TAG_NAME, "summary").click()
    config = {r.find_element(By.TAG_NAME, "th").text: r.find_element(By.TAG_NAME, "td").text
              for r in row.find_elements(By.CSS_SELECTOR, "table.kv tr")}
    assert config["auto_batch_size"] == "true" and config["max_steps"] == "6"

    row.find_element(By.CSS_SELECTOR, 'td[data-col="medqa@chat"]').click()
    first = browser.find_element(By.CSS_SELECTOR, "#dd-samples tbody tr")
    summary = first.find_element(By.CSS_SELECTOR, "details > summary")
    assert summary.text.startswith("Question 0: which drug causes ototoxicity")
    summary.click()
    wrapper = first.find_element(By.CSS_SELECTOR, "details.chat-wrapper")
    assert not wrapper.find_element(By.TAG_NAME, "pre").is_displayed()  # folded until asked for
    wrapper.find_element(By.TAG_NAME, "summary").click()
    assert "You are a helpful AI assistant" in wrapper.find_element(By.TAG_NAME, "pre").text
    browser.find_element(By.ID, "dd-close").click()

    old = browser.find_element(By.CSS_SELECTOR, 'tr[data-label="old"] td[data-col="medqa"]')
    old.click()
    cells = browser.find_elements(By.CSS_SELECTOR, "#dd-samples tbody tr")[0].find_elements(By.TAG_NAME, "td")
    assert re.fullmatch(r"[0-3] · [A-D]", cells[1].text) and re.fullmatch(r"[0-3] · [A-D]", cells[2].text)
