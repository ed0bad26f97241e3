"""LLM-defined difficulty: 1 - mean P(correct option) over a model ensemble and the cyclic orders of the options,
and the ``medbench difficulty`` command that writes it."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any, Callable

import click

from medbench.errors import MedbenchError
from medbench.small_inputs import no_repeats, refuse_foreign_output
from medbench.trainingdata import TrainingExample, data_file_metadata, examples_hash

from .labels import example_key, is_mcq_doc
from .orderings import EASY_MAX, MEDIUM_MAX, TIER_RULES, TIERS, assign_tiers

# One way of asking an item: (prompt, options) with the gold option first.
Variant = tuple[str, list[str]]


def render_shift(task: Any, example: TrainingExample, shift: int) -> Variant:
    """The item with its options rotated by ``shift`` (option j moves to j - shift) and rendered by the task's own
    templates, so the letters follow: the gold answer's letter moves with it."""
    doc = example.doc
    if not is_mcq_doc(doc) or shift == 0:
        return example.prompt, [example.completion, *example.rejected]
    choices = doc["choices"]
    k = len(choices)
    rotated = {**doc, "choices": choices[shift:] + choices[:shift], "gold": (doc["gold"] - shift) % k}
    config = task.config
    prompt = (config.description or "") + task.doc_to_text(rotated)
    options = [str(c) for c in task.doc_to_choice(rotated)]
    target = task.doc_to_target(rotated)
    gold = target if isinstance(target, int) else options.index(str(target))
    delimiter = config.target_delimiter
    return prompt, [delimiter + options[gold], *(delimiter + o for i, o in enumerate(options) if i != gold)]


def option_shifts(example: TrainingExample, option_orders: int | None, seed: int) -> list[int]:
    """Cyclic shifts to score: all k by default; ``option_orders`` of them drawn per item from the seed."""
    k = len(example.doc["choices"]) if is_mcq_doc(example.doc) else 1
    if option_orders is None or option_orders >= k:
        return list(range(k))
    return sorted(random.Random(f"{seed}:{example_key(example)}").sample(range(k), option_orders))


def permuted_items(task: Any, examples: list[TrainingExample], option_orders: int | None = None,
                   seed: int = 0) -> list[list[Variant]]:
    return [[render_shift(task, e, shift) for shift in option_shifts(e, option_orders, seed)] for e in examples]


