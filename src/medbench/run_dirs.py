"""Run directories: a new one per run, the run manifest (what was asked for, and how the run ended), and
`medbench train --resume` (the last complete checkpoint, and a check that the run is resumed as it was started)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medbench.errors import MedbenchError
from medbench.records import atomic_write_json, read_regular_text, slug

if TYPE_CHECKING:
    from medbench.training import TrainRequest

RUN_MANIFEST_NAME = "medbench_run.json"  # in the run directory: what was asked for, and how the run ended
# A run's JSON state (its manifest, a checkpoint's trainer_state.json with the whole log history) is far below this;
# past it the file is not one of ours, and reading it whole could exhaust memory.
RUN_STATE_BYTES = 64 << 20
_CHECKPOINT = re.compile(r"checkpoint-[0-9]+")  # the only names the Trainer saves under; others are the user's


def read_state_json(path: str | Path) -> Any:
    """The JSON in a run-folder state file, read without blocking (a FIFO in its place would hang the run).
    OSError (missing, not a regular file, too large) or ValueError (not UTF-8, not JSON, too deep) when it fails."""
    try:
        return json.loads(read_regular_text(path, limit=RUN_STATE_BYTES))
    except RecursionError as exc:  # JSON nested past the parser's depth
        raise ValueError(f"nested too deeply ({exc})") from None


def is_trainer_checkpoint(path: Path) -> bool:
    """A folder the Trainer itself names and writes: exactly ``checkpoint-<digits>``, a real directory, not a link."""
    return _CHECKPOINT.fullmatch(path.name) is not None and path.is_dir() and not path.is_symlink()


def new_run_dir(root: Path, plugin: str, task: str, name: str | None = None) -> tuple[str, Path]:
    """A fresh run directory: ``root/name``, or ``root/<plugin>-<task>-<time>`` when no name is given."""
    if name:
        run_dir = Path(root) / folder_name(name)
        if run_dir.exists() and not run_dir.is_dir():  # iterdir would fail on it, and it is the user's
            raise MedbenchError(f"{run_dir} is a file, not a run directory", "pass another --run-name, or move "
                                                                            "that file away first")
        if run_dir.exists() and any(run_dir.iterdir()):
            raise MedbenchError(f"run directory {run_dir} already holds a run",
                                "pass --resume to continue it, or another --run-name, or move that directory away "
                                "first")
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir.name, run_dir
    run_id = f"{slug(plugin)}-{slug(task)}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(root) / run_id
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = Path(root) / f"{run_id}-{suffix}"
    run_dir.mkdir(parents=True)
    return run_dir.name, run_dir


def folder_name(name: str) -> str:
    """``--run-name`` as the folder it names, kept as given: a run stored under another name is lost to its user."""
    if slug(name) != name:
        raise MedbenchError(f"--run-name {name!r} is not a plain folder name (it would be stored as {slug(name)!r})",
                            "use letters, digits, '.', '_' and '-', at most 48, starting and ending with a letter or "
                            "digit (e.g. --run-name sft-medqa-1)")
    return name


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _run_settings(plugin: str, request: TrainRequest) -> dict[str, Any]:
    """What a resumed run must share with the run it continues (JSON-normalised, so it compares with the file)."""
    return json.loads(json.dumps({"plugin": plugin, "model_ref": request.model_ref, "task": request.task,
                                  "seed": request.seed, "config": dataclasses.asdict(request.config)}, default=str))


def read_run_manifest(run_dir: str | Path) -> dict[str, Any] | None:
    path = Path(run_dir) / RUN_MANIFEST_NAME
    try:
        manifest = read_state_json(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise _damaged_manifest(path, str(problem)) from None
    if not isinstance(manifest, dict):
        raise _damaged_manifest(path, f"it holds a JSON {type(manifest).__name__}, not an object")
    for key in ("config", "resumed"):  # what prepare_resume and start_run_manifest read into
        wanted = dict if key == "config" else list
        if manifest.get(key) is not None and not isinstance(manifest[key], wanted):
            raise _damaged_manifest(path, f"its {key!r} is a {type(manifest[key]).__name__}, not a "
                                          f"{wanted.__name__}")
    return manifest


def _damaged_manifest(path: Path, why: str) -> MedbenchError:
    return MedbenchError(f"run manifest {path} is unreadable ({why})",
                         f"restore it from a backup, or delete (or move away) {path.parent} and start again, or "
                         "start a new run with another --run-name")


def start_run_manifest(run_dir: Path, plugin: str, request: TrainRequest, run_id: str) -> None:
    manifest = read_run_manifest(run_dir) if request.resume_from is not None else None
    if manifest is None:
        manifest = {"run_id": run_id, **_run_settings(plugin, request), "started": _now(), "resumed": []}
    else:
        manifest["resumed"] = [*manifest.get("resumed", []), {"from": Path(request.resume_from).name, "at": _now()}]
    atomic_write_json(Path(run_dir) / RUN_MANIFEST_NAME, {**manifest, "status": "running", "updated": _now()})


def update_run_manifest(run_dir: Path, **changes: Any) -> None:
    manifest = read_run_manifest(run_dir) or {}
    atomic_write_json(Path(run_dir) / RUN_MANIFEST_NAME, {**manifest, **changes, "updated": _now()})


def existing_run_dir(root: Path, name: str | None) -> tuple[str, Path]:
    """The run directory ``--resume`` continues: ``root/name``, which must hold a run manifest."""
    if not name:
        raise MedbenchError("--resume needs the run to continue", "pass --run-name NAME (its directory under "
                                                                 "--output-dir) together with --resume")
    run_dir = Path(root) / folder_name(name)
    if read_run_manifest(run_dir) is None:
        what = "does not exist" if not run_dir.exists() else f"holds no {RUN_MANIFEST_NAME}"
        raise MedbenchError(f"cannot resume: run directory {run_dir} {what}",
                            "check --run-name and --output-dir, or start the run without --resume")
    return run_dir.name, run_dir


def _checkpoint_step(path: Path) -> int | None:
    """N for a complete ``checkpoint-N``: its trainer_state.json (written last by the Hugging Face Trainer) loads and
    says step N, and its weights are whole safetensors files. A checkpoint a kill interrupted fails one of these."""
    if _CHECKPOINT.fullmatch(path.name) is None or not path.is_dir():
        return None
    number = path.name.partition("-")[2]
    state_file = path / "trainer_state.json"
    try:
        state = read_state_json(state_file)
    except ValueError:  # half-written when the kill came
        return None
    except OSError as exc:
        if os.path.lexists(state_file) and not state_file.is_file():  # not the Trainer's: never guess, never block
            raise MedbenchError(f"{state_file} is not a regular file ({exc.strerror or exc})",
                                f"remove it, or move {path} out of the run directory, then resume again") from None
        return None
    weights = sorted(path.glob("*.safetensors"))
    if (not isinstance(state, dict) or state.get("global_step") != int(number) or not weights
            or not all(safetensors_complete(w) for w in weights)):
        return None
    return int(number)


def safetensors_complete(path: Path) -> bool:
    """Whether a .safetensors file is whole: its header parses and the file holds every byte the header maps."""
    try:
        if not path.is_file():  # a FIFO would block the read below
            return False
        total = path.stat().st_size
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            if total < 8 + size:  # also guards against reading a garbage length
                return False
            header = json.loads(fh.read(size))
        end = max((info["data_offsets"][1] for key, info in header.items() if key != "__metadata__"), default=0)
        return total >= 8 + size + end
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return False


def complete_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint in the run directory, in step order."""
    found = [(_checkpoint_step(p), p) for p in Path(run_dir).glob("checkpoint-*")]
    return sorted((step, path) for step, path in found if step is not None)


