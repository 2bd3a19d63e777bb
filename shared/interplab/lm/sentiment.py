"""An offline sentiment score for model outputs: MiniLM sentence embeddings + a logistic-regression head.

The original GPT-3 starter scored each completion automatically; this is that score, runnable with
no network: the embedded MiniLM-L6 encoder (``interplab.text.embed``) turns each text into a
vector, and a logistic regression trained on IMDB reviews (``interplab.data.load("imdb")``: the
real dataset when it is cached, otherwise the bundled 120-row sample) maps it to P(positive).

    clf = sentiment_classifier()
    clf.predict_proba(["What a wonderful film", "Dull and far too long"])   # -> array([0.9.., 0.1..])
    clf.accuracy                                                              # cross-validated, on IMDB

It is a rough instrument (trained on movie reviews, on at most a few thousand examples): use it to
compare conditions (temperatures, models, prompts), not as ground truth.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SentimentClassifier:
    """A fitted head on MiniLM embeddings; ``predict_proba(texts)`` gives P(positive) per text."""

    head: object
    encoder: object
    n_train: int
    accuracy: float
    source: str

    def predict_proba(self, texts) -> "np.ndarray":  # noqa: F821
        from ..text import embed

        texts = ["" if t is None else str(t) for t in texts]
        if not texts:
            import numpy as np

            return np.zeros(0)
        X = embed(texts, self.encoder, progress=False)
        return self.head.predict_proba(X)[:, 1]

    def __call__(self, texts):
        return self.predict_proba(texts)

    def __repr__(self) -> str:
        return (f"SentimentClassifier(MiniLM + logistic regression, trained on {self.n_train} {self.source} "
                f"reviews, cross-validated accuracy {self.accuracy:.2f})")


def sentiment_classifier(max_train: int = 2000, encoder=None, seed: int = 0) -> SentimentClassifier:
    """Train the sentiment head on (up to ``max_train``) IMDB reviews; a few seconds on CPU."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from .. import data, models
    from ..text import embed

    df = data.load("imdb")
    source = "IMDB sample" if getattr(df, "attrs", {}).get("sample") else "IMDB"
    if len(df) > max_train:
        df = df.sample(max_train, random_state=seed)
    if encoder is None:
        encoder = models.load_encoder(attentions=False)
    X = embed(list(df["text"]), encoder, progress=False)
    y = np.asarray(df["label"], dtype=int)
    head = LogisticRegression(C=1.0, max_iter=2000)
    folds = min(5, int(np.bincount(y).min()))
    accuracy = float(cross_val_score(head, X, y, cv=folds).mean()) if folds >= 2 else float("nan")
    head.fit(X, y)
    return SentimentClassifier(head=head, encoder=encoder, n_train=len(df), accuracy=accuracy, source=source)
