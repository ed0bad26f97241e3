import json
from pathlib import Path

import pytest

from medbench.errors import MedbenchError
from medbench.evaluation import EvalConfig, evaluate
from medbench.leaderboard import build_table, render
from medbench.models import resolve_model
from medbench.records import read_records, read_samples
from medbench.weights_identity import weights_identity


@pytest.fixture(scope="module")
def tiny_records(tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("lb")
    records = evaluate(str(tiny_model_dir), EvalConfig(tasks=["medqa", "medmcqa"], limit=8, batch_size=4,
                                                       output_dir=out, label="tiny"))
    return out, records


def test_records_have_scores_hashes_and_provenance(tiny_records, tiny_model_dir):
    out, records = tiny_records
    assert [r["record_key"] for r in records] == ["medqa", "medmcqa"]
    medqa = records[0]
    assert medqa["primary_metric"] == "acc" and 0.0 <= medqa["score"] <= 1.0
    assert medqa["stderr"] is not None and medqa["n"] == 8
    assert medqa["model"]["weights_hash"] == weights_identity(resolve_model(str(tiny_model_dir)))
    assert len(medqa["task"]["data_hash"]) == 32 and medqa["task"]["split"] == "test"
    assert medqa["config"]["batch_size"] == 4 and medqa["config"]["limit"] == 8 and medqa["seed"] == 1234
    assert {"lm_eval", "torch", "transformers", "medbench"} <= set(medqa["versions"])
    assert "macro_f1" in medqa["metrics"]
    on_disk = {r["record_key"]: r for r in read_records(out)}
    assert set(on_disk) == {"medqa", "medmcqa"}


def test_samples_hold_per_item_predictions(tiny_records):
    out, records = tiny_records
    record = next(r for r in read_records(out) if r["record_key"] == "medqa")
    samples = read_samples(record)
    assert len(samples) == 8
    for sample in samples:
        assert len(sample["logliks"]) == 4
        assert sample["pred"] == max(range(4), key=sample["logliks"].__getitem__)
        assert sample["acc"] == float(sample["pred"] == sample["gold"])
        assert sample["prompt"].startswith("Question:")
    assert record["score"] == pytest.approx(sum(s["acc"] for s in samples) / len(samples))


def test_register_metrics(plugin_registration, tiny_records):
    """A metric from a plugin scores saved samples without running the model again."""
    from medbench import hookimpl
    from medbench.metrics import metric_registry, score_samples

    class Plugin:
        @hookimpl
        def register_metrics(self, register):
            register("share_predicting_a", lambda refs, preds: sum(p == 0 for p in preds) / len(preds))

    plugin_registration(Plugin(), "extra-metric")
    registry = metric_registry()
    assert registry["share_predicting_a"].plugin == "extra-metric"
    assert {"accuracy", "macro_f1", "f1"} <= set(registry)
    out, _ = tiny_records
    record = next(r for r in read_records(out) if r["record_key"] == "medqa")
    samples = read_samples(record)
    scores = score_samples(["accuracy", "share_predicting_a"], samples)
    assert scores["accuracy"] == pytest.approx(record["score"])
    assert scores["share_predicting_a"] == sum(s["pred"] == 0 for s in samples) / len(samples)


def test_builtin_metrics_hand_computed():
    from medbench_plugins.builtin_metrics import accuracy, binary_f1, macro_f1

    refs, preds = [0, 0, 1, 1, 2], [0, 1, 1, 1, 0]
    assert accuracy(refs, preds) == 3 / 5
    # class 0: tp1 fp1 fn1 -> 0.5; class 1: tp2 fp1 fn0 -> 0.8; class 2: tp0 -> 0
    assert macro_f1(refs, preds) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert binary_f1(["yes", "no", "yes", "yes"], ["yes", "yes", "no", "yes"]) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))


def test_scores_do_not_depend_on_batch_size(tiny_model_dir, tmp_path):
    preds = {}
    for batch_size in (1, 4, 16):
        records = evaluate(str(tiny_model_dir), EvalConfig(tasks=["medqa"], limit=12, batch_size=batch_size,
                                                           output_dir=tmp_path / str(batch_size)))
        preds[batch_size] = [s["pred"] for s in read_samples(records[0])]
    assert preds[1] == preds[4] == preds[16]


def test_leaderboard_markdown_and_json(tiny_records):
    out, _ = tiny_records
    paths = render(out)
    assert {"leaderboard.md", "leaderboard.json", "leaderboard.csv", "index.html"} <= {p.name for p in paths}
    table = json.loads((out / "leaderboard.json").read_text())
    assert table["columns"] == ["medmcqa", "medqa"]
    assert table["rows"][0]["label"] == "tiny"
    markdown = (out / "leaderboard.md").read_text()
    assert "| tiny |" in markdown and "medqa" in markdown and "Research use only" in markdown