def prepare_resume(run_dir: Path, plugin: str, request: TrainRequest) -> None:
    """Check the resumed command matches the run and point ``request.resume_from`` at its last complete checkpoint.

    Checkpoint directories a kill left incomplete are removed (they hold nothing usable); a run with no complete
    checkpoint starts again from step 0.
    """
    import shutil
    import warnings

    from medbench.training import get_trainer

    trainer = get_trainer(plugin)
    if not getattr(trainer, "supports_resume", False):
        raise MedbenchError(f"trainer {plugin!r} cannot resume a run",
                            "rerun without --resume, under another --run-name")
    manifest = read_run_manifest(run_dir) or {}
    if manifest.get("status") == "complete":
        raise MedbenchError(f"run {run_dir} is already complete", "nothing to resume; start a new run with another "
                                                                  "--run-name")
    if manifest.get("status") == "diverged":
        raise MedbenchError(f"run {run_dir} diverged (non-finite loss); resuming it would repeat that",
                            "start a new run with another --run-name and a lower --learning-rate")
    ours, theirs = _run_settings(plugin, request), {k: manifest.get(k) for k in ("plugin", "model_ref", "task",
                                                                                     "seed", "config")}
    differing = [(f"--{k.replace('_', '-')}", theirs[k], ours[k]) for k in ("plugin", "model_ref", "task", "seed")
                 if theirs[k] != ours[k]]
    differing += [(f"--{k.replace('_', '-')}", (theirs["config"] or {}).get(k), v)
                  for k, v in ours["config"].items() if (theirs["config"] or {}).get(k) != v]
    if differing:
        shown = "; ".join(f"{option} was {old!r}, now {new!r}" for option, old, new in differing[:3])
        raise MedbenchError(f"--resume with options that differ from run {run_dir.name}: {shown}",
                            f"pass the options of the original run (recorded in {run_dir / RUN_MANIFEST_NAME}), "
                            "or start a new run with another --run-name")
    complete = complete_checkpoints(run_dir)
    for path in Path(run_dir).glob("checkpoint-*"):
        if is_trainer_checkpoint(path) and path not in {p for _, p in complete}:
            shutil.rmtree(path)  # written only in part when the run was killed; other names are the user's
    if not complete:
        warnings.warn(f"run {run_dir} has no complete checkpoint yet; training starts again from step 0", stacklevel=2)
        request.resume_from = None
        return
    request.resume_from = complete[-1][1]
