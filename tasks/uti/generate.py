"""Generator for the ``uti`` task: does a short clinical note describe a patient with a urinary tract infection?

Every note is rendered from structured fields kept in the row, and the label follows from those fields by these
rules (the documented ground truth; see ``uti_label``), applied in order:

  1. Urinary symptoms. At least one must be present now (``present``): dysuria, frequency, urgency, suprapubic
     pain, gross hematuria, flank pain, suprapubic or costovertebral-angle (CVA) tenderness on exam, or fever
     (``temperature_c`` >= 38.0 °C, i.e. >= 100.4 °F) with no other documented source (``fever_source`` empty;
     a lobar consolidation on the chest X-ray, a positive influenza PCR or a leg cellulitis on exam explains the
     fever). Confusion, falls, fatigue, nausea, chills without fever, cough, poor appetite, cloudy, dark or
     foul-smelling urine do not count. Bacteriuria or pyuria without a counting symptom is asymptomatic
     bacteriuria → "no" (IDSA 2019 asymptomatic bacteriuria guideline): also in pregnancy, before surgery, with a
     catheter, with fever from pneumonia, influenza or cellulitis, and whether or not it is treated.
  2. Another diagnosis. Dysuria and frequency that the note proves to come from vaginitis (wet mount: clue
     cells, yeast or trichomonads +) or a sexually transmitted urethritis/cervicitis (NAAT: chlamydia or
     gonorrhea +) → "no" (``alternative_diagnosis``).
  3. The urine culture decides when there is a final one to read (IDSA 2009 CAUTI and 2019 ASB guidelines): a
     uropathogen (``UROPATHOGENS``) at >= 10^5 CFU/mL from a voided (clean-catch, midstream) specimen, or at
     >= 10^3 CFU/mL from a catheter specimen (indwelling catheter, or in-and-out catheterization), → "yes"; no
     growth, skin or genital flora only (lactobacilli, diphtheroids, reported below 10^3 CFU/mL and never a
     criterion), or 10^2 CFU/mL from an indwelling catheter → "no", whatever the urinalysis (sterile pyuria is
     not a UTI). Mixed flora (>= 3 species, with many squamous cells) is a contaminated specimen and is not
     read; the notes that have one also report the repeat catheterized specimen. The latest final culture that
     is not mixed flora is the one read (``cultures``; older cultures in a "prior urine culture" line are history).
  4. No culture to read (pending or not sent): the urinalysis decides: "yes" if leukocyte esterase >= 1+,
     nitrite positive or >= 10 WBC/hpf, else "no" (a symptomatic patient without pyuria or nitrite has no
     laboratory evidence of infection). Trace leukocyte esterase and bacteria on microscopy are not criteria.
     Patients with a catheter always have a culture (pyuria does not diagnose CAUTI).

Pyelonephritis, CAUTI, urosepsis, an obstructing stone with infection, and UTI in men, diabetics, pregnant
women, inpatients or nursing-home residents count as UTI. The generator never writes a value on a rule's edge
or a case clinicians would dispute (``_check``): no 38.0 °C, no 10 WBC/hpf, no uropathogen below the threshold
in a symptomatic patient except 10^2 CFU/mL from an indwelling catheter (so no 10^3-10^4 CFU/mL voided counts,
which some criteria accept in symptomatic women), no alternative diagnosis together with a significant culture,
fever, flank pain or a positive nitrite, nitrite negative with every sterile culture, urosepsis always with a
localizing symptom.

So that word counts do not give the label away, what decides the label is written as a sign, a value or a
position, and every word is shared by both labels at near-equal rates:

- Symptoms are charted as a review of systems over the same vocabulary in every note (2-3 counting symptoms and
  at least 2 non-counting findings on each side, present or absent; 4-6 findings present and 5-6 absent whatever
  the label, version 2.2, so that counting the reported findings does not read the label): a signed list in
  shuffled order ("(+) dysuria, (-) urgency", "dysuria +", "-flank pain"), or a "Reports ... / Denies ..." pair
  of lists in which each list opens and closes with a non-counting finding, so no counting symptom sits next to
  "Reports" or "Denies". CVA and suprapubic tenderness are signed the same way in the exam line.
- Laboratory values are numbers and signs: LE -/neg/trace/±/1+/2+/3+, nitrite +/-/pos/neg, WBC per hpf as a
  number or the lab's range (<10, 6-9, 11-20, >50; a positive dipstick often with a count below 10), colony
  counts in several notations (10^5, >100,000, 100K, 1 x 10^4, 5,000, <10^3, ...). High counts come with both
  labels (asymptomatic bacteriuria), low counts too (catheter specimens >= 10^3 are UTIs); every culture result
  is written "<specimen>, final: <result>", like the prior-culture and blood-culture lines of both labels.
  (The baseline's tokenizer drops "+", "-", "^" and one-character tokens, so signs and exponents are invisible
  to it; the words around them are balanced as well.)
- Every confounder has a twin with the other label in the same setting (clinic, urgent care, ED, inpatient,
  nursing facility, prenatal, pre-op): fever with and without another source, pneumonia/influenza/cellulitis
  with and without urinary symptoms, catheters with significant and sterile cultures, pyuria with and without
  growth, stones with and without infection, vaginal discharge with a positive and a negative wet mount, NAAT
  tests positive (explained) and negative (UTI; the word "NAAT" still comes about 2:1 with "no", since every STI
  case has one and other cases only sometimes), contaminated cultures whose repeat grows or does not, cultures
  pending with a positive and a negative urinalysis, pregnancy and pre-op screening with and without symptoms.
  Plans are drawn independently of the label (treating is not the label); notes carry no diagnostic impression.

Scenarios (``category``): positive — cystitis, pyelonephritis, cauti, complicated_uti, urosepsis,
uti_other_infection, infected_stone, uti_after_repeat; negative — asymptomatic_bacteriuria, fever_other_source,
vaginitis, sti_urethritis, nephrolithiasis, sterile_symptoms, contaminated_repeat_negative. Each row takes its
label (each split exactly balanced), then a setting from one shared distribution (``SETTINGS``), then a scenario
of that label possible in that setting (``SCENARIOS_BY_SETTING``); ``P_NO_CULTURE`` and ``P_PYURIA`` set how
often a case has no culture to read and a positive urinalysis, tuned so that laboratory words come with both
labels at similar rates. ``difficulty``: hard for asymptomatic bacteriuria, fever from another source,
vaginitis, STI, contaminated specimens and any note whose urinalysis rather than culture decides; easy for
cystitis, pyelonephritis and urosepsis with a culture; medium otherwise. ``plan_included``: whether the note has
a plan line (about 65%).

Splits: train 200, validation 50, test 400 rows, each half "yes" (test: the 100 rows of version 2.0, then 300
drawn after them). Run ``python generate.py`` to rewrite
data/{train,validation,test}.jsonl (seed 2718).
"""

from __future__ import annotations

import random
from pathlib import Path

from medbench.taskdata import grown_splits, write_jsonl_splits

