"""A newcomer's first hour and a plugin author's, round fourteen: what `make demo`, the README and the plugin docs
showed.

The markdown and the page wrote McNemar's "b=15 c=45" without saying what b and c count; a trained checkpoint's
details read "ref ../sft/checkpoint-6" (relative to what?) and "parameters 134515008"; `medbench tasks` credited
the `medbench` tag, gathered from the built-in tasks and a plugin's, to the built-in plugin alone.
"""

from __future__ import annotations

import json
import re

from leaderboard_helpers import answers, make_record
from medbench.leaderboard import render
from medbench.testing import invoke_cli


def _board(root):
    make_record(root, "base", "hyponatremia", *answers(105, 15))
    make_record(root, "sft", "hyponatremia", *answers(105, 45), base_ref="base",
                training={"plugin": "sft", "run_id": "sft", "step": 53, "config": {"max_steps": 53}})


def test_mcnemars_b_and_c_are_explained_where_they_are_shown(tmp_path):
    root = tmp_path / "lb"
    _board(root)
    render(root, ["md", "html"], baseline="base")
    markdown = (root / "leaderboard.md").read_text()
    assert "b: items only the baseline got right; c: items only this row got right" in markdown
    assert "b=0 c=30" in markdown  # the counts themselves are unchanged
    page = (root / "index.html").read_text()
    assert "b=0 c=30 (b: right only in the baseline, c: right only here)" in page


def test_a_table_without_mcnemar_tests_does_not_explain_b_and_c(tmp_path):
    root = tmp_path / "lb"
    golds, base_preds = answers(30, 10)
    make_record(root, "base", "discharge_summary", golds, base_preds, metric="macro_f1")
    make_record(root, "sft", "discharge_summary", *answers(30, 20), base_ref="base", metric="macro_f1")
    render(root, ["md"], baseline="base")
    markdown = (root / "leaderboard.md").read_text()
    assert "Differences from the baseline" in markdown and "permutation" in markdown.split("Differences")[1]
    assert "McNemar's b" not in markdown


def _with_model_fields(record_path, **fields):
    record = json.loads(record_path.read_text())
    record["model"].update(fields)
    record_path.write_text(json.dumps(record))


def test_a_checkpoint_path_says_it_is_relative_to_the_board_and_counts_read_with_separators(tmp_path):
    root = tmp_path / "lb"
    make_record(root, "base", "hyponatremia", *answers(20, 5))
    trained = make_record(root, "sft", "hyponatremia", *answers(20, 10), base_ref="base")
    _with_model_fields(trained, ref="../sft/checkpoint-6", parameters=139399488)  # write_record: record.json
    render(root, ["html"], baseline="base")
    page = (root / "index.html").read_text()
    details = re.findall(r"<dt>(ref|parameters)</dt><dd>([^<]*)</dd>", page)
    assert ("ref", "../sft/checkpoint-6 (relative to the leaderboard folder)") in details
    assert ("parameters", "139,399,488") in details
    assert ("ref", "base") in details  # a reference that is not a path is shown as written


def test_tasks_names_every_plugin_whose_tasks_carry_a_tag(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "mine_tagged.yaml").write_text(
        "task: mine_tagged\ntag: [medbench]\ndataset_path: json\ndataset_kwargs: {data_files: {test: t.jsonl}}\n"
        "output_type: multiple_choice\ntest_split: test\ndoc_to_text: q\ndoc_to_choice: [a, b]\ndoc_to_target: 0\n"
        "metric_list: [{metric: acc}]\n")
    result = invoke_cli("tasks", "--include-path", str(folder), "--json")
    assert result.exit_code == 0, result.output
    start = result.output.index("{")
    groups = {group["group"]: group for group in json.JSONDecoder().raw_decode(result.output[start:])[0]["groups"]}
    assert "mine_tagged" in groups["medbench"]["tasks"]
    plugins = groups["medbench"]["plugin"].split(", ")  # the example plugin's task joins it where installed
    assert plugins[0] == "builtin_tasks" and plugins[-1] == "--include-path", plugins
    assert groups["triage"]["plugin"] == "builtin_tasks"  # a group keeps its own plugin


def test_a_cells_hover_lists_the_records_other_metrics_with_their_direction(tmp_path, plugin_registration):
    from medbench import hookimpl

    class StageDistance:  # a plugin's lower-is-better metric, as docs/writing-plugins.md registers one
        @hookimpl
        def register_metrics(self, register):
            register("round14_stage_distance", lambda refs, preds: 0.0, higher_is_better=False)

    plugin_registration(StageDistance(), name="round14_metrics")
    root = tmp_path / "lb"
    path = make_record(root, "base", "hyponatremia", *answers(20, 5))
    record = json.loads(path.read_text())
    record["metrics"]["round14_stage_distance"] = {"value": 0.85, "stderr": None}
    path.write_text(json.dumps(record))
    render(root, ["html"])
    titles = [title for title in re.findall(r'title="([^"]*)"', (root / "index.html").read_text())
              if title.startswith("acc = ")]
    also = r"\nalso: macro_f1 0\.\d{3}, round14_stage_distance 0\.850 \(lower is better\)\n"
    assert titles and re.search(also, titles[0]), titles


def _record_with_an_unrated_judge():
    return {"model": {"label": "base"}, "record_key": "renal@gen", "primary_metric": "exact_match", "score": 0.0,
            "stderr": 0.0, "n": 3, "metrics": {"exact_match": {"value": 0.0, "stderr": 0.0},
                                               "judge:names_stage": {"value": float("nan"), "stderr": None}}}


def test_a_judge_that_rated_no_item_reads_as_a_dash_and_eval_json_stays_standard_json(capsys):
    from medbench.commands.common import print_records

    print_records([_record_with_an_unrated_judge()], as_json=True, leaderboard=[])
    out = capsys.readouterr().out

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    parsed = json.loads(out, parse_constant=refuse)  # jq refuses NaN; so does this
    assert parsed["records"][0]["metrics"]["judge:names_stage"]["value"] is None

    print_records([_record_with_an_unrated_judge()])
    table = capsys.readouterr().out
    assert "judge:names_stage –" in table and "nan" not in table
