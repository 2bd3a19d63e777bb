"""interplab.explain: the batched classifier wrapper, LIME/ELI5/SHAP attributions, agreement, stability, views."""
from __future__ import annotations

import re

import numpy as np
import pytest

from interplab import explain

POSITIVE = "A wonderful, moving film. The acting is superb and the story is great. I loved it."
NEGATIVE = "A dull, boring mess. The plot is awful and the acting is terrible. I hated it."


@pytest.fixture(scope="module")
def imdb():
    from interplab import data

    return data.load("imdb", split="train"), data.load("imdb", split="test")


@pytest.fixture(scope="module")
def tfidf(imdb):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train, _ = imdb
    return make_pipeline(TfidfVectorizer(), LogisticRegression(C=10, max_iter=1000)).fit(train["text"], train["label"])


# ---------------------------------------------------------------- the batched wrapper

def test_batched_map_dedupes_sorts_and_restores_order():
    seen = []

    def fn(batch):
        seen.append(list(batch))
        return np.array([[len(t)] for t in batch], dtype=float)

    texts = ["ccc", "a", "bb", "a", "dddd", "bb", "eeeee", "a"]
    out = explain.batched_map(fn, texts, batch_size=2, progress=False)
    assert out[:, 0].tolist() == [len(t) for t in texts]          # caller's order
    flat = [t for b in seen for t in b]
    assert sorted(flat) == sorted(set(texts))                       # each unique text once
    assert all(len(b) <= 2 for b in seen)
    assert [len(t) for t in flat] == sorted(len(t) for t in flat)   # length-sorted batches


def test_wrapper_matches_pipeline_and_never_sends_one_big_batch(tfidf):
    sizes = []

    def counted(batch):
        sizes.append(len(batch))
        return tfidf.predict_proba(batch)

    clf = explain.wrap_classifier(counted, batch_size=64, class_names=["neg", "pos"])
    texts = [POSITIVE, NEGATIVE] * 150 + [f"film number {i} was great" for i in range(200)]
    p = clf(texts)
    np.testing.assert_allclose(p, tfidf.predict_proba(texts))
    assert max(sizes) <= 64 and sum(sizes) == 202
    assert clf.stats["texts"] == 500 and clf.stats["unique"] == 202


def test_lime_through_wrapper_equals_lime_on_raw_model(tfidf):
    """The wrapper is transparent: same seed, same explanation as LIME calling predict_proba directly."""
    from lime.lime_text import LimeTextExplainer

    wrapped = explain.explain_text(POSITIVE, explain.wrap_classifier(tfidf, batch_size=50), "lime",
                                   label=1, num_samples=400, seed=3)
    raw = LimeTextExplainer(random_state=3).explain_instance(POSITIVE, tfidf.predict_proba, labels=(1,),
                                                             num_features=100, num_samples=400)
    assert dict(raw.as_list(1)) == pytest.approx(dict(zip(wrapped.features, wrapped.weights)))
    assert wrapped.score == pytest.approx(raw.score)


def test_wrapper_bad_inputs(tfidf):
    clf = explain.wrap_classifier(tfidf)
    with pytest.raises(TypeError, match="single str"):
        clf("just one review")
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        clf(["ok", 3])
    with pytest.raises(ValueError, match="positive integer"):
        explain.wrap_classifier(tfidf, batch_size=0)
    logits = explain.wrap_classifier(lambda b: np.full((len(b), 2), 3.0))
    with pytest.raises(ValueError, match="not probabilities"):
        logits(["a", "b"])
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    with pytest.raises(ValueError, match="not fitted"):
        explain.wrap_classifier(make_pipeline(TfidfVectorizer(), LogisticRegression()))
    assert clf([]).shape == (0, 2)
    assert clf([POSITIVE]).shape == (1, 2)  # still works after the errors


