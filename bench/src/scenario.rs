//! The scenario matrix: names, the full and `--quick` matrices, and `--scenarios` selection.

use serde::Serialize;

use crate::workload::Kind;

/// How captures arrive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "pattern", rename_all = "lowercase")]
pub enum Pattern {
    /// `captures` at `rate` per second in total, spread round-robin over the stations.
    Sustained {
        /// Captures per second, all stations together.
        rate: f64,
        /// Captures sent.
        captures: usize,
    },
    /// Every station sends one capture at the same instant.
    Burst,
    /// Sustained steps of increasing rate until p99 passes 1 s.
    Ramp,
}

impl Pattern {
    /// `sustained`, `burst`, `ramp`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sustained { .. } => "sustained",
            Self::Burst => "burst",
            Self::Ramp => "ramp",
        }
    }
}

/// One scenario.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scenario {
    /// Watchlist subjects.
    pub watchlist: usize,
    /// Stations connected (each its own MQTT connection).
    pub stations: usize,
    /// What each capture carries.
    pub kind: Kind,
    /// How captures arrive.
    pub pattern: Pattern,
}

/// `1k`, `10k`, `100k`, or the number.
pub fn size_name(n: usize) -> String {
    if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// The target scenario.
pub const TARGET: &str = "w100k-s100-2f+face-sustained";

impl Scenario {
    /// `w100k-s100-2f+face-sustained`.
    pub fn name(&self) -> String {
        format!(
            "w{}-s{}-{}-{}",
            size_name(self.watchlist),
            self.stations,
            self.kind.name(),
            self.pattern.name()
        )
    }
}

/// Matrix sizes.
#[derive(Debug, Clone, Copy)]
pub struct MatrixSizes {
    /// Captures of a sustained scenario.
    pub sustained: usize,
    /// Captures of the target scenario.
    pub target: usize,
}

/// The matrix. Full: for each watchlist (1k, 10k, 100k), every capture kind sustained at 1 capture/s from 100
/// stations and ramped, bursts of 2-finger + face and of 10-finger captures from 100 stations, and the station
/// sweep (10 and 500 stations, 2-finger + face, sustained and burst). Quick: 1k and 10k, every kind sustained,
/// the 2-finger + face ramp, bursts from 10 and 100 stations, and 10 stations sustained.
pub fn matrix(quick: bool, sizes: MatrixSizes) -> Vec<Scenario> {
    let two_face = Kind {
        fingers: 2,
        face: true,
    };
    let ten = Kind {
        fingers: 10,
        face: false,
    };
    let mut out = Vec::new();
    let watchlists: &[usize] = if quick {
        &[1_000, 10_000]
    } else {
        &[1_000, 10_000, 100_000]
    };
    for &w in watchlists {
        let s = |stations, kind, pattern| Scenario {
            watchlist: w,
            stations,
            kind,
            pattern,
        };
        let sustained = |captures| Pattern::Sustained {
            rate: 1.0,
            captures,
        };
        for kind in Kind::ALL {
            let captures = if s(100, kind, sustained(0)).name() == TARGET {
                sizes.target
            } else {
                sizes.sustained
            };
            out.push(s(100, kind, sustained(captures)));
        }
        out.push(s(100, two_face, Pattern::Burst));
        if quick {
            out.push(s(10, two_face, Pattern::Burst));
            out.push(s(10, two_face, sustained(sizes.sustained)));
            out.push(s(100, two_face, Pattern::Ramp));
        } else {
            out.push(s(100, ten, Pattern::Burst));
            for kind in Kind::ALL {
                out.push(s(100, kind, Pattern::Ramp));
            }
            for stations in [10, 500] {
                out.push(s(stations, two_face, sustained(sizes.sustained)));
                out.push(s(stations, two_face, Pattern::Burst));
            }
        }
    }
    out
}

/// Whether `name` matches the glob `pattern` (`*` any run of characters; everything else literal).
pub fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(at) => rest = &rest[at + mid.len()..],
            None => return false,
        }
    }
    true
}

/// The scenarios of `all` selected by `patterns` (comma-separated globs; `target` names the target
/// scenario); all of them when `patterns` is empty. Keeps the matrix order.
pub fn select(all: &[Scenario], patterns: &[String]) -> Vec<Scenario> {
    if patterns.is_empty() {
        return all.to_vec();
    }
    let pats: Vec<String> = patterns
        .iter()
        .flat_map(|p| p.split(','))
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(|p| {
            if p == "target" {
                TARGET.to_owned()
            } else {
                p.to_owned()
            }
        })
        .collect();
    all.iter()
        .filter(|s| pats.iter().any(|p| glob(p, &s.name())))
        .copied()
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SIZES: MatrixSizes = MatrixSizes {
        sustained: 60,
        target: 120,
    };

    #[test]
    fn names_and_sizes() {
        assert_eq!(size_name(100_000), "100k");
        assert_eq!(size_name(2500), "2500");
    }

    #[test]
    fn full_matrix_holds_the_target_once_with_its_own_length() {
        let m = matrix(false, SIZES);
        let targets: Vec<&Scenario> = m.iter().filter(|s| s.name() == TARGET).collect();
        assert_eq!(targets.len(), 1);
        assert_eq!(
            targets[0].pattern,
            Pattern::Sustained {
                rate: 1.0,
                captures: 120
            }
        );
        let names: std::collections::HashSet<String> = m.iter().map(Scenario::name).collect();
        assert_eq!(names.len(), m.len(), "names are unique");
        for st in [10, 100, 500] {
            assert!(m.iter().any(|s| s.stations == st && s.watchlist == 100_000));
        }
        assert!(!matrix(true, SIZES).iter().any(|s| s.watchlist == 100_000));
    }

    #[test]
    fn globs_and_selection() {
        assert!(glob("w1k-*", "w1k-s100-2f-sustained"));
        assert!(glob("*-burst", "w10k-s500-2f+face-burst"));
        assert!(glob("w*-s100-*-ramp", "w100k-s100-10f-ramp"));
        assert!(!glob("w*-s100-*-ramp", "w100k-s10-10f-burst"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
        assert!(!glob("a*a", "a"));
        let m = matrix(false, SIZES);
        let t = select(&m, &["target".into()]);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].name(), TARGET);
        let two = select(&m, &["w1k-s100-2f-sustained,*-s500-*-burst".into()]);
        assert_eq!(two.len(), 4);
        assert_eq!(select(&m, &[]).len(), m.len());
    }
}