def hflm_scorer(loaded: Any, batch_size: int) -> Callable[[list[tuple[str, str]]], list[float]]:
    """Log-likelihoods of (context, continuation) pairs by lm-eval's HFLM, as evaluation scores them."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=batch_size,
              device=str(next(loaded.model.parameters()).device))

    def score(pairs: list[tuple[str, str]]) -> list[float]:
        requests = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
        return [ll for ll, _greedy in lm.loglikelihood(requests, disable_tqdm=True)]

    return score


def p_correct(scorer: Any, items: list[Any], batch_size: int = 8,
              advance: Callable[[int], None] = lambda n: None) -> list[float]:
    """P(correct option) per item: the softmax over its options' log-likelihoods after the prompt, averaged over
    the item's variants (option orders). ``scorer``: a loaded model (scored by HFLM) or a function from
    (context, continuation) pairs to log-likelihoods; an item: a TrainingExample or a list of variants."""
    import torch

    score = scorer if callable(scorer) else hflm_scorer(scorer, batch_size)
    items = [[(i.prompt, [i.completion, *i.rejected])] if isinstance(i, TrainingExample) else i for i in items]
    probabilities = []
    step = batch_size * 4  # a few batches per call: HFLM sorts each call by length, progress moves between calls
    for start in range(0, len(items), step):
        chunk = items[start:start + step]
        logliks = iter(score([(prompt, option) for variants in chunk for prompt, options in variants
                              for option in options]))
        for variants in chunk:
            per_variant = []
            for _prompt, options in variants:
                scores = torch.tensor([next(logliks) for _ in options], dtype=torch.float64)
                per_variant.append(float(scores.softmax(0)[0]))  # the gold option comes first
            probabilities.append(sum(per_variant) / len(per_variant))
        advance(len(chunk))
    return probabilities


def difficulty_rows(examples: list[TrainingExample], p_by_model: dict[str, list[float]], tiers: str = "tertiles",
                    easy_max: float = EASY_MAX, medium_max: float = MEDIUM_MAX) -> list[dict[str, Any]]:
    """One row per item: its key, 1 - mean P(correct) over the ensemble, and its tier by ``tiers`` (a rule of
    orderings.TIER_RULES: tertiles of these items' scores by default - the reason is beside TIER_RULES)."""
    scores = [1 - sum(values[i] for values in p_by_model.values()) / len(p_by_model) for i in range(len(examples))]
    return [{"key": example_key(example), "doc_id": example.doc_id, "category": example.category,
             "difficulty": score, "tier": tier, "tier_rule": tiers,
             "p_correct": {model: values[i] for model, values in p_by_model.items()}}
            for i, (example, score, tier) in enumerate(zip(examples, scores,
                                                           assign_tiers(scores, tiers, easy_max, medium_max)))]


def retiered(rows: list[dict[str, Any]], tiers: str, easy_max: float = EASY_MAX,
             medium_max: float = MEDIUM_MAX) -> list[dict[str, Any]]:
    """The rows with their tiers recut by ``tiers`` from their scores (the scores do not depend on the rule)."""
    cut = assign_tiers([float(row["difficulty"]) for row in rows], tiers, easy_max, medium_max)
    return [{**row, "tier": tier, "tier_rule": tiers} for row, tier in zip(rows, cut)]


def count_tiers(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {tier: sum(row["tier"] == tier for row in rows) for tier in TIERS}


def load_task(task: str, task_metadata: dict[str, Any] | None = None) -> Any:
    from medbench.tasks import load_tasks

    return load_tasks([task], metadata={task: task_metadata} if task_metadata else None)[task]


def ensemble_difficulty(examples: list[TrainingExample], refs: list[str], task: str, batch_size: int = 8,
                        load_options: Any = None, easy_max: float = EASY_MAX, medium_max: float = MEDIUM_MAX,
                        option_orders: int | None = None, seed: int = 0,
                        task_metadata: dict[str, Any] | None = None, tiers: str = "tertiles") -> list[dict[str, Any]]:
    """Difficulty rows for ``examples``: 1 - mean P(correct option) over the ensemble ``refs`` and the option
    orders (module docstring), with tiers."""
    import gc

    from medbench.models import resolve_model
    from medbench.progress import new_progress

    if not refs or len(set(refs)) != len(refs):
        raise MedbenchError(f"the difficulty ensemble must list distinct model references, got {refs!r}",
                            "pass each ensemble member once, e.g. --models a,b,c")
    if not all(e.rejected for e in examples):
        raise MedbenchError(f"task {task!r} is not multiple choice", "difficulty needs answer options to score")
    items = permuted_items(load_task(task, task_metadata), examples, option_orders, seed)
    p_by_model: dict[str, list[float]] = {}
    with new_progress() as progress:
        for ref in refs:
            bar = progress.add_task(f"difficulty · {ref} · {task}", total=len(examples), status="")
            loaded = resolve_model(ref, load_options)
            p_by_model[ref] = p_correct(loaded, items, batch_size, lambda n: progress.advance(bar, n))
            del loaded
            gc.collect()  # one model in memory at a time
    return difficulty_rows(examples, p_by_model, tiers, easy_max, medium_max)


def cached_difficulty_file(task: str, examples: list[TrainingExample], refs: list[str], load_options: Any,
                           option_orders: int | None = None, task_metadata: dict[str, Any] | None = None,
                           tiers: str = "tertiles") -> Path:
    """The ensemble's difficulty file for these examples, scored once per (examples, ensemble, option orders) and
    cut into tiers by ``tiers`` over exactly these examples (the training split as trained on)."""
    from medbench.models import cache_dir
    from medbench.records import atomic_write_jsonl

    key = hashlib.blake2b(json.dumps([examples_hash(examples), refs, option_orders, "cyclic-v1"]).encode(),
                          digest_size=8).hexdigest()
    scored = cache_dir() / "difficulty" / f"{task}-{key}.jsonl"
    if not scored.exists():
        atomic_write_jsonl(scored, ensemble_difficulty(examples, refs, task, load_options=load_options,
                                                       option_orders=option_orders, task_metadata=task_metadata))
    path = scored.with_name(f"{task}-{key}-{tiers}.jsonl")
    if not path.exists():
        rows = [json.loads(line) for line in scored.read_text(encoding="utf-8").split("\n") if line.strip()]
        atomic_write_jsonl(path, retiered(rows, tiers))
    return path


@click.command("difficulty")
@click.option("--models", required=True, help="Comma-separated model references: the ensemble.")
@click.option("--task", required=True, help="Multiple-choice task whose training split is scored.")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="JSON-lines file to write (default: TASK-difficulty.jsonl).")
@click.option("--tiers", type=click.Choice(TIER_RULES), default="tertiles", show_default=True,
              help="tertiles: the easiest, middle and hardest third of the scored items; thresholds: --easy-max and "
                   "--medium-max (the study's MedQA cut-offs).")
@click.option("--easy-max", type=float, default=None, help=f"With --tiers thresholds: highest difficulty still easy "
                                                           f"[default: {EASY_MAX}].")
@click.option("--medium-max", type=float, default=None, help=f"With --tiers thresholds: highest difficulty still medium "
                                                             f"[default: {MEDIUM_MAX}].")
@click.option("--option-orders", type=int, default=None,
              help="Score N seeded cyclic orders of each item's options (default: all of them), to cancel letter bias.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of --option-orders' draw.")
@click.option("--data-file", "data_file", multiple=True,
              help="Your own data: TASK:SPLIT=PATH (e.g. medqa:train=~/medqa_train.jsonl); repeatable.")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--dtype", default="auto", show_default=True)
def difficulty_command(models, task, output, tiers, easy_max, medium_max, option_orders, seed, data_file, batch_size,
                       device, dtype) -> None:
    """Write 1 - mean P(correct option) over an ensemble for each training item, with easy/medium/hard tiers
    (by default the easiest, middle and hardest third of the items).

    P(correct) is averaged over the cyclic orders of the options (re-lettered), so answer-letter bias cancels.
    The file feeds `medbench train --plugin curriculum --difficulty-file FILE`.
    """
    from medbench.cli import console
    from medbench.console import terminal_safe
    from medbench.models import LoadOptions
    from medbench.records import atomic_write_jsonl, ensure_writable
    from medbench.trainingdata import load_training_examples

    refs = [ref.strip() for ref in models.split(",") if ref.strip()]
    if tiers == "tertiles" and (easy_max is not None or medium_max is not None):
        raise MedbenchError("--easy-max/--medium-max set cut-offs, but --tiers is tertiles",
                            "add --tiers thresholds, or drop the cut-offs")
    easy_max = EASY_MAX if easy_max is None else easy_max
    medium_max = MEDIUM_MAX if medium_max is None else medium_max
    if not 0 <= easy_max < medium_max <= 1:
        raise MedbenchError(f"tier thresholds need 0 <= --easy-max < --medium-max <= 1, got {easy_max}, {medium_max}",
                            "pass e.g. --easy-max 0.66 --medium-max 0.80")
    if batch_size <= 0:
        raise MedbenchError(f"--batch-size must be positive, got {batch_size}", "pass --batch-size 1 or more")
    if option_orders is not None and option_orders < 1:
        raise MedbenchError(f"--option-orders must be 1 or more, got {option_orders}",
                            "drop --option-orders to score every cyclic order")
    if option_orders is None and click.get_current_context().get_parameter_source("seed").name == "COMMANDLINE":
        raise MedbenchError("--seed draws --option-orders' subset of orders, and every order is scored without it",
                            "leave out --seed, or pass --option-orders N with it")
    pairs = []
    for value in data_file:
        target, eq, path = value.partition("=")
        if not eq or not target or not path:
            raise MedbenchError(f"--data-file {value!r} is not TASK:SPLIT=PATH",
                                "write --data-file medqa:train=/path/to/train.jsonl")
        refuse_unscored_file(target, task)
        pairs.append((target, path))
    metadata = data_file_metadata(task, no_repeats(pairs, "--data-file"))  # two files for a split: which one?
    path = Path(output or f"{task}-difficulty.jsonl")
    if path.is_dir():
        raise MedbenchError(f"--output {path} is a folder", "give a file name, e.g. --output medqa-difficulty.jsonl")
    refuse_foreign_output(path, "--output", ("key", "difficulty"))  # a previous difficulty file is written again
    ensure_writable(path.parent, "--output (a file in a writable folder)")  # before the models score anything
    rows = ensemble_difficulty(load_training_examples(task, metadata), refs, task, batch_size,
                               LoadOptions(dtype=dtype, device=device), easy_max, medium_max, option_orders, seed,
                               metadata, tiers)
    atomic_write_jsonl(path, rows)
    console.print(terminal_safe(f"{len(rows)} items of {task}: "
                                + ", ".join(f"{n} {tier}" for tier, n in count_tiers(rows).items())
                                + f" ({tiers}) → {path}"), highlight=False)


def refuse_unscored_file(target: str, task: str) -> None:
    """Only the training split of --task is scored: a file for another task or split would be read for nothing
    (a bare TASK=PATH is the test split, as in eval)."""
    from medbench.tasks import build_registry

    name, _, split = target.partition(":")
    training = build_registry().get(task).config.get("training_split") or "train"
    if name.strip() != task or (split.strip() or "test") != training:
        raise MedbenchError(f"--data-file {target} is never read: difficulty scores the {training!r} split of {task}",
                            f"give --data-file {task}:{training}=PATH, or leave that one out")
