"""Untrusted task folders, round 3: a `!function` tag anywhere in a YAML's node tree (a mapping key, a value a
duplicate key hides, a %TAG handle...) is found before lm-eval parses the file; a local dataset folder's README
`configs:` read nothing outside the task folder; an untrusted task's regex filters run under a time limit; a
template cannot make one C call allocate past MAX_RENDERED_CHARS; --include-path refuses a FIFO."""

from __future__ import annotations

import json
import os
import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest

from medbench.cli import main
from medbench.errors import MedbenchError

ROWS = [{"q": "Is the sky blue?", "a": 0}, {"q": "Is fire cold?", "a": 1}, {"q": "Is ice cold?", "a": 0}]
TASK = ("task: t\ndataset_path: json\ndataset_kwargs: {data_files: {test: rows.jsonl}}\noutput_type: multiple_choice\n"
        "test_split: test\ndoc_to_text: \"{{ q }}\"\ndoc_to_choice: [\"yes\", \"no\"]\ndoc_to_target: a\n"
        "metric_list: [{metric: acc}]\n")


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """An untrusted task folder (the working directory, as lm-eval reads relative data paths from it) whose
    utils.py leaves a mark when imported."""
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "rows.jsonl").write_text(jsonl(ROWS))
    mark = tmp_path / "utils-ran"
    (tasks / "utils.py").write_text(f"open({str(mark)!r}, 'w').write('ran')\ndef evil(*a, **k):\n    return None\n")
    monkeypatch.chdir(tasks)
    return tasks, mark


def one_error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# --- 1. !function anywhere in the node tree -------------------------------------------------------------------------

HIDDEN_FUNCTIONS = {
    "mapping-key": "metadata:\n  ? !function utils.evil\n  : 1\n",
    "flow-key": "metadata: {!function utils.evil : 1}\n",
    "sequence-key": "metadata:\n  ? [!function utils.evil]\n  : 1\n",
    "duplicate-key-hides-it": "process_docs: !function utils.evil\nprocess_docs: null\n",
    "verbatim-tag": "process_docs: !<!function> utils.evil\n",
    "percent-escaped-tag": "process_docs: !%66unction utils.evil\n",
    "anchor": "metadata: {a: &f !function utils.evil, b: *f}\n",
}


@pytest.mark.parametrize("name", sorted(HIDDEN_FUNCTIONS))
def test_a_function_tag_anywhere_is_refused_before_lm_eval_parses_the_file(name, folder, capsys):
    from lm_eval.tasks import _yaml_loader

    from medbench.tasks import task_sources

    tasks, mark = folder
    (tasks / "t.yaml").write_text(TASK + HIDDEN_FUNCTIONS[name])
    with task_sources([tasks]):
        with pytest.raises(MedbenchError, match=r"imports code \(!function utils.evil, line \d+\)"):
            _yaml_loader.load_yaml(tasks / "t.yaml")  # what lm-eval's index and factory call: vetted first
    assert not mark.exists()
    main(["tasks", "--json", "--include-path", str(tasks)])
    listing = json.loads(capsys.readouterr().out)
    rows = {row["task"]: row for row in listing["tasks"]}
    said = rows["t"]["status"] if "t" in rows else " ".join(listing["problems"])  # a key YAML cannot hold: no task
    assert "imports code (!function utils.evil" in said and "--trust-task-code" in said
    assert not mark.exists()


def test_the_tag_is_real_code_when_trusted(folder):
    """Control: lm-eval's own loader imports utils.py for a mapping key, so the refusals above are meaningful."""
    from lm_eval.tasks._yaml_loader import load_yaml

    tasks, mark = folder
    (tasks / "t.yaml").write_text(TASK + HIDDEN_FUNCTIONS["mapping-key"])
    load_yaml(tasks / "t.yaml")
    assert mark.exists()


def test_a_function_key_is_refused_by_eval_in_one_line(folder, tiny_model_dir, capsys):
    tasks, mark = folder
    (tasks / "t.yaml").write_text(TASK + HIDDEN_FUNCTIONS["mapping-key"])
    with pytest.raises(SystemExit) as refused:
        main(["eval", "--model", str(tiny_model_dir), "--tasks", "t", "--include-path", str(tasks),
              "--leaderboard-dir", "../lb", "--limit", "1"])
    line = one_error_line(capsys)
    assert refused.value.code == 2 and "imports code (!function utils.evil)" in line and "--trust-task-code" in line
    assert not mark.exists()


