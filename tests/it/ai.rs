//! The AI gateway over HTTP: the real binary in front of a mock provider on loopback.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::ai_mock::Mock;
use crate::helpers::{client, Response, Server};

const KEY: &str = "test-gateway-key-0123456789";

fn gateway(mock: Option<&Mock>, extra: &[(&str, &str)]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(String, String)> = mock.map(Mock::env).unwrap_or_default();
    env.push(("GROWTH_GATEWAY_KEYS".into(), KEY.into()));
    env.push(("GROWTH_AI_FIRST_BYTE_TIMEOUT".into(), "1000".into()));
    env.push(("GROWTH_AI_MAX_RETRIES".into(), "1".into()));
    for (k, v) in extra {
        env.push((k.to_string(), v.to_string()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = Server::start_in(dir.path(), &[], &env);
    (s, dir)
}

fn chat(s: &Server, body: &Value, headers: &[(&str, &str)]) -> Response {
    let mut r = client()
        .post(format!("{}/v1/chat/completions", s.url))
        .bearer_auth(KEY)
        .json(body);
    for (k, v) in headers {
        r = r.header(k, v);
    }
    r.send().unwrap()
}

fn messages(s: &Server, body: &Value) -> Response {
    client()
        .post(format!("{}/v1/messages", s.url))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .unwrap()
}

fn cache_of(r: &Response) -> String {
    r.headers()["x-growth-cache"].to_str().unwrap().to_string()
}

fn ask(model: &str, prompt: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": prompt}]})
}

/// `data:` payloads of an SSE body.
fn data_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

fn streamed_text(text: &str) -> String {
    data_lines(text)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

/// Calls recorded in the metrics table, waiting for the background writer.
fn wait_for_calls(s: &Server, want: u64) -> Value {
    let start = Instant::now();
    loop {
        let v = s.get_json("/api/analytics/ai-performance?range=1h&limit=200");
        if v["totals"]["calls"].as_u64() == Some(want) || start.elapsed() > Duration::from_secs(10)
        {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn demo_provider_answers_without_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[], &[]);
    let out = s.stdout_once("demo provider answers");
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("AI gateway key (shown once; also saved in "))
        .and_then(|l| l.split("): ").nth(1))
        .unwrap_or_else(|| panic!("generated key printed: {out}"))
        .to_string();
    assert!(out.contains("demo provider answers"), "{out}");

    let no_key = client()
        .post(format!("{}/v1/chat/completions", s.url))
        .json(&ask("gpt-4o-mini", "hi"))
        .send()
        .unwrap();
    assert_eq!(no_key.status(), 401);
    assert_eq!(cache_of(&no_key), "BYPASS");
    let e: Value = no_key.json().unwrap();
    assert_eq!(e["error"]["code"], "invalid_api_key", "{e}");

    let call = || {
        client()
            .post(format!("{}/v1/chat/completions", s.url))
            .header("x-api-key", &key)
            .json(&ask("gpt-4o-mini", "plan my week"))
            .send()
            .unwrap()
    };
    let first = call();
    assert_eq!(first.status(), 200);
    assert_eq!(cache_of(&first), "MISS");
    assert_eq!(first.headers()["x-growth-demo"], "true");
    let v: Value = first.json().unwrap();
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.contains("demo provider"), "{v}");
    let again = call();
    assert_eq!(cache_of(&again), "HIT");
    let v2: Value = again.json().unwrap();
    assert_eq!(
        v2["choices"][0]["message"]["content"], text,
        "deterministic"
    );

    let m = client()
        .post(format!("{}/v1/messages", s.url))
        .header("x-api-key", &key)
        .json(&json!({"model": "claude-3-5-haiku", "max_tokens": 50, "messages": [{"role": "user", "content": "hello"}]}))
        .send()
        .unwrap();
    assert_eq!(m.status(), 200);
    let mv: Value = m.json().unwrap();
    assert_eq!(mv["type"], "message");
    assert!(mv["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("demo provider"));

    let generate = |cached: bool| {
        client()
            .post(format!("{}/api/ai/generate", s.url))
            .bearer_auth(&key)
            .json(
                &json!({"model": "claude-3-sonnet-20241022", "prompt": "Suggest a recipe",
                "parameters": {"max_tokens": 2000}, "userId": "user-42", "cached": cached}),
            )
            .send()
            .unwrap()
    };
    let g1 = generate(true);
    assert_eq!(cache_of(&g1), "MISS");
    let g1: Value = g1.json().unwrap();
    assert_eq!(g1["cached"], false, "{g1}");
    assert_eq!(g1["demo"], true);
    assert!(g1["content"].as_str().unwrap().contains("demo provider"));
    let g2: Value = generate(true).json().unwrap();
    assert_eq!(g2["cached"], true);
    let g3: Value = generate(false).json().unwrap();
    assert_eq!(g3["cached"], false, "cached: false skips the cache");
    let bad = client()
        .post(format!("{}/api/ai/generate", s.url))
        .bearer_auth(&key)
        .json(&json!({"prompt": "no model"}))
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);

    let models: Value = client()
        .get(format!("{}/v1/models", s.url))
        .bearer_auth(&key)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(models["data"][0]["id"], "demo");

    // 2 chat + 1 messages + 3 generate + 1 bad generate (the call without a key is no row).
    let report = wait_for_calls(&s, 7);
    assert_eq!(report["totals"]["calls"], 7, "{report}");
    let rows = report["rows"].as_array().unwrap();
    assert!(rows
        .iter()
        .any(|r| r["demo"] == true && r["provider"] == "demo"));
    assert!(
        rows.iter().any(|r| r["user_id"] == "user-42"),
        "user ids are plain strings"
    );
    assert!(rows.iter().any(|r| r["endpoint"] == "/api/ai/generate"));
    assert!(rows
        .iter()
        .any(|r| r["success"] == false && r["error"].as_str().unwrap().contains("model")));
}

/// A streaming request over a raw socket while the mock holds its stream after the first
/// event: returns what arrived before the test let the mock go on, and everything.
/// A gateway that buffered the stream would send nothing until the mock finished, which it
/// cannot do before `release`: the read times out and the test fails.
fn held_stream(url: &str, body: &Value, mock: &Mock) -> (String, String) {
    let addr = url.trim_start_matches("http://");
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let payload = body.to_string();
    mock.hold_next_stream();
    write!(
        sock,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    )
    .unwrap();
    let mut before = None;
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.read(&mut buf).unwrap_or_else(|e| {
            panic!(
                "stream stalled ({e}); so far: {}",
                String::from_utf8_lossy(&all)
            )
        });
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&all);
        let first_event = text
            .find("data: ")
            .is_some_and(|i| text[i..].contains("\n\n"));
        if before.is_none() && first_event {
            before = Some(text.into_owned());
            mock.release();
        }
    }
    (
        before.expect("no event arrived"),
        String::from_utf8_lossy(&all).into_owned(),
    )
}

#[test]
fn openai_calls_are_proxied_cached_and_streamed() {
    let mock = Mock::start();
    let (s, _dir) = gateway(Some(&mock), &[]);

    let first = chat(
        &s,
        &json!({"model": "gpt-mock", "temperature": 0.5, "user": "alice",
        "messages": [{"role": "user", "content": "soup ideas"}]}),
        &[],
    );
    assert_eq!(first.status(), 200);
    assert_eq!(cache_of(&first), "MISS");
    assert_eq!(first.headers()["x-growth-provider"], "openai");
    let v: Value = first.json().unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "echo: soup ideas");
    assert!(!first.text().unwrap().contains(crate::ai_mock::OPENAI_KEY));

    // Same request, keys reordered, other whitespace, another user: one cache entry.
    let raw = "{ \"messages\" : [ {\"content\":\"soup ideas\",\"role\":\"user\"} ],\n \"temperature\":0.5, \"user\":\"bob\", \"model\":\"gpt-mock\" }";
    let hit = client()
        .post(format!("{}/v1/chat/completions", s.url))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .unwrap();
    assert_eq!(cache_of(&hit), "HIT");
    assert_eq!(mock.calls("gpt-mock"), 1);

    // The JSON answer replays as a stream, in several chunks, without the usage chunk.
    let replay = chat(
        &s,
        &json!({"model": "gpt-mock", "temperature": 0.5, "stream": true,
        "messages": [{"role": "user", "content": "soup ideas"}]}),
        &[],
    );
    assert_eq!(cache_of(&replay), "HIT");
    assert!(replay.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = replay.text().unwrap();
    assert_eq!(streamed_text(&text), "echo: soup ideas");
    let lines = data_lines(&text);
    assert!(lines.len() >= 4, "{text}");
    assert_eq!(lines.last().unwrap(), "[DONE]");
    assert!(
        !text.contains("\"usage\""),
        "client did not ask for usage: {text}"
    );

    // A streamed miss is forwarded as it arrives: the mock holds its stream after the
    // first event, and that event must reach the client before the test lets it go on.
    let body = json!({"model": "gpt-mock", "stream": true, "messages": [{"role": "user", "content": "stream me a plan"}]});
    let (before, raw) = held_stream(&s.url, &body, &mock);
    assert!(
        before.contains("\"role\":\"assistant\"") && !before.contains("[DONE]"),
        "only the first event before the release: {before}"
    );
    assert!(raw.contains("x-growth-cache: MISS"), "{raw}");
    assert!(
        !raw.contains("\"usage\""),
        "usage added upstream is stripped: {raw}"
    );
    assert_eq!(
        mock.last_body()["stream_options"]["include_usage"],
        true,
        "asked upstream"
    );
    // The cached stream answers a JSON call, with the usage the stream reported.
    let from_stream = chat(&s, &ask("gpt-mock", "stream me a plan"), &[]);
    assert_eq!(cache_of(&from_stream), "HIT");
    let v: Value = from_stream.json().unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "echo: stream me a plan "
    );
    assert_eq!(v["usage"]["total_tokens"], 15);
    // A client asking for usage gets the usage chunk on replay.
    let with_usage = chat(
        &s,
        &json!({"model": "gpt-mock", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "stream me a plan"}]}),
        &[],
    );
    assert!(with_usage
        .text()
        .unwrap()
        .contains("\"completion_tokens\":5"));

    // Cache-Control and the Cloudflare headers.
    let q = ask("gpt-mock", "fresh please");
    assert_eq!(
        cache_of(&chat(&s, &q, &[("cache-control", "no-store")])),
        "MISS"
    );
    assert_eq!(cache_of(&chat(&s, &q, &[])), "MISS", "no-store kept it out");
    assert_eq!(cache_of(&chat(&s, &q, &[])), "HIT");
    assert_eq!(
        cache_of(&chat(&s, &q, &[("cache-control", "no-cache")])),
        "BYPASS"
    );
    assert_eq!(
        cache_of(&chat(&s, &q, &[("cf-aig-skip-cache", "true")])),
        "BYPASS"
    );
    assert_eq!(mock.calls("gpt-mock"), 6);

    // Concurrent identical misses: one upstream call.
    let url = s.url.clone();
    let threads: Vec<_> = (0..5)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let r = client()
                    .post(format!("{url}/v1/chat/completions"))
                    .bearer_auth(KEY)
                    .json(&ask("gpt-wait", "same question"))
                    .send()
                    .unwrap();
                assert_eq!(r.status(), 200);
                cache_of(&r)
            })
        })
        .collect();
    let mut statuses: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    statuses.sort();
    assert_eq!(mock.calls("gpt-wait"), 1, "single flight");
    assert_eq!(statuses, ["HIT", "HIT", "HIT", "HIT", "MISS"]);

    // Failures: retried, then answered in OpenAI's shape.
    let flaky = chat(&s, &ask("gpt-flaky", "x"), &[]);
    assert_eq!(flaky.status(), 200, "one retry recovers");
    assert_eq!(mock.calls("gpt-flaky"), 2);
    let broken = chat(&s, &ask("gpt-500", "x"), &[]);
    assert_eq!(broken.status(), 500);
    let e: Value = broken.json().unwrap();
    assert_eq!(e["error"]["message"], "mock provider exploded", "{e}");
    assert_eq!(mock.calls("gpt-500"), 2, "retried once");
    // The mock never answers `gpt-slow` within the test: only the first-byte timeout can
    // end the call, after one retry, with a 504.
    let slow = chat(&s, &ask("gpt-slow", "x"), &[]);
    assert_eq!(slow.status(), 504);
    let e: Value = slow.json().unwrap();
    assert_eq!(e["error"]["code"], "timeout", "{e}");
    assert_eq!(
        mock.calls("gpt-slow"),
        2,
        "timed out, retried once, timed out"
    );
    let refused = chat(&s, &ask("gpt-401", "x"), &[]);
    assert_eq!(
        refused.status(),
        502,
        "the provider refusing our key is not the caller's 401"
    );
    assert!(
        !refused.text().unwrap().contains(crate::ai_mock::OPENAI_KEY),
        "provider key scrubbed"
    );
    let models: Value = client()
        .get(format!("{}/v1/models", s.url))
        .bearer_auth(KEY)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gpt-mock", "claude-mock"], "each provider's own list");
    let bad = chat(&s, &json!({"messages": []}), &[]);
    assert_eq!(bad.status(), 400);
    let e: Value = bad.json().unwrap();
    assert_eq!(e["error"]["type"], "invalid_request_error");
    let wrong_api = chat(&s, &ask("claude-3-5-haiku", "x"), &[]);
    assert_eq!(wrong_api.status(), 400);

    // Every call is a row: 18 above (the 5 concurrent ones included).
    let report = wait_for_calls(&s, 22);
    assert_eq!(report["totals"]["calls"], 22, "{}", report["totals"]);
    let rows = report["rows"].as_array().unwrap();
    let miss = rows
        .iter()
        .find(|r| r["model"] == "gpt-mock" && r["cache_hit"] == false && r["user_id"] == "alice")
        .unwrap();
    assert_eq!(miss["provider"], "openai");
    assert_eq!(miss["prompt_tokens"], 10);
    assert_eq!(miss["completion_tokens"], 5);
    assert_eq!(miss["tokens"], 15);
    let streamed = rows
        .iter()
        .find(|r| r["stream"] == true && r["cache_hit"] == false)
        .unwrap();
    assert_eq!(streamed["tokens"], 15, "stream usage recorded, not 0");
    assert!(streamed["ttft"].as_f64().unwrap() < streamed["duration"].as_f64().unwrap());
    assert!(rows
        .iter()
        .any(|r| r["model"] == "gpt-500" && r["success"] == false));
}

