"""Hostile records and samples: one damaged or crafted file never stops the leaderboard (it is skipped with a warning,
or shown without its samples), numbers at the edge of the float range render, every record-derived text is escaped
in Markdown and on the terminal, nothing is written through a link out of the leaderboard, and the bootstrap's
memory does not grow with iters x items."""

from __future__ import annotations

import json
import re
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from leaderboard_helpers import answers, make_record, run_cli
from medbench.errors import MedbenchError
from medbench.leaderboard import build_table, stats
from medbench.records import read_samples, write_record

EVIL = "<script>alert(1)</script>"
DEEP = json.loads("[" * 900 + "]" * 900)  # what a JSON parser still reads; recursive renderers did not


def edit_json(path: Path, change) -> None:
    """Rewrite a record.json through ``change(record)`` (which edits it in place)."""
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def edit_samples(path: Path, change) -> None:
    """Rewrite the samples.jsonl beside a record.json through ``change(rows)``."""
    samples = path.parent / "samples.jsonl"
    rows = [json.loads(line) for line in samples.read_text().split("\n") if line]
    change(rows)
    samples.write_text("".join(json.dumps(row) + "\n" for row in rows))


def two_rows(tmp_path: Path) -> tuple[Path, Path]:
    """A baseline and one row trained from it: the row's record is what each test damages."""
    root = tmp_path / "lb"
    make_record(root, "base", "medqa", *answers(12, 5))
    return root, make_record(root, "m", "medqa", *answers(12, 9), base_ref="base")


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def deep_training(record: dict) -> None:
    record["extra"] = {"training": {"plugin": "sft", "run_id": "r", "config": nested(900)}}


def first_sample(**fields):
    return lambda rows: rows[0].update(fields)


# ------------------------------------------------------------------------------------ 1. no crash from one record

# (id, damage to the record, damage to its samples, what the warning or the note says)
RECORD_DAMAGE = [
    ("score-bigint", lambda r: r.update(score=10 ** 400), None, "a number of 401 digits"),
    ("config-deep", lambda r: r.update(config=nested(900)), None, "nests deeper than 64 levels"),
    ("training-config-deep", deep_training, None, "nests deeper than 64 levels"),
    ("task-version-deep", lambda r: r["task"].update(version=DEEP), None, "nests deeper than 64 levels"),
]
SAMPLE_DAMAGE = [
    ("doc_id-list", first_sample(doc_id=[1, 2])),
    ("doc_id-dict", first_sample(doc_id={"a": 1})),
    ("acc-bigint", first_sample(acc=10 ** 400)),
    ("logliks-text", first_sample(logliks=["x", "y"])),
    ("logliks-null", first_sample(logliks=[None, 1])),
    ("logliks-nested", first_sample(logliks=[[1, 2]])),
    ("logliks-bigint", first_sample(logliks=[10 ** 400])),
    ("gold-deep", first_sample(gold=DEEP)),
]


@pytest.mark.parametrize("name,damage,_,problem", RECORD_DAMAGE, ids=[d[0] for d in RECORD_DAMAGE])
def test_a_crafted_record_is_skipped_with_a_warning_and_the_rest_renders(name, damage, _, problem, tmp_path, capsys):
    root, path = two_rows(tmp_path)
    edit_json(path, damage)
    code, out, err = run_cli(capsys, "leaderboard", "--dir", root, "--no-baselines")
    assert code == 0 and "Traceback" not in err, err
    warning = [line for line in err.splitlines() if line.startswith("Warning:")]
    assert len(warning) == 1 and str(path) in warning[0] and problem in warning[0], err
    assert [r["label"] for r in json.loads((root / "leaderboard.json").read_text())["rows"]] == ["base"]
    assert all((root / name).exists() for name in ("index.html", "leaderboard.md", "leaderboard.csv"))


