"""The no-code CSV runner (`interplab run-csv`) and the R "GPT-3 experiments" starter (the Python one: test_starters),
run against the loopback OpenAI-compatible server (real HTTP on 127.0.0.1)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from interplab import cli
from interplab.lm.loopback import LoopbackServer, tokenize

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-test-" + "RstarterKeyThatMustNotLeak987654321"


def run_csv(*args) -> int:
    return cli.main(["run-csv", *map(str, args)])


# ------------------------------------------------------------------------------------------ run-csv
def test_run_csv_fills_the_original_spreadsheet(shared_data, tmp_path, server, cache_dir, capsys):
    sheet = tmp_path / "manual-coding.csv"
    shutil.copy(shared_data / "apart-ai-psychology-starter" / "manual-coding.csv", sheet)
    before = pd.read_csv(sheet, dtype=str, keep_default_na=False)
    out = tmp_path / "results.csv"
    assert run_csv(sheet, "--model", "openai:loopback-chat", "--base-url", server.base_url, "-o", out) == 0
    after = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(after.columns) == list(before.columns)
    for col in ("Prompt", "Temperature (creativity)", "Max tokens in output", "Expected", "Bias"):
        assert after[col].tolist() == before[col].tolist()
    assert all(len(tokenize(o)) == 5 for o in after["Output"])  # the sheet's "Max tokens in output" = 5
    assert (after["Output"] != before["Output"]).all()
    log = server.stats()["log"]
    assert sorted(e["prompt"] for e in log) == sorted(before["Prompt"])
    assert {e["temperature"] for e in log} == {0.0} and {e["max_tokens"] for e in log} == {5}
    assert pd.read_csv(sheet, dtype=str, keep_default_na=False).equals(before)  # input untouched
    assert "wrote 6 rows" in capsys.readouterr().out


def test_run_csv_honours_simple_per_row_columns(tmp_path, server, cache_dir):
    sheet = tmp_path / "p.csv"
    sheet.write_text("Prompt,Temperature,Max tokens,Expected\nA cat,0.5,3,x\nA dog,,,y\n,1,1,blank row\n"
                     "A fish,1.2,7,z\n")
    assert run_csv(sheet, "-m", "openai:loopback-chat", "--base-url", server.base_url,
                   "--temperature", "0.3", "--max-tokens", "4") == 0
    out = pd.read_csv(tmp_path / "p-results.csv", dtype=str, keep_default_na=False)
    got = {e["prompt"]: (e["temperature"], e["max_tokens"]) for e in server.stats()["log"]}
    assert got == {"A cat": (0.5, 3), "A dog": (0.3, 4), "A fish": (1.2, 7)}
    assert [len(tokenize(o)) for o in out["Output"]] == [3, 4, 0, 7]
    assert out["Expected"].tolist() == ["x", "y", "blank row", "z"]


@pytest.mark.parametrize("content, message", [
    ("Prompt,Temperature\nA,0.5\nB,hot\n", "row 3: 'Temperature' is 'hot', not a number"),
    ("Prompt,Max tokens in output\nA,2.5\n", "row 2: 'Max tokens in output' is '2.5', not a whole number"),
    ("Prompt,Temperature (creativity)\nA,7\n", "outside 0..2"),
    ("Question,Answer\nA,B\n", "no 'Prompt' column"),
])
def test_run_csv_bad_cells_fail_before_any_request(tmp_path, server, cache_dir, capsys, content, message):
    sheet = tmp_path / "bad.csv"
    sheet.write_text(content)
    assert run_csv(sheet, "-m", "openai:loopback-chat", "--base-url", server.base_url) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert server.stats()["requests"] == 0 and not (tmp_path / "bad-results.csv").exists()
    assert sheet.read_text() == content


def test_run_csv_rejects_xlsx_with_a_hint(shared_data, tmp_path, capsys):
    assert run_csv(shared_data / "apart-ai-psychology-starter" / "manual-coding.xlsx", "-m", "hf:gpt2", "-o", tmp_path / "o.csv") == 1
    assert "export it as CSV" in capsys.readouterr().err


def test_run_csv_stopped_by_the_cap_keeps_what_it_paid_for(tmp_path, server, cache_dir, capsys):
    sheet = tmp_path / "ten.csv"
    sheet.write_text("Prompt\n" + "".join(f"prompt number {i}\n" for i in range(10)))
    args = ["-m", "openai:loopback-chat", "--base-url", server.base_url, "--max-tokens", "5", "--concurrency", "2"]
    assert run_csv(sheet, *args, "--max-spend-tokens", "60") == 1
    err = capsys.readouterr().err
    assert "spending cap reached" in err and "of 10 outputs" in err
    partial = pd.read_csv(tmp_path / "ten-results.csv", dtype=str, keep_default_na=False)
    paid = server.stats()["served"]
    assert 0 < paid < 10 and (partial["Output"] != "").sum() == paid
    assert run_csv(sheet, *args) == 0
    full = pd.read_csv(tmp_path / "ten-results.csv", dtype=str, keep_default_na=False)
    assert (full["Output"] != "").all() and server.stats()["served"] == 10
    assert set(server.stats()["by_prompt"].values()) == {1}


def test_run_csv_with_a_local_model_folder(tmp_path, cache_dir):
    from test_lm import tiny_gpt2

    model, tok = tiny_gpt2()
    model.save_pretrained(tmp_path / "tiny")
    tok.save_pretrained(tmp_path / "tiny")
    sheet = tmp_path / "local.csv"
    sheet.write_text("Prompt,Temperature,Max tokens\nthe movie was,0,3\nI loved it,1,2\n")
    assert run_csv(sheet, "-m", tmp_path / "tiny") == 0
    out = pd.read_csv(tmp_path / "local-results.csv", dtype=str, keep_default_na=False)
    from interplab import lm

    assert out["Output"].tolist() == [lm.generate(str(tmp_path / "tiny"), "the movie was", max_tokens=3),
                                      lm.generate(str(tmp_path / "tiny"), "I loved it", temperature=1, max_tokens=2)]
    assert [len(o.split()) <= m for o, m in zip(out["Output"], (3, 2))] == [True, True]


# ------------------------------------------------------------------------------------------ starters
@pytest.mark.slow
def _rscript():
    if shutil.which("Rscript") is None:
        if os.environ.get("INTERPLAB_REQUIRE_R") == "1":
            pytest.fail("R is required (INTERPLAB_REQUIRE_R=1) but Rscript is not installed")
        pytest.skip("R is not installed (apt-get install r-base-core r-cran-httr r-cran-jsonlite)")


def _r_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(extra)
    return env


def test_r_starter_against_the_loopback_server_serving_smollm2_with_faults(tmp_path):
    """The R starter's offline default: the loopback server serving the real smollm2, with faults on cue."""
    _rscript()
    from interplab import lm

    work = tmp_path / "r-starter"
    shutil.copytree(ROOT / "starters" / "r-starter", work, ignore=shutil.ignore_patterns("results"))
    with LoopbackServer(model="smollm2", api_key=SECRET) as srv:
        srv.inject("429", times=2)
        srv.inject("500", times=1)
        srv.inject("malformed", times=1)
        env = _r_env(OPENAI_BASE_URL=srv.base_url, OPENAI_MODEL="smollm2", OPENAI_API_KEY=SECRET)
        proc = subprocess.run(["Rscript", "run.R", "--quick"], cwd=work, env=env, capture_output=True, text=True,
                              timeout=900)
        stats = srv.stats()
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert SECRET not in proc.stdout + proc.stderr
    assert stats["faults"] == {"429": 2, "500": 1, "malformed": 1}
    df = pd.read_csv(work / "results" / "results.csv", keep_default_na=False)
    first = list(pd.read_csv(work / "prompts.csv")["Prompt"][:4])  # --quick: the first 4 prompts, 2 temperatures
    assert len(df) == stats["served"] == 4 * 2 and set(df["model"]) == {"smollm2"}
    assert sorted(set(df["prompt"])) == sorted(first)
    assert {e["temperature"] for e in stats["log"]} == {0, 1} and {e["max_tokens"] for e in stats["log"]} == {20}
    assert df["sentiment"].between(-1, 1).all() and (df["output"].str.len() > 0).all()
    # real model text: a greedy answer is smollm2's own greedy chat answer
    row = df[df["temperature"] == 0].iloc[0]
    assert row["output"] == lm.generate("smollm2", [{"role": "user", "content": row["prompt"]}], max_tokens=20,
                                        cache=False)
    assert (work / "results" / "sentiment_by_temperature.png").stat().st_size > 5_000


