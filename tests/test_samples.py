"""The bundled samples cannot fake a finding: each property that let an old sample produce a result the
real data would not is measured here (shared sentences, one-word label cues, length cues between HH
replies, minimal pairs in ETHICS, copied TruthfulQA questions, prize rows that behave unlike the task),
and a classifier trained on the IMDB sample must transfer to real reviews."""
from __future__ import annotations

import re
from collections import Counter
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from interplab import data

PRIZE_TASKS = sorted(t.split("/", 1)[1] for t in data.names() if t.startswith("inverse-scaling/"))


# ---------------------------------------------------------------- measures

def sentences(text: str) -> list[str]:
    """Lower-cased sentences of ``text`` (IMDB's ``<br />`` breaks count as sentence ends)."""
    text = re.sub(r"<br\s*/?>", " ", text)
    return [s.strip().lower() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s.strip()) > 3]


def shared_sentences(texts) -> list[str]:
    """Sentences that occur in more than one of ``texts``."""
    counts = Counter(s for t in texts for s in set(sentences(t)))
    return sorted(s for s, n in counts.items() if n > 1)


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))


def best_single_word(texts, labels, min_count: int = 3) -> tuple[float, str]:
    """Accuracy of the best one-word rule "label = (word present)" (or its negation), and the word."""
    labels = np.asarray(labels)
    sets = [words(t) for t in texts]
    vocab = Counter(w for s in sets for w in s)
    best = (0.0, "")
    for w, n in vocab.items():
        if n < min_count:
            continue
        present = np.array([w in s for s in sets])
        acc = max((present == labels).mean(), (present != labels).mean())
        best = max(best, (float(acc), w))
    return best


def near_pair_share(texts, threshold: float = 0.6) -> float:
    """Share of texts whose nearest other text has token Jaccard > ``threshold`` (minimal pairs)."""
    sets = [words(t) for t in texts]
    near = set()
    for i, j in combinations(range(len(sets)), 2):
        a, b = sets[i], sets[j]
        if a and b and len(a & b) / len(a | b) > threshold:
            near.update((i, j))
    return len(near) / len(sets)


def test_measures_catch_what_they_should():
    texts = ["A fine film. Great cast.", "A poor film. Great cast.", "Dull. Dull.", "Lovely and warm."]
    assert shared_sentences(texts) == ["great cast."]
    acc, word = best_single_word(["good a", "good b", "good c", "bad a", "bad b", "bad c"], [1, 1, 1, 0, 0, 0])
    assert acc == 1.0 and word in ("good", "bad")
    assert best_single_word(["a b", "b c", "c a", "a c"], [1, 0, 1, 0])[0] <= 0.75
    assert near_pair_share(["I helped the old man.", "I robbed the old man.", "We went sailing on the lake."], 0.5) == 2 / 3


# ---------------------------------------------------------------- IMDB

@pytest.fixture(scope="module")
def imdb():
    train, test = data.load("imdb", split="train", source="sample"), data.load("imdb", split="test", source="sample")
    return train, test, pd.concat([train, test], ignore_index=True)


def test_imdb_sample_size_balance_and_length(imdb):
    train, test, both = imdb
    assert len(both) >= 200 and both.text.nunique() == len(both)
    for df in (train, test):
        assert abs(df.label.mean() - 0.5) <= 0.05, df.label.mean()
    n_words = both.text.str.split().map(len)
    assert n_words.min() <= 20 and n_words.max() >= 200, n_words.describe()  # two sentences to several paragraphs
    assert 0.8 <= n_words[both.label == 1].mean() / n_words[both.label == 0].mean() <= 1.25  # length is no label cue


def test_imdb_sample_shares_no_sentence(imdb):
    train, test, both = imdb
    test_sents = {s for t in test.text for s in sentences(t)}
    assert not test_sents & {s for t in train.text for s in sentences(t)}  # train/test overlap = 0
    assert shared_sentences(both.text) == []  # and no sentence repeats between any two reviews


