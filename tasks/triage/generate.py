"""Generator for the ``triage`` tasks: a patient-portal message → who should handle it and how urgently.

One dataset serves two tasks (``triage_personnel`` and ``triage_urgency``); every row carries both labels,
derived from structured fields by these documented rules.

Urgency comes from the clinical content, never from wording or time expressions alone. Each message has a
``problem`` (what is going on) and a ``course`` or risk context, and ``URGENCY`` gives the level of the pair:
  emergent    a possible emergency now: chest pressure or shortness of breath at rest that is still going on or
              getting worse, stroke signs (also when they have passed: a TIA), a thunderclap headache, bleeding that
              will not stop, fainting, throat swelling after an exposure, suicidal thoughts with a plan, fever in a
              patient on chemotherapy, a dangerous home reading (glucose < 54 mg/dL, oxygen < 90%, BP >= 180/120
              with symptoms), an extra dose of insulin, a sulfonylurea or an opioid, a child's ingestion of
              medication, a calf swollen with shortness of breath after surgery
  urgent      needs action within 24-48 hours: the same symptoms once resolved (chest pressure that came and went),
              a persistent or worsening moderate problem (fever for days, spreading redness, a red draining
              incision, new calf swelling), out-of-range readings without symptoms, an extra anticoagulant dose
              without bleeding, missed doses of a transplant drug, an essential medication running out within
              2 days, a form, preparation or pre-op visit needed within 2 days
  routine     everything else: mild or long-standing problems, questions, refills with weeks left, an extra dose
              of a low-risk drug (a statin, an antacid), paperwork and appointments that can wait
A problem's level depends on its course and on the patient (fever after a vaccine is routine, fever for days is
urgent, fever on chemotherapy is emergent), so no word alone gives the level. Time words ("tomorrow", "an hour
ago", "yesterday") and ``context`` sentences (an appointment already booked, the pharmacy used, ...) are drawn
from pools shared by all levels and never change a label.

Personnel comes from what the message needs, the most clinical request first (physician > nurse > pharmacist >
front desk): about 40% of messages add a routine side request of lower precedence ("Also, could I get a refill
of my lisinopril?", "Also, I got a bill I don't understand"), which changes neither label:
  physician   new or worsening symptoms not tied to a recent procedure, result interpretation, treatment
              changes, and any medication error or side effect WITH symptoms (an extra warfarin dose and a
              nosebleed that will not stop is an emergency for the physician, not a pharmacist question)
  nurse       problems after a procedure or surgery in the last 2 weeks, home monitoring readings, instructions
              for an upcoming test, procedure or vaccine
  pharmacist  refills, how to take a medication, interactions, missed doses, coverage or stock, and medication
              errors WITHOUT symptoms (dose advice, poison-control style)
  front desk  appointments, bills and insurance, forms, letters and records (never emergent)

Label balance: every split has equal counts of the four personnel labels and of the three urgency labels
(train 204 = 4 x 51 = 3 x 68, validation 48, test 108); the joint counts follow ``CELL_COUNTS``. ``category`` is
the intent. Run ``python generate.py`` to rewrite data/{train,validation,test}.jsonl (seed 3141).
"""

from __future__ import annotations

import random
import string
from pathlib import Path

SEED = 3141
PERSONNEL = ["physician", "nurse", "pharmacist", "front desk"]
URGENCY = ["emergent", "urgent", "routine"]

# rows: personnel; columns: emergent, urgent, routine. Row sums = n/4, column sums = n/3.
CELL_COUNTS = {
    "train": {"physician": (23, 14, 14), "nurse": (23, 14, 14), "pharmacist": (22, 15, 14),
              "front desk": (0, 25, 26)},
    "validation": {"physician": (6, 3, 3), "nurse": (5, 4, 3), "pharmacist": (5, 3, 4), "front desk": (0, 6, 6)},
    "test": {"physician": (12, 7, 8), "nurse": (12, 8, 7), "pharmacist": (12, 7, 8), "front desk": (0, 14, 13)},
}

E, U, R = "emergent", "urgent", "routine"

