"""A PEFT adapter folder's adapter_config.json, vetted before any model loader reads it.

The file names the base model an adapter is loaded onto, and an adapter folder is often a copy from elsewhere
(a colleague's run, a download). A loader plugin reads it with a bare ``json.loads``: a list, a nesting past the
parser, bytes that are not UTF-8 or a file of gigabytes would end in a crash reported as a bug in medbench, or
exhaust memory. Checked here, once, for every loader: one line naming the file."""

from __future__ import annotations

import json
from pathlib import Path

from medbench.errors import MedbenchError
from medbench.records import read_regular_text

ADAPTER_CONFIG = "adapter_config.json"
MAX_ADAPTER_CONFIG_BYTES = 4 << 20  # PEFT writes a few KB; read whole, so bounded first


def check_adapter_config(ref: str) -> None:
    """Refuse ``ref``'s adapter_config.json, when it has one, unless it is a readable JSON object whose base model
    (when named) is a path or a hub name. Folders without one, and references that are no folder, pass."""
    folder = Path(ref).expanduser()
    path = folder / ADAPTER_CONFIG
    try:
        if not (folder.is_dir() and (path.exists() or path.is_symlink())):
            return
    except OSError:  # a name too long to be a path, or a folder we may not list: the loaders name it
        return
    fix = "re-save the adapter (PeftModel.save_pretrained), or point --model at its base model"
    try:
        config = json.loads(read_regular_text(path, limit=MAX_ADAPTER_CONFIG_BYTES))
    except OSError as exc:
        raise MedbenchError(f"adapter config {path} cannot be read ({exc.strerror or exc})", fix) from None
    except UnicodeDecodeError as exc:
        raise MedbenchError(f"adapter config {path} is not UTF-8 text (byte {exc.start})", fix) from None
    except (ValueError, RecursionError) as exc:  # bad JSON, nesting past the parser, a number of 4300+ digits
        detail = " ".join(str(exc).split())[:120]
        raise MedbenchError(f"adapter config {path} is not valid JSON ({detail})", fix) from None
    if not isinstance(config, dict):
        raise MedbenchError(f"adapter config {path} is a JSON {type(config).__name__}, not an object", fix)
    base = config.get("base_model_name_or_path")
    # Empty or missing: the loader's own message says to name it; text with control characters is no path.
    if base is not None and not (isinstance(base, str) and base.isprintable()):
        raise MedbenchError(f"adapter config {path} names its base model as {base!r}, not a path or a model name",
                            "set base_model_name_or_path in it to the model the adapter was trained from")