def test_imdb_sample_has_no_one_word_label_cue(imdb):
    acc, word = best_single_word(imdb[2].text, imdb[2].label)
    print(f"best single-word classifier on the IMDB sample: {word!r} {acc:.3f}")
    assert acc <= 0.75, (word, acc)


def test_imdb_real_reviews_one_word_baseline(shared_data):
    real = data.load("imdb", source=shared_data / "imdb" / "reviews-real.csv")
    acc, word = best_single_word(real.text, real.label)
    print(f"best single-word classifier on the real reviews: {word!r} {acc:.3f}")
    assert acc <= 0.75  # the bound above is what real reviews meet


@pytest.mark.slow
def test_imdb_sample_teaches_what_real_reviews_teach(imdb, shared_data):
    """MiniLM + logistic regression trained on the sample transfers to real reviews (old sample: 0.631;
    trained on 120 real reviews: about 0.73)."""
    from interplab import explain

    real = data.load("imdb", source=shared_data / "imdb" / "reviews-real.csv")
    both = imdb[2]
    clf = explain.text_classifier("minilm", texts=both.text, labels=both.label, class_names=["neg", "pos"],
                                  precision="float32", progress=False)
    acc = float((clf.predict(real.text) == real.label.to_numpy()).mean())
    print(f"MiniLM + LR trained on the {len(both)}-review sample: {acc:.3f} on {len(real)} real reviews")
    assert acc >= 0.70, acc


# ---------------------------------------------------------------- HH-RLHF

@pytest.fixture(scope="module")
def hh():
    frames = [data.load("hh-rlhf", split=s, source="sample", subset="all", parsed=True) for s in ("train", "test")]
    return pd.concat([pd.DataFrame(f) for f in frames], ignore_index=True)


def _reply_lengths(df):
    return df.chosen_reply.str.split().map(len).to_numpy(), df.rejected_reply.str.split().map(len).to_numpy()


def test_hh_replies_alike_in_length(hh):
    c, r = _reply_lengths(hh)
    ratio = c.mean() / r.mean()
    longer = float((c > r).mean())  # "the longer reply is chosen": a length-only classifier
    print(f"HH sample: chosen/rejected mean words {c.mean():.1f}/{r.mean():.1f} (ratio {ratio:.2f}); "
          f"length-only classifier {longer:.2f}")
    assert 0.75 <= ratio <= 1.33, ratio
    assert 0.35 <= longer <= 0.65, longer
    assert r.min() >= 15  # rejected replies are not one-line cartoons


def test_hh_real_length_baseline(shared_data):
    real = data.load("hh-rlhf", source=shared_data / "hh-rlhf" / "harmless-base" / "test.jsonl.gz", parsed=True)
    c, r = _reply_lengths(real)
    assert 0.75 <= c.mean() / r.mean() <= 1.33 and 0.35 <= (c > r).mean() <= 0.65  # the bounds real pairs meet


def test_hh_replies_share_no_sentence_and_no_one_word_cue(hh):
    replies = list(hh.chosen_reply) + list(hh.rejected_reply)
    assert shared_sentences(replies) == []
    acc, word = best_single_word(replies, [1] * len(hh) + [0] * len(hh))
    print(f"best single word telling chosen from rejected replies: {word!r} {acc:.3f}")
    assert acc <= 0.75, (word, acc)


def test_hh_has_multi_turn_conversations(hh):
    assert (hh.n_turns >= 3).mean() >= 0.25 and hh.n_turns.max() >= 5
    assert hh.same_prefix.all()


# ---------------------------------------------------------------- ETHICS