# ------------------------------------------------------------------------------------------------ shared pools
SLOTS = {
    "recent": ["about 20 minutes ago", "an hour ago", "this morning", "a little while ago", "since lunch",
               "about half an hour ago"],
    "past": ["yesterday", "two days ago", "last night", "on Sunday", "yesterday afternoon"],
    "weeks": ["for a few weeks", "on and off for months", "for about a month", "every so often this year"],
    "days": ["for 3 days", "since Monday", "for four days", "for the past few days"],
    "when": ["tomorrow", "next week", "on Friday", "next month", "tomorrow morning", "in two weeks"],
    "relative": ["husband", "wife", "mom", "dad", "grandmother", "father-in-law"],
    "side": ["left", "right"],
    "chest": ["pressure in my chest", "tightness in my chest", "a heavy feeling in my chest",
              "pain behind my breastbone"],
    "breath": ["short of breath", "winded", "out of breath"],
    "neuro": ["my speech is slurred", "one side of my face is drooping", "my {side} arm went weak and numb",
              "I can't find my words"],
    "headache": ["a headache", "a pounding headache", "head pain"],
    "fever": ["101.5", "102", "102.4", "101.8", "103"],
    "rash": ["a red rash", "a patch of redness", "an itchy red area"],
    "body": ["shin", "forearm", "thigh", "calf", "foot"],
    "calf": ["my {side} calf is swollen and sore", "my {side} leg is swollen below the knee"],
    "surgery": ["knee replacement", "gallbladder surgery", "hernia repair", "C-section", "hip replacement",
                "appendectomy", "colonoscopy with polyp removal", "skin biopsy"],
    "recent_op": ["five days ago", "last week", "on Monday", "3 days ago", "ten days ago"],
    "old_op": ["two years ago", "back in 2019", "years ago", "last spring"],
    "anticoag": ["warfarin", "Eliquis", "Xarelto"],
    "insulin": ["Lantus", "long-acting insulin", "Humalog", "evening insulin"],
    "opioid": ["oxycodone", "hydrocodone", "morphine"],
    "sulfonylurea": ["glipizide", "glyburide"],
    "lowrisk": ["atorvastatin", "omeprazole", "cetirizine", "vitamin D", "montelukast", "famotidine"],
    "routine_med": ["atorvastatin", "lisinopril", "levothyroxine", "omeprazole", "metformin", "sertraline",
                    "amlodipine", "losartan"],
    "critical_med": ["seizure medicine (levetiracetam)", "tacrolimus", "insulin", "lamotrigine", "Eliquis"],
    "transplant_med": ["tacrolimus", "mycophenolate", "cyclosporine"],
    "child": ["2-year-old", "3-year-old", "18-month-old", "4-year-old", "toddler"],
    "pill_source": ["blood pressure pills", "my pill organizer", "iron tablets", "the bottle of my heart pills"],
    "otc": ["ibuprofen", "a multivitamin", "melatonin", "Benadryl", "an antacid", "turmeric supplements"],
    "pharmacy": ["the pharmacy on Main Street", "my mail-order pharmacy", "the grocery store pharmacy"],
    "glucose_low": ["42", "38", "45", "48"],
    "glucose_high": ["320", "340", "310", "355"],
    "glucose_ok": ["112", "98", "126", "104"],
    "spo2_low": ["86", "84", "87", "85"],
    "spo2_ok": ["95", "96", "97"],
    "bp_crit": ["212/124", "198/126", "205/130", "220/122"],
    "bp_high": ["168/102", "172/104", "165/98", "176/106"],
    "bp_ok": ["124/78", "131/82", "118/74", "127/80"],
    "test": ["blood draw", "abdominal ultrasound", "glucose tolerance test", "stress test", "colonoscopy", "CT scan"],
    "vaccine": ["tetanus", "shingles", "pneumonia", "hepatitis B", "flu"],
    "month": ["March", "April", "June", "September", "November"],
    "amount": ["$240", "$85", "$1,120", "$310"],
    "insurer": ["a new employer plan", "Medicare", "a marketplace plan", "my spouse's insurance"],
    "old_op": ["two years ago", "back in 2019", "years ago", "last spring"],
    "recent_op": ["five days ago", "last week", "on Monday", "3 days ago", "ten days ago"],
    "form": ["FMLA paperwork", "disability form", "school medication form", "camp physical form",
             "work note", "handicap parking form"],
    "kid": ["son", "daughter"],
}

