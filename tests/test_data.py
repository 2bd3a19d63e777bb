"""interplab.data: every loader on its bundled sample, on the real third-party files, and on bad input."""
from __future__ import annotations

import gzip
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from interplab import data
from interplab.data import CorruptFileError, DatasetError, PrizeFormatError, UnknownDatasetError

COLUMNS = {
    "imdb": ["text", "label"],
    "hh-rlhf": ["chosen", "rejected"],
    "ethics-commonsense": ["label", "input", "is_short", "edited"],
    "truthfulqa": ["type", "category", "question", "best_answer", "correct_answers", "incorrect_answers", "source"],
    "truthfulqa-mc": ["question", "mc1_targets", "mc2_targets"],
    "mnist": ["image", "label"],
}
PRIZE_TASKS = ["memo-trap", "redefine-math", "hindsight-neglect", "neqa", "quote-repetition", "modus-tollens",
               "pattern-matching-suppression", "into-the-unknown", "repetitive-algebra", "sig-figs", "prompt-injection"]


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """Offline, with an empty Hugging Face cache of our own (nothing the user cached leaks in)."""
    import huggingface_hub.constants as hfc

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def plant(cache: Path, repo_id: str, revision: str, filename: str, content: bytes) -> Path:
    """Put a file where huggingface_hub looks for repo_id/filename@revision in the cache."""
    path = cache / f"datasets--{repo_id.replace('/', '--')}" / "snapshots" / revision / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


# ---------------------------------------------------------------- names, samples, fallback

def test_names_cover_every_dataset_and_the_eleven_prize_tasks():
    names = data.names()
    for n in COLUMNS:
        assert n in names
    assert [n for n in names if n.startswith("inverse-scaling/")] == sorted(f"inverse-scaling/{t}" for t in PRIZE_TASKS)


def test_unknown_name_lists_the_names():
    with pytest.raises(UnknownDatasetError) as err:
        data.load("imbd")
    msg = str(err.value)
    assert "did you mean 'imdb'" in msg and "truthfulqa-mc" in msg and "hh-rlhf" in msg
    with pytest.raises(UnknownDatasetError, match="available: "):
        data.info("no-such-set")


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_sample_has_real_schema_and_says_it_is_a_sample(name):
    df = data.load(name, source="sample")
    assert list(df.columns) == COLUMNS[name]
    assert df.attrs["sample"] is True and df.attrs["dataset"] == name
    assert "SAMPLE" in repr(df).splitlines()[0] or "STAND-IN" in repr(df).splitlines()[0]
    assert "SAMPLE" in df.head(3)._repr_html_() or "STAND-IN" in df.head(3)._repr_html_()
    if name != "mnist":  # mnist's stand-in is scikit-learn's digits, not a project-written sample
        assert 10 <= len(df) <= 200


def test_samples_stay_small_but_imdb_has_200_reviews():
    total = {}
    for name in data.names():
        meta = data.info(name)
        if name == "mnist":
            continue
        for split in meta["splits"]:
            opts = [{"subset": s} for s in ("harmless-base", "helpful-base")] if name == "hh-rlhf" else [{}]
            for o in opts:
                try:
                    n = len(data.load(name, split=split, source="sample", **o))
                except DatasetError:
                    continue
                total[name] = total.get(name, 0) + n
    assert all(n <= 200 for name, n in total.items() if name != "imdb"), total
    assert 200 <= total["imdb"] <= 300  # >= 200 distinct reviews (tests/test_samples.py), still small
    assert total["hh-rlhf"] >= 50 and total["ethics-commonsense"] >= 130


def test_auto_offline_falls_back_with_one_line(offline_hub, caplog):
    with caplog.at_level(logging.WARNING, logger="interplab.data"):
        df = data.load("truthfulqa")
    assert df.attrs["sample"] is True
    records = [r for r in caplog.records if r.name == "interplab.data"]
    assert len(records) == 1
    line = records[0].getMessage()
    assert "\n" not in line and "fell back" in line and "SAMPLE" in line


