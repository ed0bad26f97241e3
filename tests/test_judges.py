"""LLM-as-judge scorers: the register_judges hook, the built-in likert judge, and judges in records."""

import textwrap

import pytest

from medbench import hookimpl
from medbench.errors import MedbenchError
from medbench.evaluation import EvalConfig, evaluate
from medbench.judges import get_judge, judge_registry, run_judge
from medbench.records import read_samples

SUMMARY_TASK = """
task: tiny_summary
custom_dataset: !function utils.load
output_type: generate_until
test_split: test
doc_to_text: "Note: {{note}}\\nSummary:"
doc_to_target: summary
generation_kwargs: {until: ["\\n"], max_gen_toks: 4, do_sample: false}
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
  judges: [length_judge]
"""

SUMMARY_UTILS = """
import datasets

def load(**metadata):
    rows = [{"note": f"patient {i} admitted with pneumonia", "summary": "pneumonia treated"} for i in range(3)]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})
"""


class LengthJudge:
    """A deterministic stand-in judge: the score is the prediction's length, capped at 5."""

    name = "length_judge"
    description = "len(prediction), capped at 5"

    def __init__(self):
        self.seen = []

    def score(self, items, options):
        self.seen.append((items, options))
        return [min(5.0, float(len(item["prediction"]))) for item in items]


def test_register_judges(plugin_registration):
    judge = LengthJudge()

    class Plugin:
        @hookimpl
        def register_judges(self, register):
            register(judge)

    plugin_registration(Plugin(), "length-judge")
    registry = judge_registry()
    assert registry["length_judge"].plugin == "length-judge"
    assert "likert" in registry  # the built-in one
    samples = [{"prompt": "p", "gold": "ref", "pred": "abc"}, {"prompt": "p", "gold": "ref", "response": "abcdefg"}]
    metric = run_judge("length_judge", samples, {"k": "v"})
    assert metric["judge:length_judge"]["value"] == pytest.approx((3 + 5) / 2)
    assert [s["judge:length_judge"] for s in samples] == [3.0, 5.0]
    assert judge.seen[0][1] == {"k": "v"} and judge.seen[0][0][0]["reference"] == "ref"
    with pytest.raises(MedbenchError, match="unknown judge 'likret'.*did you mean likert"):
        get_judge("likret")


def test_task_metadata_judges_land_in_the_record(plugin_registration, tiny_model_dir, tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "tiny_summary.yaml").write_text(textwrap.dedent(SUMMARY_TASK))
    (tmp_path / "tasks" / "utils.py").write_text(textwrap.dedent(SUMMARY_UTILS))

    class Plugin:
        @hookimpl
        def register_tasks(self, register):
            register(tmp_path / "tasks")

        @hookimpl
        def register_judges(self, register):
            register(LengthJudge())

    plugin_registration(Plugin(), "summary-plugin")
    (record,) = evaluate(str(tiny_model_dir), EvalConfig(tasks=["tiny_summary"], output_dir=tmp_path / "lb"))
    assert "judge:length_judge" in record["metrics"]
    samples = read_samples(record)
    assert all(0.0 <= s["judge:length_judge"] <= 5.0 for s in samples)
    assert record["metrics"]["judge:length_judge"]["value"] == pytest.approx(
        sum(s["judge:length_judge"] for s in samples) / len(samples))


def test_likert_judge_scores_between_one_and_five(tiny_model_dir):
    from medbench_plugins.likert_judge import LikertJudge

    items = [{"prompt": "Note: admitted with pneumonia.", "reference": "Pneumonia, treated.",
              "prediction": text} for text in ("Pneumonia, treated.", "zzz")]
    scores = LikertJudge().score(items, {"model": str(tiny_model_dir)})
    assert len(scores) == 2 and all(1.0 <= s <= 5.0 for s in scores)
    assert scores == LikertJudge().score(items, {"model": str(tiny_model_dir)})  # deterministic


def test_unknown_judge_fails_before_the_model_loads(tmp_path):
    with pytest.raises(MedbenchError, match="unknown judge 'nope'"):
        evaluate("/does/not/exist", EvalConfig(tasks=["medqa"], output_dir=tmp_path, judges=["nope"]))
    assert not (tmp_path / "records").exists()


def test_judge_settings_without_a_judge_are_one_line_not_silently_ignored(medbench_cli, tiny_model_dir, tmp_path):
    result = medbench_cli("eval", "--model", str(tiny_model_dir), "--tasks", "medqa", "--limit", "2",
                          "--judge-model", "openai:judge", "--leaderboard-dir", str(tmp_path / "lb"))
    assert result.exit_code == 2
    assert "no judge scores medqa" in result.output and "--judge likert" in result.output


def test_a_multiple_choice_task_scored_by_generation_is_judged_too():
    from medbench.judges import judges_for
    from medbench.tasks import build_registry

    registry = build_registry()
    assert judges_for(["medqa", "discharge_summary"], registry, ["likert"]) == {"discharge_summary": ["likert"]}
    assert judges_for(["medqa"], registry, ["likert"], mode="generate") == {"medqa": ["likert"]}


def test_eval_says_which_tasks_a_typed_judge_skips(medbench_cli, tiny_model_dir, tmp_path):
    result = medbench_cli("eval", "--model", tiny_model_dir, "--tasks", "medqa", "--limit", "1", "--judge", "likert",
                          "--leaderboard-dir", tmp_path / "lb")
    assert result.exit_code == 0, result.output
    assert "note: --judge scores generation tasks only; not medqa (pass --mode generate" in result.output


def test_a_judge_model_that_does_not_resolve_fails_before_the_scored_model_loads(tmp_path, monkeypatch):
    from medbench import evaluation

    opened = []
    monkeypatch.setattr(evaluation, "open_for_evaluation", lambda *args, **kwargs: opened.append(1))
    config = EvalConfig(tasks=["discharge_summary"], limit=1, output_dir=tmp_path / "lb", judges=["likert"],
                        judge_options={"model": "no-such-judge-model"})
    with pytest.raises(MedbenchError, match="unknown model 'no-such-judge-model'"):
        evaluate("unused", config)
    assert not opened and not (tmp_path / "lb" / "records").exists()
