//! A fake LLM provider on loopback (OpenAI and Anthropic shapes, streaming, failures),
//! standing in for what we do not own. The model name picks the behaviour:
//! `*-500` always fails, `*-flaky` fails once then answers, `*-429` is rate limited,
//! `*-slow` does not answer within a test's time (60 s), `*-wait` answers after 300 ms,
//! `*-401` refuses the key (echoing it, as a careless provider might); anything else
//! answers `echo: <last prompt>`. Streams pause after their first event: 400 ms, or, after
//! `hold_next_stream`, until the test calls `release`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

pub const OPENAI_KEY: &str = "sk-upstream-secret-openai";
pub const ANTHROPIC_KEY: &str = "sk-ant-upstream-secret";

#[derive(Default)]
struct Seen {
    calls: HashMap<String, usize>,
    bodies: Vec<Value>,
    gate: Arc<Gate>,
}

/// Holds one stream after its first event until the test opens it.
#[derive(Default)]
struct Gate {
    armed: std::sync::atomic::AtomicBool,
    open: tokio::sync::Notify,
}

pub struct Mock {
    pub url: String,
    seen: Arc<Mutex<Seen>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Mock {
    pub fn start() -> Mock {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let state = seen.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = Router::new()
                    .route("/v1/chat/completions", post(openai))
                    .route("/v1/messages", post(anthropic))
                    .route("/v1/models", get(models))
                    .with_state(state);
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr: SocketAddr = addr_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Mock {
            url: format!("http://{addr}"),
            seen,
            _stop: stop_tx,
        }
    }

    /// Environment that points the gateway at this mock.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("OPENAI_BASE_URL".into(), format!("{}/v1", self.url)),
            ("OPENAI_API_KEY".into(), OPENAI_KEY.into()),
            ("ANTHROPIC_BASE_URL".into(), self.url.clone()),
            ("ANTHROPIC_API_KEY".into(), ANTHROPIC_KEY.into()),
        ]
    }

    pub fn calls(&self, model: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .calls
            .get(model)
            .copied()
            .unwrap_or(0)
    }

    /// The next stream stops after its first event until `release`.
    pub fn hold_next_stream(&self) {
        let gate = self.seen.lock().unwrap().gate.clone();
        gate.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Lets the held stream go on (or the next one, if none is waiting yet).
    pub fn release(&self) {
        self.seen.lock().unwrap().gate.open.notify_one();
    }

    pub fn last_body(&self) -> Value {
        self.seen
            .lock()
            .unwrap()
            .bodies
            .last()
            .cloned()
            .unwrap_or(Value::Null)
    }
}

type Shared = Arc<Mutex<Seen>>;

