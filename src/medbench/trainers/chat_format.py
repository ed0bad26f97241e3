"""Training examples in the form they are scored in: raw text, or one chat turn in the tokenizer's template.

A model is scored after its template's generation prompt, so that is the context it must be trained in. Most
templates render the generation prompt as the start of an answered turn and TRL's prompt-completion rows are then
exact; some do not (DeepSeek-R1's opens a ``<think>`` block in the generation prompt that an answered turn leaves
out), and TRL would train the answer after a prefix the model is never scored after. For those the rows are built
here as token ids: the generation prompt exactly as scored, then the answer and the template's end of turn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medbench.errors import MedbenchError
from medbench.trainingdata import TrainingExample

_PROBE_PROMPT, _PROBE_ANSWER = "Which is it?", "It is B."


class Formatter:
    """Prompts and completions as one chat turn when ``use_chat_template`` (the tokenizer must have a template),
    else as raw text (the form lm-eval scores). Completions come in the task's raw form, with its target
    delimiter."""

    def __init__(self, tokenizer: Any, use_chat_template: bool, ref: str = "the model",
                 system_prompt: str | None = None):
        from medbench.generation import GenerationOptions

        self.tokenizer = tokenizer
        if use_chat_template:  # the guard evaluation has: no raw fallback (one format trained, another scored)
            from medbench.models import require_chat_template

            require_chat_template(tokenizer, ref, "--chat-template true",
                                  "pass --chat-template-from MODEL to train in that model's template, or "
                                  "--chat-template false")
        self.chat = bool(use_chat_template)
        # The system prompt as eval's --system-prompt puts it: a system turn's text, or raw its own paragraph.
        self.system = GenerationOptions(system_prompt=system_prompt).system_instruction(self.chat)
        self.given_system = system_prompt
        self._end_of_turn: str | None = None  # None: the generation prompt starts the answered turn (or not probed)
        self._probed = False
        self._takes_system: bool | None = None

    def prompt(self, example: TrainingExample | str) -> str | list[dict[str, str]]:
        """The prompt as lm-eval scores it (fewshot_context, no shots): raw, any system prompt's paragraph and the
        example's prompt; in the template, a system turn of the system prompt and the task's description, then
        the question as the user turn. A string is a prompt with no description."""
        from lm_eval.api.utils import maybe_delimit

        text, description, delimiter = (example, "", "\n\n") if isinstance(example, str) else \
            (example.prompt, example.description, example.fewshot_delimiter)
        if not self.chat:
            if self.system and description and text.startswith(description):  # as eval joins them (a described task)
                return maybe_delimit(self.given_system, description, delimiter) + text[len(description):]
            return (self.system or "") + text
        if description and text.startswith(description):
            text = text[len(description):]
        else:
            description = ""
        system = maybe_delimit(self.system, description, delimiter)
        turn = [{"role": "user", "content": text}]
        return [{"role": "system", "content": system}] + turn if system and self.takes_system_turn else turn

    @property
    def takes_system_turn(self) -> bool:
        """Whether the template renders a system turn: lm-eval's HFLM drops the turn for one that raises (Gemma's
        "System role not supported"), so training does the same to stay in the scored context."""
        if self._takes_system is None:
            from jinja2 import TemplateError

            try:
                _render(self.tokenizer, [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}], True)
                self._takes_system = True
            except TemplateError:
                self._takes_system = False
        return self._takes_system

    def completion(self, text: str) -> str | list[dict[str, str]]:
        return [{"role": "assistant", "content": text.strip()}] if self.chat else text

    def rendered(self, example: TrainingExample | str, completion: str) -> str:
        """The prompt and a completion as one text, as trained (to measure a row's length before a trainer that
        truncates would cut it)."""
        if self.chat:
            return self.tokenizer.apply_chat_template(self.prompt(example) + self.completion(completion),
                                                      tokenize=False)
        return self.prompt(example) + completion

    def prompt_ids(self, example: TrainingExample | str) -> list[int]:
        """The prompt's tokens as the model sees them before its answer (for sampling from it)."""
        prompt = self.prompt(example)
        if self.chat:
            return self.tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                                      return_dict=True)["input_ids"]
        return self.tokenizer(prompt)["input_ids"]

    @property
    def scored_prefix_differs(self) -> bool:
        """True when the template renders the generation prompt other than as the start of an answered turn."""
        if not self.chat:
            return False
        if not self._probed:
            self._end_of_turn, self._probed = _end_of_turn(self.tokenizer), True
        return self._end_of_turn is not None

    def require_scored_prefix(self, ref: str, trainer: str) -> None:
        """For trainers that build their rows through TRL's own tokenization: refuse a template whose generation
        prompt is not the start of the answered turn, rather than train after another context than scored."""
        if self.scored_prefix_differs:
            raise MedbenchError(f"the chat template of {ref!r} renders the prompt alone otherwise than before an "
                                f"answer (as one that opens a <think> block does), so {trainer} would train the "
                                "answers in a context they are not scored in", "pass --chat-template false")

    def sft_row(self, prompt: TrainingExample | str, completion: str) -> dict[str, Any]:
        """One SFT row: TRL's prompt/completion, or, where the template's generation prompt is not the start of
        the answered turn, token ids with the generation prompt as scored and a mask over the answer."""
        if not self.scored_prefix_differs:
            return {"prompt": self.prompt(prompt), "completion": self.completion(completion)}
        context = self.prompt_ids(prompt)
        answer = self.tokenizer(completion.strip() + self._end_of_turn, add_special_tokens=False)["input_ids"]
        return {"input_ids": context + answer, "completion_mask": [0] * len(context) + [1] * len(answer)}


