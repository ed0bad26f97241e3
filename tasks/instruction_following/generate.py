"""Generate the bundled instruction_following sample: patient-education prompts with verifiable constraints.

The constraints are IFEval's (lm-eval's ``lm_eval.tasks.ifeval``): each row names them by IFEval instruction
id with IFEval's kwargs, so the task scores them with IFEval's own checkers. Rules:

* a prompt = one request from the topic table (topics.py; explain X to a patient, write a note for a caregiver,
  ...) + 1 to 3 constraints written out in plain words. Per split the first constraint cycles through every
  instruction type in INSTRUCTION_TYPES (shuffled), so each type appears; then an anchor (version 1.4,
  ``pick_ids``): the closing phrase (+ 0-1 more at random from those compatible, COMPATIBLE), or words to include
  with forbidden words drawn from the other topics' words to include, so no single fixed text meets more than a
  few percent of the prompts. difficulty: 1 constraint easy, 2 medium, 3 hard. category: the topic's area.
* compositional split (version 1.5, ``held_out``): validation and test ask only for instruction sets train never
  asks for; where the first type is in a HELD_OUT_PAIRS pair (lowercase with a format), the set is that pair with
  the closing phrase. Train still has every type.
* ``response`` is a reference answer built from the topic's facts that satisfies every constraint (the test
  suite checks this with IFEval's checkers); it exists for training (SFT / DPO) and is never compared with
  the model's answer. The numbers in the constraints are set from it: "fewer than N words" has N 5-15 above
  its word count, "at least N words" N at or below it, keyword counts match it.
* instruction types that need data lm-eval cannot fetch offline are not used: number_sentences and
  capital_word_frequency (nltk punkt), response_language and english_capital (language detection).

Run ``python generate.py`` to rewrite data/{train,validation,test}.jsonl. The output depends only on SEED.
"""

from __future__ import annotations

import importlib.util
import json
import random
import re
import zlib
from pathlib import Path


