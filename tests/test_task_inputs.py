"""What a task is fed and how its scores are kept: --data-file mistakes are one line, reuse follows the task's
resolved configuration, a killed eval resumes from the requests it scored, lm-eval's own tasks run by name,
and every record says where its data came from."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medbench.cli import main

REPO = Path(__file__).resolve().parent.parent
MEDQA_DATA = REPO / "tasks" / "medqa" / "data"


def run_eval(args: list[str], capsys) -> tuple[int, str]:
    try:
        main(["eval", *args])
    except SystemExit as exc:
        return int(exc.code or 0), capsys.readouterr().err
    return 0, capsys.readouterr().err


def one_line_error(code: int, err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("Error: ") and " — " in lines[0], err
    return lines[0]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def records(root: Path) -> dict[str, dict]:
    found = [json.loads(p.read_text()) for p in Path(root).glob("records/*/*/record.json")]
    return {record["record_key"]: record for record in found}


# --- --data-file mistakes -----------------------------------------------------------------------------------------

MEDQA_ROW = {"question": "Which organ makes insulin?", "options": {"A": "Liver", "B": "Pancreas", "C": "Lung",
                                                                   "D": "Skin"}, "answer_idx": "B"}


@pytest.mark.parametrize("case, expected", [
    ("directory", "is a directory, not a file"),
    ("device", "is not a regular file (a device"),
    ("missing", "does not exist"),
    ("options_null", "row 1 has no value in column(s) options"),
    ("options_text", "row 1 does not fit the task's data format"),
    ("options_list", "row 1: no answer options found"),
    ("hub_letter_label", "row 1: label 'B' is not the index (0-3) of the right ending"),
    ("split_typo", "--data-file medqa:tset names a split task 'medqa' does not have"),
    ("task_not_asked", "--data-file names task 'medmcqa', which is not among the tasks scored (medqa)"),
    ("unknown_task", "--data-file names unknown task 'medqx': neither a medbench task nor one of lm-eval's"),
])
def test_data_file_mistakes_are_one_line(case, expected, tmp_path, tiny_model_dir, capsys):
    good = write_jsonl(tmp_path / "good.jsonl", [MEDQA_ROW])
    bad_rows = {"options_null": {**MEDQA_ROW, "options": None}, "options_text": {**MEDQA_ROW, "options": "ABCD"},
                "options_list": {**MEDQA_ROW, "options": ["Liver", "Pancreas"]},
                "hub_letter_label": {"sent1": "Q?", "ending0": "a", "ending1": "b", "ending2": "c", "ending3": "d",
                                     "label": "B"}}
    target = {"directory": f"medqa={tmp_path}", "device": "medqa=/dev/null",
              "missing": f"medqa={tmp_path / 'nope.jsonl'}", "split_typo": f"medqa:tset={good}",
              "task_not_asked": f"medmcqa={good}", "unknown_task": f"medqx={good}"}.get(case)
    if case in bad_rows:
        target = f"medqa={write_jsonl(tmp_path / f'{case}.jsonl', [bad_rows[case]])}"
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "medqa", "--data-file", target,
                          "--leaderboard-dir", str(tmp_path / "lb")], capsys)
    line = one_line_error(code, err)
    assert expected in line, line
    problem = line.split(" — ")[0]
    assert "medqa.yaml" not in problem  # the user's row is at fault, never the built-in YAML (the fix may cite it)
    assert "Traceback" not in err and not (tmp_path / "lb" / "records").exists()


def test_a_training_split_file_keeps_the_bundled_test_split(tmp_path, tiny_model_dir, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", [MEDQA_ROW, {**MEDQA_ROW, "answer_idx": "A"}])
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "medqa", "--data-file", f"medqa:train={train}",
                          "--num-fewshot", "2", "--limit", "3", "--leaderboard-dir", str(tmp_path / "lb")], capsys)
    assert code == 0, err
    # the demonstrations are the user's: a column of its own, never the bundled data's medqa@2shot
    [(key, record)] = records(tmp_path / "lb").items()
    assert key.startswith("medqa@2shot@data-") and record["task"]["fewshot_hash"]
    assert record["n"] == 3 and record["task"]["split_size"] == 40
    source = record["data_source"]
    assert source["kind"] == "file" and source["name"] == f"train={train}"
    assert source["sha256"] == hashlib.sha256(train.read_bytes()).hexdigest()
    assert "test split: medqa bundled sample" in source["description"]
    samples = [json.loads(line) for line in next((tmp_path / "lb").glob("records/*/*/samples.jsonl")).open()]
    assert "Which organ makes insulin?" in samples[0]["prompt"]  # the demonstrations came from the user's file


def test_train_takes_the_users_training_and_test_files(tmp_path, tiny_model_dir, monkeypatch, capsys):
    """`medbench train --data-file medqa:train=... --data-file medqa=...`: the trainer sees the user's rows and
    checkpoints are scored on the user's test file; a file for a task the run never reads is refused."""
    from medbench.api import prepare_training

    train = write_jsonl(tmp_path / "train.jsonl", [MEDQA_ROW, {**MEDQA_ROW, "answer_idx": "A"}, MEDQA_ROW])
    # the test item differs from the training ones: a training row repeating a scored item is left out
    test = write_jsonl(tmp_path / "test.jsonl", [{**MEDQA_ROW, "question": "Which organ makes bile?"}])
    job = prepare_training("sft", "medqa", str(tiny_model_dir), options={"max_steps": 1},
                           output_dir=tmp_path / "runs", leaderboard_dir=tmp_path / "lb",
                           data_files={"medqa:train": str(train), "medqa": str(test)})
    examples = job.request.training_examples()
    assert len(examples) == 3 and "Which organ makes insulin?" in examples[0].prompt
    assert job.eval_config.task_metadata["medqa"]["data_files"] == {"train": str(train), "test": str(test)}

    monkeypatch.chdir(tmp_path)
    try:
        main(["train", "--plugin", "sft", "--model", str(tiny_model_dir), "--task", "medqa", "--data-file",
              f"uti:train={train}", "--output-dir", str(tmp_path / "runs2")])
    except SystemExit as exc:
        code, err = int(exc.code or 0), capsys.readouterr().err
    error = one_line_error(code, err)
    assert "--data-file names uti, which is neither the trained task (medqa) nor one it is scored on" in error
    assert not (tmp_path / "runs2").exists()


