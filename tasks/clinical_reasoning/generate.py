"""Generate the bundled clinical_reasoning sample: diagnosis and treatment-selection questions, 4 options.

Every question is built from the table of conditions below (written by the medbench project from standard
first-line teaching; research use only, not clinical guidance). Rules:

* diagnosis question: a vignette (age, sex, setting, chief complaint and k of the condition's findings) asks
  for the most likely diagnosis; the distractors are other diagnoses that present alike (the condition's own
  ``dx_alts``, topped up with other diagnoses of the same organ system if ever short). The condition's key
  finding (``key``, the most specific one) is always among the k. difficulty: k = 4 easy, 3 medium, 2 hard.
* treatment question: the patient's diagnosis is named (easy) or only described by findings (medium), and
  the answer is the condition's first-line treatment; or a patient factor (pregnancy, an allergy, kidney
  disease, ...) changes the first-line choice (hard), and the usual first-line treatment becomes a
  distractor. The other distractors are the condition's curated wrong treatments (``wrong_tx``), printed without
  the word "alone" (in the table it marks only wrong treatments, a cue that needs no medicine).
* held-out conditions: every condition belongs to one split (``HELD_OUT`` names the 10 validation and 19
  test conditions, one or two per organ system; the other 33 are train), so a test question is about a
  condition, and has an answer, that training never shows as a gold answer (a test checks that the answer texts
  are disjoint). Conditions that share an answer (prednisone, apixaban, amoxicillin, ...) stay together in
  train.
* per split, the gold letter is an exact balanced shuffle of A-D and the two question types are half each;
  the split's conditions are cycled in a shuffled order (separately for diagnosis and for treatment
  questions) so every one appears; hard (patient-factor) treatment questions are at most a third of the
  treatment questions, fewer when few of the split's conditions have factors; no question text repeats
  across splits.
* option balance (version 1.3, ``rebalance_options``): the wrong options above are then re-picked per split so
  that the options alone carry no answer: one curated look-alike (for a patient-factor question, the usual
  first-line treatment) and two other gold answers of the same split and question type, the least used first
  (treatments only from other organ systems and sharing no content word with the condition's own treatments);
  among candidate sets, the one whose gold length rank is the least used so far wins (1.4; 1.3 followed a
  shuffled cycle it could not always meet). Every
  gold answer is thus also a wrong option elsewhere in its split; before, none was, and an option-only model
  that memorised which strings are answers scored 0.96 on train without reading a question.
* no vignette names the answer's words (version 1.4): findings are worded apart from the option text
  ("paracetamol", not "acetaminophen", for acetaminophen poisoning), and ``rebalance_options`` prefers wrong
  options that share as many of the question's words as the gold (``_lead``): in 1.3 a model picking the option
  that repeats the question's words scored 0.37 on test.
* every row names its ``condition`` and carries ``answer_aliases`` (``ALIASES``: short names and
  abbreviations of the gold answer) for the open-ended variant ``clinical_reasoning_open``.

Sizes: train 320 (a study recipe trains on 256), validation 50, test 400. Run ``python generate.py`` to
rewrite data/{train,validation,test}.jsonl. The output depends only on SEED.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

SEED = 20261
# test 400: sft_vs_dpo's open-answer comparison (the seed's 28% -> 36%) needs 195-370 paired items for 80% power
# (100 gave 31-52%). Test comes last, so train and validation are unchanged.
SIZES = {"train": 320, "validation": 50, "test": 400}
LETTERS = "ABCD"

# Each condition: dx (the answer text), system (the row's subject), sex ("M", "F" or "any"), age range,
# settings, complaint (a noun phrase: "comes to the clinic because of <complaint>"), findings (sentences,
# a tuple is a set of alternatives; {He}/{he}/{his}/{His}/{him} are the patient's pronouns), dx_alts
# (diagnoses that look alike), treatment (first-line), wrong_tx (plausible wrong treatments), tx_question
# (optional wording), why_dx / why_tx (the rationale), factors (patient factors that change the treatment:
# text, treatment, wrong (extra distractors), why, optional sex / age / question), key (index of the most specific
# finding, always shown; default 0) and brought (the patient is brought in rather than coming in).
CONDITIONS: list[dict] = [
    # ---------------------------------------------------------------- cardiology
    dict(dx="Acute pericarditis", system="cardiology", sex="any", age=(19, 55),
         settings=["emergency department", "urgent care center"],
         complaint="sharp chest pain for 2 days that is worse when lying flat and eases when {he} sits forward",
         findings=["A high-pitched scratching sound is heard at the left lower sternal border.",
                   "An ECG shows diffuse ST-segment elevation with PR-segment depression.",
                   "{He} had a sore throat and a runny nose 2 weeks ago.",
                   ("Serum troponin is within the reference range.", "Troponin is not elevated."),
                   ("Temperature is 37.9°C (100.2°F).", "Temperature is 38.0°C (100.4°F).")],
         dx_alts=["Acute inferior myocardial infarction", "Aortic dissection", "Pulmonary embolism",
                  "Costochondritis"],
         treatment="Ibuprofen plus colchicine",
         wrong_tx=["Intravenous alteplase", "Emergency coronary angiography", "Intravenous heparin infusion"],
         why_dx="Positional pleuritic chest pain, a friction rub and diffuse ST elevation with PR depression after a "
                "viral illness are the classic picture of acute pericarditis.",
         why_tx="A nonsteroidal anti-inflammatory drug with colchicine is first-line for acute pericarditis; "
                "colchicine also lowers the recurrence rate. Fibrinolysis and anticoagulation have no role and can "
                "cause hemopericardium."),
    dict(dx="Acute ST-elevation myocardial infarction", key=1, system="cardiology", sex="any", age=(48, 79),
         settings=["emergency department"],
         complaint="crushing substernal chest pain that began 1 hour ago and radiates to {his} left arm",
         findings=[("{He} is diaphoretic and pale.", "{He} is sweating profusely and appears anxious."),
                   "An ECG shows a current of injury in leads II, III and aVF with reciprocal changes in I and aVL.",
                   "Serum troponin is elevated.",
                   ("{He} has smoked 1 pack of cigarettes daily for 30 years.",
                    "{He} has hypertension and hyperlipidemia."),
                   "Blood pressure is 146/88 mm Hg and pulse is 98/min."],
         dx_alts=["Acute pericarditis", "Aortic dissection", "Stable angina pectoris",
                  "Gastroesophageal reflux disease"],
         treatment="Primary percutaneous coronary intervention",
         wrong_tx=["Ibuprofen plus colchicine", "Outpatient exercise stress testing", "Oral proton pump inhibitor"],
         why_dx="Ongoing ischemic chest pain with ST elevation in the inferior leads and a rising troponin define an "
                "acute inferior ST-elevation myocardial infarction.",
         why_tx="Primary percutaneous coronary intervention is the reperfusion strategy of choice when it can be done "
                "within 120 minutes of first medical contact.",
         factors=[dict(text="The nearest hospital with a catheterization laboratory is 3 hours away, and the "
                            "symptoms began 90 minutes ago.",
                       treatment="Intravenous fibrinolytic therapy with tenecteplase",
                       wrong=["Intravenous metoprolol alone"],
                       why="When primary PCI cannot be done within 120 minutes, fibrinolysis within 30 minutes of "
                           "arrival is recommended for STEMI presenting within 12 hours of symptom onset.")]),
    dict(dx="Atrial fibrillation", system="cardiology", sex="any", age=(62, 86),
         settings=["clinic", "physician's office"],
         complaint="intermittent palpitations and fatigue for 3 weeks",
         findings=["The pulse is irregularly irregular at 104/min.",
                   "An ECG shows absent P waves and an irregular ventricular rhythm.",
                   ("{He} has hypertension and type 2 diabetes mellitus.",
                    "{He} has hypertension and had a transient ischemic attack 2 years ago."),
                   "Echocardiography shows a mildly dilated left atrium and normal valves.",
                   "TSH is within the reference range."],
         dx_alts=["Atrial flutter", "Multifocal atrial tachycardia", "Sinus tachycardia",
                  "Premature ventricular contractions"],
         treatment="Apixaban",
         wrong_tx=["Aspirin alone", "Clopidogrel alone", "No antithrombotic therapy"],
         tx_question="Which of the following is the most appropriate long-term therapy to prevent stroke?",
         why_dx="An irregularly irregular pulse with absent P waves on the ECG is atrial fibrillation.",
         why_tx="With a CHA2DS2-VASc score of 2 or more, oral anticoagulation is indicated, and a direct oral "
                "anticoagulant such as apixaban is preferred over warfarin; aspirin alone does not adequately "
                "prevent stroke.",
         factors=[dict(text="{He} has a mechanical mitral valve prosthesis.", treatment="Warfarin",
                       wrong=["Dabigatran"],
                       why="Direct oral anticoagulants are contraindicated with a mechanical heart valve; warfarin "
                           "is the anticoagulant of choice.")]),
    dict(dx="Acute decompensated heart failure", key=1, system="cardiology", sex="any", age=(55, 88),
         settings=["emergency department"],
         complaint="worsening shortness of breath over 5 days and needing three pillows to sleep",
         findings=["Crackles are heard at both lung bases.",
                   "The jugular venous pressure is elevated to the angle of the jaw.",
                   "There is pitting edema of both legs to the knees.",
                   "Serum B-type natriuretic peptide is markedly elevated.",
                   "A chest x-ray shows cephalization of the pulmonary vessels and small bilateral pleural effusions.",
                   "Blood pressure is 152/90 mm Hg."],
         dx_alts=["Community-acquired pneumonia", "Chronic obstructive pulmonary disease exacerbation",
                  "Nephrotic syndrome", "Pulmonary embolism"],
         treatment="Intravenous furosemide",
         wrong_tx=["Intravenous normal saline bolus", "Oral verapamil", "Intravenous alteplase"],
         why_dx="Orthopnea, crackles, raised jugular venous pressure, edema and a high BNP point to volume overload "
                "from decompensated heart failure.",
         why_tx="An intravenous loop diuretic relieves congestion; fluids worsen it and non-dihydropyridine calcium "
                "channel blockers are negative inotropes."),
    dict(dx="Severe aortic stenosis", system="cardiology", sex="any", age=(68, 89),
         settings=["clinic", "physician's office"],
         complaint="2 episodes of fainting while climbing stairs",
         findings=["A harsh crescendo-decrescendo systolic murmur is heard at the right upper sternal border and "
                   "radiates to the carotids.",
                   "The carotid upstroke is weak and delayed.",
                   "{He} also reports chest tightness on exertion.",
                   "Echocardiography shows heavily calcified leaflets with a mean transvalvular gradient of 48 mm Hg."],
         dx_alts=["Hypertrophic cardiomyopathy", "Mitral regurgitation", "Vasovagal syncope",
                  "Aortic regurgitation"],
         treatment="Aortic valve replacement",
         wrong_tx=["Observation with repeat echocardiography in 1 year", "Oral metoprolol alone",
                   "Oral isosorbide mononitrate", "Balloon aortic valvuloplasty alone"],  # names the valve too
         why_dx="Exertional syncope and angina with a late-peaking systolic murmur radiating to the carotids and a "
                "weak delayed carotid pulse are the signs of severe aortic stenosis.",
         why_tx="Symptomatic severe aortic stenosis needs valve replacement (surgical or transcatheter); medical "
                "therapy does not change its course and nitrates can cause hypotension."),
    # ---------------------------------------------------------------- pulmonology
    dict(dx="Community-acquired pneumonia", key=1, system="pulmonology", sex="any", age=(22, 60),
         settings=["clinic", "urgent care center"],
         complaint="fever and a cough productive of yellow sputum for 3 days",
         findings=["Crackles and bronchial breath sounds are heard over the right lower lung field.",
                   "A chest x-ray shows consolidation of the right lower lobe.",
                   ("Temperature is 38.6°C (101.5°F).", "Temperature is 38.9°C (102°F)."),
                   "Respiratory rate is 20/min and oxygen saturation is 95% on room air.",
                   "The leukocyte count is 14,800/mm3."],
         dx_alts=["Acute bronchitis", "Pulmonary embolism", "Lung abscess", "Pulmonary tuberculosis"],
         treatment="Oral amoxicillin",
         wrong_tx=["Oral fluconazole", "Oral nitrofurantoin", "Intravenous vancomycin plus piperacillin-tazobactam"],
         why_dx="Fever, productive cough, focal crackles and lobar consolidation on chest x-ray are "
                "community-acquired pneumonia.",
         why_tx="A previously healthy outpatient without comorbidities is treated with oral amoxicillin (doxycycline "
                "or a macrolide are alternatives); broad intravenous therapy is for hospital-acquired infection.",
         factors=[dict(text="{He} has chronic heart failure and type 2 diabetes mellitus.",
                       treatment="Oral amoxicillin-clavulanate plus azithromycin", wrong=["Oral cephalexin alone"],
                       why="Outpatients with comorbidities such as heart failure or diabetes need broader cover: a "
                           "beta-lactam such as amoxicillin-clavulanate plus a macrolide, or a respiratory "
                           "fluoroquinolone alone.")]),
    dict(dx="Acute asthma exacerbation", system="pulmonology", sex="any", age=(16, 45),
         settings=["emergency department", "urgent care center"],
         complaint="wheezing and shortness of breath that began after a cold 2 days ago",
         findings=["{He} has used {his} rescue inhaler 8 times today.",
                   "Diffuse expiratory wheezes are heard and {he} is using the accessory muscles of respiration.",
                   "Peak expiratory flow is 55% of {his} personal best.",
                   "Oxygen saturation is 93% on room air.",
                   "{He} has had reactive airway episodes since childhood."],
         dx_alts=["Chronic obstructive pulmonary disease exacerbation", "Vocal cord dysfunction",
                  "Acute decompensated heart failure", "Foreign body aspiration"],
         treatment="Inhaled albuterol plus oral prednisone",
         wrong_tx=["Inhaled salmeterol alone", "Oral montelukast alone", "Intravenous furosemide"],
         why_dx="Episodic wheeze triggered by a viral infection in a patient with known asthma, with a reduced peak "
                "flow, is an asthma exacerbation.",
         why_tx="Repeated short-acting beta-agonist doses and an early systemic corticosteroid are first-line; a "
                "long-acting beta-agonist alone is unsafe and montelukast is too slow."),
    dict(dx="Pulmonary embolism", key=3, system="pulmonology", sex="any", age=(30, 75),
         settings=["emergency department"],
         complaint="sudden shortness of breath and right-sided pleuritic chest pain",
         findings=[("{He} returned from a 14-hour flight 3 days ago.",
                    "{He} had knee replacement surgery 10 days ago."),
                   "Pulse is 112/min and oxygen saturation is 91% on room air.",
                   "The left calf is swollen and tender.",
                   "CT angiography of the chest shows a filling defect in the right lower lobe artery.",
                   "Blood pressure is 128/80 mm Hg."],
         dx_alts=["Community-acquired pneumonia", "Spontaneous pneumothorax", "Acute pericarditis",
                  "Acute coronary syndrome"],
         treatment="Therapeutic anticoagulation with apixaban",
         wrong_tx=["Aspirin alone", "Observation without anticoagulation", "Inferior vena cava filter alone"],
         why_dx="Sudden pleuritic pain and dyspnea with tachycardia and hypoxemia after immobility, a swollen calf "
                "and a filling defect on CT angiography are pulmonary embolism.",
         why_tx="A hemodynamically stable pulmonary embolism is treated with anticoagulation, a direct oral "
                "anticoagulant being preferred; a filter is only for patients who cannot be anticoagulated.",
         factors=[dict(text="{His} blood pressure is 78/48 mm Hg despite 2 liters of intravenous fluid.",
                       treatment="Systemic thrombolysis with alteplase", wrong=["Oral warfarin"],
                       why="Pulmonary embolism with sustained hypotension (high-risk or massive) and no "
                           "contraindication is treated with systemic thrombolysis.")]),
    dict(dx="Tension pneumothorax", brought=True, system="pulmonology", sex="any", age=(18, 50),
         settings=["emergency department"],
         complaint="severe shortness of breath after a motorcycle collision",
         findings=["Breath sounds are absent over the left chest.",
                   "The trachea is deviated to the right.",
                   "Blood pressure is 82/50 mm Hg and pulse is 132/min.",
                   "The neck veins are distended.",
                   "The left hemithorax is hyperresonant to percussion."],
         dx_alts=["Cardiac tamponade", "Massive hemothorax", "Flail chest", "Diaphragmatic rupture"],
         treatment="Immediate needle decompression",
         wrong_tx=["Chest x-ray before any intervention", "Pericardiocentesis", "Intravenous furosemide"],
         why_dx="Absent breath sounds and hyperresonance on one side with tracheal deviation away from it, distended "
                "neck veins and hypotension after trauma are tension pneumothorax.",
         why_tx="Tension pneumothorax is a clinical diagnosis treated at once by needle (or finger) decompression "
                "followed by a chest tube; waiting for imaging can be fatal."),
    dict(dx="Chronic obstructive pulmonary disease exacerbation", system="pulmonology", sex="any", age=(55, 82),
         settings=["emergency department", "clinic"],
         complaint="3 days of increasing breathlessness and more sputum than usual",
         findings=["{He} has smoked 2 packs of cigarettes daily for 40 years.",
                   "{His} sputum has changed from white to green.",
                   "Expiratory wheezes and a prolonged expiratory phase are heard.",
                   "Oxygen saturation is 89% on room air.",
                   "A chest x-ray shows hyperinflated lungs without consolidation."],
         dx_alts=["Acute asthma exacerbation", "Acute decompensated heart failure", "Community-acquired pneumonia",
                  "Bronchiectasis"],
         treatment="Inhaled bronchodilators, oral prednisone and an oral antibiotic",
         wrong_tx=["Inhaled corticosteroid alone", "Oral theophylline alone", "Intravenous furosemide"],
         why_dx="A heavy smoker with more dyspnea and purulent sputum, wheeze and hyperinflation without "
                "consolidation is having an exacerbation of COPD.",
         why_tx="Short-acting bronchodilators, a short course of systemic corticosteroid and an antibiotic when "
                "sputum is purulent are the first-line treatment of a COPD exacerbation."),
    # ---------------------------------------------------------------- gastroenterology
    dict(dx="Acute pancreatitis", key=1, system="gastroenterology", sex="any", age=(28, 70),
         settings=["emergency department"],
         complaint="severe epigastric pain radiating to the back with repeated vomiting",
         findings=[("{He} drinks 8 beers daily.", "Ultrasound shows multiple gallstones without gallbladder wall "
                                                  "thickening."),
                   "Serum lipase is 6 times the upper limit of normal.",
                   "There is epigastric tenderness without rebound.",
                   "Pulse is 108/min.",
                   "The pain began a few hours after a large meal."],
         dx_alts=["Perforated peptic ulcer", "Acute cholecystitis", "Acute mesenteric ischemia",
                  "Acute inferior myocardial infarction"],
         treatment="Intravenous lactated Ringer solution and analgesia",
         wrong_tx=["Emergency laparotomy", "Prophylactic intravenous meropenem", "Oral omeprazole alone"],
         why_dx="Epigastric pain radiating to the back with a lipase more than 3 times normal in a patient who drinks "
                "heavily or has gallstones is acute pancreatitis.",
         why_tx="Early goal-directed intravenous fluids (lactated Ringer solution) and pain control are the core "
                "treatment; prophylactic antibiotics and surgery are not indicated."),
    dict(dx="Acute cholecystitis", key=2, system="gastroenterology", sex="any", age=(30, 68),
         settings=["emergency department"],
         complaint="right upper quadrant pain for 10 hours that began after a fatty meal",
         findings=[("Temperature is 38.4°C (101.1°F).", "Temperature is 38.2°C (100.8°F)."),
                   "{He} stops breathing in when the right upper quadrant is palpated.",
                   "Ultrasound shows gallstones, a thickened gallbladder wall and pericholecystic fluid.",
                   "The leukocyte count is 15,200/mm3.",
                   "Serum bilirubin and lipase are within the reference range."],
         dx_alts=["Biliary colic", "Acute cholangitis", "Acute pancreatitis", "Acute viral hepatitis"],
         treatment="Intravenous antibiotics and early laparoscopic cholecystectomy",
         wrong_tx=["Oral ursodeoxycholic acid", "Extracorporeal shock wave lithotripsy",
                   "Discharge with oral analgesics"],
         why_dx="Persistent right upper quadrant pain with fever, a positive Murphy sign, leukocytosis and gallbladder "
                "wall thickening with pericholecystic fluid on ultrasound is acute cholecystitis.",
         why_tx="Antibiotics and cholecystectomy within 72 hours are first-line; dissolution therapy and lithotripsy "
                "have no place in acute cholecystitis."),
    dict(dx="Helicobacter pylori-associated duodenal ulcer", system="gastroenterology", sex="any", age=(25, 65),
         settings=["clinic", "physician's office"],
         complaint="burning epigastric pain for 2 months that improves with meals and wakes {him} at night",
         findings=["A urea breath test is positive.",
                   "Upper endoscopy shows a clean-based crater in the bulb just beyond the pylorus.",
                   "{He} does not take nonsteroidal anti-inflammatory drugs.",
                   "The hemoglobin concentration is 13.1 g/dL."],
         dx_alts=["Gastric adenocarcinoma", "Chronic pancreatitis", "Gastroesophageal reflux disease",
                  "Zollinger-Ellison syndrome"],
         treatment="Bismuth quadruple therapy",
         wrong_tx=["Proton pump inhibitor alone", "Sucralfate alone", "Surgical vagotomy"],
         why_dx="Epigastric pain relieved by food, a duodenal ulcer on endoscopy and a positive urea breath test "
                "without NSAID use point to an H. pylori-associated duodenal ulcer.",
         why_tx="Eradication of H. pylori heals the ulcer and prevents recurrence; bismuth quadruple therapy (a proton "
                "pump inhibitor, bismuth, tetracycline and metronidazole) is the preferred first-line regimen."),
    dict(dx="Clostridioides difficile infection", system="gastroenterology", sex="any", age=(40, 85),
         settings=["clinic", "emergency department"],
         complaint="6 watery stools daily for 4 days",
         findings=[("{He} finished a course of clindamycin for a dental abscess 1 week ago.",
                    "{He} was treated with ceftriaxone for pneumonia 2 weeks ago."),
                   "{He} has crampy lower abdominal pain.",
                   "The leukocyte count is 13,500/mm3.",
                   "A stool test for toxigenic C. diff is positive.",
                   "Serum creatinine is within the reference range."],
         dx_alts=["Viral gastroenteritis", "Ulcerative colitis", "Irritable bowel syndrome",
                  "Microscopic colitis"],
         treatment="Oral vancomycin",
         wrong_tx=["Intravenous vancomycin", "Loperamide", "Oral ciprofloxacin"],
         why_dx="New watery diarrhea after antibiotics with leukocytosis and a positive toxin test is C. difficile "
                "infection.",
         why_tx="Oral vancomycin (or fidaxomicin) is first-line; intravenous vancomycin does not reach the colon and "
                "antimotility drugs can precipitate toxic megacolon."),
    dict(dx="Acute appendicitis", key=1, system="gastroenterology", sex="any", age=(12, 40),
         settings=["emergency department"],
         complaint="abdominal pain that began around the umbilicus and moved to the right lower quadrant",
         findings=["{He} has had no appetite since yesterday.",
                   "There is tenderness with guarding at McBurney point.",
                   "Pain in the right lower quadrant increases when the left lower quadrant is pressed.",
                   ("Temperature is 38.1°C (100.6°F).", "Temperature is 37.9°C (100.2°F)."),
                   "CT of the abdomen shows a dilated appendix with periappendiceal fat stranding."],
         dx_alts=["Mesenteric adenitis", "Crohn disease", "Acute gastroenteritis", "Meckel diverticulitis"],
         treatment="Laparoscopic appendectomy",
         wrong_tx=["Colonoscopy", "Oral proton pump inhibitor", "Laparoscopic cholecystectomy"],
         why_dx="Periumbilical pain migrating to McBurney point with anorexia, fever and Rovsing sign, confirmed by "
                "CT, is acute appendicitis.",
         why_tx="Appendectomy is the standard treatment of uncomplicated acute appendicitis."),
    # ---------------------------------------------------------------- nephrology and urology
    dict(dx="Acute uncomplicated cystitis", key=2, system="nephrology", sex="F", age=(18, 45),
         settings=["clinic", "physician's office"],
         complaint="burning on urination and urinary frequency for 2 days",
         findings=["She has suprapubic tenderness.",
                   "She has no fever and no flank pain.",
                   "Urinalysis is positive for leukocyte esterase and nitrites.",
                   "A urine pregnancy test is negative.",
                   "She has no vaginal discharge."],
         dx_alts=["Acute pyelonephritis", "Urethritis due to Chlamydia trachomatis", "Vulvovaginal candidiasis",
                  "Interstitial cystitis"],
         treatment="Oral nitrofurantoin for 5 days",
         wrong_tx=["Oral fluconazole", "Intravenous ceftriaxone", "Oral ciprofloxacin for 14 days"],
         why_dx="Dysuria and frequency with suprapubic tenderness, a positive nitrite test and no fever or flank pain "
                "in a non-pregnant woman is acute uncomplicated cystitis.",
         why_tx="Nitrofurantoin for 5 days is first-line; fluoroquinolones are reserved for other infections and "
                "parenteral therapy is not needed."),
    dict(dx="Acute pyelonephritis", key=1, system="nephrology", sex="F", age=(18, 45),
         settings=["emergency department", "clinic"],
         complaint="fever, chills and right flank pain for 2 days",
         findings=[("Temperature is 39.1°C (102.4°F).", "Temperature is 38.9°C (102°F)."),
                   "There is right costovertebral angle tenderness.",
                   "She has nausea but can drink fluids.",
                   "Urinalysis shows pyuria and white blood cell casts.",
                   "She had burning on urination last week."],
         dx_alts=["Acute uncomplicated cystitis", "Nephrolithiasis", "Acute appendicitis",
                  "Pelvic inflammatory disease"],
         treatment="Oral ciprofloxacin",
         wrong_tx=["Oral nitrofurantoin", "Oral fosfomycin single dose", "Oral fluconazole"],
         why_dx="Fever, flank pain, costovertebral angle tenderness and white cell casts are acute pyelonephritis.",
         why_tx="A non-pregnant patient who can take oral fluids can be treated as an outpatient with a "
                "fluoroquinolone; nitrofurantoin and fosfomycin do not reach adequate kidney tissue levels.",
         factors=[dict(text="She is 24 weeks pregnant.",
                       treatment="Hospital admission for intravenous ceftriaxone", wrong=["Oral doxycycline"],
                       why="Pyelonephritis in pregnancy is treated in hospital with a parenteral beta-lactam such as "
                           "ceftriaxone; fluoroquinolones and tetracyclines are avoided in pregnancy.")]),
    dict(dx="Ureteral stone", key=2, system="nephrology", sex="any", age=(25, 60),
         settings=["emergency department"],
         complaint="severe colicky left flank pain radiating to the groin",
         findings=["{He} cannot lie still on the examination table.",
                   "Urinalysis shows 20-30 red blood cells per high-power field.",
                   "Noncontrast CT shows a 5-mm calculus in the distal left ureter with mild hydronephrosis.",
                   "Temperature is 37.0°C (98.6°F).",
                   "Serum creatinine is within the reference range."],
         dx_alts=["Acute pyelonephritis", "Acute appendicitis", "Abdominal aortic aneurysm rupture",
                  "Testicular torsion"],
         treatment="An oral nonsteroidal anti-inflammatory drug and tamsulosin",
         wrong_tx=["Emergency percutaneous nephrolithotomy", "Intravenous ceftriaxone", "Oral hydrochlorothiazide "
                                                                                         "alone"],
         why_dx="Colicky flank pain radiating to the groin with hematuria and a stone on noncontrast CT is a ureteral "
                "stone.",
         why_tx="An uncomplicated distal stone under 10 mm without infection is managed with analgesia and medical "
                "expulsive therapy with tamsulosin."),
    dict(dx="Hyperkalemia", key=1, system="nephrology", sex="any", age=(45, 80),
         settings=["emergency department"],
         complaint="generalized muscle weakness after missing 2 dialysis sessions",
         findings=["{He} has end-stage kidney disease treated with hemodialysis.",
                   "Serum potassium is 7.2 mEq/L.",
                   "An ECG shows peaked T waves and a widened QRS complex.",
                   "Pulse is 52/min."],
         dx_alts=["Hypokalemia", "Hypercalcemia", "Hypermagnesemia", "Acute inferior myocardial infarction"],
         treatment="Intravenous calcium gluconate",
         wrong_tx=["Intravenous potassium chloride", "Oral sodium polystyrene sulfonate alone", "Intravenous "
                                                                                               "digoxin"],
         why_dx="Weakness, bradycardia, peaked T waves and a wide QRS with a potassium of 7.2 mEq/L after missed "
                "dialysis is severe hyperkalemia.",
         why_tx="With ECG changes the first step is intravenous calcium to stabilize the cardiac membrane, followed by "
                "insulin with glucose and urgent dialysis."),
    dict(dx="Minimal change disease", key=1, system="nephrology", sex="any", age=(2, 7),
         settings=["clinic"],
         complaint="swelling around the eyes for 1 week",
         findings=["There is pitting edema of both ankles.",
                   "Urinalysis shows 4+ protein and no blood.",
                   "Serum albumin is 1.9 g/dL and serum cholesterol is elevated.",
                   "Blood pressure is normal for age and serum complement levels are normal.",
                   "{He} had an upper respiratory infection 2 weeks ago."],
         dx_alts=["Poststreptococcal glomerulonephritis", "Focal segmental glomerulosclerosis",
                  "IgA nephropathy", "Membranous nephropathy"],
         treatment="Oral prednisone",
         wrong_tx=["Oral cyclophosphamide", "Kidney biopsy before any treatment", "Intravenous albumin alone"],
         why_dx="A young child with nephrotic-range proteinuria, hypoalbuminemia, hyperlipidemia and edema, but no "
                "hematuria, hypertension or low complement, most likely has minimal change disease.",
         why_tx="Minimal change disease responds to corticosteroids, so children are treated with prednisone "
                "without a biopsy; biopsy is kept for steroid resistance."),
    # ---------------------------------------------------------------- endocrinology
    dict(dx="Diabetic ketoacidosis", system="endocrinology", sex="any", age=(14, 35),
         settings=["emergency department"],
         complaint="vomiting and abdominal pain for 1 day after a week of thirst and frequent urination",
         findings=["{He} has type 1 diabetes mellitus and ran out of insulin 3 days ago.",
                   "{He} is breathing deeply and rapidly.",
                   "Serum glucose is 520 mg/dL.",
                   "Arterial pH is 7.14 and the anion gap is 26 mEq/L.",
                   "Serum beta-hydroxybutyrate is markedly elevated.",
                   "Serum potassium is 5.1 mEq/L."],
         dx_alts=["Hyperosmolar hyperglycemic state", "Alcoholic ketoacidosis", "Acute pancreatitis",
                  "Lactic acidosis"],
         treatment="Intravenous isotonic saline and an intravenous insulin infusion",
         wrong_tx=["Subcutaneous insulin glargine alone", "Intravenous sodium bicarbonate", "Oral metformin"],
         why_dx="Hyperglycemia with a high anion gap metabolic acidosis and ketonemia in a patient with type 1 "
                "diabetes off insulin is diabetic ketoacidosis.",
         why_tx="Treatment is fluid resuscitation with isotonic saline and a continuous intravenous insulin infusion "
                "once potassium is at least 3.3 mEq/L, with potassium replacement as needed.",
         factors=[dict(text="Serum potassium is 2.9 mEq/L.",
                       treatment="Intravenous fluids with potassium replacement before starting insulin",
                       wrong=["Intravenous calcium gluconate"],
                       why="Insulin drives potassium into cells; when potassium is below 3.3 mEq/L it must be "
                           "replaced before the insulin infusion is started to avoid fatal arrhythmias.")]),
    dict(dx="Graves disease", system="endocrinology", sex="F", age=(20, 45), phrase="Graves disease",
         settings=["clinic", "physician's office"],
         complaint="weight loss, palpitations and heat intolerance for 3 months",
         findings=["There is a diffusely enlarged, nontender thyroid gland with a bruit.",
                   "Both eyes protrude and the upper lids retract.",
                   "She has a fine tremor of the outstretched hands.",
                   "Serum TSH is suppressed and free thyroxine is elevated.",
                   "Pulse is 112/min."],
         dx_alts=["Toxic multinodular goiter", "Subacute granulomatous thyroiditis", "Toxic adenoma",
                  "Painless thyroiditis"],
         treatment="Methimazole",
         wrong_tx=["Propylthiouracil", "Levothyroxine", "Potassium iodide alone"],
         tx_question="Which of the following is the most appropriate medication to control her hyperthyroidism?",
         why_dx="Hyperthyroidism with a diffuse goiter with a bruit and ophthalmopathy is Graves disease.",
         why_tx="Methimazole is the antithyroid drug of choice; propylthiouracil carries a higher risk of severe "
                "liver injury and is reserved for the first trimester of pregnancy and thyroid storm.",
         factors=[dict(text="She is 8 weeks pregnant.", treatment="Propylthiouracil",
                       wrong=["Radioactive iodine ablation"],
                       why="In the first trimester propylthiouracil is preferred because methimazole is "
                           "teratogenic; radioactive iodine is contraindicated in pregnancy.")]),
    dict(dx="Adrenal crisis from primary adrenal insufficiency", key=1, system="endocrinology", sex="any", age=(25, 60),
         settings=["emergency department"],
         complaint="dizziness and vomiting for 2 days after a stomach flu",
         findings=["Blood pressure is 78/46 mm Hg.",
                   "The skin creases of the palms and the gums are darkly pigmented.",
                   "Serum sodium is 126 mEq/L and potassium is 5.9 mEq/L.",
                   "{He} has had fatigue, weight loss and salt craving for months.",
                   "Serum glucose is 62 mg/dL."],
         dx_alts=["Septic shock", "Syndrome of inappropriate antidiuretic hormone secretion", "Hypothyroidism",
                  "Diabetic ketoacidosis"],
         treatment="Intravenous hydrocortisone and isotonic saline",
         wrong_tx=["Oral levothyroxine", "Intravenous insulin infusion", "Oral spironolactone"],
         why_dx="Hypotension, hyponatremia, hyperkalemia, hypoglycemia and hyperpigmentation after a stressor are an "
                "adrenal crisis in primary adrenal insufficiency.",
         why_tx="Adrenal crisis is treated at once with high-dose intravenous hydrocortisone and fluid resuscitation, "
                "without waiting for confirmatory tests."),
    dict(dx="Hashimoto thyroiditis with hypothyroidism", key=3, system="endocrinology", sex="F", age=(30, 65),
         phrase="Hashimoto thyroiditis with hypothyroidism",
         settings=["clinic", "physician's office"],
         complaint="fatigue, cold intolerance and a 6-kg weight gain over 6 months",
         findings=["She has constipation and dry skin.",
                   "The ankle reflexes show delayed relaxation.",
                   "The thyroid gland is firm and diffusely enlarged but not tender.",
                   "Serum TSH is 24 μU/mL and free thyroxine is low.",
                   "Antithyroid peroxidase antibodies are positive."],
         dx_alts=["Major depressive disorder", "Subacute granulomatous thyroiditis", "Graves disease",
                  "Central hypothyroidism"],
         treatment="Levothyroxine",
         wrong_tx=["Methimazole", "Liothyronine alone", "Radioactive iodine ablation"],
         why_dx="Symptoms of hypothyroidism with a firm goiter, a high TSH, a low free thyroxine and anti-TPO "
                "antibodies are Hashimoto thyroiditis.",
         why_tx="Levothyroxine replacement is the standard treatment; liothyronine alone causes fluctuating levels."),
    dict(dx="Primary hyperparathyroidism", system="endocrinology", sex="any", age=(45, 75),
         settings=["clinic"],
         complaint="2 kidney stones in the past year and vague abdominal discomfort",
         findings=["Serum calcium is 11.8 mg/dL.",
                   "Serum parathyroid hormone is elevated.",
                   "Serum phosphate is low.",
                   "Bone densitometry shows osteoporosis of the distal radius.",
                   "{He} takes no medications."],
         dx_alts=["Hypercalcemia of malignancy", "Familial hypocalciuric hypercalcemia", "Vitamin D intoxication",
                  "Sarcoidosis"],
         treatment="Parathyroidectomy",
         wrong_tx=["Hydrochlorothiazide", "Oral calcium and vitamin D supplements", "Observation only"],
         why_dx="Hypercalcemia with an inappropriately high PTH and low phosphate is primary hyperparathyroidism.",
         why_tx="Symptomatic primary hyperparathyroidism (kidney stones, osteoporosis) is treated with "
                "parathyroidectomy; thiazides raise serum calcium further."),
    # ---------------------------------------------------------------- infectious disease
    dict(dx="Streptococcal pharyngitis", system="infectious_disease", sex="any", age=(8, 30),
         settings=["clinic", "urgent care center"],
         complaint="a sore throat and fever for 2 days",
         findings=["The tonsils are swollen with white exudates.",
                   "The anterior cervical lymph nodes are enlarged and tender.",
                   "{He} has no cough or runny nose.",
                   "A rapid group A strep antigen test is positive.",
                   ("Temperature is 38.7°C (101.7°F).", "Temperature is 38.5°C (101.3°F).")],
         dx_alts=["Infectious mononucleosis", "Viral pharyngitis", "Peritonsillar abscess", "Acute epiglottitis"],
         treatment="Oral amoxicillin",
         wrong_tx=["Oral ciprofloxacin", "Oral fluconazole", "Symptomatic treatment only"],
         why_dx="Fever, tonsillar exudates, tender anterior nodes and no cough, with a positive rapid antigen test, "
                "are group A streptococcal pharyngitis.",
         why_tx="Penicillin or amoxicillin is first-line for group A streptococcal pharyngitis and prevents "
                "rheumatic fever.",
         factors=[dict(text="{He} developed hives, lip swelling and wheezing after a dose of amoxicillin as a child.",
                       treatment="Oral azithromycin", wrong=["Oral cephalexin"],
                       why="With an anaphylactic penicillin allergy, a macrolide such as azithromycin (or "
                           "clindamycin) is used; cephalosporins are avoided after immediate-type reactions.")]),
    dict(dx="Lyme disease", system="infectious_disease", sex="any", age=(18, 65), phrase="early Lyme disease",
         settings=["clinic", "physician's office"],
         complaint="an expanding red rash on {his} thigh for 5 days",
         findings=["The rash is 9 cm across with central clearing.",
                   "{He} went hiking in the woods of New England 2 weeks ago.",
                   "{He} has fatigue, headache and muscle aches.",
                   "{He} recalls removing a small tick from {his} leg.",
                   "There is no joint swelling and the neurologic examination is normal."],
         dx_alts=["Cellulitis", "Tinea corporis", "Contact dermatitis", "Erythema multiforme"],
         treatment="Oral doxycycline",
         wrong_tx=["Oral fluconazole", "Topical clotrimazole", "Intravenous vancomycin"],
         why_dx="An expanding annular rash with central clearing after a tick exposure in an endemic area is "
                "erythema migrans of early Lyme disease.",
         why_tx="Early localized Lyme disease is treated with oral doxycycline; amoxicillin or cefuroxime are "
                "alternatives."),
    dict(dx="Bacterial meningitis", brought=True, system="infectious_disease", sex="any", age=(18, 45),
         settings=["emergency department"],
         complaint="fever, severe headache and confusion that began this morning",
         findings=["The neck is stiff and flexing it causes the knees to bend.",
                   ("Temperature is 39.4°C (102.9°F).", "Temperature is 39.6°C (103.3°F)."),
                   "Cerebrospinal fluid shows a neutrophil-predominant pleocytosis, a low glucose and a high "
                   "protein.",
                   "{He} has no focal neurologic deficits.",
                   "A Gram stain of the cerebrospinal fluid shows gram-positive diplococci."],
         dx_alts=["Viral meningitis", "Herpes simplex encephalitis", "Subarachnoid hemorrhage", "Brain abscess"],
         treatment="Intravenous ceftriaxone, vancomycin and dexamethasone",
         wrong_tx=["Intravenous acyclovir alone", "Oral amoxicillin", "Intravenous ceftriaxone alone"],
         why_dx="Fever, headache, neck stiffness and confusion with a neutrophilic, low-glucose cerebrospinal fluid "
                "are bacterial meningitis.",
         why_tx="Empiric therapy in adults under 50 is ceftriaxone plus vancomycin, with dexamethasone given before "
                "or with the first antibiotic dose.",
         factors=[dict(text="{He} takes prednisone for polymyalgia rheumatica.", age=(66, 80),
                       treatment="Intravenous ceftriaxone, vancomycin, ampicillin and dexamethasone",
                       wrong=["Intravenous ampicillin alone"],
                       why="Adults older than 50 or immunocompromised need ampicillin added to cover Listeria "
                           "monocytogenes.")]),
    dict(dx="Primary syphilis", system="infectious_disease", sex="any", age=(19, 45),
         settings=["clinic"],
         complaint="a sore on {his} genitals for 10 days",
         findings=["The ulcer is painless with a clean, indurated base.",
                   "There is nontender bilateral inguinal lymphadenopathy.",
                   "The rapid plasma reagin test is positive.",
                   "A treponemal antibody test is positive.",
                   "{He} had unprotected sex with a new partner 4 weeks ago."],
         dx_alts=["Genital herpes", "Chancroid", "Lymphogranuloma venereum", "Granuloma inguinale"],
         treatment="Intramuscular benzathine penicillin G",
         wrong_tx=["Oral acyclovir", "Intramuscular ceftriaxone plus oral azithromycin", "Oral metronidazole"],
         why_dx="A single painless indurated ulcer with nontender lymphadenopathy and positive nontreponemal and "
                "treponemal tests is primary syphilis.",
         why_tx="A single dose of intramuscular benzathine penicillin G is first-line for primary syphilis.",
         factors=[dict(text="She is 16 weeks pregnant and had hives after taking penicillin in the past.", sex="F",
                       treatment="Penicillin desensitization followed by benzathine penicillin G",
                       wrong=["Oral doxycycline"],
                       why="Penicillin is the only treatment that reliably prevents congenital syphilis, so "
                           "pregnant women with penicillin allergy are desensitized and then treated; doxycycline "
                           "is contraindicated in pregnancy.")]),
    dict(dx="Nonpurulent cellulitis", system="infectious_disease", sex="any", age=(30, 75),
         settings=["clinic", "urgent care center"],
         complaint="a red, warm and painful area on {his} left shin for 2 days",
         findings=["The area of erythema is 10 cm across with poorly defined borders.",
                   "There is no fluctuance or drainage.",
                   "{He} has tinea pedis between the toes of the left foot.",
                   ("Temperature is 37.9°C (100.2°F).", "Temperature is 38.0°C (100.4°F)."),
                   "Bedside ultrasound shows no abscess."],
         dx_alts=["Deep venous thrombosis", "Stasis dermatitis", "Necrotizing fasciitis", "Erysipeloid"],
         treatment="Oral cephalexin",
         wrong_tx=["Oral trimethoprim-sulfamethoxazole alone", "Incision and drainage", "Oral fluconazole"],
         why_dx="A spreading warm tender erythema without fluctuance or abscess, with a skin portal of entry, is "
                "nonpurulent cellulitis.",
         why_tx="Nonpurulent cellulitis is usually streptococcal and is treated with a beta-lactam such as "
                "cephalexin; trimethoprim-sulfamethoxazole alone does not reliably cover streptococci."),
    # ---------------------------------------------------------------- neurology
    dict(dx="Acute ischemic stroke", key=2, brought=True, system="neurology", sex="any", age=(55, 85),
         settings=["emergency department"],
         complaint="sudden weakness of the right arm and leg and difficulty speaking that began 90 minutes ago",
         findings=["There is a right facial droop and right hemiparesis.",
                   "{He} has expressive aphasia.",
                   "Noncontrast CT of the head shows no hemorrhage.",
                   "Fingerstick glucose is 118 mg/dL.",
                   "Blood pressure is 168/94 mm Hg.",
                   "{He} takes no anticoagulants."],
         dx_alts=["Intracerebral hemorrhage", "Todd paralysis", "Hypoglycemia", "Complex migraine"],
         treatment="Intravenous alteplase",
         wrong_tx=["Intravenous heparin infusion", "Emergency decompressive craniectomy",
                   "Aspirin with discharge home"],
         why_dx="Sudden focal deficits in a vascular territory with a CT that excludes hemorrhage and a normal "
                "glucose are an acute ischemic stroke.",
         why_tx="Intravenous thrombolysis with alteplase is indicated within 4.5 hours of onset when there is no "
                "contraindication.",
         factors=[dict(text="The symptoms began 10 hours ago; CT angiography shows occlusion of the proximal left "
                            "middle cerebral artery and perfusion imaging shows a small core with a large area of "
                            "salvageable tissue.",
                       treatment="Mechanical thrombectomy", wrong=["Intravenous nicardipine alone"],
                       why="Beyond the thrombolysis window, a large-vessel occlusion with salvageable tissue on "
                           "perfusion imaging is treated with thrombectomy up to 24 hours after onset.")]),
    dict(dx="Migraine with aura", system="neurology", sex="any", age=(18, 40),
         settings=["clinic", "emergency department"],
         complaint="a throbbing left-sided headache that began 3 hours ago",
         findings=["Flashing zigzag lines in {his} vision preceded the headache by 20 minutes.",
                   "{He} has nausea and finds light unbearable.",
                   "{He} has had similar headaches every few months since adolescence.",
                   "The neurologic examination is normal.",
                   "{His} mother has a history of similar headaches."],
         dx_alts=["Tension-type headache", "Cluster headache", "Subarachnoid hemorrhage", "Transient ischemic attack"],
         treatment="Oral sumatriptan",
         wrong_tx=["Oral oxycodone", "Oral propranolol", "High-flow oxygen"],
         tx_question="Which of the following is the most appropriate treatment for this headache?",
         why_dx="Recurrent unilateral throbbing headaches with nausea and photophobia, preceded by a visual aura and "
                "with a normal examination, are migraine with aura.",
         why_tx="A triptan (or an NSAID) treats a moderate to severe migraine attack; propranolol is for prevention, "
                "oxygen is for cluster headache and opioids are avoided.",
         factors=[dict(text="She is 30 weeks pregnant.", sex="F", treatment="Oral acetaminophen",
                       wrong=["Oral ergotamine"],
                       why="Acetaminophen is the first-line analgesic for migraine in pregnancy; NSAIDs are avoided "
                           "after 20 weeks and ergotamine is contraindicated.")]),
    dict(dx="Generalized convulsive status epilepticus", brought=True, system="neurology", sex="any", age=(18, 60),
         settings=["emergency department"],
         complaint="a tonic-clonic seizure of all four limbs that has lasted 8 minutes",
         findings=["{He} has epilepsy and missed {his} medication for 2 days.",
                   "{He} has not regained consciousness between jerking movements.",
                   "Fingerstick glucose is 104 mg/dL.",
                   "{He} has intravenous access and oxygen is being given by face mask."],
         dx_alts=["Psychogenic nonepileptic seizure", "Convulsive syncope", "Hypoglycemic seizure",
                  "Acute ischemic stroke"],
         treatment="Intravenous lorazepam",
         wrong_tx=["Oral levetiracetam", "Intravenous haloperidol", "Lumbar puncture before any treatment"],
         why_dx="A convulsive seizure lasting more than 5 minutes without recovery of consciousness is status "
                "epilepticus.",
         why_tx="An intravenous benzodiazepine such as lorazepam is the first-line treatment, followed by a second "
                "agent such as levetiracetam if seizures continue."),
    dict(dx="Myasthenia gravis", key=1, system="neurology", sex="any", age=(20, 70),
         settings=["clinic"],
         complaint="drooping eyelids and double vision that get worse toward evening",
         findings=["{He} tires while chewing food.",
                   "Sustained upward gaze for 60 seconds makes the ptosis worse.",
                   "Serum acetylcholine receptor antibodies are positive.",
                   "Pupillary responses and sensation are normal.",
                   "Deep tendon reflexes are normal."],
         dx_alts=["Lambert-Eaton myasthenic syndrome", "Amyotrophic lateral sclerosis", "Botulism",
                  "Multiple sclerosis"],
         treatment="Oral pyridostigmine",
         wrong_tx=["Oral carbidopa-levodopa", "Oral riluzole", "Intramuscular interferon beta"],
         why_dx="Fatigable ptosis, diplopia and bulbar weakness with normal pupils, sensation and reflexes and "
                "positive acetylcholine receptor antibodies are myasthenia gravis.",
         why_tx="An acetylcholinesterase inhibitor such as pyridostigmine is the first-line symptomatic "
                "treatment."),
    dict(dx="Parkinson disease", system="neurology", sex="any", age=(58, 82), phrase="Parkinson disease",
         settings=["clinic", "physician's office"],
         complaint="a tremor of the right hand for 1 year",
         findings=["The tremor is present at rest and lessens when {he} reaches for an object.",
                   "{His} movements are slow and {his} handwriting has become small.",
                   "There is cogwheel rigidity of the right arm.",
                   "{He} walks with short shuffling steps and reduced arm swing.",
                   "{He} takes no antipsychotic or antiemetic drugs."],
         dx_alts=["Essential tremor", "Drug-induced parkinsonism", "Normal pressure hydrocephalus",
                  "Progressive supranuclear palsy"],
         treatment="Oral carbidopa-levodopa",
         wrong_tx=["Oral haloperidol", "Oral pyridostigmine", "Oral riluzole"],
         why_dx="An asymmetric resting tremor with bradykinesia, cogwheel rigidity and a shuffling gait in an older "
                "adult not taking dopamine blockers is Parkinson disease.",
         why_tx="Carbidopa-levodopa is the most effective first-line treatment for motor symptoms that impair "
                "function."),
    dict(dx="Bell palsy", system="neurology", sex="any", age=(20, 65), phrase="Bell palsy",
         settings=["clinic", "emergency department"],
         complaint="weakness of the left side of {his} face that {he} noticed on waking",
         findings=["{He} cannot wrinkle the left side of {his} forehead or close {his} left eye.",
                   "The symptoms began 24 hours ago.",
                   "{He} has pain behind the left ear.",
                   "There is no limb weakness and speech is normal.",
                   "No vesicles are seen in the ear canal."],
         dx_alts=["Acute ischemic stroke", "Ramsay Hunt syndrome", "Lyme disease", "Parotid tumor"],
         treatment="Oral prednisone",
         wrong_tx=["Intravenous alteplase", "Oral carbamazepine", "Surgical facial nerve decompression"],
         why_dx="Acute weakness of the whole left face including the forehead, with no other deficits and no "
                "vesicles, is an idiopathic peripheral facial nerve palsy (Bell palsy).",
         why_tx="Oral corticosteroids started within 72 hours improve recovery from Bell palsy; forehead "
                "involvement excludes a central (stroke) cause."),
    # ---------------------------------------------------------------- hematology
    dict(dx="Iron deficiency anemia", key=3, system="hematology", sex="F", age=(22, 48),
         settings=["clinic", "physician's office"],
         complaint="fatigue and shortness of breath on exertion for 4 months",
         findings=["Her menstrual periods are heavy and last 8 days.",
                   "She craves ice and chews it throughout the day.",
                   "The conjunctivae are pale.",
                   "Hemoglobin is 9.2 g/dL with a mean corpuscular volume of 71 fL.",
                   "Serum ferritin is low."],
         dx_alts=["Beta-thalassemia minor", "Anemia of chronic disease", "Sideroblastic anemia",
                  "Vitamin B12 deficiency"],
         treatment="Oral ferrous sulfate",
         wrong_tx=["Intramuscular cyanocobalamin", "Oral folic acid alone", "Red blood cell transfusion"],
         why_dx="A microcytic anemia with a low ferritin, pica and heavy menstrual losses is iron deficiency anemia.",
         why_tx="Oral iron is first-line for stable iron deficiency anemia; transfusion is for instability or severe "
                "symptoms."),
    dict(dx="Pernicious anemia", key=2, system="hematology", sex="any", age=(50, 80),
         settings=["clinic"],
         complaint="tingling in both feet and unsteadiness for 3 months",
         findings=["Vibration sense and proprioception are decreased in both feet.",
                   "The tongue is smooth and red.",
                   "Hemoglobin is 9.8 g/dL with a mean corpuscular volume of 114 fL.",
                   "Serum vitamin B12 is low and methylmalonic acid is elevated.",
                   "Anti-intrinsic factor antibodies are positive."],
         dx_alts=["Folate deficiency", "Iron deficiency anemia", "Myelodysplastic syndrome",
                  "Alcohol-related macrocytosis"],
         treatment="Intramuscular cyanocobalamin",
         wrong_tx=["Oral folic acid alone", "Oral ferrous sulfate", "Red blood cell transfusion"],
         why_dx="Macrocytic anemia with a low B12, a high methylmalonic acid, dorsal column signs and "
                "anti-intrinsic factor antibodies is pernicious anemia.",
         why_tx="Parenteral vitamin B12 corrects the deficiency; folic acid alone can worsen the neurologic damage."),
    dict(dx="Heparin-induced thrombocytopenia", key=1, system="hematology", sex="any", age=(50, 82),
         settings=["hospital"],
         complaint="a swollen left leg on day 7 of a hospital stay for hip replacement",
         findings=["{He} has received subcutaneous unfractionated anticoagulant injections since admission.",
                   "The platelet count has fallen from 260,000/mm3 to 95,000/mm3.",
                   "Duplex ultrasound shows a new thrombus in the left femoral vein.",
                   "An anti-platelet factor 4 antibody test is positive.",
                   "{He} has no bleeding."],
         dx_alts=["Disseminated intravascular coagulation", "Immune thrombocytopenia",
                  "Thrombotic thrombocytopenic purpura", "Dilutional thrombocytopenia"],
         treatment="Stop heparin and start argatroban",
         wrong_tx=["Platelet transfusion", "Switch to enoxaparin", "Start warfarin immediately"],
         why_dx="A fall in platelets of more than 50% 5 to 10 days after starting heparin with a new thrombosis and "
                "positive PF4 antibodies is heparin-induced thrombocytopenia.",
         why_tx="All heparin is stopped and a non-heparin anticoagulant such as argatroban is started; "
                "low-molecular-weight heparin cross-reacts and warfarin alone can cause limb gangrene."),
    dict(dx="Thrombotic thrombocytopenic purpura", key=1, system="hematology", sex="any", age=(25, 55),
         settings=["emergency department"],
         complaint="confusion and bruising for 2 days",
         findings=["The platelet count is 18,000/mm3.",
                   "A peripheral blood smear shows many schistocytes.",
                   "Serum lactate dehydrogenase is elevated and haptoglobin is undetectable.",
                   ("Temperature is 38.2°C (100.8°F).", "Temperature is 38.0°C (100.4°F)."),
                   "ADAMTS13 activity is less than 5%."],
         dx_alts=["Immune thrombocytopenia", "Disseminated intravascular coagulation",
                  "Hemolytic uremic syndrome", "Heparin-induced thrombocytopenia"],
         treatment="Urgent plasma exchange",
         wrong_tx=["Platelet transfusion", "Intravenous heparin infusion", "Splenectomy"],
         why_dx="Microangiopathic hemolytic anemia with schistocytes, severe thrombocytopenia, neurologic symptoms "
                "and very low ADAMTS13 activity is thrombotic thrombocytopenic purpura.",
         why_tx="Plasma exchange (with glucocorticoids) is started urgently; platelet transfusion can worsen "
                "thrombosis."),
    dict(dx="Deep venous thrombosis", key=2, system="hematology", sex="any", age=(30, 75),
         settings=["clinic", "emergency department"],
         complaint="pain and swelling of the left calf for 3 days",
         findings=["The left calf circumference is 4 cm larger than the right.",
                   ("{He} was immobilized in a cast for an ankle fracture 2 weeks ago.",
                    "{He} returned from a long car journey 5 days ago."),
                   "Compression ultrasound shows a noncompressible left popliteal vein.",
                   "There is pitting edema of the left leg.",
                   "{He} has no chest pain or shortness of breath."],
         dx_alts=["Nonpurulent cellulitis", "Ruptured Baker cyst", "Superficial thrombophlebitis",
                  "Calf muscle strain"],
         treatment="Oral apixaban",
         wrong_tx=["Aspirin alone", "Inferior vena cava filter", "Observation with repeat ultrasound in 1 week"],
         why_dx="Unilateral calf swelling after immobilization with a noncompressible popliteal vein on ultrasound "
                "is a proximal deep venous thrombosis.",
         why_tx="A proximal DVT is treated with anticoagulation, a direct oral anticoagulant such as apixaban being "
                "preferred.",
         factors=[dict(text="She is 18 weeks pregnant.", sex="F",
                       treatment="Subcutaneous low-molecular-weight heparin", wrong=["Oral warfarin"],
                       why="In pregnancy low-molecular-weight heparin is the anticoagulant of choice; warfarin is "
                           "teratogenic and direct oral anticoagulants cross the placenta.")]),
    # ---------------------------------------------------------------- rheumatology
    dict(dx="Acute gout flare", system="rheumatology", sex="M", age=(40, 75),
         settings=["clinic", "urgent care center"],
         complaint="sudden severe pain in the right big toe that woke him from sleep",
         findings=["The first metatarsophalangeal joint is red, hot and swollen.",
                   "He drank heavily at a party the night before.",
                   "He started hydrochlorothiazide for hypertension 2 months ago.",
                   "Joint aspiration shows needle-shaped, negatively birefringent crystals.",
                   "A Gram stain of the joint fluid shows no organisms."],
         dx_alts=["Septic arthritis", "Calcium pyrophosphate deposition disease", "Nonpurulent cellulitis",
                  "Reactive arthritis"],
         treatment="Oral naproxen",
         wrong_tx=["Oral probenecid", "Intravenous ceftriaxone", "Oral hydroxychloroquine"],
         why_dx="Sudden monoarthritis of the first metatarsophalangeal joint with negatively birefringent "
                "needle-shaped crystals is an acute gout flare.",
         why_tx="An NSAID such as naproxen (or colchicine or a glucocorticoid) treats the flare; uricosuric drugs do "
                "not treat an acute attack.",
         factors=[dict(text="He has chronic kidney disease with an eGFR of 24 mL/min/1.73 m2 and had a bleeding "
                            "duodenal ulcer last year.",
                       treatment="Oral prednisone", wrong=["Oral indomethacin"],
                       why="NSAIDs are avoided with advanced kidney disease and prior ulcer bleeding; a short "
                           "course of oral glucocorticoid treats the flare safely.")]),
    dict(dx="Rheumatoid arthritis", key=1, system="rheumatology", sex="F", age=(30, 60),
         settings=["clinic", "physician's office"],
         complaint="painful swollen hands for 4 months",
         findings=["Morning stiffness lasts about 2 hours.",
                   "The metacarpophalangeal and proximal interphalangeal joints of both hands are swollen.",
                   "Anti-cyclic citrullinated peptide antibodies are positive.",
                   "The erythrocyte sedimentation rate is 48 mm/h.",
                   "The distal interphalangeal joints are spared."],
         dx_alts=["Osteoarthritis", "Psoriatic arthritis", "Systemic lupus erythematosus",
                  "Calcium pyrophosphate deposition disease"],
         treatment="Oral methotrexate",
         wrong_tx=["Oral allopurinol", "Long-term oral prednisone alone", "Oral colchicine"],
         why_dx="A symmetric inflammatory polyarthritis of the small hand joints with long morning stiffness and "
                "anti-CCP antibodies is rheumatoid arthritis.",
         why_tx="Methotrexate is the first-line disease-modifying drug; glucocorticoids alone do not prevent joint "
                "damage."),
    dict(dx="Giant cell arteritis", system="rheumatology", sex="any", age=(62, 85),
         settings=["clinic", "emergency department"],
         complaint="a new headache over {his} right temple for 2 weeks",
         findings=["{He} has pain in the jaw when chewing.",
                   "The right temporal artery is tender with a reduced pulse.",
                   "The erythrocyte sedimentation rate is 96 mm/h.",
                   "{He} had an episode of blurred vision in the right eye yesterday.",
                   "{He} has aching and stiffness of the shoulders in the morning."],
         dx_alts=["Migraine with aura", "Trigeminal neuralgia", "Temporomandibular joint disorder",
                  "Acute angle-closure glaucoma"],
         treatment="High-dose oral prednisone started immediately",
         wrong_tx=["Temporal artery biopsy before any treatment", "Oral sumatriptan", "Low-dose aspirin alone"],
         why_dx="A new temporal headache in an older adult with jaw claudication, a tender temporal artery, visual "
                "symptoms and a very high ESR is giant cell arteritis.",
         why_tx="High-dose glucocorticoids are started at once to prevent blindness; the biopsy can be done within "
                "the next 1 to 2 weeks."),
    dict(dx="Systemic lupus erythematosus", system="rheumatology", sex="F", age=(18, 40),
         settings=["clinic"],
         complaint="joint pain in her hands and wrists and a facial rash for 2 months",
         findings=["A red rash covers the cheeks and bridge of the nose but spares the nasolabial folds.",
                   "The rash gets worse after time in the sun.",
                   "She has painless ulcers on the hard palate.",
                   "Antinuclear antibodies are positive at a titer of 1:640.",
                   "Anti-double-stranded DNA antibodies are positive."],
         dx_alts=["Rheumatoid arthritis", "Dermatomyositis", "Rosacea", "Sjogren syndrome"],
         treatment="Oral hydroxychloroquine",
         wrong_tx=["Oral allopurinol", "Oral colchicine", "Oral isoniazid"],
         why_dx="A malar rash with photosensitivity, oral ulcers, arthralgia and positive ANA and anti-dsDNA "
                "antibodies are systemic lupus erythematosus.",
         why_tx="Hydroxychloroquine is recommended for every patient with SLE; it controls skin and joint disease "
                "and reduces flares."),
    dict(dx="Polymyalgia rheumatica", system="rheumatology", sex="any", age=(60, 85),
         settings=["clinic", "physician's office"],
         complaint="pain and stiffness of both shoulders and hips for 6 weeks",
         findings=["The stiffness is worst in the morning and lasts more than an hour.",
                   "{He} has trouble getting out of a chair and combing {his} hair.",
                   "Muscle strength is normal when tested.",
                   "The erythrocyte sedimentation rate is 62 mm/h.",
                   "Serum creatine kinase is within the reference range."],
         dx_alts=["Polymyositis", "Rheumatoid arthritis", "Hypothyroid myopathy", "Fibromyalgia"],
         treatment="Low-dose oral prednisone",
         wrong_tx=["Oral methotrexate alone", "Intravenous methylprednisolone pulses", "Oral allopurinol"],
         why_dx="Bilateral shoulder and hip girdle pain and stiffness in an older adult with normal strength, a "
                "normal CK and a raised ESR is polymyalgia rheumatica.",
         why_tx="Low-dose prednisone is first-line and gives a rapid response; pulse steroids are not needed."),
    # ---------------------------------------------------------------- emergency medicine and toxicology
    dict(dx="Anaphylaxis", system="emergency_medicine", sex="any", age=(10, 60),
         settings=["emergency department"],
         complaint="throat tightness and hives 15 minutes after eating a dessert containing peanuts",
         findings=["{His} lips and tongue are swollen.",
                   "Diffuse wheezes are heard over both lungs.",
                   "Blood pressure is 84/50 mm Hg.",
                   "There are raised red wheals over the trunk and arms.",
                   "{He} has a known peanut allergy."],
         dx_alts=["Hereditary angioedema", "Acute asthma exacerbation", "Vasovagal syncope",
                  "Scombroid poisoning"],
         treatment="Intramuscular epinephrine",
         wrong_tx=["Oral diphenhydramine alone", "Intravenous methylprednisolone alone", "Nebulized albuterol alone"],
         why_dx="Hives and angioedema with bronchospasm and hypotension minutes after an allergen exposure are "
                "anaphylaxis.",
         why_tx="Intramuscular epinephrine in the anterolateral thigh is first-line and must not be delayed; "
                "antihistamines and steroids are adjuncts.",
         factors=[dict(text="{He} takes atenolol for hypertension, and {his} blood pressure stays at 78/44 mm Hg "
                            "after two doses of intramuscular epinephrine and 2 L of intravenous saline.",
                       treatment="Intravenous glucagon",
                       question="Which of the following is the most appropriate next step in treatment?",
                       wrong=["Subcutaneous terbutaline"],
                       why="Beta-blockade blunts the response to epinephrine; glucagon raises cardiac cAMP without "
                           "beta receptors and is the rescue for anaphylaxis refractory to epinephrine in a patient "
                           "on a beta-blocker.")]),
    dict(dx="Opioid overdose", brought=True, key=1, system="emergency_medicine", sex="any", age=(18, 50),
         settings=["emergency department"],
         complaint="unresponsiveness after being found on a bathroom floor",
         findings=["Respirations are 5/min and shallow.",
                   "The pupils are pinpoint.",
                   "There are needle marks on both forearms.",
                   "Oxygen saturation is 84% on room air.",
                   "Fingerstick glucose is 96 mg/dL."],
         dx_alts=["Benzodiazepine overdose", "Hypoglycemia", "Pontine hemorrhage", "Alcohol intoxication"],
         treatment="Intravenous naloxone",
         wrong_tx=["Intravenous flumazenil", "Intravenous physostigmine", "Intravenous dextrose"],
         why_dx="Coma with respiratory depression, miosis and needle marks is opioid intoxication.",
         why_tx="Naloxone reverses opioid-induced respiratory depression while ventilation is supported; flumazenil "
                "is for benzodiazepines and can provoke seizures."),
    dict(dx="Alcohol withdrawal", system="emergency_medicine", sex="any", age=(30, 65),
         settings=["emergency department", "hospital"],
         complaint="shaking, sweating and anxiety that began 30 hours after {his} last drink",
         findings=["{He} drinks a pint of vodka daily.",
                   "A coarse tremor of the outstretched hands is present.",
                   "Pulse is 118/min and blood pressure is 158/96 mm Hg.",
                   "{He} is oriented but restless and sweaty.",
                   "Serum ethanol is undetectable."],
         dx_alts=["Hyperthyroidism", "Generalized anxiety disorder", "Sympathomimetic intoxication",
                  "Hypoglycemia"],
         treatment="Oral chlordiazepoxide",
         wrong_tx=["Intravenous haloperidol alone", "Oral disulfiram", "Oral naltrexone"],
         why_dx="Tremor, sweating, anxiety, tachycardia and hypertension beginning 6 to 48 hours after stopping "
                "heavy drinking are alcohol withdrawal.",
         why_tx="Benzodiazepines prevent progression to seizures and delirium tremens; a long-acting agent such as "
                "chlordiazepoxide is standard.",
         factors=[dict(text="{He} has decompensated cirrhosis with ascites and an INR of 2.1.",
                       treatment="Oral lorazepam", wrong=["Oral diazepam"],
                       why="With severe liver disease a benzodiazepine without active metabolites that is cleared by "
                           "glucuronidation, such as lorazepam, is preferred over long-acting agents.")]),
    dict(dx="Acetaminophen poisoning", system="emergency_medicine", sex="any", age=(16, 40),
         settings=["emergency department"],
         complaint="nausea after taking 40 tablets of an over-the-counter pain reliever 6 hours ago",
         findings=["The tablets were 500 mg paracetamol.",
                   "{He} vomited twice and has mild right upper quadrant discomfort.",
                   "The serum paracetamol concentration at 6 hours is above the treatment line of the nomogram.",
                   "Serum aminotransferases are within the reference range.",
                   "{He} is alert and oriented."],
         dx_alts=["Salicylate poisoning", "Acute viral hepatitis", "Iron poisoning", "Acute cholecystitis"],
         treatment="Intravenous N-acetylcysteine",
         wrong_tx=["Intravenous naloxone", "Intravenous fomepizole", "Oral sodium bicarbonate"],
         why_dx="A large acetaminophen ingestion with a 4-hour-plus level above the nomogram treatment line is "
                "acetaminophen poisoning at risk of liver failure.",
         why_tx="N-acetylcysteine replenishes glutathione and prevents hepatotoxicity; it is most effective within 8 "
                "hours of ingestion."),
    # ---------------------------------------------------------------- added with the held-out splits
    dict(dx="Hypertrophic cardiomyopathy", key=1, system="cardiology", sex="any", age=(16, 35),
         settings=["clinic", "physician's office"],
         complaint="lightheadedness and chest pain while playing basketball",
         findings=["A harsh systolic murmur is heard at the left lower sternal border.",
                   "The murmur gets louder with the Valsalva maneuver and softer with squatting.",
                   "{His} father died suddenly at the age of 38.",
                   "An ECG shows left ventricular hypertrophy with deep septal Q waves.",
                   "Echocardiography shows an interventricular septum 22 mm thick."],
         dx_alts=["Severe aortic stenosis", "Mitral valve prolapse", "Athlete's heart", "Vasovagal syncope"],
         treatment="Oral metoprolol",
         wrong_tx=["Oral furosemide", "Sublingual nitroglycerin", "Oral digoxin"],
         why_dx="A systolic murmur that rises with Valsalva and falls with squatting, septal hypertrophy and a "
                "family history of sudden death point to hypertrophic (obstructive) cardiomyopathy.",
         why_tx="A beta-blocker lengthens diastolic filling and lowers the outflow gradient; diuretics, nitrates and "
                "digoxin reduce preload or raise contractility and worsen the obstruction."),
    dict(dx="Obstructive sleep apnea", key=4, system="pulmonology", sex="any", age=(38, 66),
         settings=["clinic", "physician's office"],
         complaint="daytime sleepiness that makes {him} doze off at red lights",
         findings=["{His} partner reports loud snoring with pauses in breathing at night.",
                   "{He} wakes with a dry mouth and a morning headache.",
                   "Body mass index is 36 kg/m2 and neck circumference is 45 cm.",
                   "Blood pressure is 152/94 mm Hg.",
                   "Polysomnography shows 32 apneas and hypopneas per hour with persistent breathing effort."],
         dx_alts=["Narcolepsy", "Obesity hypoventilation syndrome", "Central sleep apnea",
                  "Hashimoto thyroiditis with hypothyroidism"],
         treatment="Continuous positive airway pressure",
         wrong_tx=["Oral zolpidem at bedtime", "Oral modafinil alone", "Nocturnal supplemental oxygen alone"],
         why_dx="Snoring with witnessed apneas, daytime sleepiness, obesity and an apnea-hypopnea index above 30 "
                "on polysomnography are severe obstructive sleep apnea.",
         why_tx="Continuous positive airway pressure splints the upper airway open and is first-line for "
                "moderate to severe obstructive sleep apnea; sedatives worsen it and oxygen alone does not treat "
                "the obstruction."),
    dict(dx="Active pulmonary tuberculosis", key=3, system="pulmonology", sex="any", age=(24, 60),
         settings=["clinic", "urgent care center"],
         complaint="a cough for 2 months with night sweats",
         findings=["{He} has lost 7 kg over 3 months.",
                   "{He} moved to the country from a region with a high TB burden a year ago.",
                   "A chest x-ray shows a cavitary lesion in the right upper lobe.",
                   "A sputum smear shows acid-fast bacilli.",
                   "{He} has had a few episodes of blood-streaked sputum."],
         dx_alts=["Lung cancer", "Sarcoidosis", "Lung abscess", "Community-acquired pneumonia"],
         treatment="Rifampin, isoniazid, pyrazinamide and ethambutol",
         wrong_tx=["Isoniazid alone for 9 months", "Oral azithromycin", "Oral levofloxacin alone"],
         why_dx="Months of cough, night sweats and weight loss with an upper-lobe cavity and acid-fast bacilli in "
                "the sputum are active pulmonary tuberculosis.",
         why_tx="Active tuberculosis is treated with four drugs (rifampin, isoniazid, pyrazinamide, ethambutol) for "
                "2 months, then two; a single drug is for latent infection and breeds resistance in active "
                "disease."),
    dict(dx="Acute esophageal variceal hemorrhage", key=1, brought=True, system="gastroenterology", sex="any",
         age=(40, 68), settings=["emergency department"],
         complaint="vomiting large amounts of bright red blood",
         findings=["{He} has alcohol-related cirrhosis.",
                   "There is tense ascites and spider angiomata on the chest.",
                   "Blood pressure is 92/58 mm Hg and pulse is 118/min.",
                   "The platelet count is 68,000/mm3.",
                   "The spleen tip is palpable."],
         dx_alts=["Mallory-Weiss tear", "Bleeding duodenal ulcer", "Boerhaave syndrome", "Gastric cancer"],
         treatment="Intravenous octreotide and urgent endoscopic band ligation",
         wrong_tx=["Oral propranolol alone", "Emergency surgical portocaval shunt",
                   "Oral proton pump inhibitor alone"],
         why_dx="Massive hematemesis in a patient with cirrhosis, ascites, splenomegaly and thrombocytopenia "
                "(portal hypertension) is bleeding esophageal varices until proven otherwise.",
         why_tx="A splanchnic vasoconstrictor (octreotide) with endoscopic band ligation within 12 hours, plus "
                "antibiotic prophylaxis, is first-line; beta-blockers prevent rebleeding later, not now."),
    dict(dx="Rhabdomyolysis", key=2, system="nephrology", sex="any", age=(20, 70),
         settings=["emergency department"],
         complaint="muscle pain and dark urine after a marathon in hot weather",
         findings=["{His} thighs and calves are tender and swollen.",
                   "Serum creatine kinase is 48,000 U/L.",
                   "Urine dipstick is strongly positive for blood, but microscopy shows no red blood cells.",
                   "Serum creatinine is 1.9 mg/dL.",
                   "Serum potassium is 5.3 mEq/L."],
         dx_alts=["Acute interstitial nephritis", "Post-streptococcal glomerulonephritis", "Prerenal azotemia",
                  "Acute intermittent porphyria"],
         treatment="Aggressive intravenous isotonic fluids",
         wrong_tx=["Fluid restriction", "Oral sodium bicarbonate tablets alone", "Urgent hemodialysis"],
         why_dx="Muscle pain after extreme exertion with a very high creatine kinase and a heme-positive urine "
                "without red cells (myoglobinuria) is rhabdomyolysis with acute kidney injury.",
         why_tx="Early, generous isotonic fluid keeps urine flowing and prevents pigment nephropathy; dialysis is "
                "for refractory hyperkalemia, acidosis or overload."),
    dict(dx="Sulfonylurea-induced hypoglycemia", key=2, brought=True, system="endocrinology", sex="any",
         age=(62, 88), settings=["emergency department"],
         complaint="confusion and sweating found by a relative in the afternoon",
         findings=["{He} takes glipizide for type 2 diabetes.",
                   "{He} has chronic kidney disease and ate little for 2 days.",
                   "Fingerstick glucose is 38 mg/dL.",
                   "{He} is tremulous and tachycardic.",
                   "There is no focal neurologic deficit."],
         dx_alts=["Acute ischemic stroke", "Hyperosmolar hyperglycemic state", "Alcohol intoxication",
                  "Hypothyroidism"],
         treatment="Intravenous dextrose",
         wrong_tx=["Subcutaneous insulin lispro", "Intravenous isotonic saline alone", "Oral metformin"],
         why_dx="Neuroglycopenic and adrenergic symptoms with a glucose of 38 mg/dL in a patient on a "
                "sulfonylurea with reduced kidney clearance and poor intake is sulfonylurea-induced hypoglycemia.",
         why_tx="A confused patient cannot take sugar by mouth, so intravenous dextrose comes first; "
                "sulfonylurea hypoglycemia recurs, so glucose is then monitored for at least 24 hours."),
    dict(dx="Herpes zoster", key=0, system="infectious_disease", sex="any", age=(60, 85),
         settings=["clinic", "physician's office"],
         complaint="a painful rash on the right side of {his} chest",
         findings=["Grouped vesicles on a red base follow a band on the right side of the chest and stop at the "
                   "midline.",
                   "Burning pain in the same area began 3 days before the rash.",
                   "{He} had chickenpox as a child.",
                   "{He} has not received the shingles vaccine.",
                   "The rash appeared 2 days ago."],
         dx_alts=["Contact dermatitis", "Impetigo", "Dermatitis herpetiformis", "Nonpurulent cellulitis"],
         treatment="Oral valacyclovir",
         wrong_tx=["Topical mupirocin", "Oral fluconazole", "Topical hydrocortisone"],
         why_dx="A painful vesicular rash confined to one dermatome that does not cross the midline, preceded by "
                "burning pain, is herpes zoster.",
         why_tx="An oral antiviral started within 72 hours of the rash speeds healing and shortens acute pain in "
                "older adults; antibiotics, antifungals and steroid creams do not treat the virus."),
    dict(dx="Guillain-Barré syndrome", key=1, system="neurology", sex="any", age=(20, 70),
         settings=["emergency department"],
         complaint="weakness in both legs that has climbed to {his} hips over 4 days",
         findings=["{He} had diarrhea 2 weeks ago.",
                   "Deep tendon reflexes are absent in both legs and reduced in the arms.",
                   "{He} feels tingling in both feet.",
                   "Cerebrospinal fluid protein is 180 mg/dL with 2 white cells/mm3.",
                   "Forced vital capacity is 2.6 L and falling."],
         dx_alts=["Myasthenia gravis", "Transverse myelitis", "Botulism", "Hypokalemic periodic paralysis"],
         treatment="Intravenous immunoglobulin",
         wrong_tx=["Intravenous methylprednisolone", "Oral pyridostigmine", "Oral gabapentin alone"],
         why_dx="Ascending symmetric weakness with areflexia after a diarrheal illness and a high CSF protein with "
                "a normal cell count (albuminocytologic dissociation) is Guillain-Barré syndrome.",
         why_tx="Intravenous immunoglobulin (or plasma exchange) hastens recovery; corticosteroids do not help, "
                "and vital capacity must be watched for respiratory failure."),
    dict(dx="Sickle cell vaso-occlusive crisis", key=0, system="hematology", sex="any", age=(16, 35),
         settings=["emergency department"],
         complaint="severe pain in {his} lower back and both thighs that began this morning",
         findings=["{He} has hemoglobin SS disease with similar episodes in the past.",
                   "The pain started after a cold, wet day outdoors.",
                   "Hemoglobin is 8.2 g/dL, near {his} baseline, with a high reticulocyte count.",
                   "Temperature is 37.2°C (99°F) and the chest x-ray is clear.",
                   "Oxygen saturation is 97% on room air."],
         dx_alts=["Acute osteomyelitis", "Acute chest syndrome", "Aplastic crisis", "Splenic sequestration crisis"],
         treatment="Intravenous opioid analgesia and intravenous fluids",
         wrong_tx=["Exchange transfusion", "Oral hydroxyurea alone", "Intravenous ceftriaxone alone"],
         why_dx="Acute bone pain in a patient with HbSS and a typical trigger, without fever, hypoxia, a new "
                "infiltrate or a fall in hemoglobin, is an uncomplicated vaso-occlusive crisis.",
         why_tx="Prompt opioid analgesia with hydration is first-line for a pain crisis; exchange transfusion is "
                "for stroke or severe acute chest syndrome, and hydroxyurea prevents crises over months."),
    dict(dx="Septic arthritis", key=2, system="rheumatology", sex="any", age=(25, 80),
         settings=["emergency department"],
         complaint="a hot, swollen and painful right knee for 1 day",
         findings=["Temperature is 38.9°C (102°F).",
                   "{He} cannot bend the knee because of pain.",
                   "Synovial fluid has 85,000 white cells/mm3, 92% neutrophils, and no crystals.",
                   "Gram stain of the synovial fluid shows gram-positive cocci in clusters.",
                   "{He} had a knee steroid injection 3 weeks ago."],
         dx_alts=["Acute gout flare", "Calcium pyrophosphate deposition disease", "Reactive arthritis",
                  "Lyme arthritis"],
         treatment="Joint drainage and intravenous vancomycin",
         wrong_tx=["Oral naproxen alone", "Intra-articular corticosteroid injection", "Oral colchicine"],
         why_dx="An acute monoarthritis with fever, a synovial count above 50,000 with neutrophils, no crystals and "
                "gram-positive cocci is septic arthritis (Staphylococcus aureus).",
         why_tx="Septic arthritis needs drainage of the joint and intravenous antibiotics covering "
                "Staphylococcus aureus (vancomycin for gram-positive cocci until sensitivities return); steroids "
                "into an infected joint are harmful."),
    dict(dx="Ankylosing spondylitis", key=3, system="rheumatology", sex="M", age=(20, 35),
         settings=["clinic", "physician's office"],
         complaint="low back pain and stiffness for 8 months",
         findings=["The pain is worse after rest and improves with exercise.",
                   "Morning stiffness lasts more than an hour.",
                   "Forward bending of the lumbar spine is reduced (positive Schober test).",
                   "Pelvic x-rays show bilateral sacroiliitis.",
                   "HLA-B27 is positive."],
         dx_alts=["Lumbar disc herniation", "Mechanical low back pain", "Diffuse idiopathic skeletal hyperostosis",
                  "Reactive arthritis"],
         treatment="Daily oral naproxen and physical therapy",
         wrong_tx=["Oral methotrexate", "Lumbar spine surgery", "Bed rest for 2 weeks"],
         why_dx="Inflammatory back pain in a young man (better with exercise, worse with rest, long morning "
                "stiffness) with sacroiliitis and HLA-B27 is ankylosing spondylitis.",
         why_tx="A full-dose NSAID with exercise-based physical therapy is first-line for axial spondyloarthritis; "
                "methotrexate does not help spinal disease, and TNF inhibitors follow NSAID failure."),
    dict(dx="Carbon monoxide poisoning", key=2, system="emergency_medicine", sex="any", age=(20, 60),
         settings=["emergency department"],
         complaint="a headache, nausea and dizziness that began in the morning",
         findings=["{His} two children at home have similar headaches.",
                   "The family has been heating the house with a gas space heater during a cold spell.",
                   "Carboxyhemoglobin is 28%.",
                   "Pulse oximetry reads 99% on room air.",
                   "The symptoms improve when {he} is outdoors."],
         dx_alts=["Cyanide poisoning", "Viral gastroenteritis", "Migraine with aura", "Methemoglobinemia"],
         treatment="100% oxygen by non-rebreather mask",
         wrong_tx=["Intravenous hydroxocobalamin", "Intravenous methylene blue", "Oral sumatriptan"],
         why_dx="Headache and nausea shared by a household using a fuel-burning heater, better outdoors, with a "
                "high carboxyhemoglobin despite a normal pulse oximetry reading is carbon monoxide poisoning.",
         why_tx="High-flow 100% oxygen shortens the half-life of carboxyhemoglobin from about 5 hours to about 1 "
                "and is first-line; hyperbaric oxygen is for the most severe cases."),
]

# The open-ended variant (clinical_reasoning_open) accepts the gold answer or one of these synonyms (matching
# rule in utils.py: every word of one accepted answer in the response's first line; route and connector words
# ignored). Written for the common short names and abbreviations, not for paraphrases.
ALIASES: dict[str, list[str]] = {
    "Acute pericarditis": ["pericarditis"],
    "Ibuprofen plus colchicine": ["NSAID and colchicine", "nonsteroidal anti-inflammatory drug and colchicine"],
    "Acute ST-elevation myocardial infarction": ["STEMI", "ST-elevation myocardial infarction",
                                                 "inferior myocardial infarction"],
    "Primary percutaneous coronary intervention": ["PCI", "percutaneous coronary intervention"],
    "Intravenous fibrinolytic therapy with tenecteplase": ["tenecteplase", "fibrinolysis", "fibrinolytic"],
    "Acute decompensated heart failure": ["decompensated heart failure", "heart failure exacerbation"],
    "Severe aortic stenosis": ["aortic stenosis"],
    "Aortic valve replacement": ["AVR", "TAVR", "TAVI"],
    "Community-acquired pneumonia": ["pneumonia", "CAP"],
    "Oral amoxicillin-clavulanate plus azithromycin": ["augmentin and azithromycin"],
    "Acute asthma exacerbation": ["asthma exacerbation", "asthma attack"],
    "Inhaled albuterol plus oral prednisone": ["salbutamol and prednisone", "albuterol and prednisolone"],
    "Pulmonary embolism": ["PE"],
    "Therapeutic anticoagulation with apixaban": ["apixaban"],
    "Systemic thrombolysis with alteplase": ["alteplase", "thrombolysis", "tPA"],
    "Immediate needle decompression": ["needle decompression", "needle thoracostomy"],
    "Chronic obstructive pulmonary disease exacerbation": ["COPD exacerbation"],
    "Inhaled bronchodilators, oral prednisone and an oral antibiotic": ["bronchodilator, prednisone and antibiotic"],
    "Intravenous lactated Ringer solution and analgesia": ["lactated Ringer", "intravenous fluids and analgesia",
                                                           "aggressive fluids and pain control"],
    "Intravenous antibiotics and early laparoscopic cholecystectomy": ["cholecystectomy"],
    "Helicobacter pylori-associated duodenal ulcer": ["duodenal ulcer", "peptic ulcer disease", "peptic ulcer"],
    "Bismuth quadruple therapy": ["quadruple therapy"],
    "Clostridioides difficile infection": ["C. difficile infection", "Clostridium difficile infection",
                                           "C. difficile colitis", "C diff"],
    "Acute appendicitis": ["appendicitis"],
    "Laparoscopic appendectomy": ["appendectomy"],
    "Acute uncomplicated cystitis": ["cystitis", "urinary tract infection", "UTI"],
    "Oral nitrofurantoin for 5 days": ["nitrofurantoin"],
    "Acute pyelonephritis": ["pyelonephritis"],
    "Hospital admission for intravenous ceftriaxone": ["ceftriaxone"],
    "Ureteral stone": ["kidney stone", "nephrolithiasis", "ureterolithiasis", "renal colic"],
    "An oral nonsteroidal anti-inflammatory drug and tamsulosin": ["NSAID and tamsulosin", "ketorolac and tamsulosin",
                                                                   "ibuprofen and tamsulosin"],
    "Intravenous calcium gluconate": ["calcium gluconate"],
    "Minimal change disease": ["minimal change nephropathy"],
    "Diabetic ketoacidosis": ["DKA"],
    "Intravenous isotonic saline and an intravenous insulin infusion": ["fluids and insulin infusion",
                                                                        "normal saline and insulin"],
    "Intravenous fluids with potassium replacement before starting insulin": ["potassium replacement"],
    "Graves disease": ["Graves' disease", "hyperthyroidism due to Graves"],
    "Propylthiouracil": ["PTU"],
    "Adrenal crisis from primary adrenal insufficiency": ["adrenal crisis", "Addisonian crisis"],
    "Intravenous hydrocortisone and isotonic saline": ["hydrocortisone"],
    "Hashimoto thyroiditis with hypothyroidism": ["Hashimoto thyroiditis", "hypothyroidism"],
    "Streptococcal pharyngitis": ["strep throat", "group A streptococcal pharyngitis"],
    "Lyme disease": ["Lyme", "erythema migrans"],
    "Bacterial meningitis": ["meningitis"],
    "Intravenous ceftriaxone, vancomycin and dexamethasone": ["ceftriaxone, vancomycin and dexamethasone"],
    "Primary syphilis": ["syphilis"],
    "Intramuscular benzathine penicillin G": ["benzathine penicillin", "penicillin G"],
    "Penicillin desensitization followed by benzathine penicillin G": ["penicillin desensitization"],
    "Nonpurulent cellulitis": ["cellulitis"],
    "Acute ischemic stroke": ["ischemic stroke", "stroke"],
    "Intravenous alteplase": ["tPA", "thrombolysis"],
    "Mechanical thrombectomy": ["thrombectomy"],
    "Migraine with aura": ["migraine"],
    "Generalized convulsive status epilepticus": ["status epilepticus"],
    "Parkinson disease": ["Parkinson's disease", "parkinsonism"],
    "Oral carbidopa-levodopa": ["levodopa"],
    "Bell palsy": ["Bell's palsy", "facial nerve palsy"],
    "Iron deficiency anemia": ["iron deficiency"],
    "Oral ferrous sulfate": ["ferrous sulfate", "iron supplementation"],
    "Pernicious anemia": ["vitamin B12 deficiency", "B12 deficiency"],
    "Intramuscular cyanocobalamin": ["vitamin B12 injections", "B12 injection", "cobalamin"],
    "Heparin-induced thrombocytopenia": ["heparin-induced thrombocytopenia type II"],
    "Thrombotic thrombocytopenic purpura": ["TTP"],
    "Urgent plasma exchange": ["plasma exchange", "plasmapheresis"],
    "Deep venous thrombosis": ["deep vein thrombosis", "DVT"],
    "Subcutaneous low-molecular-weight heparin": ["enoxaparin", "LMWH"],
    "Acute gout flare": ["gout", "acute gout", "gouty arthritis"],
    "Rheumatoid arthritis": ["RA"],
    "Giant cell arteritis": ["temporal arteritis"],
    "High-dose oral prednisone started immediately": ["high-dose prednisone", "high-dose glucocorticoids"],
    "Systemic lupus erythematosus": ["lupus", "SLE"],
    "Polymyalgia rheumatica": ["PMR"],
    "Low-dose oral prednisone": ["low-dose prednisone"],
    "Intramuscular epinephrine": ["adrenaline"],
    "Opioid overdose": ["opioid toxicity", "opioid intoxication", "heroin overdose"],
    "Intravenous naloxone": ["naloxone", "Narcan"],
    "Oral chlordiazepoxide": ["chlordiazepoxide", "benzodiazepine"],
    "Acetaminophen poisoning": ["acetaminophen overdose", "paracetamol overdose", "acetaminophen toxicity"],
    "Intravenous N-acetylcysteine": ["N-acetylcysteine", "acetylcysteine", "NAC"],
    "Hypertrophic cardiomyopathy": ["HCM", "hypertrophic obstructive cardiomyopathy", "HOCM"],
    "Oral metoprolol": ["beta-blocker", "metoprolol"],
    "Obstructive sleep apnea": ["OSA", "sleep apnea"],
    "Continuous positive airway pressure": ["CPAP"],
    "Active pulmonary tuberculosis": ["tuberculosis", "TB", "pulmonary tuberculosis"],
    "Rifampin, isoniazid, pyrazinamide and ethambutol": ["RIPE", "RIPE therapy", "four-drug antituberculous therapy"],
    "Acute esophageal variceal hemorrhage": ["variceal bleeding", "esophageal varices", "variceal hemorrhage"],
    "Intravenous octreotide and urgent endoscopic band ligation": ["octreotide and band ligation",
                                                                  "octreotide and endoscopic variceal ligation"],
    "Aggressive intravenous isotonic fluids": ["intravenous fluids", "IV fluids", "aggressive hydration",
                                               "normal saline"],
    "Sulfonylurea-induced hypoglycemia": ["hypoglycemia"],
    "Intravenous dextrose": ["dextrose", "D50"],
    "Herpes zoster": ["shingles", "zoster"],
    "Oral valacyclovir": ["valacyclovir", "acyclovir", "antiviral"],
    "Guillain-Barré syndrome": ["Guillain-Barre syndrome", "GBS", "Guillain-Barre"],
    "Intravenous immunoglobulin": ["IVIG", "immunoglobulin"],
    "Sickle cell vaso-occlusive crisis": ["vaso-occlusive crisis", "sickle cell crisis", "sickle cell pain crisis"],
    "Intravenous opioid analgesia and intravenous fluids": ["opioids and fluids", "morphine and fluids",
                                                            "analgesia and hydration"],
    "Septic arthritis": ["infectious arthritis", "bacterial arthritis"],
    "Joint drainage and intravenous vancomycin": ["drainage and vancomycin", "arthrocentesis and vancomycin",
                                                  "washout and vancomycin"],
    "Ankylosing spondylitis": ["axial spondyloarthritis"],
    "Daily oral naproxen and physical therapy": ["NSAID and physical therapy", "naproxen and exercise",
                                                 "NSAIDs and physical therapy"],
    "Carbon monoxide poisoning": ["CO poisoning", "carbon monoxide toxicity"],
    "100% oxygen by non-rebreather mask": ["100% oxygen", "high-flow oxygen"],
}

# Conditions held out of training: their questions (and answers) appear only in these splits.
HELD_OUT = {
    "validation": ["Acute decompensated heart failure", "Obstructive sleep apnea", "Acute appendicitis",
                   "Acute uncomplicated cystitis", "Hashimoto thyroiditis with hypothyroidism",
                   "Nonpurulent cellulitis",
                   "Migraine with aura", "Iron deficiency anemia", "Septic arthritis", "Opioid overdose"],
    "test": ["Acute pericarditis", "Severe aortic stenosis", "Tension pneumothorax",
             "Helicobacter pylori-associated duodenal ulcer", "Clostridioides difficile infection", "Ureteral stone",
             "Hyperkalemia", "Graves disease", "Primary hyperparathyroidism", "Lyme disease", "Primary syphilis",
             "Myasthenia gravis", "Parkinson disease", "Pernicious anemia", "Thrombotic thrombocytopenic purpura",
             "Rheumatoid arthritis", "Systemic lupus erythematosus", "Anaphylaxis", "Acetaminophen poisoning"],
}
MAX_HARD_SHARE = 1 / 3  # of treatment questions, lower when few of a split's conditions have patient factors


def split_of(cond: dict) -> str:
    return next((split for split, names in HELD_OUT.items() if cond["dx"] in names), "train")


SETTING_VERBS = {
    "emergency department": ["is brought to the emergency department because of", "comes to the emergency "
                                                                                  "department because of"],
    "urgent care center": ["comes to an urgent care center because of"],
    "clinic": ["comes to the clinic because of", "is evaluated in the clinic for"],
    "physician's office": ["comes to the physician's office because of", "visits {his} physician because of"],
    "hospital": ["is evaluated in the hospital for"],
}
DX_QUESTIONS = ["Which of the following is the most likely diagnosis?", "What is the most likely diagnosis?",
                "Which of the following best explains these findings?"]
TX_QUESTIONS = ["Which of the following is the most appropriate first-line treatment?",
                "Which of the following is the most appropriate initial treatment?"]
DIFFICULTY_BY_FINDINGS = {4: "easy", 3: "medium", 2: "hard"}


def _pronouns(sex: str) -> dict[str, str]:
    if sex == "M":
        return {"he": "he", "He": "He", "his": "his", "His": "His", "him": "him"}
    return {"he": "she", "He": "She", "his": "her", "His": "Her", "him": "her"}


def _person(age: int, sex: str) -> str:
    if age < 18:
        return "boy" if sex == "M" else "girl"
    return "man" if sex == "M" else "woman"


def _pick(rng: random.Random, item) -> str:
    return rng.choice(item) if isinstance(item, tuple) else item


def _phrase(cond: dict) -> str:
    return cond.get("phrase") or cond["dx"][0].lower() + cond["dx"][1:]


def _patient(rng: random.Random, cond: dict, factor: dict | None = None):
    sex = (factor or {}).get("sex") or cond["sex"]
    if sex == "any":
        sex = rng.choice("MF")
    low, high = (factor or {}).get("age") or cond["age"]
    age = rng.randint(low, high)
    return age, sex, _pronouns(sex)


def _opening(rng: random.Random, cond: dict, age: int, sex: str, pron: dict) -> str:
    setting = rng.choice(cond["settings"])
    if cond.get("brought") or age < 12:  # patients who cannot come in by themselves
        verb = f"is brought to the {setting} because of"
    else:
        verb = rng.choice(SETTING_VERBS[setting]).format(**pron)
    complaint = cond["complaint"].format(**pron)
    return f"A {age}-year-old {_person(age, sex)} {verb} {complaint}."


def _findings(rng: random.Random, cond: dict, k: int, pron: dict) -> list[str]:
    """k findings, always including the condition's key (most specific) finding, in table order."""
    key = cond.get("key", 0)
    others = [i for i in range(len(cond["findings"])) if i != key]
    chosen = sorted([key] + rng.sample(others, k - 1))
    return [_pick(rng, cond["findings"][i]).format(**pron) for i in chosen]


