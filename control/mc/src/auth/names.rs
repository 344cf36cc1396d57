//! Names of users and organisations (upstream's `ValidName`): ASCII letters, digits, `_`, `.`
//! and `-`; not starting with `.` or `-`, not ending with `.`; never `::` (the separator of
//! upstream's RBAC subjects `org::user`) nor `&`; at most 64 characters. Whether a name is
//! taken (by a user or an organisation, ignoring ASCII case) is the store's question.

/// The longest name.
pub const MAX_NAME_LEN: usize = 64;

/// Why a name is refused (HTTP 400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name cannot be empty")]
    Empty,
    #[error("name is {len} characters long, at most {MAX_NAME_LEN} are allowed")]
    TooLong { len: usize },
    #[error("name cannot contain \"::\"")]
    DoubleColon,
    #[error("name cannot contain \"&\"")]
    Ampersand,
    #[error("name cannot start with {0:?}")]
    BadStart(char),
    #[error("name cannot end with \".\"")]
    EndsWithDot,
    #[error("name cannot contain {0:?}: only letters, digits, \"_\", \".\" and \"-\" are allowed")]
    BadChar(char),
}

/// Checks a user or organisation name.
pub fn valid_name(name: &str) -> Result<(), NameError> {
    let len = name.chars().count();
    if len == 0 {
        return Err(NameError::Empty);
    }
    if len > MAX_NAME_LEN {
        return Err(NameError::TooLong { len });
    }
    if name.contains("::") {
        return Err(NameError::DoubleColon);
    }
    if name.contains('&') {
        return Err(NameError::Ampersand);
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_.-".contains(*c)))
    {
        return Err(NameError::BadChar(c));
    }
    if let Some(c @ ('.' | '-')) = name.chars().next() {
        return Err(NameError::BadStart(c));
    }
    if name.ends_with('.') {
        return Err(NameError::EndsWithDot);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let ok = ["alice", "Dev_Org-1", "a.b", "_x", "9lives", &"a".repeat(64)];
        for n in ok {
            assert_eq!(valid_name(n), Ok(()), "{n}");
        }
        let bad: &[(&str, NameError)] = &[
            ("", NameError::Empty),
            (&"a".repeat(65), NameError::TooLong { len: 65 }),
            ("org::alice", NameError::DoubleColon),
            ("a&b", NameError::Ampersand),
            (".hidden", NameError::BadStart('.')),
            ("-dash", NameError::BadStart('-')),
            ("trailing.", NameError::EndsWithDot),
            ("with space", NameError::BadChar(' ')),
            ("a:b", NameError::BadChar(':')),
            ("ünïcode", NameError::BadChar('ü')),
            ("a/b", NameError::BadChar('/')),
        ];
        for (n, e) in bad {
            assert_eq!(valid_name(n).as_ref(), Err(e), "{n}");
        }
        assert_eq!(
            valid_name("a b").unwrap_err().to_string(),
            "name cannot contain ' ': only letters, digits, \"_\", \".\" and \"-\" are allowed"
        );
    }
}
