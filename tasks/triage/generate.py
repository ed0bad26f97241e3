"""Generator for the ``triage`` tasks: a patient-portal message → who should handle it and how urgently.

One dataset serves two tasks (``triage_personnel`` and ``triage_urgency``); every row carries both labels,
derived by the rules below from structured fields kept in ``trigger``. So that a bag of words cannot find them,
the labels follow from relations between parts of a message (which of two dates are recent, whether a
symptom is a known effect of the drug just started, whether a reading is in range, whether a deadline is one or
five weekdays away), and every drug, procedure, symptom, time phrase and request is drawn from pools shared by
the labels it can take.

Three kinds of message (``intent`` = ``category``):

``symptom`` — a symptom with its course and two dated items written the same way ("I had my knee replacement
five days ago.", "My first dose of iron was five weeks ago."): each is recent (3-12 days, a week or a week and
a half ago) or 16 days to 12 weeks ago, written in days or in weeks half the time (``TIMES``), so only the number
tells which is recent ("ten days ago" is, "ten weeks ago" and "twenty days ago" are not). Either, both or neither
may be recent (``RECENT_SETS``; until 2.2 exactly one was). The course is "now" ("started an hour ago and it's
getting worse"), "passed" ("came on an hour ago but is gone now"), "days" ("has lasted for four days"; the
recent items then at least 5 days ago) — these began after the recent items — or "months" ("coming and going for
months"): a long-standing problem that began before either item. Personnel, first rule that applies:
  pharmacist  a new problem (not "months") that is a known harmless effect of the drug first taken in the last
              2 weeks (``DRUGS``: black stools on iron, a metallic taste on metronidazole, a dry mouth on
              oxybutynin, ...), even within 2 weeks of surgery (2.3; then only ``HARMLESS_AFTER_SURGERY``'s
              effects, none a surgeon needs to hear about, are written)
  front desk  a routine problem (its urgency below) and the patient asks for a visit ("Can I get an
              appointment next week?"): a visit to book, even within 2 weeks of surgery (2.3)
  nurse       any other new problem within 2 weeks of surgery: the post-operative nurse line; but not stroke
              signs (arm weakness, trouble getting words out), nor what the background explains (fever during
              chemotherapy, bleeding on warfarin: ``EXPLAINED_BY``), surgery or not (2.3)
  physician   everything else: a new problem nothing recent explains, a long-standing one, any that is not
              routine, and routine ones the patient asks about ("What should I do?") instead of asking for a visit
A new problem a drug may cause but not clearly harmlessly (``DRUGS``' second set: headache on metformin, cramps
on metronidazole) is never written with that drug, a harmless effect is never written where the background
could explain or worsen it (black stools on warfarin, nausea during chemotherapy), and a long-standing problem
next to a recent surgery is one no surgeon needs (``LONG_STANDING_AFTER_SURGERY``). Urgency: a harmless effect
of a new drug is routine; otherwise the symptom's level for its course (``SYMPTOMS``), changed by the context
(``symptom_level``):
  - "I'm in the middle of chemotherapy": fever → emergent (urgent if it passed or is long-standing); bleeding
    (black stools, blood in the phlegm, nosebleeds) → at least urgent
  - "I also take warfarin": bleeding → emergent (urgent if it passed or is long-standing); a headache that
    started recently and is getting worse → emergent
  - a new problem within 2 weeks of surgery: shortness of breath or chest pressure, even if it passed, and a
    racing heart that has not passed → emergent (a possible pulmonary embolism); fever, calf swelling and belly
    pain → at least urgent
  - new itching all over after a new drug that does not explain it, unless it passed → urgent (a possible
    allergy)
Stroke signs (arm weakness, trouble getting words out) are emergent now or passed (a TIA), urgent when
long-standing, and never written as lasting days. The background sentences appear in all three kinds of
message, where they change nothing else. So that a symptom's words do not give its level, symptoms that are often
urgent or emergent are drawn more often for routine and urgent rows and as long-standing problems.

``medication_error`` — "I took my <drug> twice by mistake an hour ago." (or "yesterday") and a home reading taken
since: blood sugar for diabetes drugs, oxygen level for sedating ones, INR for warfarin, blood pressure for
blood-pressure drugs (``ERROR_DRUGS``). Personnel: the reading in range → pharmacist (dose advice,
poison-control style); out of range (sugar < 70 mg/dL, oxygen < 90%, INR > 4.0, systolic < 90 mmHg; no value on
a cut-off) → physician. Urgency (``error_level``): out of range → emergent for sugar and oxygen, urgent for INR
and blood pressure; in range → urgent for warfarin, routine for a low-risk drug (metformin, sitagliptin,
gabapentin, hydroxyzine, blood-pressure drugs), and for a high-risk drug (insulin, glipizide, an opioid)
emergent when taken today ("an hour ago", "this morning": it is still acting), urgent when taken yesterday or
last night.

``billing`` — the same two dated items, one of them followed by ", and I got a bill for $85 for it" (or a
denied claim, or "my new plan says it isn't covered"), and a deadline written as two weekdays ("Today is
Friday." ... "I need an answer by Tuesday.", the next such weekday). Personnel: the claim is about the drug →
pharmacist (drug coverage), about the surgery → front desk (billing). Urgency: the deadline 1-2 days away →
urgent, 4-6 days away → routine (never emergent).

Shared by all rows: greetings, sign-offs, context sentences (an appointment already booked, the pharmacy used,
travel plans), closing questions ("What should I do?", "Who can help with this?"), time words ("tomorrow", "an
hour ago", "next month"); about 12% of messages are written in lower case.

Label balance: every split has equal counts of the four personnel labels and of the three urgency labels
(train 204 = 4 x 51 = 3 x 68, validation 48, test 396 = 4 x 99 = 3 x 132); the counts per kind of message
follow ``PLAN``, and for test about ``PLAN`` x 11/3: its first 108 rows as ``PLAN`` draws them (test 108 until
version 2.1), then the 288 of ``TEST_EXTRA``, drawn after all the rest. Version 2.3 cut the bills from ~30% of
the rows to ~18% (a reader without medicine gets them right: what the bill is about and two weekdays) for more
medication errors and symptom messages. No message repeats within or across splits, nor
one that differs only in its greeting, sign-off or case. Version 2.2 wrote the dated items in shared units
(``TIMES``), which rewrote every split: its first 108 test rows are drawn as before but are not version 2.0's;
2.3 rewrote every split again.
Run ``python generate.py`` to rewrite data/{train,validation,test}.jsonl (seed 3141).
"""

