//! API errors as RFC 9457 problem details (`application/problem+json`). The `detail` says what
//! the caller can do about it; internal causes (paths, SQL, GStreamer debug) go to the log only.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::time::Duration;

#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub title: &'static str,
    pub detail: String,
    /// Seconds for `Retry-After` (429, 503).
    pub retry_after: Option<Duration>,
    /// The session's durable media length, for `Upload-Offset` (409 on a wrong offset).
    pub upload_offset: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            title,
            detail: detail.into(),
            retry_after: None,
            upload_offset: None,
        }
    }

    pub fn unauthorized() -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send a valid bot token as 'Authorization: Bearer <token>'",
        )
    }

    pub fn not_found(what: &str) -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not found",
            format!("no such {what}"),
        )
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad request", detail)
    }

    pub fn unprocessable(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable request",
            detail,
        )
    }

    pub fn conflict(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, "conflict", detail)
    }

    pub fn too_large(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload too large", detail)
    }

    pub fn unavailable(detail: impl Into<String>, retry_after: Duration) -> Problem {
        Problem {
            retry_after: Some(retry_after),
            ..Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
        }
    }

    /// A client over its share (request rate, session quota): 429 with `Retry-After`.
    pub fn too_many(detail: impl Into<String>, retry_after: Duration) -> Problem {
        Problem {
            retry_after: Some(retry_after),
            ..Problem::new(StatusCode::TOO_MANY_REQUESTS, "too many requests", detail)
        }
    }

    /// A server-side failure: logged with its cause, answered without it.
    pub fn internal(cause: impl std::fmt::Display) -> Problem {
        tracing::error!("internal error: {cause}");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error",
            "the server could not complete the request; it has been logged",
        )
    }

    pub fn with_offset(mut self, offset: u64) -> Problem {
        self.upload_offset = Some(offset);
        self
    }
}

impl From<crate::store::StoreError> for Problem {
    fn from(e: crate::store::StoreError) -> Problem {
        Problem::internal(e)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = json!({
            "type": "about:blank",
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(d) = self.retry_after {
            h.insert(
                header::RETRY_AFTER,
                HeaderValue::from(d.as_secs_f64().ceil().max(1.0) as u64),
            );
        }
        if let Some(o) = self.upload_offset {
            h.insert("upload-offset", HeaderValue::from(o));
        }
        resp
    }
}