@pytest.mark.parametrize("name,damage", SAMPLE_DAMAGE, ids=[d[0] for d in SAMPLE_DAMAGE])
def test_crafted_samples_never_stop_the_leaderboard(name, damage, tmp_path, capsys):
    root, path = two_rows(tmp_path)
    edit_samples(path, damage)
    code, out, err = run_cli(capsys, "leaderboard", "--dir", root, "--no-baselines")
    assert code == 0 and "Traceback" not in err, err
    table = json.loads((root / "leaderboard.json").read_text())
    assert {r["label"] for r in table["rows"]} == {"base", "m"}
    assert (root / "index.html").exists() and (root / "leaderboard.csv").exists()
    # Re-scoring: samples it cannot read leave that record as it was, with a warning naming it; the rest goes on.
    code, out, err = run_cli(capsys, "leaderboard", "--dir", root, "--no-baselines", "--rescore")
    assert code == 0 and "Traceback" not in err, err
    assert "re-scored 2 record(s)" in err or ("re-scored 1 record(s)" in err and str(path) in err), err
    assert (root / "leaderboard.json").exists()


def test_unhashable_doc_ids_read_as_none_and_the_rest_still_pair(tmp_path):
    root, path = two_rows(tmp_path)
    edit_samples(path, first_sample(doc_id=[1, 2]))
    assert read_samples({"_path": str(path)})[0]["doc_id"] is None
    cell = next(r for r in build_table(root, "base").rows if r.label == "m").cells["medqa"]
    assert cell.comparison.n_paired == 11  # every item but the one without an id


def test_bad_log_likelihoods_show_as_null_in_the_drilldown(tmp_path, capsys):
    root, path = two_rows(tmp_path)
    edit_samples(path, first_sample(logliks=["x", None, [1], True, -1.23456]))
    code, out, err = run_cli(capsys, "leaderboard", "--dir", root, "--no-baselines", "--format", "html")
    assert code == 0, err
    page = (root / "index.html").read_text()
    data = json.loads(re.search(r'<script type="application/json" id="medbench-data">(.*?)</script>', page, re.S)[1])
    lls = [s["ll"] for cell in data["cells"].values() for s in cell["samples"] if s["ll"][0] is None]
    assert lls == [[None, None, None, None, -1.235]]


def test_a_score_at_the_top_of_the_float_range_renders(tmp_path, capsys):
    root, path = two_rows(tmp_path)
    # an unbounded metric (a share past 1 is refused as damaged), its score and value agreeing as writers set them
    top = {"primary_metric": "logprob_sum", "score": 1e308, "stderr": 1e308,
           "metrics": {"logprob_sum": {"value": 1e308, "stderr": 1e308}}}
    edit_json(path, lambda r: r.update(top))
    (path.parent / "samples.jsonl").write_text("")  # no samples: the CI comes from the stderr (and overflows)
    edit_json(make_record(root, "low", "medqa", *answers(12, 1), base_ref="base"),
              lambda r: r.update({**top, "score": -1e308, "metrics": {"logprob_sum": {"value": -1e308}}}))
    code, out, err = run_cli(capsys, "leaderboard", "--dir", root, "--no-baselines")
    assert code == 0 and "Traceback" not in err, err
    cell = next(r for r in json.loads((root / "leaderboard.json").read_text())["rows"] if r["label"] == "m")
    assert cell["cells"]["medqa"]["score"] == 1e308 and cell["cells"]["medqa"]["ci_low"] is None
    assert '<svg class="plot forest"' in (root / "index.html").read_text()


def test_a_lone_surrogate_in_a_label_is_replaced_and_every_format_renders(tmp_path, capsys):
    root, path = two_rows(tmp_path)
    edit_json(path, lambda r: r["model"].update(label="x\ud800y"))
    code, out, err = run_cli(capsys, "leaderboard", "--dir", root, "--no-baselines")
    assert code == 0 and "Traceback" not in err, err
    assert "x\ufffdy" in (root / "leaderboard.csv").read_text(encoding="utf-8")
    assert "x\ufffdy" in {r["label"] for r in json.loads((root / "leaderboard.json").read_text())["rows"]}


def test_nan_and_infinities_read_as_null(tmp_path):
    root, path = two_rows(tmp_path)
    path.write_text(path.read_text().replace('"duration_s": null', '"duration_s": Infinity')
                    .replace('"seed": 1234,', '"seed": 1234, "speed": -Infinity,', 1))
    from medbench.records import load_record

    record = load_record(path)
    assert "speed" in record["config"] and record["config"]["speed"] is None and record["duration_s"] is None


