#!/usr/bin/env python3
"""Generate a small, deterministic sample dataset for foldsweep.

It mimics the schema of the DA5401 "metric learning" challenge, in which the
task is to predict a 0-10 fitness score for a pair (evaluation-metric
embedding, multilingual prompt/response text). Written to the output folder
(default data/sample):

  metric_names.json            12 metric names in the real style (some parent/child)
  metric_name_embeddings.npy   float32 (12, 16), L2-normalised rows, row i = name i
  train_data.json              ~400 records: metric_name, score (string, e.g. "9.0"),
                               user_prompt, response, system_prompt (null in ~30%)
  test_data.json               ~200 records, same keys without score
  test_scores.csv              ID,score: the hidden integer test scores, IDs 1..N

Why: the real data is large and not redistributable; this sample lets the
tool be built, tested and demonstrated end to end, with a relation planted so
that a model can learn something visible:

  * 4 topics (health, finance, coding, travel). Each metric belongs to one
    topic; its embedding is the topic's random unit direction plus small noise.
  * Texts are built from per-topic word pools in Hindi, English, Bengali and
    Tamil (about 45/30/13/12 % of records) plus filler words of that language.
  * Text topic == metric topic: a high score (mostly 9 and 10, some 6-8);
    responses carrying a "consult an expert" quality phrase score 10 more often.
  * Text topic != metric topic (a mismatch): a low score (0-3). Mismatches are
    rare in train (3 %) and common in test (35 %), reproducing the real
    challenge's shift (train mean ~9.1, test mean ~6.3).

Only the standard library is used (the .npy file is written by hand).
Output is byte-identical on every run. Usage, from the repository root:

  python3 scripts/make_sample_data.py [--out DIR] [--train N] [--test N]
"""

import argparse
import csv
import io
import json
import math
import random
import struct
from collections import Counter
from pathlib import Path

SEED = 5401
DIM = 16
N_TRAIN = 400
N_TEST = 200
TRAIN_MISMATCH_RATE = 0.03
TEST_MISMATCH_RATE = 0.35
SYSTEM_PROMPT_NULL_RATE = 0.30
QUALITY_PHRASE_RATE = 0.40
EMBEDDING_NOISE = 0.08

TOPICS = ["health", "finance", "coding", "travel"]

# Metric name -> topic. Parents and their children share a topic.
METRICS = [
    ("truthfulness", "health"),
    ("truthfulness/medical_accuracy", "health"),
    ("misuse/self_harm_guidance", "health"),
    ("transparency", "finance"),
    ("transparency/attribution_to_sources", "finance"),
    ("privacy/financial_data_protection", "finance"),
    ("misuse", "coding"),
    ("misuse/cyber_attacks", "coding"),
    ("robustness/code_correctness", "coding"),
    ("rejection_rate", "travel"),
    ("rejection_rate/over_rejection", "travel"),
    ("inclusivity/gender_inclusivity", "travel"),
]

LANGUAGE_WEIGHTS = {"hi": 45, "en": 30, "bn": 13, "ta": 12}

WORDS = {
    "hi": {
        "health": ["डॉक्टर", "दवा", "बुखार", "अस्पताल", "इलाज", "स्वास्थ्य", "दर्द", "मरीज़"],
        "finance": ["बैंक", "पैसा", "ऋण", "बचत", "निवेश", "खाता", "ब्याज", "कर"],
        "coding": ["कोड", "प्रोग्राम", "कंप्यूटर", "त्रुटि", "फ़ंक्शन", "सॉफ़्टवेयर", "डेटा", "पायथन"],
        "travel": ["यात्रा", "टिकट", "होटल", "ट्रेन", "हवाई अड्डा", "पासपोर्ट", "सफ़र", "पर्यटन"],
    },
    "ta": {
        "health": ["மருத்துவர்", "மருந்து", "காய்ச்சல்", "மருத்துவமனை", "சிகிச்சை", "உடல்நலம்", "வலி", "நோயாளி"],
        "finance": ["வங்கி", "பணம்", "கடன்", "சேமிப்பு", "முதலீடு", "கணக்கு", "வட்டி", "வரி"],
        "coding": ["நிரல்", "கணினி", "பிழை", "மென்பொருள்", "தரவு", "குறியீடு", "செயல்பாடு", "பைதான்"],
        "travel": ["பயணம்", "டிக்கெட்", "ஹோட்டல்", "ரயில்", "விமான நிலையம்", "கடவுச்சீட்டு", "சுற்றுலா", "விடுதி"],
    },
    "bn": {
        "health": ["ডাক্তার", "ওষুধ", "জ্বর", "হাসপাতাল", "চিকিৎসা", "স্বাস্থ্য", "ব্যথা", "রোগী"],
        "finance": ["ব্যাংক", "টাকা", "ঋণ", "সঞ্চয়", "বিনিয়োগ", "অ্যাকাউন্ট", "সুদ", "কর"],
        "coding": ["কোড", "প্রোগ্রাম", "কম্পিউটার", "ত্রুটি", "সফটওয়্যার", "ডেটা", "ফাংশন", "পাইথন"],
        "travel": ["ভ্রমণ", "টিকিট", "হোটেল", "ট্রেন", "বিমানবন্দর", "পাসপোর্ট", "পর্যটন", "যাত্রা"],
    },
    "en": {
        "health": ["doctor", "medicine", "fever", "hospital", "treatment", "health", "pain", "patient"],
        "finance": ["bank", "money", "loan", "savings", "investment", "account", "interest", "tax"],
        "coding": ["code", "program", "computer", "error", "function", "software", "data", "Python"],
        "travel": ["travel", "ticket", "hotel", "train", "airport", "passport", "trip", "tourism"],
    },
}

