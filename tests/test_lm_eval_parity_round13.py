"""Round 13: medbench against stock lm-eval (HFLM, the same YAML, model and rows) on settings earlier rounds left out:
multiple-choice metrics beyond acc (acc_bytes, brier_score, exact_match of the greedy answer) over a mapping of
choices, a generating task's several filter pipelines (regex with group_select, lowercase, multi_choice_regex) and
exact_match's ignore options beside bleu/chrf/ter, a group weighted by size, and four places medbench once scored
or refused otherwise than stock: a multiple-input task (winogrande's shape), a user group that gives a member its own
num_fewshot (refused in one line, as lm-eval's own such groups are), a user tag, and a process_docs that draws from
numpy."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from medbench.records import load_record, read_samples
from test_task_inputs import run_eval, write_jsonl


def _task(folder: Path, name: str, rows: list[dict], body: str, tag: str = "") -> Path:
    """A task YAML of the user's over ``rows`` (dataset_path json), in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / f"{name}.jsonl", rows)
    (folder / f"{name}.yaml").write_text(f"task: {name}\n{tag}dataset_path: json\ndataset_kwargs:\n  data_files:\n"
                                         f"    test: {folder / f'{name}.jsonl'}\ntest_split: test\n"
                                         + textwrap.dedent(body))
    return folder


def _stock(folder: Path, model: Path, tasks: list[str], **options) -> dict:
    import lm_eval
    from lm_eval.tasks import TaskManager

    return lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model},dtype=float32", tasks=tasks,
                                   batch_size=4, device="cpu", log_samples=True,
                                   task_manager=TaskManager(include_path=str(folder), include_defaults=False),
                                   **options)


def _medbench(folder: Path, model: Path, task: str, lb: Path, capsys, *extra: str) -> dict[str, tuple[dict, list]]:
    """medbench eval on ``task`` from ``folder``: {task name: (record, rows)} for every record it wrote."""
    code, err = run_eval(["--model", str(model), "--tasks", task, "--include-path", str(folder), "--batch-size", "4",
                          "--leaderboard-dir", str(lb), *extra], capsys)
    assert code == 0, err
    records = [load_record(path) for path in sorted(lb.glob("records/*/*/record.json"))]
    return {record["task"]["name"]: (record, read_samples(record)) for record in records}


def _by_doc(samples: list[dict]) -> list[dict]:
    return sorted(samples, key=lambda s: s["doc_id"])


def test_mc_metrics_beyond_acc_over_a_mapping_of_choices(tiny_model_dir, tmp_path, capsys):
    """doc_to_choice a Jinja mapping's values, the answer a letter turned into an index by the template: acc,
    acc_norm, acc_bytes, exact_match (is the gold choice the greedy continuation) and brier_score (no stderr)."""
    rows = [{"q": f"Which drug treats case {i}?", "ans": "ABC"[i % 3],
             "opts": {"A": f"drug {'x' * (i % 4)}", "B": "placebo", "C": f"dose {i}"}} for i in range(10)]
    folder = _task(tmp_path / "tasks", "mcmap", rows, """
        output_type: multiple_choice
        doc_to_text: "Q: {{q}}\\nA:"
        doc_to_choice: "{{opts.values() | list}}"
        doc_to_target: "{{['A', 'B', 'C'].index(ans)}}"
        metric_list: [{metric: acc}, {metric: acc_norm}, {metric: acc_bytes}, {metric: exact_match},
                      {metric: brier_score}]
    """)
    stock = _stock(folder, tiny_model_dir, ["mcmap"])
    results, samples = stock["results"]["mcmap"], _by_doc(stock["samples"]["mcmap"])
    record, ours = _medbench(folder, tiny_model_dir, "mcmap", tmp_path / "lb", capsys)["mcmap"]
    assert [s["gold"] for s in ours] == [s["target"] for s in samples]
    for metric in ("acc", "acc_norm", "acc_bytes", "exact_match"):
        assert [s[metric] for s in ours] == [s[metric] for s in samples], metric
        assert record["metrics"][metric]["value"] == pytest.approx(results[f"{metric},none"])
        assert record["metrics"][metric]["stderr"] == pytest.approx(results[f"{metric}_stderr,none"])
    assert record["metrics"]["brier_score"]["value"] == pytest.approx(results["brier_score,none"], rel=1e-6)
    assert record["metrics"]["brier_score"]["stderr"] is None  # stock: "N/A"
    assert record["metrics"]["brier_score"]["higher_is_better"] is False


