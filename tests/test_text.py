"""interplab.text: counts, TF-IDF, distinctive terms, embeddings, search, topics, compare."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from interplab import text as T

ANIMALS = ["cats purr and cats meow", "my cat purrs on the sofa", "a kitten meows for milk"]
DOGS = ["dogs bark at the mailman", "the dog barks loudly", "puppies bark and fetch sticks"]


# ---------------------------------------------------------------- tokens and frequencies
def test_tokenize_keeps_contractions_emoji_and_cjk():
    toks = T.tokenize("I don’t like cats 🐱🐱! 我喜欢猫. Ça va très bien, café x 42")
    assert toks[:2] == ["don't", "like"]
    assert toks.count("🐱") == 2
    assert ["我", "喜", "欢", "猫"] == [t for t in toks if t in "我喜欢猫"]
    assert {"ça", "très", "café", "42"} <= set(toks)
    assert "x" not in toks and "i" not in toks  # one-letter Latin words are dropped, like scikit-learn
    with pytest.raises(TypeError, match="needs a string"):
        T.tokenize(None)


def test_frequencies_known_counts():
    df = T.frequencies(["the cat sat on the mat", "the cat ate", "a dog barked at the cat"], top=None)
    counts = dict(zip(df["term"], df["count"]))
    assert counts == {"cat": 3, "sat": 1, "mat": 1, "ate": 1, "dog": 1, "barked": 1}  # stop words gone
    assert df.iloc[0]["term"] == "cat" and df.iloc[0]["documents"] == 3
    assert math.isclose(df["share"].sum(), 1.0)
    assert T.frequencies(["the cat sat on the mat"], stop_words=None, top=1).iloc[0].to_dict()["term"] == "the"


def test_frequencies_ngrams_and_extra_stop_words():
    df = T.frequencies(["red apple pie", "red apple tart", "green apple"], ngram=(1, 2), top=None)
    c = dict(zip(df["term"], df["count"]))
    assert c["apple"] == 3 and c["red apple"] == 2 and c["apple pie"] == 1
    assert set(df.loc[df["term"] == "red apple", "n"]) == {2}
    bigrams = T.frequencies(["red apple pie", "red apple tart"], ngram=2, top=None)
    assert set(bigrams["n"]) == {2}
    phrases = set(T.frequencies(["I can't help with that.", "Sorry, I can't help."], ngram=2, top=None)["term"])
    assert "can't help" in phrases and "with that" not in phrases and "i can't" not in phrases
    no_apple = T.frequencies(["red apple pie"], extra_stop_words=["apple"], top=None)
    assert "apple" not in set(no_apple["term"])


def test_frequencies_non_english_and_emoji():
    df = T.frequencies(["我喜欢猫 🐱", "猫很可爱 🐱🐱", "el gato come pescado"], top=None)
    c = dict(zip(df["term"], df["count"]))
    assert c["猫"] == 2 and c["🐱"] == 3 and c["gato"] == 1


def test_frequencies_bad_inputs():
    with pytest.raises(ValueError, match="no texts"):
        T.frequencies([])
    with pytest.raises(TypeError, match=r"texts\[1\] is a missing value"):
        T.frequencies(["fine", None])
    with pytest.raises(TypeError, match=r"\[1\] is a missing value"):
        T.frequencies(["fine", float("nan")])
    with pytest.warns(UserWarning, match="only stop words"):
        empty = T.frequencies(["the and of", ""])
    assert len(empty) == 0 and list(empty.columns) == ["term", "n", "count", "documents", "share"]
    one = T.frequencies("one single document about cats")  # a bare string is one document
    assert set(one["term"]) == {"single", "document", "cats"}


# ---------------------------------------------------------------- TF-IDF
def test_tfidf_matches_smooth_idf_by_hand():
    res = T.tfidf(["apple banana", "apple cherry", "apple durian"])
    assert list(res.terms) == ["apple", "banana", "cherry", "durian"]
    idf_rare = math.log(4 / 2) + 1  # smooth idf: ln((1+n)/(1+df)) + 1; apple's idf is exactly 1
    expected = idf_rare / math.sqrt(1 + idf_rare**2)
    assert res.matrix[0, 1] == pytest.approx(expected)
    assert res.matrix[0, 0] == pytest.approx(1 / math.sqrt(1 + idf_rare**2))
    top = T.top_terms(["apple banana", "apple cherry", "apple durian"], k=2)
    assert top["terms"].tolist() == [["banana", "apple"], ["cherry", "apple"], ["durian", "apple"]]
    assert res.mean().index[0] == "apple"
    with pytest.raises(ValueError, match="only stop words"):
        T.tfidf(["the", "and"])


def test_distinctive_terms_known_groups_and_disjoint():
    for method in ("tfidf", "log-odds"):
        d = T.distinctive_terms(ANIMALS, DOGS, top=5, names=("cat", "dog"), method=method)
        cat = d[d["group"] == "cat"]
        dog = d[d["group"] == "dog"]
        assert not set(cat["term"]) & set(dog["term"])
        assert (d["score"] > 0).all()
        assert cat.iloc[0]["term"] == "cats" and cat.iloc[0]["count_a"] == 2 and cat.iloc[0]["count_b"] == 0
        assert dog.iloc[0]["term"] == "bark"
        assert list(cat["rank"]) == list(range(1, len(cat) + 1))
    # the same texts in both groups: nothing is distinctive
    same = T.distinctive_terms(ANIMALS, ANIMALS)
    assert len(same) == 0
    with pytest.raises(ValueError, match="two group names"):
        T.distinctive_terms(ANIMALS, DOGS, names=("only",))
    with pytest.raises(ValueError, match="no texts"):
        T.distinctive_terms([], DOGS)
    with pytest.raises(ValueError, match="method"):
        T.distinctive_terms(ANIMALS, DOGS, method="chi2")


def test_log_odds_prefers_more_evidence():
    a = ["alpha beta"] * 10 + ["gamma"]
    b = ["delta"] * 11
    d = T.distinctive_terms(a, b, method="log-odds", top=3)
    terms = d[d["group"] == "A"]["term"].tolist()
    assert terms.index("alpha") < terms.index("gamma")  # seen 10 times beats seen once


# ---------------------------------------------------------------- embeddings
def _reference(model, tok, texts):
    """all-MiniLM-L6-v2 as sentence-transformers computes it: one text at a time, mean pooled, normalised."""
    import torch

    out = []
    with torch.inference_mode():
        for t in texts:
            enc = tok(t, return_tensors="pt", truncation=True, max_length=256)
            h = model(**enc).last_hidden_state[0]
            v = h.mean(0)
            out.append((v / v.norm()).numpy())
    return np.stack(out)


def test_embed_matches_reference_and_is_order_independent(minilm):
    texts = ["A cat sits on the mat.", "Stock markets fell sharply today after the announcement.", "Hi",
             "A kitten rests on a rug."]
    E = T.embed(texts, minilm, cache=False)
    assert E.shape == (4, 384) and E.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(E, _reference(*minilm, texts), atol=2e-5)
    R = T.embed(texts[::-1], minilm, cache=False)
    np.testing.assert_allclose(R[::-1], E, atol=2e-5)
    S = E @ E.T
    assert S[0, 3] > 0.5 > S[0, 1]  # cat ~ kitten, not stocks


# The first four values of ``embed`` before it pooled through sentence-transformers (mean/cls pooling
# written by hand): switching to sentence-transformers' Pooling module must not move them.
_HAND_POOLED_MEAN = [[0.1265353, -0.0328508, -0.0290596, 0.044407], [0.0400337, -0.0099488, 0.0935438, 0.0730042],
                     [-0.0904763, 0.0404396, 0.0239057, 0.0589479]]
_HAND_POOLED_CLS_RAW = [[0.4972906, -0.0550457, -0.0751658, 0.2198953], [0.2115728, 0.4656887, 0.4675098, 0.5448501],
                        [0.0287796, 0.1273557, 0.001488, 0.15526]]


def test_embed_keeps_its_vectors_and_matches_sentence_transformers(minilm):
    from sentence_transformers import SentenceTransformer

    from interplab import models

    texts = ["A cat sits on the mat.", "Stock markets fell sharply today after the announcement.", "Hi"]
    E = T.embed(texts, minilm, cache=False)
    np.testing.assert_allclose(E[:, :4], _HAND_POOLED_MEAN, atol=1e-5)
    np.testing.assert_allclose(T.embed(texts, minilm, cache=False, pooling="cls", normalize=False)[:, :4],
                               _HAND_POOLED_CLS_RAW, atol=1e-5)
    st = SentenceTransformer(str(models.embedded_encoder_path()), device="cpu")
    assert st.max_seq_length == T.context_length(*minilm) == 256
    long = "the quick brown fox jumps " * 80  # past the 256-token context: both cut it the same way
    with pytest.warns(T.TruncationWarning):
        mine = T.embed(texts + [long], minilm, cache=False)
    np.testing.assert_allclose(mine, st.encode(texts + [long], convert_to_numpy=True), atol=1e-5)


def test_encoder_classifier_pools_like_embed(minilm):
    from interplab.explain import EncoderClassifier

    texts = ["A cat sits on the mat.", "Hi", "the quick brown fox " * 100]
    clf = EncoderClassifier(*minilm, precision="float32")
    with pytest.warns(T.TruncationWarning):
        E = T.embed(texts, minilm, cache=False)
    np.testing.assert_allclose(clf.embed(texts), E, atol=1e-6)


def test_embed_cache_skips_the_model(minilm, monkeypatch, tmp_path):
    monkeypatch.setenv("INTERPLAB_CACHE", str(tmp_path))
    model, _ = minilm
    calls = []
    handle = model.register_forward_hook(lambda *a: calls.append(1))
    try:
        texts = ["one text", "another text", "one text"]  # duplicates are embedded once
        first = T.embed(texts, minilm)
        assert len(calls) == 1
        again = T.embed(texts, minilm)
        assert len(calls) == 1  # all from the disk cache
        np.testing.assert_array_equal(first, again)
        np.testing.assert_array_equal(first[0], first[2])
        assert list((tmp_path / "embeddings").glob("*.sqlite"))
        T.embed(texts + ["a new one"], minilm)
        assert len(calls) == 2
    finally:
        handle.remove()


def test_embed_uses_eval_mode_and_restores_it(minilm):
    model, _ = minilm
    ref = T.embed(["dropout must be off"], minilm, cache=False)
    model.train()
    try:
        again = T.embed(["dropout must be off"], minilm, cache=False)
        assert model.training  # the caller's mode is restored
    finally:
        model.eval()
    np.testing.assert_allclose(again, ref, atol=1e-6)


def test_embed_survives_a_corrupt_cache(minilm, monkeypatch, tmp_path):
    monkeypatch.setenv("INTERPLAB_CACHE", str(tmp_path))
    clean = T.embed(["a sentence"], minilm, cache=False)
    T.embed(["a sentence"], minilm)
    (db,) = (tmp_path / "embeddings").glob("*.sqlite")
    db.write_bytes(b"this is not a database" * 100)
    with pytest.warns(RuntimeWarning, match="cache .* is unreadable"):
        again = T.embed(["a sentence"], minilm)
    np.testing.assert_allclose(again, clean, atol=1e-6)


def test_embed_truncates_long_text_with_warning(minilm, monkeypatch, tmp_path):
    monkeypatch.setenv("INTERPLAB_CACHE", str(tmp_path))
    model, tok = minilm
    assert T.context_length(model, tok) == 256
    long = "the quick brown fox " * 300
    with pytest.warns(T.TruncationWarning, match=r"1 of 2 texts .* 256-token context"):
        E = T.embed([long, "short"], minilm)
    assert np.isfinite(E).all()
    # the embedding is that of the first 256 tokens
    ids = tok(long, truncation=True, max_length=256)["input_ids"]
    head = tok.decode(ids[1:-1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", T.TruncationWarning)
        H = T.embed([head], minilm, cache=False)
    assert float(E[0] @ H[0]) > 0.999
    with pytest.warns(T.TruncationWarning):  # a cached long text still warns
        T.embed([long], minilm)


def test_embed_edge_inputs(minilm):
    assert T.embed([], minilm).shape == (0, 384)
    E = T.embed(["¿Dónde está la biblioteca?", "我喜欢猫", "🐱🐶🎉", ""], minilm, cache=False)
    assert E.shape == (4, 384) and np.isfinite(E).all()
    with pytest.raises(TypeError, match=r"embed: texts\[1\]"):
        T.embed(["ok", None], minilm)
    with pytest.raises(ValueError, match="longer than the encoder's context"):
        T.embed(["ok"], minilm, max_length=10_000)
    with pytest.raises(ValueError, match="tokenizer"):
        T.embed(["ok"], minilm[0])


def test_project_shapes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 8)).astype(np.float32)
    assert T.project(X, "pca").shape == (30, 2)
    assert T.project(X[:12], "tsne", max_iter=250).shape == (12, 2)
    assert T.project(X[:1], "pca").tolist() == [[0.0, 0.0]]
    assert T.project(X[:0]).shape == (0, 2)
    with pytest.raises(ValueError, match="method"):
        T.project(X, "mds")


def test_search_nearest_is_on_topic(minilm):
    import pandas as pd

    docs = pd.Series(["How do I bake sourdough bread?", "The stock market crashed in 1929.",
                      "My cat keeps scratching the sofa.", "Best way to learn Python programming"],
                     index=[10, 11, 12, 13])
    res = T.search(["stop my kitten clawing furniture", "recipe for a loaf"], docs, k=2, model=minilm)
    top = res[res["rank"] == 1].set_index("query")["index"].to_dict()
    assert top == {"stop my kitten clawing furniture": 12, "recipe for a loaf": 10}
    assert len(res) == 4 and (res.groupby("query")["score"].apply(lambda s: s.is_monotonic_decreasing)).all()
    assert len(T.search("anything", ["only one"], k=5, model=minilm)) == 1


# ---------------------------------------------------------------- topics
CORPUS = [
    "the goalkeeper saved the penalty in the football match",
    "the striker scored a goal and the football fans cheered",
    "football league match ends with a late goal",
    "bake the bread dough in a hot oven",
    "knead the dough and let the bread rise before you bake",
    "oven temperature matters when you bake bread",
    "the stock market fell as investors sold shares",
    "shares rallied and the stock market recovered",
    "investors bought shares after the market dip",
]
THEMES = [0, 0, 0, 1, 1, 1, 2, 2, 2]


VOCAB = [["goal", "match", "striker", "keeper", "league", "penalty", "fans", "referee"],
         ["bread", "dough", "oven", "bake", "flour", "yeast", "crust", "knead"],
         ["stock", "shares", "market", "investor", "bond", "price", "trading", "fund"]]


def _themed_corpus(n=60, seed=0):
    """n texts of 8 words, each drawn from one of three disjoint vocabularies (the known answer)."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(VOCAB[i % 3], 8)) for i in range(n)], [i % 3 for i in range(n)]


