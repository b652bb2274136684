//! The console's pages: server-rendered HTML (every value escaped), one small script for the live dashboard.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use base64::Engine as _;
use hotspot_device_protocols::station::{CaptureResult, FingerFormat, UplinkState};
use serde::Deserialize;
use uuid::Uuid;

use super::auth::{Admin, Authed, RemoteIp, cookie, urlencode};
use super::feed::{AuditFilter, RECENT_MAX, Recent, parse_when};
use super::sessions::{LOGIN_COOKIE, SESSION_COOKIE, random_token};
use super::users::{hash_tag, verify_password, verify_unknown};
use super::{Console, ConsoleStatus, SessionCheck, status};

/// HTML-escapes text for element content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const NAV: [(&str, &str, bool); 7] = [
    ("/", "Dashboard", false),
    ("/stations", "Stations", false),
    ("/results", "Results", false),
    ("/plugins", "Plugins", false),
    ("/audit", "Audit log", true),
    ("/users", "Users", true),
    ("/settings", "Settings", true),
];

fn head(title: &str) -> String {
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <title>{} · Hotspot Edge</title><link rel=stylesheet href=\"/static/console.css\">\
         <script src=\"/static/console.js\" defer></script></head>",
        esc(title)
    )
}

fn layout(title: &str, a: &Authed, active: &str, body: &str) -> Html<String> {
    let nav: String = NAV
        .iter()
        .filter(|(_, _, admin)| !admin || a.is_admin())
        .map(|(href, label, _)| {
            let on = if *href == active { " class=on" } else { "" };
            format!("<a href=\"{href}\"{on}>{label}</a>")
        })
        .collect();
    Html(format!(
        "{}<body><header><span class=brand>Hotspot Edge</span><nav>{nav}</nav>\
         <span class=who><span id=whoami>{} ({})</span>\
         <form method=post action=\"/logout\"><input type=hidden name=csrf value=\"{}\">\
         <button type=submit id=logout>Log out</button></form></span></header>\
         <main><h1>{}</h1>{body}</main></body></html>",
        head(title),
        esc(&a.user),
        a.role.as_str(),
        esc(&a.csrf),
        esc(title),
    ))
}

/// 403 for a viewer on an admin page.
pub fn forbidden(a: &Authed) -> Response {
    (
        StatusCode::FORBIDDEN,
        layout(
            "Admins only",
            a,
            "",
            "<p class=\"msg err\">This page is for admins. Ask an admin if you need it.</p>",
        ),
    )
        .into_response()
}

/// 404 for anything else.
pub async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

fn badge(decision: &str) -> String {
    let label = match decision {
        "hit" => "HIT",
        "no_hit" => "no hit",
        "inconclusive" => "inconclusive",
        "rejected" => "rejected",
        other => other,
    };
    format!(
        "<span class=\"badge {}\">{}</span>",
        esc(decision),
        esc(label)
    )
}

/// `2026-11-29T10:00:00.123Z` -> `2026-11-29 10:00:00`.
fn when(rfc: &str) -> String {
    let t = rfc.replace('T', " ");
    esc(t.get(..19).unwrap_or(&t))
}

fn when_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map_or_else(|| "-".to_owned(), |t| when(&t))
}

fn duration(s: u64) -> String {
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=172_799 => format!("{:.1} h", s as f64 / 3600.0),
        _ => format!("{} days", s / 86_400),
    }
}

fn bytes_per_s(b: u64) -> String {
    match b {
        0..=9_999 => format!("{b} B/s"),
        10_000..=9_999_999 => format!("{:.0} kB/s", b as f64 / 1000.0),
        _ => format!("{:.1} MB/s", b as f64 / 1e6),
    }
}

