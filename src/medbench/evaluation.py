"""The evaluation engine: one model x tasks -> lm-eval -> records and per-sample predictions.

The model is loaded once and handed to lm-eval as an in-memory HFLM, so the batch size the user asks for is
the one used (lm-eval ignores ``simple_evaluate(batch_size=...)`` when given a model object).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from unittest import mock

from medbench.answers import annotate_samples
from medbench.backends import open_for_evaluation
from medbench.data_file_splits import checked_data_files, refuse_unread_files, scoring_only
from medbench.dataparallel import join_processes, rank_zero_first, shard
from medbench.console import terminal_safe
from medbench.errors import MedbenchError
from medbench.filter_pipelines import add_pipeline_metrics, first_pipeline, metrics_from_results, split_pipelines
from medbench.generation import GenerationOptions, check_generation_budget, generating_tasks, generation_record
from medbench.judges import judges_for, run_task_judges
from medbench.lm_wrapper import SCORING_REVISION, RequestCache, request_cache_path, valid_batch_size
from medbench.metrics import metric_code, metric_registry, score_samples
from medbench.models import LoadedModel, LoadOptions
from medbench.portable import portable_path
from medbench.processed_docs import RequestDraws, data_hash, fewshot_hash, seed_document_draws
from medbench.record_schema import DataSource, MetricValue, ModelInfo, Record, RecordError, ScoringInfo, TaskInfo
from medbench.records import find_reusable, recorded_config, write_record
from medbench.scoring import (DEFAULT_RATIONALE_SHOTS, SCORING_MODES, checked_rationales, choice_index, column_key,
                              demonstration_field, variant_suffix)
from medbench.scoring_preflight import check_scoring
from medbench.task_documents import check_cluster_field, check_documents, check_fewshot
from medbench.task_limit import checked_limit, task_limit
from medbench.task_facts import data_source, task_config_hash
from medbench.tasks import USER_TASKS, build_registry, eval_split, load_tasks, template_refusal

ProgressCallback = Callable[[str, int, int], None]  # (task, done, total)
SCORERS = ("prefix", "hflm")  # log-likelihood scorers: medbench.fastlm, or lm-eval's stock HFLM


EVAL_SPLITS = ("test", "validation")
MAX_LIMIT = 10**9  # past it lm-eval's slicing fails with an islice error after the model has loaded


MAX_LABEL = 1000  # a row name: a sweep's are "factor=level,..." with a checkpoint's name


@dataclass
class EvalConfig:
    tasks: list[str]
    limit: int | float | None = None  # items per task; below 1, a fraction of each task's items (as lm-eval)
    num_fewshot: int | None = None
    batch_size: int | str = 8  # or "auto" (medbench.lm_wrapper.make_lm)
    seed: int = 1234
    output_dir: Path = Path("leaderboard")
    label: str | None = None  # leaderboard row name; defaults to the model reference
    chat_template: bool = False  # wrap prompts in the tokenizer's chat template (scored as its own column)
    scorer: str = "prefix"  # "prefix": medbench.fastlm (same results, faster); "hflm": stock lm-eval HFLM
    mode: str = "loglikelihood"  # multiple-choice scoring: "loglikelihood" or "generate" (see medbench.scoring)
    fewshot_rationales: bool | str = False  # few-shot examples carry rationales: the task's, or this field's
    judges: list[str] = field(default_factory=list)  # LLM-as-judge scorers added to every generation task
    judge_options: dict[str, str] = field(default_factory=dict)
    task_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-task overrides (data_files...)
    extra: dict[str, Any] = field(default_factory=dict)  # recorded as-is (e.g. the training run that made it)
    reuse_records: bool = True  # serve a record of the same weights hash, task, data and options from disk
    generation: GenerationOptions = field(default_factory=GenerationOptions)  # gen-kwargs, system prompt, repeats
    backend: str | None = None  # where the model runs (medbench.backends); None: in this process
    backend_options: dict[str, Any] = field(default_factory=dict)  # --base-url, timeouts, parallelism, ...
    # "test": the task's test split (its validation split when it has none); "validation": its validation split,
    # scored as its own column (TASK@validation), for choosing among checkpoints without touching the test items
    split: str = "test"

    def __post_init__(self):
        self.limit = checked_limit(self.limit)
        if self.limit is not None and self.limit > MAX_LIMIT:
            raise MedbenchError(f"--limit {self.limit} is more items than any task holds",
                                "leave --limit out to score the whole split")
        if self.limit is not None and self.limit <= 0:
            raise MedbenchError(f"--limit must be a positive number of examples, got {self.limit}",
                                "pass --limit 1 or more, or leave it out to use the whole split")
        if not valid_batch_size(self.batch_size):
            raise MedbenchError(f"--batch-size must be a positive whole number or auto, got {self.batch_size!r}",
                                "pass --batch-size 8, or --batch-size auto")
        if self.num_fewshot is not None and self.num_fewshot < 0:
            raise MedbenchError(f"--num-fewshot must be 0 or more, got {self.num_fewshot}", "pass --num-fewshot 0..K")
        if not self.tasks:
            raise MedbenchError("no tasks given", "pass --tasks medqa,medmcqa (see `medbench tasks`)")
        if self.label is not None and (not self.label.strip() or len(self.label) > MAX_LABEL
                                       or terminal_safe(self.label) != self.label):  # shown in every table
            raise MedbenchError(f"--label '{terminal_safe(self.label)[:60]}' is empty, longer than {MAX_LABEL} "
                                "characters or holds a control character (newline, tab, ESC, NUL)",
                                "pass a short one-line --label, e.g. --label my-model-v2")
        if self.split not in EVAL_SPLITS:
            raise MedbenchError(f"unknown split {self.split!r}", f"use one of {', '.join(EVAL_SPLITS)}")
        if self.scorer not in SCORERS:
            raise MedbenchError(f"unknown scorer {self.scorer!r}", f"pass --scorer {' or --scorer '.join(SCORERS)}")
        if self.mode not in SCORING_MODES:
            raise MedbenchError(f"unknown scoring mode {self.mode!r}", f"pass --mode {' or --mode '.join(SCORING_MODES)}")
        self.fewshot_rationales = checked_rationales(self.fewshot_rationales)
        if self.fewshot_rationales and not self.num_fewshot:
            if self.num_fewshot == 0:
                raise MedbenchError("--fewshot-rationales with --num-fewshot 0 shows no demonstrations",
                                    "pass --num-fewshot 1 or more, or leave it out for the default of "
                                    f"{DEFAULT_RATIONALE_SHOTS}")
            self.num_fewshot = DEFAULT_RATIONALE_SHOTS


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version(), "medbench_scoring": SCORING_REVISION}
    for dist in ("medbench", "lm_eval", "torch", "transformers", "peft", "trl", "accelerate", "datasets"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


@contextlib.contextmanager
def _without_lm_eval_env_probe():
    """lm-eval ends every call by running torch's collect_env (~3.6 s on 2 cores) and `git describe` (which
    prints 'fatal: not a git repository' outside a checkout). medbench records its own provenance instead."""
    import lm_eval.evaluator as evaluator

    with mock.patch.object(evaluator, "add_env_info", lambda storage: None), \
            mock.patch.object(evaluator, "get_git_commit_hash", lambda: None):
        yield


def _sample_row(sample: dict[str, Any], task: Any, cluster_field: str | None = None) -> dict[str, Any]:
    """One line of samples.jsonl: prompt, gold, prediction, and what re-scoring needs.

    For multiple-choice tasks ``gold`` and ``pred`` are choice indices in both scoring modes (``pred`` is None
    when a generated answer names no choice), so label metrics compare the modes directly.
    """
    responses = sample.get("filtered_resps") or sample.get("resps") or []
    doc = sample.get("doc") or {}
    choices = [str(c) for c in task.doc_to_choice(doc)] if task.config.doc_to_choice is not None else None
    logliks = response = None
    if task.config.output_type == "multiple_choice":
        logliks = [float(r[0]) if isinstance(r, (list, tuple)) else float(r) for r in responses]
        pred = max(range(len(logliks)), key=logliks.__getitem__) if logliks else None
    else:
        pred = responses[0] if responses else None
        pred = pred[0] if isinstance(pred, list) and pred else pred
        raw = sample.get("resps") or []
        response = raw[0][0] if raw and isinstance(raw[0], list) and raw[0] else None
        if choices is not None:  # generate-then-extract: the filter gave a label
            pred = choices.index(pred) if pred in choices else None
    args = sample.get("arguments") or []
    prompt = None
    if args:
        first = args[0]
        prompt = first[0] if isinstance(first, (list, tuple)) else first
    row = {
        "doc_id": sample.get("doc_id"),
        "prompt": prompt,
        "gold": sample.get("target") if choices is None else _gold_index(task, doc, sample.get("target"), choices),
        "pred": pred,
        "logliks": logliks,
    }
    if choices is not None:
        row["choices"] = choices
    if cluster_field and isinstance(doc, dict) and doc.get(cluster_field) not in (None, ""):  # resampled whole
        row["cluster"] = str(doc[cluster_field])
    if response is not None and response != pred:
        row["response"] = response
    for key in sample.get("metrics") or ("acc", "acc_norm", "exact_match"):
        if key in sample:
            row[key] = sample[key]
    return row


def _gold_index(task: Any, doc: dict[str, Any], target: Any, choices: list[str]) -> Any:
    """The answer as lm-eval's process_results reads it: a target that is a choice's text (pubmedqa's "yes") is
    that choice's index; a multiple-input task's answer is its doc_to_text."""
    return choice_index(task.doc_to_text(doc) if getattr(task, "multiple_input", False) else target, choices)


def scored_shots(task: Any, name: str, asked: int | None, note: bool = True) -> int:
    """The shots lm-eval scores: --num-fewshot, else the task's own num_fewshot (MedConceptsQA asks for 4); a task
    whose YAML fixes num_fewshot 0 stays zero-shot whatever --num-fewshot says (lm-eval ignores it there), and its
    record says so rather than the shots asked for."""
    own = task.config.num_fewshot
    if asked and own == 0 and note:
        warnings.warn(f"--num-fewshot {asked} does not apply to {name}: its YAML sets num_fewshot 0, which lm-eval "
                      "keeps; it is scored zero-shot", stacklevel=2)
    return (own if asked is None or own == 0 else asked) or 0


def backend_model_info(backend: Any, label: str) -> ModelInfo:
    """The record's ``model``: the label and what the backend says of the model; a backend (perhaps a plugin's)
    whose description does not fit the schema is named before anything is scored."""
    try:
        return ModelInfo.from_json(json.loads(json.dumps({**backend.model_info, "label": label}, default=str)),
                                   "model")
    except RecordError as exc:
        raise MedbenchError(f"backend {backend.model_info.get('backend')!r} describes the model wrongly ({exc})",
                            "fix that backend's model_info (see docs/writing-plugins.md, backends)") from None


def score_validation_split(tasks: dict[str, Any]) -> None:
    """Point each task's scored split at its validation split (lm-eval scores ``test_split`` when set)."""
    for name, task in tasks.items():
        validation = task.config.validation_split
        if not validation or validation == task.config.test_split:  # no file can make one: the YAML names none
            raise MedbenchError(f"task {name!r} has no validation split apart from its test split",
                                "choose on a task with a validation split, or score a copy of its YAML that sets "
                                "validation_split (--include-path)")
        if not task.has_validation_docs() or len(task.validation_docs()) == 0:  # a file gave only the test split
            raise MedbenchError(f"task {name!r} has no {validation!r} items in its data",
                                f"give one with --data-file {name}:{validation}=PATH")
        task.config.test_split = validation
        task.task_docs = task.eval_docs  # what lm-eval read at construction