SEED = 2718
# test 400 (2.1; 100 in 2.0): sft_vs_dpo reads "DPO adds nothing over SFT" as equivalence within 0.05, and at 100
# items a paired difference's 95% CI half-width is about 0.06 at 10% discordance (0.03 at 400). The 2.0 test
# items are drawn and shuffled first, the 300 new ones after them, so train, validation and those 100 stay as
# they were.
SIZES = {"train": 200, "validation": 50, "test": 400}
FIRST_TEST_DRAW = 100
LABELS = ["no", "yes"]

# ------------------------------------------------------------------------------------------ the rule vocabulary
COUNTING = ["dysuria", "frequency", "urgency", "suprapubic_pain", "hematuria", "flank_pain"]
EXAM_SIGNS = ["suprapubic_tenderness", "cva_tenderness"]  # count like symptoms; written in the exam line
NONCOUNTING = ["cloudy_urine", "foul_urine", "dark_urine", "fatigue", "confusion", "falls", "nausea", "chills",
               "cough", "poor_appetite", "vaginal_discharge", "urethral_discharge", "headache", "rash"]
FEVER_C = 38.0
THRESHOLD = {"clean-catch": 100_000, "catheter": 1_000}
MIXED = "mixed flora"
UROPATHOGENS = ["E. coli", "Escherichia coli", "Klebsiella pneumoniae", "Proteus mirabilis", "Enterococcus faecalis",
                "Pseudomonas aeruginosa", "Staphylococcus saprophyticus"]
COMMENSALS = ["skin flora", "Lactobacillus species", "diphtheroids"]


def counted_symptoms(row: dict) -> list[str]:
    """The findings that count for rule 1 (fever only without another documented source)."""
    counted = [s for s in row["present"] if s in COUNTING or s in EXAM_SIGNS]
    if row["temperature_c"] >= FEVER_C and not row["fever_source"]:
        counted.append("fever")
    return counted


def ua_positive(ua: dict | None) -> bool:
    if not ua:
        return False
    return ua["le"] in ("1+", "2+", "3+") or ua["nitrite"] == "positive" or ua["wbc"] >= 10


def culture_read(row: dict) -> dict | None:
    """The culture rule 3 reads: the latest final culture that is not mixed flora (None: the urinalysis decides)."""
    final = [c for c in row["cultures"] if c["status"] == "final" and c["organism"] != MIXED]
    return final[-1] if final else None


def culture_significant(culture: dict) -> bool:
    return culture["organism"] in UROPATHOGENS and culture["cfu"] >= THRESHOLD[culture["specimen"]]


def uti_label(row: dict) -> str:
    """The task's ground truth from the structured fields (see the module docstring)."""
    if not counted_symptoms(row):
        return "no"
    if row["alternative_diagnosis"]:
        return "no"
    culture = culture_read(row)
    if culture is not None:
        return "yes" if culture_significant(culture) else "no"
    return "yes" if ua_positive(row["urinalysis"]) else "no"


# ------------------------------------------------------------------------------------------------- vocabulary
TEXT = {
    "dysuria": ["dysuria", "burning with urination", "pain on urination", "painful urination"],
    "frequency": ["frequency", "urinary frequency", "voiding more often"],
    "urgency": ["urgency", "urinary urgency", "urge to void"],
    "suprapubic_pain": ["suprapubic pain", "lower abdominal pain", "suprapubic discomfort"],
    "hematuria": ["gross hematuria", "blood in the urine", "red urine"],
    "flank_pain": ["flank pain", "back pain below the ribs", "{side} flank pain"],
    "cloudy_urine": ["cloudy urine", "turbid urine"],
    "foul_urine": ["foul-smelling urine", "strong-smelling urine"],
    "dark_urine": ["dark urine", "concentrated-looking urine"],
    "fatigue": ["fatigue", "malaise"],
    "confusion": ["confusion", "new confusion"],
    "falls": ["falls", "a fall"],
    "nausea": ["nausea", "nausea and vomiting"],
    "chills": ["chills", "rigors"],
    "cough": ["cough", "productive cough"],
    "poor_appetite": ["poor appetite", "poor oral intake"],
    "vaginal_discharge": ["vaginal discharge", "vaginal itching"],
    "urethral_discharge": ["urethral discharge", "penile discharge"],
    "headache": ["headache"],
    "rash": ["rash"],
}
SIGN_STYLES = [("(+) {x}", "(-) {x}"), ("{x} (+)", "{x} (-)"), ("+{x}", "-{x}"), ("{x} +", "{x} -")]
ROS_LEADS = ["ROS:", "GU ROS:", "Review of systems:", "Symptoms:", "ROS -"]
PRESENT_LEADS = ["Reports", "Endorses", "Complains of", "Notes", "Positive for"]
ABSENT_LEADS = ["Denies", "No", "Negative for", "Without", "Not reporting"]
DURATIONS = ["for 2 days", "since yesterday", "for 3 days", "x2 days", "for about 4 days", "since this morning",
             "for 48 hours", "over the last day"]
ORGANISMS = ["E. coli", "Escherichia coli", "Klebsiella pneumoniae", "Proteus mirabilis", "Enterococcus faecalis"]
CATH_ORGANISMS = ["Pseudomonas aeruginosa", "Klebsiella pneumoniae", "Enterococcus faecalis", "E. coli",
                  "Proteus mirabilis"]
# colony counts (CFU/mL) and the ways a report writes them
COUNT_TEXT = {
    100_000: ["10^5", ">10^5", ">=10^5", ">100,000", "100,000", "1 x 10^5", ">100K", "100K"],
    50_000: ["5 x 10^4", "50,000", "50K"],
    10_000: ["10^4", "10,000", "1 x 10^4", "10K"],
    5_000: ["5 x 10^3", "5,000"],
    1_000: ["10^3", "1,000", "1 x 10^3"],
    100: ["10^2", "100", "<10^3", "<1,000"],
}
SPECIMEN_TEXT = {"clean-catch": ["clean-catch", "midstream", "clean-catch midstream", "voided"],
                 "catheter": ["catheter specimen", "catheter-collected", "from the catheter port"],  # indwelling
                 "straight catheter": ["straight-cath", "in-and-out catheter", "catheterized specimen"]}
OTHER_SOURCE = {
    "pneumonia": ("Chest X-ray: {side} lower lobe consolidation.", "Chest X-ray: no infiltrate."),
    "influenza": ("Influenza A PCR +.", "Influenza A/B PCR -."),
    "cellulitis": ("Leg: spreading erythema and warmth of the shin (cellulitis).",
                   "Legs: no erythema or warmth."),
}
WET_MOUNT = {"bacterial vaginosis": "clue cells", "vulvovaginal candidiasis": "yeast",
             "trichomoniasis": "trichomonads"}
NAAT = {"chlamydia": "chlamydia", "gonorrhea": "gonorrhea"}
HEADERS = {"clinic": ["Clinic visit.", "Primary care note.", "Office visit -", ""],
           "urgent care": ["Urgent care note.", "Walk-in visit:", ""],
           "ED": ["ED note.", "Emergency department:", "ED provider note -", ""],
           "inpatient": ["Hospital progress note, day {d}.", "Inpatient note (hospital day {d}):"],
           "nursing facility": ["Nursing facility visit.", "Long-term care progress note:", "SNF note -"],
           "prenatal": ["Prenatal visit.", "OB visit:"],
           "pre-op": ["Pre-operative evaluation.", "Pre-op clinic:"]}