def _assert_topics_match(tm, themes):
    dom = tm.dominant()
    # each theme's texts share one dominant topic, and the three themes get three different topics
    by_theme = [set(dom[np.array(themes) == k]) for k in range(3)]
    assert all(len(s) == 1 for s in by_theme) and len(set().union(*by_theme)) == 3
    return dom


def test_topics_nmf_on_short_sentences():
    tm = T.topics(CORPUS, 3, n_words=5)
    assert tm.doc_topics.shape == (9, 3)
    np.testing.assert_allclose(tm.doc_topics.sum(1), 1)
    dom = _assert_topics_match(tm, THEMES)
    assert len(tm.words) == 3 and all(len(w) == 5 for w in tm.words["words"])
    shares = tm.shares(["sport" if t == 0 else "other" for t in THEMES])
    assert shares.shape == (2, 3)
    np.testing.assert_allclose(shares.sum(axis=1), 1)
    assert tm.transform(["a goal in the football match"]).argmax() == dom[0]


@pytest.mark.parametrize("method", ["nmf", "lda"])
def test_topics_recover_known_vocabularies(method):
    docs, themes = _themed_corpus()
    tm = T.topics(docs, 3, method=method)
    _assert_topics_match(tm, themes)
    for words in tm.words["words"]:  # every topic's top words come from one vocabulary
        assert sum(set(words[:4]) <= set(v) for v in VOCAB) == 1
    shares = tm.shares([str(t) for t in themes])
    assert (shares.max(axis=1) > 0.8).all()