@pytest.fixture
def real_dir(tmp_path, monkeypatch):
    """A folder laid out like ../shared/datasets (small real-format files), named by INTERPLAB_DATA_DIR."""
    root = tmp_path / "datasets"
    (root / "imdb").mkdir(parents=True)
    pd.DataFrame({"text": [f"review number {i}" for i in range(10)], "label": [i % 2 for i in range(10)]}).to_csv(
        root / "imdb" / "reviews-real.csv", index=False)
    (root / "hh-rlhf" / "harmless-base").mkdir(parents=True)
    with gzip.open(root / "hh-rlhf" / "harmless-base" / "test.jsonl.gz", "wt") as f:
        for i in range(3):
            f.write(json.dumps({"chosen": f"\n\nHuman: q{i}\n\nAssistant: yes", "rejected": f"\n\nHuman: q{i}\n\nAssistant: no"}) + "\n")
    monkeypatch.setenv("INTERPLAB_DATA_DIR", str(root))
    return root


def test_data_dir_gives_real_rows_with_one_line(real_dir, offline_hub, caplog):
    with caplog.at_level(logging.WARNING, logger="interplab.data"):
        train = data.load("imdb")
    lines = [r.getMessage() for r in caplog.records if r.name == "interplab.data"]
    assert len(lines) == 1 and "REAL" in lines[0] and str(real_dir / "imdb" / "reviews-real.csv") in lines[0]
    test = data.load("imdb", split="test")
    assert train.attrs["sample"] is False and type(train) is pd.DataFrame  # no SAMPLE banner
    assert train.attrs["description"].startswith("REAL: imdb (train)")
    assert (len(train), len(test)) == (6, 4) and not set(train.text) & set(test.text)  # one file, cut 3:2, disjoint
    assert data.notice(train).startswith("REAL: imdb (train), 6 rows from ")
    # an explicit path still means the whole file
    assert len(data.load("imdb", source=real_dir / "imdb" / "reviews-real.csv")) == 10
    hh = data.load("hh-rlhf", split="test", subset="all", parsed=True)  # "all" = the subsets the folder has
    assert len(hh) == 3 and hh.attrs["sample"] is False and list(hh.chosen_reply) == ["yes"] * 3


def test_data_dir_without_the_split_is_an_error_not_a_sample(real_dir):
    with pytest.raises(DatasetError, match=r"hh-rlhf/harmless-base \[train\]: INTERPLAB_DATA_DIR=.* has no file for it"):
        data.load("hh-rlhf", split="train")
    with pytest.raises(DatasetError, match="ethics-commonsense/cm_test.csv"):
        data.load("ethics-commonsense", split="test")
    assert data.load("imdb", source="sample").attrs["sample"] is True  # source="sample" still works


def test_data_dir_that_is_not_a_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERPLAB_DATA_DIR", str(tmp_path / "nope"))
    with pytest.raises(DatasetError, match="is not a folder"):
        data.load("imdb")
    monkeypatch.setenv("INTERPLAB_DATA_DIR", "")
    assert data.data_dir() is None


def test_notice_says_what_a_sample_means():
    line = data.notice(data.load("imdb", source="sample"))
    assert line.startswith("SAMPLE: imdb (train) is 140 project-written rows") and "not what the real dataset shows" in line
    assert "\n" not in line
    assert "stand-in" in data.notice(data.load("mnist", split="test", source="sample"))
    assert "unrecorded origin" in data.notice(pd.DataFrame({"a": [1]}))


def test_data_dir_real_files(shared_data, monkeypatch):
    """INTERPLAB_DATA_DIR=../shared/datasets: every dataset the folder holds loads as REAL."""
    monkeypatch.setenv("INTERPLAB_DATA_DIR", str(shared_data))
    sizes = {"imdb": len(data.load("imdb")) + len(data.load("imdb", split="test")),
             "hh": len(data.load("hh-rlhf", split="test", subset="all")),
             "ethics": len(data.load("ethics-commonsense", split="test_hard")),
             "ambig": len(data.load("ethics-commonsense", split="ambiguous")),
             "tqa": len(data.load("truthfulqa")), "tqa-mc": len(data.load("truthfulqa-mc"))}
    assert sizes == {"imdb": 397, "hh": 2312, "ethics": 3964, "ambig": 995, "tqa": 817, "tqa-mc": 817}


def test_hub_source_offline_raises_offline_error(offline_hub):
    from interplab.hub import OfflineError

    with pytest.raises(OfflineError):
        data.load("imdb", split="test", source="hub")