CONTEXT = {"inpatient": [", admitted {days} days ago for {why},", ", on hospital day {d} after {why},"],
           "nursing facility": [", a long-term resident with {why},", ", a nursing home resident with {why},"]}
INPATIENT_WHY = ["hip fracture repair", "a COPD exacerbation", "a stroke", "a heart failure exacerbation",
                 "a fall with rib fractures"]
NH_WHY = ["advanced dementia", "Parkinson disease", "prior stroke", "heart failure"]
COMORBID = [" with type 2 diabetes", " with CKD stage 3", " with hypertension", ""]
PROCEDURES = ["total knee arthroplasty", "total hip arthroplasty", "spinal fusion", "hernia repair"]
VISIT = {"clinic": ["seen for a same-day visit", "here for a scheduled visit", "seen for a sick visit",
                    "in clinic for follow-up"],
         "urgent care": ["seen as a walk-in", "presents to urgent care", "evaluated in urgent care"],
         "ED": ["presents to the ED", "brought to the ED", "evaluated in the ED"],
         "inpatient": ["seen on rounds", "reviewed on rounds", "seen for a progress review"],
         "nursing facility": ["seen on a facility visit", "seen at the request of nursing staff",
                              "reviewed at the facility"],
         "prenatal": ["seen for a routine prenatal visit", "here for a prenatal check"],
         "pre-op": ["seen for pre-operative assessment", "here for pre-op clearance"]}
ONSET = ["Onset 2 days ago.", "Began yesterday.", "Present for 3 days.", "Onset this morning.",
         "Present for about 4 days.", "Began 48 hours ago."]
PRIOR = ["Prior urine culture ({m} months ago){final} {res}.", "Urine culture (last year){final} {res}.",
         "Last urine culture ({m} months ago){final} {res}."]
PRIOR_RESULTS = ["no growth", "no growth", "no growth at 48 hours", ">10^5 CFU/mL E. coli",
                 "100,000 CFU/mL Klebsiella pneumoniae", "mixed flora", "10^4 CFU/mL Enterococcus faecalis",
                 "Proteus mirabilis, 10^5 CFU/mL"]
PLANS = {"start": ["Start antibiotics.", "Empiric antibiotics started.", "Antibiotics prescribed.",
                   "Oral antibiotics, adjust to culture."],
         "defer": ["Antibiotics deferred until the culture is back.", "Hold antibiotics; reassess with culture."],
         "none": ["No antibiotics for now.", "No antibiotics."]}
FOLLOW_UP = ["Return if worse.", "Follow up in 1 week.", "Fluids encouraged.", "Will call with results.",
             "Recheck at the next visit.", "Reviewed warning signs.", ""]


# --------------------------------------------------------------------------------------------- case builders
def _ua(le: str, nitrite: str, wbc: int, rbc: int, squamous: int, bacteria: str) -> dict:
    return {"le": le, "nitrite": nitrite, "wbc": wbc, "rbc": rbc, "squamous": squamous, "bacteria": bacteria}


def urinalysis(rng: random.Random, positive: bool, squamous_many: bool = False, rbc_high: bool = False,
               nitrite: bool = True) -> dict:
    """A urinalysis positive (LE >= 1+, nitrite + or >= 10 WBC/hpf) or negative by rule 4 (never WBC 10 exactly).
    ``nitrite=False``: pyuria without nitrite (sterile pyuria, urethritis, vaginitis: no nitrate-reducing bacteria)."""
    bacteria = rng.choice(["none", "few", "moderate", "many"])  # not a criterion: drawn independently
    squamous = rng.choice([12, 15, 25, 30]) if squamous_many else rng.choice([0, 1, 2, 3, 4])
    rbc = rng.choice([25, 40, 60]) if rbc_high else rng.choice([0, 1, 2, 3, 5, 8, 12])
    if positive and not nitrite:
        return _ua(rng.choice(["1+", "2+"]), "negative", rng.choice([4, 6, 8, 12, 15, 20, 30, 45]), rbc, squamous,
                   bacteria)
    if positive:
        kind = rng.randrange(4)
        if kind == 0:
            return _ua(rng.choice(["2+", "3+"]), "positive", rng.choice([25, 40, 50, 75, 100]), rbc, squamous, bacteria)
        if kind == 1:
            return _ua(rng.choice(["1+", "2+"]), "negative", rng.choice([12, 15, 20, 30, 45]), rbc, squamous, bacteria)
        if kind == 2:  # the dipstick is positive, the microscopy count below 10
            return _ua(rng.choice(["1+", "2+", "3+"]), rng.choice(["positive", "negative"]),
                       rng.choice([3, 4, 5, 6, 8]), rbc, squamous, bacteria)
        return _ua(rng.choice(["negative", "trace"]), "positive", rng.choice([2, 4, 6, 8, 12, 18]), rbc, squamous,
                   bacteria)
    return _ua(rng.choice(["negative", "negative", "trace"]), "negative", rng.choice([0, 1, 2, 3, 4, 5, 6, 8]), rbc,
               squamous, bacteria)


def culture(specimen: str, cfu: int, organism: str | None, status: str = "final", commensal: str | None = None) -> dict:
    """``cfu`` counts ``organism`` (a uropathogen, None for no growth, or mixed flora); ``commensal`` is skin or
    genital flora reported at < 10^3 CFU/mL, never a criterion."""
    return {"specimen": specimen, "cfu": cfu, "organism": organism, "status": status, "commensal": commensal}


def _commensal(rng) -> str | None:
    return rng.choice(COMMENSALS) if rng.random() < 0.4 else None


def significant_culture(rng, specimen: str, organisms=ORGANISMS) -> dict:
    cfu = 100_000 if specimen == "clean-catch" else rng.choice([1_000, 5_000, 10_000, 50_000, 100_000])
    return culture(specimen, cfu, rng.choice(organisms), commensal=_commensal(rng))


def sterile_culture(rng, specimen: str, organisms=CATH_ORGANISMS, low_count: bool = True) -> dict:
    """No significant uropathogen: no growth, skin/genital flora only, or (indwelling catheters) 10^2 CFU/mL."""
    if specimen == "catheter" and low_count and rng.random() < 0.4:
        return culture(specimen, 100, rng.choice(organisms), commensal=_commensal(rng))
    return culture(specimen, 0, None, commensal=rng.choice(COMMENSALS) if rng.random() < 0.65 else None)


def bacteriuria_culture(rng, specimen: str, organisms=ORGANISMS) -> dict:
    """Bacteriuria as IDSA defines it (>= 10^5 CFU/mL voided; any count from a catheter): no symptom, no UTI."""
    cfu = 100_000 if specimen == "clean-catch" else rng.choice([100, 1_000, 5_000, 10_000, 50_000, 100_000])
    return culture(specimen, cfu, rng.choice(organisms), commensal=_commensal(rng))


