//! Who is asking: session and role extractors, the CSRF and Origin guard, the security headers.
//!
//! - [`Authed`] (any role) and [`Admin`] are extractors: a handler that names one cannot run without it. Without a
//!   valid session a page request is redirected to `/login` (303), an API or event-stream request gets 401; a
//!   viewer asking for an admin route gets 403.
//! - [`csrf_guard`] runs before every request that is not GET or HEAD: the `Origin` header (or, without one,
//!   `Referer`) must be this console (`https://` + `Host`), and the request must carry the session's CSRF token in
//!   the form field `csrf` or the header `x-csrf-token` (for `/login`, the token of the pre-login cookie).
//!   Refusals are 403 and audited (`console.csrf_refused`).

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::sessions::{LOGIN_COOKIE, SESSION_COOKIE, same_secret};
use super::users::Role;
use super::{Console, SessionCheck};

/// Largest form body accepted.
pub const FORM_LIMIT: usize = 16 * 1024;

/// The peer's address (unspecified when not known, e.g. in tests without a connection).
#[derive(Debug, Clone, Copy)]
pub struct RemoteIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for RemoteIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self(remote_of(parts)))
    }
}

fn remote_of(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A request with a valid session.
#[derive(Debug, Clone)]
pub struct Authed {
    /// Who.
    pub user: String,
    /// Role.
    pub role: Role,
    /// The session's CSRF token (for forms).
    pub csrf: String,
    /// The session token (logout, event stream).
    pub token: String,
    /// The peer's address.
    pub remote: IpAddr,
}

impl Authed {
    /// Whether the user is an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// `user:NAME`, the audit log's actor.
    pub fn actor(&self) -> String {
        format!("user:{}", self.user)
    }
}

/// An API-like path: 401/403 with JSON instead of a redirect or a page.
fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path == "/events"
}

/// A minimal percent-encoding for a `next=` parameter.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn login_required(parts: &Parts, why: &str) -> Response {
    if is_api(parts.uri.path()) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({ "error": "login required" })),
        )
            .into_response();
    }
    let next = parts
        .uri
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    let mut to = format!("/login?next={}", urlencode(&next));
    if why != "none" {
        to.push_str(&format!("&m={why}"));
    }
    Redirect::to(&to).into_response()
}

impl FromRequestParts<Arc<Console>> for Authed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, c: &Arc<Console>) -> Result<Self, Response> {
        // The event stream does not count as use: an open dashboard does not keep a session alive.
        let touch = parts.uri.path() != "/events";
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(login_required(parts, "none"));
        };
        match c.check_session(&token, touch) {
            SessionCheck::Valid(s) => Ok(Self {
                user: s.user,
                role: s.role,
                csrf: s.csrf,
                token,
                remote: remote_of(parts),
            }),
            SessionCheck::Ended(why) => Err(login_required(parts, why)),
        }
    }
}

/// A request from an admin.
#[derive(Debug, Clone)]
pub struct Admin(pub Authed);

impl FromRequestParts<Arc<Console>> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, c: &Arc<Console>) -> Result<Self, Response> {
        let a = Authed::from_request_parts(parts, c).await?;
        if a.is_admin() {
            return Ok(Self(a));
        }
        if is_api(parts.uri.path()) {
            return Err((
                StatusCode::FORBIDDEN,
                axum::Json(serde_json::json!({ "error": "admins only" })),
            )
                .into_response());
        }
        Err(super::pages::forbidden(&a))
    }
}

/// Whether `Origin` (or `Referer`) names this console.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let me = format!("https://{host}");
    if let Some(o) = headers.get(header::ORIGIN) {
        return o.to_str().is_ok_and(|o| o == me);
    }
    headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .is_some_and(|r| r == me || r.starts_with(&format!("{me}/")))
}

fn refuse(c: &Console, parts_path: &str, remote: IpAddr, why: &str) -> Response {
    c.audit(
        format!("remote:{remote}"),
        "console.csrf_refused",
        parts_path,
        serde_json::json!({ "why": why }),
    );
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("refused: {why}\n"),
    )
        .into_response()
}

/// Checks Origin and the CSRF token on every request that is not GET or HEAD.
pub async fn csrf_guard(State(c): State<Arc<Console>>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let path = req.uri().path().to_owned();
    let remote = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ci| ci.0.ip());
    if !same_origin(req.headers()) {
        return refuse(
            &c,
            &path,
            remote,
            "cross-origin request (Origin is not this console)",
        );
    }
    let expected = if path == "/login" {
        cookie(req.headers(), LOGIN_COOKIE)
    } else {
        cookie(req.headers(), SESSION_COOKIE).and_then(|t| match c.check_session(&t, false) {
            SessionCheck::Valid(s) => Some(s.csrf),
            SessionCheck::Ended(_) => None,
        })
    };
    let Some(expected) = expected else {
        return refuse(
            &c,
            &path,
            remote,
            "no session (or login form) to check the CSRF token against",
        );
    };
    let header_token = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (token, req) = match header_token {
        Some(t) => (Some(t), req),
        None => {
            let (parts, body) = req.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
                return (StatusCode::PAYLOAD_TOO_LARGE, "form too large\n").into_response();
            };
            let t = form_urlencoded::parse(&bytes)
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v.into_owned());
            (t, Request::from_parts(parts, Body::from(bytes)))
        }
    };
    if !token.is_some_and(|t| same_secret(&t, &expected)) {
        return refuse(&c, &path, remote, "CSRF token missing or wrong");
    }
    next.run(req).await
}

/// The content security policy: nothing but this console's own scripts, styles and images (and inline images).
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                       connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// Adds the security headers to every response; pages are never cached.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}
