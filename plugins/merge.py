"""The ``merge`` trainer: mergekit merges of two or more checkpoints of one architecture, one checkpoint per
point of a merge curve.

``--model`` is the base (the instruct model a domain fine-tune came from, in the seed study); ``--models``
lists the other checkpoint(s). Each value of ``--t`` makes one merged checkpoint, so one command scores a whole
curve. What t means per method:

- ``slerp``: mergekit's t, spherical interpolation from the base (t=0) to the one other model (t=1);
- ``linear``: the base weighs 1 - t and the other models share t in proportion to ``--weights``;
- ``task_arithmetic``, ``ties``, ``dare_ties``: t scales the merged task vectors (mergekit's ``lambda``):
  base + t * merge(model_i - base, weight_i). A weight curve would not do: ties normalises by the weights.

Adapters and models that are not plain safetensors directories (the embedded model, GGUF files, hub ids) are
resolved through medbench.models; an adapter is merged into its base first and saved to a work directory.

The checkpoints need one architecture (the same tensor names and shapes), not one parent: a model
continued-pretrained from a base model merges with that base's instruct sibling. Every merged checkpoint takes
``--model``'s tokenizer (chat template included) and config, so each point of a curve is prompted alike.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from medbench import hookimpl
from medbench.errors import MedbenchError
from medbench.models import LoadOptions, resolve_model
from medbench.training import CheckpointInfo, TrainRequest, option_flag

# The methods, each with its default point: halfway for interpolations, the full task vectors otherwise.
DEFAULT_T = {"linear": 0.5, "slerp": 0.5, "task_arithmetic": 1.0, "ties": 1.0, "dare_ties": 1.0}
METHODS = tuple(DEFAULT_T)


@dataclass
class MergeConfig:
    models: list[str] | None = None  # the checkpoint(s) merged with --model
    method: str = "slerp"
    t: list[float] | None = None  # the merge curve; default 0.5 (slerp, linear) or 1.0 (task vectors)
    weights: list[float] | None = None  # relative weight of each of --models (default: equal)
    density: float = 0.5  # ties / dare_ties: fraction of each task vector kept

    def ignored_options(self) -> dict[str, str]:
        """--density given to a method that keeps every task vector's entries (the trainer SDK's hook)."""
        if self.method in ("ties", "dare_ties"):
            return {}
        return {"density": f"{option_flag('method')} {self.method} keeps every weight; only ties and dare_ties trim "
                           "by density"}


def _is_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def local_model_dir(ref: str, scratch: Path, options: LoadOptions) -> Path:
    """A directory of full safetensors weights for ``ref``, as mergekit needs; ``scratch`` is where one is saved
    when ``ref`` has none."""
    path = Path(ref).expanduser()
    if _is_model_dir(path):
        return path
    loaded = resolve_model(ref, dataclasses.replace(options, merge_adapter=True))
    if loaded.path and _is_model_dir(Path(loaded.path)):  # the embedded model's cache, a hub snapshot
        return Path(loaded.path)
    loaded.model.save_pretrained(scratch, safe_serialization=True)  # an adapter folded into its base, a GGUF file
    loaded.tokenizer.save_pretrained(scratch)
    return scratch


def tensor_shapes(model_dir: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    shapes = {}
    for file in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():
                shapes[name] = tuple(handle.get_slice(name).get_shape())
    return shapes


def check_same_architecture(refs: list[str], dirs: list[Path]) -> None:
    expected = tensor_shapes(dirs[0])
    for ref, directory in zip(refs[1:], dirs[1:]):
        shapes = tensor_shapes(directory)
        differing = sorted(set(expected) ^ set(shapes)) + sorted(
            name for name in set(expected) & set(shapes) if expected[name] != shapes[name])
        if differing:
            raise MedbenchError(
                f"{ref} does not have the architecture of {refs[0]}: {len(differing)} tensor(s) differ, "
                f"e.g. {differing[0]}", "merge checkpoints of one architecture, such as a fine-tune and its base")


def merge_parameters(config: MergeConfig, t: float, base_dir: Path, other_dirs: list[Path]) -> dict:
    """The mergekit configuration for one point of the curve."""
    weights = config.weights or [1.0] * len(other_dirs)
    if config.method == "slerp":
        models = [{"model": str(base_dir)}, {"model": str(other_dirs[0])}]
        parameters = {"t": t}
    elif config.method == "linear":
        share = t / sum(weights)
        models = [{"model": str(base_dir), "parameters": {"weight": 1 - t}}] + [
            {"model": str(d), "parameters": {"weight": share * w}} for d, w in zip(other_dirs, weights)]
        parameters = {"normalize": False}  # the weights already sum to 1; t outside [0, 1] extrapolates
    else:
        per_model = {"density": config.density} if config.method != "task_arithmetic" else {}
        models = [{"model": str(d), "parameters": {"weight": w, **per_model}} for d, w in zip(other_dirs, weights)]
        parameters = {"lambda": t}
    return {"merge_method": config.method, "base_model": str(base_dir), "models": models, "parameters": parameters}


def checkpoint_name(method: str, t: float) -> str:
    return f"{method}-t{t:g}"


def curve_points(config: MergeConfig, model_ref: str) -> list[float]:
    """The curve's t values, after checking the options fit the method and name each checkpoint once."""
    points = checked_points(config)
    if len({model_ref, *config.models}) != 1 + len(config.models):
        raise MedbenchError("--model and --models name the same checkpoint more than once",
                            "list each checkpoint once")
    return points


