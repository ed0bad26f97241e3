"""Choosing one of a step's checkpoints on a held-out split before anything builds on it (a recipe step's
``select``).

A step written ``{plugin: sft, ..., options: {num_epochs: 4, save_every_epoch: true}, select: {split: validation,
tasks: [uti]}}`` trains once, then every checkpoint it saved is scored on those tasks' validation splits, with the
cell's own evaluation settings (mode, shots, chat template, decoding, limit; its judges only where a choice reads
a judge's score: ``metrics: {TASK: "judge:likert"}``), and the best one by the
mean of the tasks' primary metrics is what the next step starts from and, when it is the cell's last step, the one
model the cell scores on test. A tie goes to the earliest checkpoint (the least training), or with ``ties:
middle`` to the one nearest the middle. ``metrics: {task: metric}`` chooses on another of a task's metrics than
its primary one (e.g. macro_f1), and ``scoring: {mode: generate, gen_kwargs: ...}`` scores the choice with those
settings in place of the cell's, so cells that read one step differently (by log-likelihood and by generation)
share one step and one choice. ``over: {learning_rate: [1.0e-5, 2.0e-5]}`` trains the step once per value (each
a step of its own, with that option set) and chooses among all their checkpoints: a hyperparameter chosen on
validation the way the epochs are, listed in the order a tie should prefer. Test items never take part, so the
test score of the chosen checkpoint carries no selection bias; this is early stopping on validation, as
``load_best_model_at_end`` does it (a checkpoint after k of n epochs saw the learning rate of an n-epoch schedule,
not of a k-epoch run).

The choice is written to ``selection.json`` in the step's folder (every candidate's validation scores, the one
chosen, whether it was the last one: a choice at the edge says more training might have helped), its validation
records to ``selection/`` beside it, and the records of every cell that used it carry it under
``extra.selected_checkpoints``. The step's identity includes the selection and the evaluation settings it reads,
so cells that would choose differently never share a step folder, and a re-run reuses the choice.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import Any, Callable

from medbench.errors import MedbenchError
from medbench.records import atomic_write_json, read_regular_text
from medbench.scoring import SCORING_MODES

SELECTION_FILE = "selection.json"
SPLIT = "validation"  # the held-out split medbench scores beside test (medbench.evaluation.EVAL_SPLITS)
TIES = ("first", "middle")
SELECT_KEYS = {"split", "tasks", "ties", "metrics", "scoring", "over"}
MAX_VARIANTS = 16  # trainings one step's ``over`` may ask for: each is a full training run
# The evaluation settings a validation score depends on (the judges too, where the choice reads a judge's score).
EVAL_SETTINGS = ("mode", "num_fewshot", "fewshot_rationales", "chat_template", "limit", "gen_kwargs",
                 "system_prompt", "repeats")


def read_select(value: Any, step_task: str, where: str) -> dict[str, Any]:
    """A step's ``select`` in its full form ``{split, tasks, ties, metrics, scoring}``: tasks default to the
    step's own task. A malformed one is a MedbenchError naming ``where`` and the form to write."""
    form = ("write select: {split: validation, tasks: [TASK]} (tasks default to the step's task; ties: first or "
            "middle; metrics: {TASK: METRIC}; scoring: {mode: generate, ...}; over: {OPTION: [VALUE, ...]})")
    if not isinstance(value, dict) or set(value) - SELECT_KEYS:
        raise MedbenchError(f"{where}: select {str(value)[:80]!r} is not a mapping of "
                            f"{', '.join(sorted(SELECT_KEYS))}", form)
    tasks = value.get("tasks", [step_task])
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) and t for t in tasks):
        raise MedbenchError(f"{where}: select tasks {str(tasks)[:80]!r} is not a list of task names", form)
    if value.get("split", SPLIT) != SPLIT:
        raise MedbenchError(f"{where}: select split {value.get('split')!r} is not {SPLIT!r}: a step chooses on "
                            "the held-out split scored beside test, never on test", form)
    if value.get("ties", "first") not in TIES:
        raise MedbenchError(f"{where}: select ties {value.get('ties')!r} is not one of {', '.join(TIES)}", form)
    metrics = value.get("metrics") or {}
    if not isinstance(metrics, dict) or not all(isinstance(k, str) and k in tasks and isinstance(v, str) and v
                                                for k, v in metrics.items()):
        raise MedbenchError(f"{where}: select metrics {str(metrics)[:80]!r} must map its tasks to metric names", form)
    scoring = value.get("scoring") or {}
    if not isinstance(scoring, dict) or set(scoring) - set(EVAL_SETTINGS) \
            or scoring.get("mode", SCORING_MODES[0]) not in SCORING_MODES:
        raise MedbenchError(f"{where}: select scoring {str(scoring)[:80]!r} must set only "
                            f"{', '.join(EVAL_SETTINGS)} (mode: {' or '.join(SCORING_MODES)})", form)
    over = value.get("over") or {}
    if not isinstance(over, dict) or not all(
            isinstance(k, str) and k and isinstance(v, list) and v and len(v) == len({json.dumps(x) for x in v})
            and all(isinstance(x, (str, int, float, bool)) for x in v) for k, v in over.items()):
        raise MedbenchError(f"{where}: select over {str(over)[:80]!r} must map trainer options to lists of distinct "
                            "values", form)
    trainings = math.prod(len(v) for v in over.values())
    if trainings > MAX_VARIANTS:
        raise MedbenchError(f"{where}: select over asks for {trainings} trainings of one step (the most is "
                            f"{MAX_VARIANTS})", "give over: fewer values")
    return {"split": SPLIT, "tasks": list(dict.fromkeys(tasks)), "ties": value.get("ties", "first"),
            **({"metrics": dict(metrics)} if metrics else {}), **({"scoring": dict(scoring)} if scoring else {}),
            **({"over": {k: list(v) for k, v in over.items()}} if over else {})}