CONTEXT = [  # sentences that never change a label (an appointment already booked, background, plans)
    "I have an appointment {when} anyway.", "I'm seeing the doctor {when} for my check-up.",
    "I took my usual morning pills {recent}.", "I use {pharmacy}.", "My last visit was {past}.",
    "I've been on {routine_med} for years.", "I called {recent} but couldn't get through.",
    "I'm traveling {when}.", "I'm back at work {when}.", "My daughter can drive me {when} if needed.",
    "I got home from work {recent}.", "I'm free {when} if someone needs to call.",
    "I read the portal message from {past}.", "I feel OK so far otherwise.",
]
OPENERS = ["", "", "Hi,", "Hello,", "Good morning,", "Hi there,", "Sorry to bother you,", "Hi, quick question.",
           "Hello team,"]
CLOSERS = ["", "", "Thanks", "Thank you!", "Please let me know.", "Sent from my phone", "Appreciate any help.",
           "What should I do?", "Should I come in?"]

# ------------------------------------------------------------------------------------------------ the cases
# Shared course phrases: the same words follow every problem; the level is URGENCY[problem][course].
COURSES = {
    "now": ["started {recent} and it's still going", "since {recent}, and it's getting worse",
            "began {recent} and hasn't stopped"],
    "passed": ["happened {past}, lasted a few minutes and went away", "came on {recent} but is gone now",
               "was there {past} for a bit, fine since", "started {recent}, lasted a few minutes and stopped"],
    "days": ["{days}, slowly getting worse", "{days} and not improving", "{days}, worse again since {recent}"],
    "chronic": ["{weeks}, about the same", "{weeks}, it never really changes", "{weeks}; it came back {recent} "
                "like it always does"],
}
PROBLEMS = {  # phrase pool, and the level for each course (None: not written)
    "chest": (["pressure in my chest", "tightness in my chest", "a heavy feeling in my chest"],
              {"now": E, "passed": U, "days": U, "chronic": R}),
    "breath": (["shortness of breath at rest", "trouble catching my breath", "breathlessness"],
               {"now": E, "passed": U, "days": U, "chronic": R}),
    "neuro": (["weakness and numbness in my {side} arm", "slurred speech", "drooping on one side of my face"],
              {"now": E, "passed": E, "days": U, "chronic": None}),
    "headache": (["a headache", "a pounding headache", "head pain"],
                 {"now": R, "passed": R, "days": U, "chronic": R}),
    "fever": (["a fever of {fever}", "fevers up to {fever}", "a temperature of {fever}"],
              {"now": U, "passed": R, "days": U, "chronic": U}),
    "rash": (["a red rash on my {body}", "a patch of redness on my {body}", "an itchy red area on my {body}"],
             {"now": R, "passed": R, "days": U, "chronic": R}),
    "calf": (["swelling in my {side} calf", "a swollen, sore {side} leg", "pain and swelling in my {side} calf"],
             {"now": U, "passed": R, "days": U, "chronic": R}),
    "belly": (["pain in my lower belly", "stomach cramps", "pain on the right side of my belly"],
              {"now": U, "passed": R, "days": U, "chronic": R}),
    "palpitations": (["a racing heartbeat", "palpitations", "my heart skipping beats"],
                     {"now": U, "passed": R, "days": U, "chronic": R}),
    "nosebleed": (["a nosebleed", "bleeding from my nose"], {"now": U, "passed": R, "days": U, "chronic": R}),
    "back": (["lower back pain", "a stiff, sore back"], {"now": R, "passed": R, "days": R, "chronic": R}),
    "cough": (["a dry cough", "a tickly cough", "a cough with clear mucus"],
              {"now": R, "passed": R, "days": R, "chronic": R}),
    "throat": (["a sore throat", "a scratchy throat"], {"now": R, "passed": R, "days": R, "chronic": R}),
    "knee": (["pain in my {side} knee", "an achy {side} knee"], {"now": R, "passed": R, "days": R, "chronic": R}),
}
PATIENT = {  # background that changes some levels (and appears with other problems, where it changes nothing)
    "chemo": "I'm in the middle of chemotherapy.",
    "anticoag": "I'm on {anticoag} for atrial fibrillation.",
    "none": "",
}