def test_topics_edge_inputs():
    with pytest.raises(ValueError, match="no texts"):
        T.topics([], 2)
    with pytest.raises(ValueError, match="needs at least 5 texts"):
        T.topics(["one document about football"], 5)
    one = T.topics(["one document about football"], 1)
    assert one.doc_topics.tolist() == [[1.0]]
    with pytest.raises(ValueError, match="method"):
        T.topics(CORPUS, 2, method="hdp")
    tm = T.topics(CORPUS + ["the and of"], 3)  # a text with no known terms has share 0, not NaN
    assert tm.doc_topics[-1].tolist() == [0, 0, 0] and tm.dominant()[-1] == -1


# ---------------------------------------------------------------- compare
def test_compare_reports_side_by_side(minilm):
    c = T.compare(CORPUS[:3] + CORPUS[6:], CORPUS[3:6], names=("news", "baking"), n_topics=2, model=minilm,
                  cache=False)
    assert list(c.summary.columns) == ["news", "baking"]
    assert c.summary.loc["texts"].tolist() == [6, 3]
    assert c.summary.loc["nearest neighbour in same group", "baking"] == 1.0
    assert c.summary.loc["similarity within", "baking"] > c.summary.loc["similarity to other group", "baking"]
    wide = c.distinctive_wide()
    assert not set(wide["news"]) - {""} & set(wide["baking"]) - {""}
    assert "bread" in set(wide["baking"])
    assert c.topic_shares.shape == (2, 2) and c.embeddings.shape == (9, 384)
    assert "most distinctive terms" in c._repr_html_()
    no_emb = T.compare(["a cat"], ["a dog"], embed=False, n_topics=2)
    assert no_emb.embeddings is None and no_emb.topics.n_topics == 2
    with pytest.warns(UserWarning, match="only 2 distinct terms"):
        tiny = T.compare(["a cat", "cat"], ["a dog"], embed=False, n_topics=3)
    assert tiny.topics.n_topics == 2
    with pytest.raises(ValueError, match="expected one row per text"):
        T.compare(["a cat"], ["a dog"], embeddings=np.zeros((3, 4)))


