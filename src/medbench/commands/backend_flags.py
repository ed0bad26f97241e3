"""`medbench eval`'s options for where the model and its judge run (medbench.backends; docs/backends.md)."""

from __future__ import annotations

import functools
from typing import Any

import click

from medbench.commands.common import Bounded, key_values
from medbench.errors import MedbenchError


class Positive(click.ParamType):
    """A positive number (seconds, requests per second); anything else is one line naming the option."""

    name = "number"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        option = max(param.opts, key=len) if param is not None and param.opts else "the value"
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not number > 0:
            raise MedbenchError(f"{option} must be a positive number, got {value!r}", f"pass {option} 2.5 (say)")
        return number


# click option -> backend option; None values are left out, so each backend's own defaults apply
FLAGS = {"base_url": "base_url", "request_timeout": "timeout", "max_retries": "max_retries",
         "concurrency": "concurrency", "rate_limit": "rate_limit", "tensor_parallel": "tensor_parallel",
         "data_parallel": "data_parallel"}


def backend_options(command):
    """Adds the backend and judge-model options; the command receives ``backend`` (a name or None),
    ``backend_options`` (a dict) and ``judge_model_options`` (a dict merged into the judge options)."""

    @functools.wraps(command)
    def wrapper(*args, backend_option=(), judge_model=None, judge_base_url=None, judge_samples=None, **kwargs):
        options = {FLAGS[flag]: kwargs.pop(flag) for flag in list(FLAGS)}
        options = {key: value for key, value in options.items() if value is not None}
        options.update(key_values(backend_option, "--backend-option"))
        judge = {"model": judge_model, "base_url": judge_base_url, "samples": judge_samples}
        judge = {key: str(value) for key, value in judge.items() if value is not None}
        if judge_base_url and not judge_model:
            raise MedbenchError("--judge-base-url without --judge-model", "pass --judge-model openai:NAME as well")
        from medbench.small_inputs import check_url

        for option, url in (("--base-url", options.get("base_url")), ("--judge-base-url", judge_base_url)):
            check_url(option, url)
        return command(*args, backend_options=options, judge_model_options=judge, **kwargs)

    decorators = [
        click.option("--backend", default=None,
                     help="Where the model runs: hf (in this process; the default), vllm, or a plugin's backend. "
                          "`--model openai:NAME` picks the OpenAI-compatible backend by itself."),
        click.option("--base-url", default=None, help="A served model's server, e.g. http://127.0.0.1:8000/v1 "
                                                      "(key from $MEDBENCH_API_KEY or $OPENAI_API_KEY)."),
        click.option("--request-timeout", type=Positive(), default=None, help="Seconds per request (served models)."),
        click.option("--max-retries", type=Bounded(0), default=None,
                     help="Retries of a failed request, with exponential backoff (served models)."),
        click.option("--concurrency", type=Bounded(1), default=None, help="Requests in flight at once (served models)."),
        click.option("--rate-limit", type=Positive(), default=None, help="Requests per second at most (served models)."),
        click.option("--tensor-parallel", type=Bounded(1), default=None, help="GPUs per model replica (vllm)."),
        click.option("--data-parallel", type=Bounded(1), default=None, help="Model replicas (vllm)."),
        click.option("--backend-option", multiple=True, help="KEY=VALUE for the backend (see docs/backends.md)."),
        click.option("--judge-model", default=None,
                     help="The judges' model, on any backend (default: the embedded model), e.g. openai:NAME."),
        click.option("--judge-base-url", default=None, help="The judge model's server (with --judge-model openai:NAME)."),
        click.option("--judge-samples", type=Bounded(1), default=None,
                     help="Judge ratings sampled per item; the majority wins (default 1)."),
    ]
    for decorate in reversed(decorators):
        wrapper = decorate(wrapper)
    return wrapper
