//! Console sessions (server-side table, idle and absolute expiry) and login rate limiting.
//!
//! A session is a random 256-bit token in the cookie [`SESSION_COOKIE`] (`Secure; HttpOnly; SameSite=Strict;
//! Path=/`); the table keeps only the token's SHA-256, with the user, role, a tag of the password hash and the
//! session's own CSRF token. Sessions live in memory: a restart of the gateway logs everybody out.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::users::Role;

/// The session cookie (`__Host-`: only set over HTTPS, for `/`, by this host).
pub const SESSION_COOKIE: &str = "__Host-hotspot-session";
/// The pre-login cookie holding the login form's CSRF token.
pub const LOGIN_COOKIE: &str = "__Host-hotspot-login";

/// A random 256-bit token, base64url without padding.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    // SystemRandom fails only when the OS has no randomness at all; the token is then all zeros, which no
    // session will ever be found under (the table refuses it).
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn zero_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0u8; 32])
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn key(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut k = [0u8; 32];
    k.copy_from_slice(d.as_ref());
    k
}

/// One logged-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who.
    pub user: String,
    /// Role at login.
    pub role: Role,
    /// Tag of the password hash at login ([`super::users::hash_tag`]).
    pub pw_tag: String,
    /// This session's CSRF token.
    pub csrf: String,
    /// Address it logged in from.
    pub remote: IpAddr,
    /// Login time.
    pub created: Instant,
    /// Last request that used it.
    pub last_seen: Instant,
}

/// What a token leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A live session.
    Valid(Session),
    /// A session that just ended (removed now): `idle` or `lifetime`.
    Expired(Session, &'static str),
    /// Nothing.
    Unknown,
}

/// The session table.
#[derive(Debug)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
    idle: Duration,
    max: Duration,
}

impl Sessions {
    /// A table with these timeouts.
    pub fn new(idle: Duration, max: Duration) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            idle,
            max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a session; returns its token.
    pub fn create(
        &self,
        user: &str,
        role: Role,
        pw_tag: &str,
        remote: IpAddr,
    ) -> (String, Session) {
        let token = random_token();
        let now = Instant::now();
        let s = Session {
            user: user.to_owned(),
            role,
            pw_tag: pw_tag.to_owned(),
            csrf: random_token(),
            remote,
            created: now,
            last_seen: now,
        };
        if token != zero_token() {
            self.lock().insert(key(&token), s.clone());
        }
        (token, s)
    }

    fn expired(&self, s: &Session, now: Instant) -> Option<&'static str> {
        if now.duration_since(s.created) >= self.max {
            Some("lifetime")
        } else if now.duration_since(s.last_seen) >= self.idle {
            Some("idle")
        } else {
            None
        }
    }

    /// The session of `token`; `touch` counts this as use (idle timer restarts). An expired session is removed.
    pub fn lookup(&self, token: &str, touch: bool) -> Lookup {
        let k = key(token);
        let now = Instant::now();
        let mut map = self.lock();
        let Some(s) = map.get_mut(&k) else {
            return Lookup::Unknown;
        };
        if let Some(why) = self.expired(s, now) {
            let s = s.clone();
            map.remove(&k);
            return Lookup::Expired(s, why);
        }
        if touch {
            s.last_seen = now;
        }
        Lookup::Valid(s.clone())
    }

    /// Ends the session of `token`.
    pub fn remove(&self, token: &str) -> Option<Session> {
        self.lock().remove(&key(token))
    }

    /// Removes every expired session and returns them with the reason.
    pub fn sweep(&self) -> Vec<(Session, &'static str)> {
        let now = Instant::now();
        let mut out = Vec::new();
        self.lock().retain(|_, s| match self.expired(s, now) {
            Some(why) => {
                out.push((s.clone(), why));
                false
            }
            None => true,
        });
        out
    }

    /// Live sessions.
    pub fn count(&self) -> usize {
        self.lock().len()
    }
}

/// Why a login is refused before its password is even checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    /// `account` or `address`.
    pub by: &'static str,
    /// Time until a new attempt is considered.
    pub retry_after: Duration,
}