from __future__ import annotations

import random
import string
from pathlib import Path

SEED = 3141
PERSONNEL = ["physician", "nurse", "pharmacist", "front desk"]
URGENCY = ["emergent", "urgent", "routine"]
PH, N, RX, FD = PERSONNEL
E, U, R = URGENCY

# ------------------------------------------------------------------------------------------------ dated items
# Both dated items are written in days or weeks, each unit as often for the recent item as for the other, so the
# unit says nothing about which is recent: the number must be read ("ten days ago" is recent, "ten weeks ago" is
# not; "a week ago" is, "twenty days ago" is not). Version 2.2; until then only the recent item said "days".
RECENT_DAYS = 14  # "recent": within 2 weeks; no phrase sits on the cut-off
NUMBERS = {"three": 3, "four": 4, "five": 5, "six": 6, "eight": 8, "ten": 10, "twelve": 12}
TIMES = {  # recency -> unit -> phrase -> days ago
    "recent": {"days": {f"{word} days ago": n for word, n in NUMBERS.items()},
               "weeks": {"a week ago": 7, "a week and a half ago": 10}},
    "old": {"days": {f"{word} days ago": n for word, n in {"sixteen": 16, "eighteen": 18, "twenty": 20,
                                                          "thirty": 30, "forty": 40, "sixty": 60}.items()},
            "weeks": {f"{word} weeks ago": 7 * n for word, n in NUMBERS.items()}},
}