fn last_prompt(body: &Value) -> String {
    let content = &body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or_default()["content"];
    match content {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Counts the call and decides the failure, if any.
async fn misbehave(seen: &Shared, body: &Value, key_ok: bool, anthropic: bool) -> Option<Response> {
    let model = body["model"].as_str().unwrap_or("").to_string();
    let n = {
        let mut s = seen.lock().unwrap();
        s.bodies.push(body.clone());
        let n = s.calls.entry(model.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let err = |status: StatusCode, msg: &str| {
        let body = if anthropic {
            json!({"type": "error", "error": {"type": if status == 429 { "rate_limit_error" } else { "api_error" }, "message": msg}})
        } else {
            json!({"error": {"message": msg, "type": "server_error", "param": null, "code": null}})
        };
        let mut r = (status, axum::Json(body)).into_response();
        if status == 429 {
            r.headers_mut().insert("retry-after", "0".parse().unwrap());
        }
        Some(r)
    };
    if !key_ok {
        return err(StatusCode::UNAUTHORIZED, "wrong provider key");
    }
    if model.ends_with("-500") {
        return err(StatusCode::INTERNAL_SERVER_ERROR, "mock provider exploded");
    }
    if model.ends_with("-flaky") && n == 1 {
        return err(
            StatusCode::SERVICE_UNAVAILABLE,
            "mock provider briefly down",
        );
    }
    if model.ends_with("-429") {
        return err(StatusCode::TOO_MANY_REQUESTS, "mock provider rate limit");
    }
    if model.ends_with("-401") {
        let key = if anthropic { ANTHROPIC_KEY } else { OPENAI_KEY };
        return err(
            StatusCode::UNAUTHORIZED,
            &format!("Incorrect API key provided: {key}"),
        );
    }
    if model.ends_with("-slow") {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    if model.ends_with("-wait") {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    None
}

fn sse(seen: &Shared, events: Vec<String>, pause_after_first: Duration) -> Response {
    let gate = seen.lock().unwrap().gate.clone();
    let held = gate
        .armed
        .swap(false, std::sync::atomic::Ordering::SeqCst)
        .then_some(gate);
    let stream = futures_util::stream::unfold((events, 0usize), move |(events, i)| {
        let held = held.clone();
        async move {
            if i >= events.len() {
                return None;
            }
            if i == 1 {
                match held {
                    Some(gate) => gate.open.notified().await,
                    None => tokio::time::sleep(pause_after_first).await,
                }
            }
            Some((
                Ok::<_, Infallible>(Bytes::from(events[i].clone())),
                (events, i + 1),
            ))
        }
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    r
}

async fn openai(State(seen): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    let key_ok = headers
        .get("authorization")
        .is_some_and(|v| v == &format!("Bearer {OPENAI_KEY}")[..]);
    if let Some(r) = misbehave(&seen, &body, key_ok, false).await {
        return r;
    }
    let text = format!("echo: {}", last_prompt(&body));
    let model = body["model"].clone();
    let usage = json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15});
    if body["stream"] == true {
        let chunk = |delta: Value, finish: Value| {
            format!(
                "data: {}\n\n",
                json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            )
        };
        let words: Vec<String> = text.split(' ').map(|w| format!("{w} ")).collect();
        let mut events = vec![chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )];
        events.extend(
            words
                .iter()
                .map(|w| chunk(json!({"content": w}), Value::Null)),
        );
        events.push(chunk(json!({}), json!("stop")));
        if body["stream_options"]["include_usage"] == true {
            events.push(format!(
                "data: {}\n\n",
                json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [], "usage": usage})
            ));
        }
        events.push("data: [DONE]\n\n".into());
        return sse(&seen, events, Duration::from_millis(400));
    }
    axum::Json(json!({
        "id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": usage,
    }))
    .into_response()
}

async fn anthropic(State(seen): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    let key_ok = headers.get("x-api-key").is_some_and(|v| v == ANTHROPIC_KEY)
        && headers.get("anthropic-version").is_some();
    if let Some(r) = misbehave(&seen, &body, key_ok, true).await {
        return r;
    }
    let text = format!("echo: {}", last_prompt(&body));
    let model = body["model"].clone();
    if body["stream"] == true {
        let ev = |name: &str, v: Value| format!("event: {name}\ndata: {v}\n\n");
        let mut events = vec![
            ev(
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_mock", "type": "message", "role": "assistant",
                "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 12, "output_tokens": 1}}}),
            ),
            ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            ev("ping", json!({"type": "ping"})),
        ];
        for w in text.split(' ') {
            events.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": format!("{w} ")}})));
        }
        events.push(ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ));
        events.push(ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 7}})));
        events.push(ev("message_stop", json!({"type": "message_stop"})));
        return sse(&seen, events, Duration::from_millis(400));
    }
    axum::Json(json!({
        "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": 7},
    }))
    .into_response()
}

/// Both SDKs' model lists; OpenAI's base URL ends in /v1, Anthropic's does not, so both
/// arrive here.
async fn models(headers: HeaderMap) -> Response {
    if headers.contains_key("anthropic-version") {
        axum::Json(
            json!({"data": [{"type": "model", "id": "claude-mock", "display_name": "Claude Mock",
            "created_at": "2025-01-01T00:00:00Z"}], "has_more": false}),
        )
        .into_response()
    } else {
        axum::Json(json!({"object": "list", "data": [{"id": "gpt-mock", "object": "model", "created": 1, "owned_by": "mock"}]}))
            .into_response()
    }
}
