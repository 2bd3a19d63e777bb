"""``interplab run-csv``: the no-code path. A spreadsheet of prompts in, the same sheet with Outputs out.

Columns (as in the original hackathon spreadsheet; names are matched without regard to case):

* ``Prompt`` (required) -- the text sent to the model;
* ``Temperature (creativity)`` or ``Temperature`` -- per row, blank = ``--temperature``;
* ``Max tokens in output`` or ``Max tokens`` -- per row, blank = ``--max-tokens``;
* ``Output`` -- filled in (created if missing); every other column (Expected, Bias...) is kept as is.

Everything is checked before the first request, so a bad cell costs nothing; answers are cached, so
an interrupted or capped run picks up where it stopped when run again.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import InterplabError

TEMPERATURE_COLUMNS = ("temperature (creativity)", "temperature")
MAX_TOKENS_COLUMNS = ("max tokens in output", "max tokens", "max_tokens")


class CSVError(InterplabError, ValueError):
    """A problem with the input sheet (one line, naming the row and column)."""


def _find(columns, names) -> str | None:
    lower = {str(c).strip().lower(): c for c in columns}
    for n in names:
        if n in lower:
            return lower[n]
    return None


def _number(value, kind, row: int, column: str, lo, hi):
    text = str(value).strip()
    if text == "" or text.lower() == "nan":
        return None
    try:
        x = float(text.replace(",", "."))
    except ValueError:
        raise CSVError(f"row {row}: {column!r} is {text!r}, not a number") from None
    if kind is int:
        if x != int(x):
            raise CSVError(f"row {row}: {column!r} is {text!r}, not a whole number")
        x = int(x)
    if not (lo <= x <= hi):
        raise CSVError(f"row {row}: {column!r} is {text!r}, outside {lo}..{hi}")
    return x


def read_sheet(path: str | os.PathLike):
    """The sheet as a DataFrame of strings (Excel's UTF-8 BOM and ';' separators accepted)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise CSVError(f"{path}: no such file")
    if path.suffix.lower() in (".xlsx", ".xls", ".ods"):
        raise CSVError(f"{path.name} is a spreadsheet file: export it as CSV first (File > Download/Save as > CSV)")
    raw = path.read_bytes()
    encoding = "utf-8-sig"
    try:
        raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        encoding = "latin-1"  # an old Excel export
    header = raw.decode(encoding, errors="replace").lstrip("\ufeff").splitlines()[0] if raw.strip() else ""
    sep = "," if "," in header else ";" if ";" in header else "\t" if "\t" in header else ","
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding, sep=sep)
    except Exception as exc:  # noqa: BLE001 - pandas' parser errors
        raise CSVError(f"{path.name} could not be read as CSV: {str(exc).splitlines()[0]}") from None
    return df


def plan(df, *, temperature: float, max_tokens: int):
    """(rows to run, temperatures, max tokens) after checking every cell; raises CSVError."""
    prompt_col = _find(df.columns, ("prompt",))
    if prompt_col is None:
        raise CSVError(f"no 'Prompt' column (columns are: {', '.join(map(str, df.columns))})")
    tcol = _find(df.columns, TEMPERATURE_COLUMNS)
    mcol = _find(df.columns, MAX_TOKENS_COLUMNS)
    rows, temps, maxes = [], [], []
    for i in range(len(df)):
        line = i + 2  # the header is line 1 in a spreadsheet
        prompt = str(df.iloc[i][prompt_col])
        if not prompt.strip():
            continue
        t = _number(df.iloc[i][tcol], float, line, tcol, 0, 2) if tcol else None
        m = _number(df.iloc[i][mcol], int, line, mcol, 1, 100_000) if mcol else None
        rows.append(i)
        temps.append(temperature if t is None else t)
        maxes.append(max_tokens if m is None else m)
    return prompt_col, rows, temps, maxes


def run_csv(path, model: str, output=None, *, temperature: float = 0.0, max_tokens: int = 64,
            system: str | None = None, **options):
    """Fill the Output column of a prompts CSV with ``model``'s answers; returns the DataFrame written."""
    from . import core
    from .errors import BatchError, SpendingCapError

    df = read_sheet(path)
    prompt_col, rows, temps, maxes = plan(df, temperature=temperature, max_tokens=max_tokens)
    out_col = _find(df.columns, ("output",)) or "Output"
    if out_col not in df.columns:
        df[out_col] = ""
    output = Path(output) if output else Path(path).with_name(Path(path).stem + "-results.csv")
    prompts = [str(df.iloc[i][prompt_col]) for i in rows]
    error = None
    try:
        answers = core.generate_many(model, prompts, temperature=temps, max_tokens=maxes, system=system,
                                     on_error="raise", **options)
    except (SpendingCapError, BatchError) as exc:
        answers, error = exc.results or [None] * len(rows), exc
    answers = [a.text if hasattr(a, "text") else a for a in answers]
    col = list(df.columns).index(out_col)
    for i, a in zip(rows, answers):
        if a is not None:
            df.iat[i, col] = a
    tmp = output.with_name(output.name + ".tmp")
    df.to_csv(tmp, index=False, encoding="utf-8-sig")
    os.replace(tmp, output)
    if error is not None:
        done = sum(a is not None for a in answers)
        raise type(error)(f"{error} -- wrote {done} of {len(rows)} outputs to {output}; run again to finish")
    return df


def cli(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(
        prog="interplab run-csv",
        description="Fill the Output column of a CSV of prompts (columns: Prompt, and optionally "
                    "'Temperature (creativity)', 'Max tokens in output', Expected, Bias...).")
    p.add_argument("csv", help="the prompts sheet, exported as CSV")
    p.add_argument("--model", "-m", required=True,
                   help="model string: openai:gpt-4o-mini (key in .env), openai:MODEL with --base-url (vLLM, "
                        "Ollama), hf:gpt2 (local), or openai:loopback-chat with --base-url of a loopback server")
    p.add_argument("-o", "--output", help="where to write the results (default: NAME-results.csv)")
    p.add_argument("--temperature", type=float, default=0.0, help="for rows without one (default 0)")
    p.add_argument("--max-tokens", type=int, default=64, help="for rows without one (default 64)")
    p.add_argument("--system", help="a system message for chat models")
    p.add_argument("--base-url", help="an OpenAI-compatible server (vLLM, Ollama...); or set OPENAI_BASE_URL")
    p.add_argument("--max-dollars", type=float, help="stop before spending more than this")
    p.add_argument("--max-spend-tokens", type=int, help="stop before using more API tokens than this")
    p.add_argument("--concurrency", type=int, default=None, help="requests in flight (API models)")
    p.add_argument("--no-cache", action="store_true", help="ask the model again even if the answer is cached")
    args = p.parse_args(argv)
    from .budget import Budget
    from .errors import LMError

    options = {}
    if args.base_url:
        options["base_url"] = args.base_url
    if args.max_dollars is not None or args.max_spend_tokens is not None:
        options["budget"] = Budget(tokens=args.max_spend_tokens, dollars=args.max_dollars)
    if args.concurrency:
        options["concurrency"] = args.concurrency
    if args.no_cache:
        options["cache"] = "refresh"
    output = args.output or str(Path(args.csv).with_name(Path(args.csv).stem + "-results.csv"))
    try:
        df = run_csv(args.csv, args.model, output, temperature=args.temperature, max_tokens=args.max_tokens,
                     system=args.system, **options)
    except (CSVError, LMError, ValueError) as exc:
        print(f"interplab run-csv: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - e.g. ModelNotAvailableError: one line, not a traceback
        print(f"interplab run-csv: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(df)} rows to {output}")
    return 0