def variant_options(select: dict[str, Any]) -> list[dict[str, Any]]:
    """The option settings ``select.over`` trains the step with, one per training, in the order given (the
    first option varies slowest); [] without ``over``."""
    over = select.get("over") or {}
    return [dict(zip(over, values)) for values in itertools.product(*over.values())] if over else []


def selection_identity(select: dict[str, Any], evaluation: dict[str, Any], fingerprints: list[str]) -> dict:
    """What a selecting step's identity adds: the selection, the evaluation settings it scores with and the data of
    the tasks it scores."""
    return {"select": select, "eval": selection_settings(select, evaluation), "data": fingerprints}


def selection_settings(select: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
    """The evaluation settings a choice is scored with: the cell's, where ``select.scoring`` does not set them."""
    settings = {k: (select.get("scoring") or {}).get(k, evaluation.get(k)) for k in EVAL_SETTINGS}
    if reads_a_judge(select):
        settings.update(judges=evaluation.get("judges"), judge_options=evaluation.get("judge_options"))
    return settings


def reads_a_judge(select: dict[str, Any]) -> bool:
    """Whether the choice is made on a judge's score (``metrics: {TASK: "judge:NAME"}``): the cell's judges then
    score the candidates, so a step is not chosen on one metric and compared on another."""
    return any(str(metric).startswith("judge:") for metric in (select.get("metrics") or {}).values())


def tie_side(name: str) -> int:
    """0 (the earlier) or 1 (the later): which of two best candidates equally far from the middle a ``ties: middle``
    choice takes, drawn from ``name`` (a step's or a cell's identity, so it differs by seed). "Then the earlier",
    every time, took the less trained (lower rate, fewer epochs, the lower t) of the two: one direction in every
    cell, which is what the middle rule was there to avoid; a side drawn per step leans in neither."""
    return hashlib.sha256(name.encode()).digest()[0] & 1


def choose(candidates: list[dict[str, Any]], ties: str = "first", side: int = 0) -> int:
    """The index of the best candidate by ``value`` (higher is better; None never wins): a tie goes to the earliest,
    or with ``ties: middle`` to the one nearest the middle of the candidates (two equally near: ``side``, tie_side)."""
    scored = [i for i, c in enumerate(candidates) if c.get("value") is not None and math.isfinite(c["value"])]
    if not scored:
        raise MedbenchError("no checkpoint of the step has a validation score to choose by",
                            "check the selection tasks' validation splits and the metrics select names, or remove "
                            "select from the step")
    middle = (len(candidates) - 1) / 2 if ties == "middle" else -math.inf
    later = side == 1 and ties == "middle"
    return max(scored, key=lambda i: (candidates[i]["value"], -abs(i - middle), i if later else -i))


def candidate_value(records: list[dict[str, Any]], tasks: list[str], higher_is_better: Callable[[str], bool],
                    metrics: dict[str, str] | None = None) -> tuple[float | None, dict[str, float | None]]:
    """The mean over ``tasks`` of each one's primary metric, or the one ``metrics`` names for it (negated where
    lower is better), and the scores."""
    scores: dict[str, float | None] = {t: None for t in tasks}
    signs: dict[str, int] = {}
    for record in records:
        name = (record.get("task") or {}).get("name")
        metric = (metrics or {}).get(name) or str(record.get("primary_metric"))
        value = ((record.get("metrics") or {}).get(metric) or {}).get("value")
        if name in scores and isinstance(value, (int, float)) and not isinstance(value, bool):
            scores[name] = float(value)
            signs[name] = 1 if higher_is_better(metric) else -1
    if any(v is None or not math.isfinite(v) for v in scores.values()):
        return None, scores
    return sum(signs[t] * v for t, v in scores.items()) / len(scores), scores


def summary(selection: dict[str, Any]) -> dict[str, Any]:
    """What a record says of a choice: the step, the checkpoint, its position among its training's checkpoints and
    whether it was the last; with ``over``, the option values chosen and which numeric ones are the least or most
    of their list (a choice at the edge of the grid says a value beyond it might have done better)."""
    chosen = selection["candidates"][selection["chosen"]]
    options = _mapping(chosen.get("options"))
    siblings = [i for i, c in enumerate(selection["candidates"]) if _mapping(c.get("options")) == options]
    over = _mapping(selection.get("over"))
    edge = [k for k, v in options.items() if isinstance(over.get(k), list) and len(over[k]) > 1
            and _numbers(over[k]) and v in (min(over[k]), max(over[k]))]
    return {"step": selection["step"], "checkpoint": Path(chosen["path"]).name, "epoch": chosen.get("epoch"),
            "position": siblings.index(selection["chosen"]) + 1, "of": len(siblings),
            "last": selection["chosen"] == siblings[-1],
            **({"options": options, "edge": edge} if options else {}),
            "split": selection["split"], "tasks": selection["tasks"], "value": chosen["value"]}


def _mapping(value: Any) -> dict[str, Any]:
    """A written file's mapping, or {} where it holds something else (a damaged file is read, never a crash)."""
    return value if isinstance(value, dict) else {}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _numbers(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def select_checkpoint(directory: Path, step_name: str, select: dict[str, Any], checkpoints: list[dict[str, Any]],
                      config: Any, score: Callable[..., list[dict[str, Any]]]) -> dict[str, Any]:
    """Score each of a finished step's ``checkpoints`` on ``select``'s tasks (``config``: the cell's EvalConfig,
    turned to the validation split here) and return the selection (written to ``directory/selection.json``; a
    re-run reads it back). ``score(checkpoints, config, label)`` returns each checkpoint's records."""
    from medbench.leaderboard.comparisons import metric_higher_is_better
    from medbench.metrics import metric_registry

    marker = directory / SELECTION_FILE
    if marker.is_file():
        return read_selection(marker, checkpoints)
    registry = metric_registry()
    judged = reads_a_judge(select)  # judges cost a model of their own: only where the choice reads one
    config = dataclasses.replace(config, tasks=list(select["tasks"]), split=SPLIT,
                                 judges=config.judges if judged else [], judge_options=config.judge_options if judged
                                 else {}, output_dir=directory / "selection",
                                 generation=_as_the_cell_applies(select, config))
    candidates = []
    for checkpoint in checkpoints:
        records = score(checkpoint, config, f"{step_name}/{Path(checkpoint['path']).name}")
        value, scores = candidate_value(records, select["tasks"], lambda metric: metric_higher_is_better(
            metric, registry, next((r for r in records if metric in (r.get("metrics") or {})), None)),
                                        select.get("metrics"))
        candidates.append({"path": checkpoint["path"], "step": checkpoint.get("step"), "epoch": checkpoint.get("epoch"),
                           **({"options": checkpoint["variant"]} if checkpoint.get("variant") else {}),
                           "value": value, "scores": scores})
    selection = {"step": step_name, "split": SPLIT, "tasks": list(select["tasks"]), "ties": select["ties"],
                 **({"over": select["over"]} if select.get("over") else {}),
                 "candidates": candidates, "chosen": choose(candidates, select["ties"], tie_side(step_name))}
    atomic_write_json(marker, selection)
    return selection


def _as_the_cell_applies(select: dict[str, Any], config: Any) -> Any:
    """The cell's generation settings as its own scoring applied them to ``select``'s tasks: where none of them
    generates (a choice read on log-likelihood in a cell whose other tasks generate), only the system prompt,
    which the eval would otherwise refuse as generation settings given to no generating task."""
    from medbench.scoring import scored_output_type
    from medbench.tasks import build_registry

    tasks = build_registry()
    generates = any(scored_output_type(tasks.get(name).config, config.mode) == "generate_until"
                    for name in select["tasks"])
    return config.generation.applied(generates)


def read_selection(marker: Path, checkpoints: list[dict[str, Any]]) -> dict[str, Any]:
    """A written selection, checked against the step's checkpoints; a damaged one is one line naming it."""
    paths = [c["path"] for c in checkpoints]
    try:
        selection = json.loads(read_regular_text(marker, limit=1 << 20))
        chosen = selection["candidates"][selection["chosen"]]
        if isinstance(selection["chosen"], int) and selection["chosen"] >= 0 and chosen["path"] in paths:
            return selection
    except (OSError, ValueError, RecursionError, KeyError, TypeError, IndexError):
        pass
    raise MedbenchError(f"the checkpoint selection {marker} is damaged or names a checkpoint the step does not have",
                        f"delete {marker} to choose again (the step's checkpoints are kept)")


def chosen_checkpoint(selection: dict[str, Any], checkpoints: list[dict[str, Any]]) -> dict[str, Any]:
    """The step's checkpoint entry the selection chose, as the next step and the cell's scoring take it."""
    path = selection["candidates"][selection["chosen"]]["path"]
    return copy.deepcopy(next(c for c in checkpoints if c["path"] == path))


def report_lines(chosen: dict[str, list[dict[str, Any]]]) -> list[str]:
    """report.md's list of the checkpoints steps chose, per cell label (``chosen``: each cell's
    ``extra.selected_checkpoints``); a choice of the last checkpoint is marked, since more training might have
    helped there."""
    from medbench.console import markdown_text

    if not chosen:
        return []
    lines = ["Checkpoints chosen on validation (a step's select; \"last\": the final one was best, so more training "
             "might have helped):"]
    for label, picks in sorted(chosen.items()):
        parts = [f"{p.get('step')}: {p.get('checkpoint')} ("
                 + "".join(f"{k}={v}{' (edge of grid)' if k in _listed(p.get('edge')) else ''}, "
                           for k, v in _mapping(p.get("options")).items())
                 + f"{p.get('position')} of {p.get('of')}"
                 + (f", epoch {p['epoch']:g}" if _numbers([p.get("epoch")]) else "")
                 + (", last" if p.get("last") and _numbers([p.get("of")]) and p["of"] > 1 else "") + ")"
                 + (f", {', '.join(map(str, _listed(p.get('tasks'))))} = {p['value']:.3f}"
                    if _numbers([p.get("value")]) else "")
                 for p in _listed(picks) if isinstance(p, dict)]  # records are read as found: never a crash
        lines.append(f"- {markdown_text(label)}: {markdown_text('; '.join(parts))}")
    return lines + [""]
