"""Tabular models explained the way R's ``iml`` does it, in Python, with one table that compares them.

* ``permutation_ranking``: drop in score when a feature is shuffled (``sklearn.inspection``).
* ``shap_values``: SHAP values (exact interventional tree SHAP for tree regressors, the permutation
  explainer on p(last class) for classifiers and any other model).
* ``model_output``: what every explanation here explains (the prediction, or p(last class)).
* ``linear_baseline``: held-out score of a plain linear model on the same split, to put the explained
  model's score in context (an explanation of a model worse than a line explains that model, not the data).
* ``lime_tabular`` / ``lime_ranking``: LIME's local linear model for one row, and mean |weight| over rows.
* ``global_rankings``: every method's global importance per feature, side by side, with ranks.

Partial dependence and ICE curves need no wrapper: ``sklearn.inspection.PartialDependenceDisplay``.
"""
from __future__ import annotations

import numpy as np

from .attribution import Attribution


def _is_classifier(model) -> bool:
    from sklearn.base import is_classifier

    return bool(is_classifier(model)) and hasattr(model, "predict_proba")


def _predict_fn(model):
    """What the explanations explain: the regression output, or the probability of the last class."""
    if _is_classifier(model):
        return lambda X: model.predict_proba(X)[:, -1]
    return model.predict


def model_output(model, X):
    """What the explanations here explain, for the rows of ``X``: ``model.predict`` for a regressor,
    p(last class) for a classifier. SHAP values of a row add up to this minus their base value."""
    return np.asarray(_predict_fn(model)(_check_frame(X)), dtype=float)


def linear_baseline(X_train, y_train, X_test, y_test, classifier: bool | None = None) -> float:
    """Held-out score (R² or accuracy, like ``model.score``) of a plain linear model on the same split:
    ``LinearRegression`` for a numeric target, a standardised ``LogisticRegression`` for classes
    (``classifier=None`` guesses from the target: integers with at most 10 values are classes)."""
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X_train, X_test = _check_frame(X_train, "X_train"), _check_frame(X_test, "X_test")
    y = np.asarray(y_train)
    if classifier is None:
        classifier = np.issubdtype(y.dtype, np.integer) and len(np.unique(y)) <= 10
    line = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)) if classifier else LinearRegression()
    return float(line.fit(X_train, y_train).score(X_test, y_test))


def _check_frame(X, what="X"):
    import pandas as pd

    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame with named columns, got {type(X).__name__}")
    if X.empty:
        raise ValueError(f"{what} is empty")
    return X


def permutation_ranking(model, X, y, *, n_repeats: int = 10, seed: int = 0, scoring=None):
    """Mean drop in the model's score when each column of ``X`` is shuffled (higher = more important)."""
    import pandas as pd
    from sklearn.inspection import permutation_importance

    X = _check_frame(X)
    r = permutation_importance(model, X, y, n_repeats=n_repeats, random_state=seed, scoring=scoring)
    return pd.Series(r.importances_mean, index=X.columns, name="permutation")


def shap_values(model, X_background, X, *, max_background: int = 100, seed: int = 0):
    """A ``shap.Explanation`` for the rows of ``X``, explaining :func:`model_output`.

    Tree *regressors* (scikit-learn ensembles, XGBoost, LightGBM) get exact interventional tree SHAP
    over a background of at most ``max_background`` rows. Classifiers (trees included: tree SHAP would
    explain log-odds, not the probability the other methods explain) and every other model get SHAP's
    permutation explainer on p(last class) over the same background: an estimate of the Shapley
    values, but still additive (each row's values sum to its output minus the background mean).
    """
    import shap

    X = _check_frame(X)
    bg = _check_frame(X_background, "X_background")
    if len(bg) > max_background:
        bg = bg.sample(max_background, random_state=seed)
    is_tree = hasattr(model, "estimators_") or hasattr(model, "tree_") or type(model).__name__.startswith(("HistGradientBoosting", "XGB", "LGBM"))
    if is_tree and not _is_classifier(model):
        explainer = shap.TreeExplainer(model, bg)
        return explainer(X)
    explainer = shap.Explainer(_predict_fn(model), shap.maskers.Independent(bg), algorithm="permutation", seed=seed)
    return explainer(X, silent=True)


