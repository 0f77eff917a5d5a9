import json
import logging
import time
import traceback

import pytest
from judge_server import serve

from sealft.config import JudgeConfig
from sealft.eval.judge import (
    TEMPLATE,
    JudgeError,
    JudgmentCache,
    OpenAIJudge,
    parse_verdict,
    win_rate,
)

PROMPTS = ["p1", "p2", "p3", "p4"]
OURS = ["GOOD one", "GOOD two", "meh", "GOOD four"]
THEIRS = ["meh", "meh", "GOOD three", "GOOD four too"]


def judge(url: str, **kw) -> OpenAIJudge:
    return OpenAIJudge(JudgeConfig(kind="openai", model="test-judge", base_url=url, **kw))


@pytest.mark.parametrize(
    "reply,verdict",
    [
        ("A", "A"),
        (" b.", "B"),
        ("Tie", "tie"),
        ("**A** is better", "A"),
        ("Response B", "B"),
        ("Both are fine", None),
        ("", None),
        (None, None),
        ("Apples", None),
    ],
)
def test_parse_verdict(reply, verdict):
    assert parse_verdict(reply) == verdict


def test_win_rate_over_real_http_judges_both_orders(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with serve("good") as (url, requests):
        cache = JudgmentCache(tmp_path / "cache.jsonl")
        result = win_rate(judge(url), PROMPTS, OURS, THEIRS, cache)
    assert len(requests) == 8 and requests[0]["path"] == "/v1/chat/completions"
    assert requests[0]["auth"] == "Bearer sk-test" and requests[0]["model"] == "test-judge"
    # Every pair appears once with ours as A and once with ours as B.
    firsts = [
        r["messages"][-1]["content"].split("Response A:\n")[1].split("\n\n")[0] for r in requests
    ]
    assert sorted(firsts) == sorted(OURS + THEIRS)
    # p1, p2 won twice; p3 lost twice; p4 tied twice: (4 + 0.5 * 2) / 8.
    s = result.summary()
    assert (s["wins"], s["losses"], s["ties"]) == (4, 2, 2)
    assert s["win_rate"] == pytest.approx(62.5)
    assert s["judgments"] == 8 and s["unparseable"] == s["errors"] == 0


def test_position_bias_cancels_out(tmp_path):
    with serve("first") as (url, _):
        result = win_rate(judge(url), PROMPTS, OURS, THEIRS, JudgmentCache(tmp_path / "c.jsonl"))
    assert result.rate == pytest.approx(50.0)  # always "A": one win and one loss per pair


def test_cached_verdicts_are_not_asked_again(tmp_path):
    cache_path = tmp_path / "cache.jsonl"
    with serve("good") as (url, requests):
        first = win_rate(judge(url), PROMPTS, OURS, THEIRS, JudgmentCache(cache_path))
        second = win_rate(judge(url), PROMPTS, OURS, THEIRS, JudgmentCache(cache_path))
        assert len(requests) == 8
        # Another judge (model name) is another key: asked afresh.
        other = OpenAIJudge(JudgeConfig(model="other", base_url=url))
        win_rate(other, PROMPTS[:1], OURS[:1], THEIRS[:1], JudgmentCache(cache_path))
        assert len(requests) == 10
    assert first.summary() == second.summary()
    assert len(cache_path.read_text().splitlines()) == 10


def test_garbage_replies_are_counted_not_dropped(tmp_path):
    with serve("garbage") as (url, _):
        result = win_rate(
            judge(url, retries=0), PROMPTS, OURS, THEIRS, JudgmentCache(tmp_path / "c.jsonl")
        )
    s = result.summary()
    assert s["unparseable"] == 4 and s["errors"] == 4  # prose, and HTML instead of JSON
    assert s["win_rate"] is None and s["judgments"] == 8
    assert all(j["outcome"] in ("unparseable", "error") for j in result.judgments)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"object": "error"}',
        b'{"choices": []}',
        b'{"choices": [{"message": {"content": 5}}]}',
    ],
)
def test_a_malformed_completion_is_an_error(body):
    with serve("raw", body=body) as (url, _), pytest.raises(JudgeError) as e:
        judge(url, retries=0)("question")
    assert str(e.value) == f"{url}/chat/completions: not an OpenAI chat completion"


def test_a_judge_that_times_out_is_an_error_and_not_cached(tmp_path):
    cache_path = tmp_path / "c.jsonl"
    with serve("slow", delay=1.0) as (url, requests):
        result = win_rate(
            judge(url, timeout=0.2, retries=1),
            PROMPTS[:1],
            OURS[:1],
            THEIRS[:1],
            JudgmentCache(cache_path),
        )
        assert len(requests) == 4  # two orders, each tried twice
    assert result.summary()["errors"] == 2 and result.rate is None
    assert not cache_path.exists() or cache_path.read_text() == ""
    assert all("timed out" in j["error"] for j in result.judgments)


def test_unreachable_judge_is_an_error(tmp_path):
    result = win_rate(
        judge("http://127.0.0.1:9/v1", retries=0, timeout=1),
        ["p"],
        ["a"],
        ["b"],
        JudgmentCache(tmp_path / "c.jsonl"),
    )
    assert result.errors == 2


def test_answers_must_line_up(tmp_path):
    with pytest.raises(ValueError, match="line up"):
        win_rate(
            judge("http://127.0.0.1:9/v1"),
            ["p"],
            ["a", "b"],
            ["c"],
            JudgmentCache(tmp_path / "c.jsonl"),
        )


