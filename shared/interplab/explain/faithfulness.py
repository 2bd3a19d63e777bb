"""Do explanations say what the model actually does? Check attributions against real deletions.

An attribution method says "this word pushed the prediction up by w". The model can answer directly:
delete the word and see how far the probability moves. These helpers make that comparison::

    explain.delete_words("The food was not good.", "not")      # 'The food was good.'
    explain.deletion_effects(text, clf, label="pos")           # per word: p(text) - p(text without it)
    f = explain.faithfulness([lime_att, shap_att], clf)        # rank correlation, sign agreement, ...
    res = explain.minimal_pairs(pairs, clf, label="pos")       # original/edited pairs: is the edit credited?

A deletion effect has the same sign convention as a weight: positive means the word pushed towards
``label``. Deletion is one counterfactual among many (the text without the word is itself unusual),
but it is the one LIME's perturbations and SHAP's masking are built from, so it is a fair yardstick.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import EmptyTextError
from .attribution import WORD, Attribution
from .classifier import BatchedClassifier

_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,!?;:])")


def _phrases(words) -> list[str]:
    if isinstance(words, str):
        words = [words]
    out = [str(w).strip() for w in words]
    bad = [w for w in out if not WORD.search(w)]
    if bad:
        raise ValueError(f"nothing to delete: {bad!r} contain no word characters")
    return out


def delete_words(text: str, words) -> str:
    """``text`` with every whole-word occurrence of ``words`` removed (case-insensitive), spaces tidied.

    ``words``: one word or phrase, or a list of them (a phrase is removed where its words appear in order).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    for phrase in _phrases(words):
        parts = [re.escape(p) for p in WORD.findall(phrase)]
        pattern = r"(?<!\w)" + r"\W+".join(parts) + r"(?!\w)"
        text = re.sub(pattern, "", text, flags=re.IGNORECASE)
    text = re.sub(r"[ \t]+", " ", text)
    return _SPACE_BEFORE_PUNCT.sub(r"\1", text).strip()


def _quiet(classifier) -> BatchedClassifier:
    from .classifier import wrap_classifier

    clf = classifier if isinstance(classifier, BatchedClassifier) else wrap_classifier(classifier)
    quiet = BatchedClassifier(clf.predict_batch, batch_size=clf.batch_size, class_names=clf.class_names,
                              tokenizer=clf.tokenizer, estimator=clf.estimator, progress=False, name=clf.name)
    quiet.stats = clf.stats  # the caller's counters still count
    return quiet


def _label_index(clf: BatchedClassifier, label, n_classes: int) -> int:
    names = clf.class_names or [str(i) for i in range(n_classes)]
    if label is None:
        return 1 if n_classes == 2 else 0
    if isinstance(label, str):
        if label not in names:
            raise ValueError(f"unknown label {label!r}; the classes are {names}")
        return names.index(label)
    if not 0 <= int(label) < n_classes:
        raise ValueError(f"label {label} out of range: the classifier has {n_classes} classes {names}")
    return int(label)


def _words(text: str) -> list[str]:
    return list(dict.fromkeys(m.group().lower() for m in WORD.finditer(text)))


def deletion_effects(text: str, classifier, *, label=None, words: Sequence[str] | None = None):
    """Per word: ``p(label | text) - p(label | text with that word deleted)`` (a pandas Series).

    ``words`` defaults to every distinct (lower-cased) word of ``text``, the index :meth:`Attribution.by_word`
    uses. ``label`` defaults to class 1 of a binary classifier. One batched call to the model.
    """
    import pandas as pd

    if not isinstance(text, str) or not text.strip():
        raise EmptyTextError("text is empty: there is nothing to delete from")
    clf = _quiet(classifier)
    words = _words(text) if words is None else list(words)
    variants = [delete_words(text, w) for w in words]
    p = clf.predict_proba([text, *variants])
    k = _label_index(clf, label, p.shape[1])
    return pd.Series(p[0, k] - p[1:, k], index=pd.Index(words, name="word"), name="deletion effect", dtype=float)