@pytest.mark.parametrize("split, wrong", [("train", 0.5), ("test", 0.47), ("test_hard", 0.53)])
def test_ethics_splits_balanced_like_real_and_not_minimal_pairs(split, wrong):
    df = data.load("ethics-commonsense", split=split, source="sample")
    assert abs(df.label.mean() - wrong) <= 0.05, df.label.mean()  # real: test 0.467, test_hard 0.527
    assert 0.4 <= df.is_short.mean() <= 0.7  # real: 0.54 / 0.43 short
    long = df.loc[~df.is_short, "input"]
    assert long.str.contains(r" \| ").all() and long.str.split().map(len).median() >= 60
    share = near_pair_share(df.input)
    print(f"ETHICS {split}: minimal-pair share {share:.3f}")
    assert share <= 0.1, share


def test_ethics_sample_shares_no_scenario_across_splits():
    texts = [t for s in ("train", "test", "test_hard", "ambiguous") for t in data.load("ethics-commonsense", split=s, source="sample").input]
    assert len(texts) == len(set(texts))
    assert near_pair_share(texts) <= 0.05


def test_ethics_real_minimal_pair_baseline(shared_data):
    real = data.load("ethics-commonsense", split="test", source=shared_data / "ethics-commonsense")
    assert near_pair_share(real.sample(400, random_state=0).input) <= 0.1  # 0.04 on this draw


# ---------------------------------------------------------------- TruthfulQA

def test_truthfulqa_sample_copies_no_question(shared_data):
    sample = data.load("truthfulqa", source="sample")
    real = data.load("truthfulqa", source=shared_data / "truthfulqa" / "TruthfulQA.csv")
    real_sets = [words(q) for q in real.question]
    for q in sample.question:
        w = words(q)
        closest = max(len(w & r) / len(w | r) for r in real_sets)
        assert closest <= 0.5, (q, closest)


# ---------------------------------------------------------------- prize tasks

@pytest.mark.parametrize("task", PRIZE_TASKS)
def test_prize_sample_is_big_enough_and_not_one_sided(task):
    df = data.load(f"inverse-scaling/{task}", source="sample")
    assert len(df) >= 30 and df.prompt.nunique() == len(df)
    if "classes" in df.columns:
        fixed_order = df.classes.map(tuple).nunique() == 1  # e.g. modus-tollens: always [" Yes", " No"]
        if not fixed_order:  # where the class order varies, the answer is not always in one position
            assert 0.2 <= (df.answer_index == 0).mean() <= 0.8


@pytest.mark.slow
def test_memo_trap_sample_behaves_like_the_real_task():
    """SmolLM2-135M scores 0.69 on the real memo-trap file's first 200 rows (issue #17); the sample must
    land near that, not at the old 8-row sample's 0.125."""
    from interplab import evals

    res = evals.evaluate("smollm2", data.load("inverse-scaling/memo-trap", source="sample"), progress=False)
    acc = float(res["correct"].mean())
    print(f"smollm2 on the memo-trap sample: {acc:.3f} ({len(res)} rows)")
    assert 0.55 <= acc <= 0.85, acc


@pytest.mark.slow
@pytest.mark.parametrize("task", PRIZE_TASKS)
def test_prize_sample_scores_like_the_real_file(task, shared_data):
    """Where the real task file is in the shared folder, smollm2's score on the sample is within 0.15 of
    its score on the real file's first 200 rows."""
    from interplab import evals

    real_path = next((p for p in (shared_data / "inverse-scaling").glob(f"{task}.*")), None) \
        if (shared_data / "inverse-scaling").is_dir() else None
    if real_path is None:
        pytest.skip(f"the real {task} file is not in {shared_data} (only the eval-pipeline tasks are)")
    real = data.load_prize_task(real_path).iloc[:200]
    sample = data.load(f"inverse-scaling/{task}", source="sample")
    col = "correct" if "classes" in sample.columns else "loss"
    got = [float(evals.evaluate("smollm2", t, progress=False)[col].mean()) for t in (sample, real)]
    tolerance = 0.15 if col == "correct" else 0.25 * abs(got[1])
    assert abs(got[0] - got[1]) <= tolerance, got