def test_num_fewshot_beyond_the_fewshot_split_is_one_line(tmp_path, tiny_model_dir, capsys):
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "medqa", "--num-fewshot", "61",
                          "--leaderboard-dir", str(tmp_path / "lb")], capsys)
    line = one_line_error(code, err)
    assert "--num-fewshot 61 is more than the 60 example(s) task 'medqa' can draw from its few-shot split 'train'" \
        in line and "Sample larger than population" not in err


# --- stale scores -------------------------------------------------------------------------------------------------

ROWS = [{"q": f"Is {i} even?", "a": i % 2} for i in range(6)]


def test_reuse_follows_the_resolved_task_config(tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "tasks"
    folder.mkdir()
    data = write_jsonl(folder / "rows.jsonl", ROWS)  # inside the untrusted folder
    base = {"dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data), "train": str(data)}},
            "output_type": "multiple_choice", "test_split": "test", "doc_to_choice": ["yes", "no"],
            "metric_list": [{"metric": "acc"}]}
    task = {"include": "base.yaml", "task": "parity", "doc_to_text": "{{q}}", "doc_to_target": "a"}

    def write(base_changes=None, task_changes=None):
        (folder / "base.yaml").write_text(json.dumps({**base, **(base_changes or {})}))
        (folder / "parity.yaml").write_text(json.dumps({**task, **(task_changes or {})}))

    def score(key: str = "parity") -> tuple[bool, str]:
        code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "parity", "--include-path", str(folder),
                              "--leaderboard-dir", "lb"], capsys)
        assert code == 0, err
        return "reused" in err, records("lb")[key]["task"]["config_hash"]

    write()
    assert score()[0] is False
    reused, first_hash = score()
    assert reused is True  # control: nothing changed, the record is served
    seen = {first_hash}
    for base_changes, task_changes in [
        (None, {"doc_to_target": "a", "doc_to_choice": ["no", "yes"]}),   # choices (target unchanged in data)
        (None, {"doc_to_text": "Question: {{q}}"}),                       # prompt template
        ({"description": "Answer yes or no.\n"}, None),                   # the included YAML
        ({"fewshot_split": "train", "num_fewshot": 1}, None),             # few-shot settings
        ({"metadata": {"version": 2}}, None),                             # metadata
    ]:
        write(base_changes, task_changes)
        # The YAML's own num_fewshot is the shots scored, and its record's column says so.
        reused, config_hash = score("parity@1shot" if (base_changes or {}).get("num_fewshot") else "parity")
        assert reused is False and config_hash not in seen, (base_changes, task_changes)
        seen.add(config_hash)