def test_seed_groups_take_seeds_of_any_json_type(tmp_path):
    root = tmp_path / "lb"
    for label, seed in (("run-a", [1]), ("run-b", "two"), ("run-c", 3)):
        make_record(root, label, "medqa", *answers(10, 5), training={"plugin": "sft", "seed": seed})
    table = build_table(root)
    assert [len(g.members) for g in table.groups] == [3] and table.groups[0].model["seeds"][0] == 3


def test_no_statistic_overflows_on_huge_scores():
    from medbench.leaderboard.ranking import is_finite_number
    from medbench.leaderboard.table import nan_to_none
    from medbench.svg import nice_ticks
    from medbench_plugins.leaderboard_plots import _range

    assert not is_finite_number(10 ** 400) and is_finite_number(1e308)
    assert stats.mean_sd([1e200, -1e200])[1] == float("inf")  # x ** 2 raised OverflowError
    assert nan_to_none(float("inf")) is None and nan_to_none(float("-inf")) is None
    for values in ([1e308, -1e308], [1e308], [1e17], [0.25, 1e308], [float("inf"), 0.5]):
        lo, hi = _range(values)
        assert lo < hi and len(nice_ticks(lo, hi)) <= 12
    assert nice_ticks(1e17, 1e17 + 16) and nice_ticks(0, float("inf")) == [0]


# ------------------------------------------------------------------------------------ 2. no writes through a link


@pytest.mark.parametrize("where", ["records", "model", "task"])
def test_write_record_refuses_a_link_out_of_the_leaderboard(where, tmp_path):
    root = tmp_path / "lb"
    path = make_record(root, "m", "medqa", *answers(4, 2))
    record = json.loads(path.read_text())
    outside = tmp_path / "outside"
    outside.mkdir()
    linked = {"records": root / "records", "model": path.parents[1], "task": path.parent}[where]
    shutil.rmtree(linked)
    linked.symlink_to(outside, target_is_directory=True)
    with pytest.raises(MedbenchError, match=f"{re.escape(str(linked))} is a link"):
        write_record(root, record, [{"doc_id": 0, "gold": 1, "pred": 1}])
    assert list(outside.rglob("*")) == []


def test_eval_through_a_linked_model_folder_is_one_error_line(tiny_model_dir, tmp_path, capsys):
    root = tmp_path / "lb"
    code, out, err = run_cli(capsys, "eval", "--model", tiny_model_dir, "--tasks", "medqa", "--limit", "2",
                             "--leaderboard-dir", root, "--label", "tiny")
    assert code == 0, err
    folder = next((root / "records").iterdir())
    outside = tmp_path / "outside"
    folder.rename(outside)
    folder.symlink_to(outside, target_is_directory=True)
    before = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    code, out, err = run_cli(capsys, "eval", "--model", tiny_model_dir, "--tasks", "medqa", "--limit", "3",
                             "--leaderboard-dir", root, "--label", "tiny")  # another limit: no reuse, a new record
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert code == 2 and len(errors) == 1 and "is a link" in errors[0] and "Traceback" not in err, err
    assert {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()} == before


def test_rescore_never_rewrites_a_record_through_a_linked_records_folder(tmp_path, capsys):
    root = tmp_path / "lb"
    make_record(root, "m", "medqa", *answers(4, 2))
    outside = tmp_path / "outside"
    (root / "records").rename(outside)
    (root / "records").symlink_to(outside, target_is_directory=True)
    before = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    code, out, err = run_cli(capsys, "leaderboard", "--dir", root, "--no-baselines", "--rescore")
    # Round 4: a linked records/ is refused by every reader (one line, exit 2), not re-scored nor rendered.
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert code == 2 and len(errors) == 1 and "is a link" in errors[0], err
    assert {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()} == before


