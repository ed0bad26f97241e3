"""Backends: where a model runs. One interface for evaluation and judges alike.

A backend turns a model reference into a :class:`Backend`: the lm-eval LM that scores requests, the identity the
record stores, and what it can do (log-likelihoods or generation only; whether its records may be reused by a
content hash). The default runs a Hugging Face model in this process; others come from the ``register_backends``
hook (a served OpenAI-compatible model, vLLM, ...), chosen with ``--backend NAME`` or by a reference's prefix
(``openai:NAME``) when the backend claims one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

from medbench.errors import MedbenchError
from medbench.plugin_calls import plugin_call
from medbench.registries import named_registry, unknown_name

IN_PROCESS = "hf"  # the default: the model loaded into this process by a register_model_loaders loader
LOGLIKELIHOOD_TYPES = ("multiple_choice", "loglikelihood", "loglikelihood_rolling")


@dataclass
class Backend:
    lm: Any  # an lm-eval LM (loglikelihood / generate_until)
    ref: str  # the reference as the user wrote it
    model_info: dict[str, Any]  # the record's "model" fields, label aside
    model_hash: str  # the weights' content hash, or for a served model a digest of its identity
    content_addressed: bool = True  # records and resumable requests may be reused by model_hash
    chat_template: bool = True  # the chat template can be applied here, as text (a server applies its own)
    # None when log-likelihoods work, else why not (a served model without prompt log-probs); asked only when needed
    loglikelihood_refusal: Callable[[], str | None] = lambda: None
    details: dict[str, Any] = field(default_factory=dict)
    user_ref: str | None = None  # the reference as typed (``pinned:v1``) where the backend's ref lost it


def identity_hash(*parts: str) -> str:
    """The stand-in for a weights hash where the weights cannot be read: a digest of what identifies the model."""
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=16).hexdigest()


def backend_registry() -> dict[str, Any]:
    return named_registry("register_backends", "backend", ("name", "description", "open"))


def backend_for(model_ref: str | None, name: str | None) -> tuple[Any | None, str | None]:
    """(backend object or None for in-process, the reference it receives). ``--backend`` wins; otherwise a
    reference ``PREFIX:REST`` goes to the backend that claims PREFIX (``ref_prefix``) with REST."""
    if name in (None, IN_PROCESS):
        registry = backend_registry() if model_ref and ":" in model_ref else {}
        prefix, _, rest = (model_ref or "").partition(":")
        for backend in registry.values():
            if getattr(backend, "ref_prefix", None) == prefix and rest:
                return backend, rest
        return None, model_ref
    registry = backend_registry()
    if name not in registry:
        raise unknown_name("backend", name, [IN_PROCESS, *registry],
                           "pass --backend with a known name (see docs/backends.md), or install its plugin")
    backend = registry[name]
    prefix = getattr(backend, "ref_prefix", None)
    if prefix and model_ref and model_ref.startswith(prefix + ":"):
        model_ref = model_ref[len(prefix) + 1:]
    return backend, model_ref


def open_backend(model_ref: str | None, name: str | None, options: dict[str, Any], *, batch_size: int = 8,
                 seed: int = 1234, progress: Any = None) -> Backend | None:
    """The plugin backend for ``model_ref`` opened with ``options`` (``--base-url`` and the like), or None when
    the model runs in this process."""
    backend, ref = backend_for(model_ref, name)
    if backend is None:
        return None
    if not ref and getattr(backend, "ref_prefix", None):
        raise MedbenchError(f"backend {backend.name!r} needs a model name", f"pass --model {backend.ref_prefix}:NAME")
    if not ref:
        from medbench.models import DEFAULT_MODEL

        ref = DEFAULT_MODEL
    with plugin_call(backend.plugin, f"backend {backend.name!r} open()", passthrough=(MedbenchError,)):
        opened = backend.open(ref, dict(options), batch_size=batch_size, seed=seed, progress=progress)
    opened.model_info["backend"] = backend.name  # the record names the backend chosen, whatever it wraps
    if model_ref and model_ref != opened.ref:  # open() got NAME without its prefix and may resolve it further
        opened.model_info.setdefault("user_ref", model_ref)  # the record keeps what the user asked for
        if model_ref not in opened.ref:  # and the default label too, where the backend's ref lost it
            opened.user_ref = model_ref
    return opened


# eval's options for a model loaded in this process; a backend that reads some lists them in ``eval_options``
IN_PROCESS_FLAGS = {"device": "--device", "dtype": "--dtype", "trust_remote_code": "--trust-remote-code",
                    "batch_size": "--batch-size", "scorer": "--scorer"}


def refuse_in_process_options(model_ref: str | None, name: str | None, given: list[str]) -> None:
    """``given`` (names of IN_PROCESS_FLAGS the user set) are inert where the model runs on a backend that does not
    list them in its ``eval_options``: --dtype bf16 on a served model changed nothing. One line, before any call."""
    backend, _ = backend_for(model_ref, name)
    if backend is None:
        return
    inert = [IN_PROCESS_FLAGS.get(option, option) for option in given
             if option not in tuple(getattr(backend, "eval_options", ()) or ())]
    if inert:
        raise MedbenchError(f"{', '.join(inert)} {'sets' if len(inert) == 1 else 'set'} a model loaded in this "
                            f"process, and {model_ref or 'the model'} runs on the {backend.name!r} backend",
                            f"leave {'it' if len(inert) == 1 else 'them'} out; the backend takes its own settings "
                            "with --backend-option KEY=VALUE (docs/backends.md)")


_FLAG_OF = {"base_url": "--base-url", "timeout": "--request-timeout", "max_retries": "--max-retries",
            "concurrency": "--concurrency", "rate_limit": "--rate-limit", "tensor_parallel": "--tensor-parallel",
            "data_parallel": "--data-parallel"}  # medbench.commands.backend_flags.FLAGS, the other way round


def open_for_evaluation(model_ref: str | None, config: Any, tasks: dict[str, Any], loaded: Any = None,
                        load_options: Any = None, progress: Any = None) -> Backend:
    """The backend ``config`` (an EvalConfig) asks for, refusing up front what it cannot score; a model already
    ``loaded`` runs in this process."""
    backend = None if loaded is not None else open_backend(
        model_ref, config.backend, config.backend_options, batch_size=config.batch_size, seed=config.seed,
        progress=progress)
    if backend is None and config.backend_options:  # --base-url without --backend openai scored a local model
        given = ", ".join(_FLAG_OF.get(key, f"--backend-option {key}") for key in sorted(config.backend_options))
        raise MedbenchError(f"{given} {'is' if len(config.backend_options) == 1 else 'are'} for a served or plugin "
                            f"backend, but {model_ref or 'the default model'} runs in this process",
                            "pass --backend openai or vllm (or --model openai:NAME), or drop them (docs/backends.md)")
    backend = backend or in_process(model_ref, chat_template=config.chat_template, batch_size=config.batch_size,
                                    scorer=config.scorer, loaded=loaded, load_options=load_options, progress=progress)
    require_loglikelihood(backend, tasks)
    return backend


def require_loglikelihood(backend: Backend, tasks: dict[str, Any]) -> None:
    """Refuse before scoring when a task needs log-likelihoods the backend cannot give."""
    needing = [name for name, task in tasks.items() if task.config.output_type in LOGLIKELIHOOD_TYPES]
    if not needing:
        return
    reason = backend.loglikelihood_refusal()
    if reason:
        raise MedbenchError(f"{', '.join(needing)} in log-likelihood mode cannot be scored on {backend.ref}: {reason}",
                            "pass --mode generate (the model answers and the choice is extracted), or serve the "
                            "model where prompt log-probabilities are returned (docs/backends.md)")


def in_process(model_ref: str | None, *, chat_template: bool = False, batch_size: int = 8, scorer: str = "prefix",
               loaded: Any = None, load_options: Any = None, progress: Any = None) -> Backend:
    """The default backend: a Hugging Face model in this process, identified by its weights' content hash."""
    from medbench.lm_wrapper import make_lm
    from medbench.models import require_chat_template, resolve_model
    from medbench.weights_identity import weights_identity

    loaded = loaded or resolve_model(model_ref, load_options)
    if chat_template:
        require_chat_template(loaded.tokenizer, loaded.ref)
    model_hash = weights_identity(loaded)
    lm = make_lm(loaded, batch_size, progress, scorer)
    info = {"backend": IN_PROCESS, "ref": loaded.ref, "kind": loaded.kind, "path": loaded.path,
            "base_ref": loaded.base_ref, "weights_hash": model_hash,
            "parameters": sum(p.numel() for p in loaded.model.parameters())}
    return Backend(lm, loaded.ref, info, model_hash, details={"loaded": loaded},
                   chat_template=bool(getattr(loaded.tokenizer, "chat_template", None)))


def open_model(model_ref: str | None, name: str | None, options: dict[str, Any], *, batch_size: int = 8,
               seed: int = 1234) -> Backend:
    """A model on any backend, for plugins that need one besides the scored model (a judge's)."""
    opened = open_backend(model_ref, name, options, batch_size=batch_size, seed=seed)
    if opened is not None:
        return opened
    if options:
        where = model_ref or "the default model"
        raise MedbenchError(f"options {', '.join(sorted(options))} are for a served model, but {where} runs in this "
                            "process", "name a model on a backend that takes them (docs/backends.md), or drop them")
    return in_process(model_ref, batch_size=batch_size)