def test_register_leaderboard_renderers(plugin_registration, tiny_records):
    from medbench import hookimpl

    class Plugin:
        @hookimpl
        def register_leaderboard_renderers(self, register):
            def render_tsv(table, out_dir: Path) -> Path:
                path = out_dir / "leaderboard.tsv"
                path.write_text("\n".join(f"{row.label}\t{row.mean_score()}" for row in table.rows))
                return path

            register("tsv", render_tsv)

    plugin_registration(Plugin(), "tsv-renderer")
    out, _ = tiny_records
    (path,) = render(out, ["tsv"])
    assert path.read_text().startswith("tiny\t")
    with pytest.raises(MedbenchError, match="unknown leaderboard format.*latex"):
        render(out, ["latex"])


def test_new_runs_merge_into_the_leaderboard(tiny_records, tiny_model_dir, tmp_path):
    out, _ = tiny_records
    from medbench.testing import make_tiny_model

    other = make_tiny_model(tmp_path / "other", seed=7)
    evaluate(str(other), EvalConfig(tasks=["medqa"], limit=4, output_dir=out, label="other"))
    table = build_table(out)
    assert {row.label for row in table.rows} == {"tiny", "other"}
    assert "medmcqa" not in next(r for r in table.rows if r.label == "other").cells


def test_bad_limit_and_unknown_task(tiny_model_dir, tmp_path):
    with pytest.raises(MedbenchError, match="--limit must be a positive"):
        EvalConfig(tasks=["medqa"], limit=0)
    with pytest.raises(MedbenchError, match="unknown task 'nope'"):
        evaluate(str(tiny_model_dir), EvalConfig(tasks=["nope"], output_dir=tmp_path))
    assert not (tmp_path / "records").exists()


def test_chat_template_scoring_is_its_own_column(tiny_model_dir, tmp_path):
    """Prompts wrapped in the chat template are scored and recorded apart from raw prompts."""
    raw, chat = (evaluate(str(tiny_model_dir), EvalConfig(tasks=["medqa"], limit=3, output_dir=tmp_path,
                                                          chat_template=flag))[0] for flag in (False, True))
    assert (raw["record_key"], chat["record_key"]) == ("medqa", "medqa@chat")
    assert chat["config"]["chat_template"] is True
    raw_prompt, chat_prompt = read_samples(raw)[0]["prompt"], read_samples(chat)[0]["prompt"]
    assert raw_prompt.startswith("Question:")
    assert chat_prompt.startswith("<|user|>\nQuestion:") and chat_prompt.endswith("<|assistant|>\n")
    assert build_table(tmp_path).columns == ["medqa", "medqa@chat"]


def test_auroc_and_per_label_f1_hand_computed():
    from sklearn.metrics import roc_auc_score

    from medbench.metrics import metric_registry, score_samples
    from medbench_plugins.builtin_metrics import per_label_f1, roc_auc

    # AUROC by hand: positives scored 0.9, 0.4; negatives 0.5, 0.1 -> pairs won 3 of 4
    assert roc_auc([1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1]) == pytest.approx(0.75)
    assert roc_auc([1, 0, 1, 0], [0.5, 0.5, 0.7, 0.2]) == pytest.approx(roc_auc_score([1, 0, 1, 0], [0.5, 0.5, 0.7, 0.2]))
    samples = [{"gold": g, "pred": int(a > b), "logliks": [b, a], "choices": ["no", "yes"]}
               for g, a, b in [(1, -0.1, -2.0), (0, -1.0, -0.5), (1, -0.7, -0.6), (0, -3.0, -0.1)]]
    scores = score_samples(["auroc", "per_label_f1", "f1"], samples, metric_registry())
    # P(yes) ranks: 0.87 (pos), 0.38 (neg), 0.48 (pos), 0.05 (neg) -> every positive above every negative
    assert scores["auroc"] == pytest.approx(1.0)
    # preds [1, 0, 0, 0]: "yes" tp1 fn1 -> 2/3; "no" tp2 fp1 -> 0.8
    assert scores["per_label_f1:yes"] == pytest.approx(2 / 3) and scores["per_label_f1:no"] == pytest.approx(0.8)
    assert per_label_f1(samples) == {"no": pytest.approx(0.8), "yes": pytest.approx(2 / 3)}
    # AUROC needs per-choice likelihoods: generate-mode samples leave it out instead of inventing a value
    assert "auroc" not in score_samples(["auroc"], [{**s, "logliks": None} for s in samples])


def test_the_validation_split_is_scored_as_its_own_column(tiny_model_dir, tmp_path):
    """`--split validation` scores the held-out split (for choosing a checkpoint) in a column of its own, so a
    test score is never read off it; a task whose validation split is its test split is refused."""
    (record,) = evaluate(str(tiny_model_dir), EvalConfig(tasks=["uti"], limit=3, output_dir=tmp_path,
                                                         split="validation"))
    assert record["record_key"] == "uti@validation"
    assert record["task"]["split"] == "validation" and record["task"]["split_size"] == 50
    with pytest.raises(MedbenchError, match="unknown split 'dev'"):
        EvalConfig(tasks=["uti"], split="dev")
