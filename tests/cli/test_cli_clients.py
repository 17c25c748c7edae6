"""`vllm bench serve`, `vllm chat` and `vllm complete` against the real `vllm serve` on tiny-phi:
the benchmark's table adds up (every request succeeds, token totals are exactly prompts x length,
TTFT <= end-to-end latency), in the max-concurrency and the Poisson request-rate modes and on the
chat endpoint; the clients' streamed replies equal a direct non-streamed request with the same
sampling fields; an unreachable server or an error answer is a message and a non-zero exit."""
import json
import os
import re
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from vllm_server import Server, free_port, post_json, run_vllm, tiny_phi_dir  # noqa: E402

# tiny-phi has no chat template of its own: a plain one where every turn shows.
TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}assistant:{% endif %}")


@pytest.fixture(scope="module")
def model_dir():
    return tiny_phi_dir()


@pytest.fixture(scope="module")
def server(model_dir):
    s = Server(model_dir, ["--served-model-name", "tiny-phi", "--chat-template", TEMPLATE])
    yield s
    assert s.stop() == 0, s.log()[-3000:]


def table(stdout):
    """The 'Label: value' lines of the result table, values as floats (inf kept as a string)."""
    assert "============ Serving Benchmark Result ============" in stdout, stdout
    rows = {}
    for line in stdout.splitlines():
        m = re.match(r"^(.+?):\s+(\S+)\s*$", line)
        if m:
            rows[m.group(1)] = float(m.group(2)) if m.group(2) != "inf" else m.group(2)
    return rows


def bench(server, tmp_path, *extra):
    result = tmp_path / "result.json"
    rc, out, err = run_vllm("bench", "serve", "--base-url", server.url, "--num-prompts", "20",
                            "--random-input-len", "16", "--random-output-len", "8", "--ignore-eos",
                            "--percentile-metrics", "ttft,tpot,itl,e2el", "--save-result",
                            "--result-dir", str(tmp_path), "--result-filename", "result.json", *extra)
    assert rc == 0, out + err
    assert out.startswith("# vllm bench serve --base-url"), out  # the command line that made it
    return table(out), json.loads(result.read_text())


def check_common(rows, saved, input_tokens=320):
    assert rows["Successful requests"] == 20
    assert rows["Failed requests"] == 0
    if input_tokens is not None:
        assert rows["Total input tokens"] == input_tokens
    assert rows["Total generated tokens"] == 160  # ignore_eos: exactly 8 each
    for k in ("Benchmark duration (s)", "Request throughput (req/s)", "Output token throughput (tok/s)",
              "Total Token throughput (tok/s)", "Mean TTFT (ms)", "Mean TPOT (ms)", "Mean ITL (ms)"):
        assert rows[k] > 0, k
    assert rows["Total Token throughput (tok/s)"] > rows["Output token throughput (tok/s)"]
    assert rows["Mean TTFT (ms)"] <= rows["Mean E2EL (ms)"]
    assert rows["Median TTFT (ms)"] <= rows["P99 TTFT (ms)"]
    assert saved["output_lens"] == [8] * 20
    for ttft, e2el, itl in zip(saved["ttfts"], saved["e2els"], saved["itls"]):
        assert 0 < ttft <= e2el
        assert ttft + sum(itl) <= e2el + 1e-6
    assert all(e == "" for e in saved["errors"])


def test_bench_serve_max_concurrency(server, model_dir, tmp_path):
    # --tokenizer: prompts of exactly 16 random token ids each.
    rows, saved = bench(server, tmp_path, "--max-concurrency", "4", "--model", "tiny-phi", "--tokenizer", model_dir)
    check_common(rows, saved)
    assert rows["Maximum request concurrency"] == 4
    assert saved["input_lens"] == [16] * 20
    assert saved["max_concurrency"] == 4


def test_bench_serve_request_rate(server, model_dir, tmp_path):
    # No --model: the first one GET /v1/models lists.
    rows, saved = bench(server, tmp_path, "--request-rate", "40", "--seed", "3", "--tokenizer", model_dir)
    check_common(rows, saved)
    assert rows["Request rate configured (RPS)"] == 40
    assert saved["model_id"] == "tiny-phi"


def test_bench_serve_chat_endpoint_with_words(server, tmp_path):
    # No tokenizer: random words; the prompt counts come from the server (template included).
    rows, saved = bench(server, tmp_path, "--endpoint", "/v1/chat/completions", "--max-concurrency", "8")
    check_common(rows, saved, input_tokens=None)
    assert all(n > 16 for n in saved["input_lens"])  # 16 words plus the template's tokens


