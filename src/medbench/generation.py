"""Generation controls for generate-mode scoring: sampling settings, a system prompt, reasoning stripping and
repeated samples with a majority vote and pass@k.

* ``--gen-kwargs max_new_tokens=64,temperature=0.7,top_p=0.9,until=["\\n\\n"]``: checked here, so an unknown key
  or a bad value is one line, not a failure deep inside ``generate``. The user's settings replace the task's.
* ``--system-prompt TEXT`` / ``--system-prompt-file PATH``: lm-eval's ``system_instruction`` (a system turn with
  ``--chat-template``, the prompt's first paragraph without); it changes the prompt, so it applies to every task.
* Reasoning blocks (``<think>...</think>`` and the others in medbench.answers.REASONING_DELIMITERS) are removed
  from every generated answer before any answer is extracted: a reasoning model's thinking is never its answer.
* ``--repeats k`` samples k answers per item; the record's score is the majority answer's, and pass@k (Chen et
  al. 2021's unbiased estimator) is recorded beside it.

Gen-kwargs and repeats mean nothing to a task scored by log-likelihood: such a task ignores them (its record
says so by not carrying them) with a printed note; a run in which no task generates is refused.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medbench.answers import MajorityVoteFilter, StripReasoningFilter
from medbench.errors import MedbenchError
from medbench.records import read_regular_text

# Accepted spellings -> the name lm-eval's HF backend takes (lm-eval's own aliases for the token budget).
GEN_KWARG_NAMES = {"max_new_tokens": "max_gen_toks", "max_gen_toks": "max_gen_toks", "max_tokens": "max_gen_toks",
                   "temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "until": "until",
                   "stop": "until"}
MAX_REPEATS = 1000
GEN_KWARGS_EXAMPLE = "--gen-kwargs max_new_tokens=64,temperature=0.7,top_p=0.9"


# ------------------------------------------------------------------------------------------ gen-kwargs


def _split_pairs(text: str) -> list[str]:
    """``a=1,b=[2,3],c="x,y"`` -> its pairs: commas inside quotes or brackets do not split."""
    pairs, current, quote, depth, escaped = [], [], "", 0, False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            pairs.append("".join(current))
            current = []
            continue
        current.append(char)
    pairs.append("".join(current))
    return [pair.strip() for pair in pairs if pair.strip()]


def _literal(text: str) -> Any:
    """A value as typed: JSON when it is JSON (numbers, lists, quoted strings), else the text with \\n and \\t
    read as the characters they name."""
    text = text.strip()
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        text = json.dumps(text[1:-1])
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        if text and text[0] in "[{" and text[-1] not in "]}":  # a list or mapping cut short, not a plain word
            raise MedbenchError(f"{text!r} starts a JSON list or mapping but does not end it",
                                'close it, e.g. until=["\\n\\n","Question:"], or quote a literal stop') from None
        return text.replace("\\n", "\n").replace("\\t", "\t")


def _number(key: str, value: Any, option: str, whole: bool) -> float | int:
    if isinstance(value, str):
        value = _literal(value)
    ok = isinstance(value, int) if whole else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or (isinstance(value, float) and not math.isfinite(value)):
        example = "64" if whole else "0.7"
        raise MedbenchError(f"{option} {key}={value!r} is not {'a whole number' if whole else 'a number'}",
                            f"write {key}={example}")
    return value


def parse_gen_kwargs(value: str | dict[str, Any] | None, option: str = "--gen-kwargs") -> dict[str, Any]:
    """``key=value,...`` (or a mapping, from a config file) -> checked settings under lm-eval's names."""
    if value is None or value == "" or value == {}:
        return {}
    if isinstance(value, str):
        raw: dict[str, Any] = {}
        for pair in _split_pairs(value):
            key, eq, item = pair.partition("=")
            if not eq or not key.strip():
                raise MedbenchError(f"{option} part {pair!r} is not KEY=VALUE", f"write {GEN_KWARGS_EXAMPLE}")
            if key.strip() in raw:
                raise MedbenchError(f"{option} sets {key.strip()!r} twice", "give each setting once")
            raw[key.strip()] = item
    elif isinstance(value, dict):
        raw = {str(k): v for k, v in value.items()}
    else:
        raise MedbenchError(f"{option} must be KEY=VALUE pairs or a mapping, got {type(value).__name__}",
                            f"write {GEN_KWARGS_EXAMPLE}")
    settings: dict[str, Any] = {}
    for key, item in raw.items():
        name = GEN_KWARG_NAMES.get(key.replace("-", "_"))
        if name is None:
            close = difflib.get_close_matches(key, list(GEN_KWARG_NAMES), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise MedbenchError(f"{option} has no setting {key!r}{hint}",
                                f"use {', '.join(sorted(GEN_KWARG_NAMES))}, e.g. {GEN_KWARGS_EXAMPLE}")
        if name in settings:
            raise MedbenchError(f"{option} sets {name} twice (as {key!r} and another spelling)", "give it once")
        settings[name] = _checked(name, key, item, option)
    temperature = settings.get("temperature", 0)
    for name in ("top_p", "top_k"):
        if name in settings and not temperature > 0:
            raise MedbenchError(f"{option} {name} shapes sampling, but decoding is greedy (temperature 0)",
                                f"add temperature=0.7 (or any value above 0), or drop {name}")
    return settings


def _checked(name: str, key: str, value: Any, option: str) -> Any:
    if name in ("max_gen_toks", "top_k"):
        number = _number(key, value, option, whole=True)
        if number < 1:
            raise MedbenchError(f"{option} {key}={number} must be 1 or more", f"write {key}=64" if name ==
                                "max_gen_toks" else f"write {key}=50")
        return number
    if name == "temperature":
        number = _number(key, value, option, whole=False)
        if number < 0:
            raise MedbenchError(f"{option} temperature={number} is negative", "write temperature=0 (greedy) or above")
        return float(number)
    if name == "top_p":
        number = _number(key, value, option, whole=False)
        if not 0 < number <= 1:
            raise MedbenchError(f"{option} top_p={number} is outside (0, 1]", "write top_p=0.9")
        return float(number)
    stops = _literal(value) if isinstance(value, str) else value  # until
    stops = [stops] if isinstance(stops, str) else stops
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise MedbenchError(f"{option} {key}={value!r} is not a stop sequence or a list of them",
                            f'write {key}="\\n\\n" or {key}=["\\n\\n","Question:"]')
    for stop in stops:
        _require_utf8(stop, f"{option} {key}")
    return stops


def _require_utf8(text: str, what: str) -> None:
    """Bytes from the shell that are not UTF-8 arrive as lone surrogates, which the tokenizer fails on only once the
    model has loaded: refused up front instead."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MedbenchError(f"{what} holds bytes that are not UTF-8 text ({ascii(text)[:60]})",
                            "pass UTF-8 text: convert its source first (e.g. iconv -f latin1 -t utf-8)") from None


# ------------------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class GenerationOptions:
    """How generated answers are produced and read; part of every record's identity (EvalConfig.generation)."""

    gen_kwargs: dict[str, Any] = field(default_factory=dict)  # checked, lm-eval names (parse_gen_kwargs)
    system_prompt: str | None = None
    repeats: int = 1

    def __post_init__(self):
        object.__setattr__(self, "gen_kwargs", parse_gen_kwargs(self.gen_kwargs))
        if isinstance(self.repeats, bool) or not isinstance(self.repeats, int) or self.repeats < 1:
            raise MedbenchError(f"--repeats must be a whole number of 1 or more, got {self.repeats!r}",
                                "pass --repeats 5 (with sampling), or leave it out")
        if self.repeats > MAX_REPEATS:  # every answer is held in memory until the item is voted on
            raise MedbenchError(f"--repeats {self.repeats} is more samples per item than medbench keeps "
                                f"(at most {MAX_REPEATS})", "pass --repeats 5 to 20; pass@k past that adds little")
        if self.repeats > 1 and not self.sampling:
            raise MedbenchError(f"--repeats {self.repeats} with greedy decoding gives {self.repeats} identical answers",
                                "add --gen-kwargs temperature=0.7 (sampling), or leave out --repeats")
        if self.system_prompt is not None and (not isinstance(self.system_prompt, str)
                                               or not self.system_prompt.strip()):
            raise MedbenchError("the system prompt is empty", "give it some text, or leave it out")
        if self.system_prompt is not None:
            _require_utf8(self.system_prompt, "the system prompt")

    @property
    def sampling(self) -> bool:
        return self.gen_kwargs.get("temperature", 0) > 0

    @property
    def generation_settings(self) -> bool:
        """True when something here applies only to generated answers (gen-kwargs, repeats)."""
        return bool(self.gen_kwargs) or self.repeats > 1

    def applied(self, generates: bool) -> "GenerationOptions":
        """What a task uses of these options: everything when it generates, only the system prompt otherwise."""
        return self if generates else GenerationOptions(system_prompt=self.system_prompt)

    def suffix(self) -> str:
        """Record-key suffix: runs with other generation settings are other leaderboard columns."""
        parts = ""
        if self.system_prompt is not None:
            parts += f"@sys-{_short_hash(self.system_prompt)}"
        if self.repeats > 1:
            parts += f"@maj{self.repeats}"
        if self.gen_kwargs:
            parts += f"@gk-{_short_hash(self.gen_kwargs)}"
        return parts

    def system_instruction(self, chat_template: bool, described: bool = False) -> str | None:
        """The system prompt as lm-eval takes it: a system turn in the chat template, else a first paragraph
        (lm-eval glues it onto a prompt without a description). A task with a description (``described``) takes
        it as given: lm-eval joins the two with the task's fewshot_delimiter, or nothing at whitespace."""
        if self.system_prompt is None or chat_template or described or self.system_prompt[-1].isspace():
            return self.system_prompt
        return self.system_prompt + "\n\n"

    def cache_salt(self, seed: int) -> str:
        """What the request cache must tell apart beyond the requests themselves: sampled answers depend on
        the seed, and repeats on how many were asked for."""
        return json.dumps({"repeats": self.repeats, "seed": seed if self.sampling else None}, sort_keys=True)

    def task_kwargs(self, task_kwargs: dict[str, Any]) -> dict[str, Any]:
        """The task's generation_kwargs with these settings over them (do_sample follows the temperature)."""
        merged = {**(task_kwargs or {}), **self.gen_kwargs}
        if "temperature" in self.gen_kwargs:
            merged["do_sample"] = self.sampling
        return merged


def _short_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:8]


