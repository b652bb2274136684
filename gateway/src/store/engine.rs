//! The storage engine behind the store: a small trait, so another embedded engine could replace sled.
//!
//! The store needs only ordered trees with point reads, ordered scans, atomic multi-tree batches, a durable flush,
//! a monotonic id source and the size on disk. [`SledEngine`] implements it with sled 0.34 (one sled tree per
//! [`Tree`], batches as multi-tree transactions).

use std::path::{Path, PathBuf};

use sled::Transactional as _;
use sled::transaction::{ConflictableTransactionError, TransactionError};

/// The store's trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tree {
    /// Capture records.
    Captures,
    /// Local results.
    Local,
    /// Central results.
    Central,
    /// The outbox.
    Outbox,
    /// Small named values (the watchlist).
    Meta,
    /// Records that failed their checksum, kept for inspection.
    Quarantine,
}

impl Tree {
    const ALL: [Tree; 6] = [
        Tree::Captures,
        Tree::Local,
        Tree::Central,
        Tree::Outbox,
        Tree::Meta,
        Tree::Quarantine,
    ];

    /// The tree's name on disk.
    pub fn name(self) -> &'static str {
        match self {
            Self::Captures => "captures",
            Self::Local => "local",
            Self::Central => "central",
            Self::Outbox => "outbox",
            Self::Meta => "meta",
            Self::Quarantine => "quarantine",
        }
    }
}

/// One write in an atomic batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Insert or replace.
    Put(Tree, Vec<u8>, Vec<u8>),
    /// Remove (no error if absent).
    Delete(Tree, Vec<u8>),
}

/// Key-value pairs returned by a scan.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// An engine failure.
#[derive(Debug, thiserror::Error)]
#[error("storage engine: {0}")]
pub struct EngineError(pub String);

/// What the store needs from an embedded key-value engine.
pub trait Engine: Send + Sync + std::fmt::Debug + 'static {
    /// Point read.
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;
    /// Applies all ops atomically: after a crash, all or none are visible.
    fn apply(&self, ops: Vec<Op>) -> Result<(), EngineError>;
    /// Up to `limit` entries in key order, strictly after `after` (from the start if `None`).
    fn scan(&self, tree: Tree, after: Option<&[u8]>, limit: usize) -> Result<Entries, EngineError>;
    /// Entries in a tree.
    fn len(&self, tree: Tree) -> u64;
    /// Makes every applied batch durable (fsync). Blocking.
    fn flush(&self) -> Result<(), EngineError>;
    /// A new id, greater than every id returned before, across restarts.
    fn next_id(&self) -> Result<u64, EngineError>;
    /// Bytes the engine occupies on disk.
    fn size_on_disk(&self) -> u64;
}

/// sled 0.34.
#[derive(Debug, Clone)]
pub struct SledEngine {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    path: PathBuf,
}

fn e(err: impl std::fmt::Display) -> EngineError {
    EngineError(err.to_string())
}

impl SledEngine {
    /// Opens or creates the database folder (sled's own error, so callers can tell corruption from I/O), with a
    /// page cache of `cache_bytes` (sled's `cache_capacity`).
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Self, sled::Error> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .open()?;
        let trees = Tree::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            db,
            trees,
            path: path.to_owned(),
        })
    }

    fn tree(&self, t: Tree) -> &sled::Tree {
        &self.trees[Tree::ALL.iter().position(|x| *x == t).unwrap_or(0)]
    }
}

impl Engine for SledEngine {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.tree(tree).get(key).map_err(e)?.map(|v| v.to_vec()))
    }

    fn apply(&self, ops: Vec<Op>) -> Result<(), EngineError> {
        let trees: Vec<&sled::Tree> = Tree::ALL.iter().map(|t| self.tree(*t)).collect();
        let index = |t: Tree| Tree::ALL.iter().position(|x| *x == t).unwrap_or(0);
        trees
            .as_slice()
            .transaction(|tx| {
                for op in &ops {
                    match op {
                        Op::Put(t, k, v) => {
                            tx[index(*t)].insert(k.as_slice(), v.as_slice())?;
                        }
                        Op::Delete(t, k) => {
                            tx[index(*t)].remove(k.as_slice())?;
                        }
                    }
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(|err: TransactionError<()>| e(format!("{err:?}")))
    }

    fn scan(&self, tree: Tree, after: Option<&[u8]>, limit: usize) -> Result<Entries, EngineError> {
        let t = self.tree(tree);
        let iter = match after {
            Some(k) => {
                t.range::<&[u8], _>((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded))
            }
            None => t.iter(),
        };
        iter.take(limit)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(e))
            .collect()
    }

    fn len(&self, tree: Tree) -> u64 {
        self.tree(tree).len() as u64
    }

    fn flush(&self) -> Result<(), EngineError> {
        self.db.flush().map(|_| ()).map_err(e)
    }

    fn next_id(&self) -> Result<u64, EngineError> {
        self.db.generate_id().map_err(e)
    }

    fn size_on_disk(&self) -> u64 {
        self.db
            .size_on_disk()
            .unwrap_or_else(|_| dir_size(&self.path))
    }
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