def _time(rng: random.Random, recency: str, unit: str, at_least: int = 3) -> str:
    """A phrase of the unit, drawn before the number so that ``at_least`` leaves the units' shares alone."""
    return rng.choice([phrase for phrase, days in TIMES[recency][unit].items() if days >= at_least])


def recent_time(rng: random.Random, at_least: int = 3) -> str:
    return _time(rng, "recent", rng.choice(list(TIMES["recent"])), at_least)


def long_time(rng: random.Random) -> str:
    return _time(rng, "old", rng.choice(list(TIMES["old"])))


PROCEDURES = ["knee replacement", "hip replacement", "gallbladder surgery", "hernia repair", "C-section",
              "appendectomy", "shoulder surgery", "back surgery"]
PROCEDURE_FRAMES = ["I had my {item} {time}.", "My {item} was {time}."]
DRUG_FRAMES = ["I had my first dose of {item} {time}.", "My first dose of {item} was {time}."]

# drug -> (known harmless effects: the pharmacist's; effects possible but not clearly harmless: never written)
DRUGS = {
    "iron": (("black_stools", "constipation", "nausea", "metallic"), ("loose_stools", "belly")),
    "metformin": (("nausea", "loose_stools", "metallic"), ("belly", "constipation", "headache", "lightheaded")),
    "nitrofurantoin": (("dark_urine", "nausea"), ("headache", "belly", "loose_stools", "lightheaded", "itching")),
    "metronidazole": (("metallic", "dark_urine", "nausea"), ("headache", "belly", "loose_stools", "dry_mouth",
                                                             "lightheaded")),
    "oxybutynin": (("dry_mouth", "constipation"), ("drowsy", "headache", "lightheaded", "racing", "belly")),
    "amlodipine": (("ankles", "headache"), ("lightheaded", "racing", "nausea", "drowsy", "belly")),
    "albuterol": (("shaky", "racing"), ("headache", "nausea", "lightheaded")),
    "hydroxyzine": (("drowsy", "dry_mouth"), ("headache", "lightheaded", "constipation", "racing", "shaky")),
    "oxycodone": (("constipation", "itching", "drowsy", "nausea"), ("dry_mouth", "headache", "lightheaded", "belly")),
    "tamsulosin": (("lightheaded",), ("headache", "drowsy", "racing")),
    "sertraline": (("nausea", "loose_stools", "headache"), ("drowsy", "dry_mouth", "shaky", "lightheaded", "racing",
                                                            "belly")),
}

# symptom -> (phrases, level by course: now, passed, days) when nothing in the message changes it
SYMPTOMS = {
    "breath": (["shortness of breath", "trouble catching my breath"], (E, U, U, R)),
    "chest": (["pressure in my chest", "a tight feeling in my chest"], (E, U, U, R)),
    "blood_cough": (["a cough with blood in the phlegm", "blood-streaked phlegm"], (E, U, U, U)),
    "neuro": (["weakness in my {side} arm", "trouble getting my words out"], (E, E, None, U)),  # passed: a TIA
    "calf": (["a swollen, sore {side} calf", "pain and swelling in my {side} calf"], (U, R, U, U)),
    "fever": (["a fever of {fever}", "a temperature of {fever}"], (U, R, U, U)),
    "belly": (["pain in my belly", "stomach cramps"], (U, R, U, R)),
    "black_stools": (["black stools", "dark, tarry stools"], (U, U, U, U)),
    "nosebleed": (["a nosebleed", "bleeding from my nose"], (U, R, U, R)),
    "racing": (["a racing heartbeat", "a pounding heartbeat"], (U, R, U, R)),
    "lightheaded": (["lightheadedness when I stand up", "dizzy spells when I get up"], (U, R, U, R)),
    "dark_urine": (["dark brown urine", "urine the color of cola"], (U, R, U, U)),
    "ankles": (["swollen ankles", "puffy ankles"], (R, R, U, R)),
    "headache": (["a headache", "a dull headache"], (R, R, U, R)),
    "nausea": (["nausea", "an upset stomach"], (R, R, U, R)),
    "loose_stools": (["loose stools", "diarrhea"], (R, R, U, R)),
    "constipation": (["constipation", "trouble having a bowel movement"], (R, R, U, R)),
    "drowsy": (["drowsiness", "trouble staying awake during the day"], (R, R, U, R)),
    "itching": (["itching all over", "itchy skin"], (R, R, R, R)),
    "dry_mouth": (["a dry mouth", "a very dry mouth"], (R, R, R, R)),
    "shaky": (["shaky hands", "a tremor in my hands"], (R, R, R, R)),
    "metallic": (["a metallic taste", "a strange metal taste in my mouth"], (R, R, R, R)),
}
COURSES = ["now", "passed", "days", "months"]
COURSE_TEXT = {
    "now": ["It started {recent} and it's getting worse.", "It began {recent} and it's still going."],
    "passed": ["It started {past} and went away.", "It came on {recent} but is gone now."],
    "days": ["It's been going on {days} and isn't improving.", "It has lasted {days} now."],
    "months": ["It's been coming and going for months, about the same.", "I've had it on and off for months; it "
               "never really changes."],
}
SYMPTOM_FRAMES = ["I have {symptom}.", "I've noticed {symptom}.", "I've been having {symptom}."]
BACKGROUND = {"none": "", "chemo": "I'm in the middle of chemotherapy.",
              "warfarin": "I also take warfarin for my heart rhythm."}