def test_encoder_classifier_batches_without_changing_results(minilm, imdb):
    model, tok = minilm
    train, test = imdb
    clf = explain.EncoderClassifier(model, tok, batch_size=4, precision="float32")
    texts = list(test["text"][:6]) + [test["text"][0]]
    emb = clf.embed(texts, progress=False)
    one_by_one = np.vstack([clf.embed_batch([t]) for t in texts])
    np.testing.assert_allclose(emb, one_by_one, atol=1e-5)          # padding + sorting change nothing
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="not trained"):
        clf.predict_proba(["x"])
    with pytest.raises(ValueError, match="two classes"):
        clf.fit(["a", "b"], [1, 1])


def test_predict_reads_the_embedding_cache_and_lime_never_fills_it(minilm, imdb, cache_dir):
    """predict() on a trained MiniLM head embeds a review once (text.embed's cache): a second predict runs
    no encoder forward. predict_proba, what LIME and SHAP call, runs the encoder every time."""
    model, tok = minilm
    train, test = imdb
    fit_on = train.groupby("label").head(8)
    clf = explain.wrap_classifier(explain.EncoderClassifier(model, tok, precision="float32")
                                  .fit(list(fit_on.text), list(fit_on.label)), progress=False)
    texts = list(test.text[:6])
    calls = []
    hook = model.register_forward_hook(lambda *_: calls.append(1))
    try:
        first = clf.predict(texts)
        n_first = len(calls)
        again = clf.predict(texts)
        n_again = len(calls) - n_first
        proba = clf(texts)
        clf(texts)
        n_proba = len(calls) - n_first - n_again
    finally:
        hook.remove()
    np.testing.assert_array_equal(first, proba.argmax(1))
    np.testing.assert_array_equal(again, first)
    assert n_first >= 1 and n_again == 0, (n_first, n_again)
    assert n_proba >= 2, n_proba
    assert clf.predict([]).shape == (0,)
    with pytest.raises(TypeError, match="single str"):
        clf.predict("one review")


def test_bfloat16_classifier_agrees_with_float32_and_so_does_lime(minilm, imdb):
    """The fast precision changes probabilities by < 0.01 and LIME's weights far less than its seed does."""
    from lime.lime_text import LimeTextExplainer

    model, tok = minilm
    train, test = imdb
    # 24 training reviews are plenty for a head whose only job here is to be the same model in two precisions
    # (bfloat16 is emulated, and slow, on CPUs without AMX)
    fit_on = train.groupby("label").head(12)
    f32 = explain.EncoderClassifier(model, tok, precision="float32").fit(list(fit_on.text), list(fit_on.label))
    b16 = explain.EncoderClassifier(model, tok, precision="bfloat16").fit(list(fit_on.text), list(fit_on.label))
    assert (f32.precision, b16.precision) == ("float32", "bfloat16") and "bfloat16" in b16.name
    texts = list(test.text[:12])
    p32, p16 = f32.predict_proba(texts), b16.predict_proba(texts)
    assert np.abs(p32 - p16).max() < 0.02
    assert not np.array_equal(p32, p16)  # it really ran in another precision
    np.testing.assert_array_equal(p32.argmax(1), p16.argmax(1))

    review = explain.first_words(test.text[0], 30)  # 30 words: bfloat16 is slow where it is emulated

    def weights(clf, seed):
        exp = LimeTextExplainer(class_names=["neg", "pos"], random_state=seed)
        return dict(exp.explain_instance(review, explain.wrap_classifier(clf, progress=False), labels=(1,),
                                         num_features=10_000, num_samples=300).as_list(1))

    w32, w16, w32_seed = weights(f32, 0), weights(b16, 0), weights(f32, 1)
    words = sorted(w32)
    a, b, c = (np.array([w[k] for k in words]) for w in (w32, w16, w32_seed))
    assert np.abs(a - b).max() < 0.25 * np.abs(a - c).max()


