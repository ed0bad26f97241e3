"""Hostile input, round 5: data files whose bytes parse into far more memory than they take on disk (tiny rows, a
parquet of one repeated text), files in the formats spreadsheets and exports really write (a byte order mark, a long
CSV cell), answer fields no integer holds; the offline hub cache and saved dataset folders holding links, FIFOs
and damaged files; recipes whose variable references multiply or chain past any use."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from medbench.errors import MedbenchError

sys.path.insert(0, str(Path(__file__).parent))
from test_task_inputs import hub_cache_holding  # noqa: E402

MEDMCQA_ROW = {"question": "Normal pacemaker of the heart?", "opa": "AV node", "opb": "Bundle of His",
               "opc": "Purkinje fibres", "opd": "SA node", "cop": 4}


def medmcqa_gold(path: Path) -> list[int]:
    from medbench.tasks import load_tasks

    task = load_tasks(["medmcqa"], metadata={"medmcqa": {"data_files": {"test": str(path)}}})["medmcqa"]
    return [doc["gold"] for doc in task.test_docs()]


# --- data files: what real exports look like ----------------------------------------------------------------------


def test_a_byte_order_mark_is_no_part_of_the_first_field(tmp_path):
    """Notepad and Excel write one; read as data it made the JSON unreadable and the CSV's first column unknown."""
    lines = tmp_path / "bom.jsonl"
    lines.write_text("\ufeff" + json.dumps(MEDMCQA_ROW) + "\n", encoding="utf-8")
    table = tmp_path / "bom.csv"
    table.write_text("\ufeff" + ",".join(MEDMCQA_ROW) + "\n" + ",".join(map(str, MEDMCQA_ROW.values())) + "\n",
                     encoding="utf-8")
    assert medmcqa_gold(lines) == [3]
    assert medmcqa_gold(table) == [3]  # "question" is the first column: with the mark it read "\ufeffquestion"


def test_a_csv_cell_longer_than_pythons_default_field_limit_reads(tmp_path):
    from medbench.taskdata import read_records

    note = "a long clinical note " * 10_000  # 210 KB: csv's default limit is 128 KiB (it raised csv.Error)
    path = tmp_path / "notes.csv"
    path.write_text(f"question,answer\n\"{note}\",yes\n", encoding="utf-8")
    assert read_records(path) == [{"question": note, "answer": "yes"}]


@pytest.mark.parametrize("name, content, expected", [
    ("ragged.csv", "question,answer\nq,yes,surplus\n", "is not valid CSV (row 1 has more fields than the header's 2)"),
    ("latin1.csv", "question,answer\nq,caf\xe9\n".encode("latin-1"), "is not UTF-8 text (byte 21)"),
    ("latin1.jsonl", '{"question": "caf\xe9"}\n'.encode("latin-1"), "is not UTF-8 text (byte 17)"),
    ("damaged.parquet", b"PAR1 not a parquet file PAR1", "is not valid Parquet ("),
    ("empty.parquet", b"", "is not valid Parquet ("),
])
def test_a_damaged_file_is_named_with_its_own_format(name, content, expected, tmp_path):
    """Not "is not valid JSON lines — write one JSON object per line" for a CSV or a parquet file."""
    from medbench.taskdata import read_records

    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(MedbenchError) as refused:
        read_records(path)
    assert expected in refused.value.one_line() and "JSON object" not in refused.value.one_line()


@pytest.mark.parametrize("cop", ["Infinity", "2.5", "true", '"two"'])
def test_an_answer_index_no_integer_holds_names_the_file_in_one_line(cop, tmp_path):
    """cop: Infinity (valid for Python's json) raised OverflowError, which no normaliser guard caught; 2.5 and true
    were read by int() as 2 and 1, a wrong gold answer."""
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps(MEDMCQA_ROW).replace('"cop": 4', f'"cop": {cop}') + "\n")
    with pytest.raises(MedbenchError, match=r"odd.jsonl.*cop .* is not a whole-number answer index"):
        medmcqa_gold(path)