/// The dashboard's fields `(element id, text, alert)`, for the page and for the `status` events.
pub fn fields(s: &ConsoleStatus) -> Vec<(&'static str, String, bool)> {
    let sh = &s.shared;
    let online = sh.stations.values().filter(|v| **v == "online").count();
    let (watch_age, watch_alert) = match s.watchlist.age_s {
        None => ("never confirmed by central".to_owned(), true),
        Some(a) if s.watchlist.stale => (
            format!(
                "STALE: confirmed {} ago (limit {})",
                duration(a),
                duration(s.watchlist.max_age_s)
            ),
            true,
        ),
        Some(a) => (format!("confirmed current {} ago", duration(a)), false),
    };
    let plugins = if s.plugins.is_empty() {
        "none".to_owned()
    } else {
        s.plugins
            .iter()
            .map(|p| format!("{} v{}", p.name, p.version))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let alerts = match s.alerts_recent.last() {
        None => ("no plugin alerts".to_owned(), false),
        Some(a) => (
            format!(
                "alert: {} ({} recent)",
                a["message"].as_str().unwrap_or_default(),
                s.alerts_recent.len()
            ),
            true,
        ),
    };
    let c = &s.contributions;
    vec![
        (
            "f-uplink",
            match sh.uplink {
                UplinkState::Up => "UP",
                UplinkState::Degraded => "DEGRADED",
                UplinkState::Down => "DOWN",
            }
            .to_owned(),
            sh.uplink != UplinkState::Up,
        ),
        (
            "f-link",
            sh.link.map_or("not connected".to_owned(), |l| {
                format!(
                    "RTT {} ms · loss {:.1}% · {}",
                    l.rtt_ms,
                    l.loss_percent,
                    bytes_per_s(l.goodput_bytes_per_s)
                )
            }),
            false,
        ),
        ("f-backlog", format!("{} waiting", s.backlog), false),
        (
            "f-backlog-age",
            s.oldest_backlog_age_s
                .map_or("nothing waiting".to_owned(), |a| {
                    format!("oldest {}", duration(a))
                }),
            s.oldest_backlog_age_s.is_some_and(|a| a > 3600),
        ),
        (
            "f-watchlist",
            format!(
                "version {} · {} subjects",
                s.watchlist_version, s.watchlist_subjects
            ),
            s.watchlist_version == 0,
        ),
        ("f-watchlist-age", watch_age, watch_alert),
        (
            "f-stations",
            format!("{online} online of {}", sh.stations.len()),
            false,
        ),
        (
            "f-broker",
            if sh.mqtt_connected {
                "broker connected"
            } else {
                "broker DISCONNECTED"
            }
            .to_owned(),
            !sh.mqtt_connected,
        ),
        (
            "f-disk",
            format!("{:.1}% of quota", sh.disk_used_percent),
            sh.disk_used_percent >= 80.0,
        ),
        (
            "f-alarms",
            if s.alarms.is_empty() {
                "no alarms".to_owned()
            } else {
                format!("ALARMS: {}", s.alarms.join(", "))
            },
            !s.alarms.is_empty(),
        ),
        (
            "f-captures",
            format!(
                "received {} · stored {} · rejected {}",
                sh.captures_received, sh.captures_accepted, sh.captures_rejected
            ),
            false,
        ),
        (
            "f-results",
            format!(
                "results: local {} · central {}",
                sh.local_results, sh.central_results
            ),
            false,
        ),
        ("f-plugins", plugins, false),
        ("f-alerts", alerts.0, alerts.1),
        (
            "f-contrib",
            format!(
                "enrolled {} · forwarded {} · refused {} · pending {}",
                c.enrolled, c.forwarded, c.rejected_quality, c.pending
            ),
            false,
        ),
        ("f-contrib-day", format!("day {} (UTC)", c.day), false),
    ]
}

async fn status_now(c: &Console) -> Option<ConsoleStatus> {
    let p = c.pipeline.clone();
    tokio::task::spawn_blocking(move || status(&p)).await.ok()
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "status not available\n").into_response()
}

/// `GET /healthz` (no login).
pub async fn healthz(State(c): State<Arc<Console>>) -> impl IntoResponse {
    super::health(&c.pipeline).await
}

/// `GET /api/status`.
pub async fn api_status(State(c): State<Arc<Console>>, _a: Authed) -> Response {
    match status_now(&c).await {
        Some(s) => axum::Json(s).into_response(),
        None => unavailable(),
    }
}

fn activity_line(r: &Recent) -> String {
    let what = match (&r.rejected, &r.local, &r.central) {
        (Some(_), ..) => "capture rejected".to_owned(),
        (None, _, Some(c)) => format!("central result: {}", c.decision),
        (None, Some(l), None) => format!("local result: {}", l.decision),
        (None, None, None) => "capture received".to_owned(),
    };
    let id: String = r
        .capture_id
        .map(|u| u.to_string().chars().take(8).collect())
        .unwrap_or_else(|| "--------".into());
    let cls = if r.is_hit() { " class=hit" } else { "" };
    format!(
        "<li{cls} data-capture=\"{id}\">{}  {}  {id}  {}</li>",
        when(&r.at),
        esc(if r.station.is_empty() {
            "?"
        } else {
            &r.station
        }),
        esc(&what)
    )
}