def test_first_words_cuts_after_the_nth_word_and_keeps_its_punctuation():
    text = "I loved it. Really, truly (honestly!) great... but long."
    assert explain.first_words(text, 3) == "I loved it."
    assert explain.first_words(text, 6) == "I loved it. Really, truly (honestly!)"
    assert explain.first_words(text, 8) == "I loved it. Really, truly (honestly!) great... but"
    assert explain.first_words(text, 9) == explain.first_words(text, 50) == explain.first_words(text, None) == text
    assert explain.first_words("", 3) == "" and explain.first_words("  ...  ", 1) == "  ...  "
    # LIME's words: a cut review has exactly n of them, and they are the review's first n
    import re

    review = " ".join(f"w{i}, x{i}!" for i in range(100))
    assert re.findall(r"\w+", explain.first_words(review, 37)) == re.findall(r"\w+", review)[:37]
    for bad in (0, -2, 2.5, True, "3"):
        with pytest.raises(ValueError, match="n must be a positive int or None"):
            explain.first_words(text, bad)
    with pytest.raises(TypeError, match="text must be a str"):
        explain.first_words(["a list"], 3)


def test_precision_auto_follows_the_hardware(minilm, monkeypatch):
    from interplab import torchutil

    model, tok = minilm
    monkeypatch.setattr(torchutil, "fast_bfloat16", lambda device="cpu": False)
    assert explain.EncoderClassifier(model, tok).precision == "float32"
    monkeypatch.setattr(torchutil, "fast_bfloat16", lambda device="cpu": True)
    assert explain.EncoderClassifier(model, tok).precision == "bfloat16"
    assert explain.EncoderClassifier(model, tok, precision="float32").precision == "float32"
    with pytest.raises(ValueError, match="precision must be one of"):
        explain.EncoderClassifier(model, tok, precision="half")


def test_wrap_transformers_sequence_classifier(minilm):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    _, tok = minilm
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"})
    net = BertForSequenceClassification(cfg).eval()
    clf = explain.wrap_classifier(net, tok, batch_size=2, precision="float32")
    assert clf.class_names == ["NEGATIVE", "POSITIVE"]
    texts = [POSITIVE, NEGATIVE, "short"]
    with torch.no_grad():
        direct = [torch.softmax(net(**tok([t], return_tensors="pt")).logits, -1)[0].numpy() for t in texts]
    np.testing.assert_allclose(clf(texts), np.vstack(direct), atol=1e-5)
    bf16 = explain.wrap_classifier(net, tok, batch_size=2, precision="bfloat16")
    assert "bfloat16" in bf16.name
    np.testing.assert_allclose(bf16(texts), np.vstack(direct), atol=0.02)
    with pytest.raises(ValueError, match="precision must be one of"):
        explain.wrap_classifier(net, tok, precision="fp8")
    with pytest.raises(TypeError, match="needs its tokenizer"):
        explain.wrap_classifier(net)
    with pytest.raises(TypeError, match="not a sequence classifier"):
        explain.wrap_classifier(net.bert, tok)


# ---------------------------------------------------------------- attributions

def test_eli5_weights_are_coefficient_times_tfidf(tfidf):
    att = explain.explain_text(POSITIVE, tfidf, "eli5", label=1)
    vec, lr = tfidf.steps[0][1], tfidf.steps[1][1]
    x = vec.transform([POSITIVE]).toarray()[0]
    vocab = vec.vocabulary_
    for f, w in zip(att.features, att.weights):
        assert w == pytest.approx(lr.coef_[0, vocab[f]] * x[vocab[f]])
    neg = explain.explain_text(POSITIVE, tfidf, "eli5", label=0)
    assert dict(zip(neg.features, neg.weights)) == pytest.approx({f: -w for f, w in zip(att.features, att.weights)})
    assert att.intercept == pytest.approx(lr.intercept_[0])


def test_shap_values_add_up_to_the_prediction(tfidf):
    att = explain.explain_text(POSITIVE, tfidf, "shap", label=1, num_samples=200)
    p = tfidf.predict_proba([POSITIVE])[0, 1]
    assert att.intercept + att.weights.sum() == pytest.approx(p, abs=1e-6)
    for f, spans in zip(att.features, att.spans):
        assert [POSITIVE[a:b] for a, b in spans] == [f] or (spans == [] and f.startswith("["))