def test_code_in_an_included_file_or_a_python_tag_is_refused(folder, capsys):
    from medbench.tasks import build_registry, task_sources

    tasks, mark = folder
    # lm-eval drops an included file's task_list after building it: the tag in it still ran
    (tasks / "_base.yaml").write_text("task_list: [{process_docs: !function utils.evil}]\n")
    (tasks / "t.yaml").write_text("include: _base.yaml\n" + TASK)
    (tasks / "py.yaml").write_text(TASK.replace("task: t", "task: py") + "metadata: !!python/name:os.system\n")
    (tasks / "group.yaml").write_text("group: g\ntask:\n  - task: inline\n    process_docs: !function utils.evil\n")
    with task_sources([tasks]):
        registry = build_registry()
    assert "_base.yaml imports code (!function utils.evil, line 1)" in registry.entries["t"].refusal.one_line()
    problems = " | ".join(registry.problems)
    assert "py.yaml has the YAML tag !!python/name:os.system (line 10), which makes a YAML loader run" in problems
    with pytest.raises(SystemExit):
        main(["eval", "--tasks", "g", "--include-path", str(tasks), "--leaderboard-dir", "../lb"])
    assert "group.yaml imports code (!function utils.evil, line 4)" in one_error_line(capsys)
    assert not mark.exists()


# --- 2. a local dataset folder's cards ----------------------------------------------------------------------------

def dataset_folder(tasks: Path, card: str, name: str = "README.md") -> None:
    (tasks / "ds").mkdir()
    (tasks / "ds" / "test.jsonl").write_text(jsonl(ROWS))
    (tasks / "ds" / name).write_text(card)
    (tasks / "t.yaml").write_text(TASK.replace("dataset_path: json\ndataset_kwargs: {data_files: {test: rows.jsonl}}",
                                               "dataset_path: ./ds"))


def card(configs: str) -> str:
    return f"---\nconfigs:\n- {textwrap.indent(configs, '  ').lstrip()}---\n# a dataset\n"


@pytest.mark.parametrize("configs, expected", [
    ("config_name: default\ndata_files:\n- split: test\n  path: SECRET\n", "data_files 'SECRET'"),
    ("config_name: default\ndata_files:\n- split: test\n  path: ../../outside/secret.jsonl\n",
     "(resolves to OUTSIDE/secret.jsonl)"),
    ("config_name: default\ndata_dir: ../../outside\n", "data_dir '../../outside'"),
    ("config_name: default\ndata_files: {test: SECRET}\n", "data_files.test 'SECRET'"),
    ("config_name: default\ndata_files: file://SECRET\n", "a URL"),
    ("config_name: default\ndata_files: hf://datasets/someone/private/secret.jsonl\n", "a URL"),
    ("config_name: default\ndata_files: zip://x.jsonl::SECRET\n", "a URL"),
])
def test_a_dataset_cards_configs_read_nothing_outside_the_task_folder(configs, expected, folder, tmp_path,
                                                                      tiny_model_dir, capsys):
    tasks, _ = folder
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jsonl").write_text(jsonl([{"q": "OUTSIDE-SECRET", "a": 0}] * 3))
    secret = str(outside / "secret.jsonl")
    dataset_folder(tasks, card(configs.replace("SECRET", secret)))
    with pytest.raises(SystemExit) as refused:
        main(["eval", "--model", str(tiny_model_dir), "--tasks", "t", "--include-path", str(tasks),
              "--leaderboard-dir", str(tmp_path / "lb"), "--limit", "2"])
    line = one_error_line(capsys)
    assert refused.value.code == 2, line
    assert "README.md configs[0]" in line and expected.replace("SECRET", secret).replace(
        "OUTSIDE", str(outside)) in line and "OUTSIDE-SECRET" not in line
    assert not (tmp_path / "lb" / "records").exists()