/// `GET /`.
pub async fn dashboard(State(c): State<Arc<Console>>, a: Authed) -> Response {
    let Some(s) = status_now(&c).await else {
        return unavailable();
    };
    let f: BTreeMap<&str, (String, bool)> = fields(&s)
        .into_iter()
        .map(|(k, t, al)| (k, (t, al)))
        .collect();
    let v = |id: &str| {
        let (t, al) = f.get(id).cloned().unwrap_or_default();
        let cls = if al { " class=alert" } else { "" };
        format!("<span id={id}{cls}>{}</span>", esc(&t))
    };
    let cards = [
        ("Uplink", "f-uplink", "f-link"),
        ("Backlog to central", "f-backlog", "f-backlog-age"),
        ("Watchlist", "f-watchlist", "f-watchlist-age"),
        ("Stations", "f-stations", "f-broker"),
        ("Disk", "f-disk", "f-alarms"),
        ("Captures", "f-captures", "f-results"),
        ("Plugins", "f-plugins", "f-alerts"),
        ("Contributions today", "f-contrib", "f-contrib-day"),
    ]
    .iter()
    .map(|(title, main, sub)| {
        format!(
            "<div class=card><h3>{title}</h3><div class=v>{}</div><div class=s>{}</div></div>",
            v(main),
            v(sub)
        )
    })
    .collect::<String>();
    let recent = c.feed.recent(15);
    let activity = if recent.is_empty() {
        "<li id=activity-empty class=muted>nothing yet</li>".to_owned()
    } else {
        recent.iter().map(activity_line).collect()
    };
    let hours = c.settings.history.as_secs() / 3600;
    let body = format!(
        "<div id=dashboard data-hours=\"{hours}\"><p class=muted id=live>site {}</p>\
         <div class=cards>{cards}</div>\
         <div class=charts>\
         <figure><figcaption>Backlog to central (captures), up to the last {hours} h</figcaption>\
         <svg class=chart id=chart-backlog viewBox=\"0 0 600 150\" role=img aria-label=\"backlog chart\"></svg></figure>\
         <figure><figcaption>Link round-trip time (ms)</figcaption>\
         <svg class=chart id=chart-rtt viewBox=\"0 0 600 150\" role=img aria-label=\"RTT chart\"></svg></figure>\
         <figure><figcaption>Link packet loss (%)</figcaption>\
         <svg class=chart id=chart-loss viewBox=\"0 0 600 150\" role=img aria-label=\"loss chart\"></svg></figure>\
         </div><h2>Recent activity</h2><ul class=activity id=activity>{activity}</ul></div>",
        esc(&s.shared.site_id)
    );
    layout("Dashboard", &a, "/", &body).into_response()
}

/// `GET /stations`.
pub async fn stations(State(c): State<Arc<Console>>, a: Authed) -> Response {
    let presence = c.pipeline.shared.snapshot().stations;
    let last = c.feed.last_captures();
    // Credentials: the newest certificate issued to each station (`hotspot-gateway station add|revoke`).
    let registry = c.settings.stations_registry.clone();
    let issued = tokio::task::spawn_blocking(move || {
        if registry.exists() {
            crate::stations::read_registry(&registry).map(|r| r.certificates)
        } else {
            Ok(Vec::new())
        }
    })
    .await;
    let (certs, registry_note) = match issued {
        Ok(Ok(certs)) => (certs, String::new()),
        Ok(Err(e)) => (
            Vec::new(),
            format!(
                "<p class=bad>Station credentials unreadable: {}</p>",
                esc(&e.to_string())
            ),
        ),
        Err(e) => (
            Vec::new(),
            format!(
                "<p class=bad>Station credentials unreadable: {}</p>",
                esc(&e.to_string())
            ),
        ),
    };
    let now = time::OffsetDateTime::now_utc();
    let mut newest: std::collections::BTreeMap<&str, &crate::stations::IssuedCert> =
        std::collections::BTreeMap::new();
    for cert in &certs {
        newest.insert(cert.station_id.as_str(), cert); // issue order: the last one wins
    }
    let mut ids: Vec<&str> = presence
        .keys()
        .chain(last.keys())
        .map(String::as_str)
        .chain(newest.keys().copied())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let rows: String = ids
        .iter()
        .map(|id| {
            let p = presence.get(*id).copied().unwrap_or("unknown");
            let credential = newest.get(id).map_or_else(
                || "<span class=muted>none issued</span>".to_owned(),
                |cert| {
                    let status = cert.status(now);
                    let until = match &cert.revoked_at {
                        Some(at) => format!("revoked {}", when(at)),
                        None => format!("until {}", when(&cert.not_after)),
                    };
                    format!(
                        "<span class=\"badge {status}\">{status}</span> serial {} <span class=muted>{}</span>",
                        esc(cert.serial.get(..12).unwrap_or(&cert.serial)),
                        until
                    )
                },
            );
            format!(
                "<tr><td>{}</td><td><span class=\"badge {p}\">{p}</span></td><td>{}</td><td>{credential}</td></tr>",
                esc(id),
                last.get(*id).map_or_else(|| "-".to_owned(), |t| when(t))
            )
        })
        .collect();
    let body = if ids.is_empty() {
        format!(
            "{registry_note}<p class=muted>No station has connected, sent a capture or been issued a credential yet.</p>"
        )
    } else {
        format!(
            "{registry_note}<div class=table-wrap><table id=stations><thead><tr><th>Station</th><th>Presence</th>\
             <th>Last capture</th><th>Credential</th></tr></thead><tbody>{rows}</tbody></table></div>\
             <p class=muted>Presence comes from the stations' MQTT presence messages; last capture from the \
             audit log since the gateway started (and the end of the log before that); credentials from the \
             station certificate registry (issue and revoke them with <code>hotspot-gateway station add|revoke</code>).</p>"
        )
    };
    layout("Stations", &a, "/stations", &body).into_response()
}