def test_shap_over_wordpiece_tokens_keeps_special_tokens_and_adds_up(tfidf, minilm):
    _, tok = minilm
    att = explain.explain_text(POSITIVE, tfidf, "shap", label=1, num_samples=150, tokenizer=tok)
    assert att.intercept + att.weights.sum() == pytest.approx(tfidf.predict_proba([POSITIVE])[0, 1], abs=1e-6)
    assert att.features[0] == "[CLS]" and att.spans[0] == []
    assert set(att.by_word().index) == {m.lower() for m in re.findall(r"\w+", POSITIVE)}


def test_lime_and_textexplainer_on_clear_review(tfidf):
    lime = explain.explain_text(POSITIVE, tfidf, "lime", label="1", num_samples=500)
    assert lime.top(1)[0][1] > 0 and 0 < lime.score <= 1
    assert set(lime.by_word().index) == {m.lower() for m in re.findall(r"\w+", POSITIVE)}
    te = explain.explain_text(NEGATIVE, tfidf, "textexplainer", label=0, num_samples=300)
    assert te.score is not None and "mean_KL_divergence" in te.meta["metrics"]
    assert te.top(1)[0][1] > 0   # the strongest word pushes towards "negative"


def test_explain_text_bad_inputs(tfidf):
    with pytest.raises(ValueError, match="unknown method"):
        explain.explain_text(POSITIVE, tfidf, "gradcam")
    with pytest.raises(ValueError, match="empty"):
        explain.explain_text("   ", tfidf)
    with pytest.raises(ValueError, match="out of range"):
        explain.explain_text(POSITIVE, tfidf, label=5)
    with pytest.raises(ValueError, match="unknown label"):
        explain.explain_text(POSITIVE, tfidf, label="positive")
    with pytest.raises(TypeError, match="textexplainer"):
        explain.explain_text(POSITIVE, explain.wrap_classifier(tfidf.predict_proba, class_names=["0", "1"]), "eli5")


def test_by_word_splits_ngrams_and_sums_repeats():
    text = "not good, not bad"
    att = explain.Attribution("x", ["not good", "not", "bad"], [1.0, 0.5, -2.0], 1, text=text,
                              spans=[[(0, 8)], [(0, 3), (10, 13)], [(14, 17)]])
    assert att.by_word().to_dict() == pytest.approx({"not": 1.0, "good": 0.5, "bad": -2.0})


def test_compare_agreement_and_overlap(tfidf):
    atts = [explain.explain_text(POSITIVE, tfidf, m, label=1, num_samples=300) for m in ("eli5", "lime", "shap")]
    table = explain.word_weights(atts)
    assert list(table.columns) == ["eli5", "lime", "shap"]
    assert set(table.index) == {m.lower() for m in re.findall(r"\w+", POSITIVE)}
    corr = explain.rank_correlation(table)
    assert np.allclose(np.diag(corr), 1) and corr.loc["eli5", "shap"] > 0.3
    ov = explain.top_overlap(table, k=3)
    assert ((ov >= 0) & (ov <= 1)).all().all() and np.allclose(ov, ov.T)
    assert explain.word_weights(atts, normalize=True).abs().max().max() == pytest.approx(1.0)
    other = explain.explain_text(NEGATIVE, tfidf, "eli5", label=1)
    with pytest.raises(ValueError, match="different texts"):
        explain.word_weights([atts[0], other])