def read_system_prompt(text: str | None, file: str | Path | None, option: str = "--system-prompt",
                       base: Path | None = None) -> str | None:
    """The system prompt from ``text`` or ``file`` (UTF-8; relative to ``base`` when given); not both."""
    if text is not None and file is not None:
        raise MedbenchError(f"both {option} and {option}-file are given", f"pass one of {option} or {option}-file")
    if file is None:
        if isinstance(text, str):
            _require_utf8(text, option)
        return text
    path = Path(file).expanduser()
    path = base / path if base is not None and not path.is_absolute() else path
    if base is not None:  # a recipe's file: a recipe reads nothing outside its own folder
        from medbench.task_yaml import is_inside, real_path

        if not is_inside(real_path(path), real_path(base)):
            raise MedbenchError(f"{option}-file {file} lies outside the recipe's folder {base}",
                                "copy the file next to the recipe, or pass --system-prompt-file on the command line")
    from medbench.lm_wrapper import MAX_REQUEST_CHARS
    from medbench.small_inputs import too_big

    try:
        prompt = read_regular_text(path, limit=MAX_REQUEST_CHARS).rstrip("\n")  # a longer one fits no prompt
    except (OSError, UnicodeDecodeError) as exc:
        raise MedbenchError(f"cannot read {option}-file {path} ({getattr(exc, 'strerror', None) or exc})",
                            "pass a readable UTF-8 text file" + (" (a system prompt is a few KB: no model reads more "
                            "than this)" if isinstance(exc, OSError) and too_big(exc) else "")) from None
    if not prompt.strip():
        raise MedbenchError(f"{option}-file {path} is empty", "write the system prompt into it, or leave it out")
    return prompt