def _same_system(cond: dict, key: str) -> list[str]:
    return [c[key] for c in CONDITIONS if c["system"] == cond["system"] and c is not cond]


def _distractors(rng: random.Random, answer: str, preferred: list[str], pool: list[str], n: int = 3) -> list[str]:
    """n distinct wrong options: drawn from ``preferred`` (the curated look-alikes), topped up from ``pool``."""
    out: list[str] = []
    for candidates in (preferred, pool):
        for option in rng.sample(candidates, len(candidates)):
            if option != answer and option not in out and len(out) < n:
                out.append(option)
    assert len(out) == n, (answer, preferred, pool)
    return out


def diagnosis_question(rng: random.Random, cond: dict, k: int) -> dict:
    age, sex, pron = _patient(rng, cond)
    text = " ".join([_opening(rng, cond, age, sex, pron), *_findings(rng, cond, k, pron), rng.choice(DX_QUESTIONS)])
    wrong = _distractors(rng, cond["dx"], cond["dx_alts"], _same_system(cond, "dx"))
    return dict(question=text, answer=cond["dx"], wrong=wrong, question_type="diagnosis",
                difficulty=DIFFICULTY_BY_FINDINGS[k], rationale=cond["why_dx"])


def treatment_question(rng: random.Random, cond: dict, level: str) -> dict:
    factor = rng.choice(cond["factors"]) if level == "hard" else None
    age, sex, pron = _patient(rng, cond, factor)
    question = (factor or {}).get("question") or cond.get("tx_question") or rng.choice(TX_QUESTIONS)
    if level == "medium":  # the diagnosis must be inferred from the findings
        parts = [_opening(rng, cond, age, sex, pron), *_findings(rng, cond, 3, pron)]
    else:
        setting = rng.choice(cond["settings"])
        where = "in the hospital" if setting == "hospital" else f"at the {setting}"
        parts = [f"A {age}-year-old {_person(age, sex)} is diagnosed with {_phrase(cond)} {where}.",
                 *_findings(rng, cond, 2, pron)]
        if factor:
            parts.append(factor["text"].format(**pron))
    text = " ".join(parts + [question])
    if factor:
        answer = factor["treatment"]
        wrong = [cond["treatment"]] + _distractors(rng, answer, factor["wrong"] + cond["wrong_tx"], [], n=2)
        rationale = f"{factor['why']} (Without that factor: {cond['why_tx']})"
    else:
        answer = cond["treatment"]
        wrong = _distractors(rng, answer, cond["wrong_tx"], [])
        rationale = cond["why_tx"]
    if level == "medium":
        rationale = f"{cond['why_dx']} {rationale}"
    return dict(question=text, answer=answer, wrong=wrong, question_type="treatment", difficulty=level,
                rationale=rationale)


