"""Sweep executors: ``local`` (in this process, or one worker per visible GPU), ``ray`` and ``slurm``.

medbench schedules nothing itself: across GPUs it uses a process pool pinned with CUDA_VISIBLE_DEVICES, on a
cluster it hands cells to Ray or to SLURM through submitit. Every executor yields results as cells finish;
``run_cell`` records a failing cell as a failed result, so one bad cell never stops the rest.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

from medbench import hookimpl
from medbench.errors import MedbenchError


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:
        return 0


def _number(options: dict[str, str], key: str, default: Any, kind: type = int, low: float = 0) -> Any:
    """``--executor-option key=value`` as a number: a typo is one line naming the option, not a ValueError."""
    if key not in options:
        return default
    raw = options[key]
    try:
        value = kind(str(raw).strip())
    except ValueError:
        value = None
    if value is None or value != value or value < low:  # value != value: NaN
        what = "a whole number" if kind is int else "a number"
        raise MedbenchError(f"--executor-option {key}={raw!r} is not {what} of {low:g} or more",
                            f"write --executor-option {key}={max(int(low), 1)}")
    return value


def _known_options(executor: str, options: dict[str, str], known: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise MedbenchError(f"the {executor} executor has no option(s) {', '.join(unknown)}",
                            f"its options are: {', '.join(known)}")


def _pin_gpu(queue) -> None:
    os.environ["CUDA_VISIBLE_DEVICES"] = str(queue.get())


class LocalExecutor:
    name = "local"
    description = "this machine: cells one after another, or one worker per visible GPU (--executor-option gpus=N)"

    def check_options(self, options: dict[str, str], cells: int = 0) -> int:
        """The workers to start; a GPU count this machine does not have is refused (CUDA_VISIBLE_DEVICES=7 on a
        2-GPU machine would run that worker on the CPU, silently)."""
        _known_options(self.name, options, ("gpus",))
        visible = _gpu_count()
        gpus = _number(options, "gpus", None)
        if gpus is not None and gpus > max(visible, 1):  # gpus=1 on a CPU machine is the in-process default
            # Without GPUs the workers would all share the CPU, each with every thread: slower, not parallel.
            raise MedbenchError(f"--executor-option gpus={gpus}, but this machine has {visible or 'no'} GPU(s)",
                                f"write --executor-option gpus={visible} or less" if visible else
                                "leave out --executor-option gpus on this machine (cells run one after another)")
        return min(visible if gpus is None else gpus, max(cells, 1))  # never more workers than cells

    def run(self, cells: list[Any], run_cell, options: dict[str, str]) -> Iterator[Any]:
        gpus = self.check_options(options, len(cells))
        if gpus <= 1 or len(cells) <= 1:
            for cell in cells:
                yield run_cell(cell)
            return
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        context = mp.get_context("spawn")  # CUDA cannot be forked
        queue = context.Manager().Queue()
        for index in range(gpus):
            queue.put(index)
        with ProcessPoolExecutor(max_workers=gpus, mp_context=context, initializer=_pin_gpu,
                                 initargs=(queue,)) as pool:
            futures = [pool.submit(run_cell, cell) for cell in cells]
            for future in as_completed(futures):
                yield future.result()


class RayExecutor:
    name = "ray"
    description = ("a Ray cluster (--executor-option address=auto, or a local one); cells as Ray tasks with "
                   "gpus_per_cell / cpus_per_cell resources")

    def check_options(self, options: dict[str, str], cells: int = 0) -> tuple[int, float | None, float]:
        _known_options(self.name, options, ("address", "log_to_driver", "num_cpus", "gpus_per_cell", "cpus_per_cell"))
        return (_number(options, "num_cpus", os.cpu_count() or 1, low=1),
                _number(options, "gpus_per_cell", None, float), _number(options, "cpus_per_cell", 1.0, float))

    def run(self, cells: list[Any], run_cell, options: dict[str, str]) -> Iterator[Any]:
        num_cpus, gpus_per_cell, cpus_per_cell = self.check_options(options, len(cells))
        try:
            import ray
        except ImportError:
            raise MedbenchError("the ray executor needs the ray package", "pip install 'medbench[cluster]'") from None
        started_here = not ray.is_initialized()
        if started_here:
            init: dict[str, Any] = {"address": options.get("address"), "include_dashboard": False,
                                    "log_to_driver": options.get("log_to_driver", "false").lower() == "true"}
            if not options.get("address"):  # a local cluster on this machine
                init["num_cpus"] = num_cpus
            ray.init(**{k: v for k, v in init.items() if v is not None})
        try:
            gpus = gpus_per_cell if gpus_per_cell is not None else (1 if ray.cluster_resources().get("GPU") else 0)
            cpus = cpus_per_cell
            remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_call)
            pending = {remote.remote(run_cell, cell): cell for cell in cells}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    pending.pop(ref)
                    yield ray.get(ref)
        finally:
            if started_here:
                ray.shutdown()


class SlurmExecutor:
    name = "slurm"
    description = ("SLURM through submitit: one array job, a task per cell (--executor-option partition=..., "
                   "timeout_min=..., gpus_per_node=..., cpus_per_task=..., folder=...)")

    def check_options(self, options: dict[str, str], cells: int = 0) -> None:
        _number(options, "timeout_min", None, low=1)
        for key in ("gpus_per_node", "cpus_per_task", "mem_gb", "nodes", "tasks_per_node"):
            _number(options, key, None, low=0 if key == "gpus_per_node" else 1)

    def run(self, cells: list[Any], run_cell, options: dict[str, str]) -> Iterator[Any]:
        try:
            import submitit
        except ImportError:
            raise MedbenchError("the slurm executor needs the submitit package",
                                "pip install 'medbench[cluster]'") from None
        options = dict(options)
        folder = options.pop("folder", str(getattr(run_cell, "out_dir", ".")) + "/slurm/%j")
        cluster = options.pop("cluster", None)  # "debug" / "local" run the same code path without SLURM
        executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
        parameters: dict[str, Any] = {"timeout_min": _number(options, "timeout_min", 24 * 60, low=1),
                                      "name": options.pop("name", "medbench-sweep")}
        options.pop("timeout_min", None)
        for key in ("gpus_per_node", "cpus_per_task", "mem_gb", "nodes", "tasks_per_node"):
            if key in options:
                parameters[key] = _number(options, key, None, low=0 if key == "gpus_per_node" else 1)
                options.pop(key)
        for key, value in options.items():  # partition, account, qos, ... pass through as slurm_<key>
            parameters[key if cluster else f"slurm_{key}"] = value
        executor.update_parameters(**parameters)
        jobs = executor.map_array(run_cell, cells)
        pending = list(jobs)
        while pending:
            for job in list(pending):
                if job.done():
                    pending.remove(job)
                    yield job.result()
            if pending:
                import time

                time.sleep(2)


def _call(run_cell, cell):
    return run_cell(cell)


@hookimpl
def register_executors(register):
    register(LocalExecutor())
    register(RayExecutor())
    register(SlurmExecutor())