# --- resume a killed eval from the requests already scored ---------------------------------------------------------

SLOW_PATCH = """import os, time
from medbench import fastlm

_original = fastlm.PrefixSharingHFLM.loglikelihood


def loglikelihood(self, requests, disable_tqdm=False):
    out = _original(self, requests, disable_tqdm=disable_tqdm)
    with open(os.environ["MEDBENCH_TEST_COUNT"], "a") as fh:
        fh.write(f"{len(requests)}\\n")
    return out


_score_batch = fastlm.PrefixSharingHFLM._score_batch


def score_batch(self, *args, **kwargs):
    time.sleep(float(os.environ.get("MEDBENCH_TEST_SLOW_S", "0")))
    return _score_batch(self, *args, **kwargs)


fastlm.PrefixSharingHFLM.loglikelihood = loglikelihood
fastlm.PrefixSharingHFLM._score_batch = score_batch
"""


def test_a_killed_eval_resumes_from_the_requests_already_scored(tmp_path, tiny_model_dir):
    (tmp_path / "slowpatch.py").write_text(SLOW_PATCH)
    code = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import slowpatch; from medbench.cli import main; main()"

    def command(output: str, count: str, slow: float):
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MEDBENCH_TEST_SLOW_S": str(slow),
               "MEDBENCH_TEST_COUNT": str(tmp_path / count)}
        args = [sys.executable, "-c", code, "eval", "--model", str(tiny_model_dir), "--tasks", "medqa", "--limit",
                "40", "--batch-size", "8", "--leaderboard-dir", str(tmp_path / output)]
        return args, env

    def counted(name: str) -> list[int]:
        return [int(line) for line in (tmp_path / name).read_text().split()]

    # Killed after its first 64 (of 160) requests are on disk: two batches of 8 questions x 4 choices (4 s each).
    args, env = command("lb", "killed.txt", 4.0)
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    cached = []
    while time.monotonic() < deadline and process.poll() is None:
        cached = list((tmp_path / "lb" / ".cache" / "requests").glob("*/*.jsonl"))
        if cached and cached[0].read_text().count("\n") >= 1:
            break
        time.sleep(0.2)
    assert process.poll() is None, process.stderr.read().decode()
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    assert not list((tmp_path / "lb").glob("records/*/*/record.json"))
    scored_before_kill = sum(json.loads(line).__len__() for line in cached[0].read_text().splitlines())
    assert scored_before_kill == 64

    args, env = command("lb", "resumed.txt", 0)
    resumed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert sum(counted("resumed.txt")) == 160 - 64  # only the requests the killed run had not scored
    record = records(tmp_path / "lb")["medqa"]
    assert record["resumed_requests"] == 64
    assert not (tmp_path / "lb" / ".cache").exists()  # the record holds them now

    args, env = command("fresh", "fresh.txt", 0)
    fresh = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr
    assert sum(counted("fresh.txt")) == 160
    uninterrupted = records(tmp_path / "fresh")["medqa"]
    assert record["score"] == uninterrupted["score"] and record["metrics"] == uninterrupted["metrics"]
    resumed_samples, fresh_samples = (
        [json.loads(line) for line in next((tmp_path / root).glob("records/*/medqa/samples.jsonl")).open()]
        for root in ("lb", "fresh"))
    assert [s["pred"] for s in resumed_samples] == [s["pred"] for s in fresh_samples]
    for a, b in zip(resumed_samples, fresh_samples):
        assert a["logliks"] == pytest.approx(b["logliks"], abs=1e-5)