def test_generation_pipelines_and_exact_match_options_with_bleu_chrf_ter(tiny_model_dir, tmp_path, capsys):
    """Three pipelines (regex keeping the last match with a fallback; lowercase and remove_whitespace;
    multi_choice_regex, which reads the document), exact_match ignoring case, punctuation and regexes, and the
    corpus metrics (bootstrapped 100 times in both: lm-eval caps bleu/chrf/ter's resamples)."""
    rows = [{"q": f"Translate case {i}: fever", "ref": ":::" if i % 2 else f"Fiebre {i}",
             "choices": ["Alpha", "Beta", ":::"]} for i in range(6)]
    folder = _task(tmp_path / "tasks", "gens", rows, """
        output_type: generate_until
        doc_to_text: "{{q}} =>"
        doc_to_target: "{{ref}}"
        generation_kwargs: {until: ["\\n", "Q:"], max_gen_toks: 4, do_sample: false}
        filter_list:
          - name: re
            filter: [{function: regex, regex_pattern: "([:A-Za-z]+)", group_select: -1, fallback: "Z"},
                     {function: take_first}]
          - name: low
            filter: [{function: lowercase}, {function: remove_whitespace}, {function: take_first}]
          - name: mcr
            filter: [{function: multi_choice_regex, ignore_case: true, ignore_punctuation: true},
                     {function: take_first}]
        metric_list:
          - {metric: exact_match, aggregation: mean, higher_is_better: true, ignore_case: true,
             ignore_punctuation: true, regexes_to_ignore: [",", "\\\\$"]}
          - {metric: bleu, aggregation: bleu, higher_is_better: true}
          - {metric: chrf, aggregation: chrf, higher_is_better: true}
          - {metric: ter, aggregation: ter, higher_is_better: false}
    """)
    stock = _stock(folder, tiny_model_dir, ["gens"])
    results = stock["results"]["gens"]
    by_pipeline = {name: _by_doc([s for s in stock["samples"]["gens"] if s["filter"] == name])
                   for name in ("re", "low", "mcr")}
    record, ours = _medbench(folder, tiny_model_dir, "gens", tmp_path / "lb", capsys)["gens"]
    assert [s.get("response", s["pred"]) for s in ours] == [s["resps"][0][0] for s in by_pipeline["re"]]
    assert [s["pred"] for s in ours] == [s["filtered_resps"][0] for s in by_pipeline["re"]]
    for pipeline in ("low", "mcr"):
        assert [s[f"exact_match,{pipeline}"] for s in ours] == [s["exact_match"] for s in by_pipeline[pipeline]]
    for key, value in results.items():
        metric, _, pipeline = key.partition(",")
        if not pipeline or metric.endswith("_stderr"):
            continue
        ours_key = metric if pipeline == "re" else key
        assert record["metrics"][ours_key]["value"] == pytest.approx(value), key
        assert record["metrics"][ours_key]["stderr"] == pytest.approx(results[f"{metric}_stderr,{pipeline}"]), key
    assert record["metrics"]["ter"]["higher_is_better"] is False


def _members(folder: Path, sizes: dict[str, int], tag: str = "") -> None:
    for name, n in sizes.items():
        rows = [{"q": f"{name} question {i}{'?' * (i % 3)}", "opts": ["yes", "no", "maybe"], "ans": (i * 7) % 3}
                for i in range(n)]
        _task(folder / name, name, rows, """
            output_type: multiple_choice
            doc_to_text: "Q: {{q}}\\nA:"
            doc_to_choice: "{{opts}}"
            doc_to_target: ans
            fewshot_split: test
            metric_list: [{metric: acc}]
        """, tag)


def test_a_group_weighted_by_size_is_the_item_weighted_mean_of_its_members(tiny_model_dir, tmp_path, capsys):
    """medbench writes one record per member (no group record); a group's acc with weight_by_size is the
    leaderboard's weighted mean of those records, equal to stock's group score."""
    from medbench.leaderboard.stats import weighted_average

    folder = tmp_path / "tasks"
    _members(folder, {"ga": 5, "gb": 13})
    (folder / "grp.yaml").write_text("group: grp\ntask: [ga, gb]\naggregate_metric_list:\n"
                                     "  - {metric: acc, aggregation: mean, weight_by_size: true}\n")
    stock = _stock(folder, tiny_model_dir, ["grp"])["results"]
    ours = _medbench(folder, tiny_model_dir, "grp", tmp_path / "lb", capsys)
    assert sorted(ours) == ["ga", "gb"]
    for name, (record, _) in ours.items():
        assert record["score"] == pytest.approx(stock[name]["acc,none"])
    weighted = weighted_average([ours[n][0]["score"] for n in ("ga", "gb")], [ours[n][0]["n"] for n in ("ga", "gb")])
    assert weighted == pytest.approx(stock["grp"]["acc,none"])