def symptom_level(problem: str, course: str, patient: str) -> str | None:
    level = PROBLEMS[problem][1][course]
    if level is None:
        return None
    if patient == "chemo" and problem == "fever" and course != "passed":
        return E  # fever during chemotherapy: possible neutropenic sepsis
    if patient == "anticoag" and problem == "nosebleed" and course == "now":
        return E  # bleeding that will not stop on an anticoagulant
    return level


SYMPTOM_FRAMES = ["I've had {problem} that {course}.", "{Problem} {course}.", "I have {problem}; it {course}.",
                  "Since I last saw you: {problem} that {course}."]

# post-procedure problems (nurse within 2 weeks; the same words years later go to the physician)
OP_PROBLEMS = {
    "bleeding": (["bleeding from the incision", "blood soaking through the dressing"],
                 {"now": E, "passed": R, "days": U, "chronic": None}),
    "wound": (["redness and drainage at the incision", "a warm, red incision"],
              {"now": U, "passed": R, "days": U, "chronic": None}),
    "calf": (["swelling in my {side} calf", "a swollen, sore {side} leg"],
             {"now": U, "passed": R, "days": U, "chronic": None}),
    "fever": (["a fever of {fever}", "fevers up to {fever}"], {"now": U, "passed": R, "days": U, "chronic": None}),
    "pain": (["soreness around the incision", "some pain at the site"],
             {"now": R, "passed": R, "days": R, "chronic": None}),
}
OP_FRAMES = ["I had my {surgery} {ago} and have {problem} that {course}.",
             "After my {surgery} {ago}: {problem} that {course}.",
             "{Problem} {course}. My {surgery} was {ago}."]

READINGS = {  # kind -> {band: values}; level from band and symptoms
    "sugar": {"critical": ["42", "38", "45", "48"], "high": ["320", "340", "310", "355"],
              "ok": ["112", "98", "126", "104"]},
    "oxygen": {"critical": ["86%", "84%", "87%", "85%"], "high": None, "ok": ["95%", "96%", "97%"]},
    "blood pressure": {"critical": ["212/124", "198/126", "205/130", "220/122"],
                       "high": ["168/102", "172/104", "165/98", "176/106"], "ok": ["124/78", "131/82", "118/74"]},
}
READING_SYMPTOMS = {"sugar": "I'm shaky and sweaty", "oxygen": "I'm breathing fast",
                    "blood pressure": "I have a headache and blurry vision"}


def reading_level(band: str, symptoms: bool) -> str:
    if band == "critical":
        return E if symptoms else U
    return U if band == "high" else R


DRUGS = {"insulin": ["Lantus", "insulin", "Humalog"], "sulfonylurea": ["glipizide", "glyburide"],
         "opioid": ["oxycodone", "hydrocodone"], "anticoag": ["warfarin", "Eliquis", "Xarelto"],
         "transplant": ["tacrolimus", "mycophenolate"], "seizure": ["levetiracetam", "lamotrigine"],
         "lowrisk": ["atorvastatin", "omeprazole", "cetirizine", "famotidine", "lisinopril"]}
