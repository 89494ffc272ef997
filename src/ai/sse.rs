//! Server-sent events: splitting an upstream byte stream into events, and turning a
//! completed answer into a stream (or a stream back into one JSON answer) in either API.

use bytes::{Bytes, BytesMut};
use serde_json::{json, Map, Value};

use super::wire::{Api, Usage};

/// Cuts a byte stream into whole SSE events (each ends with a blank line).
#[derive(Default)]
pub struct Splitter {
    buf: BytesMut,
}

impl Splitter {
    /// Adds bytes and returns the events they completed, each with its blank line.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Bytes> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = event_end(&self.buf) {
            out.push(self.buf.split_to(end).freeze());
        }
        out
    }

    /// Whatever is left when the stream ends (an event without its blank line).
    pub fn rest(&mut self) -> Option<Bytes> {
        let rest = self.buf.split().freeze();
        (!rest.iter().all(u8::is_ascii_whitespace)).then_some(rest)
    }
}

fn event_end(buf: &[u8]) -> Option<usize> {
    let lf = find(buf, b"\n\n").map(|i| i + 2);
    let crlf = find(buf, b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The `event:` name and the joined `data:` lines of one event.
pub fn parse_event(ev: &[u8]) -> (Option<&str>, String) {
    let text = std::str::from_utf8(ev).unwrap_or("");
    let mut name = None;
    let mut data = String::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            name = Some(v.trim());
        } else if let Some(v) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    (name, data)
}

/// What the gateway learns from one event of a stream.
#[derive(Debug, Default, PartialEq)]
pub struct Seen {
    /// The stream's normal end (`[DONE]` or `message_stop`).
    pub done: bool,
    /// OpenAI's usage-only chunk (`choices: []`), which only include_usage asks for.
    pub usage_only: bool,
    pub usage: Option<Usage>,
    /// An `error` event: the provider failed mid-stream.
    pub error: Option<String>,
}

/// Reads one event cheaply: only events that can carry usage or an end are parsed.
pub fn inspect(api: Api, ev: &[u8]) -> Seen {
    let mut seen = Seen::default();
    match api {
        Api::OpenAi => {
            let (_, data) = parse_event(ev);
            if data.trim() == "[DONE]" {
                seen.done = true;
            } else if find(ev, b"\"usage\"").is_some() || find(ev, b"\"error\"").is_some() {
                if let Ok(v) = serde_json::from_str::<Value>(&data) {
                    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                        seen.usage = Usage::from_json(api, u);
                        seen.usage_only = v
                            .get("choices")
                            .and_then(Value::as_array)
                            .is_some_and(Vec::is_empty);
                    }
                    if let Some(e) = v.get("error") {
                        seen.error = Some(error_text(e));
                    }
                }
            }
        }
        Api::Anthropic => {
            let (name, data) = parse_event(ev);
            match name {
                Some("message_stop") => seen.done = true,
                Some("message_start") | Some("message_delta") => {
                    if let Ok(v) = serde_json::from_str::<Value>(&data) {
                        let usage = v
                            .get("usage")
                            .or_else(|| v.get("message").and_then(|m| m.get("usage")));
                        if let Some(u) = usage {
                            let n = |k: &str| u.get(k).and_then(Value::as_u64).map(|x| x as u32);
                            seen.usage = Some(Usage {
                                prompt: n("input_tokens").unwrap_or(0)
                                    + n("cache_creation_input_tokens").unwrap_or(0)
                                    + n("cache_read_input_tokens").unwrap_or(0),
                                completion: n("output_tokens").unwrap_or(0),
                            });
                        }
                    }
                }
                Some("error") => {
                    let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                    seen.error = Some(error_text(v.get("error").unwrap_or(&v)));
                }
                _ => {}
            }
        }
    }
    seen
}

fn error_text(e: &Value) -> String {
    e.get("message")
        .and_then(Value::as_str)
        .map_or_else(|| e.to_string(), str::to_string)
}

/// Merges what a stream reported: Anthropic gives input tokens at the start and the
/// cumulative output at the end.
pub fn merge_usage(api: Api, acc: Option<Usage>, new: Usage) -> Usage {
    match (api, acc) {
        (Api::Anthropic, Some(old)) => Usage {
            prompt: if new.prompt > 0 {
                new.prompt
            } else {
                old.prompt
            },
            completion: new.completion.max(old.completion),
        },
        _ => new,
    }
}

