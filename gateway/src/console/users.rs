//! Local console accounts, and the `hotspot-gateway user ...` commands that manage them.
//!
//! # File
//! `storage.dir/console-users.json`, mode 0600, replaced atomically (temporary file, fsync, rename, fsync of the
//! folder) under an exclusive `flock` on `console-users.json.lock`, so two commands never lose each other's change:
//! `{"users": [{"name": "ana", "role": "admin", "hash": "$argon2id$v=19$m=19456,t=2,p=1$...", "created_at": ...,
//! "changed_at": ...}]}`. Passwords are stored only as argon2id PHC strings (the `argon2` crate's defaults, the
//! OWASP minimum: 19 MiB, 2 passes). The running gateway notices a changed file at the next request (it compares
//! the file's inode, size and modification time), so accounts added, removed or re-keyed take effect at once:
//! sessions of a removed user, of a changed role or of a changed password end.
//!
//! # Commands
//! `user add --config F --name N --role admin|viewer`, `user passwd`, `user remove`, `user list`. A password is
//! read from standard input: on a terminal it is prompted for twice without echo, otherwise the first line is
//! taken (`printf '%s\n' "$PW" | hotspot-gateway user add ...`); it is never a command-line argument (visible to
//! every local user in `ps`). Each change is recorded in the audit log (`user.added`, `user.password_changed`,
//! `user.removed`, actor `cli:<unix user>`).

use std::io::{BufRead as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use serde::{Deserialize, Serialize};
use tracing::{error, warn};

/// The accounts file, in `storage.dir`.
pub const USERS_FILE: &str = "console-users.json";
/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Largest accounts file read.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: also the audit log, biometric images and settings.
    Admin,
    /// Dashboard, stations, result metadata, plugins.
    Viewer,
}

impl Role {
    /// `admin` or `viewer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Viewer => "viewer",
        }
    }
}

/// One account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// argon2id PHC string.
    pub hash: String,
    /// When the account was made (RFC 3339).
    pub created_at: String,
    /// When its password or role last changed (RFC 3339).
    pub changed_at: String,
}

/// The accounts file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDb {
    /// Accounts, in name order.
    pub users: Vec<User>,
}

impl UserDb {
    /// The account called `name`.
    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }
}

/// Errors of account management.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The file is not a valid accounts file.
    #[error("{path}: not a valid accounts file: {what}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A bad login name.
    #[error("user name {0:?} must be 1..=64 characters of A-Z a-z 0-9 - _ .")]
    BadName(String),
    /// The account exists.
    #[error("user {0:?} already exists")]
    Exists(String),
    /// No such account.
    #[error("no user {0:?}")]
    Unknown(String),
    /// The password is not acceptable.
    #[error("{0}")]
    Password(String),
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Checks a login name.
pub fn validate_name(name: &str) -> Result<(), UserError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(UserError::BadName(name.to_owned()))
    }
}

