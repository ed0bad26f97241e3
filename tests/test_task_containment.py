"""An --include-path folder medbench does not trust reads nothing outside itself: every path its YAMLs name
(`include:`, `dataset_path`, `dataset_kwargs.data_files` / `data_dir` / `cache_dir`, `metadata.data_files`, a
metric script), after `..` and symlinks, must lie inside the folder. Otherwise `eval` exits 2 with one line naming
the file, the key, the path and the fix, and `tasks` lists the task with that line as its status; in both, the
outside file is never opened (an audit hook watches every open), so its content never shows up in any output or
record. --trust-task-code lifts the rule; a hub dataset name and the user's own --data-file are not task paths."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from medbench.cli import main

MARKER = "OUTSIDE-MARKER-5c1e"  # only the outside files hold it
ROWS = [{"q": "Is the sky blue?", "a": 0}, {"q": "Is fire cold?", "a": 1}, {"q": "Is ice cold?", "a": 0}]
OUTSIDE_ROWS = [{"q": f"{MARKER} question {i}?", "a": i % 2} for i in range(5)]

_watch: dict[str, object] = {"dir": None, "seen": []}


def _audit(event: str, args: tuple) -> None:
    """Records every open / directory listing under the watched outside folder (an audit hook stays for the
    process, so it only looks while a test sets ``_watch['dir']``)."""
    watched = _watch["dir"]
    if watched is None or event not in ("open", "os.listdir", "os.scandir") or not args:
        return
    target = args[0]
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    if isinstance(target, (str, os.PathLike)) and os.path.realpath(target).startswith(str(watched)):
        _watch["seen"].append((event, os.fspath(target)))


sys.addaudithook(_audit)


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def task(name: str, **overrides) -> dict:
    config = {"task": name, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": "tasks/rows.jsonl"}},
              "output_type": "multiple_choice", "test_split": "test", "doc_to_text": "{{ q }}",
              "doc_to_choice": ["yes", "no"], "doc_to_target": "a", "metric_list": [{"metric": "acc"}]}
    config.update(overrides)
    return config


@pytest.fixture
def world(tmp_path, monkeypatch):
    """tmp/tasks: the untrusted folder (its data inside); tmp/outside: files it must never read. The working
    directory is tmp, so relative data paths are read from there (as datasets does)."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "tasks"
    outside = tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (folder / "rows.jsonl").write_text(jsonl(ROWS))
    (outside / "secret.jsonl").write_text(jsonl(OUTSIDE_ROWS))
    (outside / "base.yaml").write_text(json.dumps({**task("from_outside"), "description": f"{MARKER}\n"}))
    (outside / "metric.py").write_text(f"raise SystemExit('{MARKER}')\n")
    (outside / "evil.yaml").write_text(json.dumps(task("linked", description=f"{MARKER}\n")))
    _watch.update(dir=str(outside.resolve()), seen=[])
    yield folder, outside
    _watch.update(dir=None, seen=[])


def write(folder: Path, name: str, config: dict) -> None:
    (folder / f"{name}.yaml").write_text(json.dumps(config))


def kwargs(**extra) -> dict:
    return {"dataset_kwargs": extra}


# name -> (set-up writing the task's YAML(s) into the folder, the key the refusal names, a fragment of the path)
def _include_absolute(folder, outside):
    write(folder, "t", {"include": str(outside / "base.yaml"), "task": "t"})


def _include_dotdot(folder, outside):
    write(folder, "t", {"include": "../outside/base.yaml", "task": "t"})


def _include_chain(folder, outside):
    (folder / "common").mkdir()
    write(folder / "common", "_mid", {"include": "../../outside/base.yaml", "doc_to_text": "{{ q }}"})
    write(folder, "t", {"include": "common/_mid.yaml", "task": "t"})


def _include_list(folder, outside):
    write(folder, "_ok", {"description": "fine\n"})
    write(folder, "t", {"include": ["_ok.yaml", "../outside/base.yaml"], **task("t")})


def _include_symlink(folder, outside):
    (folder / "_base.yaml").symlink_to(outside / "base.yaml")
    write(folder, "t", {"include": "_base.yaml", "task": "t"})


def _data_files_absolute(folder, outside):
    write(folder, "t", task("t", **kwargs(data_files={"test": str(outside / "secret.jsonl")})))


def _data_files_relative(folder, outside):  # relative to the working directory, which is outside the folder
    write(folder, "t", task("t", **kwargs(data_files={"test": "outside/secret.jsonl"})))


def _data_files_dotdot(folder, outside):
    write(folder, "t", task("t", **kwargs(data_files="tasks/../outside/secret.jsonl")))


def _data_files_symlink(folder, outside):
    (folder / "linked.jsonl").symlink_to(outside / "secret.jsonl")
    write(folder, "t", task("t", **kwargs(data_files={"test": "tasks/linked.jsonl"})))


def _data_files_glob(folder, outside):
    (folder / "more").mkdir()
    (folder / "more" / "x.jsonl").symlink_to(outside / "secret.jsonl")
    write(folder, "t", task("t", **kwargs(data_files={"test": "tasks/more/*.jsonl"})))


