//! What every request passes before a route sees it, and what every answer carries.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::IntoResponse;

use super::auth::{Gate, TokenCheck};
use super::http::{parse_query, Response, CSP};
use super::routes::Context;

/// Host, then the body, then the method, then the token; only then the route.
pub async fn admit(
    State(context): State<Arc<Context>>,
    request: Request,
    next: Next,
) -> axum::response::Response {
    match check(&context, request).await {
        Ok(request) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

async fn check(context: &Context, request: Request) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    // An absolute-form target (`GET http://name/ HTTP/1.1`) names its host itself.
    let host = match parts.uri.authority() {
        Some(authority) => Some(authority.host()),
        None => parts.headers.get(header::HOST).and_then(|value| value.to_str().ok()),
    };
    let Some(host) = host else {
        return Err(Response::text(400, "400: a request needs a Host header"));
    };
    if !context.hosts.allows(host) {
        return Err(Response::text(
            403,
            "403: this server does not answer to that host name (a guard against DNS \
             rebinding); serve with --allow-host NAME to add one",
        ));
    }
    // Read what body came to its end (the layers outside bound it in bytes and time):
    // closing with unread bytes resets the connection, which can destroy the answer.
    if axum::body::to_bytes(body, usize::MAX).await.is_err() {
        let message = format!(
            "413: a request body is at most {} KiB and has to arrive within {} s",
            context.limits.max_body_bytes / 1024,
            context.limits.body_deadline.as_secs()
        );
        return Err(Response::text(413, &message).with_header("Connection", "close"));
    }
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return Err(Response::text(405, "405: read-only; only GET and HEAD")
            .with_header("Allow", "GET, HEAD"));
    }
    let path = parts.uri.path();
    let is_api = path.starts_with("/api/");
    let query = parse_query(parts.uri.query().unwrap_or(""));
    let tokens = TokenCheck { token: context.token.as_deref(), cookie: &context.cookie };
    match tokens.check(&parts, &query, is_api) {
        Gate::Pass => Ok(Request::from_parts(parts, Body::empty())),
        Gate::SetCookie(response) | Gate::Deny(response) => Err(response),
    }
}

/// The safety headers, on every answer (404s, 413s and 503s from the layers too).
pub async fn secure(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("content-security-policy", CSP),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    response
}
