"""Nothing unsafe runs by default: task code only from trusted folders, safe YAML, no remote code, no pickles,
no hub calls unless asked for."""

from __future__ import annotations

import ast
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from medbench.cli import main
from medbench.errors import MedbenchError

REPO = Path(__file__).resolve().parent.parent

CODED_TASK = """task: coded
custom_dataset: !function utils.load
test_split: test
output_type: multiple_choice
doc_to_text: "{{q}}"
doc_to_choice: ["yes", "no"]
doc_to_target: 0
metric_list: [{metric: acc}]
"""

# Imported only when lm-eval builds the task: it leaves a mark, so the test sees whether the code ran.
CODED_UTILS = """import os
from pathlib import Path

Path(os.environ["MEDBENCH_TEST_MARK"]).write_text("task code ran")


def load(**kwargs):
    import datasets

    rows = [{"q": "Is this a question?"}, {"q": "And this?"}]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})
"""


@pytest.fixture
def coded_tasks(tmp_path, monkeypatch):
    folder = tmp_path / "user_tasks"
    folder.mkdir()
    (folder / "coded.yaml").write_text(CODED_TASK)
    (folder / "utils.py").write_text(CODED_UTILS)
    mark = tmp_path / "task-code-ran"
    monkeypatch.setenv("MEDBENCH_TEST_MARK", str(mark))
    monkeypatch.chdir(tmp_path)
    return folder, mark


def test_task_code_from_a_user_folder_needs_trust_task_code(coded_tasks, tiny_model_dir, capsys):
    folder, mark = coded_tasks
    eval_args = ["eval", "--model", str(tiny_model_dir), "--tasks", "coded", "--include-path", str(folder),
                 "--leaderboard-dir", "lb", "--limit", "2"]
    with pytest.raises(SystemExit) as refused:
        main(eval_args)
    err = capsys.readouterr().err
    assert refused.value.code == 2
    assert "imports code (!function utils.load) from a folder medbench does not trust" in err
    assert "pass --trust-task-code" in err and not mark.exists()

    main(["tasks", "--json", "--include-path", str(folder)])  # listed, with the refusal as its status
    rows = {row["task"]: row for row in json.loads(capsys.readouterr().out)["tasks"]}
    assert rows["coded"]["plugin"] == "--include-path" and "--trust-task-code" in rows["coded"]["status"]
    assert rows["medqa"]["status"] == "ok"  # built-in tasks import their own loader code without the flag
    assert not mark.exists()

    main(eval_args + ["--trust-task-code"])
    assert mark.exists()
    assert list(Path("lb").glob("records/*/coded/record.json"))


def test_task_code_from_a_plugin_folder_is_trusted(coded_tasks, plugin_registration):
    from medbench import hookimpl
    from medbench.tasks import load_tasks

    folder, mark = coded_tasks

    class InstalledTasks:
        @hookimpl
        def register_tasks(self, register):
            register(folder)

    plugin_registration(InstalledTasks(), "installed-tasks")
    assert len(load_tasks(["coded"])["coded"].test_docs()) == 2
    assert mark.exists()


def test_include_path_tasks_without_code_need_no_flag(tmp_path, monkeypatch):
    from medbench.tasks import load_tasks, task_sources

    folder = tmp_path / "user_tasks"
    folder.mkdir()
    (folder / "data.jsonl").write_text('{"q": "Q1?"}\n{"q": "Q2?"}\n')
    (folder / "plain.yaml").write_text(CODED_TASK.replace("task: coded", "task: plain").replace(
        "custom_dataset: !function utils.load",
        f"dataset_path: json\ndataset_kwargs: {{data_files: {{test: {folder / 'data.jsonl'}}}}}"))
    with task_sources([folder]):
        assert len(load_tasks(["plain"])["plain"].test_docs()) == 2
    with pytest.raises(MedbenchError, match="unknown task 'plain'"):  # outside the block: not indexed
        load_tasks(["plain"])


# --- YAML -----------------------------------------------------------------------------------------------------

SAFE_LOADERS = (yaml.SafeLoader, getattr(yaml, "CSafeLoader", yaml.SafeLoader))
UNSAFE_NAMES = {"unsafe_load", "unsafe_load_all", "full_load", "full_load_all", "Loader", "UnsafeLoader",
                "FullLoader", "CLoader", "CUnsafeLoader", "CFullLoader"}