@dataclass
class Faithfulness:
    """How well attributions match deletion effects on one text.

    ``words``: word x (``effect``, one weight column per method). ``summary``: per method, ``spearman``
    (rank correlation of weights with effects), ``sign_agreement`` (share of words whose weight has the
    sign of its effect, among words whose effect is above ``tol``), ``top_word`` / ``top_weight`` /
    ``top_effect`` (the word the method weights most and what deleting it really does), ``top_effect_rank``
    (1 = that word is also the one whose deletion moves the model most) and ``comprehensiveness`` (drop in
    p(label) when the method's ``k`` most positive words are deleted together; ERASER's measure).
    """

    words: object
    summary: object
    proba: float

    def plot(self, ax=None):
        """Scatter of each method's weight against the real deletion effect (the diagonal is perfect agreement)."""
        from ..plots import axes

        ax = axes(ax, (5, 4.5))
        for i, m in enumerate(c for c in self.words.columns if c != "effect"):
            ax.scatter(self.words[m], self.words["effect"], label=m, marker="os^Dv"[i % 5], alpha=0.8)
        _diagonal(ax)
        ax.set_xlabel("attributed weight"); ax.set_ylabel("deletion effect (probability)")
        ax.legend(fontsize=8)
        return ax

    def _repr_html_(self) -> str:
        return self.summary.to_html(float_format=lambda v: f"{v:.3f}")


def _diagonal(ax):
    lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
    hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
    ax.axhline(0, color="grey", lw=0.5); ax.axvline(0, color="grey", lw=0.5)


def faithfulness(attributions, classifier, *, k: int = 1, tol: float = 1e-3, effects=None) -> Faithfulness:
    """Compare attributions of one text (a list, a dict {name: Attribution}, or one) with deletion effects.

    All attributions must explain the same text and class. ``effects`` (from :func:`deletion_effects`)
    skips recomputing them.
    """
    import pandas as pd

    from .text import word_weights

    if isinstance(attributions, Attribution):
        attributions = [attributions]
    atts = list(attributions.values()) if isinstance(attributions, dict) else list(attributions)
    if not atts:
        raise ValueError("faithfulness needs at least one Attribution")
    if len({a.label for a in atts}) > 1:
        raise ValueError("faithfulness: the attributions explain different classes")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    table = word_weights(attributions)  # checks they explain one text
    text, label = atts[0].text, atts[0].label
    clf = _quiet(classifier)
    if effects is None:
        effects = deletion_effects(text, clf, label=label)
    table = table.reindex(effects.index).fillna(0.0)
    rows = {}
    deletions = {}
    for col in table.columns:
        w = table[col]
        top = w.abs().idxmax()
        positive = w[w > 0].sort_values(ascending=False).index[:k].tolist()
        deletions[col] = delete_words(text, positive) if positive else text
        mask = effects.abs() > tol
        agree = float((np.sign(w[mask]) == np.sign(effects[mask])).mean()) if mask.any() else np.nan
        rows[col] = {"spearman": w.corr(effects, method="spearman") if w.std() > 0 and effects.std() > 0 else np.nan,
                     "sign_agreement": agree, "top_word": top, "top_weight": float(w[top]),
                     "top_effect": float(effects[top]),
                     "top_effect_rank": int(effects.abs().rank(ascending=False, method="min")[top])}
    p = clf.predict_proba([text, *deletions.values()])[:, label]
    for i, col in enumerate(deletions):
        rows[col][f"comprehensiveness@{k}"] = float(p[0] - p[i + 1])
    words = pd.concat([effects.rename("effect"), table], axis=1)
    return Faithfulness(words, pd.DataFrame(rows).T.infer_objects(), float(p[0]))


