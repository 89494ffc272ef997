"""The official openai and anthropic SDKs against the gateway (which fronts a mock provider).

Run by tests/it/ai_sdk.rs with GS_BASE (gateway URL) and GS_KEY (gateway key). The
gateway allows 5 calls per user per minute; each check uses its own user.
"""

import os

import anthropic
import openai

BASE = os.environ["GS_BASE"]
KEY = os.environ["GS_KEY"]


def user(name):
    return {"x-growth-user-id": name}


def ask(prompt):
    return [{"role": "user", "content": prompt}]


oa = openai.OpenAI(base_url=BASE + "/v1", api_key=KEY, max_retries=0)

# Plain call, then the same call again: a cache hit with the same answer.
raw = oa.chat.completions.with_raw_response.create(model="gpt-mock", messages=ask("py plain"), extra_headers=user("p1"))
assert raw.headers["x-growth-cache"] == "MISS", raw.headers
first = raw.parse()
assert first.choices[0].message.content == "echo: py plain", first
assert first.usage.total_tokens == 15, first.usage
raw = oa.chat.completions.with_raw_response.create(model="gpt-mock", messages=ask("py plain"), extra_headers=user("p2"))
assert raw.headers["x-growth-cache"] == "HIT", raw.headers
assert raw.parse().choices[0].message.content == "echo: py plain"

# Streaming: chunks as the SDK parses them; then the cached stream with usage on request.
stream = oa.chat.completions.create(model="gpt-mock", messages=ask("py stream"), stream=True, extra_headers=user("p3"))
chunks = list(stream)
assert len(chunks) > 3, chunks
assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: py stream "
raw = oa.chat.completions.with_raw_response.create(
    model="gpt-mock", messages=ask("py stream"), stream=True, stream_options={"include_usage": True}, extra_headers=user("p4")
)
assert raw.headers["x-growth-cache"] == "HIT", raw.headers
chunks = list(raw.parse())
assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 15, chunks[-1]
again = oa.chat.completions.create(model="gpt-mock", messages=ask("py stream"), extra_headers=user("p5"))
assert again.choices[0].message.content == "echo: py stream ", again

list(oa.models.list())

# Errors surface as the SDK's own exceptions.
try:
    oa.chat.completions.create(model="gpt-500", messages=ask("x"), extra_headers=user("p6"))
    raise AssertionError("expected InternalServerError")
except openai.InternalServerError as e:
    assert "mock provider exploded" in str(e), e
try:
    openai.OpenAI(base_url=BASE + "/v1", api_key="not-the-key", max_retries=0).chat.completions.create(
        model="gpt-mock", messages=ask("x")
    )
    raise AssertionError("expected AuthenticationError")
except openai.AuthenticationError:
    pass

# The sixth call of one user in a minute: RateLimitError with Retry-After.
limited = None
for i in range(6):
    try:
        oa.chat.completions.create(model="gpt-mock", messages=ask("limit"), extra_headers=user("busy"))
    except openai.RateLimitError as e:
        limited = (i, e)
        break
assert limited is not None and limited[0] == 5, limited
assert int(limited[1].response.headers["retry-after"]) >= 1

an = anthropic.Anthropic(base_url=BASE, api_key=KEY, max_retries=0)
msg = an.messages.create(model="claude-mock", max_tokens=50, messages=ask("py anthropic"), metadata={"user_id": "a1"})
assert msg.content[0].text == "echo: py anthropic", msg
assert msg.usage.output_tokens == 7
raw = an.messages.with_raw_response.create(model="claude-mock", max_tokens=50, messages=ask("py anthropic"), metadata={"user_id": "a2"})
assert raw.headers["x-growth-cache"] == "HIT", raw.headers
with an.messages.stream(model="claude-mock", max_tokens=50, messages=ask("py anthropic stream"), metadata={"user_id": "a3"}) as s:
    text = "".join(s.text_stream)
    final = s.get_final_message()
assert text == "echo: py anthropic stream ", text
assert final.usage.output_tokens == 7, final.usage
with an.messages.stream(model="claude-mock", max_tokens=50, messages=ask("py anthropic stream"), metadata={"user_id": "a4"}) as s:
    assert "".join(s.text_stream) == "echo: py anthropic stream ", "replayed from the cache"

limited = None
for i in range(6):
    try:
        an.messages.create(model="claude-mock", max_tokens=5, messages=ask("limit"), metadata={"user_id": "busy-a"})
    except anthropic.RateLimitError as e:
        limited = (i, e)
        break
assert limited is not None and limited[0] == 5, limited

print("SDK checks passed")
