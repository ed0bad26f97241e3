"""Make `.gpu-carry/`: what the GPU machine needs to run `benchmarks/gpu/run_rows.sh` and cannot download.

The device machine (docs of the `device` tool) runs its own python3 with torch, transformers, peft and accelerate
but no TRL, lm-eval or datasets, and reaches no package registry. This collects, from the registry here:

* wheels of every package medbench[train] needs that the machine's image lacks, at the versions installed in
  ./.venv (transformers, peft, accelerate and TRL too, so both sides of every row run the versions tested here);
  pure-Python wheels where they exist, cp312 manylinux ones otherwise (the image's Python is 3.12);
* the SmolLM2 tokenizer files (no weights): the benchmark shapes are random-initialised with its 49,152-token
  vocabulary, as the anchors were (the weights are 270 MB, over what a device call carries).

    .venv/bin/python benchmarks/gpu/prepare_carry.py        # then: run(command=..., carry=[".gpu-carry"])
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import shutil
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
# What the device image holds (the tool's KINDS.md, read 2026-11-17); a package listed here is not carried.
IMAGE = set("""absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs certifi
charset-normalizer click cloudpickle colorama contourpy cycler filelock frozenlist fsspec h11 h5py hf-xet httpcore
httpx huggingface-hub idna jinja2 joblib markdown markdown-it-py markupsafe mdurl msgpack multidict networkx numpy
packaging pandas pathspec peft pillow pip pluggy portalocker propcache protobuf psutil pyarrow pygments pyparsing
python-dateutil pyyaml regex requests rich sacrebleu safetensors scikit-learn scipy sentencepiece setuptools six
sympy mpmath tabulate tensorboard threadpoolctl tiktoken tokenizers torch tqdm transformers triton typer
typing-extensions urllib3 wheel wrapt xxhash yarl zipp shellingham lxml tensorboard-data-server werkzeug grpcio
pytest iniconfig""".split())
# The versions tested here, not the image's: the training stack, and what transformers and datasets pin a range
# of (transformers checks huggingface-hub's version at import, and the image's 1.x fails it).
ALWAYS = {"transformers", "peft", "accelerate", "trl", "regex", "fsspec", "huggingface-hub"}
# merge rows need no GPU; torch is the image's own CUDA build; hub kernels are off on both sides of every row
# (USE_HUB_KERNELS=NO in run_rows.sh: offline they cannot be fetched, seen 2026-12-04), so `kernels` is not carried
NOT_NEEDED = {"mergekit", "torch", "triton", "kernels"}
# GPU-only packages medbench uses when present (medbench[gpu]): not installed here, where their Triton kernels cannot
# run, so carried at the registry's newest version (pure Python; torch and triton are the image's own).
GPU_ONLY = ("liger-kernel",)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def needed(root: str = "medbench", extras: tuple[str, ...] = ("train",)) -> dict[str, str]:
    """Every installed distribution medbench[extras] pulls in, transitively: {name: version}."""
    found: dict[str, str] = {}
    todo = [(root, set(extras))]
    while todo:
        name, wanted = todo.pop()
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        key = canonical(dist.metadata["Name"])
        if key in found and not wanted:
            continue
        found[key] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate({"extra": extra}) for extra in wanted or {""}):
                if canonical(req.name) not in found:
                    todo.append((req.name, set(req.extras)))
    found.pop("medbench", None)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / ".gpu-carry")
    parser.add_argument("--python-version", default="3.12")
    args = parser.parse_args()
    wheels = args.out / "wheels"
    shutil.rmtree(args.out, ignore_errors=True)
    wheels.mkdir(parents=True)
    carry = {name: version for name, version in needed().items()
             if (name not in IMAGE or name in ALWAYS) and name not in NOT_NEEDED}
    abi = "cp" + args.python_version.replace(".", "")
    for name, version in sorted(carry.items()):
        base = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(wheels)]
        pure = subprocess.run(base + [f"{name}=={version}", "--python-version", args.python_version,
                                      "--platform", "any", "--implementation", "py"], capture_output=True)
        if pure.returncode == 0:
            continue
        binary = subprocess.run(base + [f"{name}=={version}", "--python-version", args.python_version,
                                        "--implementation", "cp", "--abi", abi, "--platform", "manylinux_2_28_x86_64",
                                        "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64"],
                                capture_output=True)
        if binary.returncode != 0:  # an sdist only (langdetect): build its wheel here, as pip would there
            subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
                            f"{name}=={version}"], check=True)
    for name in GPU_ONLY:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d",
                        str(wheels), name, "--python-version", args.python_version, "--platform", "any",
                        "--implementation", "py"], check=True)
        carry[name] = "newest"
    tokenizer = args.out / "smollm2-tokenizer"
    tokenizer.mkdir()
    from medbench_plugins.builtin_models import EmbeddedModelLoader

    source = Path(EmbeddedModelLoader().ensure_converted())
    for file in TOKENIZER_FILES:
        if (source / file).is_file():
            shutil.copy2(source / file, tokenizer / file)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"{len(list(wheels.iterdir()))} wheels ({', '.join(sorted(carry))}) and the SmolLM2 tokenizer in "
          f"{args.out}: {total / 2**20:.1f} MiB (a device call carries 64 MiB at most, the working tree included)")


if __name__ == "__main__":
    main()