def _unmarked(option: str) -> str:
    """A wrong treatment without its exam-style "alone": the word was in 146 distractors and no answer, so a
    model could drop those options without reading the case."""
    return re.sub(r"\s+alone\b", "", option)


def _row(rng: random.Random, item: dict, gold: int, cond: dict) -> dict:
    wrong = [_unmarked(option) for option in item["wrong"]]
    assert len({o.lower() for o in [*wrong, item["answer"]]}) == 4, (item["answer"], wrong)
    rng.shuffle(wrong)
    choices = wrong[:gold] + [item["answer"]] + wrong[gold:]
    return {
        "question": item["question"],
        "options": dict(zip(LETTERS, choices)),
        "answer_idx": LETTERS[gold],
        "answer": item["answer"],
        "answer_aliases": ALIASES.get(item["answer"], []),
        "condition": cond["dx"],
        "subject": cond["system"],
        "difficulty": item["difficulty"],
        "question_type": item["question_type"],
        "rationale": item["rationale"],
    }


GENERIC_WORDS = {"oral", "intravenous", "intramuscular", "subcutaneous", "topical", "inhaled", "therapy", "daily",
                 "dose", "high", "plus", "with", "and", "acute", "chronic", "emergency", "immediate", "urgent",
                 "disease", "syndrome", "infection", "course", "short", "long", "term", "primary", "first"}