FILLERS = {
    "hi": ["मुझे", "क्या", "कैसे", "के बारे में", "बताइए", "है", "और", "मेरा", "कृपया", "में"],
    "ta": ["எனக்கு", "எப்படி", "என்ன", "பற்றி", "சொல்லுங்கள்", "உள்ளது", "மற்றும்", "என்", "தயவுசெய்து", "இல்"],
    "bn": ["আমার", "কীভাবে", "কী", "সম্পর্কে", "বলুন", "আছে", "এবং", "দয়া করে", "মধ্যে", "জন্য"],
    "en": ["please", "how", "what", "about", "tell", "me", "is", "and", "my", "the", "for"],
}

SENTENCE_END = {"hi": "।", "bn": "।", "ta": ".", "en": "."}

# The weak within-topic signal: responses carrying this phrase score 10 more often.
QUALITY_PHRASE = {
    "hi": "कृपया कोई भी निर्णय लेने से पहले विशेषज्ञ से सलाह लें।",
    "ta": "எந்த முடிவும் எடுப்பதற்கு முன் நிபுணரை அணுகவும்.",
    "bn": "কোনো সিদ্ধান্ত নেওয়ার আগে অনুগ্রহ করে বিশেষজ্ঞের পরামর্শ নিন।",
    "en": "Please consult a qualified professional before acting on this.",
}

SYSTEM_PROMPTS = {
    "en": {
        "health": "You are a helpful medical assistant.",
        "finance": "You are a careful financial advisor.",
        "coding": "You are an expert programming assistant.",
        "travel": "You are a friendly travel guide.",
    },
    "hi": {
        "health": "आप एक सहायक चिकित्सा सहायक हैं।",
        "finance": "आप एक सावधान वित्तीय सलाहकार हैं।",
        "coding": "आप एक विशेषज्ञ प्रोग्रामिंग सहायक हैं।",
        "travel": "आप एक मित्रवत यात्रा गाइड हैं।",
    },
    "ta": {
        "health": "நீங்கள் ஒரு உதவிகரமான மருத்துவ உதவியாளர்.",
        "finance": "நீங்கள் ஒரு கவனமான நிதி ஆலோசகர்.",
        "coding": "நீங்கள் ஒரு நிபுணத்துவ நிரலாக்க உதவியாளர்.",
        "travel": "நீங்கள் ஒரு நட்பான பயண வழிகாட்டி.",
    },
    "bn": {
        "health": "আপনি একজন সহায়ক চিকিৎসা সহকারী।",
        "finance": "আপনি একজন সতর্ক আর্থিক উপদেষ্টা।",
        "coding": "আপনি একজন দক্ষ প্রোগ্রামিং সহকারী।",
        "travel": "আপনি একজন বন্ধুত্বপূর্ণ ভ্রমণ গাইড।",
    },
}

# Within-topic score distributions (score -> weight), with/without the quality phrase.
MATCH_SCORES_QUALITY = {10: 52, 9: 45, 8: 2, 7: 1}
MATCH_SCORES_PLAIN = {10: 20, 9: 72, 8: 4, 7: 2, 6: 2}
MISMATCH_SCORES = {0: 35, 1: 20, 2: 20, 3: 25}


# ---------------------------------------------------------------- embeddings

def unit(v):
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


def make_embeddings(rng):
    """Topic directions are random unit vectors; each metric = its topic + noise."""
    directions = {t: unit([rng.gauss(0.0, 1.0) for _ in range(DIM)]) for t in TOPICS}
    rows = []
    for _, topic in METRICS:
        rows.append(unit([x + rng.gauss(0.0, EMBEDDING_NOISE) for x in directions[topic]]))
    return rows


def npy_bytes(rows):
    """Serialise a 2-D list of floats as a NumPy v1.0 '<f4' C-order .npy file."""
    shape = (len(rows), len(rows[0]))
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % shape
    prefix_len = 6 + 2 + 2  # magic, version, header length
    pad = (-(prefix_len + len(header) + 1)) % 64
    header = (header + " " * pad + "\n").encode("latin1")
    body = b"".join(struct.pack("<%df" % shape[1], *row) for row in rows)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + body


# --------------------------------------------------------------------- texts

def weighted(rng, table):
    keys = list(table)
    return rng.choices(keys, weights=[table[k] for k in keys])[0]


def sentence(rng, lang, topic, n_topic_words, end):
    words = rng.sample(WORDS[lang][topic], n_topic_words)
    words += rng.choices(FILLERS[lang], k=rng.randint(2, 4))
    rng.shuffle(words)
    return " ".join(words) + end