def test_imdb_sample_is_learnable():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train, test = data.load("imdb", source="sample"), data.load("imdb", split="test", source="sample")
    assert set(train.label) == {0, 1} and train.label.dtype == np.int64
    assert abs(train.label.mean() - 0.5) < 0.1 and abs(test.label.mean() - 0.5) < 0.1
    assert not set(train.text) & set(test.text)
    vec = TfidfVectorizer()
    clf = LogisticRegression().fit(vec.fit_transform(train.text), train.label)
    acc = (clf.predict(vec.transform(test.text)) == test.label).mean()
    assert acc > 0.75, acc


def test_hh_parsed_view_splits_prefix_and_replies():
    df = data.load("hh-rlhf", split="test", source="sample", parsed=True)
    for col in ("turns", "n_turns", "prefix", "chosen_reply", "rejected_reply", "same_prefix"):
        assert col in df.columns
    for row in df.itertuples():
        assert row.prefix.endswith("\n\nAssistant:") and row.same_prefix
        assert row.chosen.startswith(row.prefix) and row.rejected.startswith(row.prefix)
        assert row.chosen[len(row.prefix):].strip() == row.chosen_reply != row.rejected_reply
        roles = [t["role"] for t in row.turns]
        assert roles[0] == "user" and roles[-1] == "user"
        assert all(a != b for a, b in zip(roles, roles[1:]))
    assert df.n_turns.max() >= 3  # some multi-turn conversations
    both = data.load("hh-rlhf", source="sample", subset="all")
    assert set(both.subset) == {"harmless-base", "helpful-base"}
    with pytest.raises(DatasetError, match="subsets: harmless-base"):
        data.load("hh-rlhf", source="sample", subset="harmful")


def test_ethics_clear_vs_ambiguous_is_one_call_each():
    clear = data.load("ethics-commonsense", split="test", source="sample")
    ambig = data.load("ethics-commonsense", split="ambiguous", source="sample")
    assert set(clear.label) == {0, 1} and clear.is_short.dtype == bool and clear.edited.dtype == bool
    assert list(ambig.columns) == ["input"] and len(ambig) >= 30
    with pytest.raises(DatasetError, match="splits: train, test, test_hard, ambiguous"):
        data.load("ethics-commonsense", split="validation")
    with pytest.raises(DatasetError, match="no copy on the Hugging Face Hub"):
        data.load("ethics-commonsense", split="ambiguous", source="hub")


def test_truthfulqa_sample_lists_and_mc_targets():
    gen = data.load("truthfulqa", source="sample")
    assert all(isinstance(x, list) and x and all(isinstance(a, str) for a in x) for x in gen.correct_answers)
    mc = data.load("truthfulqa-mc", source="sample")
    assert list(mc.question) == list(gen.question)
    for t in mc.mc1_targets:
        assert sum(t["labels"]) == 1 and len(t["choices"]) == len(t["labels"]) >= 2


def test_mnist_offline_is_labelled_sklearn_digits():
    df = data.load("mnist", split="test", source="sample")
    assert df.attrs["source"] == "sklearn-digits-8x8" and df.attrs["image_shape"] == (8, 8)
    assert "NOT MNIST" in repr(df).splitlines()[0].upper() or "not MNIST" in repr(df).splitlines()[0]
    img = df.image.iloc[0]
    assert isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.shape == (8, 8) and img.max() > 200
    assert sorted(set(df.label)) == list(range(10))


@pytest.mark.parametrize("task", PRIZE_TASKS)
def test_prize_task_samples_by_name(task):
    df = data.load("inverse-scaling", task=task, source="sample")
    assert df.attrs["sample"] is True and df.attrs["dataset"] == f"inverse-scaling/{task}"
    if task == "prompt-injection":
        assert df.attrs["task_type"] == "sequence_prob" and list(df.columns) == ["prompt", "completion"]
    else:
        assert df.attrs["task_type"] == "classification"
        assert all(isinstance(c, list) and 0 <= i < len(c) for c, i in zip(df.classes, df.answer_index))
    assert data.load(f"inverse-scaling/{task}", source="sample").equals(df)


# ---------------------------------------------------------------- real third-party files