def test_no_cache_keeps_no_request_cache(tmp_path, tiny_model_dir, capsys):
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "medqa", "--limit", "2", "--no-cache",
                          "--leaderboard-dir", str(tmp_path / "lb")], capsys)
    assert code == 0, err
    assert not (tmp_path / "lb" / ".cache").exists()


# --- lm-eval's own tasks, by name ---------------------------------------------------------------------------------

PUBMEDQA_ROWS = [{"QUESTION": f"Does drug {i} lower blood pressure?", "CONTEXTS": ["A trial.", "Results."],
                  "final_decision": ["yes", "no", "maybe"][i % 3]} for i in range(6)]


def test_lm_eval_task_offline_without_its_dataset_is_one_line(tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "empty-cache"))
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "pubmedqa", "--leaderboard-dir",
                          str(tmp_path / "lb")], capsys)
    line = one_line_error(code, err)
    assert "task 'pubmedqa' needs the dataset bigbio/pubmed_qa (pubmed_qa_labeled_fold0_source)" in line
    assert "--online" in line and "HF_DATASETS_CACHE" in line and "--data-file pubmedqa:test=PATH" in line


@pytest.mark.parametrize("form", ["jsonl", "save_to_disk"])
def test_lm_eval_tasks_run_by_name_on_a_local_copy(form, tmp_path, tiny_model_dir, capsys):
    import datasets

    if form == "jsonl":
        local = write_jsonl(tmp_path / "pubmedqa.jsonl", PUBMEDQA_ROWS)
    else:
        local = tmp_path / "pubmedqa-saved"
        datasets.DatasetDict({"test": datasets.Dataset.from_list(PUBMEDQA_ROWS)}).save_to_disk(str(local))
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "pubmedqa", "--data-file",
                          f"pubmedqa={local}", "--leaderboard-dir", str(tmp_path / "lb")], capsys)
    assert code == 0, err
    [(key, record)] = records(tmp_path / "lb").items()
    assert re.fullmatch(r"pubmedqa@data-[0-9a-f]{8}", key)  # the user's copy: a column of its own
    assert record["task"]["plugin"] == "lm-eval" and record["n"] == 6 and record["task"]["yaml"].endswith(
        "lm_eval/tasks/pubmedqa/pubmedqa.yaml")
    assert record["data_source"]["kind"] == "file" and str(local) in record["data_source"]["name"]
    board = json.loads((tmp_path / "lb" / "leaderboard.json").read_text())
    assert "pubmedqa" in json.dumps(board)
    samples = [json.loads(line) for line in next((tmp_path / "lb").glob("records/*/pubmedqa-data-*/samples.jsonl")).open()]
    assert samples[0]["prompt"].startswith("Abstract: A trial.\nResults.\nQuestion: Does drug 0")


def hub_cache_holding(cache: Path, repo: str, config: str, rows: list[dict], tmp_path: Path) -> None:
    """Lay ``rows`` out in ``cache`` the way `datasets` caches ``repo``/``config`` after a download (what
    `--online` leaves behind), built locally with the json builder: no hub involved."""
    import shutil

    from datasets.data_files import DataFilesDict
    from datasets.naming import camelcase_to_snakecase
    from datasets.packaged_modules.json.json import Json

    source = write_jsonl(tmp_path / "cache-rows.jsonl", rows)
    name = repo.split("/")[-1]
    builder = Json(cache_dir=str(tmp_path / "build"), dataset_name=name,
                   data_files=DataFilesDict.from_local_or_remote({split: [str(source)] for split in
                                                                  ("train", "validation", "test")}))
    builder.download_and_prepare()
    namespace, _, dataset = repo.rpartition("/")  # datasets snake-cases the name: MedQA-... is med_qa-...
    target = cache / f"{namespace}___{camelcase_to_snakecase(dataset)}" / config / "0.0.0" / "local"
    shutil.copytree(builder.cache_dir, target)
    info = json.loads((target / "dataset_info.json").read_text())
    (target / "dataset_info.json").write_text(json.dumps({**info, "config_name": config}))


