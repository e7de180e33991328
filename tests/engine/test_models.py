"""Model errors in the engine (retries with backoff and jitter, then a FAILED subtask with the provider's message,
never a hang) and the scripted model itself, from code and from YAML."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wegent_core import AsyncWegent, ModelRequest, RateLimitError, RetryPolicy, SubtaskState, TaskState
from wegent_core.testing import ScriptedModel, ScriptError, ScriptExhausted

from .conftest import collect, team_yaml

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002)


async def run(replies, *, retry: RetryPolicy = FAST, yaml_script: bool = False):
    model = ScriptedModel(replies)
    models = {} if yaml_script else {"m": model}
    async with AsyncWegent("sqlite://", models=models, retry=retry) as wg:
        await wg.apply(team_yaml("m", ["a"], script=replies if yaml_script else None))
        task = await wg.run("team", "hello")
        events = await collect(task)
        return model, await task.record(), await task.subtasks(), events


@pytest.mark.parametrize("kind", ["rate_limit", "server", "timeout"])
async def test_retryable_errors_are_retried_then_succeed(kind: str) -> None:
    model, record, _, events = await run([{"error": kind}, {"error": kind}, "finally"])
    assert (record.status, record.result) == (TaskState.COMPLETED, {"value": "finally"})
    errors = [e for e in events if e.type == "error"]
    assert [(e.code, e.retryable, e.attempt) for e in errors] == [(kind, True, 1), (kind, True, 2)]
    assert len(model.requests) == 3


async def test_retries_run_out_into_a_failed_subtask_with_the_providers_message() -> None:
    _, record, subtasks, events = await run([{"error": "server", "message": "upstream 503: overloaded"}] * 3)
    assert record.status is TaskState.FAILED
    assert record.error_message == "upstream 503: overloaded"
    assistant = subtasks[-1]
    assert (assistant.status, assistant.error_message) == (SubtaskState.FAILED, "upstream 503: overloaded")
    assert [e.retryable for e in events if e.type == "error"][:3] == [True, True, False]


async def test_a_fatal_error_is_not_retried() -> None:
    model, record, _, _ = await run([{"error": "fatal", "message": "invalid api key"}, "unused"])
    assert (record.status, record.error_message) == (TaskState.FAILED, "invalid api key")
    assert len(model.requests) == 1


async def test_an_exhausted_script_fails_the_task_with_a_clear_message() -> None:
    _, record, _, _ = await run([])
    assert record.status is TaskState.FAILED
    assert "the scripted model 'scripted' was called by default/a with no reply left for it" in record.error_message


async def test_a_scripted_model_from_yaml() -> None:
    _, record, _, events = await run([{"text": "from yaml", "chunks": ["from ", "yaml"]}], yaml_script=True)
    assert record.result == {"value": "from yaml"}
    assert [e.text for e in events if e.type == "text.delta"] == ["from ", "yaml"]


def test_backoff_grows_exponentially_with_jitter_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=8)
    error = RateLimitError("slow down")
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (9, 8)]:
        delays = [policy.delay(attempt, error) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # jitter spreads over the window
    assert policy.delay(1, RateLimitError("wait", retry_after=30)) == 30


async def test_the_scripted_model_records_requests_and_streams_what_it_is_told() -> None:
    model = ScriptedModel([{"thinking": "hmm", "text": "ab", "chunks": ["a", "b"], "usage": {"input_tokens": 3}}])
    request = ModelRequest(system="s", member="default/x")
    chunks = [c async for c in model.stream(request)]
    assert [c.kind for c in chunks] == ["thinking", "text", "text", "usage"]
    assert model.requests == [request]
    with pytest.raises(ScriptExhausted, match="called by default/x with no reply left"):
        [c async for c in model.stream(request)]


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (42, "script reply 1: expected text or a mapping"),
        ({"txt": "x"}, "unknown key 'txt'"),
        ({"error": "boom"}, "error must be one of"),
        ({"tool_call": {"arguments": {}}}, "a tool call needs a name"),
        ({"member": "a"}, "says nothing"),
    ],
)
def test_bad_script_replies_are_named(reply, message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        ScriptedModel([reply])


@given(st.lists(st.sampled_from(["a", "b", None]), max_size=8), st.lists(st.sampled_from(["a", "b"]), max_size=10))
async def test_member_replies_go_only_to_their_member(owners, callers) -> None:
    """Whatever the order of calls, each member gets its own replies (and shared ones) in script order."""
    replies = [{"text": str(i), **({"member": o} if o else {})} for i, o in enumerate(owners)]
    model = ScriptedModel(replies)
    got: dict[str, list[int]] = {"a": [], "b": []}
    for caller in callers:
        try:
            chunks = [c async for c in model.stream(ModelRequest(member=f"default/{caller}"))]
        except ScriptExhausted:
            assert all(o not in (None, caller) for i, o in enumerate(owners) if i not in model._used)
            continue
        got[caller].append(int(chunks[0].text))
    for caller, indexes in got.items():
        assert indexes == sorted(indexes)
        assert all(owners[i] in (None, caller) for i in indexes)
