"""Generator for the ``triage`` tasks: a patient-portal message → who should handle it and how urgently.

One dataset serves two tasks (``triage_personnel`` and ``triage_urgency``); every row carries both labels,
derived from two structured fields by these documented rules:

Personnel — from ``intent``, what the message asks for (``PERSONNEL_BY_INTENT``):
  physician   new or worsening symptoms not tied to a recent procedure (new_symptom), questions interpreting a
              test result (result_question), requests to start, stop or change a treatment (treatment_change)
  nurse       problems or questions after a procedure or surgery (post_procedure), reports of home monitoring
              readings — blood pressure, glucose, oxygen, weight (home_reading), instructions for an upcoming test,
              procedure or vaccine (care_instructions)
  pharmacist  refills (refill), how to take a medication, interactions, missed doses (medication_question),
              medication errors and accidental ingestions (medication_error), coverage, price or stock of a
              medication (coverage)
  front desk  appointments (scheduling), bills and insurance (billing), forms, letters and records
              (forms_records)

Urgency — from ``trigger``, the most urgent feature in the message (``URGENCY_BY_TRIGGER``):
  emergent    a possible emergency now: chest pain, trouble breathing, stroke signs, severe allergic reaction,
              heavy bleeding, suicidal thoughts, fainting, thunderclap headache, dangerous home reading (oxygen
              < 90%, glucose < 54 mg/dL with symptoms, BP >= 180/120 with symptoms), an extra dose of a high-risk
              drug (insulin, anticoagulant, opioid, sulfonylurea) or a child's ingestion
  urgent      needs action within 24-48 hours: persistent fever, spreading redness or wound infection, worsening
              moderate symptoms, a flagged abnormal result, home readings out of range without emergency signs,
              an essential medication running out within 2 days, an appointment, form or preparation due within
              2 days
  routine     everything else (can wait several days)

Front-desk messages are never emergent (an emergency in a message is clinical, so its intent is clinical).
Label balance: every split has equal counts of the four personnel labels and of the three urgency labels
(train 204 = 4 x 51 = 3 x 68, validation 48, test 108); the joint counts follow ``CELL_COUNTS`` (front desk x
emergent is empty, so physician/nurse/pharmacist carry the emergent third). ``category`` is the intent.
Templates are filled from slot lists (symptoms, drugs, procedures, times) with varied greetings and sign-offs;
no names. Run ``python generate.py`` to rewrite data/{train,validation,test}.jsonl (seed 3141).
"""

from __future__ import annotations

import random
import string
from pathlib import Path

SEED = 3141
PERSONNEL = ["physician", "nurse", "pharmacist", "front desk"]
URGENCY = ["emergent", "urgent", "routine"]

PERSONNEL_BY_INTENT = {
    "new_symptom": "physician", "result_question": "physician", "treatment_change": "physician",
    "post_procedure": "nurse", "home_reading": "nurse", "care_instructions": "nurse",
    "refill": "pharmacist", "medication_question": "pharmacist", "medication_error": "pharmacist",
    "coverage": "pharmacist",
    "scheduling": "front desk", "billing": "front desk", "forms_records": "front desk",
}
EMERGENT_TRIGGERS = ["chest_pain", "breathing", "stroke_signs", "anaphylaxis", "heavy_bleeding", "suicidal",
                     "syncope", "thunderclap_headache", "critical_reading", "high_risk_overdose", "child_ingestion"]
URGENT_TRIGGERS = ["persistent_fever", "spreading_redness", "wound_infection", "worsening_symptom",
                   "flagged_result", "out_of_range_reading", "medication_running_out", "due_within_48h"]
URGENCY_BY_TRIGGER = {**{t: "emergent" for t in EMERGENT_TRIGGERS}, **{t: "urgent" for t in URGENT_TRIGGERS},
                      "none": "routine"}