/// `?hits=1`: hits only.
#[derive(Debug, Deserialize)]
pub struct ResultsQuery {
    hits: Option<String>,
}

/// `GET /results`: recent captures and their answers (metadata only). Audited.
pub async fn results(
    State(c): State<Arc<Console>>,
    a: Authed,
    Query(q): Query<ResultsQuery>,
) -> Response {
    let hits_only = q.hits.as_deref() == Some("1");
    let rows: Vec<Recent> = c
        .feed
        .recent(RECENT_MAX)
        .into_iter()
        .filter(|r| !hits_only || r.is_hit())
        .take(200)
        .collect();
    c.audit(
        a.actor(),
        "console.results_listed",
        "",
        serde_json::json!({ "count": rows.len(), "hits_only": hits_only, "remote": a.remote.to_string() }),
    );
    let out = |o: &Option<super::feed::Outcome>| {
        o.as_ref().map_or_else(
            || "<span class=muted>-</span>".to_owned(),
            |o| badge(&o.decision),
        )
    };
    let table: String = rows
        .iter()
        .map(|r| {
            let id = r.capture_id.map(|u| u.to_string()).unwrap_or_default();
            let short: String = id.chars().take(8).collect();
            let link = if id.is_empty() {
                "-".to_owned()
            } else {
                format!("<a href=\"/results/{id}\">{short}</a>")
            };
            let local = match &r.rejected {
                Some(why) => format!("<span class=\"badge rejected\" title=\"{}\">rejected</span>", esc(why)),
                None => out(&r.local),
            };
            let top = r
                .local
                .iter()
                .chain(r.central.iter())
                .find_map(|o| o.candidates.first())
                .map_or_else(String::new, |s| esc(s));
            let cls = if r.is_hit() { " class=hit" } else { "" };
            format!(
                "<tr{cls}><td>{}</td><td>{link}</td><td>{}</td><td>{}</td><td>{local}</td><td>{}</td><td>{top}</td></tr>",
                when(&r.at),
                esc(&r.station),
                esc(&r.purpose),
                out(&r.central),
            )
        })
        .collect();
    let toggle = if hits_only {
        "<a href=\"/results\">show all</a>"
    } else {
        "<a href=\"/results?hits=1\" id=hits-only>hits only</a>"
    };
    let body = format!(
        "<p>{toggle} · newest first, the last {RECENT_MAX} captures at most · metadata only: biometric data \
         only on a result's page, for admins.</p>\
         <div class=table-wrap><table id=results><thead><tr><th>Received</th><th>Capture</th><th>Station</th>\
         <th>Purpose</th><th>Local</th><th>Central</th><th>Top candidate</th></tr></thead><tbody>{}</tbody>\
         </table></div>",
        if table.is_empty() {
            "<tr><td colspan=7 class=muted>no captures yet</td></tr>".to_owned()
        } else {
            table
        }
    );
    layout("Recent results", &a, "/results", &body).into_response()
}

fn result_table(title: &str, r: &CaptureResult) -> String {
    let cands: String = r
        .candidates
        .iter()
        .map(|c| format!("<li>{} (score {:.1})</li>", esc(&c.subject_id), c.score))
        .collect();
    format!(
        "<h2>{title}</h2><div class=table-wrap><table><tbody>\
         <tr><th>Decision</th><td>{}</td></tr><tr><th>Candidates</th><td><ul>{}</ul></td></tr>\
         <tr><th>Reason</th><td>{}</td></tr><tr><th>Watchlist / gallery version</th><td>{}</td></tr>\
         <tr><th>Latency</th><td>{} ms</td></tr></tbody></table></div>",
        badge(r.decision.as_str()),
        if cands.is_empty() {
            "<li class=muted>none</li>".to_owned()
        } else {
            cands
        },
        esc(r.reason.as_deref().unwrap_or("-")),
        r.watchlist_version,
        r.latency_ms
    )
}