/// Removes `"usage":null` from an OpenAI chunk, for clients that did not ask for usage.
pub fn strip_null_usage(ev: &Bytes) -> Bytes {
    for pat in [
        &b",\"usage\":null"[..],
        b"\"usage\":null,",
        b", \"usage\": null",
    ] {
        if let Some(i) = find(ev, pat) {
            let mut out = BytesMut::with_capacity(ev.len());
            out.extend_from_slice(&ev[..i]);
            out.extend_from_slice(&ev[i + pat.len()..]);
            return out.freeze();
        }
    }
    ev.clone()
}

fn data_event(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

fn named_event(name: &str, v: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {v}\n\n"))
}

/// Splits text into pieces of about `n` characters at word ends, so a replay streams
/// like the original rather than arriving as one chunk.
fn pieces(text: &str, n: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut count = 0;
    for (i, c) in text.char_indices() {
        count += 1;
        if count >= n && c.is_whitespace() {
            out.push(&text[start..i + c.len_utf8()]);
            start = i + c.len_utf8();
            count = 0;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

const PIECE_CHARS: usize = 24;

/// A JSON answer as the stream the provider would have sent; `usage_at` is the index of
/// OpenAI's usage-only chunk.
pub fn json_to_events(api: Api, answer: &Value) -> (Vec<Bytes>, Option<usize>) {
    match api {
        Api::OpenAi => openai_json_to_events(answer),
        Api::Anthropic => (anthropic_json_to_events(answer), None),
    }
}

fn openai_json_to_events(a: &Value) -> (Vec<Bytes>, Option<usize>) {
    let base = |choices: Value| {
        let mut c = json!({
            "id": a.get("id").cloned().unwrap_or(Value::Null),
            "object": "chat.completion.chunk",
            "created": a.get("created").cloned().unwrap_or(json!(0)),
            "model": a.get("model").cloned().unwrap_or(Value::Null),
            "choices": choices,
        });
        if let Some(fp) = a.get("system_fingerprint") {
            c["system_fingerprint"] = fp.clone();
        }
        c
    };
    let mut events = Vec::new();
    let empty = Vec::new();
    let choices = a.get("choices").and_then(Value::as_array).unwrap_or(&empty);
    for (i, choice) in choices.iter().enumerate() {
        let index = choice.get("index").cloned().unwrap_or(json!(i));
        let msg = choice.get("message").cloned().unwrap_or(json!({}));
        let role = msg.get("role").cloned().unwrap_or(json!("assistant"));
        events.push(data_event(&base(json!([{
            "index": index, "delta": { "role": role, "content": "" },
            "logprobs": null, "finish_reason": null,
        }]))));
        if let Some(text) = msg.get("content").and_then(Value::as_str) {
            for piece in pieces(text, PIECE_CHARS) {
                events.push(data_event(&base(json!([{
                    "index": index, "delta": { "content": piece }, "logprobs": null, "finish_reason": null,
                }]))));
            }
        }
        if let Some(calls) = msg.get("tool_calls").and_then(Value::as_array) {
            let deltas: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    let mut d = c.clone();
                    d["index"] = json!(k);
                    d
                })
                .collect();
            events.push(data_event(&base(json!([{
                "index": index, "delta": { "tool_calls": deltas }, "logprobs": null, "finish_reason": null,
            }]))));
        }
        events.push(data_event(&base(json!([{
            "index": index, "delta": {}, "logprobs": null,
            "finish_reason": choice.get("finish_reason").cloned().unwrap_or(json!("stop")),
        }]))));
    }
    let mut usage_at = None;
    if let Some(u) = a.get("usage").filter(|u| u.is_object()) {
        let mut c = base(json!([]));
        c["usage"] = u.clone();
        usage_at = Some(events.len());
        events.push(data_event(&c));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    (events, usage_at)
}

fn anthropic_json_to_events(a: &Value) -> Vec<Bytes> {
    let usage = a.get("usage").cloned().unwrap_or(json!({}));
    let mut start_usage = usage.clone();
    start_usage["output_tokens"] = json!(1);
    let mut message = a.clone();
    message["content"] = json!([]);
    message["stop_reason"] = Value::Null;
    message["stop_sequence"] = Value::Null;
    message["usage"] = start_usage;
    let mut events = vec![named_event(
        "message_start",
        &json!({ "type": "message_start", "message": message }),
    )];
    let empty = Vec::new();
    let blocks = a.get("content").and_then(Value::as_array).unwrap_or(&empty);
    for (i, block) in blocks.iter().enumerate() {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("text");
        let (start, deltas): (Value, Vec<Value>) = match kind {
            "text" => {
                let text = block.get("text").and_then(Value::as_str).unwrap_or("");
                (
                    json!({ "type": "text", "text": "" }),
                    pieces(text, PIECE_CHARS)
                        .into_iter()
                        .map(|p| json!({ "type": "text_delta", "text": p }))
                        .collect(),
                )
            }
            "tool_use" => {
                let mut s = block.clone();
                s["input"] = json!({});
                let input = block.get("input").cloned().unwrap_or(json!({}));
                (
                    s,
                    vec![json!({ "type": "input_json_delta", "partial_json": input.to_string() })],
                )
            }
            "thinking" => {
                let mut s = block.clone();
                s["thinking"] = json!("");
                let text = block.get("thinking").and_then(Value::as_str).unwrap_or("");
                let mut d = vec![json!({ "type": "thinking_delta", "thinking": text })];
                if let Some(sig) = block.get("signature") {
                    d.push(json!({ "type": "signature_delta", "signature": sig }));
                }
                s.as_object_mut().map(|o| o.remove("signature"));
                (s, d)
            }
            _ => (block.clone(), Vec::new()),
        };
        events.push(named_event(
            "content_block_start",
            &json!({ "type": "content_block_start", "index": i, "content_block": start }),
        ));
        for d in deltas {
            events.push(named_event(
                "content_block_delta",
                &json!({ "type": "content_block_delta", "index": i, "delta": d }),
            ));
        }
        events.push(named_event(
            "content_block_stop",
            &json!({ "type": "content_block_stop", "index": i }),
        ));
    }
    events.push(named_event(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {
                "stop_reason": a.get("stop_reason").cloned().unwrap_or(json!("end_turn")),
                "stop_sequence": a.get("stop_sequence").cloned().unwrap_or(Value::Null),
            },
            "usage": { "output_tokens": usage.get("output_tokens").cloned().unwrap_or(json!(0)) },
        }),
    ));
    events.push(named_event(
        "message_stop",
        &json!({ "type": "message_stop" }),
    ));
    events
}

/// A completed stream as the one JSON answer a non-streaming call gets.
pub fn events_to_json(api: Api, events: &[Bytes]) -> Value {
    match api {
        Api::OpenAi => openai_events_to_json(events),
        Api::Anthropic => anthropic_events_to_json(events),
    }
}

#[derive(Default)]
struct ChoiceAcc {
    role: Option<Value>,
    content: Option<String>,
    refusal: Option<String>,
    tools: Vec<Map<String, Value>>,
    finish: Value,
}

fn openai_events_to_json(events: &[Bytes]) -> Value {
    let mut head: Option<Value> = None;
    let mut choices: Vec<ChoiceAcc> = Vec::new();
    let mut usage = Value::Null;
    for ev in events {
        let (_, data) = parse_event(ev);
        let Ok(chunk) = serde_json::from_str::<Value>(&data) else {
            continue;
        };
        if head.is_none() {
            head = Some(chunk.clone());
        }
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            usage = u.clone();
        }
        let Some(list) = chunk.get("choices").and_then(Value::as_array) else {
            continue;
        };
        for c in list {
            let i = c.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
            if i > 1024 {
                continue;
            }
            if choices.len() <= i {
                choices.resize_with(i + 1, ChoiceAcc::default);
            }
            let acc = &mut choices[i];
            if let Some(f) = c.get("finish_reason").filter(|f| !f.is_null()) {
                acc.finish = f.clone();
            }
            let Some(delta) = c.get("delta") else {
                continue;
            };
            if let Some(r) = delta.get("role") {
                acc.role = Some(r.clone());
            }
            if let Some(t) = delta.get("content").and_then(Value::as_str) {
                acc.content.get_or_insert_with(String::new).push_str(t);
            }
            if let Some(t) = delta.get("refusal").and_then(Value::as_str) {
                acc.refusal.get_or_insert_with(String::new).push_str(t);
            }
            for call in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let k = call.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
                if k > 1024 {
                    continue;
                }
                if acc.tools.len() <= k {
                    acc.tools.resize_with(k + 1, Map::new);
                }
                let tool = &mut acc.tools[k];
                for field in ["id", "type"] {
                    if let Some(v) = call.get(field) {
                        tool.insert(field.into(), v.clone());
                    }
                }
                if let Some(f) = call.get("function") {
                    let func = tool
                        .entry("function")
                        .or_insert_with(|| json!({ "name": "", "arguments": "" }));
                    for part in ["name", "arguments"] {
                        if let Some(s) = f.get(part).and_then(Value::as_str) {
                            let cur = func[part].as_str().unwrap_or("").to_string();
                            func[part] = json!(cur + s);
                        }
                    }
                }
            }
        }
    }
    let head = head.unwrap_or(json!({}));
    let choices: Vec<Value> = choices
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let mut message = json!({
                "role": c.role.unwrap_or(json!("assistant")),
                "content": c.content,
                "refusal": c.refusal,
            });
            if !c.tools.is_empty() {
                message["tool_calls"] =
                    Value::Array(c.tools.into_iter().map(Value::Object).collect());
            }
            json!({ "index": i, "message": message, "logprobs": null, "finish_reason": c.finish })
        })
        .collect();
    let mut out = json!({
        "id": head.get("id").cloned().unwrap_or(Value::Null),
        "object": "chat.completion",
        "created": head.get("created").cloned().unwrap_or(json!(0)),
        "model": head.get("model").cloned().unwrap_or(Value::Null),
        "choices": choices,
        "usage": usage,
    });
    if let Some(fp) = head.get("system_fingerprint") {
        out["system_fingerprint"] = fp.clone();
    }
    out
}

