//! The one error type of the crate, with a stable [`ErrorKind`] that language
//! bindings map mechanically onto their own error hierarchies.

use std::fmt;

/// A stable, coarse classification of an [`Error`]. New kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A caller passed a value the API cannot accept.
    InvalidArgument,
    /// The named document, peer or object does not exist.
    NotFound,
    /// The node (or the object) has been closed.
    Closed,
    /// An operation did not finish within its deadline.
    Timeout,
    /// Local file-system or database failure.
    Io,
    /// A network failure: connect, stream or endpoint error.
    Network,
    /// A peer failed (or refused us) formation admission.
    AdmissionRefused,
    /// A peer sent bytes that break the wire protocol.
    Protocol,
    /// Stored or received data could not be decoded, or does not match its hash.
    Corrupt,
    /// A bug: an invariant inside the library did not hold.
    Internal,
    /// The operation was cancelled by the caller.
    Cancelled,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::NotFound => "not found",
            ErrorKind::Closed => "closed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Io => "io",
            ErrorKind::Network => "network",
            ErrorKind::AdmissionRefused => "admission refused",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Internal => "internal",
            ErrorKind::Cancelled => "cancelled",
        };
        f.write_str(s)
    }
}

/// Every fallible call in `peat-mesh` returns this error. New variants may be
/// added: match on [`Error::kind`] for a stable classification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`ErrorKind::InvalidArgument`].
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// See [`ErrorKind::NotFound`].
    #[error("not found: {0}")]
    NotFound(String),
    /// See [`ErrorKind::Closed`].
    #[error("node is closed")]
    Closed,
    /// See [`ErrorKind::Timeout`].
    #[error("timed out: {0}")]
    Timeout(String),
    /// See [`ErrorKind::Io`].
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    /// The redb database failed. Kind [`ErrorKind::Io`].
    #[error("database error: {0}")]
    Database(#[from] redb::Error),
    /// See [`ErrorKind::Network`].
    #[error("network error: {0}")]
    Network(String),
    /// See [`ErrorKind::AdmissionRefused`].
    #[error("admission refused: {0}")]
    AdmissionRefused(String),
    /// See [`ErrorKind::Protocol`].
    #[error("protocol error: {0}")]
    Protocol(String),
    /// See [`ErrorKind::Corrupt`].
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// See [`ErrorKind::Internal`].
    #[error("internal error: {0}")]
    Internal(String),
    /// See [`ErrorKind::Cancelled`].
    #[error("cancelled: {0}")]
    Cancelled(String),
}

impl Error {
    /// The stable kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Closed => ErrorKind::Closed,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Io(_) | Error::Database(_) => ErrorKind::Io,
            Error::Network(_) => ErrorKind::Network,
            Error::AdmissionRefused(_) => ErrorKind::AdmissionRefused,
            Error::Protocol(_) => ErrorKind::Protocol,
            Error::Corrupt(_) => ErrorKind::Corrupt,
            Error::Internal(_) => ErrorKind::Internal,
            Error::Cancelled(_) => ErrorKind::Cancelled,
        }
    }

    /// The message without the kind's prefix.
    pub(crate) fn detail(&self) -> String {
        match self {
            Error::InvalidArgument(s)
            | Error::NotFound(s)
            | Error::Timeout(s)
            | Error::Network(s)
            | Error::AdmissionRefused(s)
            | Error::Protocol(s)
            | Error::Corrupt(s)
            | Error::Internal(s)
            | Error::Cancelled(s) => s.clone(),
            Error::Closed => String::new(),
            Error::Io(e) => e.to_string(),
            Error::Database(e) => e.to_string(),
        }
    }

    /// Rebuilds an error of `kind` from its [`Error::detail`], for errors that
    /// must be reported to several waiters.
    pub(crate) fn from_kind(kind: ErrorKind, detail: String) -> Error {
        match kind {
            ErrorKind::InvalidArgument => Error::InvalidArgument(detail),
            ErrorKind::NotFound => Error::NotFound(detail),
            ErrorKind::Closed => Error::Closed,
            ErrorKind::Timeout => Error::Timeout(detail),
            ErrorKind::Io => Error::Io(std::io::Error::other(detail)),
            ErrorKind::Network => Error::Network(detail),
            ErrorKind::AdmissionRefused => Error::AdmissionRefused(detail),
            ErrorKind::Protocol => Error::Protocol(detail),
            ErrorKind::Corrupt => Error::Corrupt(detail),
            ErrorKind::Internal => Error::Internal(detail),
            ErrorKind::Cancelled => Error::Cancelled(detail),
        }
    }

    pub(crate) fn network(e: impl fmt::Display) -> Self {
        Error::Network(e.to_string())
    }
}

macro_rules! redb_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Database(redb::Error::from(e))
            }
        }
    )*};
}
redb_errors!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<automerge::AutomergeError> for Error {
    fn from(e: automerge::AutomergeError) -> Self {
        Error::Corrupt(e.to_string())
    }
}

/// Shorthand for `Result<T, peat_mesh::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