# rows: personnel; columns: emergent, urgent, routine. Row sums = n/4, column sums = n/3.
CELL_COUNTS = {
    "train": {"physician": (23, 14, 14), "nurse": (23, 14, 14), "pharmacist": (22, 15, 14),
              "front desk": (0, 25, 26)},
    "validation": {"physician": (6, 3, 3), "nurse": (5, 4, 3), "pharmacist": (5, 3, 4), "front desk": (0, 6, 6)},
    "test": {"physician": (12, 7, 8), "nurse": (12, 8, 7), "pharmacist": (12, 7, 8), "front desk": (0, 14, 13)},
}


def personnel_for(intent: str) -> str:
    return PERSONNEL_BY_INTENT[intent]


def urgency_for(trigger: str) -> str:
    return URGENCY_BY_TRIGGER[trigger]


# ------------------------------------------------------------------------------------------------------ slots
SLOTS = {
    "chest": ["a crushing pressure in my chest", "tight chest pain", "a heavy feeling in the middle of my chest",
              "sharp pain behind my breastbone"],
    "radiate": ["left arm", "jaw", "back", "neck and left shoulder"],
    "sweat": ["sweaty and nauseous", "clammy and lightheaded", "short of breath and sweating"],
    "minutes": ["20", "30", "40", "15"],
    "relative": ["husband", "wife", "mom", "dad", "grandmother", "father-in-law"],
    "side": ["left", "right"],
    "stroke_sign": ["slurring words", "having trouble getting words out", "unable to lift one arm",
                    "confused and can't find words"],
    "since": ["about half an hour ago", "20 minutes ago", "right after lunch", "about an hour ago",
              "a few minutes ago"],
    "ago": ["about 20 minutes ago", "within the last hour", "just now", "a few minutes ago"],
    "food": ["shrimp", "a dish with cashews", "a granola bar", "sesame crackers", "a sample at the bakery"],
    "breath_detail": ["I have to stop between words", "my lips look a little blue", "it's getting worse by the minute",
                      "my inhaler isn't helping at all"],
    "means": ["my pills", "a lot of medication", "a gun"],
    "place": ["bathroom", "kitchen", "shower", "driveway"],
    "activity": ["lifting boxes", "on the treadmill", "sitting at my desk", "in the shower"],
    "temp": ["101.5", "102", "102.4", "101.8", "103"],
    "days": ["3", "4", "5", "three", "four"],
    "sputum": ["green mucus", "thick yellow phlegm", "rusty-colored mucus"],
    "body": ["shin", "forearm", "thigh", "calf", "foot"],
    "spread": ["about two inches", "past the line I drew", "up toward my knee", "quickly"],
    "k": ["5.9", "6.1", "5.8"],
    "sodium": ["128", "127", "129"],
    "joint": ["big toe", "knee", "ankle"],
    "ldl": ["162", "171", "148", "190"],
    "vitd": ["18", "22", "16"],
    "a1c": ["6.1", "5.9", "6.2"],
    "tsh": ["5.2", "4.9", "5.6"],
    "chronic_med": ["lisinopril", "amlodipine", "metformin", "sertraline", "omeprazole", "atorvastatin",
                    "levothyroxine", "losartan"],
    "condition": ["acid reflux", "high blood pressure", "migraines", "allergies", "insomnia", "back pain"],
    "issue": ["makes me tired", "doesn't seem to work anymore", "gives me a dry cough", "upsets my stomach"],
    "mild_symptom": ["my hands get cold and pale in the winter", "a small painless lump on my back",
                     "occasional ringing in my ears", "my knees crack when I climb stairs",
                     "a mole that might be a little darker"],
    "exercise": ["running again", "lifting weights", "hot yoga", "a half marathon training plan"],
    "surgery": ["knee replacement", "gallbladder surgery", "hernia repair", "C-section", "hip replacement",
                "appendectomy"],
    "procedure": ["colonoscopy", "skin biopsy", "cardiac catheterization", "cystoscopy", "mole removal"],
    "days_ago": ["two days ago", "last week", "on Monday", "3 days ago", "five days ago"],
    "times": ["three", "four", "two"],
    "glucose_low": ["42", "38", "45", "40"],
    "spo2": ["86", "84", "87", "85"],
    "sbp_crit": ["212", "198", "205", "220"],
    "dbp_crit": ["124", "126", "130", "122"],
    "sbp_u": ["168", "172", "165", "176"],
    "dbp_u": ["102", "104", "98", "106"],
    "glucose_high": ["320", "340", "310", "355"],
    "lbs": ["4", "5", "6"],
    "drain": ["yellow pus", "cloudy fluid", "some thick drainage"],
    "prep_issue": ["ate a salad for lunch", "can't keep the prep solution down", "only drank half of the prep",
                   "forgot to stop eating solid food this morning"],
    "vaccine": ["tetanus", "shingles", "pneumonia", "hepatitis B"],
    "year": ["2015", "2016", "2018", "2019"],
    "test": ["blood draw", "abdominal ultrasound", "lipid panel", "glucose tolerance test", "stress test"],
    "readings": ["124/78, 128/80, 122/76", "131/82, 127/79, 125/80", "118/74, 121/77, 119/75"],
    "wound": ["biopsy site", "incision", "leg wound"],
    "insulin": ["Lantus", "long-acting insulin", "Humalog", "evening insulin"],
    "units": ["40", "30", "36", "50"],
    "child": ["2-year-old", "3-year-old", "18-month-old", "4-year-old", "toddler"],
    "fasting_test": ["glucose tolerance test", "fasting blood draw", "abdominal ultrasound"],
    "pill_source": ["blood pressure pills", "my mother's pill organizer", "my iron tablets",
                    "the bottle of my heart pills"],
    "opioid": ["oxycodone", "hydrocodone", "morphine"],
    "n_extra": ["three", "four", "five"],
    "anticoag": ["warfarin", "Eliquis", "Xarelto"],
    "sulfonylurea": ["glipizide", "glyburide"],
    "critical_med": ["seizure medicine (levetiracetam)", "tacrolimus", "insulin", "lamotrigine", "Eliquis"],
    "left": ["two", "one day's worth of", "enough for tomorrow"],
    "transplant_med": ["tacrolimus", "mycophenolate", "cyclosporine"],
    "routine_med": ["atorvastatin", "lisinopril", "levothyroxine", "omeprazole", "metformin", "sertraline",
                    "cetirizine", "montelukast"],
    "pharmacy": ["the pharmacy on Main Street", "my mail-order pharmacy", "the grocery store pharmacy",
                 "the pharmacy near my new apartment"],
    "weeks": ["two", "three", "a couple of"],
    "otc": ["ibuprofen", "a multivitamin", "melatonin", "Benadryl", "an antacid", "turmeric supplements"],
    "day_next": ["Thursday morning", "tomorrow afternoon", "the day after tomorrow", "Friday (in two days)"],
    "deadline": ["tomorrow", "by end of day tomorrow", "by Friday (the day after tomorrow)",
                 "first thing tomorrow"],
    "appt_time": ["9:30", "10:15", "2:00", "3:45"],
    "month": ["March", "April", "June", "September", "November"],
    "amount": ["$240", "$85", "$1,120", "$310"],
    "insurer": ["a new employer plan", "Medicare", "a marketplace plan", "my spouse's insurance"],
    "city": ["another state", "the next town over", "the city I'm moving to"],
    "camp": ["summer camp", "sports physical", "school"],
    "reason": ["my car broke down", "I have to work", "my kid is sick", "I have a family emergency out of town"],
    "minor_kid": ["son", "daughter"],
}