def test_stability_reports_overlap_and_sign_flips(tfidf):
    st = explain.stability(POSITIVE, tfidf, method="textexplainer", seeds=(0, 1, 2), num_samples=(60, 300), top_k=3)
    assert list(st.summary.index) == [60, 300]
    assert st.summary["runs"].tolist() == [3, 3]
    assert st.summary["top3_jaccard"].between(0, 1).all()
    assert len(st.attributions) == 6
    for _, row in st.sign_flips.iterrows():
        assert row["min_weight"] < 0 < row["max_weight"]
    same = [explain.explain_text(POSITIVE, tfidf, "lime", label=1, num_samples=200, seed=7) for _ in range(2)]
    np.testing.assert_array_equal(same[0].weights, same[1].weights)   # the seed is honoured
    with pytest.raises(ValueError, match="two seeds"):
        explain.stability(POSITIVE, tfidf, seeds=(0,))
    st.plot()


# ---------------------------------------------------------------- views

def test_html_views_are_offline_and_escaped(tfidf, tmp_path, open_offline):
    text = "Great <b>bold</b> claim & a great film"
    att = explain.explain_text(text, tfidf, "lime", label=1, num_samples=200)
    view = att.html()
    assert "<script" not in view.body and not re.search(r"https?://", view.body)
    assert "<b>bold" not in view.body and view.body.count("&lt;") == 2 and "&amp;" in view.body
    e5 = explain.explain_text(text, tfidf, "eli5", label=1)
    e5view = explain.eli5_html(e5.meta["eli5"])
    assert "<script" not in e5view.body and not re.search(r"https?://", e5view.body)
    both = explain.compare_html([att, e5])
    path = both.save(tmp_path / "compare.html")
    page = open_offline(path)
    assert page.errors == [] and page.requests == []
    shaded = page.page.locator("span[title]")
    assert shaded.count() >= 2
    assert "bold" in page.page.inner_text("body")


def test_static_figures(tfidf):
    import matplotlib

    matplotlib.use("Agg")
    att = explain.explain_text(POSITIVE, tfidf, "eli5", label=1)
    ax = att.plot(k=5)
    assert len(ax.patches) == 5
    ax2 = att.plot_text(width=40)
    assert len(ax2.patches) > 0
    ax3 = explain.plot_comparison(explain.word_weights([att]), k=4)
    assert len(ax3.patches) == 4


# ---------------------------------------------------------------- tabular

@pytest.fixture(scope="module")
def diabetes():
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.model_selection import train_test_split

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
    model = GradientBoostingRegressor(n_estimators=60, max_depth=2, random_state=0).fit(Xtr, ytr)
    return model, Xtr, Xte, ytr, yte


def test_global_rankings_agree_on_diabetes(diabetes):
    model, Xtr, Xte, _, yte = diabetes
    table = explain.global_rankings(model, Xtr, Xte, yte, n_repeats=3, shap_rows=40, lime_rows=5, lime_samples=300)
    assert {"permutation", "shap", "lime", "model", "rank_shap", "mean_rank"} <= set(table.columns)
    assert set(table.index) == set(Xtr.columns)
    assert {"bmi", "s5"} & set(table.index[:3])             # the well-known strongest features
    assert explain.ranking_agreement(table).loc["permutation", "shap"] > 0.5


def test_shap_and_lime_tabular(diabetes):
    model, Xtr, Xte, _, _ = diabetes
    sv = explain.shap_values(model, Xtr, Xte.iloc[:5])
    pred = model.predict(Xte.iloc[:5])
    np.testing.assert_allclose(sv.base_values + sv.values.sum(axis=1), pred, rtol=1e-6)
    att = explain.lime_tabular(model, Xtr, Xte.iloc[0], num_samples=500)
    assert sorted(att.meta["feature"]) == sorted(Xtr.columns) and att.score is not None
    assert att.proba == pytest.approx(pred[0])
    with pytest.raises(TypeError, match="DataFrame"):
        explain.lime_tabular(model, Xtr.to_numpy(), Xte.iloc[0])
    with pytest.raises(ValueError, match="one row"):
        explain.lime_tabular(model, Xtr, Xte.iloc[:2])


