//! The HTTP edge: what every request and answer passes on its way in or out, in one place.
//!
//! - Requests that change something under `/api/` must come from this site: a browser's
//!   `Origin` must be the server's own (or in `ALLOWED_ORIGINS`) and `Sec-Fetch-Site` must
//!   not say `cross-site`; otherwise 403 `forbidden`, before anything runs. Clients that are
//!   not browsers send neither header and pass.
//! - Their body must be what the endpoint reads: `application/json`, or for the two HTML
//!   form endpoints `application/x-www-form-urlencoded` (415 `unsupported_media_type`). A
//!   page on another site can post forms and `text/plain` without asking; it cannot post
//!   JSON without the browser asking us first (and we never say yes).
//! - Every answer says `nosniff`; pages also keep the referrer to this site, refuse framing,
//!   open no window to other origins, and get a Content-Security-Policy with the nonce of
//!   their inline scripts (`app::ssr::content_security_policy`, set where the page is
//!   rendered, since only there the nonce is known).
//! - `/pkg/` (the WASM, JS and CSS, with content hashes in their names) is served from the
//!   precompressed files the release build writes, cached for a year.
use std::path::Path;

use app::error::{ApiError, ErrorCode};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// The API endpoints that take HTML form posts (they work without JavaScript).
const FORM_ENDPOINTS: &[&str] = &["/api/v1/user/login_form", "/api/v1/user/register_form"];

/// Browsers always send `Origin` with a WebSocket and with every `POST`: it must be this
/// server's own (its host equals the `Host` header) or one of `allowed`. Clients that are
/// not browsers send none and pass; `null` (a sandboxed or privacy-redirected page) does not.
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed.iter().any(|a| a.trim_end_matches('/') == origin) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
}

/// The media type of a body, lower case, without parameters.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// The error for a request another site made (by `Sec-Fetch-Site` or `Origin`), if it is one.
pub fn cross_site_refusal(headers: &HeaderMap, allowed_origins: &[String]) -> Option<ApiError> {
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    (cross_site || !origin_allowed(headers, allowed_origins))
        .then(|| ApiError::forbidden("Requests from other sites are not accepted."))
}

/// Refuses cross-site and wrongly typed requests to `/api/` that would change something.
pub async fn guard_api(
    allowed_origins: std::sync::Arc<Vec<String>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let reads_only = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !path.starts_with("/api/") || reads_only {
        return next.run(req).await;
    }
    let headers = req.headers();
    if let Some(refusal) = cross_site_refusal(headers, &allowed_origins) {
        tracing::info!(path, "refused a cross-site request");
        return refusal.into_response();
    }
    let wanted = if FORM_ENDPOINTS.contains(&path) {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    };
    if media_type(headers).as_deref() != Some(wanted) {
        return ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("This endpoint reads {wanted}."),
        )
        .into_response();
    }
    next.run(req).await
}

/// Headers every answer carries: `nosniff`, and caching by kind. Pages (HTML) also get the
/// headers that only a document uses (framing, referrer, opener, permissions).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut res = next.run(req).await;
    let page = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if page {
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            "cross-origin-opener-policy",
            HeaderValue::from_static("same-origin"),
        );
        h.insert(
            "permissions-policy",
            HeaderValue::from_static(
                "camera=(self), microphone=(self), display-capture=(self), geolocation=()",
            ),
        );
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        // API answers and pages are per user: never kept by shared caches, and a page is
        // asked for again each time (it is small; the files it loads are what stays).
        // Other files (the icon) are the same for everyone and change rarely.
        let value = if api {
            "no-store"
        } else if page {
            "private, no-cache"
        } else {
            "public, max-age=86400"
        };
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    }
    res
}

/// Serves `site_root/pkg`: a precompressed `.br` or `.gz` when the browser takes it (the
/// release build writes them), with a year's caching when the names carry content hashes.
pub fn pkg_service(site_root: &str, pkg_dir: &str, hashed: bool) -> axum::Router {
    let dir = Path::new(site_root).join(pkg_dir);
    let files = ServeDir::new(dir)
        .precompressed_br()
        .precompressed_gzip()
        .append_index_html_on_directories(false);
    let cache = HeaderValue::from_static(if hashed {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    });
    axum::Router::new()
        .fallback_service(files)
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            cache,
        ))
        .layer(axum::middleware::map_response(not_found_as_api_error))
}

/// A missing file under `/pkg/` answers the API's error body (and stays uncached).
async fn not_found_as_api_error(res: Response) -> Response {
    if res.status() == axum::http::StatusCode::NOT_FOUND {
        let mut res = ApiError::not_found("There is no such file.").into_response();
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return res;
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_the_own_origin_or_listed_ones() {
        let own = headers(&[
            ("host", "chat.example.org"),
            ("origin", "https://chat.example.org"),
        ]);
        assert!(origin_allowed(&own, &[]));
        let evil = headers(&[
            ("host", "chat.example.org"),
            ("origin", "https://evil.example"),
        ]);
        assert!(!origin_allowed(&evil, &[]));
        assert!(origin_allowed(&evil, &["https://evil.example".into()]));
        assert!(
            origin_allowed(&headers(&[("host", "x")]), &[]),
            "no Origin: not a browser"
        );
        let null = headers(&[("host", "x"), ("origin", "null")]);
        assert!(!origin_allowed(&null, &[]));
        let port = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3001"),
        ]);
        assert!(!origin_allowed(&port, &[]));
    }

    #[test]
    fn media_types_ignore_parameters_and_case() {
        let h = headers(&[("content-type", "Application/JSON; charset=utf-8")]);
        assert_eq!(media_type(&h).as_deref(), Some("application/json"));
        assert_eq!(media_type(&HeaderMap::new()), None);
    }
}