def evaluate(model_ref: str | None, config: EvalConfig, *, loaded: LoadedModel | None = None,
             load_options: LoadOptions | None = None, progress: ProgressCallback | None = None,
             data_parallel: bool = False) -> list[dict[str, Any]]:
    """Score one model on ``config.tasks``; write one record per task; return the records. ``data_parallel``: this
    process is one of those `accelerate launch` started, each scoring a share (medbench.dataparallel); rank 0
    writes and returns the records, the others return none."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    registry = build_registry()
    names = registry.expand(config.tasks)  # groups become their member tasks; unknown names fail before loading
    # Every --data-file names a task scored and a split it has; a file with no split fills the split it scores.
    config = dataclasses.replace(config, task_metadata=checked_data_files(config.task_metadata, names, registry))
    seed_document_draws(config.seed)
    tasks = load_tasks(names, registry, config.task_metadata, mode=config.mode,
                       fewshot_rationales=config.fewshot_rationales, generation=config.generation)
    draws = RequestDraws(len(tasks))  # where stock lm-eval's requests start drawing from Python's random
    generating = generating_tasks(config.generation, {n: task.config.output_type for n, task in tasks.items()})
    if config.split == "validation":
        score_validation_split(tasks)
    for name, task in tasks.items():  # before the model is loaded
        check_fewshot(task, name, scored_shots(task, name, config.num_fewshot), config.fewshot_rationales)
        limit = task_limit(task, config.limit)
        check_documents(task, registry.get(name), limit)  # answers among the choices, fields present
        check_cluster_field(task, registry.get(name), limit)  # each item's cluster, where named
        check_scoring(task, name, registry.get(name))  # its metrics take their options, not after the last request
    if scoring_only():  # after the checks above, whose messages say more (a split with no rows)
        refuse_unread_files(config, registry)
    judges = judges_for(names, registry, config.judges, config.mode, config.judge_options)
    # A judge's settings with no judge asked for (and none in the tasks' metadata) would silently do nothing; a
    # judge asked for that suits none of these tasks (a recipe's likert on MCQ cells) is fine.
    if config.judge_options and not config.judges and not any(judges.values()):
        given = ", ".join(sorted(config.judge_options))
        raise MedbenchError(f"judge settings ({given}) were given, but no judge scores {', '.join(names)}",
                            "pass --judge likert (or another judge from `medbench plugins`), or drop the judge options")
    accelerator = join_processes() if data_parallel else None
    progress = progress if accelerator is None or accelerator.is_main_process else None
    with rank_zero_first(accelerator):  # rank 0 loads first: it may fill a model cache the others then read
        backend = open_for_evaluation(model_ref, config, tasks, loaded, load_options, progress)
    # A path's default label is the path as the record stores it (medbench.portable): no machine's absolute path.
    label = config.label or portable_path(backend.user_ref or backend.ref, Path(config.output_dir))
    model_hash, lm = backend.model_hash, backend.lm
    backend_model_info(backend, label)  # a wrong description fails here, before any scoring
    check_generation_budget(lm, {n: tasks[n] for n in generating if n in tasks})
    if accelerator is not None:
        shard(lm, accelerator)
    registered_metrics = metric_registry()

    records = []
    for name, task in tasks.items():
        entry = registry.get(name)
        config_hash = task_config_hash(entry)
        shots = scored_shots(task, name, config.num_fewshot, note=False)
        # What the task uses of the generation controls is part of its record's identity (key, reuse, cache).
        task_config = dataclasses.replace(config, generation=config.generation.applied(name in generating))
        scored_hash, demonstrations = data_hash(task.eval_docs), fewshot_hash(task, shots)
        extra_metric_names = list(entry.metadata.get("medbench_metrics") or [])
        task_versions = {**versions(), **metric_code(extra_metric_names, registered_metrics)}
        user_splits = set((config.task_metadata.get(name) or {}).get("data_files") or {})
        own_data = scored_hash if eval_split(task) in user_splits else None
        if demonstrations and user_splits - {eval_split(task)}:  # the user's file may be the demonstrations' pool
            own_data = data_hash([scored_hash, demonstrations])
        record_key = column_key(name, shots, variant_suffix(entry.config, config.mode, config.fewshot_rationales,
                                                             task_config.generation), config.chat_template,
                                own_data, config.split)
        # --- cache: keyed by the weights' content hash (never the path), the data's hash, the task's resolved
        # configuration (YAML after includes, templates, few-shot settings, its code) and every option -----------
        if config.reuse_records and backend.content_addressed:
            reused = find_reusable(config.output_dir, label, model_hash, name, scored_hash,
                                   task_config, task_versions)
            if reused is not None and reused.get("task", {}).get("config_hash") == config_hash \
                    and reused["task"].get("fewshot_hash") == demonstrations:
                records.append(reused)
                continue
        # ---------------------------------------------------------------------------------------------------------
        cache = RequestCache(request_cache_path(config.output_dir, label, model_hash, record_key, config_hash
                                                + task_config.generation.cache_salt(config.seed), config.scorer),
                             config.output_dir) \
            if config.reuse_records and backend.content_addressed and getattr(lm, "world_size", 1) == 1 \
            else None  # one writer per file; a served model's requests are never served from disk
        lm.task_name = name
        lm.request_cache = cache
        started = time.time()
        try:
            with _without_lm_eval_env_probe(), draws.building_requests():
                results = lm_eval.simple_evaluate(
                    model=lm, tasks=[task], num_fewshot=config.num_fewshot, limit=config.limit,
                    apply_chat_template=config.chat_template,
                    system_instruction=config.generation.system_instruction(config.chat_template,
                                                                               bool(task.config.description)),
                    log_samples=True, bootstrap_iters=1000, random_seed=None,
                    numpy_random_seed=config.seed,
                    torch_random_seed=config.seed, fewshot_random_seed=config.seed,
                    # Without a manager lm-eval indexes its ~13k bundled YAMLs (~20 s) although the task is built.
                    task_manager=TaskManager(include_path=str(entry.path.parent), include_defaults=False),
                )
        except Exception as exc:
            refused = template_refusal(entry, exc)
            if refused is not None:
                raise refused from None
            if isinstance(exc, OverflowError):  # stock lm-eval fails alike: its `perplexity` is exp(-mean total ll)
                raise MedbenchError(f"task {name!r}: a metric overflowed after scoring ({exc}); lm-eval's "
                                    "`perplexity` aggregation exponentiates whole documents' log-likelihoods",
                                    "score a copy of its YAML without that metric (--include-path); "
                                    "word_perplexity and byte_perplexity stay finite") from None
            if type(exc).__name__ == "SecurityError" and config.chat_template:  # jinja2's sandbox, in the model's
                raise MedbenchError(f"the chat template of {backend.ref} tried an operation Jinja's sandbox forbids "
                                    f"({' '.join(str(exc).split())[:120]})", "use the model without --chat-template, "
                                    "or fix its tokenizer_config.json chat_template") from None
            if entry.plugin == USER_TASKS and not isinstance(exc, MedbenchError):
                # A user's task folder: its YAML or data rows are the likely cause; name them, not medbench.
                detail = " ".join(str(exc).split())[:200] or type(exc).__name__
                raise MedbenchError(f"task {name!r} ({entry.path}) failed while lm-eval built or scored it: "
                                    f"{type(exc).__name__}: {detail}",
                                    "check its templates, filters and data rows against each other (run with "
                                    "--debug for the traceback)") from exc
            raise
        finally:
            lm.request_cache = None
        if results is None:  # non-zero rank under accelerate: rank 0 writes
            continue
        duration = time.time() - started
        # One row per item: a task with several filter pipelines logs each item once per pipeline.
        logged, other_pipelines = split_pipelines(results["samples"][name])
        samples = [_sample_row(s, task, entry.metadata.get("cluster_field")) for s in logged]
        add_pipeline_metrics(samples, other_pipelines)
        metrics = metrics_from_results(results["results"][name], (results.get("higher_is_better") or {}).get(name),
                                       first_pipeline(results["samples"][name]))
        for metric_name, value in score_samples(extra_metric_names, samples, registered_metrics).items():
            metrics.setdefault(metric_name, {"value": value, "stderr": None})
        judge_metrics, judged = run_task_judges(judges.get(name, []), entry, samples, config.judge_options, progress)
        metrics.update(judge_metrics)
        primary = entry.primary_metric if entry.primary_metric in metrics else None
        if primary is None and entry.primary_metric == "acc" and "exact_match" in metrics:
            primary = "exact_match"  # accuracy of the extracted answer in generate mode
        primary = primary or next(iter(metrics), None)
        metrics.update(annotate_samples(samples, logged, task, task_config.generation.repeats,
                                        primary))
        generation = generation_record(task, task_config.generation, config.seed, samples)
        record = Record(
            record_key=record_key,
            task=TaskInfo(name=name, version=entry.metadata.get("version"), plugin=entry.plugin, yaml=str(entry.path),
                          split=eval_split(task), num_fewshot=shots, data_hash=scored_hash,
                          fewshot_hash=demonstrations,
                          split_size=len(task.eval_docs), config_hash=config_hash,
                          output_type=task.config.output_type,
                          scoring=ScoringInfo(mode="generate" if task.config.output_type == "generate_until"
                                              else config.mode, fewshot_rationales=bool(config.fewshot_rationales),
                                              rationale_field=demonstration_field(entry.config,
                                                                                  config.fewshot_rationales))),
            model=backend_model_info(backend, label),  # after scoring: a server names what answered
            judges=judged or None,
            metrics={metric: MetricValue.of(value) for metric, value in metrics.items()},
            primary_metric=primary,
            score=metrics[primary]["value"] if primary else None,
            stderr=metrics[primary]["stderr"] if primary else None,
            n=len(samples),
            data_source=DataSource.of(data_source(entry, task)),
            resumed_requests=cache.served if cache is not None and cache.served else None,
            config=recorded_config(task_config),
            generation=generation or None,
            seed=config.seed,
            versions=task_versions,
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            duration_s=round(duration, 3),
            extra=config.extra or None,
        )
        path = write_record(config.output_dir, record, samples)
        if cache is not None:
            cache.discard()  # the record now holds every result
        records.append({**record.to_json(), "_path": str(path)})
    return records