POST_OP_EMERGENT = ("breath", "chest")
POST_OP_URGENT = ("fever", "calf", "belly")
BLEEDING = ("black_stools", "blood_cough", "nosebleed")
LOUD = ("breath", "chest", "neuro")  # often emergent: written more often as long-standing problems
# long-standing problems written next to a recent surgery: none a surgeon would want to hear about
LONG_STANDING_AFTER_SURGERY = ("headache", "dry_mouth", "shaky", "metallic", "itching", "drowsy", "nausea",
                               "loose_stools")
# a new problem the background explains: the physician's even within 2 weeks of surgery (version 2.3)
EXPLAINED_BY = {"chemo": ("fever",), "warfarin": BLEEDING}
# the only harmless drug effects written within 2 weeks of surgery: none a surgeon would want to hear about
HARMLESS_AFTER_SURGERY = LONG_STANDING_AFTER_SURGERY + ("constipation",)
# never written as a harmless drug effect with this background (the background may explain or worsen it)
DANGEROUS_ON = {"warfarin": BLEEDING + ("headache",), "chemo": BLEEDING + ("fever", "nausea", "loose_stools")}


def symptom_level(symptom: str, course: str, background: str, recent: tuple[str, ...]) -> str | None:
    """Urgency of a symptom that no new drug explains harmlessly (``recent``: the items within 2 weeks, "procedure"
    and/or "drug", or none; None: a combination never written)."""
    level = SYMPTOMS[symptom][1][COURSES.index(course)]
    if level is None:
        return None
    settled = course in ("passed", "months")
    if background == "chemo" and symptom == "fever":
        return U if settled else E  # fever during chemotherapy: possible neutropenic sepsis
    if background == "warfarin" and symptom in BLEEDING:
        return U if settled else E  # bleeding on an anticoagulant
    if background == "warfarin" and symptom == "headache" and course == "now":
        return E  # a new, worsening headache on an anticoagulant: a possible bleed in the head
    if background == "chemo" and symptom in BLEEDING and level == R:
        return U  # bleeding during chemotherapy (low platelets)
    if course == "months":
        return level  # a long-standing problem: a recent surgery or drug changes nothing
    if "procedure" in recent and symptom in POST_OP_EMERGENT:
        return E  # within 2 weeks of surgery, even if it passed: a possible pulmonary embolism
    if "procedure" in recent and symptom == "racing" and course != "passed":
        return E  # a racing heart after surgery: a possible pulmonary embolism or bleeding
    if "procedure" in recent and symptom in POST_OP_URGENT and level == R:
        return U
    if "drug" in recent and symptom == "itching" and course != "passed":
        return U  # itching all over after a new drug that does not explain it: a possible allergy
    return level