def test_a_user_groups_member_settings_are_refused_where_stock_applies_them(tiny_model_dir, tmp_path, capsys):
    folder = tmp_path / "tasks"
    _members(folder, {"ga": 6, "gb": 4})
    (folder / "grp.yaml").write_text("group: grp\ntask:\n  - task: ga\n    num_fewshot: 2\n  - gb\n")
    stock = _stock(folder, tiny_model_dir, ["grp"])
    prompts = [s["arguments"][0][0] for s in _by_doc(stock["samples"]["ga"])]
    assert prompts[0].count("Q: ") == 3  # two shots, then the question
    code, err = run_eval(["--model", str(tiny_model_dir), "--tasks", "grp", "--include-path", str(folder),
                          "--leaderboard-dir", str(tmp_path / "lb")], capsys)
    # medbench scores a task name one way (its own YAML's settings): the group is refused in one line, as lm-eval's
    # own such groups are, naming the group, the member, the setting and where to put it; nothing is scored.
    assert code == 2
    assert "group 'grp'" in err and "num_fewshot for its member 'ga'" in err and "ga's own YAML" in err
    assert not list((tmp_path / "lb").glob("records/*/*/record.json"))


def test_a_user_tag_runs_the_tasks_that_carry_it(tiny_model_dir, tmp_path, capsys):
    folder = tmp_path / "tasks"
    _members(folder, {"ta": 4, "tb": 5}, tag="tag: mytag\n")
    stock = _stock(folder, tiny_model_dir, ["mytag"])["results"]
    ours = _medbench(folder, tiny_model_dir, "mytag", tmp_path / "lb", capsys)
    assert sorted(ours) == sorted(stock) == ["ta", "tb"]


def test_a_multiple_input_task_scores_as_stock(tiny_model_dir, tmp_path, capsys):
    """winogrande's shape: doc_to_text gives the gold index, the choices are the contexts, the continuation is
    shared (lm-eval's own winogrande with --data-file is refused the same way)."""
    rows = [{"sentence": f"The nurse gave the drug to the patient because _ was in pain {i}.", "option1": "the nurse",
             "option2": f"the patient {'x' * (i % 3)}", "answer": str(1 + i % 2)} for i in range(8)]
    folder = _task(tmp_path / "tasks", "wino", rows, """
        output_type: multiple_choice
        doc_to_text: "{{ (answer | int) - 1 }}"
        doc_to_choice: "{{ [sentence.split('_')[0] ~ option1, sentence.split('_')[0] ~ option2] }}"
        doc_to_target: "{{ ' ' ~ sentence.split('_')[1].strip() }}"
        target_delimiter: ""
        metric_list: [{metric: acc}, {metric: acc_norm}]
    """)
    stock = _stock(folder, tiny_model_dir, ["wino"])
    samples = _by_doc(stock["samples"]["wino"])
    record, ours = _medbench(folder, tiny_model_dir, "wino", tmp_path / "lb", capsys)["wino"]
    assert [s["gold"] for s in ours] == [int(row["answer"]) - 1 for row in rows]
    for want, have in zip(samples, ours):
        assert have["logliks"] == pytest.approx([float(ll) for ll, _ in want["filtered_resps"]], abs=1e-5)
        assert (have["acc"], have["acc_norm"]) == (want["acc"], want["acc_norm"])
    assert record["metrics"]["acc"]["value"] == pytest.approx(stock["results"]["wino"]["acc,none"])


def test_a_process_docs_drawing_from_numpy_draws_as_stock(tiny_model_dir, tmp_path, capsys, monkeypatch):
    import datasets
    import numpy as np

    rows = [{"q": f"Case {i}: which drug?", "opts": ["aspirin", "heparin", "warfarin", "placebo"], "ans": 0}
            for i in range(6)]
    folder = _task(tmp_path / "tasks", "npshuf", rows, """
        output_type: multiple_choice
        process_docs: !function utils.process_docs
        doc_to_text: "Q: {{q}}\\nA:"
        doc_to_choice: "{{opts}}"
        doc_to_target: ans
        metric_list: [{metric: acc}]
    """)
    (folder / "utils.py").write_text(
        "import numpy as np\n\n\ndef process_docs(dataset):\n    def shuffle(doc):\n"
        "        order = list(np.random.permutation(len(doc['opts'])))\n"
        "        return {'opts': [doc['opts'][j] for j in order], 'ans': order.index(doc['ans'])}\n"
        "    return dataset.map(shuffle)\n")
    # Each side reads its own datasets cache: a cached map would hand the other side's draws back.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache-medbench")
    np.random.seed(99)  # wherever numpy stands when a run starts (a fresh process: seeded from the OS)
    _, ours = _medbench(folder, tiny_model_dir, "npshuf", tmp_path / "lb", capsys, "--trust-task-code")["npshuf"]
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache-stock")
    stock = _by_doc(_stock(folder, tiny_model_dir, ["npshuf"])["samples"]["npshuf"])
    assert [s["gold"] for s in ours] == [s["target"] for s in stock]