MED_SITUATIONS = {  # level by drug class; messages say "I feel OK" (symptoms go to the physician)
    "extra": (["I took my {drug} twice by mistake {recent}. I feel OK so far.",
               "I accidentally took an extra dose of {drug} {recent}; no symptoms yet."],
              {"insulin": E, "sulfonylurea": E, "opioid": E, "anticoag": U, "transplant": U, "seizure": R,
               "lowrisk": R}),
    "missed": (["I missed two doses of my {drug} {past}.", "I forgot my {drug} {past} and again this morning."],
               {"insulin": U, "sulfonylurea": R, "opioid": R, "anticoag": U, "transplant": U, "seizure": U,
                "lowrisk": R}),
    "runout": (["I run out of {drug} tomorrow and the refill needs approval.",
                "The pharmacy is out of stock of my {drug} and I have one day left."],
               {"insulin": U, "sulfonylurea": R, "opioid": U, "anticoag": U, "transplant": U, "seizure": U,
                "lowrisk": R}),
    "refill": (["Can I get a 90-day refill of my {drug}? I have a few weeks left.",
                "Please send a refill of {drug} to my pharmacy, no rush."],
               {k: R for k in ["insulin", "sulfonylurea", "opioid", "anticoag", "transplant", "seizure",
                               "lowrisk"]}),
    "question": (["Is it OK to take {otc} with my {drug}?", "I picked up my {drug} {recent}; should I take it "
                  "with food?"],
                 {k: R for k in ["insulin", "sulfonylurea", "opioid", "anticoag", "transplant", "seizure",
                                 "lowrisk"]}),
}
# the same mistakes with symptoms go to the physician; the drug and the symptom decide the level
MED_SYMPTOMS = {"insulin": [("now I'm shaky, sweaty and confused", E)],
                "sulfonylurea": [("now I'm shaky and sweaty", E)],
                "opioid": [("now I'm very drowsy and breathing slowly", E), ("now I'm a bit constipated", R)],
                "anticoag": [("now I have a nosebleed that won't stop", E), ("now I have a few new bruises", U)],
                "transplant": [("now I have a slight tremor", U)],
                "seizure": [("now I feel a little dizzy", R)],
                "lowrisk": [("now I have a mild headache", R), ("now I have an upset stomach", R),
                            ("now I have a bit of heartburn", R)]}
NONTOXIC = ["a silica gel packet", "a few gummy vitamins without iron", "some diaper cream", "a bit of toothpaste",
            "a crayon"]

ADMIN = {  # front desk: the deadline decides
    "form": ["My {form} is needed {deadline}. Can you fill it out?", "Can someone complete my {form}? It's due "
             "{deadline}."],
    "records": ["Could you send my records to the specialist? I see them {deadline}.",
                "Please fax my records to my new doctor, needed {deadline}."],
    "visit": ["I need a pre-op visit before my surgery, which is {deadline}.",
              "Can I get an appointment? My work needs a clearance visit {deadline}."],
    "reschedule": ["I need to move my {test}, it's {deadline} and I can't make it.",
                   "Can I reschedule my visit {deadline}? My car broke down."],
}
DEADLINES = {U: ["tomorrow", "by tomorrow", "the day after tomorrow", "first thing tomorrow", "today"],
             R: ["next month", "in a few weeks", "before {month}", "by the end of {month}"]}
ADMIN_ROUTINE = ["I got a bill for {amount} from my visit {past}. I think insurance should have covered it.",
                 "I opened a bill for {amount} {recent}; can someone explain the charges?",
                 "I switched to {insurer}. How do I update it before my next visit?",
                 "Do you have Saturday appointments in {month}?"]
RESULTS = [("My potassium came back 6.1 and flagged high.", U), ("My sodium came back 127, marked abnormal.", U),
           ("My LDL came back 162. Do I need medicine?", R), ("My A1c was 6.1; what does prediabetes mean?", R),
           ("My TSH was 5.2, slightly high. Is that something to treat?", R),
           ("My hemoglobin came back 6.9 and flagged critical.", U)]
PREP = ["My {test} is {deadline}; should I stop eating tonight?", "Do I need to fast before my {test}? It's "
        "{deadline}."]


def _deadline(rng: random.Random, level: str) -> tuple[str, str]:
    """(deadline phrase, sentence giving today's date): half the time a date, so the gap must be worked out."""
    if rng.random() < 0.5:
        return rng.choice(DEADLINES[level]), ""
    month, today = rng.choice(SLOTS["month"]), rng.randint(1, 14)
    due = today + (rng.choice([1, 2]) if level == U else rng.randint(10, 16))
    return f"on {month} {due}", f"Today is {month} {today}."


def _fill(rng: random.Random, template: str) -> str:
    def value(name: str) -> str:
        text = rng.choice(SLOTS[name])
        return text.format(side=rng.choice(SLOTS["side"])) if "{side}" in text else text

    names = list(dict.fromkeys(name for _, name, _, _ in string.Formatter().parse(template) if name))
    text = template.format(**{name: value(name) for name in names})
    return text[:1].upper() + text[1:]


def _frame(rng, frame: str, problem_text: str, course_text: str, **extra) -> str:
    return frame.format(problem=problem_text, Problem=problem_text[:1].upper() + problem_text[1:],
                        course=course_text, **extra)