def test_import_is_light():
    import subprocess
    import sys

    code = "import sys, interplab.explain; print(sorted(m for m in ('torch','sklearn','shap','lime','eli5','transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_text_classifier_names_fail_clearly(monkeypatch):
    from interplab.models import ModelNotAvailableError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="pass texts= and labels="):
        explain.text_classifier("minilm")
    with pytest.raises(ModelNotAvailableError, match="not a text classifier"):
        explain.text_classifier("toy:attn-only-2l")
    with pytest.raises(ModelNotAvailableError, match="not in the local Hugging Face cache"):
        explain.text_classifier("nobody-here/not-a-cached-sentiment-model")


# ---------------------------------------------------------------- faithfulness: attributions vs real deletions

def _additive(batch):
    """A known model: p(pos) = 0.6 + 0.3 [good] - 0.4 [not], so each word's deletion effect is exact."""
    words = [set(re.findall(r"\w+", t.lower())) for t in batch]
    p = np.array([0.6 + 0.3 * ("good" in w) - 0.4 * ("not" in w) for w in words])
    return np.stack([1 - p, p], axis=1)


def _known():
    return explain.wrap_classifier(_additive, class_names=["neg", "pos"], progress=False)


def test_delete_words_removes_whole_words_only():
    assert explain.delete_words("The food was not good.", "not") == "The food was good."
    assert explain.delete_words("Not bad, NOT bad at all.", ["not"]) == "bad, bad at all."
    assert explain.delete_words("nothing is not knotted", "not") == "nothing is knotted"
    assert explain.delete_words("it was not at all good", "at all") == "it was not good"
    assert explain.delete_words("a b  c", ["b"]) == "a c"
    with pytest.raises(ValueError, match="contain no word characters"):
        explain.delete_words("text", "...")
    with pytest.raises(TypeError, match="must be a str"):
        explain.delete_words(["a list"], "a")


def test_deletion_effects_are_the_models_own_answer(tfidf):
    text = "The food was not good."
    eff = explain.deletion_effects(text, _known(), label="pos")
    assert eff.index.tolist() == ["the", "food", "was", "not", "good"]
    assert eff.to_dict() == pytest.approx({"the": 0, "food": 0, "was": 0, "not": -0.4, "good": 0.3})
    # any model: the same numbers as calling it by hand
    eff = explain.deletion_effects(POSITIVE, tfidf, label=1)
    p = tfidf.predict_proba([POSITIVE, explain.delete_words(POSITIVE, "superb")])[:, 1]
    assert eff["superb"] == pytest.approx(p[0] - p[1])
    assert eff.loc["superb"] > 0 and explain.deletion_effects(NEGATIVE, tfidf, label=1)["awful"] < 0


def test_faithfulness_scores_right_and_wrong_attributions():
    text = "The food was not good."
    right = explain.Attribution("right", ["not", "good", "food"], [-0.4, 0.3, 0.01], 1, "pos", text=text,
                                spans=[[(13, 16)], [(17, 21)], [(4, 8)]])
    wrong = explain.Attribution("wrong", ["not", "good", "food"], [0.4, -0.3, 0.5], 1, "pos", text=text,
                                spans=[[(13, 16)], [(17, 21)], [(4, 8)]])
    f = explain.faithfulness([right, wrong], _known())
    s = f.summary
    assert s.loc["right", "top_word"] == "not" and s.loc["right", "top_effect"] == pytest.approx(-0.4)
    assert s.loc["right", "top_effect_rank"] == 1 and s.loc["wrong", "top_word"] == "food"
    assert s.loc["wrong", "top_effect_rank"] == 3                 # 'food' ties with the zero-effect words
    assert s.loc["right", "sign_agreement"] == 1.0 and s.loc["wrong", "sign_agreement"] == 0.0
    assert s.loc["right", "spearman"] > 0.5 > s.loc["wrong", "spearman"]
    # deleting each method's most positive word: 'good' (really +0.3) vs 'food' (really 0)
    assert s.loc["right", "comprehensiveness@1"] == pytest.approx(0.3)
    assert s.loc["wrong", "comprehensiveness@1"] == pytest.approx(0.0)
    assert f.words.loc["not"].tolist() == pytest.approx([-0.4, -0.4, 0.4])
    assert f.proba == pytest.approx(0.5)
    # LIME on the known model finds what deletion finds
    lime = explain.explain_text(text, _known(), "lime", label="pos", num_samples=300, seed=0)
    fl = explain.faithfulness(lime, _known()).summary.loc["lime"]
    assert fl["top_word"] == "not" and fl["spearman"] > 0.8 and fl["sign_agreement"] == 1.0
    other = explain.Attribution("x", ["a"], [1.0], 1, "pos", text="another text", spans=[[(0, 1)]])
    with pytest.raises(ValueError, match="different texts"):
        explain.faithfulness([right, other], _known())
    with pytest.raises(ValueError, match="at least one"):
        explain.faithfulness([], _known())
    with pytest.raises(ValueError, match="k must be"):
        explain.faithfulness(right, _known(), k=0)


