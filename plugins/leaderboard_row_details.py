"""A leaderboard row's details on the page: the weights, the model, and what trained it with which options."""

from __future__ import annotations

import json
from typing import Any

from medbench.leaderboard import Row
from medbench.svg import esc


def row_details_html(row: Row) -> str:
    return _dl(_row_details(row))


def _value_html(value: Any) -> str:
    """A detail value: a mapping (a training config) as a key/value table, anything else as escaped text."""
    if isinstance(value, dict):
        return '<table class="kv">' + "".join(f"<tr><th>{esc(k)}</th><td>{_value_html(v)}</td></tr>"
                                              for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))) + "</table>"
    if isinstance(value, str):
        return esc(value)
    return esc(json.dumps(value, default=str))  # true/false/null and lists as they read in the config


def _dl(items: list[tuple[str, Any]]) -> str:
    return "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{_value_html(v)}</dd>" for k, v in items
                            if v not in (None, "", {}, [])) + "</dl>"


def _row_details(row: Row) -> list[tuple[str, Any]]:
    model = row.model or {}
    items: list[tuple[str, Any]] = [("weights", row.weights_hash), ("ref", _located(model.get("ref"))),
                                    ("kind", model.get("kind")), ("base", _located(model.get("base_ref"))),
                                    ("parameters", _count(model.get("parameters"))), ("seed", row.seed)]
    if row.training:
        training = row.training
        items += [("trained by", training.get("plugin")), ("run", training.get("run_id")),
                  ("step", training.get("step")), ("parent", _located(training.get("parent_model")))]
        same = training.get("trainer_config") == training.get("config")  # a plain trainer's: shown once
        for key in ("config",) if same else ("config", "trainer_config"):
            if isinstance(training.get(key), dict) and training[key]:
                items.append((key.replace("_", " "), _in_effect(training[key])))
    return items


def _in_effect(config: dict[str, Any]) -> dict[str, Any]:
    """The options that shaped the training: a full fine-tune's record keeps the LoRA defaults it never used."""
    if config.get("method") != "full":
        return config
    return {key: value for key, value in config.items() if not key.startswith("lora_")}


def _located(reference: Any) -> Any:
    """A model reference as the page reader can follow it: records keep a checkpoint's path relative to the
    leaderboard folder (medbench.portable), which ``../sft/checkpoint-53`` alone does not say."""
    if isinstance(reference, str) and reference.startswith(("../", "./")):
        return f"{reference} (relative to the leaderboard folder)"
    return reference


def _count(value: Any) -> Any:
    """134,515,008 rather than 134515008: a parameter count read at a glance."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value