def base_row(rng: random.Random, setting: str) -> dict:
    row = {"hypotension": False, "setting": setting, "age": rng.randint(22, 80),
           "sex": rng.choice(["female", "female", "male"]),
           "pregnant": False, "catheter": None, "procedure": "", "present": [], "absent": [],
           "temperature_c": rng.choice([36.4, 36.6, 36.8, 37.0, 37.2, 37.5, 37.7]), "fever_source": None,
           "alternative_diagnosis": None, "stone": None, "other_tests": [], "urinalysis": None, "cultures": []}
    if setting == "prenatal":
        row.update(sex="female", age=rng.randint(19, 41), pregnant=True)
    elif setting == "pre-op":
        row.update(age=rng.randint(55, 82), procedure=rng.choice(PROCEDURES))
    elif setting == "nursing facility":
        row.update(age=rng.randint(72, 96))
    elif setting == "inpatient":
        row.update(age=rng.randint(50, 92))
    return row


def _febrile(rng) -> float:
    return rng.choice([38.3, 38.5, 38.7, 38.9, 39.1, 39.4])


# How many findings the review of systems lists as present, and as absent, drawn whatever the label (version 2.2):
# in 2.1 the present list was the counting symptoms plus two non-counting ones, so its length alone (3 or more
# reported findings -> "yes") scored F1 0.75 on test, above the ceiling, and the absent list was longer with "no".
# Now non-counting findings fill each list to its drawn length, so a list's length says nothing about the label
# (exactly so up to 2 counting symptoms present with 2 non-counting ones; a few 3-symptom notes list one more).
PRESENT_FINDINGS = (4, 6)
ABSENT_FINDINGS = (5, 6)


def _symptoms(rng, row: dict, counting_present: list[str], nonspecific_present: list[str]):
    """Fill ``present``/``absent``: 2-3 counting symptoms mentioned (present or absent) in every note, at least 2
    non-counting findings on each side, so each list can open and close with one, and each list as long as
    ``PRESENT_FINDINGS`` / ``ABSENT_FINDINGS`` draw it, whatever the label."""
    n_counting = max(len(counting_present), rng.randint(2, 3))
    others = [s for s in COUNTING if s not in counting_present]
    counting_absent = rng.sample(others, n_counting - len(counting_present))
    present_non = list(nonspecific_present)
    present_len = rng.randint(*PRESENT_FINDINGS)
    while len(present_non) < max(2, present_len - len(counting_present)):
        present_non.append(rng.choice([s for s in PADDING if s not in present_non]))
    discharges = ("vaginal_discharge", "urethral_discharge")
    pool = [s for s in NONCOUNTING if s not in present_non and s not in discharges]
    n_absent = max(2, rng.randint(*ABSENT_FINDINGS) - len(counting_absent))
    discharge = "vaginal_discharge" if row["sex"] == "female" else "urethral_discharge"
    if discharge not in present_non and rng.random() < 0.3:
        absent_non = [discharge] + rng.sample(pool, n_absent - 1)
    else:
        absent_non = rng.sample(pool, n_absent)
    row["present"] = counting_present + present_non
    row["absent"] = counting_absent + absent_non


PADDING = ["fatigue", "headache", "poor_appetite", "nausea", "dark_urine", "cloudy_urine", "foul_urine"]


def _nonspecific(rng, row: dict, k: tuple[int, int] = (1, 2)) -> list[str]:
    pool = ["cloudy_urine", "foul_urine", "dark_urine", "fatigue", "nausea", "poor_appetite", "headache"]
    if row["age"] >= 70:
        pool += ["confusion", "falls", "confusion"]
    return rng.sample(pool, rng.randint(*k))


# how often each kind of case has a culture to read, and a positive urinalysis (tuned so that every laboratory
# word and value comes with both labels at near-equal rates)
P_NO_CULTURE = {"yes": 0.6, "asymptomatic": 0.25, "sterile": 0.65}
P_PYURIA = {"yes": 0.6, "asymptomatic": 0.9, "sterile": 0.9}


def _no_culture(rng, row: dict, kind: str, ua_positive_: bool, rbc_high: bool = False) -> bool:
    """Culture pending or not sent (never with a catheter): the urinalysis decides."""
    if row["catheter"] or rng.random() >= P_NO_CULTURE[kind]:
        return False
    row["urinalysis"] = urinalysis(rng, ua_positive_, rbc_high=rbc_high)
    sent = row["pregnant"] or rng.random() < 0.6  # in pregnancy a culture is always sent
    row["cultures"] = [culture("clean-catch", 0, None, "pending")] if sent else []
    return True


def _lab_yes(rng, row: dict, organisms=ORGANISMS, pending_ok: bool = True, rbc_high: bool = False) -> None:
    """Laboratory evidence for a UTI: a significant culture, or a positive urinalysis with no culture to read."""
    if pending_ok and _no_culture(rng, row, "yes", True, rbc_high):
        return
    specimen = "catheter" if row["catheter"] else "clean-catch"
    row["urinalysis"] = urinalysis(rng, rng.random() < P_PYURIA["yes"], rbc_high=rbc_high) \
        if rng.random() < 0.9 else None
    row["cultures"] = [significant_culture(rng, specimen, organisms)]


def _lab_asymptomatic(rng, row: dict, organisms=ORGANISMS) -> None:
    """Bacteriuria and/or pyuria: the same laboratory pools as a UTI."""
    if _no_culture(rng, row, "asymptomatic", rng.random() < P_PYURIA["asymptomatic"]):
        return
    specimen = "catheter" if row["catheter"] else "clean-catch"
    row["urinalysis"] = urinalysis(rng, rng.random() < P_PYURIA["asymptomatic"]) if rng.random() < 0.9 else None
    row["cultures"] = [bacteriuria_culture(rng, specimen, organisms)]


def _lab_sterile(rng, row: dict, pyuria: float | None = None, rbc_high: bool = False) -> None:
    """No laboratory evidence: a culture below the threshold (any urinalysis) or a negative urinalysis alone."""
    if _no_culture(rng, row, "sterile", False, rbc_high):
        return
    specimen = "catheter" if row["catheter"] else "clean-catch"
    pyuria = P_PYURIA["sterile"] if pyuria is None else pyuria
    row["urinalysis"] = urinalysis(rng, rng.random() < pyuria, rbc_high=rbc_high, nitrite=False) \
        if rng.random() < 0.9 else None
    row["cultures"] = [sterile_culture(rng, specimen)]


