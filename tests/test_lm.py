"""interplab.lm: the official openai SDK against a real loopback HTTP server, and local causal LMs.

Nothing here mocks the SDK: every API test sends real HTTP requests to ``LoopbackServer`` on
127.0.0.1, which can answer 429, 500, malformed JSON, slow responses and 401 on cue.
"""
from __future__ import annotations

import logging
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import traceback
from pathlib import Path

import pytest

from interplab import lm
from interplab.lm.loopback import LoopbackServer, token_logprob, tokenize

SECRET = "sk-test-" + "S3cr3tK3yThatMustNeverLeak0123456789"


def tiny_gpt2():
    """A 2-layer GPT-2 with random weights and a word-level tokenizer, built offline."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    words = ("<eos> the movie was good bad great awful and it a plot I loved hated . Paris London capital "
             "of France is").split()
    vocab = {w: i for i, w in enumerate(words)}
    vocab["<unk>"] = len(vocab)
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<eos>", eos_token="<eos>", unk_token="<unk>")
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(vocab), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                     bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(cfg).eval(), tok


@pytest.fixture(scope="module")
def tiny():
    return tiny_gpt2()


def chat(server):
    return {"base_url": server.base_url, "progress": False, "backoff": 0.01}


# ------------------------------------------------------------------------------------------ the API path
def test_generate_chat_and_completions_through_the_sdk(server, cache_dir):
    c = lm.generate("openai:loopback-chat", "The movie was", base_url=server.base_url, max_tokens=5, logprobs=3)
    assert isinstance(c, str) and c.text == str(c)
    assert len(tokenize(c)) == 5 and "".join(c.tokens) == c.text
    assert c.logprobs == [token_logprob("The movie was" + "".join(c.tokens[:i]), t) for i, t in enumerate(c.tokens)]
    assert all(len(t) == 3 for t in c.top_logprobs)
    assert c.usage["completion_tokens"] == 5 and c.cached is False
    d = lm.generate("openai:loopback-base", "The movie was", base_url=server.base_url, max_tokens=4,
                    endpoint="completions")
    assert len(tokenize(d)) == 4
    log = server.stats()["log"]
    assert [e["endpoint"] for e in log] == ["/v1/chat/completions", "/v1/completions"]
    assert log[0]["max_tokens"] == 5 and log[0]["temperature"] == 0.0
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert lm.generate("openai:loopback-chat", msgs, base_url=server.base_url, max_tokens=2)


def test_cache_replays_with_the_server_gone(cache_dir):
    with LoopbackServer() as srv:
        url = srv.base_url
        first = lm.generate_many("openai:loopback-chat", ["a", "b", "c"], base_url=url, max_tokens=3, progress=False)
        assert srv.stats()["served"] == 3
    again = lm.generate_many("openai:loopback-chat", ["a", "b", "c"], base_url=url, max_tokens=3, progress=False)
    assert again == first and all(c.cached for c in again)
    with pytest.raises(lm.LMError, match="did not answer"):  # a new prompt needs the (stopped) server
        lm.generate("openai:loopback-chat", "d", base_url=url, max_tokens=3, max_retries=1, backoff=0.01)
    assert (cache_dir / "responses" / "responses.sqlite").is_file()


def test_cache_is_keyed_on_params_and_prompt(server, cache_dir):
    m = "openai:loopback-chat"
    lm.generate(m, "x", base_url=server.base_url, max_tokens=3)
    lm.generate(m, "x", base_url=server.base_url, max_tokens=3)
    assert server.stats()["served"] == 1
    lm.generate(m, "x", base_url=server.base_url, max_tokens=4)
    lm.generate(m, "x", base_url=server.base_url, max_tokens=3, temperature=0.7)
    lm.generate(m, "x", base_url=server.base_url, max_tokens=3, temperature=0.7, seed=1)
    lm.generate(m, "y", base_url=server.base_url, max_tokens=3)
    lm.generate(m, "x", base_url=server.base_url, max_tokens=3, cache=False)
    assert server.stats()["served"] == 6
    assert lm.generate(m, "x", base_url=server.base_url, max_tokens=3, cache="refresh").cached is False
    assert server.stats()["served"] == 7


def test_two_processes_write_one_cache_file(tmp_path):
    path = tmp_path / "shared.sqlite"
    code = textwrap.dedent(f"""
        import sys
        from interplab.lm.cache import ResponseCache
        c = ResponseCache({str(path)!r})
        for i in range(300):
            c.put(f"{{sys.argv[1]}}-{{i}}", backend="b", model="m", kind="generate", request={{"i": i}},
                  response={{"text": "x" * 50}})
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, tag]) for tag in ("p", "q")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    cache = lm.ResponseCache(path)
    assert len(cache) == 600
    assert cache.get("q-299") == {"text": "x" * 50}
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_retries_429_500_malformed_and_slow_answers(server, cache_dir):
    server.inject("429", times=2, match="p1")
    server.inject("500", times=1, match="p2")
    server.inject("malformed", times=2, match="p3")
    server.inject("slow", times=1, match="p4", seconds=1.5)
    prompts = [f"p{i}" for i in range(8)]
    out = lm.generate_many("openai:loopback-chat", prompts, max_tokens=3, timeout=0.5, **chat(server))
    assert all(out) and len(out) == 8
    s = server.stats()
    assert s["faults"] == {"429": 2, "500": 1, "malformed": 2, "slow": 1}
    assert s["requests"] == 8 + 6 and s["served"] >= 8
    assert set(s["by_prompt"]) == set(prompts)