@dataclass
class MinimalPairs:
    """Attributions on the edited side of minimal pairs, checked against what the edit really did.

    ``table``: one row per pair x method (the pair's own columns, then ``p_original``, ``p_edited``,
    ``shift`` = p_edited - p_original, ``flipped`` (the predicted class changed), ``pure_insertion``
    (deleting the cue gives back the original), ``cue_weight`` (the method's weight on the cue words),
    ``cue_rank`` (1 = the method's top word), ``cue_effect`` (real effect of deleting the cue from the
    edited text) and the :class:`Faithfulness` summary columns). ``attributions``: {(pair, method): Attribution}.
    """

    table: object
    attributions: dict
    label_name: str

    def summary(self, by: str | None = None):
        """Per method (and per ``by`` column): how often the model flips, and how well each method credits the cue."""
        t = self.table.assign(cue_top1=self.table["cue_rank"] == 1,
                              cue_sign_ok=np.sign(self.table["cue_weight"]) == np.sign(self.table["cue_effect"]),
                              top_is_real_top=self.table["top_effect_rank"] == 1)
        keys = ([by] if by else []) + ["method"]
        return t.groupby(keys, sort=False).agg(
            pairs=("shift", "size"), flip_rate=("flipped", "mean"), mean_shift=("shift", "mean"),
            cue_effect=("cue_effect", "mean"), cue_weight=("cue_weight", "mean"), cue_top1=("cue_top1", "mean"),
            cue_sign_ok=("cue_sign_ok", "mean"), top_is_real_top=("top_is_real_top", "mean"),
            spearman=("spearman", "mean"))

    def plot(self, by: str | None = None, axes=None):
        """Left: p(label) before and after each edit. Right: each method's weight on the cue vs the cue's real effect."""
        import matplotlib.pyplot as plt

        if axes is None:
            fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1.2, 1]})
        t = self.table
        first = t.drop_duplicates("pair")
        groups = list(first.groupby(by, sort=False)) if by else [("pairs", first)]
        x = 0
        ticks = []
        for gi, (name, g) in enumerate(groups):
            xs = np.arange(x, x + len(g))
            axes[0].scatter(xs, g["p_original"], color="grey", s=18, label="original" if gi == 0 else None, zorder=3)
            for xi, a, b in zip(xs, g["p_original"], g["p_edited"]):
                axes[0].annotate("", (xi, b), (xi, a), arrowprops={"arrowstyle": "->", "color": f"C{gi}", "lw": 1.4})
            axes[0].scatter([], [], marker=r"$\rightarrow$", color=f"C{gi}", label=f"edited: {name}")
            ticks += list(zip(xs, g["pair"]))
            x += len(g) + 1
        axes[0].axhline(0.5, color="red", ls="--", lw=0.8)
        axes[0].set_xticks([a for a, _ in ticks], [str(b) for _, b in ticks], rotation=90, fontsize=7)
        axes[0].set_ylim(-0.02, 1.02)
        axes[0].set_ylabel(f"p({self.label_name})")
        axes[0].set_title("does the model change its mind after the edit?", fontsize=10)
        axes[0].legend(fontsize=8, loc="best")
        for i, (m, g) in enumerate(t.groupby("method", sort=False)):
            axes[1].scatter(g["cue_weight"], g["cue_effect"], label=m, marker="os^Dv"[i % 5], alpha=0.8)
        _diagonal(axes[1])
        axes[1].set_xlabel("method's weight on the cue word")
        axes[1].set_ylabel("real effect of deleting the cue")
        axes[1].set_title("do the explanations credit the edit?", fontsize=10)
        axes[1].legend(fontsize=8)
        return axes


_PAIR_COLUMNS = ("original", "edited", "cue")