def _dataset_path_dir(folder, outside):
    write(folder, "t", task("t", dataset_path=str(outside), dataset_kwargs=None, test_split="train"))


def _dataset_path_symlinked_dir(folder, outside):
    (folder / "data").symlink_to(outside, target_is_directory=True)
    write(folder, "t", task("t", dataset_path="tasks/data", dataset_kwargs=None, test_split="train"))


def _dataset_path_dir_with_link(folder, outside):
    (folder / "data").mkdir()
    (folder / "data" / "test.jsonl").symlink_to(outside / "secret.jsonl")
    write(folder, "t", task("t", dataset_path="tasks/data", dataset_kwargs=None))


def _data_dir(folder, outside):
    write(folder, "t", task("t", **kwargs(data_dir=str(outside))))


def _builder_without_data_files(folder, outside):  # datasets would read every data file in the working directory
    write(folder, "t", task("t", dataset_kwargs=None))


def _cache_dir(folder, outside):
    write(folder, "t", task("t", **kwargs(data_files={"test": "tasks/rows.jsonl"}, cache_dir=str(outside))))


def _metadata_data_files(folder, outside):
    write(folder, "t", task("t", metadata={"data_files": {"test": "../outside/secret.jsonl"}}))


def _metric_script(folder, outside):
    write(folder, "t", task("t", metric_list=[{"metric": str(outside / "metric.py")}]))


