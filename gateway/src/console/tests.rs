//! HTTP-level tests of the console: every route's authorisation, CSRF and Origin, sessions, login rate limiting,
//! audit entries; and a real HTTPS round trip through the accept loop.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, header};
use hotspot_device_protocols::station::{
    CaptureResult, Decision, Finger, FingerFormat, Purpose, ResultCandidate, Source,
};
use rand::SeedableRng as _;
use tower::ServiceExt as _;
use uuid::Uuid;

use super::users::{self, Role};
use super::{Console, Settings};
use crate::pipeline::Pipeline;

const HOST: &str = "console.test";
const ADMIN_PW: &str = "ana's long password";
const VIEWER_PW: &str = "vic's long password";

/// A pipeline on a temporary store, without broker or uplink.
pub fn test_pipeline(dir: &Path) -> Arc<Pipeline> {
    let key = crate::crypto::PayloadKey::load_or_create(&dir.join("payload.key")).unwrap();
    let store = crate::store::Store::open(dir, key).unwrap();
    let trusted = hotspot_device_protocols::bundle::TrustedKeys::default();
    let watchlist = Arc::new(crate::watchlist::Watchlist::new(
        trusted.clone(),
        dir,
        store.payload_key(),
        3_600_000,
    ));
    let (client, _eventloop) = rumqttc::AsyncClient::new(
        rumqttc::MqttOptions::new("console-test", "127.0.0.1", 1),
        10,
    );
    let (fresh, _) = tokio::sync::mpsc::channel(16);
    Arc::new(Pipeline {
        store,
        watchlist,
        faces: None,
        client,
        shared: Arc::new(crate::shared::Shared::new("site-t".into(), 1 << 30)),
        outbox_notify: Arc::new(tokio::sync::Notify::new()),
        match_slots: Arc::new(tokio::sync::Semaphore::new(1)),
        retention: crate::store::Retention {
            payload_ms: 3_600_000,
            metadata_ms: 86_400_000,
        },
        release_above_bytes: 0,
        fresh,
        audit: crate::audit::Audit::start(&dir.join("audit.log")).unwrap(),
        stats_lock: std::sync::Mutex::new(()),
        plugins: Arc::new(crate::plugins::Plugins::new(None, trusted, dir).unwrap()),
        plugin_events: std::sync::Mutex::new(Vec::new()),
        console_alerts: std::sync::Mutex::new(std::collections::VecDeque::new()),
        reviewed: std::sync::Mutex::new(Vec::new()),
        enrol_min_finger_score: 0,
        pending_marks: std::sync::Mutex::new(Vec::new()),
    })
}

struct Env {
    dir: tempfile::TempDir,
    console: Arc<Console>,
    app: axum::Router,
    peer: SocketAddr,
}

fn settings(dir: &Path, idle: Duration) -> Settings {
    Settings {
        session_idle: idle,
        session_max: Duration::from_secs(3600),
        login_max_failures: 5,
        login_lockout: Duration::from_secs(60),
        sample_interval: Duration::from_secs(10),
        history: Duration::from_secs(3600),
        users_file: dir.join(users::USERS_FILE),
        audit_file: dir.join("audit.log"),
        config_view: super::redact("Config {\n    password: \"x\",\n    listen: \"y\",\n}"),
        cert_fingerprint: "AA:BB".into(),
        cert_path: dir.join("console-cert.pem"),
        stations_registry: dir.join("stations").join("stations.json"),
    }
}

async fn env_with(idle: Duration) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = test_pipeline(dir.path());
    let s = settings(dir.path(), idle);
    users::add(&s.users_file, "ana", Role::Admin, ADMIN_PW).unwrap();
    users::add(&s.users_file, "vic", Role::Viewer, VIEWER_PW).unwrap();
    let console = Console::new(pipeline, s);
    tokio::spawn(console.feed.clone().follow());
    let app = super::router(console.clone());
    Env {
        dir,
        console,
        app,
        peer: "192.0.2.10:50000".parse().unwrap(),
    }
}

async fn env() -> Env {
    env_with(Duration::from_secs(600)).await
}

fn cookies_of(r: &Response<Body>) -> Vec<String> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn cookie_value(r: &Response<Body>, name: &str) -> Option<String> {
    cookies_of(r).iter().find_map(|c| {
        c.strip_prefix(&format!("{name}="))
            .map(|v| v.split(';').next().unwrap().to_owned())
    })
}