def _other_tests(rng, row: dict, positive: str | None = None, k: int = 1, also: tuple = ()) -> None:
    """Tests for other diagnoses: the one that explains (``positive``), those named in ``also`` and up to ``k``
    more, negative: the same tests come back positive in the negatives they explain and negative in UTIs."""
    names = ["cellulitis"]
    if row["temperature_c"] >= FEVER_C or "cough" in row["present"] or row["setting"] in ("ED", "inpatient",
                                                                                          "nursing facility"):
        names += ["pneumonia", "influenza"]
    outpatient = row["setting"] in ("clinic", "urgent care", "ED", "prenatal")
    if row["sex"] == "female" and row["age"] < 55 and outpatient:
        names.append("wet mount")
    if row["age"] < 50 and outpatient:
        names.append("naat")
    if row["setting"] in ("ED", "urgent care", "inpatient"):
        names.append("ct")
    names += [n for n in (positive,) if n and n not in names]
    chosen = [positive] if positive else []
    chosen += [n for n in also if n in names and n not in chosen]
    negatives = [n for n in names if n not in chosen]
    chosen += rng.sample(negatives, min(len(negatives), rng.randint(0, k)))
    row["other_tests"] = [{"test": n, "positive": n == positive} for n in chosen]


def _lower(rng, k=(1, 3)) -> list[str]:
    return rng.sample(["dysuria", "frequency", "urgency", "suprapubic_pain", "hematuria"], rng.randint(*k))


def _catheter(rng) -> str:
    return rng.choice(["indwelling urethral catheter", "suprapubic catheter", "indwelling urethral catheter"])


# ---------------------------------------------------------------------------------------------- the scenarios
def scenario_cystitis(rng, row):
    if row["setting"] != "prenatal":
        row["sex"] = "female"
    # vaginal discharge with a negative wet mount (only where one is done): nothing else explains the symptoms
    wet_mount = row["age"] < 55 and row["setting"] in ("clinic", "urgent care", "ED", "prenatal")
    discharge = wet_mount and rng.random() < 0.5
    _symptoms(rng, row, _lower(rng), (["vaginal_discharge"] if discharge else []) + _nonspecific(rng, row, (0, 2)))
    if rng.random() < 0.35:
        row["present"].append("suprapubic_tenderness")
    _lab_yes(rng, row, ORGANISMS + (["Staphylococcus saprophyticus"] if row["age"] < 35 else []))
    wet = discharge or (wet_mount and rng.random() < 0.4)
    _other_tests(rng, row, k=1, also=(("wet mount",) if wet else ()) + (("naat",) if rng.random() < 0.4 else ()))


def scenario_complicated(rng, row):
    if row["setting"] not in ("prenatal",):
        row.update(sex=rng.choice(["male", "female"]), age=max(row["age"], rng.randint(50, 90)))
    if row["setting"] in ("inpatient", "nursing facility") and rng.random() < 0.3:
        row["catheter"] = _catheter(rng)
    _symptoms(rng, row, _lower(rng, (1, 2)), _nonspecific(rng, row, (1, 2)))
    _lab_yes(rng, row, CATH_ORGANISMS if row["catheter"] else ORGANISMS)
    _other_tests(rng, row, k=1)


def scenario_pyelonephritis(rng, row):
    row["temperature_c"] = _febrile(rng) if rng.random() < 0.6 else row["temperature_c"]
    counting = ["flank_pain"] + rng.sample(["dysuria", "frequency", "urgency"], rng.randint(0, 2))
    _symptoms(rng, row, counting, rng.sample(["nausea", "chills", "fatigue", "poor_appetite"], rng.randint(1, 2)))
    if rng.random() < 0.7:
        row["present"].append("cva_tenderness")
    _lab_yes(rng, row)
    _other_tests(rng, row, k=1, also=("pneumonia",) if row["temperature_c"] >= FEVER_C and rng.random() < 0.3 else ())


def scenario_urosepsis(rng, row):
    row.update(age=rng.randint(55, 92), sex=rng.choice(["female", "male"]), temperature_c=_febrile(rng))
    counting = rng.sample(["flank_pain", "dysuria", "suprapubic_pain", "frequency"], rng.randint(1, 2))
    _symptoms(rng, row, counting, rng.sample(["confusion", "chills", "poor_appetite", "nausea"], rng.randint(1, 2)))
    if rng.random() < 0.4:
        row["present"].append("cva_tenderness")
    row["hypotension"] = True
    _lab_yes(rng, row, pending_ok=False)
    _other_tests(rng, row, k=1, also=("pneumonia",) if row["temperature_c"] >= FEVER_C and rng.random() < 0.3 else ())


def scenario_cauti(rng, row):
    row.update(sex=rng.choice(["female", "male"]), catheter=_catheter(rng))
    counting = rng.sample(["suprapubic_pain", "flank_pain"], rng.randint(0, 1))
    if not counting or rng.random() < 0.6:
        row["temperature_c"] = _febrile(rng)
    _symptoms(rng, row, counting, _nonspecific(rng, row, (1, 2)))
    if rng.random() < 0.3:
        row["present"].append(rng.choice(EXAM_SIGNS))
    _lab_yes(rng, row, CATH_ORGANISMS)
    _other_tests(rng, row, k=1, also=("pneumonia",) if row["temperature_c"] >= FEVER_C and rng.random() < 0.3 else ())


def scenario_uti_other_infection(rng, row):
    """The twin of fever_other_source: another infection explains the fever, but urinary symptoms remain."""
    source = rng.choice(["pneumonia", "pneumonia", "influenza", "cellulitis"])
    row.update(temperature_c=_febrile(rng), fever_source=source)
    if row["setting"] == "inpatient" and rng.random() < 0.4:
        row["catheter"] = _catheter(rng)
    extra = ["cough"] if source != "cellulitis" else []
    _symptoms(rng, row, _lower(rng, (1, 2)), extra + _nonspecific(rng, row, (0, 1)))
    _lab_yes(rng, row, CATH_ORGANISMS if row["catheter"] else ORGANISMS)
    _other_tests(rng, row, positive=source, k=1)


def scenario_infected_stone(rng, row):
    """The twin of nephrolithiasis: an obstructing stone with infection is a complicated UTI."""
    row.update(temperature_c=_febrile(rng) if rng.random() < 0.5 else row["temperature_c"],
               stone=rng.choice([3, 4, 5, 6, 7]), sex=rng.choice(["male", "male", "female"]))
    _symptoms(rng, row, ["flank_pain", "hematuria"] + rng.sample(["frequency", "urgency"], rng.randint(0, 1)),
              rng.sample(["nausea", "chills"], 1))
    if rng.random() < 0.5:
        row["present"].append("cva_tenderness")
    _lab_yes(rng, row, pending_ok=False, rbc_high=True)
    _other_tests(rng, row, positive="ct")


def scenario_uti_after_repeat(rng, row):
    """A contaminated voided specimen, then a catheter specimen that grows a uropathogen."""
    row["sex"] = "female"
    _symptoms(rng, row, _lower(rng, (1, 2)), _nonspecific(rng, row, (0, 1)))
    row["urinalysis"] = urinalysis(rng, rng.random() < 0.7, squamous_many=True)
    row["cultures"] = [culture("clean-catch", 100_000, MIXED),
                       culture("catheter", rng.choice([1_000, 10_000, 50_000, 100_000]), rng.choice(ORGANISMS))]
    _other_tests(rng, row, k=1)


