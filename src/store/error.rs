//! Errors of the storage layer, classified by what the caller should do about them.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The database stayed locked past the busy timeout; the caller may retry later (503).
    #[error("the database is busy")]
    Busy,
    /// A uniqueness rule refused the write (SCIM 409).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    /// The write was refused on purpose by the job (e.g. a user found inactive); nothing changed.
    #[error("refused: {0}")]
    Refused(String),
    /// A stored value could not be decoded (a bug or a hand-edited database).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the writer thread has stopped")]
    WriterGone,
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Busy
            }
            _ => StoreError::Sqlite(e),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;