def test_bench_serve_custom_dataset(server, tmp_path):
    data = tmp_path / "prompts.json"
    data.write_text(json.dumps(["San Francisco is a", {"prompt": "Hello", "output_tokens": 3}]))
    rc, out, err = run_vllm("bench", "serve", "--base-url", server.url, "--dataset-name", "custom",
                            "--dataset-path", str(data), "--num-prompts", "4", "--custom-output-len", "5",
                            "--ignore-eos")
    assert rc == 0, out + err
    rows = table(out)
    assert rows["Successful requests"] == 4
    assert rows["Total generated tokens"] == 5 + 3 + 5 + 3
    assert rows["Total input tokens"] == 4 + 1 + 4 + 1  # "San Francisco is a": 4 tokens, "Hello": 1


def test_bench_serve_errors(server, tmp_path):
    rc, out, err = run_vllm("bench", "serve", "--port", str(free_port()), "--num-prompts", "2")
    assert rc != 0 and "cannot reach" in err, err
    rc, out, err = run_vllm("bench", "serve", "--base-url", server.url, "--model", "no-such-model", "--num-prompts", "2")
    assert rc != 0 and "initial test request" in err and "no-such-model" in err, err
    rc, out, err = run_vllm("bench", "serve", "--base-url", server.url, "--request-rate", "fast")
    assert rc != 0 and "--request-rate" in err, err
    rc, out, err = run_vllm("bench", "serve", "--base-url", server.url, "--dataset-name", "custom")
    assert rc != 0 and "--dataset-path" in err, err


def completion(server, prompt, **fields):
    status, body = post_json(server.url + "/v1/completions", {"model": "tiny-phi", "prompt": prompt, **fields})
    assert status == 200, body
    return body["choices"][0]["text"]


def chat_reply(server, messages, **fields):
    status, body = post_json(server.url + "/v1/chat/completions", {"model": "tiny-phi", "messages": messages, **fields})
    assert status == 200, body
    return body["choices"][0]["message"]["content"]


def test_complete_quick_matches_direct_request(server):
    rc, out, err = run_vllm("complete", "--url", server.url + "/v1", "--quick", "San Francisco is a",
                            "--temperature", "0", "--max-tokens", "12")
    assert rc == 0, err
    expected = completion(server, "San Francisco is a", temperature=0, max_tokens=12)
    assert expected and out == expected + "\n"


def test_complete_sends_temperature_and_seed(server):
    rc, out, err = run_vllm("complete", "--url", server.url + "/v1", "--model-name", "tiny-phi", "-q", "Hello",
                            "--temperature", "1.0", "--seed", "7", "--max-tokens", "12")
    assert rc == 0, err
    assert out == completion(server, "Hello", temperature=1.0, seed=7, max_tokens=12) + "\n"
    assert out != completion(server, "Hello", temperature=0, max_tokens=12) + "\n"


def test_complete_reads_stdin_lines(server):
    rc, out, err = run_vllm("complete", "--url", server.url + "/v1", "--temperature", "0", "--max-tokens", "6",
                            stdin="The sky is\nOnce upon a time\n")
    assert rc == 0, err
    expected = [completion(server, p, temperature=0, max_tokens=6) for p in ("The sky is", "Once upon a time")]
    assert out == expected[0] + "\n" + expected[1] + "\n"


def test_chat_quick_with_system_prompt(server):
    rc, out, err = run_vllm("chat", "--url", server.url + "/v1", "--system-prompt", "Be brief.", "--quick", "Hi there",
                            "--temperature", "0", "--max-tokens", "10")
    assert rc == 0, err
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
    expected = chat_reply(server, messages, temperature=0, max_tokens=10)
    assert expected and out == expected + "\n"


def test_chat_keeps_history(server):
    rc, out, err = run_vllm("chat", "--url", server.url + "/v1", "--temperature", "0", "--max-tokens", "8",
                            stdin="first question\nsecond question\n")
    assert rc == 0, err
    m = [{"role": "user", "content": "first question"}]
    first = chat_reply(server, m, temperature=0, max_tokens=8)
    m += [{"role": "assistant", "content": first}, {"role": "user", "content": "second question"}]
    second = chat_reply(server, m, temperature=0, max_tokens=8)
    assert out == first + "\n" + second + "\n"
    # The second turn saw the first: without the history it would (here) answer differently.
    assert second != chat_reply(server, [{"role": "user", "content": "second question"}], temperature=0, max_tokens=8)


@pytest.mark.parametrize("cmd", ["chat", "complete"])
def test_client_errors(server, cmd):
    rc, out, err = run_vllm(cmd, "--url", "http://127.0.0.1:%d/v1" % free_port(), "--quick", "hi")
    assert rc != 0 and "cannot reach" in err, err
    rc, out, err = run_vllm(cmd, "--url", server.url + "/v1", "--model-name", "nope", "--quick", "hi")
    assert rc != 0 and "404" in err and "nope" in err, err
    rc, out, err = run_vllm(cmd, "--url", server.url + "/v1", "--quick", "hi", "--max-tokens", "100000")
    assert rc != 0 and "400" in err, err
