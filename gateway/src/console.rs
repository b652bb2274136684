//! The local web console: HTTPS (rustls), local accounts with roles, sessions, CSRF protection, login rate
//! limiting, server-rendered pages with live charts. `docs/console.md` is the user's guide.
//!
//! # Parts
//! - [`tls`]: the certificate (configured, or self-signed at first start) and the accept loop.
//! - [`users`]: accounts (argon2id), the `hotspot-gateway user ...` commands.
//! - [`sessions`]: the session table and the login rate limiter.
//! - [`auth`]: the session/role extractors, the CSRF and Origin guard, security headers.
//! - [`feed`]: recent captures and results, followed from the audit log; the audit page's search.
//! - [`samples`]: the chart samples and the `/events` stream.
//! - `pages`: the HTML pages; `assets`: the style sheet and the script.
//!
//! # Routes and roles
//! | route | who |
//! |---|---|
//! | `GET /login`, `POST /login`, `GET /healthz`, `GET /static/*` | anybody |
//! | `POST /logout` | any session |
//! | `GET /`, `/stations`, `/results`, `/results/{id}`, `/plugins`, `/api/status`, `/events` | viewer, admin |
//! | `GET /results/{id}/images`, `/audit`, `/settings`, `/users` | admin |
//!
//! Every request that is not GET or HEAD passes [`auth::csrf_guard`]. Logins (`console.login`,
//! `console.login_failed`, `console.login_locked`), logouts, session ends, result and image views and audit log
//! views are recorded in the audit log.

mod assets;
pub mod auth;
pub mod feed;
mod pages;
pub mod samples;
pub mod sessions;
pub mod tls;
pub mod users;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Serialize;
use tracing::{info, warn};

use crate::config::Config;
use crate::pipeline::{Pipeline, now_ms};
use crate::shared::Snapshot;
use sessions::{Lookup, Session};

/// What `/api/status` returns (console, viewer or admin; metrics listener, no login). No biometric data.
#[derive(Debug, Serialize)]
pub struct ConsoleStatus {
    /// Counters and link states.
    #[serde(flatten)]
    pub shared: Snapshot,
    /// Installed watchlist version.
    pub watchlist_version: u64,
    /// Watchlist subjects.
    pub watchlist_subjects: usize,
    /// Captures waiting for central.
    pub backlog: u64,
    /// Age of the oldest of them, seconds.
    pub oldest_backlog_age_s: Option<u64>,
    /// Today's data-contribution counters.
    pub contributions: hotspot_device_protocols::station::ContributionStats,
    /// Watchlist freshness.
    pub watchlist: hotspot_device_protocols::station::WatchlistFreshness,
    /// Active alarms (storage and `watchlist_stale`).
    pub alarms: Vec<String>,
    /// Alerts policy plugins routed to the console, newest last.
    pub alerts_recent: Vec<serde_json::Value>,
    /// Installed plugins.
    pub plugins: Vec<hotspot_device_protocols::uplink::PluginVersion>,
}

/// The current status (reads the store: prefer a blocking thread).
pub fn status(p: &Pipeline) -> ConsoleStatus {
    let w = p.watchlist.current();
    let now = now_ms();
    ConsoleStatus {
        shared: p.shared.snapshot(),
        watchlist_version: w.version,
        watchlist_subjects: w.subjects,
        backlog: p.store.backlog(),
        oldest_backlog_age_s: p
            .store
            .oldest_backlog_ms()
            .map(|t| u64::try_from(now.saturating_sub(t) / 1000).unwrap_or(0)),
        contributions: p.contribution_stats(),
        watchlist: crate::status::freshness(p),
        alarms: p.alarms(),
        alerts_recent: p
            .console_alerts
            .lock()
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default(),
        plugins: p.plugins.installed(),
    }
}

/// `/healthz`: 200 when the gateway is connected to its broker (it can take captures) and healthy (see
/// `systemd::healthy`), 503 otherwise. Served without login on the console and the metrics listener.
pub async fn health(p: &Pipeline) -> (StatusCode, Json<serde_json::Value>) {
    let ok =
        p.shared.mqtt_connected.load(Ordering::Relaxed) && crate::systemd::healthy(p).await.is_ok();
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "degraded" },
        "mqtt_connected": ok,
        "uplink": p.shared.uplink(),
    });
    (code, Json(body))
}

