//! A validation failure inside one ingested item: which field, and why. Below the ingest
//! handler and the event-time rule, which both produce it.

use std::borrow::Cow;

use crate::error::ApiError;

/// A validation failure inside one item.
#[derive(Debug)]
pub struct FieldError {
    pub field: Cow<'static, str>,
    pub message: String,
}

pub fn field_error(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: Cow::Borrowed(field),
        message: message.into(),
    }
}

impl FieldError {
    /// The field error inside a 422 from `body::parse_value` (a second-stage parse).
    pub fn from_api(e: ApiError) -> FieldError {
        match e {
            ApiError::Invalid { field, message, .. } => FieldError {
                field: Cow::Owned(field),
                message,
            },
            other => FieldError {
                field: Cow::Borrowed("(item)"),
                message: other.to_string(),
            },
        }
    }
}
