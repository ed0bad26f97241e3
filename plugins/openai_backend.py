"""``openai``: a model served behind an OpenAI-compatible API (OpenAI, vLLM's server, `transformers serve`, ...).

``--model openai:NAME --base-url URL``. Generation goes to /chat/completions (a raw prompt is sent as one user
message; with ``--chat-template`` lm-eval's messages are sent as they are). Log-likelihoods go to /completions with
``echo`` and ``logprobs``: the continuation's tokens are found by their character offsets, so no local tokenizer has
to match the server's. A server that returns no prompt log-probs is refused up front with the generate-mode
alternative. Written on lm-eval's LM interface rather than its TemplateAPI: that needs a local tokenizer for
log-likelihoods, retries errors that cannot succeed (401, 400) and has no rate limit.

Records: the model is identified by its name, the server and the id /models reports; its weights cannot be read,
so ``weights_hash`` holds a digest of that identity and the records are never reused (the weights behind a served
name can change without notice). Every run asks the server again.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import fields
from typing import Any

from medbench import hookimpl
from medbench.backends import Backend, identity_hash
from medbench.errors import MedbenchError
from medbench.lm_wrapper import copy_numbers

from .openai_client import ClientOptions, ServerClient

PROBE_PROMPT = "The patient was admitted with chest pain"


class ChatMessages(str):
    """A prompt lm-eval built with the chat template: JSON messages, sent to the server as messages."""


def client_options(options: dict[str, Any]) -> ClientOptions:
    known = {f.name for f in fields(ClientOptions)}
    unknown = sorted(set(options) - known - {"max_gen_toks"})
    if unknown:
        raise MedbenchError(f"backend 'openai' has no option {', '.join(unknown)}",
                            f"its options are {', '.join(sorted(known))} (see docs/backends.md)")
    values = {k: v for k, v in options.items() if k in known and v is not None}
    for name, kind in (("timeout", float), ("max_retries", int), ("backoff", float), ("concurrency", int),
                       ("rate_limit", float)):
        if name in values:
            try:
                values[name] = kind(values[name])
            except (TypeError, ValueError):
                raise MedbenchError(f"backend option {name}={values[name]!r} is not a number",
                                    f"pass {name}=N") from None
    return ClientOptions(**values)


def messages_of(context: str) -> list[dict[str, Any]]:
    if isinstance(context, ChatMessages) or context.startswith('[{"role"'):
        try:
            messages = json.loads(context)
            if isinstance(messages, list) and all(isinstance(m, dict) and "role" in m for m in messages):
                return messages
        except ValueError:
            pass
    return [{"role": "user", "content": context}]


def continuation_logprob(logprobs: dict[str, Any], start: int, end: int) -> tuple[float, bool]:
    """Sum of the log-probs of the echoed tokens that begin in [start, end), and whether each was the likeliest."""
    total, greedy, counted = 0.0, True, 0
    tops = logprobs.get("top_logprobs") or []
    for i, (offset, value) in enumerate(zip(logprobs["text_offset"], logprobs["token_logprobs"])):
        if not start <= offset < end:
            continue
        if value is None:
            raise MedbenchError("the server returned no log-prob for a continuation token",
                                "pass --mode generate")
        total += value
        counted += 1
        top = tops[i] if i < len(tops) and isinstance(tops[i], dict) else None
        if top and max(top.values()) > value + 1e-6:
            greedy = False
    return total, greedy and counted > 0


class ServedLM:
    """lm-eval's LM interface over a ServerClient (subclassed from lm_eval.api.model.LM at first use)."""

    def __init__(self, client: ServerClient, model: str, seed: int, reported_ids: list[str], progress: Any = None,
                 max_gen_toks: int = 256):
        super().__init__()
        self.client, self.model, self.seed, self.progress = client, model, seed, progress
        self.reported_ids, self.max_gen_toks = reported_ids, max_gen_toks
        self.task_name, self.request_cache = "", None

    @property
    def tokenizer_name(self) -> str:
        return f"served:{self.model}"

    def chat_template(self, chat_template: bool | str = False) -> str:
        return ""  # applied by the server

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return ChatMessages(json.dumps(chat_history, ensure_ascii=False))

    def _note(self, answer: dict[str, Any]) -> None:
        reported = answer.get("model")
        if reported and reported not in self.reported_ids:
            self.reported_ids.append(reported)

    def _each(self, function, requests) -> list[Any]:
        """``function`` over the requests, ``concurrency`` at a time, reporting progress between chunks."""
        out: list[Any] = []
        chunk = max(1, int(self.client.options.concurrency)) * 4
        for start in range(0, len(requests), chunk):
            out += self.client.map(function, requests[start:start + chunk])
            if self.progress:
                self.progress(self.task_name, len(out), len(requests))
        return out

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        requests = list(requests)
        # --repeats k sends each prompt k times; each copy gets its own sampling seed, or a server that honours
        # `seed` would answer the same sample k times.
        copy_of = dict(zip(map(id, requests), copy_numbers([json.dumps(request.args, sort_keys=True, default=str)
                                                            for request in requests])))

        def generate(request) -> str:
            context, gen_kwargs = request.args[0], dict(request.args[1] or {})
            until = gen_kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            temperature = float(gen_kwargs.get("temperature", 0.0) or 0.0)
            sampling = bool(gen_kwargs.get("do_sample", temperature > 0))
            payload = {"model": self.model, "messages": messages_of(context),
                       "max_tokens": int(gen_kwargs.get("max_gen_toks", self.max_gen_toks)),
                       "temperature": temperature if sampling else 0.0,
                       "seed": self.seed + int(getattr(request, "idx", 0) or 0) + 7919 * copy_of[id(request)]}
            if sampling and gen_kwargs.get("top_p") is not None:
                payload["top_p"] = float(gen_kwargs["top_p"])
            if until:
                payload["stop"] = until[:4]  # OpenAI's limit
            answer = self.client.call("POST", "chat/completions", payload)
            self._note(answer)
            try:
                text = answer["choices"][0]["message"]["content"] or ""
            except (KeyError, IndexError, TypeError):
                raise MedbenchError(f"{self.client.base_url}/chat/completions answered without choices[0].message",
                                    "check that the server speaks the OpenAI chat API") from None
            for stop in until:  # a server that ignores `stop` still ends where lm-eval expects
                text = text.split(stop)[0] if stop else text
            return text

        return self._each(generate, requests)

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        def score(request) -> tuple[float, bool]:
            context, continuation = request.args
            if isinstance(context, ChatMessages):
                raise MedbenchError("--chat-template with log-likelihood scoring on a served model: the server's "
                                    "template is not known here", "drop --chat-template, or pass --mode generate")
            answer = self.client.call("POST", "completions", {
                "model": self.model, "prompt": context + continuation, "max_tokens": 1, "echo": True,
                "logprobs": 1, "temperature": 0.0, "seed": self.seed})
            self._note(answer)
            logprobs = echoed_logprobs(answer)
            if logprobs is None:
                raise MedbenchError(f"{self.client.base_url}/completions returned no prompt log-probs",
                                    "pass --mode generate")
            return continuation_logprob(logprobs, len(context), len(context) + len(continuation))

        return self._each(score, list(requests))

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        raise MedbenchError("perplexity tasks are not scored on served models", "score them in-process (--model DIR)")