#[test]
fn anthropic_calls_stream_and_cache() {
    let mock = Mock::start();
    let (s, _dir) = gateway(Some(&mock), &[]);
    let body = json!({"model": "claude-mock", "max_tokens": 100, "system": "be brief",
        "metadata": {"user_id": "carol"}, "messages": [{"role": "user", "content": "hello there"}]});
    let mut streaming = body.clone();
    streaming["stream"] = json!(true);
    let r = messages(&s, &streaming);
    assert_eq!(r.status(), 200);
    assert_eq!(cache_of(&r), "MISS");
    let text = r.text().unwrap();
    for event in [
        "message_start",
        "content_block_delta",
        "message_delta",
        "message_stop",
    ] {
        assert!(text.contains(&format!("event: {event}")), "{text}");
    }
    let hit = messages(&s, &body);
    assert_eq!(
        cache_of(&hit),
        "HIT",
        "a JSON call served from the cached stream"
    );
    let v: Value = hit.json().unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "echo: hello there ");
    assert_eq!(v["usage"]["output_tokens"], 7);
    assert_eq!(mock.calls("claude-mock"), 1);

    let missing = messages(&s, &json!({"model": "claude-mock", "messages": []}));
    assert_eq!(missing.status(), 400);
    let e: Value = missing.json().unwrap();
    assert_eq!(e["type"], "error");
    assert_eq!(e["error"]["type"], "invalid_request_error");
    let down = messages(
        &s,
        &json!({"model": "claude-500", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(down.status(), 500);
    let e: Value = down.json().unwrap();
    assert_eq!(e["error"]["type"], "api_error");
    let unauth = client()
        .post(format!("{}/v1/messages", s.url))
        .header("x-api-key", "wrong-key")
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(unauth.status(), 401);
    let e: Value = unauth.json().unwrap();
    assert_eq!(e["error"]["type"], "authentication_error");

    // A client that hangs up while the provider thinks is still a row.
    let addr = s.url.trim_start_matches("http://").to_string();
    let payload = json!({"model": "claude-wait", "max_tokens": 5, "messages": [{"role": "user", "content": "bye"}]}).to_string();
    let mut sock = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        sock,
        "POST /v1/messages HTTP/1.1\r\nHost: {addr}\r\nx-api-key: {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(sock);

    let report = wait_for_calls(&s, 6);
    let rows = report["rows"].as_array().unwrap();
    let gone = rows.iter().find(|r| r["model"] == "claude-wait").unwrap();
    assert_eq!(gone["success"], false, "{gone}");
    assert!(
        gone["error"].as_str().unwrap().contains("client closed"),
        "{gone}"
    );
    let streamed = rows.iter().find(|r| r["stream"] == true).unwrap();
    assert_eq!(streamed["prompt_tokens"], 12);
    assert_eq!(streamed["completion_tokens"], 7);
    assert_eq!(streamed["user_id"], "carol");
    assert_eq!(streamed["provider"], "anthropic");
}

#[test]
fn rate_limits_and_fallbacks() {
    let mock = Mock::start();
    let (s, _dir) = gateway(
        Some(&mock),
        &[
            ("GROWTH_AI_RATE_LIMIT_PER_MINUTE", "2"),
            ("GROWTH_AI_FALLBACK_MODELS", "gpt-backup"),
            ("GROWTH_AI_TOKENS_PER_MINUTE", "1000"),
            ("GROWTH_AI_NORMALIZE_WHITESPACE", "true"),
        ],
    );
    let q = ask("gpt-mock", "limited");
    let as_user = |u: &str| {
        client()
            .post(format!("{}/v1/chat/completions", s.url))
            .bearer_auth(KEY)
            .header("x-growth-user-id", u)
            .json(&q)
            .send()
            .unwrap()
    };
    assert_eq!(as_user("dave").status(), 200);
    let hit = as_user("dave");
    assert_eq!(cache_of(&hit), "HIT");
    assert_eq!(hit.headers()["x-ratelimit-remaining-requests"], "0");
    let limited = as_user("dave");
    assert_eq!(
        limited.status(),
        429,
        "cache hits count against request limits"
    );
    assert!(
        limited.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(limited.headers()["x-ratelimit-limit-requests"], "2");
    assert_eq!(limited.headers()["x-ratelimit-remaining"], "0");
    let e: Value = limited.json().unwrap();
    assert_eq!(e["error"]["code"], "rate_limit_exceeded");
    assert_eq!(
        as_user("erin").status(),
        200,
        "other users keep their budget"
    );

    let anthropic_limited = || {
        messages(
            &s,
            &json!({"model": "claude-mock", "max_tokens": 5, "metadata": {"user_id": "frank"},
            "messages": [{"role": "user", "content": "x"}]}),
        )
    };
    anthropic_limited();
    anthropic_limited();
    let r = anthropic_limited();
    assert_eq!(r.status(), 429);
    let e: Value = r.json().unwrap();
    assert_eq!(e["error"]["type"], "rate_limit_error");

    // gpt-429 keeps failing: after its retry the fallback model answers.
    let fb = client()
        .post(format!("{}/v1/chat/completions", s.url))
        .bearer_auth(KEY)
        .header("x-growth-user-id", "gina")
        .json(&ask("gpt-429", "fall back"))
        .send()
        .unwrap();
    assert_eq!(fb.status(), 200);
    let v: Value = fb.json().unwrap();
    assert_eq!(v["model"], "gpt-backup");
    assert_eq!(mock.calls("gpt-429"), 2);
    assert_eq!(mock.calls("gpt-backup"), 1);

    // Tokens per minute: a call that may use 2000 tokens empties the minute's budget.
    let big = |prompt: &str| {
        client()
            .post(format!("{}/v1/chat/completions", s.url))
            .bearer_auth(KEY)
            .header("x-growth-user-id", "hank")
            .json(&json!({"model": "gpt-mock", "max_tokens": 2000,
                "messages": [{"role": "user", "content": prompt}]}))
            .send()
            .unwrap()
    };
    assert_eq!(big("one   big\n\n  question ").status(), 200);
    assert_eq!(
        mock.last_body()["messages"][0]["content"],
        "one big question",
        "whitespace normalised before sending"
    );
    let r = big("another");
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("x-ratelimit-limit-tokens"));
    let e: Value = r.json().unwrap();
    assert_eq!(e["error"]["type"], "tokens", "{e}");

    let report = wait_for_calls(&s, 11);
    let rows = report["rows"].as_array().unwrap();
    let saved = rows
        .iter()
        .find(|r| r["user_id"] == "hank" && r["success"] == true)
        .unwrap();
    assert!(saved["tokens_saved"].as_i64().unwrap() >= 1, "{saved}");
    assert!(report["totals"]["tokens_saved"].as_u64().unwrap() >= 1);
}