def _sibling(name: str):
    """A module next to this file, loaded by path: the generator also runs loaded by path, outside any package."""
    spec = importlib.util.spec_from_file_location(f"_instruction_following_{name}",
                                                  Path(__file__).resolve().with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SEED = 20263
# test 600: merge_retention tests "instruction following kept" by TOST within 0.05; at 60 items that test has
# no power (90% CI half-width 0.07-0.12), at 600 about 0.03 (train and validation are unchanged: test comes last).
SIZES = {"train": 120, "validation": 30, "test": 600}

INSTRUCTION_TYPES = [
    "length_constraints:number_words",
    "length_constraints:number_paragraphs",
    "detectable_format:number_bullet_lists",
    "detectable_format:json_format",
    "detectable_format:title",
    "detectable_format:number_highlighted_sections",
    "detectable_format:multiple_sections",
    "detectable_content:postscript",
    "detectable_content:number_placeholders",
    "keywords:existence",
    "keywords:forbidden_words",
    "keywords:frequency",
    "change_case:english_lowercase",
    "punctuation:no_comma",
    "startend:end_checker",
    "startend:quotation",
]
_CONFLICTS = [
    ("detectable_format:number_bullet_lists", "length_constraints:number_paragraphs"),
    ("detectable_format:number_bullet_lists", "detectable_format:multiple_sections"),
    ("detectable_format:number_bullet_lists", "detectable_format:number_highlighted_sections"),
    ("length_constraints:number_paragraphs", "detectable_format:multiple_sections"),
    ("length_constraints:number_paragraphs", "detectable_format:number_highlighted_sections"),
    ("change_case:english_lowercase", "detectable_content:postscript"),
    ("change_case:english_lowercase", "detectable_format:multiple_sections"),
    ("startend:quotation", "detectable_format:title"),
    ("startend:quotation", "detectable_format:number_bullet_lists"),  # a leading quote hides the first bullet
]  # 1.4: end_checker goes with lowercase and postscript, as in IFEval (its checker ignores case)
# JSON output goes only with word-level keyword constraints (as in IFEval's conflict table).
_JSON_OK = {"keywords:existence", "keywords:forbidden_words"}


def compatible(a: str, b: str) -> bool:
    if a == b:
        return False
    if "detectable_format:json_format" in (a, b):
        return (b if a == "detectable_format:json_format" else a) in _JSON_OK
    return (a, b) not in _CONFLICTS and (b, a) not in _CONFLICTS


COMPATIBLE = {a: [b for b in INSTRUCTION_TYPES if compatible(a, b)] for a in INSTRUCTION_TYPES}
# Constraints a fixed text cannot meet for every prompt (every prompt has one). 1.3 also counted the words to include
# alone and the bullet / paragraph / section counts: a text listing the topics' vocabulary with six "Section X"
# headers met every constraint of 25% of the test prompts (IFEval's section check is "at least N"; exact counts are
# 1-in-3 guesses). Since 1.4 a prompt has the closing phrase (one of 120), or the words to include together with
# forbidden words taken from the other prompts' words to include (KEYWORD_PAIR), with a guessable count when
# nothing else pins the text.
ANCHORS = ["keywords:existence", "startend:end_checker"]
KEYWORD_PAIR = ["keywords:existence", "keywords:forbidden_words"]
# counts and bounds that change from prompt to prompt: a fixed text meets at most a share of them
GUESSES = ["detectable_format:number_bullet_lists", "length_constraints:number_paragraphs",
           "length_constraints:number_words", "keywords:frequency"]

# 1.5, compositional split: validation and test ask only for instruction sets no training prompt asks for, and 44% of
# their prompts pair all-lowercase text with a format (title, highlights, placeholders, quotes, bullets, paragraphs)
# that no training prompt combines with it: every training text carrying the format has capitals, so no training
# response, nor two joined, nor one with a line of another pasted in, meets both. Every single type is taught in
# train. In 1.4, 507 of 600 test prompts asked for a set some training prompt asked for: its response with the
# anchors edited met 0.60 of them, tried in turn until the prompt's checkers passed 0.74 (README "Retrieve-and-edit").
_LOWER = "change_case:english_lowercase"
HELD_OUT_PAIRS = [frozenset((_LOWER, t)) for t in (
    "detectable_format:title", "detectable_format:number_highlighted_sections",
    "detectable_content:number_placeholders", "startend:quotation", "detectable_format:number_bullet_lists",
    "length_constraints:number_paragraphs")]
PARTNERS = {a: sorted(b for pair in HELD_OUT_PAIRS if a in pair for b in pair - {a})
            for a in sorted({t for pair in HELD_OUT_PAIRS for t in pair})}
JSON_SET = frozenset(["detectable_format:json_format", *KEYWORD_PAIR])

TOPICS: list[dict] = _sibling("topics").TOPICS  # the topic table (facts, words, requests): topics.py

ASK_ENDINGS = [".", ".", ":"]
# closing phrase = one opener + one sign-off (120): a fixed ending meets about 1 in 100 of the prompts asking for one
END_OPENERS = ["Is there anything else I can help with?", "Any other questions?", "We are here to help.",
               "Please ask your care team if anything is unclear.", "Thank you for reading.",
               "Call us if you are worried.", "Keep this guide handy.", "Talk to us at any time.",
               "Your questions are always welcome.", "Write down anything you want to ask.",
               "Bring your questions to the next visit.", "Let us know how you get on."]
END_SIGNOFFS = ["Stay well.", "Take care of yourself.", "Your health matters to us.", "Wishing you a quick recovery.",
                "All the best.", "Look after yourself.", "See you soon.", "Best wishes from your care team.",
                "Be well.", "Good luck."]
END_PHRASES = [f"{a} {b}" for a in END_OPENERS for b in END_SIGNOFFS]
PS_SENTENCES = ["Keep this note somewhere you can find it.", "Bring this note to your next appointment.",
                "Your pharmacist can also answer questions.", "Share this with the people who help you at home."]
PLACEHOLDER_SENTENCES = ["Call [clinic phone number] if you have questions.",
                         "Your next visit is with [doctor name] on [date].",
                         "Write your questions for [care team member] at [clinic address]."]


def count_words(text: str) -> int:
    """Words as IFEval counts them (nltk's RegexpTokenizer(r"\\w+"), which is re.findall(r"\\w+"))."""
    return len(re.findall(r"\w+", text))


def _groups(items: list[str], n: int) -> list[list[str]]:
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def _quote_list(words: list[str]) -> str:
    quoted = [f'"{w}"' for w in words]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def make_row(rng: random.Random, topic: dict, ids: list[str]) -> dict:
    """Build the response first, then set each constraint's numbers from it, then write the prompt."""
    has = set(ids)
    kwargs: dict[str, dict] = {i: {} for i in ids}
    # ---- content
    if "detectable_format:number_bullet_lists" in has:
        k = rng.randint(2, 5)
    elif "length_constraints:number_paragraphs" in has or "detectable_format:multiple_sections" in has:
        k = rng.randint(3, 6)
    elif "length_constraints:number_words" in has:
        k = rng.randint(2, 6)
    else:
        k = rng.randint(2, 5)
    picked = sorted(rng.sample(range(1, len(topic["facts"])), k - 1))  # the facts keep their table order
    facts = topic["facts"][:1] + [topic["facts"][i] for i in picked]
    if "detectable_format:number_highlighted_sections" in has:
        n = rng.randint(1, min(3, len(facts)))
        kwargs["detectable_format:number_highlighted_sections"] = {"num_highlights": n}
        marked = set(rng.sample(range(len(facts)), n))
        facts = [f"*{f}*" if i in marked else f for i, f in enumerate(facts)]
    if "detectable_format:json_format" in has:
        body = json.dumps({"topic": topic["title"], "key_points": facts}, indent=2, ensure_ascii=False)
    elif "detectable_format:number_bullet_lists" in has:
        kwargs["detectable_format:number_bullet_lists"] = {"num_bullets": len(facts)}
        mark = rng.choice(["*", "-"])
        body = "\n".join(f"{mark} {f}" for f in facts)
    elif "length_constraints:number_paragraphs" in has:
        n = rng.randint(2, min(4, len(facts)))
        kwargs["length_constraints:number_paragraphs"] = {"num_paragraphs": n}
        body = "\n\n***\n\n".join(" ".join(g) for g in _groups(facts, n))
    elif "detectable_format:multiple_sections" in has:
        n = rng.randint(2, min(4, len(facts)))
        splitter = rng.choice(["Section", "SECTION"])
        kwargs["detectable_format:multiple_sections"] = {"section_spliter": splitter, "num_sections": n}
        body = "\n\n".join(f"{splitter} {i + 1}\n" + " ".join(g) for i, g in enumerate(_groups(facts, n)))
    else:
        body = " ".join(facts)
    if "detectable_content:number_placeholders" in has:
        sentence = rng.choice(PLACEHOLDER_SENTENCES)
        n = rng.randint(1, sentence.count("["))
        kwargs["detectable_content:number_placeholders"] = {"num_placeholders": n}
        body += " " + sentence
    if "detectable_format:title" in has:
        body = f"<<{topic['title']}>>\n\n" + body
    if "detectable_content:postscript" in has:
        kwargs["detectable_content:postscript"] = {"postscript_marker": "P.S."}
        body += "\n\nP.S. " + rng.choice(PS_SENTENCES)
    if "startend:end_checker" in has:
        phrase = rng.choice(END_PHRASES)
        if "change_case:english_lowercase" in has:
            phrase = phrase.lower()
        kwargs["startend:end_checker"] = {"end_phrase": phrase}
        body += (" " if "detectable_content:postscript" in has else "\n\n") + phrase  # the P.S. ends with it
    if "startend:quotation" in has:
        body = f'"{body}"'
    if "change_case:english_lowercase" in has:
        body = body.lower()
    # ---- constraints whose numbers come from the finished text
    if "keywords:existence" in has:
        present = [w for w in topic["keywords"] if re.search(w, body, flags=re.IGNORECASE)]
        if not present:  # every topic's first fact holds its term
            present = [topic["term"]]
        if "keywords:forbidden_words" in has:  # with forbidden words: two to include (a word list meets fewer)
            present = present if len(present) > 1 else present + [topic["term"]]
        kwargs["keywords:existence"] = {"keywords": sorted(rng.sample(present, min(len(present), rng.randint(
            2 if "keywords:forbidden_words" in has else 1, 2))))}
    if "keywords:forbidden_words" in has and "keywords:existence" in has:
        # other prompts' words to include that this text lacks: a text listing every topic's words fails here
        pool = sorted({w for t in TOPICS for w in t["keywords"] if " " not in w
                       and not re.search(r"\b" + w + r"\b", body, flags=re.IGNORECASE)})
        own = [w for w in pool if w in topic["keywords"]]
        picked = rng.sample(own, 1) if own and rng.random() < 0.5 else []
        picked += rng.sample([w for w in pool if w not in picked], 3 - len(picked))
        kwargs["keywords:forbidden_words"] = {"forbidden_words": sorted(picked)}
    elif "keywords:forbidden_words" in has:
        absent = [w for w in topic["tempting"] if not re.search(r"\b" + w + r"\b", body, flags=re.IGNORECASE)]
        assert absent, topic["title"]  # tempting words never occur in the facts
        kwargs["keywords:forbidden_words"] = {"forbidden_words": sorted(rng.sample(absent, min(len(absent),
                                                                                               rng.randint(1, 2))))}
    if "keywords:frequency" in has:
        count = len(re.findall(topic["term"], body, flags=re.IGNORECASE))
        if count >= 2 and rng.random() < 0.7:
            kwargs["keywords:frequency"] = {"keyword": topic["term"], "frequency": rng.randint(2, min(count, 4)),
                                            "relation": "at least"}
        else:
            kwargs["keywords:frequency"] = {"keyword": topic["term"], "frequency": count + rng.randint(1, 2),
                                            "relation": "less than"}
    if "length_constraints:number_words" in has:
        words = count_words(body)
        if rng.random() < 0.5:
            kwargs["length_constraints:number_words"] = {"num_words": (words + 5) // 10 * 10 + 10,
                                                         "relation": "less than"}
        else:
            kwargs["length_constraints:number_words"] = {"num_words": max(10, (words - 3) // 10 * 10),
                                                         "relation": "at least"}
    ask = rng.choice(topic["asks"])
    prompt = ask + "." + "".join(" " + describe(i, kwargs[i], topic, rng) for i in ids)
    return {
        "prompt": prompt,
        "instruction_id_list": list(ids),
        "kwargs": [kwargs[i] for i in ids],
        "category": topic["area"],
        "difficulty": {1: "easy", 2: "medium", 3: "hard"}[len(ids)],
        "response": body,
    }


def describe(instruction_id: str, kw: dict, topic: dict, rng: random.Random) -> str:
    """The constraint in plain words (several phrasings per type)."""
    if instruction_id == "length_constraints:number_words":
        n = kw["num_words"]
        if kw["relation"] == "less than":
            return rng.choice([f"Use fewer than {n} words.", f"Keep your answer under {n} words.",
                               f"Answer in less than {n} words."])
        return rng.choice([f"Use at least {n} words.", f"Write no fewer than {n} words."])
    if instruction_id == "length_constraints:number_paragraphs":
        return (f"Write exactly {kw['num_paragraphs']} paragraphs and separate them with the markdown divider "
                f"*** on its own line.")
    if instruction_id == "detectable_format:number_bullet_lists":
        return rng.choice([f"Give exactly {kw['num_bullets']} bullet points in markdown, like:\n* first point\n"
                           f"* second point\n",
                           f"Format the answer as a markdown list of exactly {kw['num_bullets']} bullet points "
                           f"and write nothing else."])
    if instruction_id == "detectable_format:json_format":
        return rng.choice(["Give your entire answer as valid JSON. You may wrap it in markdown ``` ticks.",
                           "Your whole output must be a single JSON object."])
    if instruction_id == "detectable_format:title":
        return f"Start with a title in double angular brackets, such as <<{topic['title']}>>."
    if instruction_id == "detectable_format:number_highlighted_sections":
        n = kw["num_highlights"]
        return (f"Highlight at least {n} {'part' if n == 1 else 'parts'} of your answer with markdown, "
                f"for example *An important point*.")
    if instruction_id == "detectable_format:multiple_sections":
        s = kw["section_spliter"]
        return (f"Organize the answer into {kw['num_sections']} sections and start each one with "
                f"{s} X on its own line, such as {s} 1 and {s} 2.")
    if instruction_id == "detectable_content:postscript":
        return "At the end of your response add a postscript starting with P.S."
    if instruction_id == "detectable_content:number_placeholders":
        n = kw["num_placeholders"]
        return (f"Include at least {n} {'placeholder' if n == 1 else 'placeholders'} in square brackets, "
                f"such as [Patient name].")
    if instruction_id == "keywords:existence":
        words = kw["keywords"]
        return rng.choice([f"Be sure to mention {_quote_list(words)}.",
                           f"Include the {'word' if len(words) == 1 else 'words'} {_quote_list(words)}."])
    if instruction_id == "keywords:forbidden_words":
        words = kw["forbidden_words"]
        return rng.choice([f"Do not use the {'word' if len(words) == 1 else 'words'} {_quote_list(words)}.",
                           f"Avoid the {'word' if len(words) == 1 else 'words'} {_quote_list(words)}."])
    if instruction_id == "keywords:frequency":
        word, n = kw["keyword"], kw["frequency"]
        if kw["relation"] == "at least":
            return f'Use the word "{word}" at least {n} times.'
        return f'Use the word "{word}" fewer than {n} times.'
    if instruction_id == "change_case:english_lowercase":
        return rng.choice(["Write your entire response in English using only lowercase letters.",
                           "Use no capital letters anywhere in your English response."])
    if instruction_id == "punctuation:no_comma":
        return rng.choice(["Do not use any commas.", "Refrain from using commas anywhere in your response."])
    if instruction_id == "startend:end_checker":
        return f'End your response with the exact phrase "{kw["end_phrase"]}" and nothing after it.'
    if instruction_id == "startend:quotation":
        return "Wrap your entire response in double quotation marks."
    raise ValueError(instruction_id)


def _draw_ids(rng: random.Random, first: str) -> list[str]:
    """The first constraint, then an anchor: the closing phrase (+ 0-1 random), or the keyword pair (+ a count or the
    closing phrase when the first constraint is one a fixed text always meets)."""
    ids = [first]
    if first in KEYWORD_PAIR or first == "detectable_format:json_format" or (first in GUESSES and rng.random() < 0.5):
        ids += [b for b in KEYWORD_PAIR if b not in ids]
        if first in KEYWORD_PAIR:
            ids.append(rng.choice(["startend:end_checker"] + GUESSES))
        return ids
    if first != "startend:end_checker":
        ids.append("startend:end_checker")
    for _ in range(rng.choice([0, 1, 1, 2]) if len(ids) == 1 else rng.choice([0, 0, 1])):
        options = [b for b in INSTRUCTION_TYPES if all(compatible(a, b) for a in ids)]
        if options:
            ids.append(rng.choice(options))
    return ids


def held_out(ids: list[str]) -> bool:
    """Whether validation and test ask for this instruction set (train never does): a held-out pair, or the json set,
    or by a fixed hash of the set's names (about half of the remaining sets)."""
    found = frozenset(ids)
    if any(pair <= found for pair in HELD_OUT_PAIRS) or found == JSON_SET:
        return True
    return zlib.crc32("|".join(sorted(found)).encode()) % 2 == 1


def pick_ids(rng: random.Random, first: str, scored: bool = False) -> list[str]:
    """Train: a set held_out refuses. Validation and test (``scored``): a held-out pair with the closing phrase when
    the first type is in one, else a set held_out keeps."""
    if scored and first in PARTNERS:
        return [first, rng.choice(PARTNERS[first]), "startend:end_checker"]
    if not scored and first == "detectable_format:json_format":
        return [first, "keywords:existence"]  # the json set with its keyword pair is held out
    while True:
        ids = _draw_ids(rng, first)
        if held_out(ids) == scored:
            return ids


def generate(seed: int = SEED, sizes: dict[str, int] | None = None) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    sizes = sizes or SIZES
    seen: set[str] = set()
    out: dict[str, list[dict]] = {}
    for split, n in sizes.items():
        rows: list[dict] = []
        firsts: list[str] = []
        topics: list[dict] = []
        while len(rows) < n:
            if not firsts:
                firsts = rng.sample(INSTRUCTION_TYPES, len(INSTRUCTION_TYPES))
            if not topics:
                topics = rng.sample(TOPICS, len(TOPICS))
            row = make_row(rng, topics[-1], pick_ids(rng, firsts[-1], scored=split != "train"))
            if row["prompt"] in seen:
                continue
            firsts.pop()
            topics.pop()
            seen.add(row["prompt"])
            rows.append(row)
        out[split] = rows
    return out




if __name__ == "__main__":
    from medbench.taskdata import write_jsonl_splits

    write_jsonl_splits(generate(), Path(__file__).resolve().parent / "data", ascii_only=False)