def from_settings(values: dict[str, Any], where: str = "eval", base: Path | None = None) -> GenerationOptions:
    """Options from a config mapping (a recipe's ``eval``): gen_kwargs, system_prompt or system_prompt_file,
    repeats; dashes and underscores alike."""
    values = {str(k).replace("-", "_"): v for k, v in (values or {}).items()}
    prompt = read_system_prompt(values.get("system_prompt"), values.get("system_prompt_file"),
                                f"{where}.system_prompt", base)
    repeats = values.get("repeats") or 1
    return GenerationOptions(parse_gen_kwargs(values.get("gen_kwargs"), f"{where}.gen_kwargs"),
                             None if prompt is None else str(prompt), repeats)


def generation_settings(evaluation: dict[str, Any], where: str, base: Path) -> dict[str, Any]:
    """A recipe's eval section's generation controls, checked, as the keys ``from_settings`` reads back: only
    those it sets, so a recipe without them keeps its identity; a system prompt file becomes its text."""
    options = from_settings(evaluation, where, base)
    settings: dict[str, Any] = {"gen_kwargs": options.gen_kwargs} if "gen_kwargs" in evaluation else {}
    if options.system_prompt is not None:
        settings["system_prompt"] = options.system_prompt
    if "repeats" in evaluation:
        settings["repeats"] = options.repeats
    return settings


