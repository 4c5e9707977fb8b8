//! `Status` failure bodies, shaped exactly like the ones kube-apiserver sends, because both
//! kubectl and kube-rs decide what to do (retry, report "NotFound", fall back) from `reason`
//! and `code` rather than from the HTTP status line alone.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

/// An API failure, rendered as a `meta/v1 Status`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
}

/// What an error is about: kubectl prints `group/resource "name"` from these.
pub struct Subject<'a> {
    /// `resource` or `resource.group`, as in `simulationseries.simseries.io`.
    pub qualified: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub name: &'a str,
}

impl Subject<'_> {
    fn details(&self) -> Value {
        // The real server puts the resource (not the kind) into `details.kind`.
        let mut details = json!({"name": self.name, "group": self.group, "kind": self.resource});
        if self.group.is_empty() {
            details.as_object_mut().unwrap().remove("group");
        }
        details
    }
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: json!({}),
        }
    }

    pub fn not_found(s: &Subject) -> Self {
        Self {
            details: s.details(),
            ..Self::new(
                404,
                "NotFound",
                format!("{} \"{}\" not found", s.qualified, s.name),
            )
        }
    }

    pub fn already_exists(s: &Subject) -> Self {
        Self {
            details: s.details(),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{} \"{}\" already exists", s.qualified, s.name),
            )
        }
    }

    pub fn conflict(s: &Subject, why: &str) -> Self {
        Self {
            details: s.details(),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{}\": {why}",
                    s.qualified, s.name
                ),
            )
        }
    }

    pub fn stale(s: &Subject) -> Self {
        Self::conflict(
            s,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn invalid(s: &Subject, kind: &str, causes: &str) -> Self {
        Self {
            details: s.details(),
            ..Self::new(
                422,
                "Invalid",
                format!("{kind} \"{}\" is invalid: {causes}", s.name),
            )
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        // What the real server answers when a patch cannot be applied (e.g. a failed `test`).
        Self::new(422, "UnprocessableEntity", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub fn unsupported_media_type(accepted: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {accepted}"
            ),
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// The 404 for paths the server does not serve at all.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// A watch that asks for history the server no longer keeps.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn status_body(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        super::http::json_response(code, &self.status_body())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