def minimal_pairs(pairs, classifier, *, methods: Sequence[str] = ("lime", "shap"), label=None, num_samples=500,
                  seed: int = 0, id_column: str | None = None, progress: bool = True, **kwargs) -> MinimalPairs:
    """Explain the edited text of each minimal pair with every method and check the cue against deletion.

    ``pairs``: a DataFrame (or list of dicts) with columns ``original``, ``edited`` and ``cue`` (the word(s)
    the edit inserted, e.g. ``not``; must appear in ``edited`` as whole words); other columns are kept.
    ``label``: the class whose probability is tracked (default: class 1 of a binary classifier).
    ``num_samples``: an int for every method, or {method: int} (LIME/TextExplainer samples, SHAP max_evals).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from .text import METHODS, explain_text

    pairs = pd.DataFrame(pairs)
    missing = [c for c in _PAIR_COLUMNS if c not in pairs.columns]
    if missing:
        raise ValueError(f"pairs lack column(s) {', '.join(missing)}; need original, edited, cue (have {list(pairs.columns)})")
    if pairs.empty:
        raise ValueError("pairs is empty: there is nothing to explain")
    methods = [str(m).lower() for m in methods]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown method(s) {unknown or methods}; choose from {', '.join(METHODS)}")
    budget = dict(num_samples) if isinstance(num_samples, dict) else {m: num_samples for m in methods}
    if set(methods) - set(budget):
        raise ValueError(f"num_samples has no entry for {sorted(set(methods) - set(budget))}")
    ids = pairs[id_column] if id_column else (pairs["id"] if "id" in pairs.columns else pd.Series(range(len(pairs)), index=pairs.index))
    for i, row in pairs.iterrows():
        for c in _PAIR_COLUMNS:
            if not isinstance(row[c], str) or not row[c].strip():
                raise ValueError(f"pair {ids[i]!r}: {c} is empty or not text")
        cue_words = [w.lower() for w in WORD.findall(row["cue"])]
        if not cue_words or any(w not in _words(row["edited"]) for w in cue_words):
            raise ValueError(f"pair {ids[i]!r}: cue {row['cue']!r} is not a whole word of the edited text {row['edited']!r}")
    clf = _quiet(classifier)
    k = _label_index(clf, label, clf.predict_proba([pairs["original"].iloc[0]]).shape[1])
    names = clf.class_names or [str(j) for j in range(k + 1)]
    rows, atts = [], {}
    for i, row in tqdm(list(pairs.iterrows()), desc="minimal pairs", disable=not progress, leave=False):
        orig, edited, cue = row["original"], row["edited"], row["cue"]
        p = clf.predict_proba([orig, edited])
        effects = deletion_effects(edited, clf, label=k)
        cue_words = list(dict.fromkeys(w.lower() for w in WORD.findall(cue)))
        cue_effect = float(p[1, k] - clf.predict_proba([delete_words(edited, cue)])[0, k])
        pure = delete_words(edited, cue).lower() == re.sub(r"\s+", " ", orig).strip().lower()
        by_method = {m: explain_text(edited, clf, m, label=k, num_samples=int(budget[m]), seed=seed, **kwargs) for m in methods}
        faith = faithfulness(by_method, clf, effects=effects)
        for m, att in by_method.items():
            atts[(ids[i], m)] = att
            w = faith.words[m]
            rank = w.abs().rank(ascending=False, method="min")
            rows.append({"pair": ids[i], **{c: row[c] for c in pairs.columns if c != id_column and c != "id"},
                         "method": m, "p_original": float(p[0, k]), "p_edited": float(p[1, k]),
                         "shift": float(p[1, k] - p[0, k]), "flipped": bool(p[0].argmax() != p[1].argmax()),
                         "pure_insertion": bool(pure), "cue_weight": float(w[cue_words].sum()),
                         "cue_rank": int(rank[cue_words].min()), "cue_effect": cue_effect,
                         "n_words": len(w), **faith.summary.loc[m].to_dict()})
    table = pd.DataFrame(rows)
    return MinimalPairs(table, atts, names[k])
