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


def _pin_gpu(queue) -> None:
    os.environ["CUDA_VISIBLE_DEVICES"] = str(queue.get())


class LocalExecutor:
    name = "local"
    description = "this machine: cells one after another, or one worker per visible GPU (--executor-option gpus=N)"

    def run(self, cells: list[Any], run_cell, options: dict[str, str]) -> Iterator[Any]:
        gpus = int(options.get("gpus", _gpu_count()))
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

    def run(self, cells: list[Any], run_cell, options: dict[str, str]) -> Iterator[Any]:
        try:
            import ray
        except ImportError:
            raise MedbenchError("the ray executor needs the ray package", "pip install 'medbench[cluster]'") from None
        started_here = not ray.is_initialized()
        if started_here:
            init: dict[str, Any] = {"address": options.get("address"), "include_dashboard": False,
                                    "log_to_driver": options.get("log_to_driver", "false").lower() == "true"}
            if not options.get("address"):  # a local cluster on this machine
                init["num_cpus"] = int(options.get("num_cpus", os.cpu_count() or 1))
            ray.init(**{k: v for k, v in init.items() if v is not None})
        try:
            gpus = float(options.get("gpus_per_cell", 1 if ray.cluster_resources().get("GPU") else 0))
            cpus = float(options.get("cpus_per_cell", 1))
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
        parameters: dict[str, Any] = {"timeout_min": int(options.pop("timeout_min", 24 * 60)),
                                      "name": options.pop("name", "medbench-sweep")}
        for key in ("gpus_per_node", "cpus_per_task", "mem_gb", "nodes", "tasks_per_node"):
            if key in options:
                parameters[key] = int(options.pop(key))
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