def test_gives_up_clearly_and_keeps_the_rest(server, cache_dir):
    server.inject("500", times=10, match="bad")
    prompts = ["ok1", "bad", "ok2", "ok3"]
    with pytest.raises(lm.BatchError) as info:
        lm.generate_many("openai:loopback-chat", prompts, max_tokens=2, max_retries=2, **chat(server))
    msg = str(info.value)
    assert "1 of 4 prompts failed" in msg and "500" in msg and "\n" not in msg
    assert [r is None for r in info.value.results] == [False, True, False, False]
    server.reset_stats()
    server._faults.clear()
    out = lm.generate_many("openai:loopback-chat", prompts, max_tokens=2, **chat(server))
    assert all(out) and server.stats()["served"] == 1  # only the failed one is sent again
    server.inject("500", times=5, match="bad2")
    with pytest.warns(UserWarning, match="1 of 2 prompts failed"):
        skip = lm.generate_many("openai:loopback-chat", ["bad2", "ok4"], max_tokens=2, max_retries=0,
                                on_error="skip", **chat(server))
    assert skip[0] is None and skip[1]


def test_bounded_concurrency(cache_dir):
    with LoopbackServer(latency=0.05) as srv:
        t = time.perf_counter()
        lm.generate_many("openai:loopback-chat", [f"c{i}" for i in range(24)], max_tokens=2, concurrency=3,
                         base_url=srv.base_url, progress=False)
        elapsed = time.perf_counter() - t
        assert srv.stats()["max_in_flight"] == 3
    assert elapsed >= 24 / 3 * 0.05 * 0.9


def test_spending_cap_in_tokens_stops_before_passing_it(server, cache_dir):
    budget = lm.Budget(tokens=100)
    prompts = [f"q{i}" for i in range(30)]
    with pytest.raises(lm.SpendingCapError) as info:
        lm.generate_many("openai:loopback-chat", prompts, max_tokens=5, budget=budget, concurrency=4, **chat(server))
    msg = str(info.value)
    assert "used" in msg and "100 tokens" in msg and "\n" not in msg
    served = server.stats()["served"]
    assert 0 < served < 30 and budget.used_tokens <= 100
    assert budget.used_tokens > 100 - (len(b"q10") + 8 + 5)  # stopped only when the next request could pass it
    assert budget.used_tokens == served * (1 + 4 + 5)  # the server's own usage: prompt (+4/message) + completion
    done = [r for r in info.value.results if r is not None]
    assert len(done) == served
    # what was paid for is cached: a bigger budget sends only the rest
    server.reset_stats()
    out = lm.generate_many("openai:loopback-chat", prompts, max_tokens=5, budget=lm.Budget(tokens=10_000),
                           **chat(server))
    assert all(out) and server.stats()["served"] == 30 - served


def test_spending_cap_in_dollars(server, cache_dir, monkeypatch):
    monkeypatch.setitem(lm.PRICES, "loopback-chat", (1000.0, 1000.0))  # $0.001 per token
    budget = lm.Budget(dollars=0.05)
    with pytest.raises(lm.SpendingCapError, match=r"\$0\.0"):
        lm.generate_many("openai:loopback-chat", [f"d{i}" for i in range(20)], max_tokens=5, budget=budget,
                         **chat(server))
    assert 0 < budget.used_dollars <= 0.05
    with pytest.raises(lm.SpendingCapError, match="no price is known"):
        lm.generate("openai:some-new-model", "x", budget=lm.Budget(dollars=1.0), api_key="sk-unused-test")