def draw_case(rng: random.Random, personnel: str) -> dict | None:
    """One random message for ``personnel`` with its fields and urgency (None: a combination not written)."""
    if personnel == "physician":
        kind = rng.random()
        if kind < 0.72:
            problem = rng.choice(list(PROBLEMS))
            course = rng.choice(list(COURSES))
            patient = rng.choices(["none", "chemo", "anticoag"], weights=[4, 1, 1])[0]
            if problem == "fever" and rng.random() < 0.4:
                patient = "chemo"
            if problem == "nosebleed" and rng.random() < 0.5:
                patient = "anticoag"
            level = symptom_level(problem, course, patient)
            if level is None:
                return None
            if rng.random() < 0.3:  # after a procedure long ago: still the physician's
                body = _frame(rng, rng.choice(OP_FRAMES), rng.choice(PROBLEMS[problem][0]),
                              rng.choice(COURSES[course]), surgery="{surgery}", ago="{old_op}")
            else:
                body = _frame(rng, rng.choice(SYMPTOM_FRAMES), rng.choice(PROBLEMS[problem][0]),
                              rng.choice(COURSES[course]))
            text = " ".join(p for p in (_fill(rng, PATIENT[patient]), _fill(rng, body)) if p)
            return dict(intent="new_symptom", trigger=f"{problem}:{course}:{patient}", urgency=level, body=text)
        if kind < 0.86:
            drug_class = rng.choice(list(MED_SYMPTOMS))
            drug = rng.choice(DRUGS[drug_class])
            symptom, level = rng.choice(MED_SYMPTOMS[drug_class])
            text = rng.choice([f"I took my {drug} twice by mistake {{recent}}, and {symptom}.",
                               f"I accidentally took an extra dose of {drug} {{recent}}; {symptom}."])
            return dict(intent="medication_error", trigger=f"extra_symptomatic:{drug_class}", urgency=level,
                        body=_fill(rng, text))
        result, level = rng.choice(RESULTS)
        return dict(intent="result_question", trigger=f"result:{level}", urgency=level, body=result)
    if personnel == "nurse":
        kind = rng.random()
        if kind < 0.45:
            problem = rng.choice(list(OP_PROBLEMS))
            course = rng.choice(["now", "passed", "days"])
            level = OP_PROBLEMS[problem][1][course]
            body = _frame(rng, rng.choice(OP_FRAMES), rng.choice(OP_PROBLEMS[problem][0]),
                          rng.choice(COURSES[course]), surgery="{surgery}", ago="{recent_op}")
            if problem == "calf" and course == "now" and rng.random() < 0.5:
                body += " Now I'm short of breath too."
                level = E  # a possible pulmonary embolism after surgery
            return dict(intent="post_procedure", trigger=f"op_{problem}:{course}", urgency=level,
                        body=_fill(rng, body))
        if kind < 0.85:
            reading = rng.choice(list(READINGS))
            band = rng.choice([b for b, values in READINGS[reading].items() if values])
            symptoms = rng.random() < 0.5
            value = rng.choice(READINGS[reading][band])
            feel = READING_SYMPTOMS[reading] if symptoms else rng.choice(["I feel fine", "no other symptoms"])
            body = rng.choice([f"My {reading} read {value} {{recent}} and {feel}.",
                               f"Home {reading} check: {value} {{recent}}; {feel}."])
            return dict(intent="home_reading", trigger=f"{reading}:{band}:{'symptoms' if symptoms else 'none'}",
                        urgency=reading_level(band, symptoms), body=_fill(rng, body))
        level = rng.choice([U, R])
        deadline, today = _deadline(rng, level)
        body = _fill(rng, rng.choice(PREP).replace("{deadline}", deadline))
        return dict(intent="care_instructions", trigger=f"prep:{level}", urgency=level,
                    body=" ".join(p for p in (today, body) if p))
    if personnel == "pharmacist":
        if rng.random() < 0.15:  # a child's ingestion: medication is an emergency, a non-toxic item is not
            toxic = rng.random() < 0.5
            what = "{pill_source}" if toxic else rng.choice(NONTOXIC)
            return dict(intent="medication_error", trigger=f"child_ingestion:{'medication' if toxic else 'nontoxic'}",
                        urgency=E if toxic else R,
                        body=_fill(rng, f"My {{child}} got into {what} {{recent}} and may have swallowed some. "
                                        "Seems OK so far."))
        situation = rng.choice(list(MED_SITUATIONS))
        # extra doses of low-risk drugs are the common case; high-risk ones are not the majority
        drug_class = rng.choices(list(DRUGS), weights=[2, 2, 2, 3, 3, 3, 5] if situation == "extra" else None)[0]
        level = MED_SITUATIONS[situation][1][drug_class]
        text = rng.choice(MED_SITUATIONS[situation][0]).replace("{drug}", rng.choice(DRUGS[drug_class]))
        intent = {"extra": "medication_error", "missed": "medication_question", "runout": "refill",
                  "refill": "refill", "question": "medication_question"}[situation]
        return dict(intent=intent, trigger=f"{situation}:{drug_class}", urgency=level, body=_fill(rng, text))
    kind = rng.choice(list(ADMIN) + ["routine_admin"])
    if kind == "routine_admin":
        return dict(intent="billing", trigger="admin:routine", urgency=R, body=_fill(rng, rng.choice(ADMIN_ROUTINE)))
    level = rng.choice([U, R])
    deadline, today = _deadline(rng, level)
    text = _fill(rng, rng.choice(ADMIN[kind]).replace("{deadline}", deadline))
    intent = "scheduling" if kind in ("visit", "reschedule") else "forms_records"
    return dict(intent=intent, trigger=f"{kind}:{level}", urgency=level, body=" ".join(p for p in (today, text) if p))