# (intent, trigger, template). The urgency is urgency_for(trigger); the personnel is personnel_for(intent).
TEMPLATES = [
    # physician — emergent
    ("new_symptom", "chest_pain", "I've had {chest} for the last {minutes} minutes and it's spreading to my {radiate}. "
                                  "I'm {sweat}. Should I come in?"),
    ("new_symptom", "chest_pain", "Out of nowhere I got {chest} while walking the dog, it hasn't gone away after "
                                  "{minutes} minutes of rest. I'm {sweat}."),
    ("new_symptom", "stroke_signs", "My {relative} is suddenly {stroke_sign} and the {side} side of the face looks "
                                    "droopy. It started {since}. What should we do?"),
    ("new_symptom", "stroke_signs", "I can't feel my {side} arm and my speech sounds strange to me, this began "
                                    "{since}."),
    ("new_symptom", "anaphylaxis", "I ate {food} and now my throat feels tight and my lips are swelling. I'm "
                                   "itchy all over and it's getting harder to swallow."),
    ("new_symptom", "breathing", "I can't catch my breath even sitting still, {breath_detail}. It started {since}."),
    ("new_symptom", "suicidal", "I don't want to be here anymore. I've been thinking about ending my life and I "
                                "have {means} at home. I don't know who else to tell."),
    ("new_symptom", "syncope", "I passed out in the {place} this morning and hit my head. I'm still dizzy and my "
                               "heart feels like it's racing."),
    ("new_symptom", "thunderclap_headache", "The worst headache of my life came on suddenly {since} while I was "
                                            "{activity}, and I've thrown up twice."),
    ("new_symptom", "heavy_bleeding", "I've been throwing up what looks like coffee grounds and my stool is black. "
                                      "I feel faint when I stand up."),
    # physician — urgent
    ("new_symptom", "persistent_fever", "I've had a fever of {temp} for {days} days with a cough bringing up "
                                        "{sputum}. Tylenol isn't bringing it down."),
    ("new_symptom", "persistent_fever", "It burns when I pee and since yesterday I have a fever of {temp} and my "
                                        "lower back aches. Can someone look at this?"),
    ("new_symptom", "spreading_redness", "A red patch on my {body} is spreading, it's grown {spread} since "
                                         "yesterday and it's hot to the touch. No fever yet."),
    ("new_symptom", "worsening_symptom", "My {joint} got swollen, red and very painful overnight, I can barely put "
                                         "weight on it. It's worse today than yesterday."),
    ("new_symptom", "worsening_symptom", "My {minor_kid}'s ear pain is worse after {days} days and now there's "
                                         "fluid coming out of the ear."),
    ("result_question", "flagged_result", "The portal shows my potassium came back {k} and it's flagged as high. "
                                          "What should I do about it?"),
    ("result_question", "flagged_result", "My sodium result says {sodium}, marked abnormal. I feel a little off. "
                                          "Do I need to do anything before my visit next month?"),
    # physician — routine
    ("result_question", "none", "I saw my cholesterol results, LDL {ldl}. Do I need medicine for that or can I "
                                "try diet first?"),
    ("result_question", "none", "My vitamin D came back at {vitd}. Should I be taking a supplement?"),
    ("result_question", "none", "What does an A1c of {a1c} mean? The portal says prediabetes range."),
    ("result_question", "none", "My TSH was {tsh}, slightly above the range. Is that something to treat?"),
    ("treatment_change", "none", "I'd like to talk about coming off {chronic_med} since I've been doing well for a "
                                 "year. Is that possible?"),
    ("treatment_change", "none", "Could I try a different medicine for my {condition}? The current one {issue}."),
    ("new_symptom", "none", "For a few months I've noticed {mild_symptom}. It's not bothering me much, but is it "
                            "worth looking at?"),
    ("treatment_change", "none", "Is it OK for me to start {exercise} with my {condition}, or should we adjust "
                                 "anything first?"),
    # nurse — emergent
    ("post_procedure", "heavy_bleeding", "I had my {surgery} {days_ago} and the incision is bleeding right through "
                                         "the dressing. I've changed it {times} times in the last hour."),
    ("post_procedure", "breathing", "Since my {surgery} {days_ago} my calf has been swollen, and now I'm short of "
                                    "breath and it hurts to take a deep breath."),
    ("post_procedure", "heavy_bleeding", "After my {procedure} {days_ago} I'm passing a lot of bright red blood "
                                         "and clots and I feel lightheaded."),
    ("home_reading", "critical_reading", "My sugar just read {glucose_low}. I'm shaky, sweaty and confused, I had "
                                         "juice 15 minutes ago and it's still low."),
    ("home_reading", "critical_reading", "My pulse oximeter reads {spo2}% and I'm breathing fast. It was 95 this "
                                         "morning."),
    ("home_reading", "critical_reading", "My home blood pressure is {sbp_crit}/{dbp_crit} and I have a pounding "
                                         "headache and blurry vision."),
    # nurse — urgent
    ("post_procedure", "wound_infection", "My incision from the {surgery} is red, warm and draining {drain} since "
                                          "yesterday. No fever so far."),
    ("post_procedure", "wound_infection", "The {wound} from my {procedure} {days_ago} is getting more painful and "
                                          "swollen, with {drain} on the bandage."),
    ("home_reading", "out_of_range_reading", "My blood pressure has been {sbp_u}/{dbp_u} on my last few readings. "
                                             "I feel fine otherwise."),
    ("home_reading", "out_of_range_reading", "My fasting sugars have been over {glucose_high} every morning this "
                                             "week even with my insulin. No other symptoms."),
    ("home_reading", "out_of_range_reading", "I gained {lbs} pounds in 2 days on my home scale and my ankles are "
                                             "more swollen. Breathing is OK."),
    ("care_instructions", "due_within_48h", "My colonoscopy is tomorrow morning and I just realized I {prep_issue}. "
                                            "Can I still go ahead?"),
    ("care_instructions", "due_within_48h", "My {fasting_test} is tomorrow at 8. Can I drink water tonight, and "
                                            "should I wait to eat until after?"),
    # nurse — routine
    ("post_procedure", "none", "When am I allowed to shower after my {surgery}? Everything looks fine."),
    ("post_procedure", "none", "How often should I change the dressing on my {wound}? It's healing well."),
    ("post_procedure", "none", "The stitches from my {procedure} look good. When should they come out?"),
    ("care_instructions", "none", "Am I due for a {vaccine} booster? I think my last one was in {year}."),
    ("care_instructions", "none", "I'm scheduled for a {test} next month. Do I need to fast beforehand?"),
    ("home_reading", "none", "Here are my blood pressure readings from this week as you asked: {readings}."),
    # pharmacist — emergent
    ("medication_error", "high_risk_overdose", "I accidentally took my {insulin} twice tonight, {units} units each "
                                               "time. What should I do?"),
    ("medication_error", "child_ingestion", "My {child} got into {pill_source} and may have swallowed some "
                                            "{ago}. Seems OK right now."),
    ("medication_error", "high_risk_overdose", "I took {n_extra} of my {opioid} pills instead of one by mistake "
                                               "about an hour ago."),
    ("medication_error", "high_risk_overdose", "I doubled up on my {anticoag} by accident, took it this morning and "
                                               "again at lunch, and I have a nosebleed that won't stop."),
    ("medication_error", "high_risk_overdose", "My {relative} took {n_extra} extra {sulfonylurea} tablets thinking "
                                               "they were vitamins. What should we do?"),
    # pharmacist — urgent
    ("refill", "medication_running_out", "I only have {left} pills of my {critical_med} left and the pharmacy says "
                                         "the refill needs approval from the office."),
    ("coverage", "medication_running_out", "Insurance denied the refill of my {critical_med} and I run out the day "
                                           "after tomorrow. Is there a covered alternative?"),
    ("medication_question", "medication_running_out", "I missed two doses of my {transplant_med} while "
                                                      "traveling. Should I take them now or skip them?"),
    ("coverage", "medication_running_out", "The pharmacy is out of stock of my {critical_med} and I have "
                                           "{left} doses left. Can you send it somewhere else?"),
    # pharmacist — routine
    ("refill", "none", "Can I get a 90-day refill of my {routine_med} sent to {pharmacy}? I still have about "
                       "{weeks} weeks left."),
    ("medication_question", "none", "Is it OK to take {otc} with my {routine_med}?"),
    ("medication_question", "none", "Should I take my {routine_med} with food or on an empty stomach?"),
    ("coverage", "none", "My {routine_med} went up in price a lot. Is there a cheaper generic option?"),
    ("refill", "none", "Please transfer my {routine_med} prescription to {pharmacy}. No rush."),
    ("medication_question", "none", "What's the best time of day to take my {routine_med}? I've been taking it at "
                                    "night."),
    # front desk — urgent
    ("scheduling", "due_within_48h", "My surgery is {day_next} and the hospital says I still need a pre-op visit "
                                     "with you before then. Can I get in tomorrow?"),
    ("forms_records", "due_within_48h", "My employer needs the FMLA paperwork back {deadline} or my leave is "
                                        "denied. Can you fax it today?"),
    ("forms_records", "due_within_48h", "I'm seeing the specialist {deadline} and they still don't have my "
                                        "records. Can you send them today?"),
    ("scheduling", "due_within_48h", "I need to cancel my appointment tomorrow at {appt_time} because {reason}. "
                                     "Can I get the next opening?"),
    ("forms_records", "due_within_48h", "My {minor_kid} can't start {camp} {deadline} without the immunization "
                                        "form. Can someone upload it?"),
    # front desk — routine
    ("scheduling", "none", "Could I move my {month} appointment to a morning slot?"),
    ("billing", "none", "I got a bill for {amount} from my visit in {month}. I think insurance should have "
                        "covered it. Who can look into this?"),
    ("billing", "none", "I switched to {insurer}. How do I update my insurance information before my next "
                        "visit?"),
    ("forms_records", "none", "Could you send my records to my new doctor in {city}? I'm moving in {month}."),
    ("forms_records", "none", "I need the {camp} form for my {minor_kid} filled out sometime before {month}."),
    ("scheduling", "none", "Do you have any Saturday appointments for an annual physical in {month}?"),
]