PAIRS = [
    {"id": "a", "kind": "negated praise", "original": "The food was good.", "edited": "The food was not good.", "cue": "not"},
    {"id": "b", "kind": "intensifier", "original": "The food was good.", "edited": "The food was really good.", "cue": "really"},
    {"id": "c", "kind": "negated praise", "original": "I loved it, good.", "edited": "I did not love it, good.", "cue": "not"},
]


def test_minimal_pairs_checks_the_cue_against_the_edit():
    import pandas as pd

    pairs = pd.DataFrame(PAIRS)
    before = pairs.copy()
    res = explain.minimal_pairs(pairs, _known(), methods=("lime", "shap"), label="pos",
                                num_samples={"lime": 300, "shap": 60}, progress=False)
    pd.testing.assert_frame_equal(pairs, before)                       # the caller's table is untouched
    t = res.table.set_index(["pair", "method"])
    assert len(t) == 6 and set(res.attributions) == set(t.index)
    a = t.loc[("a", "lime")]
    assert a["p_original"] == pytest.approx(0.9) and a["p_edited"] == pytest.approx(0.5)
    assert a["shift"] == pytest.approx(-0.4) == a["cue_effect"] and a["flipped"]
    assert a["pure_insertion"] and a["cue_rank"] == 1 and a["cue_weight"] < -0.2 and a["kind"] == "negated praise"
    b = t.loc[("b", "lime")]
    assert b["p_edited"] == pytest.approx(0.9) and b["shift"] == pytest.approx(0) == b["cue_effect"] and not b["flipped"]
    assert abs(b["cue_weight"]) < 0.05 and b["pure_insertion"]         # a word the model ignores gets ~no weight
    assert not t.loc[("c", "lime"), "pure_insertion"]                  # 'loved' -> 'did not love' is more than one word
    for m in ("lime", "shap"):
        assert t.loc[("a", m), "top_word"] == "not" and t.loc[("a", m), "top_effect_rank"] == 1
    s = res.summary(by="kind")
    assert s.loc[("negated praise", "lime"), "pairs"] == 2 and s.loc[("negated praise", "lime"), "cue_sign_ok"] == 1.0
    assert s.loc[("intensifier", "shap"), "flip_rate"] == 0.0 and s.loc[("negated praise", "shap"), "flip_rate"] == 1.0
    axes = res.plot(by="kind")
    assert len(axes) == 2 and len(axes[1].collections) == 2          # one scatter per method
    import matplotlib.pyplot as plt
    plt.close("all")