def test_lm_eval_task_runs_offline_from_the_datasets_cache(tmp_path, tiny_model_dir, capsys, monkeypatch):
    import datasets

    cache = tmp_path / "hf-datasets"
    hub_cache_holding(cache, "bigbio/pubmed_qa", "pubmed_qa_labeled_fold0_source", PUBMEDQA_ROWS, tmp_path)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)  # read at import; this process imported it
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "pubmedqa", "--leaderboard-dir",
                          str(tmp_path / "lb")], capsys)
    assert code == 0, err
    record = records(tmp_path / "lb")["pubmedqa"]
    assert record["n"] == 6 and record["task"]["plugin"] == "lm-eval"
    assert record["data_source"]["kind"] == "lm-eval"
    assert record["data_source"]["name"] == "bigbio/pubmed_qa/pubmed_qa_labeled_fold0_source"


def test_medbench_tasks_start_without_indexing_lm_eval(monkeypatch):
    from medbench import lm_eval_tasks
    from medbench import tasks as tasks_module

    monkeypatch.setattr(lm_eval_tasks, "_index", None)
    registry = tasks_module.build_registry()
    registry.get("medqa")
    registry.expand(["triage"])
    assert lm_eval_tasks._index is None  # only a name medbench does not know reads lm-eval's index
    assert registry.get("mmlu_clinical_knowledge").plugin == "lm-eval"
    assert lm_eval_tasks._index is not None


# --- where the data came from ---------------------------------------------------------------------------------------

def test_a_users_test_file_is_its_own_column_and_replaces_nothing(tmp_path, tiny_model_dir, capsys):
    """The same model on the same task, on the bundled data and on the user's file: two records, two columns, so
    neither replaces the other and no column mixes rows scored on different data."""
    from medbench.leaderboard import build_table

    board = ["--model", str(tiny_model_dir), "--tasks", "medqa", "--limit", "2", "--leaderboard-dir",
             str(tmp_path / "lb")]
    assert run_eval(board, capsys)[0] == 0
    mine = write_jsonl(tmp_path / "mine.jsonl", [MEDQA_ROW, {**MEDQA_ROW, "answer_idx": "A"}])
    code, err = run_eval([*board, "--data-file", f"medqa={mine}"], capsys)
    assert code == 0, err
    found = records(tmp_path / "lb")
    keys = sorted(found)
    assert len(keys) == 2 and keys[0] == "medqa" and re.fullmatch(r"medqa@data-[0-9a-f]{8}", keys[1]), keys
    assert found["medqa"]["data_source"]["kind"] == "bundled" and found[keys[1]]["data_source"]["kind"] == "file"
    assert keys[1] == f"medqa@data-{found[keys[1]]['task']['data_hash'][:8]}"  # named by the data scored
    assert set(build_table(tmp_path / "lb", baseline="none").columns) == set(keys)
    code, err = run_eval([*board, "--data-file", f"medqa={mine}"], capsys)  # the same file again: the same column
    assert code == 0 and sorted(records(tmp_path / "lb")) == keys, err


def test_every_record_names_its_data_source(tmp_path, tiny_model_dir, capsys):
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "medqa,uti", "--limit", "2", "--leaderboard-dir",
                          str(tmp_path / "lb")], capsys)
    assert code == 0, err
    mcqa = write_jsonl(tmp_path / "mcqa.jsonl", [{"question": "Q?", "opa": "a", "opb": "b", "opc": "c", "opd": "d",
                                                  "cop": 2}])
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "medmcqa", "--limit", "2", "--leaderboard-dir",
                          str(tmp_path / "lb"), "--label", "mine", "--data-file", f"medmcqa={mcqa}"], capsys)
    assert code == 0, err
    found = records(tmp_path / "lb")
    assert not (tmp_path / "lb" / ".cache").exists()  # a finished eval leaves no request cache behind
    medqa = found["medqa"]["data_source"]
    assert set(medqa) == {"kind", "name", "sha256", "description"} and medqa["kind"] == "bundled"
    assert medqa["description"] == "bundled sample written for medbench, not the published MedQA"  # its YAML says
    digest = hashlib.sha256()
    for split in ("test", "train", "validation"):
        digest.update(f"{split}\0{hashlib.sha256((MEDQA_DATA / f'{split}.jsonl').read_bytes()).hexdigest()}\0".encode())
    assert medqa["sha256"] == digest.hexdigest()
    uti = found["uti"]["data_source"]
    assert uti["kind"] == "bundled" and "generate.py" in uti["description"]
    mine = next(r for key, r in found.items() if key.startswith("medmcqa@data-"))["data_source"]
    assert mine["kind"] == "file" and mine["name"] == "../mcqa.jsonl"  # relative to the leaderboard
    assert mine["sha256"] == hashlib.sha256((tmp_path / "mcqa.jsonl").read_bytes()).hexdigest()


