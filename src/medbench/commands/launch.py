"""Relaunching a command in several data-parallel processes through `accelerate launch` (`train --num-processes`,
`eval --num-processes`): the same command line, less the launch options, run by every process."""

from __future__ import annotations

import os
import sys

from medbench.commands.common import err_console
from medbench.console import terminal_safe
from medbench.errors import MedbenchError

INVOCATION: list[str] = []  # the command line main() was given, for relaunching under accelerate
LAUNCH_OPTIONS = ("--num-processes", "--accelerate-config")  # each takes one value; the children run without them


def relaunch_argv(argv: list[str]) -> list[str]:
    """``argv`` without the launch options (``--num-processes 2`` and ``--num-processes=2`` alike)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in LAUNCH_OPTIONS:
            skip = "=" not in arg
            continue
        out.append(arg)
    return out


def launch(what: str, num_processes: int, accelerate_config: str | None = None,
           env: dict[str, str] | None = None, fix: str = "fix what they report") -> None:
    """Run this same command in ``num_processes`` processes through `accelerate launch` and wait for them;
    ``what`` names them in messages ("training", "evaluation"), ``env`` is added to theirs, ``fix`` ends the
    one-line error when one of them fails."""
    import subprocess

    import torch

    launcher = [sys.executable, "-m", "accelerate.commands.launch"]
    if accelerate_config:
        launcher += ["--config_file", accelerate_config]
        if num_processes > 1:
            launcher += ["--num_processes", str(num_processes)]
    else:
        launcher += ["--num_processes", str(num_processes), "--num_machines", "1", "--mixed_precision", "no",
                     "--dynamo_backend", "no"]
        # accelerate's multi-GPU launcher is torchrun; on a machine without GPUs its processes join over gloo.
        launcher += ["--multi_gpu"] if num_processes > 1 else []
    command = [*launcher, "-m", "medbench.cli", *relaunch_argv(INVOCATION)]
    err_console.print(terminal_safe(f"launching {num_processes} {what} processes "
                                    f"({'GPU' if torch.cuda.is_available() else 'CPU'}): {' '.join(command)}"),
                      highlight=False, soft_wrap=True)
    env = {**os.environ, **(env or {}), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    code = subprocess.call(command, env=env)
    if code:
        raise MedbenchError(f"the {num_processes} {what} processes exited with status {code} (see their output "
                            f"above)", fix)


def check_processes(num_processes: int, device: str) -> None:
    """What `--num-processes N` needs, checked before anything is launched: a GPU a process (or a CPU core a
    process on a machine without GPUs), each process choosing its own device, and no launcher around this one."""
    import torch

    from medbench.training import world_size

    if world_size() > 1:
        raise MedbenchError(f"--num-processes {num_processes} inside a launch of {world_size()} processes",
                            "drop --num-processes: the launcher already started the processes")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device != "auto" and not (device == "cpu" and not gpus):
        raise MedbenchError(f"--device {device} with --num-processes {num_processes}: each process takes a device "
                            "of its own", "leave out --device (auto: one GPU a process, or the CPU)")
    available, unit = (gpus, "GPU(s)") if gpus else (os.cpu_count() or 1, "CPU core(s)")
    if num_processes > available:
        raise MedbenchError(f"--num-processes {num_processes} but this machine has {available} {unit}",
                            f"pass --num-processes {available} or less")