INTERRUPTED = textwrap.dedent("""
    import signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a shell's background job starts with it ignored
    from interplab import lm
    prompts = [f"item {i}" for i in range(40)]
    lm.generate_many("openai:loopback-chat", prompts, max_tokens=3, base_url=sys.argv[1], concurrency=4,
                     progress=False)
    print("finished without interruption")
""")


def test_interrupt_half_way_then_rerun_loses_nothing_and_pays_nothing_twice(cache_dir):
    with LoopbackServer(latency=0.1) as srv:
        env = dict(os.environ, INTERPLAB_CACHE=str(cache_dir))
        proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED, srv.base_url], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while srv.stats()["served"] < 12 and time.time() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert "finished without interruption" not in out and "KeyboardInterrupt" in err
        half = srv.stats()["served"]
        assert 12 <= half < 40
        cached = len(lm.ResponseCache(cache_dir / "responses" / "responses.sqlite"))
        assert cached == half  # every answer the server gave is in the cache
        again = lm.generate_many("openai:loopback-chat", [f"item {i}" for i in range(40)], max_tokens=3,
                                 base_url=srv.base_url, progress=False)
        s = srv.stats()
    assert all(again) and sum(c.cached for c in again) == half
    assert s["served"] == 40 and set(s["by_prompt"].values()) == {1}  # each prompt paid exactly once


# ------------------------------------------------------------------------------------------ keys
def _everything_written(cache_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in cache_dir.rglob("*") if p.is_file())


def test_key_is_used_but_never_stored_logged_or_shown(cache_dir, monkeypatch, caplog, capfd):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPENAI_LOG", "debug")
    with LoopbackServer(api_key=SECRET) as srv:
        out = lm.generate_many("openai:loopback-chat", ["k1", "k2"], base_url=srv.base_url, max_tokens=2,
                               logprobs=2, progress=True)
        assert all(out) and srv.stats()["served"] == 2
        srv.inject("401", times=1)
        with pytest.raises(lm.KeyRejectedError) as info:
            lm.generate("openai:loopback-chat", "k3", base_url=srv.base_url, max_tokens=2)
    text = "".join(traceback.format_exception(info.value)) + repr(out) + repr(lm.get_backend(
        "openai:loopback-chat", base_url=srv.base_url))
    captured = capfd.readouterr()
    for where in (text, caplog.text, captured.out, captured.err, _everything_written(cache_dir).decode("latin-1")):
        assert SECRET not in where and SECRET[8:20] not in where
    assert "leak" not in str(info.value)  # the server's masked key in its 401 message is dropped too
    assert "OPENAI_API_KEY" in str(info.value) and "\n" not in str(info.value)