def scenario_contaminated_negative(rng, row):
    """The twin of uti_after_repeat: the repeat catheter specimen is sterile."""
    row["sex"] = "female"
    _symptoms(rng, row, _lower(rng, (1, 2)), _nonspecific(rng, row, (0, 1)))
    row["urinalysis"] = urinalysis(rng, rng.random() < 0.7, squamous_many=True, nitrite=False)
    row["cultures"] = [culture("clean-catch", 100_000, MIXED), sterile_culture(rng, "catheter", low_count=False)]
    _other_tests(rng, row, k=1)


def scenario_asb(rng, row):
    if row["setting"] in ("inpatient", "nursing facility") and rng.random() < 0.55:
        row["catheter"] = _catheter(rng)
    _symptoms(rng, row, [], _nonspecific(rng, row, (1, 2)))
    _lab_asymptomatic(rng, row, CATH_ORGANISMS if row["catheter"] else ORGANISMS)
    _other_tests(rng, row, k=2)


def scenario_fever_other(rng, row):
    source = rng.choice(["pneumonia", "pneumonia", "influenza", "cellulitis"])
    row.update(temperature_c=_febrile(rng), fever_source=source)
    if row["setting"] in ("inpatient", "nursing facility") and rng.random() < 0.5:
        row["catheter"] = _catheter(rng)
    extra = ["cough"] if source != "cellulitis" else []
    _symptoms(rng, row, [], extra + rng.sample(["chills", "fatigue", "confusion", "cloudy_urine", "poor_appetite"],
                                               rng.randint(1, 2)))
    if rng.random() < 0.3:
        row["hypotension"] = True
    _lab_asymptomatic(rng, row, CATH_ORGANISMS if row["catheter"] else ORGANISMS)
    _other_tests(rng, row, positive=source, k=1)


def scenario_sterile(rng, row):
    """Urinary symptoms (or fever without a source) with no laboratory evidence: the twin of every UTI."""
    kind = rng.random()
    if row["setting"] in ("inpatient", "nursing facility") and kind < 0.5:  # febrile catheter, sterile culture
        row["catheter"] = _catheter(rng)
        row["temperature_c"] = _febrile(rng)
        _symptoms(rng, row, rng.sample(["suprapubic_pain", "flank_pain"], rng.randint(0, 1)),
                  _nonspecific(rng, row, (1, 2)))
    elif row["setting"] in ("ED", "urgent care", "clinic") and kind < 0.5:  # the twin of pyelonephritis
        row["temperature_c"] = _febrile(rng) if rng.random() < 0.85 else row["temperature_c"]
        _symptoms(rng, row, ["flank_pain"] + rng.sample(["dysuria", "frequency"], rng.randint(0, 1)),
                  rng.sample(["nausea", "chills", "fatigue"], rng.randint(1, 2)))
        if rng.random() < 0.6:
            row["present"].append("cva_tenderness")
    else:
        if row["setting"] not in ("prenatal", "pre-op") and rng.random() < 0.35:
            row["temperature_c"] = _febrile(rng)
        _symptoms(rng, row, _lower(rng, (1, 2)), _nonspecific(rng, row, (0, 2)))
        if rng.random() < 0.35:
            row["present"].append("suprapubic_tenderness")
    _lab_sterile(rng, row)
    _other_tests(rng, row, k=2)


def scenario_vaginitis(rng, row):
    row.update(sex="female", age=min(row["age"], rng.randint(18, 50)))
    alt = rng.choice(list(WET_MOUNT))
    row["alternative_diagnosis"] = alt
    _symptoms(rng, row, ["dysuria"] + rng.sample(["frequency", "urgency"], rng.randint(0, 1)),
              ["vaginal_discharge"] + _nonspecific(rng, row, (0, 1)))
    _lab_sterile(rng, row, pyuria=0.7)
    if rng.random() < 0.2:  # the culture was not sent
        row["cultures"] = []
    _other_tests(rng, row, positive="wet mount", k=0)


def scenario_sti(rng, row):
    row.update(age=rng.randint(18, 39))
    bug = rng.choice(list(NAAT))
    row["alternative_diagnosis"] = f"{bug} {'urethritis' if row['sex'] == 'male' else 'cervicitis'}"
    discharge = "urethral_discharge" if row["sex"] == "male" else "vaginal_discharge"
    _symptoms(rng, row, ["dysuria"] + rng.sample(["frequency"], rng.randint(0, 1)),
              [discharge] + _nonspecific(rng, row, (0, 1)))
    _lab_sterile(rng, row, pyuria=0.8)
    if rng.random() < 0.2:
        row["cultures"] = []
    row["naat"] = bug
    _other_tests(rng, row, positive="naat", k=0)


def scenario_stone(rng, row):
    row.update(stone=rng.choice([3, 4, 5, 6, 7]), sex=rng.choice(["male", "male", "female"]))
    _symptoms(rng, row, ["flank_pain", "hematuria"] + rng.sample(["frequency", "urgency"], rng.randint(0, 1)),
              ["nausea"])
    if rng.random() < 0.5:
        row["present"].append("cva_tenderness")
    _lab_sterile(rng, row, pyuria=0.5, rbc_high=True)
    _other_tests(rng, row, positive="ct")


SCENARIOS = {"cystitis": scenario_cystitis, "pyelonephritis": scenario_pyelonephritis, "cauti": scenario_cauti,
             "complicated_uti": scenario_complicated, "urosepsis": scenario_urosepsis,
             "uti_other_infection": scenario_uti_other_infection, "infected_stone": scenario_infected_stone,
             "uti_after_repeat": scenario_uti_after_repeat,
             "asymptomatic_bacteriuria": scenario_asb, "fever_other_source": scenario_fever_other,
             "vaginitis": scenario_vaginitis, "sti_urethritis": scenario_sti, "nephrolithiasis": scenario_stone,
             "sterile_symptoms": scenario_sterile, "contaminated_repeat_negative": scenario_contaminated_negative}
POSITIVE = ["cystitis", "pyelonephritis", "cauti", "complicated_uti", "urosepsis", "uti_other_infection",
            "infected_stone", "uti_after_repeat"]