/// Failed logins per account and per remote address: `max` failures within `lockout` lock further attempts
/// until `lockout` after the last failure.
#[derive(Debug)]
pub struct LoginLimiter {
    max: usize,
    lockout: Duration,
    by_user: Mutex<HashMap<String, VecDeque<Instant>>>,
    by_addr: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

/// Table size above which expired entries are dropped on each failure.
const PRUNE_ABOVE: usize = 1024;

fn locked_in<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, VecDeque<Instant>>>,
    k: &K,
    max: usize,
    lockout: Duration,
    now: Instant,
) -> Option<Duration> {
    let m = map.lock().unwrap_or_else(PoisonError::into_inner);
    let q = m.get(k)?;
    let recent = q
        .iter()
        .filter(|t| now.duration_since(**t) < lockout)
        .count();
    let last = q.back()?;
    (recent >= max).then(|| lockout.saturating_sub(now.duration_since(*last)))
}

fn fail_in<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, VecDeque<Instant>>>,
    k: K,
    max: usize,
    lockout: Duration,
    now: Instant,
) {
    let mut m = map.lock().unwrap_or_else(PoisonError::into_inner);
    if m.len() > PRUNE_ABOVE {
        m.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < lockout));
    }
    let q = m.entry(k).or_default();
    q.push_back(now);
    while q.len() > max {
        q.pop_front();
    }
}

impl LoginLimiter {
    /// `max` failures within `lockout` lock for `lockout`.
    pub fn new(max: u32, lockout: Duration) -> Self {
        Self {
            max: max.max(1) as usize,
            lockout,
            by_user: Mutex::new(HashMap::new()),
            by_addr: Mutex::new(HashMap::new()),
        }
    }

    /// Whether attempts for `user` or from `addr` are locked now.
    pub fn locked(&self, user: &str, addr: IpAddr) -> Option<Locked> {
        let now = Instant::now();
        if let Some(d) = locked_in(&self.by_user, &user.to_owned(), self.max, self.lockout, now) {
            return Some(Locked {
                by: "account",
                retry_after: d,
            });
        }
        locked_in(&self.by_addr, &addr, self.max, self.lockout, now).map(|d| Locked {
            by: "address",
            retry_after: d,
        })
    }

    /// Counts a failed attempt.
    pub fn failure(&self, user: &str, addr: IpAddr) {
        let now = Instant::now();
        fail_in(&self.by_user, user.to_owned(), self.max, self.lockout, now);
        fail_in(&self.by_addr, addr, self.max, self.lockout, now);
    }

    /// A successful login clears the account's failures (not the address's).
    pub fn success(&self, user: &str) {
        self.by_user
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(user);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ADDR: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn sessions_expire_when_idle_and_at_their_lifetime() {
        let t = Sessions::new(Duration::from_millis(150), Duration::from_millis(400));
        let (tok, s) = t.create("ana", Role::Admin, "tag", ADDR);
        assert_eq!(tok.len(), 43);
        assert_ne!(s.csrf, tok);
        assert!(matches!(t.lookup(&tok, true), Lookup::Valid(_)));
        assert_eq!(t.lookup("not a token", true), Lookup::Unknown);
        // Kept alive by use, until the absolute lifetime.
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(100));
            assert!(matches!(t.lookup(&tok, true), Lookup::Valid(_)));
        }
        std::thread::sleep(Duration::from_millis(120));
        assert!(matches!(
            t.lookup(&tok, true),
            Lookup::Expired(_, "lifetime")
        ));
        assert_eq!(t.lookup(&tok, true), Lookup::Unknown);

        let (tok, _) = t.create("ana", Role::Admin, "tag", ADDR);
        std::thread::sleep(Duration::from_millis(100));
        // A look that does not count as use does not restart the idle timer.
        assert!(matches!(t.lookup(&tok, false), Lookup::Valid(_)));
        std::thread::sleep(Duration::from_millis(80));
        assert!(matches!(t.lookup(&tok, false), Lookup::Expired(_, "idle")));

        let (_tok, _) = t.create("bo", Role::Viewer, "tag", ADDR);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(t.sweep().len(), 1);
        assert_eq!(t.count(), 0);
    }

    #[test]
    fn limiter_locks_accounts_and_addresses() {
        let l = LoginLimiter::new(3, Duration::from_millis(300));
        let other: IpAddr = "10.0.0.9".parse().unwrap();
        for _ in 0..3 {
            assert!(l.locked("ana", ADDR).is_none());
            l.failure("ana", ADDR);
        }
        assert_eq!(l.locked("ana", other).unwrap().by, "account");
        assert_eq!(l.locked("bo", ADDR).unwrap().by, "address");
        assert!(l.locked("bo", other).is_none());
        std::thread::sleep(Duration::from_millis(320));
        assert!(l.locked("ana", ADDR).is_none());
        l.failure("ana", other);
        l.success("ana");
        assert!(l.locked("ana", other).is_none());
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