def test_rejected_key_is_one_line(cache_dir, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-" + "x" * 30)
    with LoopbackServer(api_key=SECRET) as srv:
        with pytest.raises(lm.KeyRejectedError) as info:
            lm.generate("openai:loopback-chat", "hi", base_url=srv.base_url)
    msg = str(info.value)
    assert "rejected the API key (401)" in msg and "OPENAI_API_KEY" in msg and "\n" not in msg
    assert "x" * 10 not in msg and "sk-wro" not in msg


def test_missing_key_is_one_line_and_dotenv_is_read(cache_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "placeholder")
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(lm.MissingKeyError) as info:
        lm.generate("openai:gpt-4o-mini", "hi", max_retries=0)
    msg = str(info.value)
    assert "OPENAI_API_KEY" in msg and ".env" in msg and "\n" not in msg
    (tmp_path / ".env").write_text(f"OPENAI_API_KEY={SECRET}\n")
    with LoopbackServer(api_key=SECRET) as srv:
        assert lm.generate("openai:loopback-chat", "hi", base_url=srv.base_url, max_tokens=2)
    assert SECRET not in _everything_written(cache_dir).decode("latin-1")


# ------------------------------------------------------------------------------------------ scoring
def test_score_through_completions_echo_is_exact(server, cache_dir):
    prompt, conts = "The movie was", [" good", " bad and boring"]
    got = lm.score("openai:loopback-base", prompt, conts, base_url=server.base_url)
    want = []
    for c in conts:
        ctx, total = prompt, 0.0
        for tok in tokenize(c):
            total += token_logprob(ctx, tok)
            ctx += tok
        want.append(total)
    assert got == pytest.approx(want)
    many = lm.score_many("openai:loopback-base", ["The movie was", "It was"], [" good", " bad"],
                         base_url=server.base_url, progress=False)
    assert many[0][0] == pytest.approx(want[0]) and len(many) == 2 and len(many[1]) == 2
    assert many[1] == pytest.approx([token_logprob("It was", " good"), token_logprob("It was", " bad")])
    assert all(e["echo"] for e in server.stats()["log"])


def test_score_refuses_chat_models_and_servers_that_ignore_echo(server, cache_dir):
    with pytest.raises(lm.ScoringNotSupportedError) as info:
        lm.score("openai:gpt-4o-mini", "The capital of France is", [" Paris"])  # refused before any request
    msg = str(info.value)
    assert "chat" in msg and "davinci-002" in msg and "hf:gpt2" in msg and "first_token_logprobs" in msg
    with pytest.raises(lm.ScoringNotSupportedError, match="ignored echo"):
        lm.score("openai:loopback-noecho", "The movie was", [" good"], base_url=server.base_url)
    with pytest.raises(lm.ScoringNotSupportedError, match="cannot score"):
        lm.score("openai:loopback-chat", "The movie was", [" good"], base_url=server.base_url)


def test_first_token_logprobs_from_chat_top_logprobs(server, cache_dir):
    probe = lm.generate("openai:loopback-chat", "Answer:", base_url=server.base_url, max_tokens=1, logprobs=20)
    top = probe.top_logprobs[0]
    best, other = list(top)[:2]
    got = lm.first_token_logprobs("openai:loopback-chat", "Answer:", [best.strip(), other.strip(), "zebra"],
                                  base_url=server.base_url)
    assert got[best.strip()] == pytest.approx(top[best]) and got[other.strip()] == pytest.approx(top[other])
    assert got["zebra"] == -math.inf


# ------------------------------------------------------------------------------------------ local models
def test_local_score_matches_a_manual_forward_pass(tiny):
    import torch

    model, tok = tiny
    got = lm.score((model, tok), "the capital of France is", [" Paris", " London", " Paris is"])
    # the kit's one prompt rule: the text as the tokenizer encodes a document (this one adds no BOS)
    ids = tok("the capital of France is Paris is")["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0], -1)
    n = len(ids)
    assert got[0] == pytest.approx(float(logp[n - 3, ids[n - 2]]), abs=1e-5)
    assert got[2] == pytest.approx(float(logp[n - 3, ids[n - 2]] + logp[n - 2, ids[n - 1]]), abs=1e-5)
    assert got[1] != got[0]


def test_local_generate_batches_like_single_prompts(tiny):
    prompts = ["the movie was good and", "I", "it was a great plot ."]
    batched = lm.generate_many(tiny, prompts, max_tokens=6, progress=False, batch_size=3)
    single = [lm.generate(tiny, p, max_tokens=6) for p in prompts]
    assert batched == single
    assert all(len(c.tokens) == 6 and len(c.logprobs) == 6 for c in batched)
    hot = [lm.generate(tiny, "the movie", temperature=1.5, seed=s, max_tokens=8) for s in range(4)]
    assert len(set(hot)) > 1
    assert lm.generate(tiny, "the movie", temperature=1.5, seed=2, max_tokens=8) == hot[2]


def test_local_first_token_is_exact(tiny):
    got = lm.first_token_logprobs(tiny, "the movie was", ["good", "bad plot"])
    sc = lm.score(tiny, "the movie was", [" good", " bad"])
    assert got["good"] == pytest.approx(sc[0]) and got["bad plot"] == pytest.approx(sc[1])


def test_named_local_model_goes_through_load_causal_lm_and_is_cached(tiny, tmp_path, cache_dir):
    model, tok = tiny
    folder = tmp_path / "tiny-gpt2"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    first = lm.generate_many(str(folder), ["the movie was", "I"], max_tokens=4, progress=False)
    again = lm.generate_many(str(folder), ["the movie was", "I"], max_tokens=4, progress=False)
    assert again == first and all(c.cached for c in again) and not any(c.cached for c in first)
    assert first == lm.generate_many(tiny, ["the movie was", "I"], max_tokens=4, progress=False)


def test_bad_inputs_are_clear(tiny, server):
    with pytest.raises(ValueError, match="temperature"):
        lm.generate(tiny, "x", temperature=5)
    with pytest.raises(ValueError, match="max_tokens"):
        lm.generate(tiny, "x", max_tokens=0)
    with pytest.raises(TypeError, match="prompt"):
        lm.generate(tiny, 42)
    with pytest.raises(ValueError, match="unknown model backend"):
        lm.generate("gtp:4", "x")
    with pytest.raises(lm.LMError, match="no model 'nope'"):
        lm.generate("openai:nope", "x", base_url=server.base_url)
    with pytest.raises(ValueError, match="non-empty"):
        lm.score(tiny, "x", [""])


def test_token_highlighting_offline_and_with_eli5(tiny):
    import eli5

    c = lm.generate(tiny, "the movie was", max_tokens=5, logprobs=3)
    html = lm.highlight(c)._repr_html_()
    assert html.count("<span") == 5 and "http" not in html
    expl = eli5.explain_prediction(c.openai_logprobs())
    page = eli5.format_as_html(expl)
    assert all(t.strip() in page for t in c.tokens) and "<script src" not in page


def test_key_never_reaches_notebook_outputs(tmp_path, monkeypatch):
    """A notebook that uses a key (from the environment), shows answers, the backend and a rejected-key
    error: its saved outputs hold no trace of the key."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("INTERPLAB_CACHE", str(tmp_path / "cache"))
    with LoopbackServer(api_key=SECRET) as srv:
        cells = [
            "from interplab import lm\n"
            f"url = {srv.base_url!r}\n"
            "c = lm.generate('openai:loopback-chat', 'hi', base_url=url, max_tokens=3, logprobs=2)\n"
            "print(c, c.usage); c",
            "lm.get_backend('openai:loopback-chat', base_url=url)",
            "import os; os.environ['OPENAI_API_KEY'] = 'sk-wrong-' + 'w' * 30\n"
            "lm.generate('openai:loopback-chat', 'other', base_url=url, max_tokens=3)",
        ]
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute()
    text = nbformat.writes(nb)
    assert "KeyRejectedError" in text and "rejected the API key" in text
    assert SECRET not in text and SECRET[8:24] not in text and "w" * 10 not in text


@pytest.mark.browser
def test_token_highlighting_renders_offline_in_a_browser(tiny, tmp_path, open_offline):
    c = lm.generate(tiny, "the movie was", max_tokens=4, logprobs=3)
    page = open_offline(lm.highlight(c, title="tiny model").save(tmp_path / "tokens.html"))
    spans = page.page.locator("span[title]")
    assert spans.count() == 4 and page.errors == [] and page.requests == []
    assert "p=" in spans.first.get_attribute("title")


# ------------------------------------------------------------------------------------------ smollm2 (real)
@pytest.fixture(scope="module")
def smollm2():
    """The embedded SmolLM2-135M-Instruct through the local backend (loaded once per module)."""
    backend = lm.get_backend("smollm2")
    backend.load()
    return backend


def test_smollm2_generates_real_text_greedy_and_sampled(smollm2, cache_dir):
    paris = lm.generate("smollm2", "The capital of France is", max_tokens=6)
    assert "Paris" in paris, paris
    # temperature 0 is deterministic whatever the seed; temperature 1 differs across seeds
    # (one batch each: a row's text does not depend on the batch it ran in, checked against a lone run)
    cold = set(map(str, lm.generate_many("smollm2", ["Once upon a time"] * 3, temperature=0, seed=[0, 1, 2],
                                         max_tokens=10, progress=False)))
    hot = [str(c) for c in lm.generate_many("smollm2", ["Once upon a time"] * 4, temperature=1.0, seed=[0, 1, 2, 3],
                                            max_tokens=10, progress=False)]
    assert len(cold) == 1 and len(set(hot)) >= 3, (cold, hot)
    assert lm.generate("smollm2", "Once upon a time", temperature=1.0, seed=2, max_tokens=10, cache=False) == hot[2]
    # chat messages go through the tokenizer's chat template, with its special tokens once, not doubled
    _, tok = smollm2.load()
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    answer = lm.generate("smollm2", msgs, max_tokens=12)
    want = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert smollm2._prefix(msgs) == tok(want, add_special_tokens=False)["input_ids"]
    assert answer.usage["prompt_tokens"] == len(smollm2._prefix(msgs)) and "Paris" in answer


SENSIBLE = [  # (prompt, sensible continuation, silly one)
    ("The capital of France is", " Paris", " a banana"),
    ("Water freezes at zero degrees", " Celsius", " of sadness"),
    ("The opposite of hot is", " cold", " Tuesday"),
    ("Two plus two equals", " four", " purple"),
    ("The sun rises in the", " east", " fridge"),
    ("A baby cat is called a", " kitten", " lawnmower"),
    ("She opened the door with a", " key", " sandwich"),
    ("Bees make", " honey", " bicycles"),
    ("The first month of the year is", " January", " breakfast"),
    ("To see in the dark, turn on the", " light", " elephant"),
]


def test_smollm2_score_prefers_the_sensible_continuation(smollm2, cache_dir):
    scores = lm.score_many("smollm2", [p for p, _, _ in SENSIBLE], [[a, b] for _, a, b in SENSIBLE], progress=False)
    accuracy = sum(s[0] > s[1] for s in scores) / len(scores)
    print(f"smollm2 picks the sensible continuation on {accuracy:.0%} of {len(scores)} items (chance 50%)")
    assert accuracy >= 0.9, scores


def test_local_score_and_evals_tokenize_the_boundary_alike(smollm2, cache_dir):
    """lm.score (local backend) agrees with evals' plain per-class reference and with a hand-written forward
    pass over tokenize(prompt + continuation), including a prompt ending in a space and classes without one."""
    import torch

    from interplab import evals

    model, tok = smollm2.load()
    prompts = ["The capital of France is", "Question: Is the sky blue?\nAnswer: ", "I like"]
    conts = [[" Paris", " London", "Paris"], ["Yes", "No"], ["cheese", " tea and cake"]]
    got = lm.score_many("smollm2", prompts, conts, progress=False, cache=False)
    ref = evals.continuation_logprobs(model, tok, prompts, conts, method="reference", progress=False)
    for g, r in zip(got, ref):
        assert g == pytest.approx(list(r), abs=1e-4)
    # by hand: " Paris" after the prompt
    full = tok("The capital of France is Paris")["input_ids"]
    n = len(tok("The capital of France is")["input_ids"])
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([full])).logits[0].float(), -1)
    assert got[0][0] == pytest.approx(float(sum(logp[i - 1, full[i]] for i in range(n, len(full)))), abs=1e-4)
    # a prompt ending in a space scores like the prompt without it plus a space-led class
    assert got[1] == pytest.approx(lm.score("smollm2", "Question: Is the sky blue?\nAnswer:", [" Yes", " No"],
                                            cache=False), abs=1e-4)


def test_local_score_and_evals_agree_on_a_toy_model():
    """The same agreement on a toy transformer (its own whitespace tokenizer, a BOS in front): lm.score by name,
    by (model, tokenizer) pair, evals' batched scorer and its per-class reference, and a hand-written forward
    pass, on prompts with and without a trailing space (and an empty one)."""
    import torch

    from interplab import evals, models

    model, tok = models.resolve("toy:attn-only-1l", kind="causal")
    prompts = ["t1 t2 t3", "t4 t5 ", "t7 t8 t9 t7 t8 ", ""]
    conts = [[" t4", " t9", " t1 t2"], ["t6", "t7 t8"], ["t9", " t9", "t1"], [" t1", "t2"]]
    by_name = lm.score_many("toy:attn-only-1l", prompts, conts, progress=False, cache=False)
    by_pair = lm.score_many((model, tok), prompts, conts, progress=False, cache=False)
    assert lm.get_backend("toy:attn-only-1l").load()[0] is model      # one memo for lm and models.resolve
    for method in ("reference", None):
        ref = evals.continuation_logprobs(model, tok, prompts, conts, progress=False,
                                          **({"method": method} if method else {}))
        for a, b, r in zip(by_name, by_pair, ref):
            assert a == pytest.approx(list(r), abs=1e-4) and b == pytest.approx(list(r), abs=1e-4)
    full = tok("t4 t5 t6")["input_ids"]
    n = len(tok("t4 t5")["input_ids"])
    with torch.no_grad():
        out = model(torch.tensor([full]))
    logp = torch.log_softmax(getattr(out, "logits", out)[0].float(), -1)
    assert by_name[1][0] == pytest.approx(float(sum(logp[i - 1, full[i]] for i in range(n, len(full)))), abs=1e-4)
    assert by_name[1] == pytest.approx(lm.score("toy:attn-only-1l", "t4 t5", [" t6", " t7 t8"], cache=False), abs=1e-4)


def test_loopback_serves_real_smollm2_through_the_openai_sdk(smollm2, cache_dir):
    import openai

    from interplab.lm.loopback import LoopbackServer

    msgs = [{"role": "user", "content": "Name a fruit that is yellow."}]
    local_chat = lm.generate("smollm2", msgs, max_tokens=12, cache=False)
    local_text = lm.generate("smollm2", "The capital of France is", max_tokens=6, cache=False)
    local_hot = lm.generate("smollm2", "Once upon a time", temperature=0.9, seed=3, max_tokens=8, cache=False)
    with LoopbackServer(model="smollm2") as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="not-needed")
        assert [m.id for m in client.models.list().data] == ["smollm2"]
        r = client.chat.completions.create(model="smollm2", messages=msgs, max_tokens=12, temperature=0)
        assert r.choices[0].message.content == local_chat and r.usage.completion_tokens == len(local_chat.tokens)
        c = client.completions.create(model="smollm2", prompt="The capital of France is", max_tokens=6, temperature=0)
        assert c.choices[0].text == local_text and "Paris" in c.choices[0].text
        via = lm.generate("openai:smollm2", "Once upon a time", temperature=0.9, seed=3, max_tokens=8,
                          endpoint="completions", base_url=srv.base_url, cache=False)
        assert via == local_hot
        # scoring through the API path (completions + echo + logprobs) gives the local scores
        prompt, options = "The capital of France is", [" Paris", " London", " a banana"]
        assert lm.score("openai:smollm2", prompt, options, base_url=srv.base_url, cache=False) == pytest.approx(
            lm.score("smollm2", prompt, options, cache=False), abs=1e-4)
        with pytest.raises(openai.NotFoundError, match="loopback-chat"):
            client.chat.completions.create(model="loopback-chat", messages=msgs, max_tokens=2)


def test_compare_across_tokenizers_and_the_induction_probe(smollm2, session_toys, cache_dir):
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / "toy").symlink_to(session_toys, target_is_directory=True)  # an empty cache, but the toy trained once
    models = ["smollm2", "toy:attn-only-1l"]
    probe = lm.repeat_probe(models, n=12, seed=0)
    for prompt, (rep, seen, unseen) in zip(probe.prompts, probe.continuations):
        words = prompt.split()
        assert all(words.count(w) == 1 for w in rep.split() + seen.split())   # same in-context frequency
        assert not any(w in words for w in unseen.split()) and seen != rep
        pairs = set(zip(words, words[1:]))
        assert not pairs & set(zip([words[-1]] + seen.split(), seen.split()))  # no order copied from context
    scores = lm.compare_scores(models, probe.prompts, probe.continuations, labels=probe.labels, progress=False)
    assert set(scores["model"]) == set(models) and len(scores) == 2 * 12 * 3
    gaps = lm.induction_gaps(scores, probe.n_words)
    print(gaps.round(2).to_string())
    assert gaps.loc["smollm2", "induction_lo"] > 0.5           # the real model copies the sequence
    assert abs(gaps.loc["toy:attn-only-1l", "induction"]) < 0.3  # one attention layer cannot
    assert gaps.loc["toy:attn-only-1l", "in_context_bias_lo"] > 0  # ...but it favours words it has seen
    # a probe the toy cannot read fails in one line naming the model and the fix
    english = lm.repeat_probe("smollm2", n=2, seed=1)
    with pytest.raises(ValueError, match=r"toy:attn-only-1l cannot read .*repeat_probe\(\[all models\]\)") as info:
        lm.compare_scores(models, english.prompts, english.continuations, labels=english.labels, progress=False)
    assert len(str(info.value).splitlines()) == 1


@pytest.mark.parametrize("call", ["generate_many", "score_many", "first_token_logprobs"])
def test_an_unknown_option_is_refused_before_any_work(call):
    """A misspelt option fails at once with its name (one check in lm.core._opts), and no model is loaded for it."""
    from interplab import lm

    args = {"generate_many": (["hi"],), "score_many": (["hi"], [" a", " b"]), "first_token_logprobs": ("hi", ["a", "b"])}[call]
    with pytest.raises(TypeError, match=r"unknown option\(s\): temprature"):
        getattr(lm, call)("hf:no-such-org/never-loaded", *args, temprature=0.5)
