import pytest
from judge_server import serve

from sealft.config import JudgeConfig
from sealft.eval.judge import JudgmentCache, OpenAIJudge, parse_verdict, win_rate

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