def _python_files():
    for root in (REPO / "src" / "medbench", REPO / "plugins", REPO / "tasks"):
        yield from sorted(root.rglob("*.py"))


def test_medbench_reads_yaml_only_with_safe_loaders():
    """Every yaml.load in medbench's own code uses a SafeLoader (sub)class; the unsafe entry points are never named."""
    import importlib

    checked = 0
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "yaml":
                assert node.attr not in UNSAFE_NAMES, f"{path}:{node.lineno} uses yaml.{node.attr}"
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "yaml"):
                continue
            if node.func.attr in ("load", "load_all"):
                loader = next((kw.value for kw in node.keywords if kw.arg == "Loader"),
                              node.args[1] if len(node.args) > 1 else None)
                assert isinstance(loader, ast.Name), f"{path}:{node.lineno}: yaml.load without a named Loader"
                module = importlib.import_module(_module_name(path))
                assert issubclass(getattr(module, loader.id), SAFE_LOADERS), f"{path}:{node.lineno}"
                checked += 1
            elif node.func.attr in ("safe_load", "safe_load_all", "dump", "safe_dump", "YAMLError"):
                checked += 1
    assert checked >= 2  # the task indexer and the trainer config reader at least


def _module_name(path: Path) -> str:
    relative = path.relative_to(REPO)
    parts = list(relative.with_suffix("").parts)
    if parts[0] == "src":
        parts = parts[1:]
    elif parts[0] == "plugins":
        parts[0] = "medbench_plugins"
    elif parts[0] == "tasks":
        parts[0] = "medbench_tasks"
    return ".".join(parts)


PYTHON_TAG = "!!python/object/apply:os.system ['echo pwned > {mark}']\n"


def test_yaml_that_constructs_python_objects_is_refused(tmp_path, capsys, monkeypatch):
    from medbench.tasks import read_task_yaml
    from medbench.training import read_config_file

    monkeypatch.chdir(tmp_path)
    mark = tmp_path / "pwned"
    config = tmp_path / "opts.yaml"
    config.write_text("max_steps: " + PYTHON_TAG.format(mark=mark))
    with pytest.raises(MedbenchError, match="opts.yaml is not valid YAML"):
        read_config_file(config)
    task = tmp_path / "evil.yaml"
    task.write_text("task: evil\ndoc_to_text: " + PYTHON_TAG.format(mark=mark))
    with pytest.raises(MedbenchError, match="evil.yaml is not valid YAML"):
        read_task_yaml(task)
    assert not mark.exists()


# --- remote code and pickles -----------------------------------------------------------------------------------

def _record_from_pretrained(monkeypatch):
    import transformers

    calls = []
    for cls in (transformers.AutoModelForCausalLM, transformers.AutoTokenizer):
        original = cls.from_pretrained.__func__

        def recording(klass, *args, _original=original, _name=cls.__name__, **kwargs):
            calls.append((_name, kwargs))
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(recording))
    return calls