/// `GET /results/{id}`: one capture's answers (metadata). Audited.
pub async fn result(State(c): State<Arc<Console>>, a: Authed, Path(id): Path<String>) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return (StatusCode::NOT_FOUND, "no such capture\n").into_response();
    };
    let store = c.pipeline.store.clone();
    let read = tokio::task::spawn_blocking(move || {
        (
            store.capture_record(id).ok().flatten(),
            store.result(id, false).ok().flatten(),
            store.result(id, true).ok().flatten(),
        )
    })
    .await;
    let Ok((rec, local, central)) = read else {
        return unavailable();
    };
    let recent = c.feed.find(id);
    if rec.is_none() && local.is_none() && central.is_none() && recent.is_none() {
        return (StatusCode::NOT_FOUND, "no such capture\n").into_response();
    }
    c.audit(
        a.actor(),
        "console.result_viewed",
        id.to_string(),
        serde_json::json!({ "remote": a.remote.to_string() }),
    );
    let mut rows = Vec::new();
    rows.push(("Capture", esc(&id.to_string())));
    if let Some(r) = &rec {
        rows.push(("Station", esc(&r.station_id)));
        rows.push(("Received", when_ms(r.received_at_ms)));
        rows.push((
            "Purpose",
            esc(serde_json::to_value(r.purpose)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .as_deref()
                .unwrap_or("-")),
        ));
        rows.push((
            "Confirmed by central",
            r.confirmed_at_ms
                .map_or_else(|| "not yet".to_owned(), when_ms),
        ));
        rows.push((
            "Biometric data",
            if r.has_payload() {
                "kept (encrypted)".to_owned()
            } else {
                "purged (retention)".to_owned()
            },
        ));
    } else if let Some(r) = &recent {
        rows.push(("Station", esc(&r.station)));
        rows.push(("Received", when(&r.at)));
        if let Some(why) = &r.rejected {
            rows.push(("Rejected", esc(why)));
        }
    }
    let info: String = rows
        .iter()
        .map(|(k, v)| format!("<tr><th>{k}</th><td>{v}</td></tr>"))
        .collect();
    let mut body =
        format!("<div class=table-wrap><table id=capture><tbody>{info}</tbody></table></div>");
    let hit = [&local, &central].iter().any(|r| {
        r.as_ref()
            .is_some_and(|r| r.result.decision.as_str() == "hit")
    });
    if hit {
        body.insert_str(
            0,
            "<p class=\"msg err\" id=hit-banner><strong>HIT</strong> on the watchlist.</p>",
        );
    }
    if let Some(l) = &local {
        body.push_str(&result_table("Local answer", &l.result));
    }
    if let Some(r) = &central {
        body.push_str(&result_table("Central answer", &r.result));
    }
    if a.is_admin() && rec.as_ref().is_some_and(|r| r.has_payload()) {
        body.push_str(&format!(
            "<p><a href=\"/results/{id}/images\" id=show-images>Show the biometric data</a> \
             (admins; every view is recorded in the audit log)</p>"
        ));
    }
    layout("Capture", &a, "/results", &body).into_response()
}

/// `GET /results/{id}/images` (admins): the capture's images, decoded on demand. Audited.
pub async fn images(
    State(c): State<Arc<Console>>,
    Admin(a): Admin,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return (StatusCode::NOT_FOUND, "no such capture\n").into_response();
    };
    let store = c.pipeline.store.clone();
    let Ok(read) = tokio::task::spawn_blocking(move || {
        let cap = store.capture(id).ok().flatten();
        cap.map(|(_, capture)| {
            let mut out = Vec::new();
            for f in &capture.fingers {
                let shown = match f.format {
                    FingerFormat::Wsq | FingerFormat::Png | FingerFormat::Tiff => {
                        hotspot_device_protocols::image::decode_finger_image(f.format, &f.data)
                            .and_then(|img| hotspot_device_protocols::image::encode_png(&img))
                            .map(|png| ("image/png", png))
                            .map_err(|e| e.to_string())
                    }
                    FingerFormat::Iso19794_2 | FingerFormat::Ansi378 => Err(format!(
                        "minutiae template ({}, {} bytes): no image",
                        f.format.as_str(),
                        f.data.len()
                    )),
                };
                out.push((format!("finger {}", f.position), shown));
            }
            if let Some(face) = &capture.face {
                let mime = match face.format {
                    hotspot_device_protocols::station::FaceFormat::Jpeg => "image/jpeg",
                    hotspot_device_protocols::station::FaceFormat::Png => "image/png",
                };
                out.push(("face".to_owned(), Ok((mime, face.data.clone()))));
            }
            out
        })
    })
    .await
    else {
        return unavailable();
    };
    let detail = match &read {
        Some(items) => serde_json::json!({
            "items": items.len(), "remote": a.remote.to_string(),
        }),
        None => serde_json::json!({ "purged_or_unknown": true, "remote": a.remote.to_string() }),
    };
    c.audit(a.actor(), "console.images_viewed", id.to_string(), detail);
    let body = match read {
        None => "<p class=msg>No biometric data is kept for this capture (purged after central's answer, or \
                 unknown).</p>"
            .to_owned(),
        Some(items) => {
            let figs: String = items
                .into_iter()
                .map(|(label, shown)| match shown {
                    Ok((mime, bytes)) => format!(
                        "<figure><figcaption>{}</figcaption><img alt=\"{}\" src=\"data:{mime};base64,{}\"></figure>",
                        esc(&label),
                        esc(&label),
                        base64::engine::general_purpose::STANDARD.encode(bytes)
                    ),
                    Err(why) => format!(
                        "<figure><figcaption>{}</figcaption><p class=muted>{}</p></figure>",
                        esc(&label),
                        esc(&why)
                    ),
                })
                .collect();
            format!(
                "<p class=muted>Capture {id}. This view is recorded in the audit log.</p>\
                 <div class=images id=images>{figs}</div>"
            )
        }
    };
    layout("Biometric data", &a, "/results", &body).into_response()
}