def _render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def _end_of_turn(tokenizer: Any) -> str | None:
    """None where the generation prompt starts the answered turn; else the text the template puts after an answer
    (its end of turn), to close an answer trained after the generation prompt."""
    user = [{"role": "user", "content": _PROBE_PROMPT}]
    prompt = _render(tokenizer, user, True)
    answered = _render(tokenizer, user + [{"role": "assistant", "content": _PROBE_ANSWER}], False)
    if answered.startswith(prompt):
        return None
    at = answered.rfind(_PROBE_ANSWER)
    if at < 0:  # no answer rendered at all: TRL's rows, which check_trainable refuses (nothing to train on)
        return None
    return answered[at + len(_PROBE_ANSWER):] or (tokenizer.eos_token or "")


def borrow_chat_template(tokenizer: Any, ref: str) -> None:
    """Give ``tokenizer`` the chat template of model ``ref`` (--chat-template-from): a base or continued-pretrained
    model has none, and is trained in the template of the model it will be merged into or scored as."""
    from transformers import AutoTokenizer

    from medbench.models import LoadOptions, hub_snapshot, require_chat_template, resolve_model

    path = Path(ref).expanduser()
    if path.is_dir() or ("/" in ref and not path.exists() and not ref.startswith((".", "~"))):
        folder = path if path.is_dir() else hub_snapshot(ref, ["*.json", "*.jinja", "*.model", "*.txt"])
        try:
            donor = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
        except (OSError, ValueError, TypeError) as exc:  # e.g. an adapter folder saved without its tokenizer
            raise MedbenchError(f"--chat-template-from {ref}: no tokenizer could be read there ({type(exc).__name__})",
                                "name a model folder or hub id whose tokenizer has the chat template") from None
    else:  # the embedded model or a GGUF file: their tokenizer comes with the model
        donor = resolve_model(ref, LoadOptions(device="cpu")).tokenizer
    require_chat_template(donor, ref, "--chat-template-from")
    tokenizer.chat_template = donor.chat_template


def check_trainable(lengths: list[int], completion_tokens: list[int], examples: list[TrainingExample],
                    max_length: int) -> None:
    """Fail before training when an example would teach nothing (loss 0.0) or would have its target cut off."""
    empty = [i for i, count in enumerate(completion_tokens) if count == 0]
    if empty:
        raise MedbenchError(
            f"{len(empty)} of {len(examples)} training examples have no completion token left to train on after "
            f"masking (first: doc {examples[empty[0]].doc_id}), so the loss would read 0.0",
            "the tokenizer's chat template renders no assistant content; pass --chat-template false or use a model "
            "whose template does")
    too_long = [i for i, length in enumerate(lengths) if length > max_length]
    if too_long:
        longest = max(lengths)
        raise MedbenchError(
            f"{len(too_long)} of {len(examples)} training examples are longer than max_length={max_length} tokens "
            f"(longest: {longest}, doc {examples[lengths.index(longest)].doc_id}); truncation would cut their "
            f"completion", f"pass --max-length {longest} or more")