def symptom_personnel(symptom: str, course: str, recent: tuple[str, ...], drug: str, level: str,
                      request: str, background: str) -> str:
    new = course != "months"  # began after the recent surgery or drug
    if new and "drug" in recent and symptom in DRUGS[drug][0]:
        return RX  # explained by the new drug, even after a recent surgery (version 2.3)
    if level == R and request == "visit":
        return FD  # a routine problem to be seen for: a visit to book, even after a recent surgery (version 2.3)
    if new and "procedure" in recent and symptom != "neuro" and symptom not in EXPLAINED_BY.get(background, ()):
        return N  # stroke signs, and what the background explains, are no post-operative line's (version 2.3)
    return PH


VISITS = ["Can I get an appointment {when}?", "Could someone book me in {when}?", "I'd like a visit {when} if there's "
          "a slot."]
QUESTIONS = ["What should I do?", "Who can help with this?", "Please let me know what to do.",
             "Can someone get back to me?"]

SLOTS = {
    "recent": ["about 20 minutes ago", "an hour ago", "this morning", "a little while ago", "about half an hour ago"],
    "past": ["yesterday", "last night", "yesterday afternoon", "yesterday morning"],
    "days": ["for three days", "for four days", "for the past few days"],
    "when": ["tomorrow", "next week", "on Friday", "next month", "tomorrow morning", "in two weeks"],
    "side": ["left", "right"],
    "fever": ["101.5", "102", "102.4", "101.8", "103"],
    "pharmacy": ["the pharmacy on Main Street", "my mail-order pharmacy", "the grocery store pharmacy"],
    "amount": ["$240", "$85", "$1,120", "$310", "$46", "$530"],
}
CONTEXT = ["I have an appointment {when} anyway.", "I took my usual morning pills {recent}.", "I use {pharmacy}.",
           "I called {recent} but couldn't get through.", "I'm traveling {when}.", "I'm back at work {when}.",
           "My daughter can drive me {when} if needed.", "I'm free {when} if someone needs to call."]
OPENERS = ["", "", "Hi,", "Hello,", "Good morning,", "Hi there,", "Sorry to bother you,", "Hello team,"]
CLOSERS = ["", "", "Thanks", "Thank you!", "Sent from my phone", "Appreciate any help."]

# ------------------------------------------------------------------------------------------------ medication errors
ERROR_DRUGS = {  # drug -> (reading, high risk: an extra dose is an emergency even before the reading moves)
    "Lantus": ("sugar", True), "Humalog": ("sugar", True), "glipizide": ("sugar", True),
    "metformin": ("sugar", False), "sitagliptin": ("sugar", False),
    "oxycodone": ("oxygen", True), "hydrocodone": ("oxygen", True),
    "gabapentin": ("oxygen", False), "hydroxyzine": ("oxygen", False),
    "warfarin": ("inr", True),
    "lisinopril": ("bp", False), "amlodipine": ("bp", False), "metoprolol": ("bp", False), "losartan": ("bp", False),
}
READING_NAMES = {"sugar": "blood sugar", "oxygen": "oxygen level", "inr": "home INR", "bp": "blood pressure"}
ERROR_FRAMES = ["I took my {drug} twice by mistake {recent}.",
                "I accidentally took an extra dose of my {drug} {recent}."]
READING_FRAMES = ["I just checked my {reading}: {value}.", "My {reading} is {value} right now."]


def reading_value(rng: random.Random, reading: str, in_range: bool) -> str:
    if reading == "sugar":
        return str(rng.randint(82, 180) if in_range else rng.randint(38, 66))
    if reading == "oxygen":
        return f"{rng.randint(94, 99) if in_range else rng.randint(80, 88)}%"
    if reading == "inr":
        return f"{rng.randint(20, 32) / 10:.1f}" if in_range else f"{rng.randint(46, 79) / 10:.1f}"
    if in_range:
        return f"{rng.randint(108, 138)}/{rng.randint(62, 86)}"
    return f"{rng.randint(72, 87)}/{rng.randint(42, 56)}"