/// `GET /plugins`.
pub async fn plugins(State(c): State<Arc<Console>>, a: Authed) -> Response {
    let stats = c.pipeline.plugins.stats();
    let rows: String = stats
        .iter()
        .map(|p| {
            let health = if p.unhealthy {
                "<span class=alert>unhealthy</span>".to_owned()
            } else {
                "ok".to_owned()
            };
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} of {}</td><td>{}</td><td>{health}</td></tr>",
                esc(&p.name),
                p.world,
                p.version,
                p.calls,
                p.faults,
                p.recent.1,
                p.recent.0,
                p.rollbacks
            )
        })
        .collect();
    let alerts: String = c
        .pipeline
        .console_alerts
        .lock()
        .map(|q| q.iter().rev().cloned().collect::<Vec<_>>())
        .unwrap_or_default()
        .iter()
        .map(|al| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(al["station"].as_str().unwrap_or_default()),
                esc(al["severity"].as_str().unwrap_or_default()),
                esc(al["plugin"].as_str().unwrap_or_default()),
                esc(al["message"].as_str().unwrap_or_default()),
            )
        })
        .collect();
    let body = format!(
        "<div class=table-wrap><table id=plugins><thead><tr><th>Plugin</th><th>Kind</th><th>Version</th>\
         <th>Calls</th><th>Faults</th><th>Recent faults</th><th>Rollbacks</th><th>Health</th></tr></thead>\
         <tbody>{}</tbody></table></div>\
         <h2>Alerts routed to the console</h2><div class=table-wrap><table><thead><tr><th>Station</th>\
         <th>Severity</th><th>Plugin</th><th>Message</th></tr></thead><tbody>{}</tbody></table></div>",
        if rows.is_empty() {
            "<tr><td colspan=8 class=muted>no plugin installed</td></tr>".to_owned()
        } else {
            rows
        },
        if alerts.is_empty() {
            "<tr><td colspan=4 class=muted>none</td></tr>".to_owned()
        } else {
            alerts
        }
    );
    layout("Plugins", &a, "/plugins", &body).into_response()
}

/// The audit page's filters.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    before: Option<u64>,
}

/// Entries per audit page.
const AUDIT_PAGE: usize = 200;