def test_a_record_linked_in_from_outside_is_never_reused(tmp_path):
    from test_records_hardening import _eval_config, _reusable_record

    from medbench.records import find_reusable

    weights = "12" * 16
    root = tmp_path / "lb"
    config = _eval_config(root)
    path = make_record(root, "m", "medqa", *answers(10, 7), weights=weights)
    _reusable_record(path, config)
    data_hash = json.loads(path.read_text())["task"]["data_hash"]
    assert find_reusable(root, "m", weights, "medqa", data_hash, config, {"medbench": "test"}) is not None
    outside = tmp_path / "outside"
    path.parents[1].rename(outside)
    path.parents[1].symlink_to(outside, target_is_directory=True)
    assert find_reusable(root, "m", weights, "medqa", data_hash, config, {"medbench": "test"}) is None


def test_the_baselines_cache_is_never_written_through_a_link(tmp_path):
    from medbench.baselines import TaskPredictions
    from medbench.leaderboard.references import _write_cache

    root = tmp_path / "lb"
    (root / ".cache").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / ".cache" / "baselines").symlink_to(outside, target_is_directory=True)
    _write_cache(root / ".cache" / "baselines" / "t.json", {"task": "t"},
                 TaskPredictions(task="t", metric="acc"))
    assert list(outside.iterdir()) == []


# ------------------------------------------------------------------------------------ 3. bounded bootstrap memory


def _old_weights(n: int, iters: int, seed: int) -> np.ndarray:
    """The one-shot resampling the blocks replace: every (iters, n) draw at once."""
    idx = np.random.default_rng(seed).integers(0, n, size=(iters, n))
    weights = np.zeros((iters, n))
    np.add.at(weights, (np.repeat(np.arange(iters), n), idx.ravel()), 1)
    return weights


def _old_macro_f1(weights: np.ndarray, refs: list, preds: list) -> np.ndarray:
    """The vectorised macro F1 as it was: a product of all the weights with each class's indicator columns."""
    table: dict = {}
    ref, pred = (np.array([table.setdefault(v, len(table)) for v in column]) for column in (refs, preds))
    total, present = np.zeros(weights.shape[0]), np.zeros(weights.shape[0])
    for label in np.unique(ref):
        is_ref, is_pred = ref == label, pred == label
        tp, fp, fn = weights @ (is_ref & is_pred), weights @ (~is_ref & is_pred), weights @ (is_ref & ~is_pred)
        here = (weights @ is_ref) > 0
        total += np.where(here, np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0), 0.0)
        present += here
    return total / present


def test_resampling_in_blocks_gives_the_numbers_of_one_draw(monkeypatch):
    from medbench.leaderboard import resampling
    from medbench_plugins import builtin_metrics

    rng = np.random.default_rng(3)
    refs = [int(v) for v in rng.integers(0, 3, 37)]
    preds = [r if rng.random() < 0.6 else int(rng.integers(0, 4)) for r in refs]
    other = [r if rng.random() < 0.8 else 0 for r in refs]
    values, more = list(rng.random(37)), list(rng.random(37))
    idx = np.random.default_rng(5).integers(0, 37, size=(300, 37))
    old_means = np.asarray(values)[idx].mean(axis=1)
    old_f1 = _old_macro_f1(_old_weights(37, 300, 5), refs, preds)

    def everything() -> list:
        return [stats.resample_weights(37, 300, 5).tolist(),
                stats.bootstrap_mean_ci(values, iters=300, seed=5),
                stats.bootstrap_ci(builtin_metrics.macro_f1, refs, preds, iters=300, seed=5,
                                   vectorised=stats.macro_f1_resampled),
                stats.bootstrap_ci(builtin_metrics.binary_f1, refs, preds, iters=40, seed=5),
                stats.paired_bootstrap(None, None, values, more, iters=300, seed=5),
                stats.paired_bootstrap(builtin_metrics.macro_f1, refs, preds, other, iters=300, seed=5,
                                       vectorised=stats.macro_f1_resampled),
                stats.paired_bootstrap(builtin_metrics.binary_f1, refs, preds, other, iters=300, seed=5,
                                       vectorised=stats.binary_f1_resampled),
                stats.paired_permutation(None, None, values, more, iters=300, seed=5)]

    whole = everything()
    assert whole[0] == _old_weights(37, 300, 5).tolist()
    assert whole[1] == stats._percentile_interval(old_means, 0.95)
    assert whole[2] == stats._percentile_interval(old_f1, 0.95)
    for cells in (1, 37 * 7, 1000):  # one resample per block, several, blocks that do not divide iters
        monkeypatch.setattr(resampling, "CHUNK_CELLS", cells)
        assert everything() == whole