def test_the_standalone_card_a_fifo_and_a_loading_script_are_checked_too(folder, tmp_path):
    from medbench.task_yaml import ContainmentError, read_task_yaml

    tasks, _ = folder
    dataset_folder(tasks, f"configs:\n- config_name: default\n  data_files: {tmp_path}/x.jsonl\n",
                   name=".huggingface.yaml")
    with pytest.raises(ContainmentError, match=r"\(.huggingface.yaml configs\[0\]\) data_files"):
        read_task_yaml(tasks / "t.yaml", root=tasks)
    (tasks / "ds" / ".huggingface.yaml").unlink()
    if hasattr(os, "mkfifo"):  # datasets opens it if it exists: a FIFO would block it forever
        os.mkfifo(tasks / "ds" / ".huggingface.yaml")
        with pytest.raises(ContainmentError, match=r"whose .huggingface.yaml cannot be read \(not a regular file\)"):
            read_task_yaml(tasks / "t.yaml", root=tasks)
        (tasks / "ds" / ".huggingface.yaml").unlink()
    (tasks / "ds" / "ds.py").write_text("raise SystemExit('loading script ran')\n")
    with pytest.raises(ContainmentError, match=r"a dataset with a loading script \(ds.py\), which is code"):
        read_task_yaml(tasks / "t.yaml", root=tasks)


def test_a_card_whose_configs_stay_inside_still_loads(folder, capsys):
    tasks, _ = folder
    dataset_folder(tasks, card("config_name: default\ndata_files:\n- split: test\n  path: test.jsonl\n"))
    main(["tasks", "--json", "--include-path", str(tasks)])
    rows = {row["task"]: row for row in json.loads(capsys.readouterr().out)["tasks"]}
    assert rows["t"]["status"] == "ok" and rows["t"]["splits"] == {"test": 3}


# --- 3. regex filters with a time limit ----------------------------------------------------------------------------

REDOS = r"^(a|aa)+$"  # exponential on "aaaa...!" in re and in the regex module (2026.11 made (a|a?)+ fast)
FILTERS = {
    "regex": [{"function": "regex", "regex_pattern": REDOS}],
    "multi_choice_regex": [{"function": "multi_choice_regex", "regex_pattern": "(X)",
                            "regexes_to_ignore": [REDOS]}],
}


def generating_task(tasks: Path, filters: list[dict], metric: dict | None = None) -> None:
    config = {"task": "t", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": "rows.jsonl"}},
              "output_type": "generate_until", "test_split": "test", "doc_to_text": "{{ q }}",
              "doc_to_target": "{{ 'yes' if a == 0 else 'no' }}",
              "generation_kwargs": {"max_gen_toks": 8, "until": ["NEVER"]},
              "metric_list": [metric or {"metric": "exact_match"}],
              "filter_list": [{"name": "x", "filter": [*filters, {"function": "take_first"}]}]}
    (tasks / "t.yaml").write_text(json.dumps(config))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", sorted(FILTERS))
def test_an_untrusted_regex_filter_stops_at_its_time_limit(kind, folder):
    from medbench.tasks import load_tasks, task_sources

    tasks, _ = folder
    generating_task(tasks, FILTERS[kind])
    doc = {"q": "x", "a": 0, "choices": ["yes", "no"]}
    started = time.monotonic()
    with task_sources([tasks]):
        task = load_tasks(["t"], render=False)["t"]
        with pytest.raises(MedbenchError, match=r"task 't' \(.*t.yaml\) filter 'x': its regex .* ran past 1 s"):
            task._filters[0].apply([type("Instance", (), {"resps": ["a" * 5000 + "!"], "doc": doc,
                                                          "filtered_resps": {}})()])
    assert time.monotonic() - started < 60


@pytest.mark.timeout(120)
def test_exact_match_regexes_to_ignore_stop_at_the_time_limit(folder):
    from medbench.tasks import load_tasks, task_sources

    tasks, _ = folder
    generating_task(tasks, [], {"metric": "exact_match", "regexes_to_ignore": [REDOS, ","]})
    with task_sources([tasks]):
        task = load_tasks(["t"], render=False)["t"]
        assert task.process_results({"q": "x", "a": 0}, ["ye,s"])["exact_match"] == 1.0  # still what it was
        with pytest.raises(MedbenchError, match=r"task 't' .* metric 'exact_match': its regex .* ran past 1 s"):
            task.process_results({"q": "x", "a": 0}, ["a" * 5000 + "!"])