def checked_points(config: MergeConfig) -> list[float]:
    """The curve's t values, after checking the options fit the method (no model needed: a plan-time check)."""
    if config.method not in METHODS:
        raise MedbenchError(f"unknown merge method {config.method!r}", f"pass --method one of {', '.join(METHODS)}")
    if not config.models:
        raise MedbenchError("merge needs --models: the checkpoint(s) to merge into the base model (--model)",
                            "pass --models REF[,REF...]")
    if config.method == "slerp" and len(config.models) != 1:
        raise MedbenchError(f"slerp merges exactly two models, got --model and {len(config.models)} in --models",
                            "pass one model to --models, or use --method linear/ties/dare_ties/task_arithmetic")
    if config.weights is not None and config.method == "slerp":
        raise MedbenchError("slerp takes no --weights", "set the interpolation point with --t")
    if config.weights is not None and len(config.weights) != len(config.models):
        raise MedbenchError(f"--weights has {len(config.weights)} value(s) for {len(config.models)} model(s)",
                            "give one weight per model in --models")
    if config.method == "linear" and config.weights is not None and sum(config.weights) <= 0:
        raise MedbenchError("linear --weights must sum to more than 0", "pass positive weights")
    if not 0 < config.density <= 1:
        raise MedbenchError(f"--density must be in (0, 1], got {config.density}", "pass e.g. --density 0.5")
    points = config.t if config.t is not None else [DEFAULT_T[config.method]]
    if not points or len(set(points)) != len(points):
        raise MedbenchError(f"--t must list distinct values, got {points}", "pass e.g. --t 0,0.25,0.5,0.75,1")
    return points


class MergeTrainer:
    name = "merge"
    plot_factors = {"t": "merge t (interpolation weight)"}  # the leaderboard page plots scores against t first
    description = "mergekit merges (linear, slerp, ties, dare_ties, task_arithmetic); --t lists a merge curve"
    config_class = MergeConfig

    def plan_check(self, task: str, options: dict, data_files: dict | None = None) -> str | None:
        """Why these merge options cannot run (the method's constraints on --models, --weights, --t), or None."""
        from medbench.trainers.hf import plan_check_with

        def check(config: MergeConfig, _load_examples) -> None:  # raises with the reason; returns no reason
            checked_points(config)

        return plan_check_with(MergeConfig, self.name, task, options, data_files, check)

    def plan_checkpoints(self, task: str, options: dict) -> list[str]:
        """The checkpoints these options make, one per point of the curve (a sweep lists them in its plan)."""
        from medbench.training import build_config

        config = build_config(MergeConfig, {}, dict(options), self.name)
        return [checkpoint_name(config.method, t) for t in checked_points(config)]

    def train(self, request: TrainRequest) -> list[CheckpointInfo]:
        from mergekit.config import MergeConfiguration
        from mergekit.merge import run_merge
        from mergekit.options import MergeOptions

        config = request.config
        points = curve_points(config, request.model_ref)
        output_dir = Path(request.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        refs = [request.model_ref, *config.models]
        checkpoints = []
        # Models saved for mergekit (adapters folded into their base) are only needed while merging.
        with tempfile.TemporaryDirectory(prefix=".merge-inputs-", dir=output_dir) as work:
            dirs = [local_model_dir(ref, Path(work) / str(i), request.load_options) for i, ref in enumerate(refs)]
            check_same_architecture(refs, dirs)
            # No model card: it would name the temporary input directories; the manifest names the real inputs.
            options = MergeOptions(device=request.load_options.device, random_seed=request.seed, quiet=True,
                                   write_model_card=False)
            for t in points:
                target = output_dir / checkpoint_name(config.method, t)
                staging = output_dir / f".{target.name}.merging"  # renamed into place only when complete
                merge = merge_parameters(config, t, dirs[0], dirs[1:])
                run_merge(MergeConfiguration.model_validate(merge), str(staging), options)
                os.replace(staging, target)
                metrics = {"merge_method": config.method, "merge_t": t, "merge_models": config.models}
                if config.weights is not None:
                    metrics["merge_weights"] = config.weights
                # Every point is a finished merge, not an intermediate state of one.
                checkpoints.append(CheckpointInfo(path=target, kind="model", final=True, metrics=metrics))
        return checkpoints


@hookimpl
def register_trainers(register):
    register(MergeTrainer())
