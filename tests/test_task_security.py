"""Task files from --include-path folders are untrusted input: their Jinja templates render in a sandbox,
listing them never renders, and a hostile YAML (alias bomb, include cycle, bad encoding, a name that shadows a
built-in) is one line, never a hang, a traceback or a silent substitution."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import pytest

from medbench.cli import main
from medbench.tasks import build_registry, task_sources

ROWS = [{"q": "Is the sky blue?", "a": 0}, {"q": "Is fire cold?", "a": 1}, {"q": "Is ice cold?", "a": 0}]


def task_yaml(name: str, doc_to_text: str, data: Path) -> str:
    return json.dumps({
        "task": name, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data)}},
        "output_type": "multiple_choice", "test_split": "test", "doc_to_text": doc_to_text,
        "doc_to_choice": ["yes", "no"], "doc_to_target": "a", "metric_list": [{"metric": "acc"}]})


def payloads(mark: Path, secret: Path) -> dict[str, str]:
    templates = {
        "globals": "{{ cycler.__init__.__globals__.os.system('CMD') }}{{ q }}",
        "mro": ("{% for c in ''.__class__.__mro__[1].__subclasses__() %}{% if c.__name__ == 'catch_warnings' %}"
                "{{ c()._module.__builtins__['__import__']('os').system('CMD') }}{% endif %}{% endfor %}{{ q }}"),
        "attr_filter": ("{{ (cycler|attr('__init__')|attr('__globals__'))['os']|attr('system')('CMD') }}{{ q }}"),
        "import": "{% import 'os' as os %}{{ q }}",
        "include": "{% include '" + str(secret) + "' %}{{ q }}",
    }
    return {name: text.replace("CMD", f"touch {mark}") for name, text in templates.items()}


@pytest.fixture
def hostile_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    secret = tmp_path / "secret.txt"  # outside the task folder
    secret.write_text("TOP-SECRET-CONTENT")
    mark = tmp_path / "payload-ran"
    folder = tmp_path / "user_tasks"
    folder.mkdir()
    data = folder / "rows.jsonl"  # an untrusted folder's data sits inside it (test_task_containment.py)
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    for name, template in payloads(mark, secret).items():
        (folder / f"evil_{name}.yaml").write_text(task_yaml(f"evil_{name}", template, data))
    (folder / "plain.yaml").write_text(task_yaml("plain", "Question: {{ q|trim }}\nAnswer:", data))
    return folder, mark, data


def test_the_globals_payload_is_real_when_trusted(hostile_folder, tiny_model_dir, capsys):
    """Control: with --trust-task-code (no sandbox) the payload does run, so the refusals below are meaningful."""
    folder, mark, _ = hostile_folder
    main(["eval", "--model", str(tiny_model_dir), "--tasks", "evil_globals", "--include-path", str(folder),
          "--leaderboard-dir", "lb", "--limit", "1", "--trust-task-code"])
    assert mark.exists()


@pytest.mark.parametrize("payload", ["globals", "mro", "attr_filter", "import", "include"])
def test_untrusted_templates_render_in_a_sandbox(payload, hostile_folder, tiny_model_dir, capsys):
    folder, mark, _ = hostile_folder
    with pytest.raises(SystemExit) as refused:
        main(["eval", "--model", str(tiny_model_dir), "--tasks", f"evil_{payload}", "--include-path", str(folder),
              "--leaderboard-dir", "lb", "--limit", "2"])
    err = capsys.readouterr().err
    assert refused.value.code == 2, err
    assert not mark.exists()
    assert "TOP-SECRET-CONTENT" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "sandbox" in err and "--trust-task-code" in err, err
    assert not list(Path("lb").glob("records/*/*/record.json"))


@pytest.mark.parametrize("trust", [False, True])
def test_listing_never_renders_templates(trust, hostile_folder, capsys):
    folder, mark, _ = hostile_folder
    main(["tasks", "--json", "--include-path", str(folder)] + (["--trust-task-code"] if trust else []))
    rows = {row["task"]: row for row in json.loads(capsys.readouterr().out)["tasks"]}
    assert not mark.exists()  # even trusted: listing builds tasks with stand-ins for every template
    assert {f"evil_{name}" for name in ("globals", "mro", "attr_filter", "import", "include")} <= set(rows)
    assert rows["evil_globals"]["splits"] == {"test": 3}
    assert rows["medqa"]["status"] == "ok"


def test_plain_user_templates_and_builtin_tasks_work_in_the_sandbox(hostile_folder, tiny_model_dir, capsys):
    folder, mark, _ = hostile_folder
    main(["eval", "--model", str(tiny_model_dir), "--tasks", "plain,medqa", "--include-path", str(folder),
          "--leaderboard-dir", "lb", "--limit", "3"])
    records = {p.parent.name: json.loads(p.read_text()) for p in Path("lb").glob("records/*/*/record.json")}
    assert set(records) == {"plain", "medqa"} and records["plain"]["n"] == 3
    samples = [json.loads(line) for line in
               next(Path("lb").glob("records/*/plain/samples.jsonl")).read_text().splitlines()]
    assert samples[0]["prompt"] == "Question: Is the sky blue?\nAnswer:"
    assert not mark.exists()


def alias_bomb(levels: int = 24) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]")
    return "task: bomb\nmetadata:\n" + "".join(f"  {line}\n" for line in lines)


def test_yaml_alias_bomb_is_refused_quickly(tmp_path, capsys):
    folder = tmp_path / "bomb"
    folder.mkdir()
    text = alias_bomb()
    assert len(text) < 3000
    (folder / "bomb.yaml").write_text(text)
    (folder / "loop.yaml").write_text("task: loop\nmetadata: &m {self: *m}\n")  # a recursive alias
    started = time.monotonic()
    with pytest.raises(SystemExit) as refused:
        main(["eval", "--tasks", "bomb", "--include-path", str(folder), "--leaderboard-dir", str(tmp_path / "lb")])
    err = capsys.readouterr().err
    assert refused.value.code == 2 and "expands to more than" in err and "aliases" in err, err
    main(["tasks", "--json", "--include-path", str(folder)])
    out = json.loads(capsys.readouterr().out)
    assert time.monotonic() - started < 60
    assert any("bomb.yaml expands to more than" in p for p in out["problems"])
    assert any("loop.yaml expands to nesting deeper than" in p for p in out["problems"])
    assert "medqa" in {row["task"] for row in out["tasks"]}


def test_include_cycles_and_bad_encoding_are_one_line_and_do_not_block_builtins(tmp_path, capsys):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "ping.yaml").write_text("include: pong.yaml\ntask: ping\n")
    (folder / "pong.yaml").write_text("include: ping.yaml\ntask: pong\n")
    (folder / "latin.yaml").write_bytes("task: latin\ndescription: caf\xe9\n".encode("latin-1"))
    with task_sources([folder]):
        registry = build_registry()
    assert "medqa" in registry.entries
    problems = " | ".join(registry.problems)
    assert "includes itself through a cycle (ping.yaml -> pong.yaml -> ping.yaml)" in problems
    assert "latin.yaml is not UTF-8 text" in problems
    for task, expected in (("ping", "includes itself through a cycle"), ("latin", "is not UTF-8 text")):
        with pytest.raises(SystemExit) as refused:
            main(["eval", "--tasks", task, "--include-path", str(folder), "--leaderboard-dir", str(tmp_path / "lb")])
        err = capsys.readouterr().err
        assert refused.value.code == 2 and expected in err and len(err.strip().splitlines()) == 1, err


def test_an_included_task_that_shadows_a_builtin_wins_with_a_warning(tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "mine"
    folder.mkdir()
    data = folder / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    (folder / "medqa.yaml").write_text(task_yaml("medqa", "{{ q }}", data))
    main(["eval", "--model", str(tiny_model_dir), "--tasks", "medqa", "--include-path", str(folder),
          "--leaderboard-dir", "lb"])
    err = capsys.readouterr().err
    assert "task 'medqa' from --include-path" in err and "replaces the one from" in err and "tasks/medqa" in err
    record = json.loads(next(Path("lb").glob("records/*/medqa/record.json")).read_text())
    assert record["task"]["yaml"] == "../mine/medqa.yaml" and record["n"] == 3  # relative to the leaderboard


def test_a_plugin_task_that_shadows_a_builtin_is_named_when_used(tmp_path, plugin_registration):
    folder = tmp_path / "plugin_tasks"
    folder.mkdir()
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    (folder / "medqa.yaml").write_text(task_yaml("medqa", "{{ q }}", data))

    class ShadowPlugin:
        from medbench import hookimpl

        @hookimpl
        def register_tasks(self, register):
            register(folder)

    plugin_registration(ShadowPlugin())
    registry = build_registry()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entry = registry.get("medqa")
    assert entry.plugin != "--include-path" and entry.path != folder / "medqa.yaml"  # the built-in is kept
    messages = [str(w.message) for w in caught]
    assert any("clashes with the one from" in m and str(folder / "medqa.yaml") in m for m in messages), messages