def error_level(reading: str, high_risk: bool, in_range: bool, when: str) -> str:
    if reading == "inr":
        return U
    if not in_range:
        return E if reading in ("sugar", "oxygen") else U
    if not high_risk:
        return R
    return E if when == "recent" else U  # taken yesterday and still in range: the peak has passed


# ------------------------------------------------------------------------------------------------ billing
CLAIMS = [", and I got a bill for {amount} for it {recent}", ", and my insurance denied the claim for it {recent}",
          ", and my new plan says it isn't covered", ", and I was charged {amount} for it even though I have insurance"]
DEADLINE_FRAMES = ["I need this sorted out by {day}.", "I need an answer by {day}."]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
DEADLINE_GAPS = {U: (1, 2), R: (4, 5, 6)}  # days from today to the deadline (the next such weekday)


def deadline_gap(today: str, due: str) -> int:
    return (WEEKDAYS.index(due) - WEEKDAYS.index(today)) % 7


# ------------------------------------------------------------------------------------------------ writing
def _fill(rng: random.Random, template: str) -> str:
    names = list(dict.fromkeys(name for _, name, _, _ in string.Formatter().parse(template) if name))
    return template.format(**{name: rng.choice(SLOTS[name]) for name in names})


RECENT_SETS = [("procedure",), ("drug",), ("procedure", "drug"), ()]


def _items(rng: random.Random, recent: tuple[str, ...], at_least: int = 3) -> tuple[str, str]:
    """(procedure time, drug time): each recent item 3-12 days, a week or a week and a half ago, the others 16 days
    to 12 weeks ago, each in days or weeks drawn the same way."""
    return tuple(recent_time(rng, at_least) if item in recent else long_time(rng) for item in ("procedure", "drug"))


def _background(rng: random.Random) -> str:
    return rng.choice(list(BACKGROUND))


def symptom_case(rng: random.Random, personnel: str, level: str) -> dict | None:
    background = _background(rng)
    drug = rng.choice(list(DRUGS))
    harmless, unclear = DRUGS[drug]
    # a front-desk problem is long-standing less often than the others, so "for months" does not point to it
    course = rng.choice({PH: COURSES, FD: COURSES + COURSES[:3] * 3}.get(personnel, COURSES[:3]))
    # which items are recent: a surgery and a new drug may both be (version 2.3), so the dates alone do not tell
    # the nurse from the pharmacist, nor, when neither or only the drug is, the pharmacist from the physician
    if course == "months":  # a long-standing problem: any item may be recent, none explains it
        recent = rng.choice(RECENT_SETS)
    else:
        recent = rng.choices(RECENT_SETS, weights={N: (1, 0, 1, 0), RX: (0, 1, 2, 0), PH: (2, 1, 2, 1)}.get(
            personnel, (1, 1, 1, 1)))[0]
    if personnel == RX:
        options = [s for s in harmless if "procedure" not in recent or s in HARMLESS_AFTER_SURGERY]
        if not options:
            return None
        symptom = rng.choices(options, weights=[3 if U in SYMPTOMS[s][1] else 1 for s in options])[0]
        if symptom in DANGEROUS_ON.get(background, ()):
            return None
    elif course == "months":  # began before the surgery or the drug: neither explains it
        options = LONG_STANDING_AFTER_SURGERY if "procedure" in recent else list(SYMPTOMS)
        symptom = rng.choices(options, weights=[3 if s in LOUD else 1 for s in options])[0]
    else:
        options = [s for s in SYMPTOMS if s not in unclear and ("drug" not in recent or s not in harmless)]
        symptom = rng.choices(options, weights=[3 if level != E and (E in SYMPTOMS[s][1] or U in SYMPTOMS[s][1][:2])
                                                else 1 for s in options])[0]
    # most patients ask to be seen (2.3: two in three, was half), so a visit request does not point to the desk
    request = "visit" if personnel == FD else rng.choice(["visit", "visit", "question"])
    if personnel == PH and level == R:
        request = "question"
    found = R if personnel == RX else symptom_level(symptom, course, background, recent)
    if found != level or symptom_personnel(symptom, course, recent, drug, found, request, background) != personnel:
        return None
    procedure = rng.choice(PROCEDURES)
    # a symptom lasting days began after the recent items: they are at least 5 days ago
    procedure_time, drug_time = _items(rng, recent, 5 if course == "days" else 3)
    phrase = rng.choice(SYMPTOMS[symptom][0]).format(side=rng.choice(SLOTS["side"]), fever=rng.choice(SLOTS["fever"]))
    sentences = [rng.choice(PROCEDURE_FRAMES).format(item=procedure, time=procedure_time),
                 rng.choice(DRUG_FRAMES).format(item=drug, time=drug_time),
                 rng.choice(SYMPTOM_FRAMES).format(symptom=phrase) + " " + _fill(rng, rng.choice(COURSE_TEXT[course]))]
    rng.shuffle(sentences)
    if BACKGROUND[background]:
        sentences.insert(rng.randint(0, len(sentences)), BACKGROUND[background])
    sentences.append(_fill(rng, rng.choice(VISITS if request == "visit" else QUESTIONS)))
    trigger = (f"symptom={symptom};course={course};background={background};procedure={procedure}@{procedure_time};"
               f"drug={drug}@{drug_time};request={request}")
    return dict(intent="symptom", trigger=trigger, sentences=sentences)