/// `GET /audit` (admins): the audit log, newest first, with filters. Audited.
pub async fn audit(
    State(c): State<Arc<Console>>,
    Admin(a): Admin,
    Query(q): Query<AuditQuery>,
) -> Response {
    let (from, to) = (parse_when(&q.from), parse_when(&q.to));
    let mut bad = Vec::new();
    if !q.from.trim().is_empty() && from.is_none() {
        bad.push("from");
    }
    if !q.to.trim().is_empty() && to.is_none() {
        bad.push("to");
    }
    let filter = AuditFilter {
        actor: q.actor.clone(),
        action: q.action.clone(),
        subject: q.subject.clone(),
        from,
        to: to.map(|t| {
            // A date or a minute means "up to its end".
            if q.to.trim().len() <= 16 {
                t + time::Duration::seconds(if q.to.trim().len() <= 10 { 86_399 } else { 59 })
            } else {
                t
            }
        }),
        before_seq: q.before,
    };
    c.audit(
        a.actor(),
        "console.audit_viewed",
        "",
        serde_json::json!({
            "actor": q.actor, "action": q.action, "subject": q.subject, "from": q.from, "to": q.to,
            "remote": a.remote.to_string(),
        }),
    );
    let path = c.settings.audit_file.clone();
    let f2 = filter.clone();
    let Ok(Ok(found)) =
        tokio::task::spawn_blocking(move || super::feed::search(&path, &f2, AUDIT_PAGE)).await
    else {
        return unavailable();
    };
    let rows: String = found
        .entries
        .iter()
        .map(|e| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                e.seq,
                when(&e.at),
                esc(&e.actor),
                esc(&e.action),
                esc(&e.subject),
                esc(&e.detail.to_string())
            )
        })
        .collect();
    let input = |name: &str, label: &str, value: &str, ty: &str, hint: &str| {
        format!(
            "<label>{label}<input name={name} type={ty} value=\"{}\" placeholder=\"{hint}\"></label>",
            esc(value)
        )
    };
    let mut more = String::new();
    if found.more
        && let Some(last) = found.entries.last()
    {
        more = format!(
            "<p><a id=older href=\"/audit?actor={}&action={}&subject={}&from={}&to={}&before={}\">older entries</a></p>",
            urlencode(&q.actor),
            urlencode(&q.action),
            urlencode(&q.subject),
            urlencode(&q.from),
            urlencode(&q.to),
            last.seq
        );
    }
    if found.truncated {
        more.push_str("<p class=msg>The search stopped after reading 256 MiB of the log; narrow the time range.</p>");
    }
    let body = format!(
        "<form class=filters method=get action=\"/audit\">{}{}{}{}{}<button type=submit>Filter</button></form>\
         {}<div class=table-wrap><table id=audit><thead><tr><th>#</th><th>When (UTC)</th><th>Who</th><th>What</th>\
         <th>On</th><th>Detail</th></tr></thead><tbody>{}</tbody></table></div>{more}\
         <p class=muted>The log is hash-chained; check it with <code>hotspot-gateway audit verify</code>.</p>",
        input("actor", "Who", &q.actor, "text", "user:ana, station:desk-1"),
        input("action", "What", &q.action, "text", "console.login"),
        input("subject", "On", &q.subject, "text", "capture id, user"),
        input("from", "From (UTC)", &q.from, "text", "2026-11-29T08:00"),
        input("to", "To (UTC)", &q.to, "text", "2026-11-29"),
        if bad.is_empty() {
            String::new()
        } else {
            format!(
                "<p class=\"msg err\">Not a time: {} (use 2026-11-29, 2026-11-29T08:00 or RFC 3339).</p>",
                bad.join(", ")
            )
        },
        if rows.is_empty() {
            "<tr><td colspan=6 class=muted>no matching entry</td></tr>".to_owned()
        } else {
            rows
        }
    );
    layout("Audit log", &a, "/audit", &body).into_response()
}

/// `GET /settings` (admins): the effective configuration, read-only, secrets redacted.
pub async fn settings(State(c): State<Arc<Console>>, Admin(a): Admin) -> Response {
    let s = &c.settings;
    let body = format!(
        "<div class=table-wrap><table><tbody>\
         <tr><th>Console certificate</th><td>{}</td></tr>\
         <tr><th>SHA-256 fingerprint</th><td><code id=fingerprint>{}</code></td></tr>\
         <tr><th>Session idle timeout</th><td>{}</td></tr><tr><th>Session lifetime</th><td>{}</td></tr>\
         <tr><th>Login lockout</th><td>{} failures, then {}</td></tr>\
         <tr><th>Live sessions</th><td>{}</td></tr></tbody></table></div>\
         <h2>Effective configuration</h2><p class=muted>Read-only; change the configuration file and restart the \
         gateway. Values of keys that look secret are not shown.</p><pre id=config>{}</pre>",
        esc(&s.cert_path.display().to_string()),
        esc(&s.cert_fingerprint),
        duration(s.session_idle.as_secs()),
        duration(s.session_max.as_secs()),
        s.login_max_failures,
        duration(s.login_lockout.as_secs()),
        c.sessions.count(),
        esc(&s.config_view)
    );
    layout("Settings", &a, "/settings", &body).into_response()
}

/// `GET /users` (admins): the accounts (managed with `hotspot-gateway user ...`).
pub async fn users(State(c): State<Arc<Console>>, Admin(a): Admin) -> Response {
    let db = c.users.current();
    let rows: String = db
        .users
        .iter()
        .map(|u| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&u.name),
                u.role.as_str(),
                when(&u.created_at),
                when(&u.changed_at)
            )
        })
        .collect();
    let body = format!(
        "<div class=table-wrap><table id=users><thead><tr><th>Name</th><th>Role</th><th>Created</th>\
         <th>Changed</th></tr></thead><tbody>{rows}</tbody></table></div>\
         <p class=muted>Accounts are managed on the gateway with <code>hotspot-gateway user add|passwd|remove|list \
         --config FILE</code>; changes take effect at once (sessions of a removed or changed account end).</p>"
    );
    layout("Users", &a, "/users", &body).into_response()
}

/// `GET /login` parameters.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    m: Option<String>,
}

/// Where to go after login: a local path only.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control)
                && !n.starts_with("/login")
                && !n.starts_with("/logout") =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn cookie_header(name: &str, value: &str, max_age: Option<u64>) -> String {
    let age = max_age.map_or_else(String::new, |a| format!("; Max-Age={a}"));
    format!("{name}={value}; Secure; HttpOnly; SameSite=Strict; Path=/{age}")
}