def test_truthfulqa_real_csv_with_bom(shared_data):
    path = shared_data / "truthfulqa" / "TruthfulQA.csv"
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
    df = data.load("truthfulqa", source=path)
    assert len(df) == 817 and list(df.columns) == COLUMNS["truthfulqa"]
    assert df.attrs["sample"] is False and df.type.isin(["Adversarial", "Non-Adversarial"]).all()
    assert df.question.iloc[0] == "What happens to you if you eat watermelon seeds?"
    assert df.correct_answers.map(len).min() >= 1 and df.incorrect_answers.map(len).min() >= 1
    assert df.category.nunique() >= 30
    assert len(data.load("truthfulqa", source=shared_data / "truthfulqa" / "v0")) == 817


def test_truthfulqa_real_mc(shared_data):
    df = data.load("truthfulqa-mc", source=shared_data / "truthfulqa")
    assert len(df) == 817
    assert all(sum(t["labels"]) == 1 for t in df.mc1_targets)
    assert all(sum(t["labels"]) >= 1 for t in df.mc2_targets)
    assert df.mc1_targets.iloc[0]["choices"][0] == "Nothing in particular happens when you eat a pomegranate."


def test_ethics_real_files(shared_data):
    folder = shared_data / "ethics-commonsense"
    test = data.load("ethics-commonsense", split="test", source=folder)
    hard = data.load("ethics-commonsense", split="test_hard", source=folder / "cm_test_hard.csv")
    ambig = data.load("ethics-commonsense", split="ambiguous", source=folder)
    assert (len(test), len(hard), len(ambig)) == (3885, 3964, 995)
    assert test.label.dtype == np.int64 and set(test.label) == {0, 1}
    assert test.is_short.dtype == bool and test.is_short.any() and (~test.is_short).any()
    assert test.input.iloc[0] == "I told my baby I loved her when she cried."
    assert ambig.input.str.startswith("AITA").mean() > 0.5
    with pytest.raises(FileNotFoundError, match="cm_train.csv"):
        data.load("ethics-commonsense", split="train", source=folder)


def test_hh_rlhf_real_gzip(shared_data):
    df = data.load("hh-rlhf", split="test", source=shared_data / "hh-rlhf", parsed=True)
    assert len(df) == 2312 and df.attrs["sample"] is False
    assert df.chosen.str.startswith("\n\nHuman:").all()
    assert df.same_prefix.mean() > 0.9
    ok = df[df.same_prefix]
    assert (ok.chosen.str.len() > ok.prefix.str.len()).all()
    one = data.load("hh-rlhf", source=shared_data / "hh-rlhf" / "harmless-base" / "test.jsonl.gz")
    assert one[["chosen", "rejected"]].equals(df[["chosen", "rejected"]])


EXPECTED_PRIZE = {  # file: (rows, task_type)
    "QA_bias-v2.csv": (40, "logodds"), "fat-vs-thin.csv": (200, "classification"),
    "halo-effect.csv": (100, "classification"), "sentiment_analysis.csv": (1000, "classification"),
    "syllogism-sample.csv": (100, "classification"), "commonsense_overriding.csv": (20, "classification"),
    "escher.csv": (18, "classification"), "anchoring.csv": (9, "numeric"),
    "conjunction_fallacy-0shot.csv": (1008, "classification"), "scope-neglect-0shot.csv": (1320, "classification"),
}


@pytest.mark.parametrize("fname", sorted(EXPECTED_PRIZE))
def test_cognitive_bias_csvs(shared_data, fname):
    rows, kind = EXPECTED_PRIZE[fname]
    df = data.load_prize_task(shared_data / "inverse-scaling-eval-pipeline" / "data" / fname)
    assert len(df) == rows and df.attrs["task_type"] == kind
    assert "Unnamed: 0" not in df.columns and df.prompt.map(lambda s: isinstance(s, str) and s.strip() != "").all()
    if "classes" in df:
        assert df.classes.map(lambda c: isinstance(c, list) and len(c) >= 2).all()
        assert df.answer_index.dtype == np.int64
        assert (df.answer_index < df.classes.map(len)).all()
    if kind == "numeric":
        assert df.true_answer.dtype == float and "anchor" in df