@pytest.mark.parametrize("flag, expected", [([], False), (["--trust-remote-code"], True)])
def test_trust_remote_code_is_off_unless_asked_for(flag, expected, tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    calls = _record_from_pretrained(monkeypatch)
    main(["eval", "--model", str(tiny_model_dir), "--tasks", "medqa", "--limit", "1", "--leaderboard-dir", "lb", *flag])
    assert {name for name, _ in calls} == {"AutoModelForCausalLM", "AutoTokenizer"}
    assert all(kwargs.get("trust_remote_code") is expected for _, kwargs in calls)
    assert all(kwargs.get("use_safetensors") is True for name, kwargs in calls if name == "AutoModelForCausalLM")


def test_training_never_trusts_remote_code(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    calls = _record_from_pretrained(monkeypatch)
    main(["train", "--plugin", "sft", "--model", str(tiny_model_dir), "--task", "medqa", "--eval-limit", "1",
          "--max-steps", "1", "--max-examples", "2", "--train-batch-size", "2"])
    assert calls and all(kwargs.get("trust_remote_code") is False for _, kwargs in calls)


class _LeavesAMark:
    """Unpickling this creates a directory: proof that a pickle was loaded."""

    def __init__(self, mark: Path):
        self.mark = mark

    def __reduce__(self):
        return os.makedirs, (str(self.mark),)


def test_pickle_weights_beside_safetensors_are_never_unpickled(tiny_model_dir, tmp_path):
    import shutil

    from medbench.models import resolve_model

    mark = tmp_path / "unpickled"
    model_dir = shutil.copytree(tiny_model_dir, tmp_path / "model")
    (model_dir / "pytorch_model.bin").write_bytes(pickle.dumps(_LeavesAMark(mark)))
    assert resolve_model(str(model_dir)).kind == "local"
    assert not mark.exists()

    only_pickle = tmp_path / "only-pickle"
    only_pickle.mkdir()
    shutil.copy(model_dir / "config.json", only_pickle)
    shutil.copy(model_dir / "pytorch_model.bin", only_pickle)
    with pytest.raises(MedbenchError, match="holds only pickle weights.*can run code.*convert them to safetensors"):
        resolve_model(str(only_pickle))
    assert not mark.exists()


def test_pickle_adapter_is_refused_before_its_base_is_loaded(tmp_path):
    from medbench.models import resolve_model

    mark = tmp_path / "unpickled"
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA",
                                                             "base_model_name_or_path": str(tmp_path / "no-base")}))
    (adapter / "adapter_model.bin").write_bytes(pickle.dumps(_LeavesAMark(mark)))
    with pytest.raises(MedbenchError, match="no adapter_model.safetensors \\(only pickle weights.*safe_serialization"):
        resolve_model(str(adapter))
    assert not mark.exists()


# --- offline by default ----------------------------------------------------------------------------------------

# Loaded from --plugins-dir, i.e. after medbench has set up its environment: reports what the hub libraries see.
PROBE_PLUGIN = """import json
import os

import datasets.config
import huggingface_hub.constants

try:  # what from_pretrained asks before swapping hub kernels in (transformers 5.2x)
    from transformers.integrations.hub_kernels import _kernels_enabled
    kernels = _kernels_enabled()
except ImportError:
    kernels = None
with open(os.environ["MEDBENCH_PROBE_OUT"], "w") as fh:
    json.dump({"env": os.environ.get("HF_HUB_OFFLINE"), "hub": huggingface_hub.constants.HF_HUB_OFFLINE,
               "datasets": datasets.config.HF_HUB_OFFLINE, "kernels_env": os.environ.get("USE_HUB_KERNELS"),
               "kernels": kernels}, fh)
"""


def _probe(tmp_path, env: dict[str, str], args: list[str] = ()) -> dict:
    """What the hub libraries see inside `medbench [args] plugins --json` run with ``env`` (PROBE_PLUGIN)."""
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    (probe_dir / "probe.py").write_text(PROBE_PLUGIN)
    env = {**env, "MEDBENCH_PROBE_OUT": str(tmp_path / "seen.json")}
    result = subprocess.run([sys.executable, "-m", "medbench.cli", *args, "--plugins-dir", str(probe_dir),
                             "plugins", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads((tmp_path / "seen.json").read_text())


@pytest.mark.parametrize("user_setting, args, offline", [
    (None, [], True),  # offline by default
    (None, ["--online"], False),  # --online lets the hub in
    ("0", [], False),  # so does a user who set HF_HUB_OFFLINE=0 themselves
    ("1", ["--online"], False),  # the flag wins over the environment
])
def test_offline_unless_online_is_asked_for(user_setting, args, offline, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    if user_setting is not None:
        env["HF_HUB_OFFLINE"] = user_setting
    seen = _probe(tmp_path, env, args)
    assert seen["hub"] is offline and seen["datasets"] is offline, seen


@pytest.mark.parametrize("user_setting, enabled", [(None, False), ("YES", True)])
def test_hub_kernels_are_off_unless_asked_for(user_setting, enabled, tmp_path):
    """No kernel code fetched from the hub replaces a model's layers unless the user sets USE_HUB_KERNELS."""
    env = {k: v for k, v in os.environ.items() if k != "USE_HUB_KERNELS"}
    if user_setting is not None:
        env["USE_HUB_KERNELS"] = user_setting
    seen = _probe(tmp_path, env)
    assert seen["kernels_env"] == (user_setting or "NO"), seen
    if seen["kernels"] is not None:  # a transformers with hub kernels: it reads the variable as medbench set it
        assert seen["kernels"] is enabled, seen