POOL_DISTRACTORS = 2  # of the 3 wrong options, drawn from the split's other gold answers of the same type


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 3 and w not in GENERIC_WORDS}


_STOP = set("a an the of and or to in on with for by is are was which following most likely best what this these his "
            "her he she".split())


def _lead(question: str, options: list[str]) -> int:
    """How many more of the question's words the gold (options[0]) repeats than the best wrong option (negative: fewer).
    1.4 keeps it 0 where it can: 5 test conditions read "answer = the option the vignette names" (acc 0.37)."""
    words = [set(re.findall(r"[a-z0-9]+", o.lower())) - _STOP for o in options]
    asked = set(re.findall(r"[a-z0-9]+", question.lower()))
    shared = [len(w & asked) for w in words]
    return shared[0] - max(shared[1:])


def _length_rank(options: list[str], gold: int) -> int:
    """0 when the gold option is the longest, 3 when it is the shortest (ties: the gold counts as shorter)."""
    return sum(len(o) >= len(options[gold]) for i, o in enumerate(options) if i != gold)


def rebalance_options(rows: list[dict], rng: random.Random) -> None:
    """Re-pick each row's wrong options so that the options alone do not give the answer away.

    With only curated look-alikes, an answer string was gold wherever it appeared in its split and a wrong option
    never was: an option-only logistic regression scored 0.84 on train (grouped by question), and the longest
    option was gold in 42% of train items. Now 2 of the 3 wrong options are other gold answers of the split (same
    question type; diagnoses from the same organ system first, treatments only from other systems and sharing no
    content word with this condition's treatments, so none is a second right answer), the least used first; the
    third is a curated look-alike (for a patient-factor question, the usual first-line treatment). Among the
    candidate sets, the one sharing with the question as many words through a wrong option as through the gold,
    then putting the gold at its least used length rank so far, is chosen (1.4).
    The question, the gold letter and the gold answer are unchanged.
    """
    by_name = {c["dx"]: c for c in CONDITIONS}
    golds: dict[str, dict[str, int]] = {"diagnosis": {}, "treatment": {}}
    for row in rows:
        counts = golds[row["question_type"]]
        counts[row["answer"]] = counts.get(row["answer"], 0) + 1
    used: dict[str, int] = {}
    # gold length rank: the least used so far that this row can take (1.3's fixed shuffled targets could not always
    # be met, so the gold was the shortest option in only 17% of the items and "not the shortest" read the answer)
    rank_used = [0, 0, 0, 0]
    for row in rows:
        cond, answer, qtype = by_name[row["condition"]], row["answer"], row["question_type"]
        if qtype == "diagnosis":
            curated = [_unmarked(o) for o in cond["dx_alts"]]
            taken = set()
        else:
            own = [cond["treatment"], *(f["treatment"] for f in cond.get("factors", []))]
            taken = set().union(*(_content_words(t) for t in own + ALIASES.get(answer, [])))
            curated = ([cond["treatment"]] if row["difficulty"] == "hard"
                       else [_unmarked(o) for o in cond["wrong_tx"]])
        system = {c["dx"]: c["system"] for c in CONDITIONS}
        owner = {}  # the condition whose gold each pool answer is (treatments: the first with that answer)
        for other in rows:
            owner.setdefault(other["answer"], other["condition"])
        pool = []
        for option, n_gold in golds[qtype].items():
            other_system = system[owner[option]] != cond["system"]
            if option.lower() == answer.lower() or (qtype == "treatment" and (not other_system
                                                                               or _content_words(option) & taken)):
                continue
            pool.append((used.get(option, 0) / n_gold + (0.5 if other_system else 0) + rng.random() / 3, option))
        pool = [option for _, option in sorted(pool)[:6]]
        best = None
        for look_alike in curated:
            for i, first in enumerate(pool):
                for second in pool[i + 1:]:
                    wrong = [look_alike, first, second]
                    if len({o.lower() for o in [*wrong, answer]}) < 4:
                        continue
                    options = [answer, *wrong]
                    key = (abs(_lead(row["question"], options)), rank_used[_length_rank(options, 0)],
                           pool.index(first) + pool.index(second), rng.random())
                    if best is None or key < best[0]:
                        best = (key, wrong)
        assert best is not None, (row["condition"], qtype)
        wrong = best[1]
        rank_used[_length_rank([answer, *wrong], 0)] += 1
        for option in wrong[1:]:
            used[option] = used.get(option, 0) + 1
        rng.shuffle(wrong)
        gold = LETTERS.index(row["answer_idx"])
        row["options"] = dict(zip(LETTERS, wrong[:gold] + [answer] + wrong[gold:]))