async fn body_text(r: Response<Body>) -> String {
    String::from_utf8(
        axum::body::to_bytes(r.into_body(), 1 << 24)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap()
}

fn location(r: &Response<Body>) -> String {
    r.headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The hidden CSRF field of a page.
fn csrf_in(page: &str) -> String {
    let i = page.find("name=csrf value=\"").expect("no csrf field") + 17;
    page[i..].split('"').next().unwrap().to_owned()
}

impl Env {
    async fn send(&self, req: Request<Body>) -> Response<Body> {
        let mut req = req;
        req.extensions_mut().insert(ConnectInfo(self.peer));
        self.app.clone().oneshot(req).await.unwrap()
    }

    async fn get(&self, path: &str, session: Option<&str>) -> Response<Body> {
        let mut b = Request::get(path).header(header::HOST, HOST);
        if let Some(s) = session {
            b = b.header(
                header::COOKIE,
                format!("{}={s}", super::sessions::SESSION_COOKIE),
            );
        }
        self.send(b.body(Body::empty()).unwrap()).await
    }

    async fn post(
        &self,
        path: &str,
        cookie: Option<String>,
        origin: Option<&str>,
        form: &[(&str, &str)],
    ) -> Response<Body> {
        let mut b = Request::post(path)
            .header(header::HOST, HOST)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send(b.body(Body::from(body)).unwrap()).await
    }

    /// GET /login then POST /login; returns the final response.
    async fn try_login(&self, name: &str, pw: &str) -> Response<Body> {
        let form = self.get("/login", None).await;
        assert_eq!(form.status(), StatusCode::OK);
        let token = cookie_value(&form, super::sessions::LOGIN_COOKIE).unwrap();
        self.post(
            "/login",
            Some(format!("{}={token}", super::sessions::LOGIN_COOKIE)),
            Some(&format!("https://{HOST}")),
            &[
                ("name", name),
                ("password", pw),
                ("csrf", &token),
                ("next", "/"),
            ],
        )
        .await
    }

    /// Logs in; returns (session token, CSRF token).
    async fn login(&self, name: &str, pw: &str) -> (String, String) {
        let r = self.try_login(name, pw).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "login of {name} failed");
        let set = cookies_of(&r);
        let session_cookie = set
            .iter()
            .find(|c| c.starts_with(super::sessions::SESSION_COOKIE))
            .unwrap();
        for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(session_cookie.contains(attr), "{session_cookie}");
        }
        let token = cookie_value(&r, super::sessions::SESSION_COOKIE).unwrap();
        let page = body_text(self.get("/", Some(&token)).await).await;
        (token.clone(), csrf_in(&page))
    }

    fn session_cookie(&self, token: &str) -> String {
        format!("{}={token}", super::sessions::SESSION_COOKIE)
    }

    async fn audit_text(&self, needles: &[&str]) -> String {
        let path = self.dir.path().join("audit.log");
        for _ in 0..50 {
            let t = std::fs::read_to_string(&path).unwrap_or_default();
            if needles.iter().all(|n| t.contains(n)) {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "audit log lacks {needles:?}:\n{}",
            std::fs::read_to_string(&path).unwrap_or_default()
        );
    }

    /// Stores a capture with a local hit, as the pipeline would, and records it in the audit log.
    async fn hit_capture(&self) -> Uuid {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let f = crate::synth::random_finger(&mut rng);
        let capture = crate::station_sim::new_capture(
            vec![Finger {
                position: 2,
                format: FingerFormat::Iso19794_2,
                data: crate::synth::to_iso(&f, 2).unwrap(),
            }],
            Purpose::Screen,
        );
        let id = capture.capture_id;
        let p = &self.console.pipeline;
        p.store
            .insert_capture("desk-1", crate::pipeline::now_ms(), &capture)
            .unwrap();
        let result = CaptureResult {
            capture_id: Some(id),
            source: Source::Local,
            decision: Decision::Hit,
            candidates: vec![ResultCandidate {
                subject_id: "P001".into(),
                score: 61.5,
            }],
            reason: None,
            watchlist_version: 1,
            latency_ms: 12,
        };
        p.store
            .record_local(id, &result, crate::store::Priority::Hit)
            .unwrap();
        p.audit.record(
            "station:desk-1",
            "capture.accepted",
            id.to_string(),
            serde_json::json!({"purpose": "screen"}),
        );
        p.audit.record(
            "system",
            "result.local",
            id.to_string(),
            serde_json::json!({"decision": "hit", "candidates": ["P001"]}),
        );
        id
    }
}

/// Every route of the console and whether only admins may use it.
fn routes(id: Uuid) -> Vec<(String, bool)> {
    vec![
        ("/".into(), false),
        ("/stations".into(), false),
        ("/results".into(), false),
        ("/results?hits=1".into(), false),
        (format!("/results/{id}"), false),
        (format!("/results/{id}/images"), true),
        ("/plugins".into(), false),
        ("/api/status".into(), false),
        ("/events".into(), false),
        ("/audit".into(), true),
        ("/audit?actor=user:ana".into(), true),
        ("/settings".into(), true),
        ("/users".into(), true),
    ]
}

#[tokio::test]
async fn every_route_refuses_anonymous_requests_and_viewers_on_admin_routes() {
    let e = env().await;
    let id = e.hit_capture().await;
    let (admin, _) = e.login("ana", ADMIN_PW).await;
    let (viewer, _) = e.login("vic", VIEWER_PW).await;
    for (path, admin_only) in routes(id) {
        let api = path.starts_with("/api/") || path == "/events";
        // Nobody: a page redirects to the login form, an API answers 401.
        let r = e.get(&path, None).await;
        if api {
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "anonymous {path}");
        } else {
            assert_eq!(r.status(), StatusCode::SEE_OTHER, "anonymous {path}");
            assert!(
                location(&r).starts_with("/login?next="),
                "{path}: {}",
                location(&r)
            );
        }
        // A forged session cookie is nobody too.
        let r = e.get(&path, Some("forged-token")).await;
        assert!(
            matches!(r.status(), StatusCode::SEE_OTHER | StatusCode::UNAUTHORIZED),
            "forged {path}: {}",
            r.status()
        );
        let r = e.get(&path, Some(&viewer)).await;
        if admin_only {
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "viewer on {path}");
        } else {
            assert_eq!(r.status(), StatusCode::OK, "viewer on {path}");
        }
        let r = e.get(&path, Some(&admin)).await;
        assert_eq!(r.status(), StatusCode::OK, "admin on {path}");
        if path == "/events" {
            assert_eq!(
                r.headers()[header::CONTENT_TYPE].to_str().unwrap(),
                "text/event-stream"
            );
        }
    }
    // Without login: only the login form, health and the static files.
    for path in ["/login", "/static/console.css", "/static/console.js"] {
        assert_eq!(e.get(path, None).await.status(), StatusCode::OK, "{path}");
    }
    let health = e.get("/healthz", None).await.status();
    assert_eq!(
        health,
        StatusCode::SERVICE_UNAVAILABLE,
        "no broker in this test"
    );
    assert_eq!(
        e.get("/nothing-here", Some(&admin)).await.status(),
        StatusCode::NOT_FOUND
    );
    // State-changing requests without a session are refused before any handler.
    let r = e
        .post(
            "/logout",
            None,
            Some(&format!("https://{HOST}")),
            &[("csrf", "x")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The viewer's pages do not offer the admin's links or the images.
    let page = body_text(e.get(&format!("/results/{id}"), Some(&viewer)).await).await;
    assert!(
        !page.contains("href=\"/audit\"") && !page.contains("show-images"),
        "{page}"
    );
    let page = body_text(e.get(&format!("/results/{id}"), Some(&admin)).await).await;
    assert!(
        page.contains("href=\"/audit\"") && page.contains("show-images"),
        "{page}"
    );
}

#[tokio::test]
async fn pages_carry_security_headers_and_no_cache() {
    let e = env().await;
    let (admin, _) = e.login("ana", ADMIN_PW).await;
    let r = e.get("/", Some(&admin)).await;
    let h = r.headers();
    assert!(
        h[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
    assert!(h.contains_key(header::STRICT_TRANSPORT_SECURITY));
    let page = body_text(r).await;
    assert!(!page.contains("<script>"), "no inline script: {page}");
    let settings = body_text(e.get("/settings", Some(&admin)).await).await;
    assert!(
        settings.contains("password: &lt;redacted&gt;"),
        "{settings}"
    );
    assert!(!settings.contains("&quot;x&quot;"), "{settings}");
    assert!(settings.contains("listen: &quot;y&quot;"), "{settings}");
}

#[tokio::test]
async fn wrong_passwords_are_refused_audited_and_rate_limited() {
    let mut e = env().await;
    let r = e.try_login("ana", "not the password").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(body_text(r).await.contains("Wrong name or password"));
    let r = e.try_login("nobody", "whatever password").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(cookie_value(&r, super::sessions::SESSION_COOKIE).is_none());
    for _ in 0..3 {
        assert_eq!(
            e.try_login("ana", "still not it").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Five failures from this address: every login from it is refused now, even with the right password.
    for (name, pw) in [("ana", ADMIN_PW), ("vic", VIEWER_PW)] {
        let r = e.try_login(name, pw).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{name}");
        assert!(r.headers().contains_key(header::RETRY_AFTER));
        assert!(body_text(r).await.contains("Too many failed logins"));
    }
    // From another address the viewer gets in; one more failure locks the admin account (five in all)...
    e.peer = "192.0.2.99:40000".parse().unwrap();
    assert_eq!(
        e.try_login("vic", VIEWER_PW).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        e.try_login("ana", "wrong again").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // ... wherever its logins come from.
    e.peer = "198.51.100.7:40000".parse().unwrap();
    assert_eq!(
        e.try_login("ana", ADMIN_PW).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let text = e
        .audit_text(&[
            "\"console.login_failed\"",
            "\"console.login_locked\"",
            "\"console.login\"",
            "\"remote:192.0.2.10\"",
            "\"by\":\"account\"",
            "\"by\":\"address\"",
            "unknown user",
            "wrong password",
        ])
        .await;
    assert_eq!(
        text.matches("\"console.login_failed\"").count(),
        6,
        "{text}"
    );
    let m = &e.console.pipeline.shared.metrics;
    assert_eq!(m.logins("failed"), 6);
    assert_eq!(m.logins("locked"), 3);
    assert_eq!(m.logins("ok"), 1);
    assert!(!text.contains(ADMIN_PW) && !text.contains("still not it"));
}

#[tokio::test]
async fn csrf_token_and_origin_are_required_for_every_post() {
    let e = env().await;
    let (admin, csrf) = e.login("ana", ADMIN_PW).await;
    let me = format!("https://{HOST}");
    let cookie = || Some(e.session_cookie(&admin));
    // Missing token, wrong token, right token from another origin, no origin at all: refused.
    let r = e.post("/logout", cookie(), Some(&me), &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = e
        .post("/logout", cookie(), Some(&me), &[("csrf", "wrong")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = e
        .post(
            "/logout",
            cookie(),
            Some("https://evil.example"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = e.post("/logout", cookie(), None, &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Another session's token does not do either.
    let (_, other_csrf) = e.login("vic", VIEWER_PW).await;
    let r = e
        .post("/logout", cookie(), Some(&me), &[("csrf", &other_csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Still logged in after all that.
    assert_eq!(e.get("/", Some(&admin)).await.status(), StatusCode::OK);
    // The login form needs its own token (and cookie) too.
    let r = e
        .post(
            "/login",
            None,
            Some(&me),
            &[("name", "ana"), ("password", ADMIN_PW), ("csrf", "guess")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The header form of the token works; the logout ends the session.
    let req = Request::post("/logout")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, &me)
        .header(header::COOKIE, e.session_cookie(&admin))
        .header("x-csrf-token", &csrf)
        .body(Body::empty())
        .unwrap();
    let r = e.send(req).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login?m=out");
    assert_eq!(
        e.get("/", Some(&admin)).await.status(),
        StatusCode::SEE_OTHER
    );
    e.audit_text(&["\"console.csrf_refused\"", "\"console.logout\""])
        .await;
}

#[tokio::test]
async fn idle_sessions_end_and_the_event_stream_does_not_keep_them_alive() {
    let e = env_with(Duration::from_millis(800)).await;
    let (s, _) = e.login("ana", ADMIN_PW).await;
    // Use keeps it alive.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(e.get("/", Some(&s)).await.status(), StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(900)).await;
    let r = e.get("/stations", Some(&s)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).contains("m=expired"), "{}", location(&r));
    assert_eq!(e.get("/", Some(&s)).await.status(), StatusCode::SEE_OTHER);
    // The event stream is not use.
    let (s, _) = e.login("ana", ADMIN_PW).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(e.get("/events", Some(&s)).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        e.get("/api/status", Some(&s)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    e.audit_text(&["\"console.session_expired\"", "\"reason\":\"idle\""])
        .await;
}

#[tokio::test]
async fn changing_or_removing_an_account_ends_its_sessions() {
    let e = env().await;
    let (s, _) = e.login("vic", VIEWER_PW).await;
    let (a, _) = e.login("ana", ADMIN_PW).await;
    assert_eq!(e.get("/", Some(&s)).await.status(), StatusCode::OK);
    let file = e.console.settings.users_file.clone();
    users::passwd(&file, "vic", "vic's new long password").unwrap();
    let r = e.get("/", Some(&s)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).contains("m=revoked"));
    assert_eq!(
        e.try_login("vic", VIEWER_PW).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (s, _) = e.login("vic", "vic's new long password").await;
    users::remove(&file, "vic").unwrap();
    assert_eq!(e.get("/", Some(&s)).await.status(), StatusCode::SEE_OTHER);
    // The admin's session is untouched.
    assert_eq!(e.get("/", Some(&a)).await.status(), StatusCode::OK);
    e.audit_text(&["\"console.session_revoked\""]).await;
}

#[tokio::test]
async fn results_list_hits_and_every_view_of_a_result_or_its_data_is_audited() {
    let e = env().await;
    let id = e.hit_capture().await;
    let (admin, _) = e.login("ana", ADMIN_PW).await;
    // The feed follows the audit log: the capture shows up within a second or so.
    let mut list = String::new();
    for _ in 0..40 {
        list = body_text(e.get("/results", Some(&admin)).await).await;
        if list.contains(&id.to_string()[..8]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(list.contains("<tr class=hit>"), "{list}");
    assert!(list.contains("P001") && list.contains("desk-1"), "{list}");
    let page = body_text(e.get(&format!("/results/{id}"), Some(&admin)).await).await;
    assert!(
        page.contains("id=hit-banner") && page.contains("61.5"),
        "{page}"
    );
    let images = body_text(e.get(&format!("/results/{id}/images"), Some(&admin)).await).await;
    assert!(images.contains("minutiae template"), "{images}");
    let text = e
        .audit_text(&[
            "\"console.results_listed\"",
            "\"console.result_viewed\"",
            "\"console.images_viewed\"",
        ])
        .await;
    let viewed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"console.images_viewed\""))
        .collect();
    assert_eq!(viewed.len(), 1);
    assert!(viewed[0].contains("\"actor\":\"user:ana\"") && viewed[0].contains(&id.to_string()));
    // The audit page finds them, filtered.
    let page = body_text(
        e.get("/audit?action=console.images_viewed", Some(&admin))
            .await,
    )
    .await;
    assert!(
        page.contains(&id.to_string()) && !page.contains(">capture.accepted<"),
        "{page}"
    );
    assert!(crate::audit::verify(&e.dir.path().join("audit.log")).is_ok());
}

#[tokio::test]
async fn metrics_listener_serves_metrics_health_and_status_without_login() {
    let e = env().await;
    let p = e.console.pipeline.clone();
    p.shared.metrics.local_result(Decision::Hit, 40);
    p.shared.metrics.local_result(Decision::NoHit, 3);
    p.shared.metrics.local_stage("match", 600);
    let app = crate::metrics::router(p);
    let get = |path: &'static str| {
        let app = app.clone();
        async move {
            app.oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap()
        }
    };
    let r = get("/metrics").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .contains("openmetrics")
    );
    let text = body_text(r).await;
    for name in [
        "hotspot_captures_received_total 0",
        "hotspot_captures_stored_total 0",
        "hotspot_captures_rejected_total 0",
        "hotspot_local_results_total{decision=\"hit\"} 1",
        "hotspot_local_results_total{decision=\"no_hit\"} 1",
        "hotspot_local_match_latency_seconds_bucket{le=\"0.05\"} 2",
        "hotspot_local_match_latency_seconds_count 2",
        "hotspot_local_stage_seconds_bucket{le=\"0.5\",stage=\"match\"} 0",
        "hotspot_local_stage_seconds_bucket{le=\"1.0\",stage=\"match\"} 1",
        "hotspot_local_stage_seconds_count{stage=\"probe\"} 0",
        "hotspot_central_results_total 0",
        "hotspot_backlog_captures 0",
        "hotspot_backlog_oldest_age_seconds 0",
        "hotspot_uplink_state{state=\"down\"} 1",
        "hotspot_uplink_state{state=\"up\"} 0",
        "hotspot_watchlist_version 0",
        "hotspot_watchlist_subjects 0",
        "hotspot_watchlist_stale",
        "hotspot_disk_used_ratio",
        "hotspot_stations_online 0",
        "hotspot_console_logins_total{outcome=\"failed\"} 0",
        "hotspot_contributions_today{kind=\"enrolled\"} 0",
        "hotspot_contributions_today{kind=\"pending\"} 0",
        "hotspot_mqtt_connected 0",
        "# EOF",
    ] {
        assert!(text.contains(name), "{name} missing in:\n{text}");
    }
    assert_eq!(
        get("/healthz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let r = get("/api/status").await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body_text(r).await).unwrap();
    assert_eq!(v["site_id"], "site-t");
    assert_eq!(v["backlog"], 0);
}

#[tokio::test]
async fn the_console_serves_https_with_its_generated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for f in ["ca.pem", "gw.pem", "gw.key"] {
        std::fs::write(d.join(f), "x").unwrap();
    }
    let text = format!(
        "[site]\nid = \"post-1\"\n[broker]\nmode = \"embedded\"\nlisten = \"127.0.0.1:1883\"\nallow_anonymous_stations = true\n\
         [uplink]\ncentral = \"127.0.0.1:4433\"\nca = \"{d}/ca.pem\"\ncert = \"{d}/gw.pem\"\nkey = \"{d}/gw.key\"\n\
         [storage]\ndir = \"{d}/state\"\n[console]\nlisten = \"127.0.0.1:0\"\n\
         [watchlist]\ntrusted_keys = [\"ed25519:O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=\"]\n",
        d = d.display()
    );
    let cfg = crate::config::Config::parse(&text).unwrap();
    std::fs::create_dir_all(&cfg.storage.dir).unwrap();
    let first = super::tls::load_or_create(&cfg).unwrap();
    assert!(first.generated);
    let key = cfg.storage.dir.join(super::tls::KEY_FILE);
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = super::tls::load_or_create(&cfg).unwrap();
    assert!(!again.generated);
    assert_eq!(first.fingerprint, again.fingerprint, "reused, not remade");

    let pipeline = test_pipeline(&cfg.storage.dir);
    let server = super::ConsoleServer::bind(&cfg, pipeline).await.unwrap();
    let addr = server.addr;
    let mut tasks = tokio::task::JoinSet::new();
    server.spawn(&mut tasks);

    // A client that trusts exactly this certificate.
    let pem = std::fs::read(cfg.storage.dir.join(super::tls::CERT_FILE)).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject as _;
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    tls.write_all(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.contains("Hotspot Edge console") && out.contains("No account exists yet"),
        "{out}"
    );
    // Plain HTTP on the console port gets nowhere.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut buf)).await;
    assert!(
        !String::from_utf8_lossy(&buf).contains("HTTP/1."),
        "plain HTTP answered"
    );
    tasks.abort_all();
}

#[tokio::test]
async fn stations_page_shows_each_stations_credential() {
    let e = env_with(Duration::from_secs(600)).await;
    let (viewer, _) = e.login("vic", VIEWER_PW).await;
    let page = body_text(e.get("/stations", Some(&viewer)).await).await;
    assert!(page.contains("No station"), "{page}");
    let ca = crate::stations::StationCa::open_or_create(&e.dir.path().join("stations")).unwrap();
    ca.issue("desk-7").unwrap();
    ca.issue("desk-8").unwrap();
    ca.revoke("desk-8").unwrap();
    let page = body_text(e.get("/stations", Some(&viewer)).await).await;
    let row = |id: &str| {
        let start = page.find(&format!("<td>{id}</td>")).unwrap();
        page[start..start + page[start..].find("</tr>").unwrap()].to_owned()
    };
    assert!(row("desk-7").contains(">active<"), "{}", row("desk-7"));
    assert!(row("desk-8").contains(">revoked<"), "{}", row("desk-8"));
}