def medication_error_case(rng: random.Random, personnel: str, level: str) -> dict | None:
    drug = rng.choice(list(ERROR_DRUGS))
    reading, high_risk = ERROR_DRUGS[drug]
    in_range = personnel == RX
    when = rng.choice(["recent", "past"])
    if error_level(reading, high_risk, in_range, when) != level:
        return None
    value = reading_value(rng, reading, in_range)
    sentences = [_fill(rng, rng.choice(ERROR_FRAMES).replace("{drug}", drug).replace("{recent}", "{" + when + "}")),
                 rng.choice(READING_FRAMES).format(reading=READING_NAMES[reading], value=value)]
    if rng.random() < 0.5:
        sentences.insert(0, rng.choice(PROCEDURE_FRAMES).format(item=rng.choice(PROCEDURES), time=long_time(rng)))
    background = _background(rng)
    if BACKGROUND[background] and drug != "warfarin":
        sentences.insert(rng.randint(0, len(sentences)), BACKGROUND[background])
    sentences.append(rng.choice(QUESTIONS))
    return dict(intent="medication_error", trigger=f"drug={drug};taken={when};reading={reading}:{value}",
                sentences=sentences)


def billing_case(rng: random.Random, personnel: str, level: str) -> dict | None:
    procedure, drug = rng.choice(PROCEDURES), rng.choice(list(DRUGS))
    procedure_time, drug_time = _items(rng, rng.choice(RECENT_SETS))
    items = {"procedure": rng.choice(PROCEDURE_FRAMES).format(item=procedure, time=procedure_time),
             "drug": rng.choice(DRUG_FRAMES).format(item=drug, time=drug_time)}
    about = "procedure" if personnel == FD else "drug"
    items[about] = items[about][:-1] + _fill(rng, rng.choice(CLAIMS)) + "."
    sentences = list(items.values())
    rng.shuffle(sentences)
    today = rng.randrange(7)
    due = WEEKDAYS[(today + rng.choice(DEADLINE_GAPS[level])) % 7]
    sentences = [f"Today is {WEEKDAYS[today]}."] + sentences + [rng.choice(DEADLINE_FRAMES).format(day=due)]
    background = _background(rng)
    if BACKGROUND[background]:
        sentences.insert(rng.randint(1, len(sentences)), BACKGROUND[background])
    sentences.append(rng.choice(QUESTIONS))
    trigger = (f"claim={about};procedure={procedure}@{procedure_time};drug={drug}@{drug_time};"
               f"today={WEEKDAYS[today]};due={due}")
    return dict(intent="billing", trigger=trigger, sentences=sentences)


CASES = {"symptom": symptom_case, "medication_error": medication_error_case, "billing": billing_case}

