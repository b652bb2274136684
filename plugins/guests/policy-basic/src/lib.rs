//! Example policy plugin.
//!
//! - `hit`: stays a hit; a critical alert to the console naming the best candidate, a warning to the station
//!   ("refer to secondary inspection"); between 22:00 and 06:00 UTC (from the `now` parameter) also a critical
//!   alert to central, for the night supervisor.
//! - `inconclusive`: stays inconclusive; an info alert to the console with the reason.
//! - `no-hit` of a face-only screening: turned into `inconclusive` ("face only: take fingerprints"), the others
//!   stay `no-hit` without alerts.

wit_bindgen::generate!({
    world: "policy-plugin",
    path: "../../wit",
});

use exports::hotspot::plugin::policy::{
    Alert, Guest, PolicyDecision, PolicyInput, Route, Severity,
};
use hotspot::plugin::types::{Decision, Purpose};

struct Plugin;

impl Guest for Plugin {
    fn decide(input: PolicyInput) -> Result<PolicyDecision, String> {
        let result = &input.local;
        let mut alerts = Vec::new();
        let decision = match result.decision {
            Decision::Hit => {
                let best = result
                    .candidates
                    .first()
                    .map(|c| format!("{} (score {:.1})", c.subject_id, c.score))
                    .unwrap_or_else(|| "no candidate listed".into());
                alerts.push(Alert {
                    route: Route::Console,
                    severity: Severity::Critical,
                    message: format!("HIT at station {}: {best}", input.station_id),
                });
                alerts.push(Alert {
                    route: Route::Station,
                    severity: Severity::Warning,
                    message: "Refer the traveller to secondary inspection".into(),
                });
                if is_night(input.now.seconds) {
                    alerts.push(Alert {
                        route: Route::Central,
                        severity: Severity::Critical,
                        message: format!("night-time HIT at station {}: {best}", input.station_id),
                    });
                }
                return Ok(PolicyDecision {
                    decision: Decision::Hit,
                    reason: result.reason.clone(),
                    alerts,
                });
            }
            Decision::Inconclusive => {
                alerts.push(Alert {
                    route: Route::Console,
                    severity: Severity::Info,
                    message: format!(
                        "inconclusive at station {}: {}",
                        input.station_id,
                        result.reason.as_deref().unwrap_or("no reason given")
                    ),
                });
                Decision::Inconclusive
            }
            Decision::NoHit => {
                if input.finger_positions.is_empty()
                    && input.has_face
                    && matches!(input.purpose, Purpose::Screen)
                {
                    return Ok(PolicyDecision {
                        decision: Decision::Inconclusive,
                        reason: Some("face only: take fingerprints".into()),
                        alerts,
                    });
                }
                Decision::NoHit
            }
        };
        Ok(PolicyDecision {
            decision,
            reason: result.reason.clone(),
            alerts,
        })
    }
}

/// 22:00 to 06:00 UTC.
fn is_night(unix_seconds: i64) -> bool {
    let hour = unix_seconds.rem_euclid(86_400) / 3_600;
    !(6..22).contains(&hour)
}

export!(Plugin);