def test_eval_on_such_a_file_ends_in_one_line_and_exit_2(tiny_model_dir, tmp_path, capsys):
    from medbench.cli import main

    path = tmp_path / "inf.jsonl"
    path.write_text(json.dumps(MEDMCQA_ROW)[:-1].replace('"cop": 4', '"cop": Infinity') + "}\n")
    with pytest.raises(SystemExit) as ended:
        main(["eval", "--model", str(tiny_model_dir), "--tasks", "medmcqa", "--data-file", f"medmcqa={path}",
              "--leaderboard-dir", str(tmp_path / "lb")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert ended.value.code == 2 and len(err) == 1 and "Traceback" not in err[0]
    assert "cop inf is not a whole-number answer index" in err[0]
    assert not (tmp_path / "lb" / "records").exists()


# --- data files: a few bytes, a lot of memory ---------------------------------------------------------------------


@pytest.mark.parametrize("name, text", [
    ("rows.jsonl", "{}\n" * 400),                       # 3 bytes of text, a 64-byte dict each
    ("array.json", "[" + ",".join(["{}"] * 400) + "]"),
    ("lists.jsonl", '{"a": [' + ",".join(["[]"] * 2000) + "]}\n"),
    ("narrow.csv", "x\n" + "1\n" * 400),                # a dict per 2-byte line
])
def test_rows_that_parse_into_far_more_memory_than_their_bytes_are_refused(name, text, tmp_path, monkeypatch):
    """At the real bound (25 million values) a 512 MiB file of `{}` lines, once 23 GB of dicts, is refused."""
    from medbench import data_reading

    monkeypatch.setattr(data_reading, "MAX_DATA_VALUES", 1000)
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(MedbenchError, match=r"holds about [\d,]+ values .*more than the 1,000 medbench reads"):
        data_reading.read_records(path)
    (tmp_path / "fine.jsonl").write_text(json.dumps(MEDMCQA_ROW) + "\n")
    assert data_reading.read_records(tmp_path / "fine.jsonl") == [MEDMCQA_ROW]


def test_a_parquet_file_of_one_repeated_text_stops_at_the_byte_bound(tmp_path, monkeypatch):
    """A dictionary-encoded column stores the text once: 1,000 rows of 10 KB are a 2 KB file, and were 10 MB of
    Python strings (20 million rows of 200 characters: a 460 KB file, 8.9 GB resident before the bound)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from medbench import data_reading

    monkeypatch.setattr(data_reading, "MAX_DATA_FILE_BYTES", 1 << 20)
    column = pa.DictionaryArray.from_arrays(pa.array(np.zeros(1000, dtype=np.int32)), pa.array(["x" * 10_000]))
    pq.write_table(pa.table({"question": column}), tmp_path / "bomb.parquet", compression="zstd")
    assert (tmp_path / "bomb.parquet").stat().st_size < 20_000
    with pytest.raises(MedbenchError, match="decodes to more than the 1 MiB"):
        data_reading.read_records(tmp_path / "bomb.parquet")
    monkeypatch.setattr(data_reading, "MAX_DATA_VALUES", 100)
    with pytest.raises(MedbenchError, match="holds about 5,000 values"):  # 1,000 rows: known from the footer
        data_reading.read_records(tmp_path / "bomb.parquet")
    pq.write_table(pa.table({"question": ["q1", "q2"], "cop": [1, 4]}), tmp_path / "fine.parquet")
    assert data_reading.read_records(tmp_path / "fine.parquet") == [{"question": "q1", "cop": 1},
                                                                     {"question": "q2", "cop": 4}]


# --- the offline hub cache and saved dataset folders --------------------------------------------------------------


HUB = "openlifescienceai/medmcqa"


@pytest.fixture(scope="module")
def pristine_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    rows = [{**MEDMCQA_ROW, "question": f"(cached) Q{i}", "cop": i % 4} for i in range(6)]
    hub_cache_holding(root / "cache", HUB, "default", rows, root)
    return root / "cache"


@pytest.fixture
def cache(pristine_cache, tmp_path, monkeypatch):
    """A copy of the cache to damage, where `datasets` looks for it; yields (cache root, the snapshot folder)."""
    import shutil

    import datasets

    copy = tmp_path / "cache"
    shutil.copytree(pristine_cache, copy, symlinks=True)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(copy))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", copy)
    return copy, next(copy.rglob("dataset_info.json")).parent


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _link_out(path: Path) -> None:
    outside = path.parents[5] / f"outside-{path.name}"  # beside the cache root
    outside.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(outside)


@pytest.mark.parametrize("damage, expected", [
    (lambda snap: _fifo(next(snap.glob("*-test.arrow"))), "not a regular file (a pipe, socket or device)"),
    (lambda snap: _fifo(snap / "dataset_info.json"), "dataset_info.json, not a regular file"),
    (lambda snap: _link_out(next(snap.glob("*-test.arrow"))), "a link (datasets writes none)"),
    (lambda snap: [p.write_bytes(b"garbage" * 50) for p in snap.glob("*.arrow")], "cannot be read (ArrowInvalid"),
    (lambda snap: (snap / "dataset_info.json").write_text("[]"), "cannot be read (TypeError"),
    (lambda snap: (snap / "dataset_info.json").write_text("[" * 100_000), "cannot be read ("),
    (lambda snap: (snap / "dataset_info.json").write_bytes(b" " * ((16 << 20) + 1)), "MiB of metadata"),
], ids=["arrow-fifo", "info-fifo", "arrow-link-out", "arrow-garbage", "info-a-list", "info-deep", "info-huge"])
def test_a_damaged_cache_is_one_line_naming_it_never_a_hang_or_a_silent_fallback(damage, expected, cache):
    """A FIFO hung medbench; a link read outside the cache; damage fell back to the bundled sample unannounced
    (scoring other items than the user meant) or raised TypeError / RecursionError from inside `datasets`."""
    from medbench.hub_data import from_cache

    root, snapshot = cache
    damage(snapshot)
    with pytest.raises(MedbenchError) as refused:
        from_cache(HUB)
    line = refused.value.one_line()
    assert expected in line and f"datasets cache of {HUB}" in line and "--online" in line


def test_the_cache_folder_itself_a_link_is_refused_but_the_cache_root_may_be_one(cache, tmp_path, monkeypatch):
    import shutil

    import datasets

    from medbench.hub_data import from_cache

    root, _ = cache
    elsewhere = tmp_path / "other-disk"
    shutil.move(str(root), elsewhere)
    root.symlink_to(elsewhere)  # HF_DATASETS_CACHE on another disk: fine
    assert from_cache(HUB)["validation"][0]["question"] == "(cached) Q0"
    # the dataset's folder, not a lock file datasets may leave beside it with the same name inside its own
    folder = next(p for p in sorted(elsewhere.glob("*___*")) if p.is_dir())
    shutil.move(str(folder), tmp_path / "moved")
    folder.symlink_to(tmp_path / "moved")
    with pytest.raises(MedbenchError, match="a link"):
        from_cache(HUB)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "empty")
    assert from_cache(HUB) is None  # not cached at all: the bundled sample, as before


@pytest.mark.parametrize("spec", [{"split": "train", "holdout": -2}, {"split": "train", "holdout": True},
                                  {"split": "train", "holdout": 2, "seed": "one"}])
def test_a_holdout_spec_of_the_wrong_kind_is_the_yamls_one_line(spec):
    from medbench.hub_data import hub_rows

    with pytest.raises(MedbenchError, match="fix metadata.hub_splits"):
        hub_rows({"train": [{"q": 1}] * 5}, spec, HUB)


def test_a_saved_dataset_folder_holding_a_fifo_or_damage_is_one_line(tmp_path):
    import datasets

    from medbench.taskdata import load_local_dataset

    saved = tmp_path / "saved"
    datasets.Dataset.from_list([{"QUESTION": "q", "final_decision": "yes"}]).save_to_disk(str(saved))
    [arrow] = saved.glob("*.arrow")
    _fifo(arrow)
    with pytest.raises(MedbenchError, match="not a regular file"):  # hung in datasets.load_from_disk
        load_local_dataset(str(saved), ["test"], task="pubmedqa")
    arrow.unlink()
    arrow.write_bytes(b"garbage")
    with pytest.raises(MedbenchError, match=r"--data-file pubmedqa=.* cannot be read \(ArrowInvalid"):
        load_local_dataset(str(saved), ["test"], task="pubmedqa")


# --- recipes whose references multiply ----------------------------------------------------------------------------


def write_recipe(tmp_path: Path, scale: dict, system_prompt: str = "plain") -> Path:
    import yaml

    recipe = {"name": "hostile", "scales": {"toy": {"model": "smollm2-135m-instruct", **scale}},
              "grid": {"task": ["medqa"], "method": ["base"]},
              "cell": {"model": "{model}", "steps_by": "method", "steps": {"base": []},
                       "eval": {"tasks": ["{task}"], "limit": 2, "system_prompt": system_prompt}}}
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.parametrize("scale, where", [
    # 8 references to 8 references, 12 deep: 550 GB of text from 700 bytes (a MemoryError, or swap, before)
    ({**{f"v{i}": "{v%d}" % (i + 1) * 8 for i in range(12)}, "v12": "x" * 8}, "variable v5 expands"),
    # whole-value references copy the list they name: 2000 x 2000 x a 2000-character text
    ({"a": ["{b}"] * 2000, "b": ["{c}"] * 2000, "c": "y" * 2000}, "variable a expands"),
])
def test_references_that_multiply_are_refused_at_plan_time(scale, where, tmp_path):
    from medbench.recipe import read_recipe
    from medbench.sweeps import plan

    started = time.monotonic()
    with pytest.raises(MedbenchError, match=f"{where} to more than 4,194,304 characters and values"):
        plan(read_recipe(write_recipe(tmp_path, scale)), "toy", tmp_path / "sweep")
    assert time.monotonic() - started < 30


def test_a_cell_that_multiplies_a_large_variable_is_refused_too(tmp_path):
    from medbench.recipe import read_recipe
    from medbench.sweeps import plan

    path = write_recipe(tmp_path, {"big": "z" * 200_000}, system_prompt="{big}" * 50)
    with pytest.raises(MedbenchError, match="expands to more than"):
        plan(read_recipe(path), "toy", tmp_path / "sweep")


def test_a_reference_chain_past_pythons_recursion_is_one_line(tmp_path):
    """3,000 variables each naming the next: a RecursionError (exit 1, "rerun with --debug") before."""
    from medbench.recipe import resolve_variables

    chain = {**{f"v{i}": "{v%d}" % (i + 1) for i in range(3000)}, "v3000": "end"}
    with pytest.raises(MedbenchError, match="chain too deep to follow"):
        resolve_variables(chain, "recipe 'r', scale 'toy'")
    assert resolve_variables({"a": "{b}-{c}", "b": "{c}", "c": 1, "d": "{task}"}, "r") == \
        {"a": "1-1", "b": 1, "c": 1, "d": "{task}"}  # a factor's reference is left for the cell


def test_many_scale_variables_resolve_in_linear_time():
    """40,000 variables (a 700 KB recipe, under the 1 MiB bound) took minutes: each one copied all before it."""
    from medbench.recipe import resolve_variables

    variables = {f"v{i}": (f"{{v{i - 1}}}" if i % 2 else i) for i in range(40_000)}
    started = time.monotonic()
    resolved = resolve_variables(variables, "r")
    assert resolved["v39999"] == 39998 and time.monotonic() - started < 10