/// The console's settings, from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Idle timeout of a session.
    pub session_idle: Duration,
    /// Absolute lifetime of a session.
    pub session_max: Duration,
    /// Failed logins that lock.
    pub login_max_failures: u32,
    /// Lock duration (and failure window).
    pub login_lockout: Duration,
    /// Chart sample interval.
    pub sample_interval: Duration,
    /// Chart history.
    pub history: Duration,
    /// The accounts file.
    pub users_file: PathBuf,
    /// The audit log.
    pub audit_file: PathBuf,
    /// The effective configuration, secrets redacted (settings page).
    pub config_view: String,
    /// SHA-256 of the console's certificate.
    pub cert_fingerprint: String,
    /// The certificate file.
    pub cert_path: PathBuf,
    /// The station credential registry (`crate::stations`), for the stations page.
    pub stations_registry: PathBuf,
}

/// The configuration's `Debug` text with the values of keys that look secret replaced.
fn redact(text: &str) -> String {
    text.lines()
        .map(|l| {
            let key = l
                .trim_start()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_lowercase();
            let secret = ["password", "secret", "token", "passphrase"]
                .iter()
                .any(|s| key.contains(s));
            match l.split_once(": ") {
                Some((k, _)) if secret => format!("{k}: <redacted>,"),
                _ => l.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl Settings {
    /// From the configuration.
    pub fn from_config(cfg: &Config) -> Self {
        let c = &cfg.console;
        Self {
            session_idle: Duration::from_secs(c.session_idle_s),
            session_max: Duration::from_secs(c.session_max_s),
            login_max_failures: c.login_max_failures,
            login_lockout: Duration::from_secs(c.login_lockout_s),
            sample_interval: Duration::from_secs(c.sample_interval_s.max(1)),
            history: Duration::from_secs(c.history_hours * 3600),
            users_file: cfg.storage.dir.join(users::USERS_FILE),
            audit_file: cfg.audit_file(),
            config_view: redact(&format!("{cfg:#?}")),
            cert_fingerprint: String::new(),
            cert_path: PathBuf::new(),
            stations_registry: crate::stations::StationCa::dir_for(&cfg.storage.dir)
                .join("stations.json"),
        }
    }

    fn history_samples(&self) -> usize {
        usize::try_from(self.history.as_secs() / self.sample_interval.as_secs().max(1))
            .unwrap_or(1)
            .max(1)
    }
}

/// Outcome of checking a session token.
#[derive(Debug, Clone)]
pub enum SessionCheck {
    /// A live session of an account that still exists with the same role and password.
    Valid(Session),
    /// No session: `none` (unknown token), `expired` (idle or lifetime) or `revoked` (account changed).
    Ended(&'static str),
}

/// The console's shared state.
#[derive(Debug)]
pub struct Console {
    /// The gateway.
    pub pipeline: Arc<Pipeline>,
    /// Settings.
    pub settings: Settings,
    /// Accounts.
    pub users: users::UserStore,
    /// Sessions.
    pub sessions: sessions::Sessions,
    /// Login rate limiter.
    pub limiter: sessions::LoginLimiter,
    /// Recent activity from the audit log.
    pub feed: Arc<feed::Feed>,
    /// Chart samples.
    pub samples: Arc<samples::Samples>,
}

impl Console {
    /// The console state for `pipeline`.
    pub fn new(pipeline: Arc<Pipeline>, settings: Settings) -> Arc<Self> {
        Arc::new(Self {
            users: users::UserStore::new(settings.users_file.clone()),
            sessions: sessions::Sessions::new(settings.session_idle, settings.session_max),
            limiter: sessions::LoginLimiter::new(
                settings.login_max_failures,
                settings.login_lockout,
            ),
            feed: feed::Feed::new(settings.audit_file.clone()),
            samples: samples::Samples::new(settings.history_samples()),
            pipeline,
            settings,
        })
    }

    /// Records an event in the audit log.
    pub fn audit(
        &self,
        actor: impl Into<String>,
        action: &str,
        subject: impl Into<String>,
        detail: serde_json::Value,
    ) {
        self.pipeline.audit.record(actor, action, subject, detail);
    }

    /// Checks a session token: the session must be live and its account unchanged (same role, same password).
    /// `touch` counts the request as use. An ended session is removed and audited.
    pub fn check_session(&self, token: &str, touch: bool) -> SessionCheck {
        match self.sessions.lookup(token, touch) {
            Lookup::Unknown => SessionCheck::Ended("none"),
            Lookup::Expired(s, why) => {
                self.audit(
                    format!("user:{}", s.user),
                    "console.session_expired",
                    s.user.clone(),
                    serde_json::json!({ "reason": why }),
                );
                SessionCheck::Ended("expired")
            }
            Lookup::Valid(s) => {
                let db = self.users.current();
                let same = db
                    .get(&s.user)
                    .is_some_and(|u| u.role == s.role && users::hash_tag(&u.hash) == s.pw_tag);
                if same {
                    SessionCheck::Valid(s)
                } else {
                    self.sessions.remove(token);
                    self.audit(
                        format!("user:{}", s.user),
                        "console.session_revoked",
                        s.user.clone(),
                        serde_json::json!({ "reason": "account removed or changed" }),
                    );
                    SessionCheck::Ended("revoked")
                }
            }
        }
    }

    /// The background tasks: following the audit log, sampling, ending idle sessions.
    pub fn spawn_tasks(self: &Arc<Self>, tasks: &mut tokio::task::JoinSet<()>) {
        tasks.spawn(self.feed.clone().follow());
        tasks.spawn(
            self.samples
                .clone()
                .run(self.pipeline.clone(), self.settings.sample_interval),
        );
        let me = self.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                for (s, why) in me.sessions.sweep() {
                    me.audit(
                        format!("user:{}", s.user),
                        "console.session_expired",
                        s.user.clone(),
                        serde_json::json!({ "reason": why }),
                    );
                }
            }
        });
    }
}

/// The console's routes (see the module documentation for who may use which).
pub fn router(c: Arc<Console>) -> axum::Router {
    axum::Router::new()
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/healthz", get(pages::healthz))
        .route("/static/console.css", get(assets::css))
        .route("/static/console.js", get(assets::js))
        .route("/", get(pages::dashboard))
        .route("/stations", get(pages::stations))
        .route("/results", get(pages::results))
        .route("/results/{id}", get(pages::result))
        .route("/results/{id}/images", get(pages::images))
        .route("/plugins", get(pages::plugins))
        .route("/audit", get(pages::audit))
        .route("/settings", get(pages::settings))
        .route("/users", get(pages::users))
        .route("/api/status", get(pages::api_status))
        .route("/events", get(samples::events))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(
            c.clone(),
            auth::csrf_guard,
        ))
        .layer(axum::middleware::from_fn(auth::security_headers))
        .layer(axum::extract::DefaultBodyLimit::max(auth::FORM_LIMIT))
        .with_state(c)
}

/// A bound console, not yet serving.
#[derive(Debug)]
pub struct ConsoleServer {
    listener: tokio::net::TcpListener,
    tls: tls::TlsMaterial,
    /// The address actually bound.
    pub addr: SocketAddr,
    /// The console's state.
    pub console: Arc<Console>,
}

impl ConsoleServer {
    /// Loads (or makes) the certificate and binds `console.listen`.
    pub async fn bind(cfg: &Config, pipeline: Arc<Pipeline>) -> std::io::Result<Self> {
        let c = cfg.clone();
        let tls = tokio::task::spawn_blocking(move || tls::load_or_create(&c))
            .await
            .map_err(std::io::Error::other)?
            .map_err(std::io::Error::other)?;
        let listener = tokio::net::TcpListener::bind(&cfg.console.listen).await?;
        let addr = listener.local_addr()?;
        let mut settings = Settings::from_config(cfg);
        settings.cert_fingerprint = tls.fingerprint.clone();
        settings.cert_path = tls.cert_path.clone();
        let console = Console::new(pipeline, settings);
        if console.users.current().users.is_empty() {
            warn!(
                "no console account yet: make the first admin with `hotspot-gateway user add --config FILE \
                 --name NAME --role admin`"
            );
        }
        Ok(Self {
            listener,
            tls,
            addr,
            console,
        })
    }

    /// Serves the console (and its background tasks) in `tasks`.
    pub fn spawn(self, tasks: &mut tokio::task::JoinSet<()>) {
        tls::log_ready(self.addr, &self.tls);
        self.console.spawn_tasks(tasks);
        let app = router(self.console.clone());
        tasks.spawn(tls::serve(self.listener, self.tls.config, app));
        info!(console = %self.addr, "console ready");
    }
}