fn anthropic_events_to_json(events: &[Bytes]) -> Value {
    let mut message = json!({});
    let mut blocks: Vec<Value> = Vec::new();
    let mut partial_json: Vec<String> = Vec::new();
    for ev in events {
        let (name, data) = parse_event(ev);
        let Ok(v) = serde_json::from_str::<Value>(&data) else {
            continue;
        };
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
        if index > 1024 {
            continue;
        }
        match name.or_else(|| v.get("type").and_then(Value::as_str)) {
            Some("message_start") => message = v.get("message").cloned().unwrap_or(json!({})),
            Some("content_block_start") => {
                if blocks.len() <= index {
                    blocks.resize(index + 1, Value::Null);
                    partial_json.resize(index + 1, String::new());
                }
                blocks[index] = v.get("content_block").cloned().unwrap_or(json!({}));
            }
            Some("content_block_delta") => {
                let (Some(block), Some(d)) = (blocks.get_mut(index), v.get("delta")) else {
                    continue;
                };
                let append = |block: &mut Value, field: &str, s: &str| {
                    let cur = block[field].as_str().unwrap_or("").to_string();
                    block[field] = json!(cur + s);
                };
                match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        append(block, "text", d["text"].as_str().unwrap_or(""));
                    }
                    Some("thinking_delta") => {
                        append(block, "thinking", d["thinking"].as_str().unwrap_or(""));
                    }
                    Some("signature_delta") => block["signature"] = d["signature"].clone(),
                    Some("input_json_delta") => {
                        partial_json[index].push_str(d["partial_json"].as_str().unwrap_or(""));
                    }
                    _ => {}
                }
            }
            Some("content_block_stop") => {
                if let Some(block) = blocks.get_mut(index) {
                    let raw = &partial_json[index];
                    if !raw.is_empty() {
                        block["input"] = serde_json::from_str(raw).unwrap_or(json!({}));
                    }
                }
            }
            Some("message_delta") => {
                if let Some(d) = v.get("delta").and_then(Value::as_object) {
                    for (k, val) in d {
                        message[k] = val.clone();
                    }
                }
                if let Some(u) = v.get("usage").and_then(Value::as_object) {
                    for (k, val) in u {
                        message["usage"][k] = val.clone();
                    }
                }
            }
            _ => {}
        }
    }
    message["content"] = Value::Array(blocks.into_iter().filter(|b| !b.is_null()).collect());
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitter_waits_for_whole_events() {
        let mut s = Splitter::default();
        assert!(s.push(b"data: {\"a\":").is_empty());
        let got = s.push(b"1}\n\ndata: [DONE]\n\nda");
        assert_eq!(
            got,
            vec![
                Bytes::from("data: {\"a\":1}\n\n"),
                Bytes::from("data: [DONE]\n\n")
            ]
        );
        assert_eq!(s.rest(), Some(Bytes::from("da")));
        let got = s.push(b"event: x\r\ndata: y\r\n\r\n");
        assert_eq!(parse_event(&got[0]), (Some("x"), "y".to_string()));
    }

    #[test]
    fn openai_round_trip_keeps_text_tools_and_usage() {
        let answer = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 7, "model": "gpt-x",
            "choices": [{"index": 0, "message": {"role": "assistant",
                "content": "A long enough answer that it will be cut into several pieces for the stream.",
                "refusal": null,
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}]},
                "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 22, "total_tokens": 33}
        });
        let (events, usage_at) = json_to_events(Api::OpenAi, &answer);
        assert!(events.len() > 5, "streamed in pieces");
        let u = usage_at.unwrap();
        assert!(inspect(Api::OpenAi, &events[u]).usage_only);
        assert_eq!(
            inspect(Api::OpenAi, &events[u]).usage,
            Some(Usage {
                prompt: 11,
                completion: 22
            })
        );
        assert!(inspect(Api::OpenAi, events.last().unwrap()).done);
        let back = events_to_json(Api::OpenAi, &events);
        assert_eq!(
            back["choices"][0]["message"]["content"],
            answer["choices"][0]["message"]["content"]
        );
        assert_eq!(
            back["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"x\":1}"
        );
        assert_eq!(back["usage"], answer["usage"]);
        assert_eq!(back["id"], "chatcmpl-1");
    }

    #[test]
    fn anthropic_round_trip_keeps_blocks_and_usage() {
        let answer = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{"type": "text", "text": "Hello there, this is a streamed Anthropic answer."},
                        {"type": "tool_use", "id": "tu_1", "name": "f", "input": {"q": "x"}}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 5, "output_tokens": 9}
        });
        let (events, _) = json_to_events(Api::Anthropic, &answer);
        let mut usage = None;
        for e in &events {
            if let Some(u) = inspect(Api::Anthropic, e).usage {
                usage = Some(merge_usage(Api::Anthropic, usage, u));
            }
        }
        assert_eq!(
            usage,
            Some(Usage {
                prompt: 5,
                completion: 9
            })
        );
        assert!(inspect(Api::Anthropic, events.last().unwrap()).done);
        let back = events_to_json(Api::Anthropic, &events);
        assert_eq!(back["content"], answer["content"]);
        assert_eq!(back["stop_reason"], "tool_use");
        assert_eq!(back["usage"]["output_tokens"], 9);
    }

    proptest::proptest! {
        /// However the network cuts the bytes, the same events come out.
        #[test]
        fn splitting_does_not_depend_on_chunk_boundaries(
            texts in proptest::collection::vec("[a-z {}:,\"]{0,40}", 1..8),
            cuts in proptest::collection::vec(0usize..400, 0..10),
        ) {
            let events: Vec<String> = texts.iter().map(|t| format!("data: {t}\n\n")).collect();
            let all = events.concat();
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (all.len() + 1)).collect();
            points.sort();
            let mut s = Splitter::default();
            let mut got = Vec::new();
            let mut start = 0;
            for p in points.into_iter().chain([all.len()]) {
                got.extend(s.push(&all.as_bytes()[start..p]));
                start = p;
            }
            let got: Vec<String> = got.iter().map(|b| String::from_utf8(b.to_vec()).unwrap()).collect();
            proptest::prop_assert_eq!(got, events);
            proptest::prop_assert_eq!(s.rest(), None);
        }
    }

    #[test]
    fn null_usage_is_stripped() {
        let ev = Bytes::from("data: {\"a\":1,\"usage\":null}\n\n");
        assert_eq!(strip_null_usage(&ev), Bytes::from("data: {\"a\":1}\n\n"));
    }
}