def generate(seed: int = SEED, sizes: dict[str, int] | None = None) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    sizes = sizes or SIZES
    seen: set[str] = set()
    out: dict[str, list[dict]] = {}
    for split, n in sizes.items():
        pool = [c for c in CONDITIONS if split_of(c) == split]
        with_factors = [c for c in pool if c.get("factors")]
        hard_share = min(MAX_HARD_SHARE, len(with_factors) / len(pool))
        golds = [i % 4 for i in range(n)]
        rng.shuffle(golds)
        types = ["diagnosis"] * (n // 2) + ["treatment"] * (n - n // 2)
        rng.shuffle(types)
        order: list[dict] = []  # conditions are cycled in a shuffled order, separately per question type
        tx_order: list[dict] = []
        rows = []
        for gold, qtype in zip(golds, types):
            for _attempt in range(200):
                if qtype == "diagnosis":
                    if not order:
                        order = rng.sample(pool, len(pool))
                    cond = order.pop()
                    item = diagnosis_question(rng, cond, rng.choice([4, 3, 2]))
                else:
                    level = "hard" if rng.random() < hard_share else rng.choice(["easy", "medium"])
                    if level != "hard" and not tx_order:
                        tx_order = rng.sample(pool, len(pool))
                    cond = rng.choice(with_factors) if level == "hard" else tx_order.pop()
                    item = treatment_question(rng, cond, level)
                if item["question"] not in seen:
                    break
            else:  # pragma: no cover - the table is large enough
                raise RuntimeError("could not make a new question")
            seen.add(item["question"])
            rows.append(_row(rng, item, gold, cond))
        # its own stream, so that the questions and gold letters stay those of version 1.2
        rebalance_options(rows, random.Random(f"{seed}-options-{split}"))
        out[split] = rows
    return out


if __name__ == "__main__":
    from medbench.taskdata import write_jsonl_splits

    write_jsonl_splits(generate(), Path(__file__).resolve().parent / "data", ascii_only=False)
