//! The parts of the CAMARA wire contract every CAMARA front shares (the DME's discovery and
//! location APIs, the MC's Edge Application Management): the `x-correlator` header's rule and
//! the error body, ErrorInfo `{status, code, message}`. Each front keeps its own error type
//! (the MC's carries audit state) and builds the body here.

use serde_json::{Value, json};

/// The correlation header, echoed on every answer.
pub const X_CORRELATOR: &str = "x-correlator";

/// The longest ErrorInfo `message` (the newer specs bound it to 512 characters).
pub const MAX_MESSAGE_CHARS: usize = 512;

/// Whether `v` matches the specs' `^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$`.
pub fn valid_correlator(v: &[u8]) -> bool {
    v.len() <= 256
        && v.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_:;./<>{}".contains(c))
}

/// `message` cut to [`MAX_MESSAGE_CHARS`] (a message quoting a long value would break the
/// schema).
pub fn bounded_message(mut message: String) -> String {
    if let Some((at, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS - 1) {
        message.truncate(at);
        message.push('…');
    }
    message
}

/// The ErrorInfo body.
pub fn error_body(status: u16, code: &str, message: &str) -> Value {
    json!({"status": status, "code": code, "message": message})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlators() {
        assert!(valid_correlator(b""));
        assert!(valid_correlator(b"b4333c46-49c0-4f62-80d7-f0ef930f1c46"));
        assert!(valid_correlator(b"a:b;c./<>{}_"));
        assert!(!valid_correlator(b"has space"));
        assert!(!valid_correlator("ü".as_bytes()));
        assert!(!valid_correlator(b"quote\""));
        assert!(!valid_correlator(&[b'a'; 257]));
    }

    #[test]
    fn long_messages_are_cut_to_512_characters() {
        let m = bounded_message(format!("bad value {}", "é".repeat(2000)));
        assert_eq!(m.chars().count(), 512);
        assert!(m.ends_with('…'));
        assert_eq!(bounded_message("short".into()), "short");
    }
}
