//! The OpenAPI pieces every capability's document shares: the error envelope, the
//! error responses of reads and ingest, the one-or-many ingest body, small field types.
//! Each capability's `api.rs` declares its operations with `#[utoipa::path]` and a
//! `#[derive(OpenApi)] struct Doc`; `ops::openapi` merges them into `/api/openapi.json`.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde::{Deserialize, Deserializer};
use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::{ContentBuilder, KnownFormat, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoResponses, PartialSchema, ToSchema};

/// The name of the error envelope in `components.schemas`.
pub const ERROR_SCHEMA: &str = "Error";

/// `{"error": {"code", "message", "field"?, "index"?}}`, the body of every non-2xx answer
/// of our own endpoints (`ApiError` in `error.rs`).
pub fn error_schema() -> RefOr<Schema> {
    let codes = [
        "malformed_json",
        "invalid_parameter",
        "unsupported_media_type",
        "unauthorized",
        "upstream_error",
        "forbidden",
        "not_found",
        "conflict",
        "payload_too_large",
        "invalid_field",
        "rate_limited",
        "overloaded",
        "shutting_down",
        "internal",
    ];
    let detail = ObjectBuilder::new()
        .property(
            "code",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(codes)),
        )
        .required("code")
        .property("message", ObjectBuilder::new().schema_type(Type::String))
        .required("message")
        .property(
            "field",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("the field at fault (422)")),
        )
        .property(
            "index",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .description(Some("the batch item at fault (422)")),
        )
        .additional_properties(Some(no_extra()));
    ObjectBuilder::new()
        .property("error", detail)
        .required("error")
        .additional_properties(Some(no_extra()))
        .description(Some("Every error of growth-stack's own endpoints"))
        .into()
}

/// A response whose body is the error envelope.
pub fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ERROR_SCHEMA)))
                .build(),
        )
        .build()
        .into()
}

/// Error responses with the envelope, by status and description.
pub fn errors(list: &[(u16, &str)]) -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
    list.iter()
        .map(|(code, description)| (code.to_string(), error_response(description)))
        .collect()
}

pub const BAD_PARAM: (u16, &str) = (
    400,
    "A query or path parameter is invalid; the message names it (code invalid_parameter)",
);
/// A state-changing call from a dashboard session that lacks the header other sites
/// cannot send.
pub const CSRF: (u16, &str) = (
    403,
    "A dashboard session without X-Requested-With: growth-stack",
);
pub const UNAUTHORIZED: (u16, &str) = (
    401,
    "Missing or wrong admin token (Authorization: Bearer, or the dashboard's session cookie)",
);

/// What every admin read may answer besides 200: a bad parameter (400) or no admin (401).
pub struct ReadErrors;

impl IntoResponses for ReadErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        errors(&[BAD_PARAM, UNAUTHORIZED])
    }
}

/// What an admin read of one named thing may answer: `ReadErrors` and 404.
pub struct LookupErrors;

impl IntoResponses for LookupErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        errors(&[
            BAD_PARAM,
            UNAUTHORIZED,
            (404, "Nothing of that name in this window"),
        ])
    }
}

/// What every `POST /api/analytics/...` may answer besides 200.
pub struct IngestErrors;

impl IntoResponses for IngestErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        errors(&[
            (400, "The body is not JSON, or not an object or array of objects"),
            (403, "Origin not in ingest.cors_origins, or a missing or wrong ingest key"),
            (413, "The body is larger than ingest.body_limit"),
            (415, "Content-Type is neither application/json nor text/plain"),
            (422, "An item breaks a rule; `field` (and `index` in a batch) name it. Nothing was written"),
            (429, "Per-IP ingest rate limit; see Retry-After"),
            (503, "The write queue is full or the server is shutting down; see Retry-After"),
        ])
    }
}

/// An ingest body: one item, or an array of up to `ingest.max_batch` items (1000 by
/// default; the served document states the configured number).
pub struct OneOrMany<T>(PhantomData<T>);

/// The batch size the static schema states; `ops::openapi` writes the configured one.
pub const DEFAULT_MAX_BATCH: usize = 1000;

impl<T: ToSchema> PartialSchema for OneOrMany<T> {
    fn schema() -> RefOr<Schema> {
        let item = || Ref::from_schema_name(T::name());
        OneOfBuilder::new()
            .item(item())
            .item(
                ArrayBuilder::new()
                    .items(item())
                    .max_items(Some(DEFAULT_MAX_BATCH)),
            )
            .description(Some(
                "One item, or an array of items written together or not at all",
            ))
            .into()
    }
}

impl<T: ToSchema> ToSchema for OneOrMany<T> {
    fn name() -> std::borrow::Cow<'static, str> {
        format!("{}Body", T::name()).into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into(), T::schema()));
        T::schemas(schemas);
    }
}

/// An IP address given in an ingest item (a server-side SDK reporting its end user's).
#[derive(Debug)]
pub struct IpText(pub String);

impl<'de> Deserialize<'de> for IpText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(IpText)
    }
}

impl PartialSchema for IpText {
    fn schema() -> RefOr<Schema> {
        let format = |f| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(f)))
        };
        AnyOfBuilder::new()
            .item(format(KnownFormat::Ipv4))
            .item(format(KnownFormat::Ipv6))
            .description(Some(
                "The end user's address; default the sender's. Stored as privacy.ip says",
            ))
            .into()
    }
}
impl ToSchema for IpText {}

/// `additionalProperties: false`: an object that refuses unknown fields.
pub fn no_extra() -> utoipa::openapi::schema::AdditionalProperties<Schema> {
    utoipa::openapi::schema::AdditionalProperties::FreeForm(false)
}

/// A string schema with a length range, for hand-built schemas.
pub fn text_schema(min: Option<usize>, max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(min)
        .max_length(Some(max))
}