def make_prompt(rng, lang, topic):
    return sentence(rng, lang, topic, rng.randint(2, 3), "?")


def make_response(rng, lang, topic, with_quality):
    parts = [sentence(rng, lang, topic, rng.randint(2, 4), SENTENCE_END[lang])
             for _ in range(rng.randint(2, 3))]
    if with_quality:
        parts.insert(rng.randint(1, len(parts)), QUALITY_PHRASE[lang])
    return " ".join(parts)


def make_system_prompt(rng, lang, topic):
    if rng.random() < SYSTEM_PROMPT_NULL_RATE:
        return None
    return SYSTEM_PROMPTS["en" if rng.random() < 0.6 else lang][topic]


# ------------------------------------------------------------------- records

def exact_flags(rng, n, rate):
    """A shuffled list of n booleans with exactly round(n * rate) True."""
    k = round(n * rate)
    flags = [True] * k + [False] * (n - k)
    rng.shuffle(flags)
    return flags


def make_record(rng, metric, mismatch):
    """One record plus its integer score (score not yet attached)."""
    name, metric_topic = metric
    if mismatch:
        topic = rng.choice([t for t in TOPICS if t != metric_topic])
    else:
        topic = metric_topic
    lang = weighted(rng, LANGUAGE_WEIGHTS)
    with_quality = rng.random() < QUALITY_PHRASE_RATE
    if mismatch:
        score = weighted(rng, MISMATCH_SCORES)
    else:
        score = weighted(rng, MATCH_SCORES_QUALITY if with_quality else MATCH_SCORES_PLAIN)
    record = {
        "metric_name": name,
        "user_prompt": make_prompt(rng, lang, topic),
        "response": make_response(rng, lang, topic, with_quality),
        "system_prompt": make_system_prompt(rng, lang, topic),
    }
    return record, score


def make_split(rng, n, mismatch_rate, cover_all_metrics):
    metrics = list(METRICS) if cover_all_metrics else []
    metrics += rng.choices(METRICS, k=n - len(metrics))
    flags = exact_flags(rng, n, mismatch_rate)
    pairs = [make_record(rng, m, f) for m, f in zip(metrics, flags)]
    rng.shuffle(pairs)
    return pairs


def make_train(rng, n_train=N_TRAIN):
    pairs = make_split(rng, n_train, TRAIN_MISMATCH_RATE, cover_all_metrics=True)
    records = []
    for record, score in pairs:
        records.append({"metric_name": record["metric_name"], "score": "%.1f" % score,
                        "user_prompt": record["user_prompt"], "response": record["response"],
                        "system_prompt": record["system_prompt"]})
    # Quirks of the real file: one half-point score and one missing response,
    # both on (different) high-scoring records.
    high = [i for i, r in enumerate(records) if float(r["score"]) >= 9.0]
    half, null = rng.sample(high, 2)
    records[half]["score"] = "9.5"
    records[null]["response"] = None
    return records


def make_test(rng, n_test=N_TEST):
    pairs = make_split(rng, n_test, TEST_MISMATCH_RATE, cover_all_metrics=False)
    return [record for record, _ in pairs], [score for _, score in pairs]


# ------------------------------------------------------------------- writing

def write_json(path, value):
    text = json.dumps(value, ensure_ascii=False, indent=1) + "\n"
    path.write_bytes(text.encode("utf-8"))


def write_scores_csv(path, scores):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["ID", "score"])
    for i, s in enumerate(scores, start=1):
        writer.writerow([i, s])
    path.write_bytes(buf.getvalue().encode("utf-8"))


def histogram(title, scores):
    counts = Counter(scores)
    n = len(scores)
    lines = ["%s (n=%d, mean=%.2f)" % (title, n, sum(scores) / n)]
    for s in sorted(counts):
        c = counts[s]
        lines.append("  %4s  %4d  %5.1f%%  %s" % (("%g" % s), c, 100.0 * c / n, "#" * math.ceil(60 * c / n)))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data/sample", help="output folder (default: data/sample)")
    # A larger problem of the same kind (issue 23's benchmark uses 5000 training records); the
    # defaults reproduce data/sample byte for byte.
    parser.add_argument("--train", type=int, default=N_TRAIN, help="training records (default: %d)" % N_TRAIN)
    parser.add_argument("--test", type=int, default=N_TEST, help="test records (default: %d)" % N_TEST)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    rng = random.Random(SEED)
    embeddings = make_embeddings(rng)
    train = make_train(rng, args.train)
    test, test_scores = make_test(rng, args.test)

    write_json(out / "metric_names.json", [name for name, _ in METRICS])
    (out / "metric_name_embeddings.npy").write_bytes(npy_bytes(embeddings))
    write_json(out / "train_data.json", train)
    write_json(out / "test_data.json", test)
    write_scores_csv(out / "test_scores.csv", test_scores)

    print("wrote %s" % out)
    print(histogram("train scores", [float(r["score"]) for r in train]))
    print(histogram("test scores (hidden)", test_scores))


if __name__ == "__main__":
    main()