def generating_tasks(options: GenerationOptions, output_types: dict[str, str], note: bool = True) -> set[str]:
    """The tasks (name -> output type as scored) that generate their answers. Gen-kwargs or repeats with none of
    them is refused; tasks scored by log-likelihood in a run with some that generate ignore them, with a note."""
    generating = {name for name, kind in output_types.items() if kind == "generate_until"}
    if options.generation_settings:
        ignoring = [name for name in output_types if name not in generating]
        if not generating:
            raise MedbenchError(f"--gen-kwargs and --repeats apply to generated answers, and {', '.join(ignoring)} "
                                f"{'is' if len(ignoring) == 1 else 'are'} scored by log-likelihood",
                                "add --mode generate (train: --eval-mode generate), or leave them out")
        if ignoring and note:
            warnings.warn(f"--gen-kwargs/--repeats do not apply to {', '.join(ignoring)} (scored by "
                          "log-likelihood); its record leaves them out", stacklevel=2)
    return generating


def generation_overrides(config: dict[str, Any], options: GenerationOptions) -> dict[str, Any]:
    """lm-eval config overrides for a task as configured (``config``): reasoning stripped before every filter
    pipeline; with repeats, each pipeline's final take_first becomes a majority vote; the generation settings."""
    if config.get("output_type") != "generate_until":
        return {}
    pipelines = config.get("filter_list") or [{"name": "none", "filter": [{"function": "take_first"}]}]
    rewritten = []
    for pipeline in pipelines:
        steps = [dict(step) for step in pipeline.get("filter") or []]
        if options.repeats > 1:
            if not steps or steps[-1].get("function") != "take_first":
                raise MedbenchError(f"--repeats needs filter pipeline {pipeline.get('name')!r} of task "
                                    f"{config.get('task')!r} to end in take_first, so a vote can replace it",
                                    "leave out --repeats for this task")
            steps[-1] = {"function": MajorityVoteFilter}
        rewritten.append({**pipeline, "filter": [{"function": StripReasoningFilter}, *steps]})
    overrides: dict[str, Any] = {"filter_list": rewritten}
    if options.gen_kwargs:  # over the task's own, or lm-eval's defaults for a task that sets none (greedy)
        from lm_eval.defaults import default_gen_kwargs

        own = config.get("generation_kwargs")
        overrides["generation_kwargs"] = options.task_kwargs(
            own if own is not None else default_gen_kwargs(config.get("fewshot_delimiter", "\n\n")))
    if options.repeats > 1:
        overrides["repeats"] = options.repeats
    return overrides


def generation_record(task: Any, options: GenerationOptions, seed: int, rows: list[dict[str, Any]]) -> dict:
    """The record's ``generation`` block: the settings a generating task ran with, as lm-eval applied them."""
    if task.config.output_type != "generate_until":
        return {"system_prompt": options.system_prompt} if options.system_prompt is not None else {}
    return {"generation_kwargs": dict(task.config.generation_kwargs or {}), "system_prompt": options.system_prompt,
            "repeats": options.repeats, "vote": "majority" if options.repeats > 1 else None,
            "sampling_seed": seed if options.sampling else None,
            "items_with_reasoning_stripped": sum(1 for row in rows if "raw_response" in row)}


def check_generation_budget(lm: Any, tasks: dict[str, Any]) -> None:
    """A causal model reads the prompt and writes the answer in one window: asking for as many new tokens as the
    window holds leaves the prompt no room (lm-eval stops on an assert in the middle of scoring)."""
    window = getattr(lm, "max_length", None)
    if not isinstance(window, int) or getattr(lm, "backend", "causal") != "causal":
        return
    for name, task in tasks.items():
        kwargs = getattr(task.config, "generation_kwargs", None) or {}
        wanted = kwargs.get("max_gen_toks", getattr(lm, "max_gen_toks", None))
        if isinstance(wanted, int) and wanted >= window:
            raise MedbenchError(f"task {name!r} asks for {wanted} new tokens, but the model reads at most {window} "
                                "tokens, prompt and answer together",
                                f"pass --gen-kwargs max_new_tokens={max(1, window // 4)} (or another value under "
                                f"{window})")
