"""Backends: a model served behind an OpenAI-compatible API (a real `transformers serve` process and loopback
http.servers), vLLM's refusal where it cannot run, judges on any backend, and the register_backends hook."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from medbench.errors import MedbenchError
from medbench.testing import invoke_cli

SECRET = "sk-test-never-in-records-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served_tiny_model(tiny_model_dir, tmp_path_factory):
    """`transformers serve` on loopback serving the tiny local model, offline; yields (base URL, model id)."""
    import requests

    command = Path(sys.executable).with_name("transformers")
    assert command.is_file(), "`transformers serve` is missing: pip install -e '.[test]' (transformers[serving])"
    port = free_port()
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("w")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    server = subprocess.Popen([str(command), "serve", str(tiny_model_dir), "--host", "127.0.0.1", "--port", str(port),
                               "--device", "cpu"], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            assert server.poll() is None, f"transformers serve exited: {Path(log.name).read_text()[-2000:]}"
            try:
                if requests.get(f"{url}/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        else:
            pytest.fail("transformers serve did not come up within 180 s")
        yield url, str(tiny_model_dir)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def only_record(board: Path) -> dict:
    paths = sorted(board.glob("records/*/*/record.json"))
    assert len(paths) == 1, paths
    return json.loads(paths[0].read_text())


def test_a_generate_task_is_scored_through_a_real_server(served_tiny_model, tmp_path, monkeypatch):
    url, model_id = served_tiny_model
    monkeypatch.setenv("MEDBENCH_API_KEY", SECRET)  # transformers serve ignores it; it must land nowhere
    board = tmp_path / "board"
    args = ["eval", "--model", f"openai:{model_id}", "--base-url", url, "--tasks", "medqa", "--mode", "generate",
            "--limit", "2", "--concurrency", "1", "--leaderboard-dir", board, "--label", "served-tiny"]
    result = invoke_cli(*args)
    assert result.exit_code == 0, result.output
    record = only_record(board)
    model = record["model"]
    assert model["backend"] == "openai" and model["kind"] == "served" and model["name"] == model_id
    assert model["server"] == f"{url}/v1" and model["served_model_id"] == model_id
    assert model["response_model_ids"] == [model_id]  # what the server said answered
    assert record["record_key"] == "medqa@gen" and record["n"] == 2
    first = record["created"], record["duration_s"]

    # Never served from disk: the same command asks the server again and rewrites the record.
    time.sleep(1.1)
    result = invoke_cli(*args)
    assert result.exit_code == 0, result.output
    assert "reused" not in result.output
    again = only_record(board)
    assert (again["created"], again["duration_s"]) != first
    assert not (board / ".cache").exists()  # no resumable request cache keyed on a (stand-in) weights hash
    written = "".join(path.read_text() for path in board.rglob("*") if path.is_file())
    assert SECRET not in written and SECRET not in result.output


def test_loglikelihood_is_refused_in_one_line_when_the_server_returns_no_prompt_logprobs(served_tiny_model, tmp_path):
    url, model_id = served_tiny_model
    result = invoke_cli("eval", "--model", f"openai:{model_id}", "--base-url", url, "--tasks", "medqa", "--limit", "2",
                        "--leaderboard-dir", tmp_path)
    assert result.exit_code == 2
    last = result.output.strip().splitlines()[-1]
    assert "medqa in log-likelihood mode cannot be scored" in last and "--mode generate" in last
    assert not (tmp_path / "records").exists()


def test_an_unserved_model_name_and_a_bad_url_are_one_line_each(served_tiny_model, tmp_path):
    url, model_id = served_tiny_model
    result = invoke_cli("eval", "--model", "openai:gpt-nope", "--base-url", url, "--tasks", "medqa", "--mode",
                        "generate", "--leaderboard-dir", tmp_path)
    assert result.exit_code == 2 and "serves no model named 'gpt-nope'" in result.output and model_id in result.output
    result = invoke_cli("eval", "--model", "openai:x", "--base-url", "ftp://host", "--tasks", "medqa",
                        "--leaderboard-dir", tmp_path)
    assert result.exit_code == 2 and "is not an http(s) URL" in result.output
    result = invoke_cli("eval", "--model", "openai:x", "--tasks", "medqa", "--leaderboard-dir", tmp_path)
    assert result.exit_code == 2 and "pass --base-url" in result.output
    result = invoke_cli("eval", "--model", f"openai:{model_id}", "--base-url", url, "--backend-option", "api_key=sk-x",
                        "--tasks", "medqa", "--mode", "generate", "--leaderboard-dir", tmp_path)
    assert result.exit_code == 2 and "has no option api_key" in result.output and "sk-x" not in result.output
    assert not (tmp_path / "records").exists()


def test_the_likert_judge_runs_on_a_served_model_and_is_recorded(served_tiny_model, tiny_model_dir, tmp_path):
    url, model_id = served_tiny_model
    result = invoke_cli("eval", "--model", tiny_model_dir, "--tasks", "discharge_summary", "--limit", "2",
                        "--judge", "likert", "--judge-model", f"openai:{model_id}", "--judge-base-url", url,
                        "--judge-samples", "3", "--leaderboard-dir", tmp_path)
    assert result.exit_code == 0, result.output
    record = only_record(tmp_path)
    judge = record["judges"]["likert"]
    assert judge["model"]["backend"] == "openai" and judge["model"]["served_model_id"] == model_id
    assert judge["model"]["server"] == f"{url}/v1"
    assert judge["method"] == "vote" and judge["samples"] == 3 and judge["temperature"] == 0.7
    assert judge["rubric"].startswith("faithful to the note")  # the task's own rubric (metadata.judge_rubric)
    assert record["model"]["backend"] == "hf"  # the scored model ran in-process
    samples = [json.loads(line) for line in next(tmp_path.glob("records/*/*/samples.jsonl")).open()]
    # A random tiny judge rarely writes a digit: no rating is None, never a made-up number.
    assert all(s["judge:likert"] is None or 1 <= s["judge:likert"] <= 5 for s in samples)


def test_majority_vote_and_rating_extraction():
    from medbench_plugins.likert_judge import first_rating, majority

    assert [first_rating(t) for t in ("Rating: 4", "I'd say 5/5", "10 out of 10", "3.5", "none")] == \
        ["4", "5", None, None, None]
    assert majority([4, 4, 2]) == 4 and majority([2, 4]) == 3 and majority([]) is None


# --- log-likelihoods from echoed prompt log-probs: a loopback server computing them with the tiny model ------------

@contextmanager
def loopback(handler_class):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", server
    finally:
        server.shutdown()
        server.server_close()


class JsonHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def send_json(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def body(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")


def echo_logprob_handler(model, tokenizer, model_id: str):
    import torch

    class Handler(JsonHandler):
        def do_GET(self):
            self.send_json(200, {"object": "list", "data": [{"id": model_id, "object": "model"}]})

        def do_POST(self):
            prompt = self.body()["prompt"]
            encoded = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
            ids = encoded.input_ids
            with torch.no_grad():
                logprobs = model(torch.tensor([ids])).logits[0].float().log_softmax(-1)
            values = [None] + [float(logprobs[i - 1, ids[i]]) for i in range(1, len(ids))]
            tops = [None] + [{tokenizer.decode([int(logprobs[i - 1].argmax())]): float(logprobs[i - 1].max())}
                             for i in range(1, len(ids))]
            next_id = int(logprobs[-1].argmax())
            tokens = [tokenizer.decode([i]) for i in ids] + [tokenizer.decode([next_id])]
            self.send_json(200, {"model": model_id, "choices": [{"index": 0, "text": prompt + tokens[-1], "logprobs": {
                "tokens": tokens, "token_logprobs": values + [float(logprobs[-1].max())],
                "top_logprobs": tops + [{tokens[-1]: float(logprobs[-1].max())}],
                "text_offset": [start for start, _ in encoded.offset_mapping] + [len(prompt)]}}]})

    return Handler


def test_loglikelihood_over_echoed_logprobs_matches_the_in_process_scores(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from medbench.evaluation import EvalConfig, evaluate

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    local = evaluate(str(tiny_model_dir), EvalConfig(tasks=["medqa"], limit=4, output_dir=tmp_path / "local"))[0]
    with loopback(echo_logprob_handler(model, tokenizer, "tiny")) as (url, _):
        served = evaluate("openai:tiny", EvalConfig(tasks=["medqa"], limit=4, output_dir=tmp_path / "served",
                                                    backend_options={"base_url": url, "concurrency": 2}))[0]
    assert served["model"]["backend"] == "openai" and served["record_key"] == local["record_key"] == "medqa"

    def rows(record):
        return [json.loads(line) for line in (Path(record["_path"]).parent / "samples.jsonl").open()]

    for mine, theirs in zip(rows(served), rows(local)):
        assert mine["pred"] == theirs["pred"]
        assert mine["logliks"] == pytest.approx(theirs["logliks"], abs=1e-3)
    assert served["score"] == local["score"]


# --- retries, timeouts, concurrency and the rate limit, against loopback http.servers that misbehave --------------

def client(url: str, **options):
    from medbench_plugins.openai_client import ClientOptions, ServerClient

    return ServerClient(ClientOptions(base_url=url, backoff=0.05, **options))


def flaky_handler(failures: list[tuple[int, dict]], delay_first: float = 0.0):
    """Answers each POST with the next planned failure, then with 200; records what it saw."""
    seen: list[dict] = []

    class Handler(JsonHandler):
        def do_POST(self):
            seen.append({"auth": self.headers.get("Authorization"), "body": self.body()})
            if delay_first and len(seen) == 1:
                time.sleep(delay_first)
            if failures:
                status, headers = failures.pop(0)
                self.send_json(status, {"error": f"try again; you sent {self.headers.get('Authorization')}"}, headers)
            else:
                self.send_json(200, {"ok": len(seen)})

    return Handler, seen


def test_transient_failures_are_retried_with_backoff():
    handler, seen = flaky_handler([(503, {}), (429, {"Retry-After": "0"}), (502, {})])
    with loopback(handler) as (url, _):
        started = time.monotonic()
        assert client(url, max_retries=3).call("POST", "chat/completions", {"x": 1}) == {"ok": 4}
    assert len(seen) == 4 and time.monotonic() - started >= 0.05 + 0.1 * 0.8  # 0.05 s, 0 s (Retry-After), 0.1 s


def test_a_request_that_times_out_is_retried_then_gives_up_in_one_line():
    handler, seen = flaky_handler([], delay_first=1.0)
    with loopback(handler) as (url, _):
        assert client(url, timeout=0.3, max_retries=1).call("POST", "completions", {}) == {"ok": 2}
    handler, seen = flaky_handler([(500, {})] * 5)
    with loopback(handler) as (url, _):
        with pytest.raises(MedbenchError, match=r"failed after 3 tries \(HTTP 500") as caught:
            client(url, max_retries=2).call("POST", "completions", {})
    assert "\n" not in str(caught.value) and len(seen) == 3


def test_a_refused_key_is_not_retried_and_never_echoed(monkeypatch):
    monkeypatch.setenv("MEDBENCH_API_KEY", SECRET)
    handler, seen = flaky_handler([(401, {})])
    with loopback(handler) as (url, _):
        with pytest.raises(MedbenchError, match="MEDBENCH_API_KEY") as caught:
            client(url, max_retries=4).call("POST", "chat/completions", {})
    assert len(seen) == 1 and seen[0]["auth"] == f"Bearer {SECRET}"  # sent, in the header only
    assert SECRET not in str(caught.value) and "***" in str(caught.value)


def test_concurrency_and_rate_limits_hold():
    in_flight, peak, lock = [0], [0], threading.Lock()

    class Slow(JsonHandler):
        def do_POST(self):
            with lock:
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
            time.sleep(0.15)
            with lock:
                in_flight[0] -= 1
            self.send_json(200, self.body())

    with loopback(Slow) as (url, _):
        api = client(url, concurrency=3)
        assert api.map(lambda i: api.call("POST", "x", {"i": i})["i"], list(range(9))) == list(range(9))
        assert peak[0] == 3
        limited = client(url, concurrency=4, rate_limit=20.0)
        started = time.monotonic()
        limited.map(lambda i: limited.call("POST", "x", {"i": i}), list(range(6)))
        assert time.monotonic() - started >= 5 / 20.0  # six starts, 1/20 s apart


# --- vLLM and the hook ------------------------------------------------------------------------------------------------

def test_vllm_refuses_in_one_line_where_it_cannot_run(tmp_path):
    from medbench_plugins.vllm_backend import refusal

    reason = refusal()
    if reason is None:
        pytest.skip("vllm and a CUDA GPU are here: the refusal cannot happen")
    result = invoke_cli("eval", "--backend", "vllm", "--tensor-parallel", "2", "--tasks", "medqa",
                        "--leaderboard-dir", tmp_path)
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        f"Error: --backend vllm cannot run here: {reason} — on a CUDA machine `pip install 'medbench[vllm]'`, or "
        "drop --backend to score in-process")
    result = invoke_cli("eval", "--backend", "vlm", "--tasks", "medqa", "--leaderboard-dir", tmp_path)
    assert result.exit_code == 2 and "did you mean vllm" in result.output


def test_register_backends(plugin_registration, tiny_model_dir, tmp_path):
    """A plugin backend is chosen by --backend or by its reference prefix, and records name it."""
    from medbench.backends import in_process
    from medbench.evaluation import EvalConfig, evaluate

    opened = []

    class MirrorBackend:
        name = "mirror"
        ref_prefix = "mirror"
        description = "the in-process model under another name (a test double of a remote backend)"

        def open(self, ref, options, *, batch_size=8, seed=1234, progress=None):
            opened.append((ref, options))
            return in_process(ref, batch_size=batch_size, progress=progress)

    class Plugin:
        from medbench import hookimpl

        @hookimpl
        def register_backends(self, register):
            register(MirrorBackend())

    plugin_registration(Plugin(), "mirror-backend")
    by_prefix = evaluate(f"mirror:{tiny_model_dir}", EvalConfig(tasks=["medqa"], limit=2, output_dir=tmp_path))[0]
    assert opened == [(str(tiny_model_dir), {})] and by_prefix["model"]["backend"] == "mirror"
    # The record and its default label keep the reference as typed, not only what the backend resolved it to.
    assert by_prefix["model"]["user_ref"] == f"mirror:{tiny_model_dir}" and by_prefix["model"]["ref"] != \
        by_prefix["model"]["user_ref"] and by_prefix["model"]["label"].startswith("mirror:")
    by_name = evaluate(str(tiny_model_dir), EvalConfig(tasks=["medqa"], limit=2, output_dir=tmp_path / "b",
                                                      backend="mirror", backend_options={"k": "v"}))[0]
    assert opened[-1] == (str(tiny_model_dir), {"k": "v"}) and by_name["score"] == by_prefix["score"]


def test_repeats_sample_with_their_own_seed_and_top_p_reaches_the_server():
    """--repeats k sends each prompt k times: a server that honours `seed` must not be asked for one sample k times."""
    from lm_eval.api.instance import Instance

    from medbench_plugins.openai_backend import ServedLM

    seen: list[dict] = []

    class Handler(JsonHandler):
        def do_POST(self):
            seen.append(self.body())
            self.send_json(200, {"model": "m", "choices": [{"message": {"content": "A"}}]})

    sampled = {"until": ["\n"], "temperature": 0.7, "top_p": 0.9, "do_sample": True, "max_gen_toks": 8}
    requests = [Instance("generate_until", {}, ("Question?", sampled), 0) for _ in range(3)]
    requests.append(Instance("generate_until", {}, ("Other question?", sampled), 0))
    with loopback(Handler) as (url, _):
        lm = ServedLM(client(url), "m", seed=1234, reported_ids=[])
        assert lm.generate_until(requests) == ["A"] * 4
    seeds = [payload["seed"] for payload in seen if payload["messages"][0]["content"] == "Question?"]
    assert len(seeds) == 3 and len(set(seeds)) == 3  # the three copies of one prompt (answered in any order)
    assert all(payload["top_p"] == 0.9 and payload["temperature"] == 0.7 for payload in seen)
    assert all(payload["stop"] == ["\n"] and payload["max_tokens"] == 8 for payload in seen)


def test_data_parallel_scoring_refuses_a_served_model_in_one_line(medbench_cli, tmp_path):
    result = medbench_cli("eval", "--model", "openai:tiny", "--base-url", "http://127.0.0.1:9/v1", "--tasks", "medqa",
                          "--mode", "generate", "--num-processes", "2", "--leaderboard-dir", str(tmp_path / "lb"))
    assert result.exit_code == 2
    assert "--num-processes" in result.output and "backend" in result.output
    assert not (tmp_path / "lb").exists()  # refused before anything was written
