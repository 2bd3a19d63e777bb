"""Input checks every themed module shares: one function that turns "some texts" into a list of strings.

``as_texts`` is the kit's one validator for text inputs (``text``, ``explain``, ``lm`` and the
classifiers call it), so a NaN in a DataFrame column or a bare string passed where a list was meant
gives the same one-line error everywhere.
"""
from __future__ import annotations

__all__ = ["as_texts"]


def as_texts(texts, what: str = "texts", *, allow_empty: bool = False, one_string: bool = True) -> list[str]:
    """A list of strings from a list, tuple, array or pandas Series; one clear error for anything else.

    ``one_string=True`` treats a bare string as one document; ``False`` refuses it (for classifier
    functions, where ``f("text")`` would otherwise be read as one text per character).
    """
    if isinstance(texts, (str, bytes)):
        if not one_string or isinstance(texts, bytes):
            raise TypeError(f"{what} must be a list of strings, got a single {type(texts).__name__}; "
                            "wrap it in a list: [text]")
        texts = [texts]
    elif texts is None:
        raise TypeError(f"{what}: expected a list of strings, got None")
    try:
        items = list(texts)
    except TypeError:
        raise TypeError(f"{what}: expected a list of strings, got {type(texts).__name__}") from None
    for i, t in enumerate(items):
        if not isinstance(t, str):
            kind = "a missing value (NaN/None)" if t is None or (isinstance(t, float) and t != t) else type(t).__name__
            raise TypeError(
                f"{what}[{i}] is {kind}, not a string; drop or fill missing values first (e.g. df[col].fillna(''))"
            )
        if type(t) is not str:  # numpy.str_ and other str subclasses: plain str for hashing and tokenizers
            items[i] = str(t)
    if not items and not allow_empty:
        raise ValueError(f"{what}: empty, no texts given")
    return items