fn login_page(token: &str, next: &str, msg: Option<(&str, bool)>, no_accounts: bool) -> String {
    let msg = msg.map_or_else(String::new, |(m, err)| {
        format!(
            "<p class=\"msg{}\" id=login-msg>{}</p>",
            if err { " err" } else { "" },
            esc(m)
        )
    });
    let first = if no_accounts {
        "<p class=msg>No account exists yet. On the gateway, make the first admin with <code>hotspot-gateway \
         user add --config FILE --name NAME --role admin</code>.</p>"
    } else {
        ""
    };
    format!(
        "{}<body><form class=login method=post action=\"/login\"><h1>Hotspot Edge console</h1>{first}{msg}\
         <input type=hidden name=csrf value=\"{}\"><input type=hidden name=next value=\"{}\">\
         <label>Name<input name=name id=name autocomplete=username required autofocus></label>\
         <label>Password<input name=password id=password type=password autocomplete=current-password required>\
         </label><button type=submit id=login>Log in</button></form></body></html>",
        head("Log in"),
        esc(token),
        esc(next)
    )
}

/// `GET /login`.
pub async fn login_form(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    if let Some(t) = cookie(&headers, SESSION_COOKIE)
        && matches!(c.check_session(&t, true), SessionCheck::Valid(_))
    {
        return Redirect::to(&next).into_response();
    }
    let token = random_token();
    let msg = match q.m.as_deref() {
        Some("expired") => Some(("Your session ended. Log in again.", false)),
        Some("revoked") => Some(("Your account changed. Log in again.", false)),
        Some("out") => Some(("You are logged out.", false)),
        _ => None,
    };
    let no_accounts = c.users.current().users.is_empty();
    (
        AppendHeaders([(
            header::SET_COOKIE,
            cookie_header(LOGIN_COOKIE, &token, Some(600)),
        )]),
        Html(login_page(&token, &next, msg, no_accounts)),
    )
        .into_response()
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login` (the CSRF guard has checked Origin and the login form's token).
pub async fn login(
    State(c): State<Arc<Console>>,
    RemoteIp(ip): RemoteIp,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let name: String = f.name.trim().chars().take(64).collect();
    let next = safe_next(f.next.as_deref());
    let token = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    let again = |code: StatusCode, msg: &str| {
        (
            code,
            Html(login_page(&token, &next, Some((msg, true)), false)),
        )
            .into_response()
    };
    let metrics = &c.pipeline.shared.metrics;
    if let Some(l) = c.limiter.locked(&name, ip) {
        metrics.login("locked");
        c.audit(
            format!("remote:{ip}"),
            "console.login_locked",
            name.clone(),
            serde_json::json!({ "by": l.by, "retry_after_s": l.retry_after.as_secs() }),
        );
        let secs = l.retry_after.as_secs().max(1);
        let mut r = again(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many failed logins. Try again in {secs} s."),
        );
        if let Ok(v) = secs.to_string().parse() {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let db = c.users.current();
    let user = db.get(&name).cloned();
    let pw = f.password;
    let hash = user.as_ref().map(|u| u.hash.clone());
    let ok = tokio::task::spawn_blocking(move || match &hash {
        Some(h) => verify_password(h, &pw),
        None => {
            verify_unknown(&pw);
            false
        }
    })
    .await
    .unwrap_or(false);
    let Some(user) = user.filter(|_| ok) else {
        c.limiter.failure(&name, ip);
        metrics.login("failed");
        c.audit(
            format!("remote:{ip}"),
            "console.login_failed",
            name.clone(),
            serde_json::json!({
                "reason": if db.get(&name).is_some() { "wrong password" } else { "unknown user" },
            }),
        );
        return again(StatusCode::UNAUTHORIZED, "Wrong name or password.");
    };
    c.limiter.success(&user.name);
    let (session, _) = c
        .sessions
        .create(&user.name, user.role, &hash_tag(&user.hash), ip);
    metrics.login("ok");
    c.audit(
        format!("user:{}", user.name),
        "console.login",
        user.name.clone(),
        serde_json::json!({ "role": user.role.as_str(), "remote": ip.to_string() }),
    );
    (
        AppendHeaders([
            (
                header::SET_COOKIE,
                cookie_header(SESSION_COOKIE, &session, None),
            ),
            (header::SET_COOKIE, cookie_header(LOGIN_COOKIE, "", Some(0))),
        ]),
        Redirect::to(&next),
    )
        .into_response()
}

/// `POST /logout`.
pub async fn logout(State(c): State<Arc<Console>>, a: Authed) -> Response {
    c.sessions.remove(&a.token);
    c.audit(
        a.actor(),
        "console.logout",
        a.user.clone(),
        serde_json::json!({ "remote": a.remote.to_string() }),
    );
    (
        AppendHeaders([(
            header::SET_COOKIE,
            cookie_header(SESSION_COOKIE, "", Some(0)),
        )]),
        Redirect::to("/login?m=out"),
    )
        .into_response()
}
