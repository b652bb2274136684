//! The dashboard's live data: a ring buffer of samples (backlog, link quality) taken every
//! `console.sample_interval_s`, and the server-sent events stream `/events` that pushes samples, status and
//! activity to open dashboards.
//!
//! # Events on `/events`
//! - `history`: every kept sample (JSON array), once, first;
//! - `sample`: one new sample;
//! - `status`: the dashboard's fields, `[[id, text, alert], ...]`, every few seconds and after activity;
//! - `activity`: one capture or result ([`super::feed::Activity`]);
//! - `logout`: the session ended (idle, lifetime, account changed); the stream ends.
//!
//! The stream does not count as use of the session: a dashboard left open does not keep a session alive.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use hotspot_device_protocols::station::UplinkState;
use serde::Serialize;
use tokio::sync::broadcast;

use super::auth::Authed;
use super::feed::Activity;
use super::{Console, SessionCheck};
use crate::pipeline::{Pipeline, now_ms};

/// How often open dashboards get a status event.
pub const STATUS_EVERY: Duration = Duration::from_secs(5);

/// One chart sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Unix seconds.
    pub t: i64,
    /// Captures waiting for central.
    pub backlog: u64,
    /// Age of the oldest of them, seconds.
    pub oldest_age_s: u64,
    /// Uplink state.
    pub uplink: UplinkState,
    /// Round-trip time, ms (while connected).
    pub rtt_ms: Option<u64>,
    /// Loss over the last second, percent (while connected).
    pub loss_percent: Option<f64>,
    /// Goodput, bytes per second (while connected).
    pub goodput_bytes_per_s: Option<u64>,
}

/// Takes a sample now (reads the store: call off the async threads).
pub fn take(p: &Pipeline) -> Sample {
    let now = now_ms();
    let link = p.shared.link();
    Sample {
        t: now / 1000,
        backlog: p.store.backlog(),
        oldest_age_s: p.store.oldest_backlog_ms().map_or(0, |t| {
            u64::try_from(now.saturating_sub(t) / 1000).unwrap_or(0)
        }),
        uplink: p.shared.uplink(),
        rtt_ms: link.map(|l| l.rtt_ms),
        loss_percent: link.map(|l| l.loss_percent),
        goodput_bytes_per_s: link.map(|l| l.goodput_bytes_per_s),
    }
}

/// The ring buffer.
#[derive(Debug)]
pub struct Samples {
    buf: Mutex<VecDeque<Sample>>,
    cap: usize,
    tx: broadcast::Sender<Sample>,
}

impl Samples {
    /// Keeps at most `cap` samples.
    pub fn new(cap: usize) -> Arc<Self> {
        let (tx, _) = broadcast::channel(16);
        Arc::new(Self {
            buf: Mutex::new(VecDeque::with_capacity(cap.min(100_000))),
            cap: cap.max(1),
            tx,
        })
    }

    /// Adds a sample and pushes it to the open dashboards.
    pub fn push(&self, s: Sample) {
        {
            let mut b = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
            b.push_back(s.clone());
            while b.len() > self.cap {
                b.pop_front();
            }
        }
        let _ = self.tx.send(s);
    }

    /// Every kept sample, oldest first.
    pub fn history(&self) -> Vec<Sample> {
        self.buf
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// New samples.
    pub fn subscribe(&self) -> broadcast::Receiver<Sample> {
        self.tx.subscribe()
    }

    /// Samples forever every `every`.
    pub async fn run(self: Arc<Self>, pipeline: Arc<Pipeline>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let p = pipeline.clone();
            if let Ok(s) = tokio::task::spawn_blocking(move || take(&p)).await {
                self.push(s);
            }
        }
    }
}

struct Stream_ {
    c: Arc<Console>,
    token: String,
    first: bool,
    status_due: bool,
    ended: bool,
    samples: broadcast::Receiver<Sample>,
    activity: broadcast::Receiver<Activity>,
    tick: tokio::time::Interval,
}

fn event<T: Serialize>(name: &str, v: &T) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(v).unwrap_or_default())
}

async fn status_event(c: &Arc<Console>) -> Event {
    let p = c.pipeline.clone();
    let fields = tokio::task::spawn_blocking(move || super::pages::fields(&super::status(&p)))
        .await
        .unwrap_or_default();
    event("status", &fields)
}

async fn next(mut st: Stream_) -> Option<(Result<Event, Infallible>, Stream_)> {
    if st.ended {
        return None;
    }
    if !matches!(st.c.check_session(&st.token, false), SessionCheck::Valid(_)) {
        st.ended = true;
        return Some((
            Ok(Event::default().event("logout").data("session ended")),
            st,
        ));
    }
    if st.first {
        st.first = false;
        return Some((Ok(event("history", &st.c.samples.history())), st));
    }
    if st.status_due {
        st.status_due = false;
        let e = status_event(&st.c).await;
        return Some((Ok(e), st));
    }
    loop {
        tokio::select! {
            s = st.samples.recv() => match s {
                Ok(s) => return Some((Ok(event("sample", &s)), st)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            },
            a = st.activity.recv() => match a {
                Ok(a) => {
                    st.status_due = true;
                    return Some((Ok(event("activity", &a)), st));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    st.status_due = true;
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            },
            _ = st.tick.tick() => {
                // Re-checked at the top of the next call; a status event now.
                let e = status_event(&st.c).await;
                return Some((Ok(e), st));
            }
        }
    }
}

/// `GET /events`: the dashboard's live stream (any role).
pub async fn events(
    State(c): State<Arc<Console>>,
    a: Authed,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut tick = tokio::time::interval(STATUS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let st = Stream_ {
        samples: c.samples.subscribe(),
        activity: c.feed.subscribe(),
        c,
        token: a.token,
        first: true,
        status_due: false,
        ended: false,
        tick,
    };
    Sse::new(futures_util::stream::unfold(st, next)).keep_alive(KeepAlive::default())
}
