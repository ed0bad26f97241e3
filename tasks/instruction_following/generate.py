"""Generate the bundled instruction_following sample: patient-education prompts with verifiable constraints.

The constraints are IFEval's (lm-eval's ``lm_eval.tasks.ifeval``): each row names them by IFEval instruction
id with IFEval's kwargs, so the task scores them with IFEval's own checkers. Rules:

* a prompt = one request from the topic table below (explain X to a patient, write a note for a caregiver,
  ...) + 1 to 3 constraints written out in plain words. Per split the first constraint cycles through every
  instruction type in INSTRUCTION_TYPES (shuffled), so each type appears; then an anchor (version 1.4,
  ``pick_ids``): the closing phrase (+ 0-1 more at random from those compatible, COMPATIBLE), or words to include
  with forbidden words drawn from the other topics' words to include, so no single fixed text meets more than a
  few percent of the prompts. difficulty: 1 constraint easy, 2 medium, 3 hard. category: the topic's area.
* ``response`` is a reference answer built from the topic's facts that satisfies every constraint (the test
  suite checks this with IFEval's checkers); it exists for training (SFT / DPO) and is never compared with
  the model's answer. The numbers in the constraints are set from it: "fewer than N words" has N 5-15 above
  its word count, "at least N words" N at or below it, keyword counts match it.
* instruction types that need data lm-eval cannot fetch offline are not used: number_sentences and
  capital_word_frequency (nltk punkt), response_language and english_capital (language detection).

Run ``python generate.py`` to rewrite data/{train,validation,test}.jsonl. The output depends only on SEED.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

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

# Topics: facts are plain sentences without commas, quotes, asterisks or brackets, and without any of the
# topic's ``tempting`` words (the words a writer would reach for, used as forbidden words). ``keywords`` occur
# in the facts (used as required words); ``term`` occurs in the first fact (used for keyword frequency).
TOPICS: list[dict] = [
    dict(area="cardiology", title="What a statin does", term="statin",
         asks=["Explain to a patient what a statin does", "Write a short note for a patient who has just been "
               "prescribed a statin", "Describe for a caregiver how a statin protects the heart"],
         facts=["A statin is a daily tablet that lowers the amount of fat the liver releases into the blood.",
                "Lower blood fat levels mean less buildup inside the arteries of the heart and brain.",
                "Over time this cuts the chance of a heart attack or a stroke.",
                "Most people take the statin once a day and many take it in the evening.",
                "Tell your doctor about muscle aches that do not go away.",
                "Your care team may check your liver with a simple blood test."],
         keywords=["liver", "arteries", "muscle", "stroke"], tempting=["cholesterol", "LDL", "lipid"]),
    dict(area="pulmonology", title="Using your inhaler well", term="inhaler",
         asks=["Explain to a teenager with asthma how to use a metered-dose inhaler",
               "Write instructions for a patient on using a rescue inhaler", "Describe good inhaler technique for "
                                                                             "a parent"],
         facts=["Shake the inhaler well and take the cap off before each use.",
                "Breathe out fully and away from the mouthpiece.",
                "Seal your lips around the mouthpiece and press down as you start a slow deep breath.",
                "Hold your breath for about ten seconds so the medicine can settle in the lungs.",
                "Wait about one minute before a second dose if you need one.",
                "Rinse your mouth with water after a steroid inhaler."],
         keywords=["mouthpiece", "breath", "lungs", "dose"], tempting=["spacer", "puff"]),
    dict(area="cardiology", title="Lowering blood pressure at home", term="blood pressure",
         asks=["Explain to a patient how daily habits can lower blood pressure",
               "Write advice for a newly diagnosed patient about blood pressure and lifestyle",
               "Describe for a caregiver the habits that help control blood pressure"],
         facts=["High blood pressure strains the heart and the blood vessels over many years.",
                "Walking briskly for thirty minutes on most days can lower your readings.",
                "Eating more fruit and vegetables and fewer processed foods helps.",
                "Cutting back on alcohol and keeping a healthy weight both make a difference.",
                "Take your tablets at the same time every day even when you feel well.",
                "Check your readings at home and bring the log to your next visit."],
         keywords=["walking", "weight", "vegetables", "alcohol"], tempting=["salt", "sodium", "hypertension"]),
    dict(area="endocrinology", title="Checking your glucose at home", term="glucose",
         asks=["Explain to a patient with diabetes how to check glucose with a finger-prick meter",
               "Write step-by-step guidance on home glucose checks for a newly diagnosed patient",
               "Describe home glucose testing for a family member who helps with care"],
         facts=["Wash and dry your hands before you check your glucose.",
                "Put a new test strip into the meter before you prick your finger.",
                "Prick the side of a fingertip because it hurts less than the pad.",
                "Touch the drop of blood to the strip and wait for the number.",
                "Write down the reading with the time and what you last ate.",
                "Call your care team if readings stay above the target they gave you."],
         keywords=["strip", "meter", "fingertip", "reading"], tempting=["sugar", "lancet"]),
    dict(area="neurology", title="Spotting a stroke early", term="stroke",
         asks=["Explain to a family how to recognize the warning signs of a stroke",
               "Write a short public health message about stroke warning signs",
               "Describe for an older adult what to do if someone may be having a stroke"],
         facts=["A stroke happens when blood flow to part of the head is blocked or a vessel bursts.",
                "A drooping face or a crooked smile is a warning sign.",
                "Sudden weakness of one arm or leg is another sign.",
                "Slurred or strange speech can also mean a stroke.",
                "Call emergency services at once and note the time the symptoms began.",
                "Quick treatment in hospital can limit lasting damage."],
         keywords=["face", "speech", "weakness", "emergency"], tempting=["brain", "FAST"]),
    dict(area="infectious disease", title="Taking antibiotics the right way", term="antibiotic",
         asks=["Explain to a patient why antibiotics should be taken exactly as prescribed",
               "Write advice for a parent whose child was given an antibiotic",
               "Describe for a patient how to use an antibiotic course safely"],
         facts=["An antibiotic works only against certain infections and does nothing for a cold or the flu.",
                "Take each dose at the times on the label.",
                "Finish the course unless your doctor tells you to stop.",
                "Never share your tablets or save leftovers for later.",
                "Report a rash or swelling of the lips straight away.",
                "Some tablets work better when taken with food."],
         keywords=["dose", "course", "rash", "label"], tempting=["bacteria", "resistance"]),
    dict(area="hematology", title="Living safely with a blood thinner", term="blood thinner",
         asks=["Explain to a patient how to stay safe while taking a blood thinner",
               "Write a short safety note for someone starting a blood thinner",
               "Describe for a caregiver the precautions that go with a blood thinner"],
         facts=["A blood thinner lowers the chance of a dangerous clot.",
                "Take it at the same time every day and do not double a missed dose.",
                "Tell every dentist and doctor that you take it.",
                "Use a soft toothbrush and an electric razor.",
                "Seek care at once for black stools or a severe headache.",
                "Check with your pharmacist before starting any new medicine or supplement."],
         keywords=["clot", "dentist", "pharmacist", "headache"], tempting=["warfarin", "INR", "bleeding"]),
    dict(area="infection control", title="Clean hands save lives", term="hands",
         asks=["Explain to hospital visitors why hand hygiene matters",
               "Write a poster message about cleaning hands for a clinic waiting room",
               "Describe good hand hygiene for a new healthcare assistant"],
         facts=["Clean hands are the simplest way to stop infections spreading in hospital.",
                "Rub an alcohol gel over every part of both hands until they are dry.",
                "Wash with water when your hands look dirty.",
                "Clean your hands before you touch a patient and after you leave the room.",
                "Do not forget the thumbs and the tips of the fingers.",
                "Keep nails short and remove rings when you can."],
         keywords=["gel", "thumbs", "infections", "nails"], tempting=["germs", "soap"]),
    dict(area="gastroenterology", title="Getting ready for a colonoscopy", term="colonoscopy",
         asks=["Explain to a patient how to prepare for a colonoscopy",
               "Write preparation instructions for a patient booked for a colonoscopy",
               "Describe the day before a colonoscopy for a nervous patient"],
         facts=["A colonoscopy lets the doctor look at the lining of the large intestine with a thin camera.",
                "Eat a low-fiber diet for two days before the test.",
                "The day before you will drink a prescribed cleansing solution and stay near a toilet.",
                "Drink plenty of clear fluids such as broth and apple juice.",
                "Arrange for someone to drive you home because you will get sedation.",
                "Ask your doctor whether to pause iron tablets or blood thinners."],
         keywords=["camera", "fluids", "sedation", "diet"], tempting=["laxative", "bowel"]),
    dict(area="orthopedics", title="Recovering after knee replacement", term="knee",
         asks=["Explain to a patient what recovery looks like after knee replacement",
               "Write a recovery guide for someone going home after a new knee",
               "Describe the first weeks after knee replacement for a family member"],
         facts=["Most people stand and walk with help on the day after knee surgery.",
                "Daily exercises keep the new joint moving and build strength.",
                "Ice and raising the leg help with swelling.",
                "Use a walker or crutches until your therapist says you are steady.",
                "Watch the wound for redness or fluid and report a fever.",
                "Full recovery often takes three to six months."],
         keywords=["exercises", "swelling", "walker", "wound"], tempting=["pain", "physiotherapy"]),
    dict(area="endocrinology", title="Giving an insulin injection", term="insulin",
         asks=["Explain to a patient how to give an insulin injection with a pen",
               "Write simple steps for a caregiver who gives insulin",
               "Describe safe insulin pen use for a newly diagnosed teenager"],
         facts=["Check the insulin name and the dose before every injection.",
                "Attach a new pen tip and prime it with two units.",
                "Inject into the belly or thigh and rotate the spot each time.",
                "Hold the pen in place for ten seconds after pressing the button.",
                "Keep spare pens in the fridge and the one in use at room temperature.",
                "Carry a quick snack in case your level drops too low."],
         keywords=["belly", "thigh", "fridge", "units"], tempting=["needle", "syringe"]),
    dict(area="preventive care", title="Why the yearly flu vaccine matters", term="vaccine",
         asks=["Explain to an older adult why the yearly flu vaccine matters",
               "Write a reminder message about the flu vaccine for clinic patients",
               "Describe the flu vaccine for a pregnant patient"],
         facts=["The vaccine is updated each year to match the strains expected to spread.",
                "It lowers the chance of a serious illness and a hospital stay.",
                "It protects babies and older relatives who are most at risk.",
                "A sore arm or a mild fever for a day is common and passes quickly.",
                "The best time to get it is early autumn.",
                "It is safe during pregnancy and protects the newborn too."],
         keywords=["strains", "pregnancy", "arm", "autumn"], tempting=["virus", "influenza", "shot"]),
    dict(area="sleep medicine", title="Habits for better sleep", term="sleep",
         asks=["Explain to a patient with insomnia which habits improve sleep",
               "Write sleep advice for a shift worker", "Describe good sleep habits for a college student"],
         facts=["Going to sleep and waking at the same times every day sets your body clock.",
                "Keep the bedroom dark and quiet and cool.",
                "Stop coffee and tea after lunch.",
                "Avoid heavy meals and alcohol late in the evening.",
                "If you cannot sleep after twenty minutes get up and read until you feel drowsy.",
                "Daylight and exercise earlier in the day help you sleep at night."],
         keywords=["bedroom", "clock", "daylight", "drowsy"], tempting=["caffeine", "screen", "melatonin"]),
    dict(area="cardiology", title="Heart attack warning signs", term="heart attack",
         asks=["Explain to a patient with heart disease the warning signs of a heart attack",
               "Write a short leaflet on heart attack symptoms for a community center",
               "Describe heart attack warning signs for a spouse of a patient"],
         facts=["A heart attack often starts as pressure or tightness in the middle of the body.",
                "The discomfort can spread to the arm or jaw or back.",
                "Shortness of breath and a cold sweat are common.",
                "Women and people with diabetes may have nausea or tiredness instead.",
                "Call emergency services rather than driving yourself.",
                "Chew an aspirin if the operator tells you to."],
         keywords=["jaw", "sweat", "aspirin", "pressure"], tempting=["chest", "pain"]),
    dict(area="pediatrics", title="Caring for a child with a fever", term="fever",
         asks=["Explain to a parent how to care for a child with a fever",
               "Write guidance for a babysitter about a child with a fever",
               "Describe when a child with a fever needs a doctor"],
         facts=["A fever is the body fighting an infection and is not harmful by itself.",
                "Offer small drinks often so your child does not get dehydrated.",
                "Dress your child in light clothing and keep the room comfortable.",
                "Give a fever medicine for children at the dose on the package if your child is uncomfortable.",
                "See a doctor for a baby under three months or a child who is floppy or hard to wake.",
                "A rash that does not fade when pressed needs urgent care."],
         keywords=["drinks", "clothing", "rash", "package"], tempting=["paracetamol", "acetaminophen", "ibuprofen"]),
    dict(area="pain medicine", title="Using opioid medicine safely", term="opioid",
         asks=["Explain to a patient how to use an opioid pain medicine safely after surgery",
               "Write a safety note for a family member about opioid medicine at home",
               "Describe safe opioid use for an older adult"],
         facts=["An opioid can help for a few days after surgery but carries real risks.",
                "Take the lowest dose for the shortest time.",
                "Never mix it with alcohol or sleeping tablets.",
                "Do not drive while you are taking it.",
                "Store it locked away from children and visitors.",
                "Take unused tablets back to a pharmacy for safe disposal."],
         keywords=["alcohol", "pharmacy", "children", "dose"], tempting=["addiction", "constipation"]),
    dict(area="preventive care", title="Quitting smoking for good", term="quit",
         asks=["Explain to a patient how to prepare to quit smoking",
               "Write encouragement for a patient who wants to quit smoking",
               "Describe a plan to quit smoking for a patient with lung disease"],
         facts=["Choose a quit date within the next two weeks and tell your friends.",
                "Patches or gum or lozenges can double your chance of success.",
                "Your doctor can prescribe tablets that ease cravings.",
                "Notice your triggers and plan what you will do instead.",
                "Cravings usually pass within a few minutes.",
                "Many people need several attempts before they quit for good."],
         keywords=["patches", "cravings", "triggers", "date"], tempting=["nicotine", "cigarettes"]),
    dict(area="geriatrics", title="Preventing falls at home", term="falls",
         asks=["Explain to an older adult how to prevent falls at home",
               "Write a home safety checklist to prevent falls for a caregiver",
               "Describe ways to prevent falls for a patient who uses a cane"],
         facts=["Most falls at home happen in the bathroom or on the stairs.",
                "Put grab bars next to the toilet and in the shower.",
                "Keep walkways clear of cords and clutter.",
                "Use night lights between the bedroom and the bathroom.",
                "Wear shoes with firm soles that fit well.",
                "Ask your doctor to review medicines that make you dizzy."],
         keywords=["grab bars", "stairs", "shoes", "lights"], tempting=["rug", "slip"]),
    dict(area="radiology", title="What to expect during an MRI", term="scan",
         asks=["Explain to a patient what happens during an MRI scan",
               "Write a short guide for a patient booked for an MRI",
               "Describe an MRI scan for a patient who feels claustrophobic"],
         facts=["An MRI scan makes detailed pictures without using x-rays.",
                "You will lie still on a table that slides into a tunnel.",
                "The machine makes loud knocking sounds so you will get earplugs.",
                "Remove jewelry and tell staff about any implant or pacemaker.",
                "A scan usually takes twenty to forty minutes.",
                "You can talk to the staff through a speaker at any time."],
         keywords=["tunnel", "earplugs", "pacemaker", "pictures"], tempting=["magnet", "noise", "radiation"]),
    dict(area="gastroenterology", title="Rehydrating after diarrhea", term="fluids",
         asks=["Explain to a parent how to rehydrate a child with diarrhea",
               "Write advice on oral rehydration for a traveler",
               "Describe how an older adult can avoid dehydration during a stomach bug"],
         facts=["Diarrhea drains fluids and minerals from the body quickly.",
                "An oral rehydration solution from the pharmacy replaces what is lost.",
                "Take small sips often even if you feel sick.",
                "Keep eating normal food once you feel able.",
                "Dark urine and a dry mouth are signs of dehydration.",
                "Seek care for blood in the stool or if no urine is passed for eight hours."],
         keywords=["pharmacy", "sips", "urine", "minerals"], tempting=["water", "sugar"]),
    dict(area="obstetrics", title="Folic acid before and during pregnancy", term="folic acid",
         asks=["Explain to a woman planning a pregnancy why folic acid matters",
               "Write a short note on folic acid for a prenatal clinic",
               "Describe folic acid supplements for a newly pregnant patient"],
         facts=["Folic acid is a B vitamin that helps the baby develop in the first weeks.",
                "Start a daily tablet at least one month before trying to conceive.",
                "Keep taking it through the first three months of pregnancy.",
                "Leafy greens and fortified cereals add more.",
                "Some women need a higher dose and their doctor will advise them.",
                "It is cheap and widely available without a prescription."],
         keywords=["vitamin", "cereals", "conceive", "baby"], tempting=["spina bifida", "neural"]),
    dict(area="psychiatry", title="Starting treatment for depression", term="medicine",
         asks=["Explain to a patient what to expect when starting a medicine for depression",
               "Write reassurance for a patient beginning treatment for depression",
               "Describe the first weeks of depression treatment for a family member"],
         facts=["A daily medicine can ease low mood but it takes two to six weeks to work.",
                "Some people feel mild nausea or headaches in the first days.",
                "Do not stop suddenly because that can cause unpleasant symptoms.",
                "Talking therapy works well alongside tablets.",
                "Tell someone at once if you have thoughts of harming yourself.",
                "Your doctor will review how you are doing within a few weeks."],
         keywords=["mood", "therapy", "nausea", "weeks"], tempting=["serotonin", "antidepressant", "SSRI"]),
    dict(area="dermatology", title="Looking after a wound with stitches", term="wound",
         asks=["Explain to a patient how to care for a wound that has been stitched",
               "Write aftercare instructions for a child's stitched cut",
               "Describe wound care at home for a patient leaving the emergency room"],
         facts=["Keep the wound dry for the first two days.",
                "After that you can shower but pat the area dry gently.",
                "Change the dressing if it gets wet or dirty.",
                "Redness that spreads or pus means you should see a doctor.",
                "Avoid swimming until the wound has healed.",
                "Most sutures come out after five to fourteen days."],
         keywords=["dressing", "shower", "sutures", "pus"], tempting=["infection", "stitches"]),
    dict(area="nephrology", title="Protecting your kidneys", term="kidneys",
         asks=["Explain to a patient with early kidney disease how to protect the kidneys",
               "Write advice on kidney health for a patient with diabetes",
               "Describe kidney-friendly habits for an older adult"],
         facts=["Healthy kidneys filter waste from the blood every minute of the day.",
                "Keeping blood pressure and diabetes under control protects them most.",
                "Avoid regular use of anti-inflammatory painkillers without advice.",
                "Drink enough fluids to keep your urine pale.",
                "Your doctor will check a blood test and a urine test each year.",
                "Bring all your medicines to visits so doses can be adjusted."],
         keywords=["waste", "urine", "painkillers", "diabetes"], tempting=["creatinine", "dialysis"]),
]

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
        return f"Start with a title in double angular brackets, such as <<{topic['title'].lower()}>>."
    if instruction_id == "detectable_format:number_highlighted_sections":
        n = kw["num_highlights"]
        return (f"Highlight at least {n} {'part' if n == 1 else 'parts'} of your answer with markdown, "
                f"for example *an important point*.")
    if instruction_id == "detectable_format:multiple_sections":
        s = kw["section_spliter"]
        return (f"Organize the answer into {kw['num_sections']} sections and start each one with "
                f"{s} X on its own line, such as {s} 1 and {s} 2.")
    if instruction_id == "detectable_content:postscript":
        return "At the end of your response add a postscript starting with P.S."
    if instruction_id == "detectable_content:number_placeholders":
        n = kw["num_placeholders"]
        return (f"Include at least {n} {'placeholder' if n == 1 else 'placeholders'} in square brackets, "
                f"such as [patient name].")
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


def pick_ids(rng: random.Random, first: str) -> list[str]:
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
            row = make_row(rng, topics[-1], pick_ids(rng, firsts[-1]))
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
