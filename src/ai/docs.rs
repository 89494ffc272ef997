//! The OpenAPI shapes of the gateway endpoints: what the gateway itself checks in an
//! OpenAI or Anthropic request (the rest is forwarded as sent), and the providers' own
//! error bodies, which its SDK clients expect instead of our envelope.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoParams, IntoResponses, PartialSchema, ToSchema};

use crate::http::openapi::error_response;

pub use super::generate::GenerateIn as GenerateRequest;

fn gateway_request(
    extra_required: Option<(&str, ObjectBuilder)>,
    description: &str,
) -> RefOr<Schema> {
    let mut o = ObjectBuilder::new()
        .property(
            "model",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .description(Some(
                    "Routed by the gateway's providers; any name reaches the demo provider",
                )),
        )
        .required("model")
        .property(
            "messages",
            ArrayBuilder::new().description(Some("Forwarded as sent")),
        )
        .required("messages")
        .property(
            "stream",
            ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
                .description(Some(
                    "true answers text/event-stream; anything else answers JSON",
                )),
        )
        .description(Some(description));
    if let Some((name, schema)) = extra_required {
        o = o.property(name, schema).required(name);
    }
    o.into()
}

/// The body of `POST /v1/chat/completions`, as far as the gateway reads it.
pub struct ChatCompletionRequest;

impl PartialSchema for ChatCompletionRequest {
    fn schema() -> RefOr<Schema> {
        gateway_request(
            None,
            "OpenAI's chat completion request; other fields are forwarded as sent",
        )
    }
}
impl ToSchema for ChatCompletionRequest {}

/// The body of `POST /v1/messages`, as far as the gateway reads it.
pub struct MessagesRequest;

impl PartialSchema for MessagesRequest {
    fn schema() -> RefOr<Schema> {
        gateway_request(
            Some((
                "max_tokens",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .maximum(Some(u64::MAX)),
            )),
            "Anthropic's messages request; other fields are forwarded as sent",
        )
    }
}
impl ToSchema for MessagesRequest {}

/// OpenAI's error body: `{error: {message, type, param, code}}`.
pub struct OpenAiError;

impl PartialSchema for OpenAiError {
    fn schema() -> RefOr<Schema> {
        let nullable_string = || {
            ObjectBuilder::new().schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                Type::String,
                Type::Null,
            ]))
        };
        ObjectBuilder::new()
            .property(
                "error",
                ObjectBuilder::new()
                    .property("message", ObjectBuilder::new().schema_type(Type::String))
                    .required("message")
                    .property("type", ObjectBuilder::new().schema_type(Type::String))
                    .required("type")
                    .property("param", nullable_string())
                    .property("code", nullable_string()),
            )
            .required("error")
            .into()
    }
}
impl ToSchema for OpenAiError {}

/// Anthropic's error body: `{type: "error", error: {type, message}}`.
pub struct AnthropicError;

impl PartialSchema for AnthropicError {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .property(
                "type",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["error"])),
            )
            .required("type")
            .property(
                "error",
                ObjectBuilder::new()
                    .property("type", ObjectBuilder::new().schema_type(Type::String))
                    .required("type")
                    .property("message", ObjectBuilder::new().schema_type(Type::String))
                    .required("message"),
            )
            .required("error")
            .into()
    }
}
impl ToSchema for AnthropicError {}

/// What a gateway call may answer besides 200, in the provider's error shape `E`.
pub struct ProviderErrors<E>(PhantomData<E>);

impl<E: ToSchema> IntoResponses for ProviderErrors<E> {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        [
            (
                400,
                "The body is not a JSON object, or lacks what the schema requires",
            ),
            (401, "Missing or wrong gateway key"),
            (404, "No provider routes this model"),
            (413, "The body is larger than the gateway's limit"),
            (429, "Rate limited: Retry-After and x-ratelimit-* headers"),
            (
                502,
                "The provider failed or refused the gateway's provider key",
            ),
            (503, "The server is shutting down"),
            (504, "The provider timed out"),
        ]
        .into_iter()
        .map(|(code, description)| {
            let response = ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(E::name())))
                        .build(),
                )
                .build();
            (code.to_string(), response.into())
        })
        .collect()
    }
}

/// What `POST /api/ai/generate` may answer besides 200, in our error envelope.
pub struct GenerateErrors;

impl IntoResponses for GenerateErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        [
            (400, "The body is not a generate request"),
            (401, "Missing or wrong gateway key"),
            (413, "The body is larger than the gateway's limit"),
            (422, "No provider routes this model (field `model`)"),
            (429, "Rate limited; see Retry-After"),
            (502, "The provider failed"),
            (503, "The server is shutting down"),
            (504, "The provider timed out"),
        ]
        .into_iter()
        .map(|(code, description)| (code.to_string(), error_response(description)))
        .collect()
    }
}

/// The request headers the gateway reads on `/v1/...` calls.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct GatewayHeaders {
    /// `no-cache` (skip the cache read), `no-store` (do not store), `max-age=N` (TTL, at
    /// most a year, and the oldest entry accepted).
    #[param(nullable = false, rename = "cache-control")]
    cache_control: Option<String>,
    /// `true`: neither read nor store.
    #[param(nullable = false, rename = "cf-aig-skip-cache")]
    skip_cache: Option<String>,
    /// Seconds to keep this answer (at most a year).
    #[param(nullable = false, rename = "cf-aig-cache-ttl")]
    cache_ttl: Option<String>,
    /// The end user, for per-user limits and metrics (else `user` or `metadata.user_id`).
    #[param(nullable = false, rename = "x-growth-user-id")]
    user_id: Option<String>,
}
