"""Training in the context a model is scored in: a template-less model refused or given --chat-template-from's
template, and a template whose generation prompt is not the start of the answered turn (DeepSeek-R1's <think>)
trained after the generation prompt as scored, not after the prefix TRL would find."""

import shutil

import pytest

from medbench.errors import MedbenchError
from medbench.testing import make_byte_tokenizer
from medbench.trainers.chat_format import Formatter, borrow_chat_template
from medbench.training import TrainRequest, build_config
from medbench.trainingdata import load_training_examples
from medbench_plugins.sft import SFTOptions, prepare

# The shape of DeepSeek-R1's template: the generation prompt opens <think>, an answered turn has none.
THINKING_TEMPLATE = (
    "<|bos|>{% for m in messages %}{% if m['role'] == 'user' %}<|user|>{{ m['content'] }}"
    "{% else %}<|assistant|>{{ m['content'] }}<|eos|>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|><think>\n{% endif %}")


def thinking_tokenizer():
    tokenizer = make_byte_tokenizer()
    tokenizer.chat_template = THINKING_TEMPLATE
    return tokenizer


def test_a_template_whose_prompt_starts_the_answer_keeps_trls_rows():
    formatter = Formatter(make_byte_tokenizer(), True)
    assert not formatter.scored_prefix_differs
    assert formatter.sft_row("Q?", " B") == {"prompt": [{"role": "user", "content": "Q?"}],
                                             "completion": [{"role": "assistant", "content": "B"}]}


def test_a_thinking_template_trains_the_answer_after_the_scored_prompt():
    tokenizer = thinking_tokenizer()
    formatter = Formatter(tokenizer, True)
    assert formatter.scored_prefix_differs
    row = formatter.sft_row("Q?", " B")
    scored = formatter.prompt_ids("Q?")
    assert row["input_ids"][:len(scored)] == scored  # the <think> opener included, as scoring sees it
    assert tokenizer.decode(row["input_ids"][:len(scored)]).endswith("<|assistant|><think>\n")
    trained = [t for t, m in zip(row["input_ids"], row["completion_mask"]) if m]
    assert tokenizer.decode(trained) == "B<|eos|>"  # the answer and the template's end of turn, nothing else


def test_a_trainer_that_lets_trl_tokenize_refuses_a_thinking_template():
    with pytest.raises(MedbenchError, match="not scored in"):
        Formatter(thinking_tokenizer(), True).require_scored_prefix("r1", "DPO")
    Formatter(make_byte_tokenizer(), True).require_scored_prefix("tiny", "DPO")  # a consistent one passes


def test_chat_training_on_a_model_without_a_template_is_refused_not_trained_raw():
    tokenizer = make_byte_tokenizer()
    tokenizer.chat_template = None
    with pytest.raises(MedbenchError, match="has no chat template") as refused:
        Formatter(tokenizer, True)
    assert "--chat-template-from" in refused.value.fix
    assert not Formatter(tokenizer, False).chat  # raw training needs none


def test_training_refuses_a_template_that_eval_would_refuse():
    """The same guard as scoring: a template that loops or is huge is one line before training, not a stall."""
    looping = make_byte_tokenizer()
    looping.chat_template = "{% for i in range(10**9) %}{% for j in range(10**9) %}x{% endfor %}{% endfor %}"
    with pytest.raises(MedbenchError, match="cannot render a one-line question") as refused:
        Formatter(looping, True, "loops")
    assert "'loops'" in str(refused.value) and "--chat-template true" in str(refused.value)
    huge = make_byte_tokenizer()
    huge.chat_template = "{{ messages[0]['content'] }}" + "x" * (1 << 21)
    with pytest.raises(MedbenchError, match="characters"):
        Formatter(huge, True)
    Formatter(huge, False)  # raw training renders no template


def test_chat_template_from_gives_a_model_another_models_template(tiny_model_dir):
    tokenizer = make_byte_tokenizer()
    tokenizer.chat_template = None
    borrow_chat_template(tokenizer, str(tiny_model_dir))
    assert tokenizer.chat_template == make_byte_tokenizer().chat_template
    assert Formatter(tokenizer, True).chat


def test_chat_template_from_without_chat_template_is_a_slip():
    with pytest.raises(MedbenchError, match="--chat-template-from is given but --chat-template is false"):
        build_config(SFTOptions, {}, {"chat_template_from": "x"}, "sft")


