"""instruction_following decodes as lm-eval's own IFEval does: many of its prompts need a complete ending (an end
phrase, a postscript, a closed JSON object or quotation), so a shorter cap fails a verbose model for verbosity,
not for ignoring the instruction."""

from pathlib import Path

import lm_eval

from medbench.tasks import load_tasks, read_task_yaml


def test_generation_settings_are_lm_evals_ifeval_settings():
    ifeval = read_task_yaml(Path(lm_eval.__file__).parent / "tasks" / "ifeval" / "ifeval.yaml")
    task = load_tasks(["instruction_following"])["instruction_following"]
    assert task.config.generation_kwargs == ifeval["generation_kwargs"]
    assert task.config.generation_kwargs["max_gen_toks"] >= 1280
