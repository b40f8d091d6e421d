//! Errors a user can cause, with iptables' exit codes.

use std::fmt;

/// iptables' exit codes (xtables.h `enum xtables_exittype`).
pub const OTHER_PROBLEM: i32 = 1;
pub const PARAMETER_PROBLEM: i32 = 2;
pub const VERSION_PROBLEM: i32 = 3;
pub const RESOURCE_PROBLEM: i32 = 4;

/// How the message is shaped on stderr, as iptables shapes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `PROG v1.8.9 (legacy): MESSAGE` followed by the "Try `PROG -h'" line (xtables_error with
    /// PARAMETER_PROBLEM).
    Parameter,
    /// MESSAGE, then the "Try `PROG -h'" line (iptables' "Bad argument" errors).
    TryHelp,
    /// `PROG vVERSION (legacy): MESSAGE` alone.
    Versioned,
    /// `PROG: MESSAGE.` (libiptc errors such as "Bad rule (does a matching rule exist in that
    /// chain?)").
    Plain,
    /// The message exactly as given.
    Raw,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: i32,
    pub style: Style,
    pub message: String,
}

impl Error {
    pub fn parameter(message: impl Into<String>) -> Self {
        Error {
            code: PARAMETER_PROBLEM,
            style: Style::Parameter,
            message: message.into(),
        }
    }
    pub fn try_help(message: impl Into<String>) -> Self {
        Error {
            code: PARAMETER_PROBLEM,
            style: Style::TryHelp,
            message: message.into(),
        }
    }
    pub fn versioned(code: i32, message: impl Into<String>) -> Self {
        Error {
            code,
            style: Style::Versioned,
            message: message.into(),
        }
    }
    pub fn plain(code: i32, message: impl Into<String>) -> Self {
        Error {
            code,
            style: Style::Plain,
            message: message.into(),
        }
    }
    pub fn raw(code: i32, message: impl Into<String>) -> Self {
        Error {
            code,
            style: Style::Raw,
            message: message.into(),
        }
    }

    /// The text for stderr, as iptables would print it under the program name `prog`.
    pub fn render(&self, prog: &str) -> String {
        match self.style {
            Style::Parameter => format!(
                "{prog} v{v} (legacy): {m}\nTry `{prog} -h' or '{prog} --help' for more information.\n",
                v = crate::IPTABLES_VERSION,
                m = self.message
            ),
            // exit_tryhelp alone has no message line.
            Style::TryHelp if self.message.is_empty() => {
                format!("Try `{prog} -h' or '{prog} --help' for more information.\n")
            }
            Style::TryHelp => format!(
                "{m}\nTry `{prog} -h' or '{prog} --help' for more information.\n",
                m = self.message
            ),
            Style::Versioned => {
                format!(
                    "{prog} v{v} (legacy): {m}\n",
                    v = crate::IPTABLES_VERSION,
                    m = self.message
                )
            }
            Style::Plain => format!("{prog}: {}.\n", self.message),
            Style::Raw => self.message.clone(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Kernel-side failures (the data plane, the lock's file, the namespace's interfaces): not
/// the user's syntax, but something they must hear about, with iptables' RESOURCE_PROBLEM.
impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        Error::raw(RESOURCE_PROBLEM, format!("pcn-iptables: {e:#}\n"))
    }
}

pub type Result<T> = std::result::Result<T, Error>;