@pytest.mark.parametrize("status", [429, 503])
def test_a_busy_judge_is_asked_again_after_its_retry_after(tmp_path, status):
    cache_path = tmp_path / "c.jsonl"
    with serve("good", busy=1, busy_status=status) as (url, requests):
        start = time.monotonic()
        result = win_rate(judge(url), PROMPTS[:1], OURS[:1], THEIRS[:1], JudgmentCache(cache_path))
        waited = time.monotonic() - start
        assert len(requests) == 3  # one of the two orders was turned away once
    assert result.wins == 2 and result.errors == 0
    assert len(cache_path.read_text().splitlines()) == 2
    # The client's own back-off starts at 0.5 s: a full second is the server's Retry-After.
    assert waited >= 0.95
    with serve("good", busy=1, busy_status=status) as (url, _), pytest.raises(JudgeError) as e:
        judge(url, retries=0)(TEMPLATE.format(prompt="p", first="a", second="b"))
    assert str(e.value) == f"HTTP {status} from {url}/chat/completions"


def test_concurrent_requests_give_the_sequential_result(tmp_path):
    runs = []
    with serve("slow", delay=0.1) as (url, requests):
        for concurrency in (1, 4):
            cache = JudgmentCache(tmp_path / f"c{concurrency}.jsonl")
            # A cached verdict in the middle: neither run may ask it again.
            key = JudgmentCache.key(judge(url).id, PROMPTS[1], THEIRS[1], OURS[1])
            cache.put({"key": key, "judge": judge(url).id, "reply": "tie", "error": None})
            asked = len(requests)
            result = win_rate(judge(url, concurrency=concurrency), PROMPTS, OURS, THEIRS, cache)
            peak = max(r["in_flight"] for r in requests[asked:])
            runs.append((result, len(requests) - asked, peak, cache.path.read_text()))
    (one, asked_one, peak_one, cache_one), (four, asked_four, peak_four, cache_four) = runs
    assert asked_one == asked_four == 7
    assert peak_one == 1 and 2 <= peak_four <= 4
    assert one.summary() == four.summary() and one.judgments == four.judgments
    assert one.ties == 3  # the cached tie stands
    assert sorted(cache_one.splitlines()) == sorted(cache_four.splitlines())
    with pytest.raises(ValueError):
        JudgeConfig(model="m", concurrency=0)


@pytest.mark.parametrize("mode,asked", [("good", 1), ("deny", 2)])
def test_a_repeated_question_is_asked_as_often_as_one_at_a_time(tmp_path, mode, asked):
    # Identical answers make both orders one question: asked once when it succeeds
    # (the second order reads the cache), twice when it fails (failures are not cached).
    with serve(mode) as (url, requests):
        result = win_rate(judge(url), ["p"], ["same"], ["same"], JudgmentCache(tmp_path / "c"))
        assert len(requests) == asked
    assert (result.ties, result.errors) == ((2, 0) if mode == "good" else (0, 2))


def test_the_api_key_is_sent_but_never_written(tmp_path, monkeypatch, caplog):
    secret = "sk-secret-0123456789"
    monkeypatch.setenv("JUDGE_KEY", secret)
    caplog.set_level(logging.DEBUG)
    cache = JudgmentCache(tmp_path / "c.jsonl")
    with serve("good") as (url, requests):
        ok = win_rate(judge(url, api_key_env="JUDGE_KEY"), PROMPTS[:1], OURS[:1], THEIRS[:1], cache)
    assert ok.errors == 0 and {r["auth"] for r in requests} == {f"Bearer {secret}"}
    # This server echoes the key in its 401 body, as OpenAI's does.
    with serve("deny") as (url, requests):
        denied = win_rate(judge(url, api_key_env="JUDGE_KEY"), PROMPTS, OURS, THEIRS, cache)
        with pytest.raises(JudgeError) as caught:
            judge(url, api_key_env="JUDGE_KEY")("question")
        assert len(requests) == 9  # a 401 is not retried
    assert denied.errors == 8 and all("HTTP 401" in j["error"] for j in denied.judgments)
    written = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert written and secret not in written
    assert secret not in json.dumps(ok.judgments + denied.judgments)
    assert secret not in "".join(traceback.format_exception(caught.value))
    assert secret not in caplog.text


def test_no_key_is_needed_and_no_other_key_is_sent(tmp_path, monkeypatch):
    monkeypatch.delenv("JUDGE_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-for-openai-only")
    with serve("good") as (url, requests):
        result = win_rate(
            judge(url, api_key_env="JUDGE_KEY"), ["p"], ["a"], ["b"], JudgmentCache(tmp_path / "c")
        )
    assert result.errors == 0 and "sk-for-openai-only" not in requests[0]["auth"]


def test_a_local_hugging_face_model_can_judge(tmp_path, tiny_model_dir):
    from sealft.eval.judge import HFJudge, make_judge
    from sealft.model.load import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    cfg = JudgeConfig(kind="hf", model=str(tiny_model_dir), max_tokens=3)
    judge = HFJudge(cfg, model, tok)
    assert judge.id == f"hf:{tiny_model_dir}"
    result = win_rate(judge, ["p"], ["a"], ["b"], JudgmentCache(tmp_path / "c.jsonl"))
    # An untrained model rambles: whatever it says is parsed or counted, never lost.
    s = result.summary()
    assert s["wins"] + s["ties"] + s["losses"] + s["unparseable"] == 2 and s["errors"] == 0
    assert isinstance(make_judge(cfg), HFJudge)  # loads the model itself from the config
