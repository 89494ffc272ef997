//! `ApiError`: the only place where failures become HTTP statuses and the JSON envelope.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Malformed(String),
    #[error("invalid query parameter `{param}`: {message}")]
    BadParam {
        param: std::borrow::Cow<'static, str>,
        message: String,
    },
    #[error("content type {0} is not accepted; send application/json or text/plain")]
    UnsupportedMediaType(String),
    #[error("missing or invalid admin token; send Authorization: Bearer <token>")]
    Unauthorized,
    #[error("that is not the admin token")]
    WrongToken,
    #[error("missing or invalid gateway key; send Authorization: Bearer <key> or x-api-key")]
    GatewayKey,
    #[error("{0}")]
    Forbidden(String),
    #[error("no route for {0}")]
    NotFound(String),
    /// A body names something where names are checked (a table, a column) that is not
    /// there, or a value its column cannot hold: 400, the name never used.
    #[error("{0}")]
    UnknownName(String),
    /// A route that exists, asked about something that does not (a user, a funnel).
    #[error("{0}")]
    Missing(String),
    /// The request is well formed but the server's state refuses it (an id taken).
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("{}", invalid_message(.index, .field, .message))]
    Invalid {
        index: Option<usize>,
        field: String,
        message: String,
    },
    #[error("rate limit exceeded; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("ingest queue is full; retry in {retry_after} s")]
    Overloaded { retry_after: u64 },
    #[error(
        "the server's disk is full; nothing of this request was stored; retry in {retry_after} s"
    )]
    DiskFull { retry_after: u64 },
    #[error("server is shutting down")]
    ShuttingDown,
    /// The ClickHouse cluster cannot take or answer this now; nothing was acknowledged.
    #[error("the storage cluster is unavailable; this request was not acknowledged; retry in {retry_after} s")]
    Unavailable { retry_after: u64, detail: String },
    /// An endpoint the ClickHouse engine does not serve yet (named).
    #[error(
        "{0} is not available on storage.engine = \"clickhouse\" yet; it runs on the duckdb engine"
    )]
    NotOnClickHouse(String),
    /// An LLM provider failed or timed out (502/504).
    #[error("{message}")]
    Upstream { status: StatusCode, message: String },
    #[error("internal error")]
    Internal(String),
}

fn invalid_message(index: &Option<usize>, field: &str, message: &str) -> String {
    match index {
        Some(i) => format!("item {i}: field `{field}` {message}"),
        None => format!("field `{field}` {message}"),
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Malformed(_) | ApiError::BadParam { .. } | ApiError::UnknownName(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unauthorized | ApiError::WrongToken | ApiError::GatewayKey => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Upstream { status, .. } => *status,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::Missing(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotOnClickHouse(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Overloaded { .. }
            | ApiError::DiskFull { .. }
            | ApiError::Unavailable { .. }
            | ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Malformed(_) => "malformed_json",
            ApiError::BadParam { .. } => "invalid_parameter",
            ApiError::UnknownName(_) => "unknown_name",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unauthorized | ApiError::WrongToken | ApiError::GatewayKey => "unauthorized",
            ApiError::Upstream { .. } => "upstream_error",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) | ApiError::Missing(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooLarge { .. } => "payload_too_large",
            ApiError::Invalid { .. } => "invalid_field",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Overloaded { .. } => "overloaded",
            ApiError::DiskFull { .. } => "disk_full",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::Unavailable { .. } => "storage_unavailable",
            ApiError::NotOnClickHouse(_) => "not_on_clickhouse",
            ApiError::Internal(_) => "internal",
        }
    }

    /// A query or path parameter the handler cannot use (400), naming it.
    pub fn bad_param(
        param: impl Into<std::borrow::Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ApiError::BadParam {
            param: param.into(),
            message: message.into(),
        }
    }

    pub fn invalid(
        index: Option<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ApiError::Invalid {
            index,
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::QueueFull => ApiError::Overloaded { retry_after: 1 },
            StoreError::Closed => ApiError::ShuttingDown,
            StoreError::DiskFull => ApiError::DiskFull { retry_after: 10 },
            StoreError::ClickHouse(crate::store::clickhouse::ChError::NotPorted(what)) => {
                ApiError::NotOnClickHouse(what)
            }
            StoreError::ClickHouse(e) if e.is_unavailable() => ApiError::Unavailable {
                retry_after: 5,
                detail: e.to_string(),
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        if let ApiError::Unavailable { detail, .. } = &self {
            tracing::warn!(%detail, "storage cluster unavailable");
        }
        let mut error = json!({ "code": self.code(), "message": self.to_string() });
        if let ApiError::Invalid { index, field, .. } = &self {
            error["field"] = json!(field);
            if let Some(i) = index {
                error["index"] = json!(i);
            }
        }
        let mut resp = (status, axum::Json(json!({ "error": error }))).into_response();
        if let ApiError::RateLimited { retry_after }
        | ApiError::Overloaded { retry_after }
        | ApiError::DiskFull { retry_after }
        | ApiError::Unavailable { retry_after, .. } = self
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_is_503_with_retry_after() {
        let resp = ApiError::from(StoreError::QueueFull).into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn invalid_names_item_and_field() {
        let e = ApiError::invalid(Some(3), "lcp", "must be a finite number >= 0");
        assert_eq!(
            e.to_string(),
            "item 3: field `lcp` must be a finite number >= 0"
        );
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