# split -> (kind, personnel) -> rows (emergent, urgent, routine). Per split each personnel label has n/4 rows and
# each urgency label n/3; front desk is never emergent.
PLAN = {
    "train": {("symptom", N): (24, 24, 3), ("symptom", PH): (18, 6, 2), ("symptom", RX): (0, 0, 10),
              ("symptom", FD): (0, 0, 33), ("medication_error", PH): (16, 9, 0),
              ("medication_error", RX): (10, 11, 2), ("billing", RX): (0, 9, 9), ("billing", FD): (0, 9, 9)},
    "validation": {("symptom", N): (6, 5, 1), ("symptom", PH): (4, 1, 1), ("symptom", RX): (0, 0, 2),
                   ("symptom", FD): (0, 0, 8), ("medication_error", PH): (4, 2, 0),
                   ("medication_error", RX): (2, 4, 0), ("billing", RX): (0, 2, 2), ("billing", FD): (0, 2, 2)},
    "test": {("symptom", N): (13, 12, 2), ("symptom", PH): (9, 3, 1), ("symptom", RX): (0, 0, 6),
             ("symptom", FD): (0, 0, 17), ("medication_error", PH): (9, 5, 0),
             ("medication_error", RX): (5, 6, 1), ("billing", RX): (0, 5, 4), ("billing", FD): (0, 5, 5)},
}
# Version 2.1 grew the test split from 108 to 396 rows (99 per personnel label, 132 per urgency label) for the power
# of method comparisons: these 288 rows are drawn after all of PLAN and follow after its 108.
TEST_EXTRA = {("symptom", N): (34, 33, 5), ("symptom", PH): (24, 9, 3), ("symptom", RX): (0, 0, 16),
              ("symptom", FD): (0, 0, 44), ("medication_error", PH): (24, 12, 0), ("medication_error", RX): (14, 15, 4),
              ("billing", RX): (0, 13, 10), ("billing", FD): (0, 14, 14)}


def _compose(rng: random.Random, sentences: list[str]) -> str:
    sentences = list(sentences)
    for _ in range(rng.choice([0, 0, 1])):  # a context sentence, never after the closing request
        sentences.insert(rng.randint(0, len(sentences) - 1), _fill(rng, rng.choice(CONTEXT)))
    opener, closer = rng.choice(OPENERS), rng.choice(CLOSERS)
    text = " ".join(sentences)
    if rng.random() < 0.12:
        text = text.lower()
    return "\n".join(part for part in (opener, text, closer) if part)


def _body(message: str) -> str:
    """A message without its greeting and sign-off, in lower case: messages alike but for those are duplicates."""
    return next(part for part in message.split("\n") if part not in OPENERS + CLOSERS).lower()


def _draw(rng: random.Random, split: str, plan: dict, seen: set[str]) -> list[dict]:
    rows = []
    for (kind, personnel), counts in plan.items():
        for level, count in zip(URGENCY, counts):
            made = attempts = 0
            while made < count:
                attempts += 1
                if attempts > 100000:
                    raise RuntimeError(f"cannot fill {split} {kind} {personnel} {level}")
                case = CASES[kind](rng, personnel, level)
                if case is None:
                    continue
                message = _compose(rng, case["sentences"])
                body = _body(message)
                if body in seen:
                    continue
                seen.add(body)
                made += 1
                rows.append({"message": message, "intent": kind, "trigger": case["trigger"],
                             "personnel": personnel, "urgency": level, "category": kind})
    rng.shuffle(rows)
    return rows


def generate(seed: int = SEED) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    seen: set[str] = set()  # every split's message bodies: no message repeats within or across splits
    splits = {split: _draw(rng, split, plan, seen) for split, plan in PLAN.items()}
    splits["test"] += _draw(rng, "test", TEST_EXTRA, seen)  # version 2.1: drawn after all the rest, appended
    for number, row in enumerate((row for rows in splits.values() for row in rows), start=1):
        row["id"] = f"triage-{number:04d}"
    return splits


if __name__ == "__main__":
    from medbench.taskdata import write_jsonl_splits

    write_jsonl_splits(generate(SEED), Path(__file__).resolve().parent / "data")