OPENERS = ["", "", "Hi,", "Hello,", "Good morning,", "Hi there,", "Hello, this is a patient of the clinic.",
           "Sorry to bother you,", "Hi, quick question.", "Hello team,"]
CLOSERS = ["", "", "Thanks", "Thank you!", "Thanks so much.", "Please let me know.", "Sent from my phone",
           "Appreciate any help.", "Thank you for your time."]


def _fill(rng: random.Random, template: str) -> str:
    names = list(dict.fromkeys(name for _, name, _, _ in string.Formatter().parse(template) if name))
    return template.format(**{name: rng.choice(SLOTS[name]) for name in names})


def _compose(rng: random.Random, body: str) -> str:
    opener, closer = rng.choice(OPENERS), rng.choice(CLOSERS)
    if rng.random() < 0.12:
        body = body.lower()
    parts = [part for part in (opener, body, closer) if part]
    return "\n".join(parts)


def templates_for(personnel: str, urgency: str) -> list[tuple[str, str, str]]:
    return [t for t in TEMPLATES if personnel_for(t[0]) == personnel and urgency_for(t[1]) == urgency]


def generate(seed: int = SEED) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    seen: set[str] = set()
    splits: dict[str, list[dict]] = {}
    counter = 0
    for split, cells in CELL_COUNTS.items():
        rows = []
        for personnel, counts in cells.items():
            for urgency, n in zip(URGENCY, counts):
                pool = templates_for(personnel, urgency)
                order: list = []
                for _ in range(n):
                    if not order:
                        order = list(pool)
                        rng.shuffle(order)
                    intent, trigger, template = order.pop()
                    for _attempt in range(200):
                        message = _compose(rng, _fill(rng, template))
                        if message not in seen:
                            break
                    else:
                        raise RuntimeError(f"template ran out of variants: {template[:40]}")
                    seen.add(message)
                    rows.append({"message": message, "intent": intent, "trigger": trigger,
                                 "personnel": personnel_for(intent), "urgency": urgency_for(trigger),
                                 "category": intent})
        rng.shuffle(rows)
        for row in rows:
            counter += 1
            row["id"] = f"triage-{counter:04d}"
        splits[split] = rows
    return splits




if __name__ == "__main__":
    from medbench.taskdata import write_jsonl_splits

    write_jsonl_splits(generate(SEED), Path(__file__).resolve().parent / "data")