def test_the_corpus_metric_bootstrap_holds_no_iters_by_items_array():
    from medbench_plugins import builtin_metrics

    n = 20_000  # iters x n at once: 160 MB per float array, and the paired test held several
    rng = np.random.default_rng(1)
    refs = [int(v) for v in rng.integers(0, 4, n)]
    a = [r if rng.random() < 0.6 else 0 for r in refs]
    b = [r if rng.random() < 0.7 else 1 for r in refs]
    tracemalloc.start()
    try:
        stats.paired_bootstrap(builtin_metrics.macro_f1, refs, a, b, iters=1000, seed=2,
                               vectorised=stats.macro_f1_resampled)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100e6, f"{peak / 1e6:.0f} MB"


# ------------------------------------------------------------------------------------ 4. Markdown escaping


def test_every_record_text_in_leaderboard_md_is_escaped(tmp_path):
    from medbench.leaderboard import render

    root = tmp_path / "lb"
    make_record(root, EVIL, "medqa", *answers(20, 5), weights="ab`c|d<e>" + "0" * 20)
    make_record(root, "tuned\r| x |", "medqa", *answers(20, 15), base_ref=EVIL,
                training={"plugin": "sft", "seed": "<img src=x onerror=alert(2)>"})
    make_record(root, "tuned-2", "medqa", *answers(20, 14), base_ref=EVIL, training={"plugin": "sft", "seed": 2})
    render(root, ["md"], baseline=EVIL)
    markdown = (root / "leaderboard.md").read_text()
    assert "<script>" not in markdown and "<img" not in markdown and "`ab`" not in markdown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown and "seeds" in markdown
    for line in markdown.split("\n"):  # every table row keeps its cells: no pipe or line break got through
        if line.startswith("| "):
            assert line.endswith(" |") and "\r" not in line
    header = next(line for line in markdown.split("\n") if line.startswith("| checkpoint | weights"))
    cells = len(re.split(r"(?<!\\)\|", header))
    assert all(len(re.split(r"(?<!\\)\|", line)) == cells for line in markdown.split("\n")
               if line.startswith("| ") and "ab" in line)


# ------------------------------------------------------------------------------------ 5. terminal escapes

TTY_EVIL = "m\x1b[2J\x1b]0;PWN\x07\x1b[31mRED\u202e"


def test_no_control_sequence_from_a_record_reaches_the_terminal(tmp_path, capsys):
    root, path = two_rows(tmp_path)
    edit_json(path, lambda r: (r["model"].update(label=TTY_EVIL), r.update(record_key="medqa\x1b[31m")))
    bad = root / "records" / "\x1b[2Jevil" / "medqa" / "record.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{}")
    code, out, err = run_cli(capsys, "leaderboard", "--dir", root, "--no-baselines")
    assert code == 0, err
    assert "\x1b" not in out + err and "\u202e" not in out + err and "\x07" not in out + err
    assert "\\x1b[2J" in out and "\\x1b[2Jevil" in err  # shown, as escapes