def test_plots_draw():
    import matplotlib

    matplotlib.use("Agg")
    d = T.distinctive_terms(ANIMALS, DOGS, top=3)
    assert len(T.plot_terms(d)) == 2
    T.plot_terms(T.frequencies(ANIMALS, top=3))
    tm = T.topics(CORPUS, 3)
    tm.plot()
    tm.plot(groups=[str(t) for t in THEMES])
    ax = T.plot_map(np.random.default_rng(0).normal(size=(9, 5)), [str(t) for t in THEMES], method="pca")
    assert len(ax.collections) == 3
    with pytest.raises(ValueError, match="labels for"):
        T.plot_map(np.zeros((3, 2)), ["a"])


# ---------------------------------------------------------------- real data
def test_hh_rlhf_pairs_are_each_others_neighbours(shared_data, minilm):
    """On real HH-RLHF pairs the chosen and rejected replies answer the same conversation, so each chosen
    reply's nearest rejected reply is far more often its own pair than chance (1/n)."""
    from interplab import data

    df = data.load("hh-rlhf", split="test", source=shared_data / "hh-rlhf" / "harmless-base" / "test.jsonl.gz",
                   parsed=True).head(40)
    df = df[(df["chosen_reply"] != "") & (df["rejected_reply"] != "")]
    A = T.embed(df["chosen_reply"], minilm, cache=False)
    B = T.embed(df["rejected_reply"], minilm, cache=False)
    hit = float(((A @ B.T).argmax(1) == np.arange(len(A))).mean())
    assert hit > 8 / len(A)  # chance is 1 / len(A); about 0.5 is typical
    d = T.distinctive_terms(df["chosen_reply"], df["rejected_reply"], names=("chosen", "rejected"))
    assert len(d[d["group"] == "chosen"]) and len(d[d["group"] == "rejected"])


