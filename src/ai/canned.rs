//! The demo provider: when no LLM provider is configured, a deterministic canned answer
//! in the caller's API shape, marked as a demo, so offline demos still work end to end.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::cache::Answer;
use super::providers::DEMO;
use super::wire::{estimate_tokens, prompt_chars, Api, Usage};

const LINES: &[&str] = &[
    "Try a sheet-pan chicken with lemon, potatoes and green beans: 10 minutes of prep, 35 in the oven.",
    "A lentil and sweet-potato curry keeps for four days and covers Monday to Thursday lunches.",
    "Batch-cook rice and roast two trays of vegetables on Sunday; mix them into bowls all week.",
    "For a quick dinner, pasta with cherry tomatoes, garlic and spinach is ready in 15 minutes.",
    "Overnight oats with yoghurt, berries and chia make five breakfasts in one go.",
];

pub const NOTICE: &str =
    "[growth-stack demo provider: no LLM provider is configured, this answer is canned]";

/// The same request always gets the same answer.
pub fn answer(api: Api, body: &Map<String, Value>, model: &str) -> Answer {
    let digest = Sha256::digest(
        serde_json::to_vec(body.get("messages").unwrap_or(&Value::Null)).unwrap_or_default(),
    );
    let line = LINES[usize::from(digest[0]) % LINES.len()];
    let text = format!("{line} {NOTICE}");
    let usage = Usage {
        prompt: estimate_tokens(prompt_chars(body)).max(1),
        completion: estimate_tokens(text.len()),
    };
    let id = hex::encode(&digest[..12]);
    let created = chrono::Utc::now().timestamp();
    let json = match api {
        Api::OpenAi => json!({
            "id": format!("chatcmpl-demo-{id}"),
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": "growth-stack-demo",
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": text, "refusal": null },
                "logprobs": null, "finish_reason": "stop" }],
            "usage": { "prompt_tokens": usage.prompt, "completion_tokens": usage.completion,
                "total_tokens": usage.total() },
        }),
        Api::Anthropic => json!({
            "id": format!("msg_demo_{id}"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{ "type": "text", "text": text }],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": { "input_tokens": usage.prompt, "output_tokens": usage.completion },
        }),
    };
    Answer::from_json(
        api,
        Arc::from(DEMO),
        model.to_string(),
        true,
        usage,
        Bytes::from(json.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_marked() {
        let body = json!({"model": "x", "messages": [{"role": "user", "content": "plan my week"}]});
        let body = body.as_object().unwrap();
        let a = answer(Api::OpenAi, body, "x");
        let b = answer(Api::OpenAi, body, "x");
        let ja: Value = serde_json::from_slice(&a.json()).unwrap();
        let jb: Value = serde_json::from_slice(&b.json()).unwrap();
        assert_eq!(ja["choices"], jb["choices"]);
        assert!(ja["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("demo provider"));
        assert!(a.demo);
        let m: Value = serde_json::from_slice(&answer(Api::Anthropic, body, "x").json()).unwrap();
        assert_eq!(m["type"], "message");
    }
}
