//! Errors of the storage layer, classified by what the caller should do about them. No
//! database type appears here: each backend turns its own errors into these.

use thiserror::Error;

/// A backend's own error, kept as the source of [`StoreError::Database`] and friends.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The database stayed locked past the busy timeout (or a serialization conflict outlived
    /// its retries); the caller may retry later (503).
    #[error("the database is busy")]
    Busy,
    /// A uniqueness rule refused the write (SCIM 409).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    /// A query the backend cannot express (a SCIM filter it has no translation for).
    #[error("unsupported query: {0}")]
    Unsupported(String),
    /// A value this database cannot hold (PostgreSQL text has no NUL character): the request
    /// is refused as invalid, nothing is written.
    #[error("cannot store this value: {0}")]
    Unstorable(String),
    /// A stored value could not be decoded (a bug or a hand-edited database).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The commit of a write failed after the job itself succeeded; nothing was written.
    #[error("commit failed: {0}")]
    CommitFailed(String),
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: Cause,
    },
    /// The database is not reachable right now (the server is down, the connection broke).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("the writer has stopped")]
    WriterGone,
    #[error("database: {0}")]
    Database(#[source] Cause),
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;