def echoed_logprobs(answer: dict[str, Any]) -> dict[str, Any] | None:
    try:
        logprobs = answer["choices"][0]["logprobs"]
        if logprobs and len(logprobs["text_offset"]) == len(logprobs["token_logprobs"]) >= 2:
            return logprobs
    except (KeyError, IndexError, TypeError):
        pass
    return None


def _lm_class():
    from lm_eval.api.model import LM

    return type("ServedLM", (ServedLM, LM), {})


class OpenAIBackend:
    name = "openai"
    ref_prefix = "openai"
    description = "a model behind an OpenAI-compatible server: --model openai:NAME --base-url URL"

    def open(self, ref: str, options: dict[str, Any], *, batch_size: int = 8, seed: int = 1234,
             progress: Any = None) -> Backend:
        client = ServerClient(client_options(options))
        listing = client.call("GET", "models")
        served = [m for m in listing.get("data") or [] if isinstance(m, dict) and m.get("id")]
        match = next((m for m in served if m["id"] == ref), None)
        if match is None:
            ids = ", ".join(m["id"] for m in served[:8]) or "none"
            raise MedbenchError(f"{client.base_url} serves no model named {ref!r} (it lists: {ids})",
                                "pass --model openai:<one of those names>")
        reported: list[str] = []
        info = {"backend": self.name, "ref": f"{self.ref_prefix}:{ref}", "kind": "served", "name": ref,
                "server": client.base_url, "served_model_id": match["id"], "owned_by": match.get("owned_by"),
                "response_model_ids": reported, "path": None, "base_ref": None, "parameters": None,
                "weights_hash": identity_hash(self.name, client.base_url, match["id"])}
        max_gen_toks = str(options.get("max_gen_toks") or 256)
        if not max_gen_toks.isdigit() or int(max_gen_toks) < 1:
            raise MedbenchError(f"backend option max_gen_toks={max_gen_toks!r} is not a positive whole number",
                                "pass --backend-option max_gen_toks=256")
        lm = _lm_class()(client, ref, seed, reported, progress, int(max_gen_toks))

        @functools.lru_cache(maxsize=1)  # one probe per opened model, however often asked
        def refusal() -> str | None:
            try:
                answer = client.call("POST", "completions", {"model": ref, "prompt": PROBE_PROMPT, "max_tokens": 1,
                                                             "echo": True, "logprobs": 1, "temperature": 0.0})
            except MedbenchError as exc:
                return f"its /completions endpoint refused an echo + logprobs request ({exc.problem})"
            logprobs = echoed_logprobs(answer)
            if logprobs is None or not any(v is not None and math.isfinite(v) for v in logprobs["token_logprobs"]):
                return "it returns no prompt log-probabilities (/completions with echo and logprobs)"
            return None

        return Backend(lm, info["ref"], info, info["weights_hash"], content_addressed=False, chat_template=False,
                       loglikelihood_refusal=refusal, details={"client": client})


@hookimpl
def register_backends(register):
    register(OpenAIBackend())