def lime_tabular(model, X_train, row, *, num_samples: int = 2000, seed: int = 0, num_features: int | None = None,
                 explainer=None) -> Attribution:
    """LIME's explanation of one row (a Series or a one-row DataFrame) as an :class:`Attribution`.

    Features are LIME's discretised conditions ("bmi > 0.03"); ``meta['feature']`` names the
    column behind each, and ``score`` is the R² of LIME's local model.
    """
    import pandas as pd

    X_train = _check_frame(X_train, "X_train")
    if isinstance(row, pd.DataFrame):
        if len(row) != 1:
            raise ValueError(f"row must be one row, got {len(row)}")
        row = row.iloc[0]
    row = pd.Series(row)
    if list(row.index) != list(X_train.columns):
        raise ValueError("row's columns differ from X_train's columns")
    explainer = explainer or _lime_explainer(model, X_train, seed)
    clf = _is_classifier(model)
    predict = (lambda A: model.predict_proba(pd.DataFrame(A, columns=X_train.columns))) if clf else \
        (lambda A: model.predict(pd.DataFrame(A, columns=X_train.columns)))
    label = len(model.classes_) - 1 if clf else 0
    exp = explainer.explain_instance(row.to_numpy(dtype=float), predict, labels=(label,),
                                     num_features=num_features or X_train.shape[1], num_samples=num_samples)
    pairs = exp.as_list(label=label) if clf else exp.as_list()
    idx = [i for i, _ in (exp.as_map()[label] if clf else exp.as_map()[1])]
    value = float(predict(row.to_numpy(dtype=float)[None, :])[0][label]) if clf else float(predict(row.to_numpy(dtype=float)[None, :])[0])
    return Attribution("lime", [f for f, _ in pairs], np.array([w for _, w in pairs]), label,
                       str(model.classes_[label]) if clf else "prediction", proba=value,
                       intercept=float(exp.intercept[label] if clf else exp.intercept[1]), score=float(exp.score),
                       meta={"feature": [X_train.columns[i] for i in idx], "num_samples": num_samples, "lime": exp})


def _lime_explainer(model, X_train, seed):
    from lime.lime_tabular import LimeTabularExplainer

    clf = _is_classifier(model)
    return LimeTabularExplainer(X_train.to_numpy(dtype=float), feature_names=list(X_train.columns),
                                class_names=[str(c) for c in model.classes_] if clf else None,
                                mode="classification" if clf else "regression", discretize_continuous=True,
                                random_state=seed)


def lime_ranking(model, X_train, X_rows, *, num_samples: int = 1000, seed: int = 0):
    """Global LIME importance: mean |weight| per column over the rows of ``X_rows``."""
    import pandas as pd
    from tqdm.auto import tqdm

    X_rows = _check_frame(X_rows, "X_rows")
    explainer = _lime_explainer(model, X_train, seed)
    total = pd.Series(0.0, index=X_train.columns, name="lime")
    for _, row in tqdm(list(X_rows.iterrows()), desc="LIME rows", leave=False):
        att = lime_tabular(model, X_train, row, num_samples=num_samples, seed=seed, explainer=explainer)
        for col, w in zip(att.meta["feature"], att.weights):
            total[col] += abs(w)
    return total / len(X_rows)


def global_rankings(model, X_train, X_test, y_test, *, n_repeats: int = 10, shap_rows: int = 100, lime_rows: int = 20,
                    lime_samples: int = 1000, seed: int = 0, explanation=None):
    """Global importance per feature from each method, and each method's rank (1 = most important).

    Columns: ``permutation`` (score drop), ``shap`` (mean |SHAP value|), ``lime`` (mean |LIME
    weight|), ``model`` (the model's own ``feature_importances_`` or |coef| x std, when it has one),
    then ``rank_<method>`` for each and ``mean_rank``. Pass a precomputed SHAP ``explanation`` to reuse it.
    """
    import pandas as pd

    X_test = _check_frame(X_test, "X_test")
    cols = {"permutation": permutation_ranking(model, X_test, y_test, n_repeats=n_repeats, seed=seed)}
    rows = X_test.iloc[:shap_rows]
    sv = explanation if explanation is not None else shap_values(model, X_train, rows, seed=seed)
    vals = np.asarray(sv.values)
    if vals.ndim == 3:
        vals = vals[..., -1]
    cols["shap"] = pd.Series(np.abs(vals).mean(axis=0), index=X_test.columns)
    if lime_rows:
        cols["lime"] = lime_ranking(model, X_train, X_test.iloc[:lime_rows], num_samples=lime_samples, seed=seed)
    native = _native_importance(model, X_train)
    if native is not None:
        cols["model"] = native
    table = pd.DataFrame(cols)
    for c in list(cols):
        table[f"rank_{c}"] = table[c].rank(ascending=False, method="min").astype(int)
    table["mean_rank"] = table[[f"rank_{c}" for c in cols]].mean(axis=1)
    return table.sort_values("mean_rank")


def _native_importance(model, X_train):
    import pandas as pd

    est = model.steps[-1][1] if hasattr(model, "steps") else model
    if hasattr(est, "feature_importances_") and len(est.feature_importances_) == X_train.shape[1]:
        return pd.Series(est.feature_importances_, index=X_train.columns)
    if hasattr(est, "coef_") and np.size(est.coef_) % X_train.shape[1] == 0 and not hasattr(model, "steps"):
        coef = np.abs(np.atleast_2d(est.coef_)).mean(axis=0)
        return pd.Series(coef * X_train.std().to_numpy(), index=X_train.columns)
    return None


def ranking_agreement(table, method: str = "spearman"):
    """Methods x methods rank correlation of the importance columns of a :func:`global_rankings` table."""
    cols = [c for c in table.columns if not c.startswith("rank_") and c != "mean_rank"]
    return table[cols].corr(method=method)