def test_regex_filters_extract_as_before_and_only_untrusted_tasks_are_wrapped(folder):
    from lm_eval.filters.extraction import RegexFilter

    from medbench.tasks import load_tasks, task_sources

    tasks, _ = folder
    generating_task(tasks, [{"function": "regex", "regex_pattern": r"#### (\-?[0-9\.\,]+)"}])
    for trust in (False, True):
        with task_sources([tasks], trust_task_code=trust):
            task = load_tasks(["t"], render=False)["t"]
            step = task._filters[0].filters[0]()
            assert step.apply([["so #### 42 then", "none"]], [{}]) == [["42", "[invalid]"]]
            assert (type(step) is RegexFilter) == trust  # lm-eval's own class when the folder is trusted


# --- 4. template sizes checked before the C call ------------------------------------------------------------------

BIG = 60_000_000  # each template below made at least this many characters in one call before the limits
ALLOCATING = {
    "ljust": "{{ q.ljust(60000000) }}",
    "zfill": "{{ q.zfill(60000000) }}",
    "center-filter": "{{ q|center(60000000) }}",
    "percent-width": "{{ '%060000000d' % 1 }}",
    "percent-star": "{{ '%*d' % (60000000, 1) }}",
    "format-width": "{{ '{:>60000000}'.format(q) }}",
    "format-filter": "{{ '%060000000d'|format(1) }}",
    "indent": "{{ q|indent(60000000) }}",
    "to_bytes": "{{ (1).to_bytes(60000000, 'big')|length }}",
    "join": "{{ range(61)|join('x' * 999999) }}",
    "repeated-field": "{{ ('{0}' * 61).format('x' * 999999) }}",
    "shared-list-print": "{% set r = range(100000)|list %}{{ ([none] * 100)|map('default', r, true)|list }}",
    "shared-list-concat": "{% set r = range(100000)|list %}{{ (([none] * 100)|map('default', r, true)|list) ~ q }}",
    "output-loop": "{% set big = 'x' * 999999 %}{% for i in range(61) %}{{ big }}{% endfor %}",
    "macro-loop": "{% set big = 'x' * 999999 %}{% macro m() %}{% for i in range(61) %}{{ big }}{% endfor %}"
                  "{% endmacro %}{{ m()|length }}",
    "regex_replace": "{{ (q * 200)|regex_replace('', 'x' * 99999) }}",
}


@pytest.mark.parametrize("name", sorted(ALLOCATING))
def test_a_template_cannot_allocate_past_the_limit_in_one_call(name):
    import lm_eval.utils as lm_utils
    from jinja2.sandbox import SecurityError

    from medbench import task_trust

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with task_trust.sandboxed_templates():
            with pytest.raises(SecurityError, match="more than 1000000"):
                lm_utils.apply_template(ALLOCATING[name], {"q": "abc"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < BIG // 4, f"{name} allocated {peak} bytes before it was refused"


def test_plain_templates_render_as_before_in_the_bounded_sandbox():
    import lm_eval.utils as lm_utils

    from medbench import task_trust

    templates = {"Q: {{ q|trim }}\nA: {{ '%s!' % q }} {{ '{:>5}'.format(q) }}|{{ q.ljust(5) }}|{{ q ~ '?' }}":
                 "Q: abc\nA: abc!   abc|abc  |abc?",
                 "{{ choices|join(', ') }} {{ choices }} {{ {'k': q} }} {{ (q * 2)|center(8) }}|{{ q|indent(2) }}":
                 "A, B ['A', 'B'] {'k': 'abc'}  abcabc |abc",
                 "{% for c in choices %}{{ loop.index }}. {{ c|upper }}\n{% endfor %}{{ q|regex_replace('b', 'B') }}":
                 "1. A\n2. B\naBc"}
    with task_trust.sandboxed_templates():
        for template, expected in templates.items():
            assert lm_utils.apply_template(template, {"q": "abc", "choices": ["A", "B"]}) == expected


# --- 5. --include-path that is no folder ---------------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("command", ["tasks", "eval"])
def test_an_include_path_that_is_a_fifo_or_device_is_one_line(command, tmp_path, capsys):
    fifo = tmp_path / "tasks"
    os.mkfifo(fifo)
    for path in (fifo, Path(os.devnull)):
        args = ["--include-path", str(path)] + (["--tasks", "medqa", "--leaderboard-dir", str(tmp_path / "lb")]
                                                if command == "eval" else [])
        with pytest.raises(SystemExit) as refused:
            main([command, *args])
        line = one_error_line(capsys)
        assert refused.value.code == 2 and f"--include-path {path} is a FIFO, device or socket, not a folder" in line
