//! The SDK's one error type: a stable kind, a message and detail. Every language
//! maps [`ErrorCode`] mechanically onto its own error hierarchy.

use std::fmt;

/// Stable error codes shared by every binding. `Ok` is only used by the C ABI.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Success.
    Ok = 0,
    /// An argument was invalid (NULL pointer, bad UTF-8, bad JSON, bad id …).
    InvalidArgument = 1,
    /// No such document or object.
    NotFound = 2,
    /// The handle is zero, stale, or was closed.
    InvalidHandle = 3,
    /// The node or subscription is closed.
    Closed = 4,
    /// The operation did not finish in time.
    Timeout = 5,
    /// File or database failure.
    Io = 6,
    /// Network failure.
    Network = 7,
    /// A peer refused (or failed) formation admission.
    AdmissionRefused = 8,
    /// A peer broke the wire protocol.
    Protocol = 9,
    /// Stored or received data could not be decoded.
    Corrupt = 10,
    /// The SDK runtime was shut down.
    ShutDown = 11,
    /// A blocking call was made from an SDK runtime thread (e.g. inside a callback
    /// running on a worker); call it from another thread.
    WouldDeadlock = 12,
    /// A bug inside the SDK (including a caught panic).
    Internal = 13,
    /// The operation was cancelled through its cancel token.
    Cancelled = 14,
}

impl ErrorCode {
    /// A stable lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Ok => "ok",
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::NotFound => "not_found",
            ErrorCode::InvalidHandle => "invalid_handle",
            ErrorCode::Closed => "closed",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Io => "io",
            ErrorCode::Network => "network",
            ErrorCode::AdmissionRefused => "admission_refused",
            ErrorCode::Protocol => "protocol",
            ErrorCode::Corrupt => "corrupt",
            ErrorCode::ShutDown => "shut_down",
            ErrorCode::WouldDeadlock => "would_deadlock",
            ErrorCode::Internal => "internal",
            ErrorCode::Cancelled => "cancelled",
        }
    }
}

/// An SDK error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SdkError {
    /// The stable kind.
    pub code: ErrorCode,
    /// A human-readable message.
    pub message: String,
}

impl fmt::Display for SdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl SdkError {
    /// An error of `code` with `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        SdkError {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }
}

impl From<peat_mesh::Error> for SdkError {
    fn from(e: peat_mesh::Error) -> Self {
        use peat_mesh::ErrorKind as K;
        let code = match e.kind() {
            K::InvalidArgument => ErrorCode::InvalidArgument,
            K::NotFound => ErrorCode::NotFound,
            K::Closed => ErrorCode::Closed,
            K::Timeout => ErrorCode::Timeout,
            K::Io => ErrorCode::Io,
            K::Network => ErrorCode::Network,
            K::AdmissionRefused => ErrorCode::AdmissionRefused,
            K::Protocol => ErrorCode::Protocol,
            K::Corrupt => ErrorCode::Corrupt,
            K::Cancelled => ErrorCode::Cancelled,
            _ => ErrorCode::Internal,
        };
        SdkError::new(code, e.to_string())
    }
}

/// Shorthand for SDK results.
pub type SdkResult<T> = Result<T, SdkError>;