def test_the_eval_results_table_escapes_labels_too(capsys):
    from medbench.commands.common import print_records

    print_records([{"model": {"label": TTY_EVIL}, "record_key": "medqa\x1b]0;x\x07", "primary_metric": "acc",
                    "metrics": {"acc": {"value": 0.5}, "f1": {"value": None}}, "score": 0.5, "stderr": None,
                    "n": 4}])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\\x1b[2J" in out and "f1 –" in out


# ------------------------------------------------------------------------------------ 6. JSON lines, split on \n


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x85"])  # (json.dumps escapes the C0 ones itself)
def test_samples_with_line_separators_inside_strings_are_read(char, tmp_path):
    root, path = two_rows(tmp_path)
    samples = path.parent / "samples.jsonl"
    rows = [json.loads(line) for line in samples.read_text().split("\n") if line]
    for row in rows:
        row["prompt"] = f"a{char}b"
    samples.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    assert [row["prompt"] for row in read_samples({"_path": str(path)})] == [f"a{char}b"] * len(rows)
    assert not [note for note in build_table(root).notes if "unreadable" in note]


# ------------------------------------------------------------------------------------ 7. normal CIs in range


def test_a_normal_ci_of_a_share_stays_between_0_and_1(tmp_path):
    root, path = two_rows(tmp_path)
    edit_json(path, lambda r: r.update(score=0.95, stderr=0.1, metrics={"acc": {"value": 0.95, "stderr": 0.1}}))
    (path.parent / "samples.jsonl").unlink()
    make_record(root, "ppl", "wiki", *answers(6, 3), metric="acc")
    ppl = next((root / "records").glob("ppl-*/wiki/record.json"))
    edit_json(ppl, lambda r: r.update(primary_metric="perplexity", score=0.5, stderr=0.4,
                                      metrics={"perplexity": {"value": 0.5, "stderr": 0.4}}))
    (ppl.parent / "samples.jsonl").unlink()
    rows = {r.label: r for r in build_table(root).rows}
    cell = rows["m"].cells["medqa"]
    assert cell.ci_method == "normal" and cell.ci_high == 1.0 and cell.ci_low == pytest.approx(0.95 - 0.196, abs=1e-3)
    other = rows["ppl"].cells["wiki"]  # not a share: as computed
    assert other.ci_low == pytest.approx(0.5 - 0.784, abs=1e-3) and other.ci_low < 0


def test_a_corpus_metric_ci_over_unhashable_golds(tmp_path, capsys):
    root = tmp_path / "lb"
    make_record(root, "base", "uti", *answers(12, 5), metric="macro_f1")
    path = make_record(root, "m", "uti", *answers(12, 9), metric="macro_f1", base_ref="base")
    edit_samples(path, lambda rows: (rows[0].update(gold=[1]), rows[1].update(pred={"a": 1})))
    code, out, err = run_cli(capsys, "leaderboard", "--dir", root, "--no-baselines")
    assert code == 0, err
    cell = next(r for r in json.loads((root / "leaderboard.json").read_text())["rows"] if r["label"] == "m")
    assert cell["cells"]["uti"]["ci_method"] == "bootstrap"  # the resampled macro F1 codes a list by its JSON
    weights = stats.resample_weights(4, 20, 1)
    assert list(stats.macro_f1_resampled(weights, [[1], [1], 0, {"a": 1}], [[1], 0, 0, {"a": 1}])) == \
        list(stats.macro_f1_resampled(weights, ["[1]", "[1]", 0, "a"], ["[1]", 0, 0, "a"]))


def test_macro_f1_takes_list_labels_without_crashing():
    from medbench_plugins.builtin_metrics import macro_f1

    assert macro_f1([[1], [2], [1]], [[1], [1], [1]]) == pytest.approx((0.8 + 0.0) / 2)


def test_bidirectional_controls_are_shown_not_obeyed_on_the_page(tmp_path):
    from medbench.leaderboard import render

    make_record(tmp_path, "safe\u202eevil", "medqa", [1, 0, 1], [1, 1, 1])
    paths = render(tmp_path, ["md", "html"])
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert "\u202e" not in text.split("<script", 1)[0], path.name  # the embedded JSON is data, not text
        # Markdown doubles the escape's backslash (a lone one could undo an escape), so it renders as the page shows it
        assert ("safe\\\\u202eevil" if path.suffix == ".md" else "safe\\u202eevil") in text, path.name


def test_a_samples_file_saved_with_a_byte_order_mark_still_reads(tmp_path):
    record_dir = make_record(tmp_path, "base", "medqa", [1, 0, 1], [1, 1, 1])
    path = next(tmp_path.glob("records/*/medqa/samples.jsonl"))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    record = json.loads(next(tmp_path.glob("records/*/medqa/record.json")).read_text())
    record["_path"] = str(next(tmp_path.glob("records/*/medqa/record.json")))
    assert len(read_samples(record)) == 3, record_dir