SETTINGS = {"clinic": 3, "urgent care": 2, "ED": 3, "inpatient": 2, "nursing facility": 2, "prenatal": 1, "pre-op": 1}
# setting -> label -> scenario weights (twins in the same setting)
SCENARIOS_BY_SETTING = {
    "clinic": {"yes": {"cystitis": 3, "complicated_uti": 2, "pyelonephritis": 1, "uti_after_repeat": 1},
               "no": {"asymptomatic_bacteriuria": 2.5, "vaginitis": 1.2, "sti_urethritis": 0.8, "sterile_symptoms": 1.5,
                      "contaminated_repeat_negative": 1}},
    "urgent care": {"yes": {"cystitis": 2, "pyelonephritis": 1.5, "infected_stone": 1.2, "uti_after_repeat": 0.5},
                    "no": {"asymptomatic_bacteriuria": 1, "vaginitis": 1, "sti_urethritis": 0.8, "nephrolithiasis": 1.5,
                           "sterile_symptoms": 1,
                           "contaminated_repeat_negative": 0.5}},
    "ED": {"yes": {"pyelonephritis": 2, "urosepsis": 1.5, "infected_stone": 1.2, "uti_other_infection": 2.5},
           "no": {"nephrolithiasis": 1.5, "fever_other_source": 2.5, "sterile_symptoms": 2,
                  "asymptomatic_bacteriuria": 1}},
    "inpatient": {"yes": {"cauti": 2, "uti_other_infection": 2.5, "complicated_uti": 1},
                  "no": {"fever_other_source": 2.5, "asymptomatic_bacteriuria": 1.5, "sterile_symptoms": 1.5}},
    "nursing facility": {"yes": {"cauti": 2, "complicated_uti": 1.5, "uti_other_infection": 0.5},
                         "no": {"asymptomatic_bacteriuria": 2, "fever_other_source": 2, "sterile_symptoms": 1}},
    "prenatal": {"yes": {"cystitis": 2, "pyelonephritis": 1},
                 "no": {"asymptomatic_bacteriuria": 2, "vaginitis": 1}},
    "pre-op": {"yes": {"cystitis": 1, "complicated_uti": 1}, "no": {"asymptomatic_bacteriuria": 2}},
}
HARD = {"asymptomatic_bacteriuria", "fever_other_source", "vaginitis", "sti_urethritis", "uti_after_repeat",
        "contaminated_repeat_negative"}
EASY = {"cystitis", "pyelonephritis", "urosepsis"}
LEVELS = ["easy", "medium", "hard"]


# ------------------------------------------------------------------------------------------------ the renderer
def _join(items: list[str]) -> str:
    return ", ".join(items)


def _temp(rng, c: float) -> str:
    if rng.random() < 0.35:
        f = round(c * 9 / 5 + 32, 1)
        return f"T {f} °F" if rng.random() < 0.5 else f"temperature {f} F"
    return f"T {c} °C" if rng.random() < 0.6 else f"temperature {c} C"


def _phrase(rng, key: str, side: str) -> str:
    return rng.choice(TEXT[key]).format(side=side)


def render_symptoms(rng, row: dict, side: str) -> str:
    present = [s for s in row["present"] if s not in EXAM_SIGNS]
    absent = list(row["absent"])
    if rng.random() < 0.6:  # a signed review of systems, order shuffled
        plus, minus = rng.choice(SIGN_STYLES)
        items = [(s, True) for s in present] + [(s, False) for s in absent]
        rng.shuffle(items)
        listed = ", ".join((plus if on else minus).format(x=_phrase(rng, s, side)) for s, on in items)
        return f"{rng.choice(ROS_LEADS)} {listed}. {rng.choice(ONSET)}"
    # two lists, each opening and closing with a non-counting finding (none next to "reports" / "denies")
    def framed(items: list[str]) -> list[str]:
        non = [x for x in items if x in NONCOUNTING]
        rng.shuffle(non)
        middle = [x for x in items if x not in non[:2]]
        rng.shuffle(middle)
        return [non[0]] + middle + [non[1]]

    present, absent = framed(present), framed(absent)
    return (f"{rng.choice(PRESENT_LEADS)} {_join([_phrase(rng, s, side) for s in present])} "
            f"{rng.choice(DURATIONS)}. {rng.choice(ABSENT_LEADS)} {_join([_phrase(rng, s, side) for s in absent])}.")


def render_exam(rng, row: dict, side: str) -> str:
    c = row["temperature_c"]
    parts = [_temp(rng, c)]
    if row.get("hypotension"):
        parts.append(f"BP {rng.randint(78, 96)}/{rng.randint(40, 58)}, HR {rng.randint(108, 130)}")
    else:
        hr = rng.randint(92, 118) if c >= FEVER_C else rng.randint(64, 100)
        parts.append(f"BP {rng.randint(112, 148)}/{rng.randint(62, 88)}, HR {hr}")
    plus, minus = rng.choice(SIGN_STYLES)
    signs = []
    for sign, words in (("cva_tenderness", ["CVA tenderness", "costovertebral angle tenderness"]),
                        ("suprapubic_tenderness", ["suprapubic tenderness"])):
        if sign in row["present"] or rng.random() < 0.75:
            signs.append((plus if sign in row["present"] else minus).format(x=rng.choice(words)))
    rng.shuffle(signs)
    return "Exam: " + ", ".join(parts + signs) + "."


def render_other_tests(rng, row: dict, side: str) -> list[str]:
    out = []
    for test in row["other_tests"]:
        name, pos = test["test"], test["positive"]
        if name in OTHER_SOURCE:
            out.append(OTHER_SOURCE[name][0 if pos else 1].format(side=side))
        elif name == "wet mount":
            found = WET_MOUNT.get(row["alternative_diagnosis"]) if pos else None
            plus, minus = rng.choice(SIGN_STYLES)
            items = [(plus if f == found else minus).format(x=f) for f in WET_MOUNT.values()]
            rng.shuffle(items)
            out.append("Wet mount: " + ", ".join(items) + ".")
        elif name == "naat":
            found = row.get("naat") if pos else None
            plus, minus = rng.choice(SIGN_STYLES)
            items = [(plus if b == found else minus).format(x=b) for b in NAAT]
            rng.shuffle(items)
            out.append("NAAT: " + ", ".join(items) + ".")
        elif name == "ct":
            if row["stone"]:
                out.append(rng.choice([f"CT: {row['stone']} mm {side} ureteral stone with mild hydronephrosis.",
                                       f"Non-contrast CT: {row['stone']} mm {side} ureteral stone."]))
            else:
                out.append(rng.choice(["CT: no ureteral stone, no hydronephrosis.",
                                       "Non-contrast CT: no stone, no hydronephrosis."]))
    rng.shuffle(out)
    return out


def render_ua(rng, ua: dict | None) -> str:
    """Dipstick results as charted ("neg", "-", "trace", "1+", "+"), WBC as a number or the lab's range."""
    if ua is None:
        return ""
    le = {"negative": rng.choice(["neg", "negative", "-", "(-)", "-"]), "trace": rng.choice(["trace", "±"])}.get(
        ua["le"], ua["le"])
    nit = rng.choice(["+", "(+)", "+", "pos", "positive"]) if ua["nitrite"] == "positive" else \
        rng.choice(["-", "(-)", "-", "neg", "negative"])
    wbc = ua["wbc"]
    if rng.random() < 0.35:  # a range as the lab reports it
        low = rng.choice(["<10", "0-2" if wbc <= 2 else "3-5" if wbc <= 5 else "6-9"])
        wbc_text = low if wbc < 10 else "11-20" if wbc <= 20 else "21-50" if wbc <= 50 else ">50"
    else:
        wbc_text = str(wbc)
    parts = [f"LE {le}", f"nitrite {nit}", f"WBC {wbc_text}/hpf", f"RBC {ua['rbc']}/hpf",
             f"squamous cells {ua['squamous']}/hpf", f"bacteria {ua['bacteria']}"]
    if rng.random() < 0.4:
        parts = parts[:3] + rng.sample(parts[3:], 2)
    return f"{rng.choice(['UA:', 'Urinalysis:', 'U/A -', 'Urinalysis with microscopy:'])} {', '.join(parts)}."