TRICKS = {
    "include-absolute": (_include_absolute, "include", "outside/base.yaml"),
    "include-dotdot": (_include_dotdot, "include", "../outside/base.yaml"),
    "include-chain": (_include_chain, "include", "../../outside/base.yaml"),  # named in _mid.yaml
    "include-list": (_include_list, "include", "../outside/base.yaml"),
    "include-symlink": (_include_symlink, "include", "_base.yaml"),
    "data-files-absolute": (_data_files_absolute, "dataset_kwargs.data_files.test", "outside/secret.jsonl"),
    "data-files-relative": (_data_files_relative, "dataset_kwargs.data_files.test", "outside/secret.jsonl"),
    "data-files-dotdot": (_data_files_dotdot, "dataset_kwargs.data_files", "tasks/../outside/secret.jsonl"),
    "data-files-symlink": (_data_files_symlink, "dataset_kwargs.data_files.test", "tasks/linked.jsonl"),
    "data-files-glob": (_data_files_glob, "dataset_kwargs.data_files.test", "tasks/more/x.jsonl"),
    "dataset-path-dir": (_dataset_path_dir, "dataset_path", "outside"),
    "dataset-path-symlinked-dir": (_dataset_path_symlinked_dir, "dataset_path", "tasks/data"),
    "dataset-path-dir-with-link": (_dataset_path_dir_with_link, "dataset_path", "tasks/data/test.jsonl"),
    "data-dir": (_data_dir, "dataset_kwargs.data_dir", "outside"),
    "builder-without-data-files": (_builder_without_data_files, "dataset_path 'json' with no data_files", "."),
    "cache-dir": (_cache_dir, "dataset_kwargs.cache_dir", "outside"),
    "metadata-data-files": (_metadata_data_files, "metadata.data_files.test", "../outside/secret.jsonl"),
    "metric-script": (_metric_script, "metric_list[0].metric", "outside/metric.py"),
}


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def everything_written(root: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("trick", list(TRICKS))
def test_a_path_that_leads_out_is_refused_before_it_is_read(trick, world, tiny_model_dir, capsys):
    folder, outside = world
    set_up, key, path = TRICKS[trick]
    set_up(folder, outside)
    write(folder, "good", task("good"))  # a sound task beside it: lm-eval indexes the whole folder for it

    code, out, err = run(["eval", "--model", str(tiny_model_dir), "--tasks", "t", "--include-path", str(folder),
                          "--leaderboard-dir", "lb", "--limit", "2"], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    line = lines[0]
    named_file = "_mid.yaml" if trick == "include-chain" else "/t.yaml"
    assert named_file in line and f"names {key}" in line and path in line, line
    assert "outside" in line and "--trust-task-code" in line, line
    assert MARKER not in out + err
    assert not list(Path("lb").glob("records/*/*/record.json"))

    code, out, err = run(["tasks", "--json", "--include-path", str(folder)], capsys)
    assert code == 0, err
    rows = {row["task"]: row for row in json.loads(out)["tasks"]}
    assert rows["t"]["status"] == line.removeprefix("Error: ") and rows["t"]["splits"] == {}
    assert rows["good"]["status"] == "ok" and rows["good"]["splits"] == {"test": 3}
    assert rows["medqa"]["status"] == "ok"
    assert MARKER not in out + err

    code, out, err = run(["eval", "--model", str(tiny_model_dir), "--tasks", "good", "--include-path", str(folder),
                          "--leaderboard-dir", "lb", "--limit", "2"], capsys)
    assert code == 0, err
    assert MARKER not in out + err + everything_written(Path("lb"))
    assert _watch["seen"] == []  # nothing under outside/ was opened or listed, by medbench or by lm-eval


def test_a_task_file_that_is_a_link_out_is_a_problem_and_never_read(world, capsys):
    folder, outside = world
    (folder / "linked.yaml").symlink_to(outside / "evil.yaml")
    code, out, err = run(["eval", "--tasks", "linked", "--include-path", str(folder), "--leaderboard-dir", "lb"], capsys)
    assert code == 2 and "linked.yaml is a link to" in err and "outside the --include-path folder" in err, err
    assert "--trust-task-code" in err and len(err.strip().splitlines()) == 1
    code, out, err = run(["tasks", "--json", "--include-path", str(folder)], capsys)
    listing = json.loads(out)
    assert any("linked.yaml is a link to" in problem for problem in listing["problems"])
    assert "linked" not in {row["task"] for row in listing["tasks"]}
    assert MARKER not in out + err and _watch["seen"] == []


def test_a_group_whose_inline_task_reads_outside_is_refused(world, capsys):
    folder, outside = world
    write(folder, "g", {"group": "g", "task": [task("inline", **kwargs(data_files=str(outside / "secret.jsonl")))]})
    code, out, err = run(["tasks", "--json", "--include-path", str(folder)], capsys)
    problems = json.loads(out)["problems"]
    assert any("g.yaml names task[0].dataset_kwargs.data_files" in p for p in problems), problems
    assert MARKER not in out + err and _watch["seen"] == []


def test_includes_and_data_inside_the_folder_are_fine(world, tiny_model_dir, capsys):
    folder, outside = world
    (folder / "shared").mkdir()
    (folder / "sub").mkdir()
    (folder / "sub" / "rows.jsonl").write_text(jsonl(ROWS[:2]))
    (folder / "sub" / "alias.jsonl").symlink_to(folder / "sub" / "rows.jsonl")  # a link that stays inside
    write(folder / "shared", "_metrics", {"metric_list": [{"metric": "acc"}], "output_type": "multiple_choice"})
    write(folder / "shared", "_base", {"include": "_metrics.yaml", "dataset_path": "json", "test_split": "test",
                                       "doc_to_choice": ["yes", "no"], "doc_to_target": "a"})
    write(folder / "sub", "nested", {"include": ["../shared/_base.yaml"], "task": "nested",
                                     "doc_to_text": "Q: {{ q }}",
                                     "dataset_kwargs": {"data_files": {"test": str(folder / "sub" / "alias.jsonl")}}})
    code, out, err = run(["eval", "--model", str(tiny_model_dir), "--tasks", "nested", "--include-path", str(folder),
                          "--leaderboard-dir", "lb"], capsys)
    assert code == 0, err
    record = json.loads(next(Path("lb").glob("records/*/nested/record.json")).read_text())
    assert record["n"] == 2
    samples = next(Path("lb").glob("records/*/nested/samples.jsonl")).read_text()
    assert "Q: Is the sky blue?" in samples and _watch["seen"] == []


def test_hub_names_and_the_users_own_data_file_are_not_task_paths(world, tiny_model_dir, capsys):
    folder, outside = world
    write(folder, "hubbed", task("hubbed", dataset_path="bigbio/pubmedqa", dataset_kwargs=None))
    write(folder, "good", task("good"))
    code, out, err = run(["tasks", "--json", "--include-path", str(folder)], capsys)
    rows = {row["task"]: row for row in json.loads(out)["tasks"]}
    assert "outside the --include-path folder" not in rows["hubbed"]["status"]
    assert "bigbio/pubmedqa" in rows["hubbed"]["status"]  # offline: the hub dataset is named as missing

    # The user typed this path themselves: it may lie anywhere.
    code, out, err = run(["eval", "--model", str(tiny_model_dir), "--tasks", "good", "--include-path", str(folder),
                          "--data-file", f"good:test={outside / 'secret.jsonl'}", "--leaderboard-dir", "lb"], capsys)
    assert code == 0, err
    record = json.loads(next(Path("lb").glob("records/*/good-data-*/record.json")).read_text())
    assert record["n"] == len(OUTSIDE_ROWS)


@pytest.mark.parametrize("trick", ["include-dotdot", "data-files-absolute", "data-files-symlink", "dataset-path-dir"])
def test_trust_task_code_lifts_the_rule(trick, world, tiny_model_dir, capsys):
    """Control: trusted, the same YAMLs do read the outside files, so the refusals above are what kept them out."""
    folder, outside = world
    TRICKS[trick][0](folder, outside)
    code, out, err = run(["eval", "--model", str(tiny_model_dir), "--tasks", "t", "--include-path", str(folder),
                          "--leaderboard-dir", "lb", "--limit", "2", "--trust-task-code"], capsys)
    assert code == 0, err
    samples = next(Path("lb").glob("records/*/t/samples.jsonl")).read_text()
    assert MARKER in samples and _watch["seen"]