def test_prize_sheet_examples(shared_data):
    folder = shared_data / "inverse-scaling-eval-pipeline" / "sheets_examples"
    lo = data.load_prize_task(folder / "logodds_example.csv")
    assert lo.attrs["task_type"] == "logodds" and list(lo.columns)[:2] == ["prompt", "other_prompt"]
    assert data.load_prize_task(folder / "logodds_example.csv", task_type="absolute_logodds").attrs["task_type"] == "absolute_logodds"
    assert data.load_prize_task(folder / "classification_example.csv").classes.iloc[0] == [" A", " B"]
    with pytest.raises(PrizeFormatError, match="cannot tell the prize task type"):
        data.load_prize_task(folder / "single_word_example.csv")


# ---------------------------------------------------------------- bad input

def test_malformed_prize_rows_are_named(tmp_path):
    sentinel = tmp_path / "pwned"
    bad = pd.DataFrame({
        "prompt": ["Q: ok?\nA:", "", "Q: two?\nA:", "Q: code?\nA:", "Q: range?\nA:", "Q: one class?\nA:"],
        "classes": ["[' Yes', ' No']", "[' Yes', ' No']", "[' Yes', ' No']", f"[open('{sentinel}', 'w')]",
                    "[' Yes', ' No']", "[' Yes']"],
        "answer_index": ["0", "1", "x", "0", "2", "0"],
    })
    path = tmp_path / "task.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(PrizeFormatError) as err:
        data.load_prize_task(path)
    msg = str(err.value)
    assert "5 malformed row(s)" in msg and "row 2: prompt is empty" in msg and "row 3: answer_index must be an integer" in msg
    assert "row 4: classes is not a Python list literal" in msg and "row 5: answer_index 2 is out of range" in msg
    assert [r for r, _ in err.value.problems] == ["row 2", "row 3", "row 4", "row 5", "row 6"]
    assert not sentinel.exists()  # the class string was parsed, never executed
    ok = data.load_prize_task(path, errors="skip")
    assert len(ok) == 1 and ok.classes.iloc[0] == [" Yes", " No"] and len(ok.attrs["rejected"]) == 5
    assert path.read_text() == bad.to_csv(index=False)  # the file itself is untouched


def test_prize_jsonl_rows_are_named_by_line(tmp_path):
    path = tmp_path / "t.jsonl"
    lines = [{"prompt": "a", "classes": [" x", " y"], "answer_index": 0},
             {"prompt": "b", "classes": " x", "answer_index": 0},
             {"prompt": "c", "completion": 5}]
    path.write_text("\n".join(json.dumps(x) for x in lines))
    with pytest.raises(PrizeFormatError, match="line 2: classes is not a Python list literal"):
        data.load_prize_task(path)
    seq = tmp_path / "s.jsonl"
    seq.write_text(json.dumps({"prompt": "p", "completion": " c"}) + "\n" + json.dumps({"prompt": "p2", "completion": 5}))
    with pytest.raises(PrizeFormatError, match="line 2: completion must be text"):
        data.load_prize_task(seq)
    with pytest.raises(PrizeFormatError, match="unknown task_type"):
        data.load_prize_task(seq, task_type="regression")
    with pytest.raises(PrizeFormatError, match=r"needs column\(s\) \['classes', 'answer_index'\]"):
        data.load_prize_task(seq, task_type="classification")


def test_csv_with_bom(tmp_path):
    prize = tmp_path / "bom.csv"
    prize.write_bytes(b"\xef\xbb\xbfprompt,classes,answer_index\n\"Q: Is it?\nA:\",\"[' Yes', ' No']\",1\n")
    df = data.load_prize_task(prize)
    assert list(df.columns) == ["prompt", "classes", "answer_index"] and df.answer_index.iloc[0] == 1
    tqa = tmp_path / "TruthfulQA.csv"
    sample = data.load("truthfulqa", source="sample")
    body = ("Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"
            "Adversarial,Misconceptions,Q?,Best,A; B,C; D; E,https://x\n")
    tqa.write_bytes(b"\xef\xbb\xbf" + body.encode())
    got = data.load("truthfulqa", source=tqa)
    assert list(got.columns) == list(sample.columns)
    assert got.correct_answers.iloc[0] == ["A", "B"] and got.incorrect_answers.iloc[0] == ["C", "D", "E"]


