//! The library's error type: every bad input becomes one of these, never a panic.

use thiserror::Error;

/// Everything that can go wrong in `gonn`, each with a one-line message naming the problem.
#[derive(Debug, Error)]
pub enum GonnError {
    /// A parameter (lambda, a tolerance, a norm name...) has an invalid value.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
    /// Arrays whose shapes do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// Data that is not finite or outside the domain of the loss.
    #[error("invalid data: {0}")]
    Data(String),
    /// A file that cannot be parsed (corrupt, truncated, wrong type, missing key).
    #[error("cannot read `{path}`: {reason}")]
    Format { path: String, reason: String },
    /// An operating-system I/O failure.
    #[error("i/o error on `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl GonnError {
    pub fn param(name: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidParameter { name, reason: reason.into() }
    }
    pub fn format(path: impl AsRef<std::path::Path>, reason: impl std::fmt::Display) -> Self {
        Self::Format { path: path.as_ref().display().to_string(), reason: reason.to_string() }
    }
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Self::Io { path: path.as_ref().display().to_string(), source }
    }
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, GonnError>;