/// Checks a new password.
pub fn check_password(pw: &str) -> Result<(), UserError> {
    if pw.chars().count() < MIN_PASSWORD_CHARS {
        return Err(UserError::Password(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if pw.len() > MAX_PASSWORD_BYTES {
        return Err(UserError::Password(format!(
            "the password must have at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    if pw.chars().any(char::is_control) {
        return Err(UserError::Password(
            "the password must not contain control characters".into(),
        ));
    }
    Ok(())
}

/// Hashes a password (argon2id, random 16-byte salt). Slow on purpose: call off the async threads.
pub fn hash_password(pw: &str) -> Result<String, UserError> {
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .map_err(|_| UserError::Hash("no randomness".into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| UserError::Hash(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

/// Whether `pw` matches the PHC string `hash` (false for a malformed hash). Slow on purpose.
pub fn verify_password(hash: &str, pw: &str) -> bool {
    if pw.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2::Argon2::default()
            .verify_password(pw.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one verification for an unknown name, so that timing does not tell which names exist.
pub fn verify_unknown(pw: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let hash = DUMMY.get_or_init(|| hash_password("not a password of anyone").unwrap_or_default());
    let _ = verify_password(hash, pw);
}

/// A short tag of a password hash: sessions remember it, so that a password change ends them.
pub fn hash_tag(hash: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, hash.as_bytes());
    d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> UserError + '_ {
    move |source| UserError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads the accounts file (absent: no accounts).
pub fn load(path: &Path) -> Result<UserDb, UserError> {
    let bytes = match hotspot_central::fsutil::read(path, MAX_FILE_BYTES) {
        Ok(b) => b,
        Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => return Ok(UserDb::default()),
        Err(e) => {
            return Err(UserError::Io {
                path: path.to_owned(),
                source: e.source,
            });
        }
    };
    let db: UserDb = serde_json::from_slice(&bytes).map_err(|e| UserError::Format {
        path: path.to_owned(),
        what: e.to_string(),
    })?;
    for u in &db.users {
        if validate_name(&u.name).is_err() || PasswordHash::new(&u.hash).is_err() {
            return Err(UserError::Format {
                path: path.to_owned(),
                what: format!("account {:?} has a bad name or hash", u.name),
            });
        }
    }
    Ok(db)
}

/// Writes the accounts file atomically with mode 0600.
fn save(path: &Path, db: &UserDb) -> Result<(), UserError> {
    let bytes = serde_json::to_vec_pretty(db).map_err(|e| UserError::Format {
        path: path.to_owned(),
        what: e.to_string(),
    })?;
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    f.write_all(&bytes).map_err(io_err(&tmp))?;
    f.write_all(b"\n").map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Loads, changes and saves the accounts file under its lock.
fn modify<R>(
    path: &Path,
    f: impl FnOnce(&mut UserDb) -> Result<R, UserError>,
) -> Result<R, UserError> {
    let lock_path = path.with_extension("json.lock");
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io_err(&lock_path))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io_err(&lock_path)(e.into()))?;
    let mut db = load(path)?;
    let r = f(&mut db)?;
    db.users.sort_by(|a, b| a.name.cmp(&b.name));
    save(path, &db)?;
    let _ = rustix::fs::flock(&lock, rustix::fs::FlockOperation::Unlock);
    Ok(r)
}

fn now_text() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Adds an account.
pub fn add(path: &Path, name: &str, role: Role, pw: &str) -> Result<(), UserError> {
    validate_name(name)?;
    check_password(pw)?;
    let hash = hash_password(pw)?;
    modify(path, |db| {
        if db.get(name).is_some() {
            return Err(UserError::Exists(name.to_owned()));
        }
        let now = now_text();
        db.users.push(User {
            name: name.to_owned(),
            role,
            hash,
            created_at: now.clone(),
            changed_at: now,
        });
        Ok(())
    })
}

/// Sets an account's password.
pub fn passwd(path: &Path, name: &str, pw: &str) -> Result<(), UserError> {
    check_password(pw)?;
    let hash = hash_password(pw)?;
    modify(path, |db| {
        let u = db
            .users
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(|| UserError::Unknown(name.to_owned()))?;
        u.hash = hash;
        u.changed_at = now_text();
        Ok(())
    })
}

/// Removes an account; returns its role.
pub fn remove(path: &Path, name: &str) -> Result<Role, UserError> {
    modify(path, |db| {
        let i = db
            .users
            .iter()
            .position(|u| u.name == name)
            .ok_or_else(|| UserError::Unknown(name.to_owned()))?;
        Ok(db.users.remove(i).role)
    })
}

type Stamp = (u64, u64, i64, i64);

/// The running console's view of the accounts file, re-read whenever the file changes.
#[derive(Debug)]
pub struct UserStore {
    path: PathBuf,
    cache: Mutex<(Option<Stamp>, Arc<UserDb>)>,
}

impl UserStore {
    /// A view of `path`.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            cache: Mutex::new((None, Arc::new(UserDb::default()))),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The accounts as the file holds them now. An unreadable file reads as no accounts (nobody can log in),
    /// with an error in the log.
    pub fn current(&self) -> Arc<UserDb> {
        let stamp = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.ino(), m.len(), m.mtime(), m.mtime_nsec()));
        let mut c = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if c.0.is_some() && c.0 == stamp {
            return c.1.clone();
        }
        let db = match load(&self.path) {
            Ok(db) => db,
            Err(e) => {
                error!(error = %e, "console accounts unreadable: nobody can log in until it is fixed");
                UserDb::default()
            }
        };
        if let Ok(m) = std::fs::metadata(&self.path)
            && m.mode() & 0o077 != 0
        {
            warn!(path = %self.path.display(), "console accounts file is readable by others; chmod 600 it");
        }
        *c = (stamp, Arc::new(db));
        c.1.clone()
    }
}

/// `hotspot-gateway user ...`.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Add a console account. The password is read from standard input (prompted twice without echo on a
    /// terminal), never from the command line.
    Add {
        /// Configuration file (accounts live in `storage.dir/console-users.json`).
        #[arg(long)]
        config: PathBuf,
        /// Login name (1..=64 of A-Z a-z 0-9 - _ .).
        #[arg(long)]
        name: String,
        /// `admin` or `viewer`.
        #[arg(long, value_enum)]
        role: Role,
    },
    /// Set an account's password (read as for `add`); the account's sessions end.
    Passwd {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Login name.
        #[arg(long)]
        name: String,
    },
    /// Remove an account; its sessions end.
    Remove {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Login name.
        #[arg(long)]
        name: String,
    },
    /// List the accounts (name, role, dates; never the hashes).
    List {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
    },
}

fn read_line_hidden(prompt: &str) -> std::io::Result<String> {
    let stdin = std::io::stdin();
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let old = rustix::termios::tcgetattr(&stdin)?;
    let mut quiet = old.clone();
    quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
    rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet)?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &old);
    eprintln!();
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Reads a new password from standard input.
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if rustix::termios::isatty(&stdin) {
        let pw = read_line_hidden("New password: ")?;
        let again = read_line_hidden("Repeat it: ")?;
        anyhow::ensure!(pw == again, "the two passwords differ");
        Ok(pw)
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        let pw = line.trim_end_matches(['\n', '\r']).to_owned();
        anyhow::ensure!(!pw.is_empty(), "no password on standard input");
        Ok(pw)
    }
}

/// Who runs the command, for the audit log.
fn cli_actor() -> String {
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{who}")
}

/// Gives files a command made as root to the storage folder's owner (the service user), so the gateway can use
/// them. Best effort: without the right to do so, nothing changes.
fn match_owner(dir: &Path, files: &[PathBuf]) {
    let Ok(d) = std::fs::metadata(dir) else {
        return;
    };
    for f in files {
        if let Ok(m) = std::fs::metadata(f)
            && (m.uid() != d.uid() || m.gid() != d.gid())
        {
            let _ = std::os::unix::fs::chown(f, Some(d.uid()), Some(d.gid()));
        }
    }
}

fn audit_change(cfg: &crate::config::Config, action: &str, name: &str, detail: serde_json::Value) {
    let path = cfg.audit_file();
    if let Err(e) = crate::audit::append_locked(&path, &cli_actor(), action, name, detail) {
        eprintln!("warning: the change is made but could not be audited: {e}");
    }
}

/// Runs a `user` command.
pub fn run_cli(cmd: UserCommand) -> anyhow::Result<ExitCode> {
    let config = match &cmd {
        UserCommand::Add { config, .. }
        | UserCommand::Passwd { config, .. }
        | UserCommand::Remove { config, .. }
        | UserCommand::List { config } => config.clone(),
    };
    let cfg = crate::config::Config::load(&config)?;
    let dir = cfg.storage.dir.clone();
    let path = dir.join(USERS_FILE);
    if !matches!(cmd, UserCommand::List { .. }) && !dir.exists() {
        hotspot_central::fsutil::create_dir_private(&dir)?;
    }
    let touched = [
        path.clone(),
        path.with_extension("json.lock"),
        cfg.audit_file(),
    ];
    match cmd {
        UserCommand::Add { name, role, .. } => {
            validate_name(&name)?;
            let pw = read_password()?;
            add(&path, &name, role, &pw)?;
            audit_change(
                &cfg,
                "user.added",
                &name,
                serde_json::json!({ "role": role.as_str() }),
            );
            match_owner(&dir, &touched);
            println!("user {name} added ({})", role.as_str());
        }
        UserCommand::Passwd { name, .. } => {
            if load(&path)?.get(&name).is_none() {
                anyhow::bail!(UserError::Unknown(name));
            }
            let pw = read_password()?;
            passwd(&path, &name, &pw)?;
            audit_change(&cfg, "user.password_changed", &name, serde_json::json!({}));
            match_owner(&dir, &touched);
            println!("password of {name} changed; its sessions end");
        }
        UserCommand::Remove { name, .. } => {
            let role = remove(&path, &name)?;
            audit_change(
                &cfg,
                "user.removed",
                &name,
                serde_json::json!({ "role": role.as_str() }),
            );
            match_owner(&dir, &touched);
            let left = load(&path)?;
            if !left.users.iter().any(|u| u.role == Role::Admin) {
                eprintln!(
                    "warning: no admin account is left (hotspot-gateway user add --role admin)"
                );
            }
            println!("user {name} removed; its sessions end");
        }
        UserCommand::List { .. } => {
            let db = load(&path)?;
            if db.users.is_empty() {
                println!(
                    "no accounts (hotspot-gateway user add --config ... --name ... --role admin)"
                );
            }
            for u in db.users {
                println!(
                    "{}\t{}\tcreated {}\tchanged {}",
                    u.name,
                    u.role.as_str(),
                    u.created_at,
                    u.changed_at
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn accounts_round_trip_with_private_file_and_hashed_passwords() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(USERS_FILE);
        add(&path, "ana", Role::Admin, "correct horse battery").unwrap();
        add(&path, "bo", Role::Viewer, "another long password").unwrap();
        assert!(matches!(
            add(&path, "ana", Role::Viewer, "correct horse battery"),
            Err(UserError::Exists(_))
        ));
        assert!(matches!(
            add(&path, "x y", Role::Viewer, "correct horse battery"),
            Err(UserError::BadName(_))
        ));
        assert!(matches!(
            add(&path, "cy", Role::Viewer, "short"),
            Err(UserError::Password(_))
        ));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("correct horse"), "{text}");
        assert!(text.contains("$argon2id$"), "{text}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let db = load(&path).unwrap();
        let ana = db.get("ana").unwrap();
        assert_eq!(ana.role, Role::Admin);
        assert!(verify_password(&ana.hash, "correct horse battery"));
        assert!(!verify_password(&ana.hash, "correct horse batterY"));

        let tag = hash_tag(&ana.hash);
        passwd(&path, "ana", "a brand new password").unwrap();
        let ana2 = load(&path).unwrap().get("ana").unwrap().clone();
        assert_ne!(hash_tag(&ana2.hash), tag);
        assert!(verify_password(&ana2.hash, "a brand new password"));
        assert_eq!(remove(&path, "bo").unwrap(), Role::Viewer);
        assert!(matches!(remove(&path, "bo"), Err(UserError::Unknown(_))));
        assert_eq!(load(&path).unwrap().users.len(), 1);
    }

    #[test]
    fn the_store_follows_the_file_and_fails_closed() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(USERS_FILE);
        let store = UserStore::new(path.clone());
        assert!(store.current().users.is_empty());
        add(&path, "ana", Role::Admin, "correct horse battery").unwrap();
        assert!(store.current().get("ana").is_some());
        std::fs::write(&path, b"{not json").unwrap();
        assert!(store.current().users.is_empty());
    }
}