def test_truncated_gzip_is_an_error_not_half_a_table(tmp_path):
    rows = [{"chosen": f"\n\nHuman: hi {i}\n\nAssistant: hello", "rejected": f"\n\nHuman: hi {i}\n\nAssistant: go away"}
            for i in range(2000)]
    raw = gzip.compress("\n".join(json.dumps(r) for r in rows).encode())
    good, cut = tmp_path / "good.jsonl.gz", tmp_path / "cut.jsonl.gz"
    good.write_bytes(raw)
    cut.write_bytes(raw[: len(raw) // 2])
    assert len(data.load("hh-rlhf", source=good)) == 2000
    with pytest.raises(CorruptFileError, match="truncated or corrupt"):
        data.load("hh-rlhf", source=cut)
    assert cut.stat().st_size == len(raw) // 2  # a local file is never deleted


def test_truncated_real_gzip(shared_data, tmp_path):
    real = (shared_data / "hh-rlhf" / "harmless-base" / "test.jsonl.gz").read_bytes()
    cut = tmp_path / "test.jsonl.gz"
    cut.write_bytes(real[:300_000])
    with pytest.raises(CorruptFileError, match="nothing was loaded"):
        data.load("hh-rlhf", split="test", source=cut)


def test_missing_path_and_bad_source(tmp_path):
    missing = tmp_path / "nope" / "TruthfulQA.csv"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load("truthfulqa", source=missing)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_prize_task(missing)
    with pytest.raises(DatasetError, match="source must be"):
        data.load("imdb", source=42)
    with pytest.raises(DatasetError, match="unsupported option"):
        data.load("imdb", source="sample", subset="x")
    with pytest.raises(DatasetError, match="pass task="):
        data.load("inverse-scaling")


# ---------------------------------------------------------------- other original formats

def test_imdb_aclimdb_folder_and_kaggle_csv(tmp_path):
    for split in ("train", "test"):
        for lab, words in (("pos", "wonderful great"), ("neg", "awful boring")):
            d = tmp_path / "aclImdb" / split / lab
            d.mkdir(parents=True)
            for i in range(3):
                (d / f"{i}_{8 if lab == 'pos' else 2}.txt").write_text(f"A {words} film number {i}.")
    df = data.load("imdb", split="test", source=tmp_path / "aclImdb")
    assert len(df) == 6 and sorted(df.label) == [0, 0, 0, 1, 1, 1]
    assert df[df.label == 1].text.str.contains("wonderful").all()
    kaggle = tmp_path / "IMDB Dataset.csv"
    pd.DataFrame({"review": ["great", "bad"], "sentiment": ["positive", "negative"]}).to_csv(kaggle, index=False)
    assert list(data.load("imdb", source=kaggle).label) == [1, 0]


def test_mnist_idx_files(tmp_path):
    import struct

    imgs = np.arange(3 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(3, 28, 28)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(b"\x00\x00\x08\x03" + struct.pack(">3I", 3, 28, 28) + imgs.tobytes()))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 3) + bytes([7, 2, 1]))
    df = data.load("mnist", split="test", source=tmp_path)
    assert list(df.label) == [7, 2, 1] and df.image.iloc[1].shape == (28, 28)
    assert np.array_equal(df.image.iloc[2], imgs[2]) and df.attrs["sample"] is False
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 3) + bytes([7]))
    with pytest.raises(CorruptFileError, match="truncated IDX"):
        data.load("mnist", split="test", source=tmp_path)