def test_tasks_listing_shows_the_data_source(capsys):
    main(["tasks", "--json"])
    rows = {row["task"]: row for row in json.loads(capsys.readouterr().out)["tasks"]}
    assert rows["medqa"]["data_source"]["kind"] == "bundled"
    main(["tasks"])
    out = capsys.readouterr().out
    assert "data" in out and "bundled" in out


def test_request_cache_drops_a_line_torn_by_a_kill(tmp_path):
    from medbench.evaluation import RequestCache

    cache = RequestCache(tmp_path / "c.jsonl")
    key = cache.key("loglikelihood", ("Question: 1+1?", " 2"))
    cache.add({key: (-0.5, True)})
    with (tmp_path / "c.jsonl").open("a") as fh:
        fh.write('{"torn": [-1.2, fa')  # a kill in the middle of the next chunk's line
    reopened = RequestCache(tmp_path / "c.jsonl")
    assert reopened.results.keys() == {key} and reopened.get(key) == (-0.5, True)
    other = reopened.key("loglikelihood", ("Question: 1+1?", " 3"))
    reopened.add({other: (-2.0, False)})
    lines = (tmp_path / "c.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{key: [-0.5, True]}, {other: [-2.0, False]}]


def test_the_config_hash_covers_code_beside_an_included_yaml(tmp_path):
    """lm-eval imports a !function from beside the YAML that names it: when that YAML is an include in another
    folder, its code is part of the task as it runs, so a change to it must not let a stale record be reused."""
    from medbench.task_facts import task_config_hash
    from medbench.tasks import build_registry, task_sources

    shared, mine = tmp_path / "shared", tmp_path / "mine"
    shared.mkdir(), mine.mkdir()
    (shared / "utils.py").write_text("def fmt(doc):\n    return doc['q']\n")
    (shared / "base.yaml").write_text("dataset_path: json\noutput_type: multiple_choice\ntest_split: test\n"
                                      "doc_to_text: !function utils.fmt\ndoc_to_choice: ['a', 'b']\n"
                                      "doc_to_target: 0\n")
    (mine / "child.yaml").write_text("include: ../shared/base.yaml\ntask: child\n")
    with task_sources([str(mine)], True):
        before = task_config_hash(build_registry().get("child"))
        (shared / "utils.py").write_text("def fmt(doc):\n    return 'Q: ' + doc['q']\n")
        after = task_config_hash(build_registry().get("child"))
    assert before != after


def test_training_rows_that_repeat_a_scored_item_are_left_out_with_a_warning(tmp_path):
    """Real benchmark files repeat items across their splits; training on a test item inflates its score. Such rows
    are left out (compared without case, spacing or punctuation), said once; a file of nothing else is refused."""
    from medbench.errors import MedbenchError
    from medbench.trainingdata import load_training_examples

    test = [json.loads(line) for line in (MEDQA_DATA / "test.jsonl").read_text().splitlines()]
    train = [json.loads(line) for line in (MEDQA_DATA / "train.jsonl").read_text().splitlines()]
    repeated = {**test[1], "question": "  " + test[1]["question"].upper() + "  "}  # the same item, respelled
    mine = write_jsonl(tmp_path / "train.jsonl", train[:10] + [test[0], repeated])
    with pytest.warns(UserWarning, match=r"2 of 12 training examples repeat a test or validation item"):
        examples = load_training_examples("medqa", {"data_files": {"train": str(mine)}})
    assert len(examples) == 10 and all(e.doc["question"] != test[0]["question"] for e in examples)
    only = write_jsonl(tmp_path / "only.jsonl", test[:3])
    with pytest.raises(MedbenchError, match="every training example of task 'medqa' repeats"):
        load_training_examples("medqa", {"data_files": {"train": str(only)}})