def test_sft_on_a_template_less_base_trains_in_the_borrowed_template(tiny_model_dir, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    (base / "chat_template.jinja").unlink()  # where the tiny model keeps its template: now it has none
    examples = load_training_examples("medqa")

    def request(**options):
        config = build_config(SFTOptions, {}, {"train_batch_size": 2, "max_steps": 1, "max_examples": 2,
                                               "chat_template": True, **options}, "sft")
        return TrainRequest(model_ref=str(base), task="medqa", output_dir=tmp_path / "run", config=config,
                            examples=examples)

    with pytest.raises(MedbenchError, match="has no chat template"):
        prepare(request())
    run = prepare(request(chat_template_from=str(tiny_model_dir)))
    first = run.trainer.processing_class.decode(run.trainer.train_dataset[0]["input_ids"])
    assert first.startswith("<|user|>\n") and "<|assistant|>\n" in first


def test_sft_on_a_thinking_template_trains_each_answer_after_the_scored_prompt(tiny_model_dir, tmp_path):
    thinking = tmp_path / "thinking"
    shutil.copytree(tiny_model_dir, thinking)
    (thinking / "chat_template.jinja").write_text(THINKING_TEMPLATE)
    config = build_config(SFTOptions, {}, {"train_batch_size": 2, "max_steps": 1, "max_examples": 2,
                                           "chat_template": True}, "sft")
    run = prepare(TrainRequest(model_ref=str(thinking), task="medqa", output_dir=tmp_path / "run", config=config,
                               examples=load_training_examples("medqa")))
    tokenizer = run.trainer.processing_class
    formatter = Formatter(tokenizer, True)
    for row, example in zip(run.trainer.train_dataset, run.examples):
        scored = formatter.prompt_ids(example.prompt)
        assert row["input_ids"][:len(scored)] == scored
        assert tokenizer.decode([t for t in row["labels"] if t != -100]) == example.completion.strip() + "<|eos|>"


def test_chat_template_from_a_folder_without_a_tokenizer_is_one_line(tmp_path):
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(MedbenchError, match="no tokenizer could be read there"):
        borrow_chat_template(make_byte_tokenizer(), str(tmp_path / "adapter"))


# A task with a templated description, as stock MMLU-style tasks have: lm-eval puts the description in the system
# turn under a chat template (joined to any system prompt by fewshot_delimiter) and before the question raw.
DESCRIBED_TASK = """task: described
dataset_path: json
dataset_kwargs:
  data_files:
    train: {rows}
    test: {rows}
training_split: train
test_split: test
output_type: multiple_choice
description: "Questions about {{{{topic}}}}."
doc_to_text: "{{{{question}}}}\\nAnswer:"
doc_to_choice: ["A", "B"]
doc_to_target: label
metric_list: [{{metric: acc}}]
"""


@pytest.fixture
def described_task(tmp_path):
    import json

    from medbench.tasks import build_registry, load_tasks, task_sources

    (tmp_path / "described.yaml").write_text(DESCRIBED_TASK.format(rows=tmp_path / "rows.jsonl"))
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps({"topic": t, "question": f"Q{i}?", "label": i % 2}) + "\n"
                                                 for i, t in enumerate(["renal", "cardiac"])))
    with task_sources([tmp_path]):
        yield load_tasks(["described"], build_registry())["described"]


@pytest.mark.parametrize("chat", [True, False])
@pytest.mark.parametrize("system_prompt", [None, "Answer briefly."])
def test_training_prompts_are_the_prompts_lm_eval_scores(described_task, chat, system_prompt):
    from medbench.generation import GenerationOptions
    from medbench.trainingdata import examples_from_task

    tokenizer = make_byte_tokenizer()

    def render(messages, add_generation_prompt=True):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    formatter = Formatter(tokenizer, chat, "tiny", system_prompt)
    examples = examples_from_task(described_task, {})
    assert [e.description for e in examples] == ["Questions about renal.", "Questions about cardiac."]
    for example, doc in zip(examples, described_task.test_docs()):
        scored = described_task.fewshot_context(
            doc, 0, system_instruction=GenerationOptions(system_prompt=system_prompt).system_instruction(chat),
            apply_chat_template=chat, chat_template=render if chat else None)
        trained = render(formatter.prompt(example)) if chat else formatter.prompt(example)
        assert trained == scored
        assert tokenizer.decode(formatter.prompt_ids(example), skip_special_tokens=False).endswith(scored[-12:])


def test_a_template_without_a_system_role_trains_without_it_as_lm_eval_scores():
    tokenizer = make_byte_tokenizer()
    tokenizer.chat_template = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role "
                               "not supported') }}{% endif %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"
                               "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    formatter = Formatter(tokenizer, True, "gemma-like", "Answer briefly.")
    assert formatter.prompt("Q?") == [{"role": "user", "content": "Q?"}]  # HFLM drops the system turn too
    assert Formatter(make_byte_tokenizer(), True, "tiny", "Answer briefly.").prompt("Q?")[0] == \
        {"role": "system", "content": "Answer briefly."}


def test_an_empty_training_system_prompt_is_refused_naming_the_option():
    with pytest.raises(MedbenchError, match="--system-prompt: the system prompt is empty"):
        build_config(SFTOptions, {}, {"system_prompt": "  "}, "sft")


def test_a_task_scored_after_a_gen_prefix_is_refused_for_training(tmp_path):
    import json

    from medbench.tasks import build_registry, load_tasks, task_sources
    from medbench.trainingdata import examples_from_task

    (tmp_path / "rows.jsonl").write_text(json.dumps({"topic": "renal", "question": "Q?", "label": 0}) + "\n")
    prefixed = DESCRIBED_TASK.format(rows=tmp_path / "rows.jsonl") + 'gen_prefix: "The best answer is"\n'
    (tmp_path / "prefixed.yaml").write_text(prefixed.replace("task: described", "task: prefixed"))
    with task_sources([tmp_path]):
        task = load_tasks(["prefixed"], build_registry())["prefixed"]
    with pytest.raises(MedbenchError, match="sets gen_prefix 'The best answer is'") as refused:
        examples_from_task(task, {})
    assert "without gen_prefix" in refused.value.fix