def test_loopback_command_serves_smollm2_by_default(tmp_path):
    """`python -m interplab.lm.loopback --exec CMD` (the R starter's smoke command) points CMD at smollm2."""
    script = tmp_path / "ask.py"
    script.write_text("import os, openai\n"
                      "c = openai.OpenAI(base_url=os.environ['OPENAI_BASE_URL'], api_key='x')\n"
                      "r = c.completions.create(model=os.environ['OPENAI_MODEL'], prompt='The capital of France is',"
                      " max_tokens=5, temperature=0)\n"
                      "print(os.environ['OPENAI_MODEL'], repr(r.choices[0].text))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    proc = subprocess.run([sys.executable, "-m", "interplab.lm.loopback", "--exec", sys.executable, str(script)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("smollm2 ") and "Paris" in proc.stdout


def test_r_starter_key_errors_are_one_line(tmp_path):
    _rscript()
    work = tmp_path / "r-starter"
    shutil.copytree(ROOT / "starters" / "r-starter", work, ignore=shutil.ignore_patterns("results"))
    missing = subprocess.run(["Rscript", "run.R", "--quick"], cwd=work, env=_r_env(), capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode == 1 and "no OpenAI API key" in missing.stderr and "OPENAI_API_KEY" in missing.stderr
    with LoopbackServer(api_key=SECRET) as srv:
        wrong = subprocess.run(["Rscript", "run.R", "--quick"], cwd=work, capture_output=True, text=True, timeout=120,
                               env=_r_env(OPENAI_BASE_URL=srv.base_url, OPENAI_MODEL="loopback-chat",
                                          OPENAI_API_KEY="sk-wrong-" + "z" * 30))
    assert wrong.returncode == 1 and "rejected the API key (401)" in wrong.stderr
    assert "z" * 10 not in wrong.stderr + wrong.stdout
    assert [l for l in wrong.stderr.splitlines() if l.strip()] == [l for l in wrong.stderr.splitlines() if "error" in l]