def render_count(rng, cfu: int) -> str:
    return rng.choice(COUNT_TEXT[cfu])


FINAL = [", final:", ", final report:", " - final:"]


def render_culture(rng, row: dict, c: dict, repeat: bool) -> str:
    """One shape for every result, "<lead> (<specimen>), final: <result>", so no result word sits next to the
    specimen; prior urine cultures and blood cultures are written the same way."""
    specimen = rng.choice(SPECIMEN_TEXT[c["specimen"] if c["specimen"] == "clean-catch" or row["catheter"]
                                        else "straight catheter"])
    lead = f"{rng.choice(['Repeat urine culture', 'Repeat culture']) if repeat else 'Urine culture'} ({specimen})"
    if c["status"] == "pending":
        return rng.choice([f"{lead} sent, result pending.", f"{lead} pending."])
    if c["organism"] == MIXED:
        result = (f"{render_count(rng, c['cfu'])} CFU/mL "
                  f"{rng.choice(['mixed flora (>=3 organisms)', 'mixed urogenital flora, 3 or more species'])}")
    else:
        found = []
        if c["organism"] is not None:
            count = render_count(rng, c["cfu"])
            found.append(rng.choice([f"{count} CFU/mL {c['organism']}", f"{c['organism']}, {count} CFU/mL"]))
        if c["commensal"]:
            count = render_count(rng, 100)
            found.append(rng.choice([f"{count} CFU/mL {c['commensal']}", f"{c['commensal']}, {count} CFU/mL"]))
        result = "; ".join(found) if found else rng.choice(NO_GROWTH)
    return f"{lead}{rng.choice(FINAL)} {result}."


NO_GROWTH = ["no growth", "no growth at 48 hours", "no growth to date"]


def render_note(rng: random.Random, row: dict, include_plan: bool) -> str:
    age, sex = row["age"], row["sex"]
    day = rng.randint(3, 9)
    side = rng.choice(["right", "left"])
    header = rng.choice(HEADERS[row["setting"]]).format(d=day)
    who = f"{age}-year-old {rng.choice(['woman', 'female'] if sex == 'female' else ['man', 'male'])}"
    extra = ""
    if row["setting"] == "inpatient":
        extra = rng.choice(CONTEXT["inpatient"]).format(days=day - 1, d=day, why=rng.choice(INPATIENT_WHY))
    elif row["setting"] == "nursing facility":
        extra = rng.choice(CONTEXT["nursing facility"]).format(why=rng.choice(NH_WHY))
    elif row["pregnant"]:
        extra = f" G{rng.randint(1, 4)} at {rng.randint(10, 30)} weeks"
    elif row["setting"] == "pre-op":
        extra = " before elective " + row["procedure"]
    elif age >= 45:
        extra = rng.choice(COMORBID)
    if row["catheter"]:
        extra += f" with an {row['catheter']}" if row["catheter"].startswith("i") else f" with a {row['catheter']}"
    parts = [f"{who}{extra} {rng.choice(VISIT[row['setting']])}."]
    if rng.random() < 0.5:
        parts.append(rng.choice(PRIOR).format(m=rng.randint(3, 14), res=rng.choice(PRIOR_RESULTS),
                                              final=rng.choice(FINAL)))
    parts.append(render_symptoms(rng, row, side))
    parts.append(render_exam(rng, row, side))
    tests = render_other_tests(rng, row, side)
    ua = render_ua(rng, row["urinalysis"])
    cultures = [render_culture(rng, row, c, i > 0) for i, c in enumerate(row["cultures"])]
    if not row["cultures"] and rng.random() < 0.5:
        cultures = ["No urine culture sent."]
    parts += tests + [ua] + cultures
    if row["temperature_c"] >= FEVER_C and rng.random() < 0.5:
        parts.append(rng.choice([f"Blood cultures x2{rng.choice(FINAL)} {rng.choice(NO_GROWTH)}.",
                                 "Blood cultures x2 pending."]))
    if include_plan:
        kind = rng.choices(["start", "defer", "none"], weights=[5, 2, 2])[0]
        parts.append(rng.choice(["Plan:", "A/P:", "Plan -"]) + " " + " ".join(
            p for p in (rng.choice(PLANS[kind]), rng.choice(FOLLOW_UP)) if p))
    note = " ".join(p for p in parts if p)
    note = note[0].upper() + note[1:]
    return f"{header} {note}".strip()


# ------------------------------------------------------------------------------------------------- the splits
def _check(row: dict) -> None:
    """Values never sit on a rule's edge (see the module docstring)."""
    assert row["temperature_c"] != FEVER_C
    if row["urinalysis"]:
        assert row["urinalysis"]["wbc"] != 10
    symptomatic = bool(counted_symptoms(row))
    for c in row["cultures"]:
        if symptomatic and c["organism"] in UROPATHOGENS and c["cfu"] < THRESHOLD[c["specimen"]]:
            # no count between 10^2 and the threshold with symptoms; 10^2 only from a catheter specimen
            assert c["specimen"] == "catheter" and c["cfu"] == 100, row
    if row["alternative_diagnosis"]:
        read = culture_read(row)
        assert not (read and culture_significant(read)) and row["temperature_c"] < FEVER_C
        assert "flank_pain" not in row["present"]
        assert not row["urinalysis"] or row["urinalysis"]["nitrite"] == "negative"
    if row["catheter"] and symptomatic:
        assert culture_read(row) is not None
    read = culture_read(row)
    if read and read["organism"] is None and row["urinalysis"]:  # no nitrite without bacteria
        assert row["urinalysis"]["nitrite"] == "negative", row


def generate(seed: int = SEED) -> dict[str, list[dict]]:
    return grown_splits(random.Random(seed), SIZES, FIRST_TEST_DRAW, "uti", _draw_rows)


def _draw_rows(rng: random.Random, size: int, seen: set[str]) -> list[dict]:
    """``size`` new notes, half of each label (odd sizes: one more "yes"), in shuffled order."""
    settings, weights = list(SETTINGS), list(SETTINGS.values())
    labels = ["yes"] * (size - size // 2) + ["no"] * (size // 2)
    rows = []
    for label in labels:
        while True:
            setting = rng.choices(settings, weights)[0]
            options = SCENARIOS_BY_SETTING[setting][label]
            category = rng.choices(list(options), list(options.values()))[0]
            row = base_row(rng, setting)
            SCENARIOS[category](rng, row)
            include_plan = rng.random() < 0.65
            text = render_note(rng, row, include_plan)
            if text not in seen and uti_label(row) == label:
                break
        _check(row)
        seen.add(text)
        culture_decides = culture_read(row) is not None
        level = 2 if category in HARD or not culture_decides else 0 if category in EASY else 1
        row.update(text=text, category=category, difficulty=LEVELS[level], plan_included=include_plan,
                   label=uti_label(row))
        rows.append(row)
    rng.shuffle(rows)
    return rows


if __name__ == "__main__":
    write_jsonl_splits(generate(SEED), Path(__file__).resolve().parent / "data")