def test_minimal_pairs_bad_inputs():
    import pandas as pd

    pairs = pd.DataFrame(PAIRS)
    with pytest.raises(ValueError, match="lack column.*cue"):
        explain.minimal_pairs(pairs.drop(columns="cue"), _known(), progress=False)
    with pytest.raises(ValueError, match="pair 'a': cue 'never' is not a whole word"):
        explain.minimal_pairs(pairs.assign(cue=["never", "not", "not"]), _known(), progress=False)
    with pytest.raises(ValueError, match="pair 'b': edited is empty"):
        explain.minimal_pairs(pairs.assign(edited=[PAIRS[0]["edited"], " ", "x not"]), _known(), progress=False)
    with pytest.raises(ValueError, match="unknown method"):
        explain.minimal_pairs(pairs, _known(), methods=("gradcam",), progress=False)
    with pytest.raises(ValueError, match="no entry for"):
        explain.minimal_pairs(pairs, _known(), methods=("lime", "shap"), num_samples={"lime": 100}, progress=False)
    with pytest.raises(ValueError, match="unknown label 'happy'"):
        explain.minimal_pairs(pairs, _known(), label="happy", progress=False)
    with pytest.raises(ValueError, match="empty"):
        explain.minimal_pairs(pairs.iloc[:0], _known(), progress=False)
    assert pairs.equals(pd.DataFrame(PAIRS))


def test_linear_baseline_and_model_output(diabetes):
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.model_selection import train_test_split

    model, Xtr, Xte, ytr, yte = diabetes
    line = explain.linear_baseline(Xtr, ytr, Xte, yte)
    assert 0.3 < line < 0.6 and line > model.score(Xte, yte)  # diabetes is near-linear: the line beats these trees
    np.testing.assert_array_equal(explain.model_output(model, Xte.iloc[:3]), model.predict(Xte.iloc[:3]))
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
    assert explain.linear_baseline(Xtr, ytr, Xte, yte) > 0.9  # guessed as classes: logistic regression accuracy
    clf = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0).fit(Xtr, ytr)
    out = explain.model_output(clf, Xte.iloc[:4])
    np.testing.assert_allclose(out, clf.predict_proba(Xte.iloc[:4])[:, 1])
    sv = explain.shap_values(clf, Xtr, Xte.iloc[:4])  # permutation explainer on p(benign): additive all the same
    np.testing.assert_allclose(sv.base_values + sv.values.sum(axis=1), out, rtol=1e-5, atol=1e-6)


def test_agreement_and_stability_over_many_texts(tfidf, imdb):
    _, test = imdb
    texts = test["text"].sample(6, random_state=1).tolist()
    lin = explain.wrap_classifier(tfidf, class_names=["neg", "pos"])
    fns = {"lime": lambda t: explain.explain_text(t, lin, "lime", label="pos", num_samples=300, seed=0),
           "exact": lambda t: explain.explain_text(t, lin, "eli5", label="pos")}
    per_text, summary = explain.agreement_over(texts, fns, top_k=5)
    assert len(per_text) == 6 and list(summary.index) == ["lime vs exact"] and summary.loc["lime vs exact", "texts"] == 6
    # LIME recovers the linear model's exact attributions far better than a random ranking would
    assert summary.loc["lime vs exact", "spearman median"] > 0.3
    assert summary.loc["lime vs exact", "top5_jaccard mean"] > summary.loc["lime vs exact", "jaccard_random mean"] + 0.2
    assert 0 < summary.loc["lime vs exact", "jaccard_random mean"] < 0.5
    st = explain.stability_over(texts[:2], lin, method="lime", seeds=(0, 1), num_samples=(100,), label="pos")
    assert list(st["text"]) == [0, 1] and st["top5_jaccard"].between(0, 1).all()
    with pytest.raises(ValueError, match="at least two explainers"):
        explain.agreement_over(texts, {"lime": fns["lime"]})


def test_text_classifier_progress_false_draws_no_bar_while_fitting(capsys):
    """progress=False reaches the head's fit too (it used to draw an 'embedding' bar while training)."""
    from interplab import explain

    texts = [f"review number {i}: {'great fun' if i % 2 else 'dull and slow'}" for i in range(8)]
    clf = explain.text_classifier("minilm", texts=texts, labels=[i % 2 for i in range(8)], batch_size=2, progress=False)
    clf.predict_proba(texts[:4])
    err = capsys.readouterr().err
    assert "embedding" not in err and "it/s" not in err and "text/s" not in err, err
