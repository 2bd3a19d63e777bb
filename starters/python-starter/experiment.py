"""GPT-3 experiments, rebuilt: how does sampling temperature change what a model says?

The original hackathon starter sent prompts to the GPT-3 completions API at several temperatures
and plotted an automatic score of the answers. This is the same experiment on any model:

1. read the prompts in ``prompts.csv`` (column ``Prompt``; other columns are kept),
2. complete each prompt ``SAMPLES`` times at each of ``TEMPERATURES`` (``interplab.lm``; answers
   are cached, so a re-run is free),
3. score every answer with an offline sentiment classifier (MiniLM + logistic regression trained on
   IMDB reviews) and measure how varied the answers are,
4. save ``results/results.csv`` and ``results/sentiment_by_temperature.png``.

Runs offline by default on the kit's embedded smollm2 (SmolLM2-135M-Instruct, a real pretrained
model, Q4_1-dequantized; converted once into the kit cache on first use). It is small: its answers
are real model output, but a 135M model's sentiment says little about large models. Switch the model
(one parameter) to test the question on the models you care about::

    python experiment.py                                   # smollm2, local, no network
    python experiment.py --model hf:gpt2                   # a Hugging Face model (downloads once)
    python experiment.py --model openai:gpt-4o-mini        # OpenAI (OPENAI_API_KEY in .env), capped at $0.50
    python experiment.py --model openai:llama3 --base-url http://localhost:11434/v1   # Ollama, vLLM...
    python experiment.py --model openai:smollm2 --loopback # smollm2 behind a local stand-in API (openai SDK path)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from interplab import lm

HERE = Path(__file__).resolve().parent

# ---- parameters: change these (or pass them on the command line) ----
MODEL = "smollm2"                    # the embedded real LM; hf:gpt2, openai:gpt-4o-mini, ...
TEMPERATURES = [0.0, 0.5, 1.0, 1.5]
SAMPLES = 3                           # answers per prompt and temperature (seeds 0..SAMPLES-1)
MAX_TOKENS = 20
MAX_DOLLARS = 0.50                    # API spending cap for one run
QUICK_PROMPTS = 4                     # --quick (a smoke test) uses the first few prompts only


def run(model: str = MODEL, prompts_csv: Path = HERE / "prompts.csv", out: Path = HERE / "results",
        temperatures=TEMPERATURES, samples: int = SAMPLES, max_tokens: int = MAX_TOKENS,
        base_url: str | None = None, max_dollars: float = MAX_DOLLARS, loopback: bool = False,
        n_prompts: int | None = None) -> pd.DataFrame:
    server = None
    if loopback:  # serve the model named after "openai:" on 127.0.0.1: a local stand-in for an API
        from interplab.lm.loopback import LoopbackServer

        if not model.startswith("openai:") or base_url:
            raise lm.LMError("--loopback serves a local model as openai:NAME (e.g. openai:smollm2), without --base-url")
        server = LoopbackServer(model=model.split(":", 1)[1]).start()
        base_url = server.base_url
    try:
        return _run(model, prompts_csv, out, temperatures, samples, max_tokens, base_url, max_dollars, n_prompts)
    finally:
        if server is not None:
            server.stop()


def _run(model, prompts_csv, out, temperatures, samples, max_tokens, base_url, max_dollars, n_prompts) -> pd.DataFrame:
    prompts = pd.read_csv(prompts_csv, dtype=str, keep_default_na=False)
    prompts = prompts[prompts["Prompt"].str.strip() != ""].reset_index(drop=True)
    if n_prompts is not None:
        prompts = prompts.head(n_prompts)
    print(f"{len(prompts)} prompts x {len(temperatures)} temperatures x {samples} samples on {model}")

    # 1. completions: every (prompt, temperature, sample) in one batch
    jobs = [(i, t, s) for t in temperatures for s in range(samples) for i in range(len(prompts))]
    options = {"base_url": base_url} if base_url else {}
    if model.startswith("openai:"):
        options["budget"] = lm.Budget(dollars=max_dollars) if lm.price_of(model.split(":", 1)[1]) else \
            lm.Budget(tokens=200_000)
    answers = lm.generate_many(model, [prompts.loc[i, "Prompt"] for i, _, _ in jobs],
                               temperature=[t for _, t, _ in jobs], seed=[s for _, _, s in jobs],
                               max_tokens=max_tokens, **options)

    rows = pd.DataFrame({"prompt_id": [i for i, _, _ in jobs], "temperature": [t for _, t, _ in jobs],
                         "sample": [s for _, _, s in jobs], "output": [str(a) for a in answers]})
    rows = prompts.rename(columns={"Prompt": "prompt"}).join(rows.set_index("prompt_id"), how="right")
    rows.insert(0, "model", model)

    # 2. the automatic score: P(positive) of prompt + answer, from an offline sentiment classifier
    clf = lm.sentiment.sentiment_classifier()
    print(clf)
    rows["p_positive"] = clf.predict_proba((rows["prompt"] + rows["output"]).tolist())
    rows["n_words"] = rows["output"].str.split().str.len()

    # 3. summaries: mean sentiment, its spread across samples, and how many answers are distinct
    summary = rows.groupby("temperature").agg(
        mean_p_positive=("p_positive", "mean"), sd_p_positive=("p_positive", "std"),
        distinct_answers=("output", lambda s: s.nunique() / len(s)), mean_words=("n_words", "mean"))
    print(summary.round(3).to_string())

    out.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out / "results.csv", index=False)
    summary.to_csv(out / "summary.csv")
    plot(rows, summary, model, out / "sentiment_by_temperature.png")
    print(f"wrote {out / 'results.csv'}, {out / 'summary.csv'} and {out / 'sentiment_by_temperature.png'}")
    return rows


def plot(rows: pd.DataFrame, summary: pd.DataFrame, model: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for topic, g in rows.groupby(rows.get("Topic", pd.Series("all", index=rows.index))):
        m = g.groupby("temperature")["p_positive"].mean()
        a.plot(m.index, m.values, marker="o", alpha=0.7, label=str(topic))
    a.errorbar(summary.index, summary["mean_p_positive"], yerr=summary["sd_p_positive"], color="black",
               linewidth=2, capsize=4, label="all prompts (± sd)")
    a.set(xlabel="temperature", ylabel="P(positive sentiment)", ylim=(0, 1), title="Sentiment of answers")
    a.legend(fontsize=8)
    b.plot(summary.index, summary["distinct_answers"], marker="o", color="tab:purple")
    b.set(xlabel="temperature", ylabel="share of distinct answers", ylim=(0, 1.05), title="Variety of answers")
    fig.suptitle(f"{model}: {rows['prompt'].nunique()} prompts, {rows['sample'].nunique()} samples each")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=MODEL, help="model string (default: %(default)s, the embedded real LM)")
    p.add_argument("--loopback", action="store_true",
                   help="serve openai:NAME's local model NAME on 127.0.0.1 and go through the openai SDK")
    p.add_argument("--base-url", help="an OpenAI-compatible server (vLLM, Ollama, llama.cpp) for openai:MODEL")
    p.add_argument("--prompts", type=Path, default=HERE / "prompts.csv")
    p.add_argument("--out", type=Path, default=HERE / "results")
    p.add_argument("--temperatures", type=float, nargs="+", default=TEMPERATURES)
    p.add_argument("--samples", type=int, default=SAMPLES)
    p.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    p.add_argument("--max-dollars", type=float, default=MAX_DOLLARS, help="API spending cap (default %(default)s)")
    p.add_argument("--quick", action="store_true",
                   help=f"smallest run ({QUICK_PROMPTS} prompts, 2 temperatures, 1 sample): a smoke test")
    a = p.parse_args(argv)
    temps, samples, n = (a.temperatures, a.samples, None) if not a.quick else ([0.0, 1.0], 1, QUICK_PROMPTS)
    try:
        run(a.model, a.prompts, a.out, temps, samples, a.max_tokens, a.base_url, a.max_dollars, a.loopback, n)
    except lm.LMError as exc:
        print(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