def test_type_token_ratio_is_length_matched():
    short = ["the cat sat on the mat"] * 3                       # 18 words, 5 types
    long = [" ".join(f"w{i % 40}" for i in range(200))] * 2      # 400 words, 40 types
    assert T.type_token_ratio(short) == pytest.approx(5 / 18)
    assert T.type_token_ratio(long) == pytest.approx(40 / 400)   # plain ratio: the long group looks poorer...
    matched = T.type_token_ratio(long, 18, seed=0)               # ...but on 18-word samples it is the richer one
    assert matched > T.type_token_ratio(short, 18) and 0 < matched <= 1
    with pytest.raises(ValueError, match="more than the 18 words"):
        T.type_token_ratio(short, 19)
    cmp = T.compare(short, long, names=("s", "l"), embed=False, n_topics=1)
    assert cmp.summary.loc["words per type/token sample"].tolist() == [18, 18]
    assert cmp.summary.loc["type/token ratio (equal-size samples)", "l"] > cmp.summary.loc["type/token ratio (equal-size samples)", "s"]


def test_topics_warn_on_few_texts():
    with pytest.warns(T.FewTextsWarning, match=r"topics from 5 texts \(fewer than 200\) are mostly noise"):
        T.topics(CORPUS[:5] if len(CORPUS) >= 5 else CORPUS * 5, 2)