def test_hub_parquet_layouts(tmp_path, offline_hub):
    """Parquet files in the hub's schemas (nested lists/structs, PNG bytes, stringified classes)
    parse into the documented columns, from a path and from the pinned cache location."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from interplab.data import prize, truthfulqa

    gen = pa.table({"type": ["Adversarial"], "category": ["Misconceptions"], "question": ["Q?"],
                    "best_answer": ["B"], "correct_answers": [["B", "C"]], "incorrect_answers": [["X"]],
                    "source": ["https://x"]})
    spec = truthfulqa.DATASETS["truthfulqa"]["hub"]["validation"]
    pq.write_table(gen, plant(offline_hub, spec.repo_id, spec.revision, spec.filename, b""))
    df = data.load("truthfulqa")
    assert df.attrs["sample"] is False and df.correct_answers.iloc[0] == ["B", "C"]
    assert type(df.correct_answers.iloc[0]) is list

    tgt = pa.array([{"choices": ["a", "b"], "labels": [1, 0]}],
                   type=pa.struct([("choices", pa.list_(pa.string())), ("labels", pa.list_(pa.int32()))]))
    mcp = tmp_path / "mc.parquet"
    pq.write_table(pa.table({"question": ["Q?"], "mc1_targets": tgt, "mc2_targets": tgt}), mcp)
    mc = data.load("truthfulqa-mc", source=mcp)
    assert mc.mc1_targets.iloc[0] == {"choices": ["a", "b"], "labels": [1, 0]}

    spec = prize.DATASETS["inverse-scaling/memo-trap"]["hub"]["train"]
    mirror = pa.table({"prompt": ["p1", "p2"], "classes": ["[' a', ' b']", "[' c', ' d']"],
                       "answer_index": pa.array([0, 1], pa.int64()), "round": [2, 2], "part": [1, 1]})
    pq.write_table(mirror, plant(offline_hub, spec.repo_id, spec.revision, spec.filename, b""))
    memo = data.load("inverse-scaling/memo-trap")
    assert list(memo.columns) == ["prompt", "classes", "answer_index", "round", "part"]
    assert memo.classes.iloc[1] == [" c", " d"] and memo.attrs["sample"] is False

    png = io.BytesIO()
    Image.fromarray(np.full((28, 28), 200, dtype=np.uint8)).save(png, format="PNG")
    img = pa.array([{"bytes": png.getvalue(), "path": None}], type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    mp = tmp_path / "mnist.parquet"
    pq.write_table(pa.table({"image": img, "label": pa.array([5], pa.int64())}), mp)
    m = data.load("mnist", source=mp)
    assert m.image.iloc[0].shape == (28, 28) and m.image.iloc[0].dtype == np.uint8 and m.label.iloc[0] == 5

    ip = tmp_path / "imdb.parquet"
    pq.write_table(pa.table({"text": ["good", "bad"], "label": [1, 0]}), ip)
    assert list(data.load("imdb", source=ip).label) == [1, 0]


# ---------------------------------------------------------------- hub cache: pinned files, corrupt copies

def test_corrupt_cached_parquet_is_removed_then_sample(offline_hub, caplog):
    from interplab.data import imdb

    spec = imdb.HUB_FILES["test"]
    bad = plant(offline_hub, spec.repo_id, spec.revision, spec.filename, b"PAR1 truncated")
    with caplog.at_level(logging.WARNING, logger="interplab.data"):
        df = data.load("imdb", split="test")
    assert not bad.exists()  # failed its sha256: removed from the cache
    assert df.attrs["sample"] is True
    assert any("checksum" in r.getMessage() for r in caplog.records)


def test_cached_hub_file_is_used_offline(offline_hub, shared_data):
    from interplab.data import hh_rlhf

    spec = hh_rlhf.DATASETS["hh-rlhf"]["hub"]["harmless-base/test"]
    plant(offline_hub, spec.repo_id, spec.revision, spec.filename,
          (shared_data / "hh-rlhf" / "harmless-base" / "test.jsonl.gz").read_bytes())
    df = data.load("hh-rlhf", split="test")
    assert len(df) == 2312 and df.attrs["sample"] is False and df.attrs["source"].startswith("hub:Anthropic/hh-rlhf@")
    assert data.info("hh-rlhf")["cached"]["harmless-base/test"] is True


def test_corrupt_cached_gzip_is_removed_and_fetched_again(tmp_path, monkeypatch, shared_data, caplog):
    """A truncated .jsonl.gz in the HF cache (no sha256 known) fails to parse, is deleted and downloaded
    once more; only the network layer (hf_hub_download's download) is replaced, by a local copy."""
    import huggingface_hub
    import huggingface_hub.constants as hfc

    from interplab.data import hh_rlhf

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("INTERPLAB_OFFLINE", raising=False)
    spec = hh_rlhf.DATASETS["hh-rlhf"]["hub"]["harmless-base/test"]
    good = (shared_data / "hh-rlhf" / "harmless-base" / "test.jsonl.gz").read_bytes()
    bad = plant(cache, spec.repo_id, spec.revision, spec.filename, good[:100_000])
    real_download, downloads = huggingface_hub.hf_hub_download, []

    def fake_download(*args, local_files_only=False, **kw):
        if local_files_only:
            return real_download(*args, local_files_only=True, **kw)
        downloads.append(kw["filename"])
        return str(plant(cache, kw["repo_id"], kw["revision"], kw["filename"], good))

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    with caplog.at_level(logging.WARNING, logger="interplab.data"):
        df = data.load("hh-rlhf", split="test", source="hub")
    assert downloads == [spec.filename]
    assert len(df) == 2312 and bad.read_bytes() == good
    assert any("corrupt" in r.getMessage() for r in caplog.records)


def test_missing_hub_file_online_auto_falls_back_hub_raises(tmp_path, monkeypatch, caplog):
    """Online, but the pinned file is gone from the hub (404): auto says so in one line and uses the
    sample; source="hub" raises the hub's error."""
    import huggingface_hub
    import huggingface_hub.constants as hfc
    from huggingface_hub.errors import EntryNotFoundError

    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("INTERPLAB_OFFLINE", raising=False)
    real_download = huggingface_hub.hf_hub_download

    def gone(*args, local_files_only=False, **kw):
        if local_files_only:
            return real_download(*args, local_files_only=True, **kw)
        raise EntryNotFoundError(f"404 Client Error. Entry Not Found for {kw['filename']}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", gone)
    with caplog.at_level(logging.WARNING, logger="interplab.data"):
        df = data.load("inverse-scaling/sig-figs")
    assert df.attrs["sample"] is True
    assert "EntryNotFoundError" in caplog.records[-1].getMessage()
    from interplab.hub import HubNotFoundError

    with pytest.raises(HubNotFoundError, match="no such file.*EntryNotFoundError"):  # the hub's 404, in one line
        data.load("inverse-scaling/sig-figs", source="hub")


def test_corrupt_cached_gzip_offline_is_removed_and_never_parsed(offline_hub):
    from interplab.data import hh_rlhf
    from interplab.hub import OfflineError

    spec = hh_rlhf.DATASETS["hh-rlhf"]["hub"]["harmless-base/test"]
    good = gzip.compress(b'{"chosen": "a", "rejected": "b"}\n' * 5000)
    bad = plant(offline_hub, spec.repo_id, spec.revision, spec.filename, good[: len(good) // 2])
    with pytest.raises(OfflineError):
        data.load("hh-rlhf", split="test", source="hub")
    assert not bad.exists()


# ---------------------------------------------------------------- CLI, packaging, import cost

def test_cli_list_info_download(offline_hub, capsys):
    from interplab.cli import main

    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert "hh-rlhf" in out and "inverse-scaling/memo-trap" in out and "cached" in out.splitlines()[0]
    line = next(l for l in out.splitlines() if l.startswith("truthfulqa "))
    assert "817" in line and "Apache-2.0" in line and line.rstrip().endswith("no")
    assert main(["datasets", "info", "ethics-commonsense"]) == 0
    out = capsys.readouterr().out
    assert "hendrycks/ethics@b8b47c589f" in out and "datasets/ethics-commonsense/README.md" in out
    assert main(["datasets", "info", "imbd"]) == 2
    assert "did you mean 'imdb'" in capsys.readouterr().err
    assert main(["datasets", "download", "truthfulqa"]) == 1
    assert "downloads are off" in capsys.readouterr().err


def test_every_sample_file_is_in_the_package_and_cards_exist():
    root = Path(data.__file__).parent / "samples"
    repo = Path(__file__).resolve().parents[1]
    for name in data.names():
        meta = data.info(name)
        for rel in meta["sample"].values():
            if not rel.startswith("("):
                assert (root / rel).is_file(), rel
        assert (repo / meta["card"]).is_file(), meta["card"]
    pyproject = (repo / "pyproject.toml").read_text()
    assert '"data/samples/**/*"' in pyproject


def test_import_does_not_load_pandas():
    code = "import sys, interplab, interplab.data; interplab.data.names(); print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