# a routine side request of lower precedence, which never changes either label
ADDONS = {
    "pharmacist": ["Also, could I get a refill of my {routine_med}? No rush.",
                   "Also, is it OK to take {otc} with my {routine_med}?"],
    "front desk": ["Also, could someone send my records to my new doctor?",
                   "Also, I got a bill for {amount} I don't understand.", "Also, can I move my {month} appointment?"],
    "nurse": ["Also, am I due for a {vaccine} booster?"],
}
PRECEDENCE = ["physician", "nurse", "pharmacist", "front desk"]


def add_side_request(rng: random.Random, personnel: str, body: str) -> str:
    lower = PRECEDENCE[PRECEDENCE.index(personnel) + 1:]
    if not lower or rng.random() >= 0.4:
        return body
    return body + " " + _fill(rng, rng.choice(ADDONS[rng.choice(lower)]))


def _compose(rng: random.Random, body: str) -> str:
    sentences = [body]
    for _ in range(rng.choice([0, 1, 1, 2])):
        sentences.insert(rng.randint(0, len(sentences)), _fill(rng, rng.choice(CONTEXT)))
    opener, closer = rng.choice(OPENERS), rng.choice(CLOSERS)
    text = " ".join(sentences)
    if rng.random() < 0.12:
        text = text.lower()
    return "\n".join(part for part in (opener, text, closer) if part)


def generate(seed: int = SEED) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    seen: set[str] = set()
    splits: dict[str, list[dict]] = {}
    counter = 0
    for split, cells in CELL_COUNTS.items():
        rows = []
        for personnel, counts in cells.items():
            need = dict(zip(URGENCY, counts))
            attempts = 0
            while any(need.values()):
                attempts += 1
                if attempts > 100000:
                    raise RuntimeError(f"cannot fill {split} {personnel} {need}")
                case = draw_case(rng, personnel)
                if case is None or not need[case["urgency"]]:
                    continue
                message = _compose(rng, add_side_request(rng, personnel, case["body"]))
                if message in seen:
                    continue
                seen.add(message)
                need[case["urgency"]] -= 1
                rows.append({"message": message, "intent": case["intent"], "trigger": case["trigger"],
                             "personnel": personnel, "urgency": case["urgency"], "category": case["intent"]})
        rng.shuffle(rows)
        for row in rows:
            counter += 1
            row["id"] = f"triage-{counter:04d}"
        splits[split] = rows
    return splits


if __name__ == "__main__":
    from medbench.taskdata import write_jsonl_splits

    write_jsonl_splits(generate(SEED), Path(__file__).resolve().parent / "data")
