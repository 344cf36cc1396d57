//! The document as written: serde structs that mirror the text, with `Spanned` wrappers where a
//! later validation step needs a line. Every struct denies unknown fields, and optional fields
//! are `Option` so defaults are applied (and documented) in one place, the converter.

use serde::Deserialize;
use serde_saphyr::MessageFormatter as _;
use serde_saphyr::{Spanned, UserMessageFormatter};

use super::{DocumentError, ErrorKind, locate};

pub(super) type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDocument {
    // Optional here so a missing version gets our message rather than serde's.
    pub version: Option<S<i64>>,
    pub region: Option<S<String>>,
    pub settings: Option<S<RawSettings>>,
    #[serde(default)]
    pub operator_codes: Vec<S<RawOperatorCode>>,
    #[serde(default)]
    pub flavors: Vec<S<RawFlavor>>,
    #[serde(default)]
    pub cloudlets: Vec<S<RawCloudlet>>,
    #[serde(default)]
    pub apps: Vec<S<RawApp>>,
    #[serde(default)]
    pub cluster_insts: Vec<S<RawClusterInst>>,
    #[serde(default)]
    pub app_insts: Vec<S<RawAppInst>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSettings {
    pub public_cloud_orgs: Option<Vec<S<String>>>,
    pub public_cloud_padding_km: Option<S<f64>>,
    pub very_close_km: Option<S<f64>>,
    pub randomize_very_close: Option<bool>,
    pub network_location: Option<S<RawNetworkLocation>>,
    pub app_dns_root: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetworkLocation {
    pub kind: S<String>,
    pub latitude: Option<S<f64>>,
    pub longitude: Option<S<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOperatorCode {
    pub code: String,
    pub organization: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFlavor {
    pub name: String,
    pub ram_mb: u64,
    pub vcpus: u64,
    pub disk_gb: u64,
}

/// `{organization, name}`: the key of cloudlets, cluster instances and app instances.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOrgName {
    pub organization: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAppKey {
    pub organization: String,
    pub name: String,
    pub version: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLocation {
    pub latitude: S<f64>,
    pub longitude: S<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCloudlet {
    pub key: S<RawOrgName>,
    pub location: S<RawLocation>,
    pub platform_type: Option<S<String>>,
    #[serde(default)]
    pub alliance_orgs: Vec<S<String>>,
    pub maintenance_state: Option<S<String>>,
    pub state: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApp {
    pub key: S<RawAppKey>,
    pub deployment: Option<S<String>>,
    pub image_path: Option<String>,
    pub access_ports: Option<S<String>>,
    pub default_flavor: Option<S<String>>,
    pub official_fqdn: Option<String>,
    pub android_package_name: Option<String>,
    pub auth_public_key: Option<S<String>>,
    pub platform_app: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClusterInst {
    pub key: S<RawOrgName>,
    pub cloudlet: S<RawOrgName>,
    pub flavor: Option<S<String>>,
    pub ip_access: Option<S<String>>,
    pub num_masters: Option<u32>,
    pub num_nodes: Option<u32>,
    /// What a CRM would report; given only where no CRM runs (standalone documents).
    pub node_address: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAppInst {
    pub key: S<RawOrgName>,
    pub app: S<RawAppKey>,
    pub cloudlet: S<RawOrgName>,
    pub cluster: Option<S<String>>,
    pub uri: Option<S<String>>,
    pub mapped_ports: Option<Vec<S<RawMappedPort>>>,
    pub state: Option<S<String>>,
    pub health: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMappedPort {
    pub proto: S<String>,
    pub internal_port: i32,
    pub public_port: Option<i32>,
    pub end_port: Option<i32>,
    pub tls: Option<bool>,
    pub nginx: Option<bool>,
    pub max_pkt_size: Option<i64>,
    pub fqdn_prefix: Option<String>,
}

/// The largest document accepted: a region of a million app instances is about 300 MB of YAML.
pub const MAX_DOCUMENT_BYTES: usize = 512 << 20;

/// Deserialises the text; JSON (first non-blank character `{` or `[`) must be strict JSON.
pub(super) fn read(text: &str) -> Result<RawDocument, DocumentError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(DocumentError::at(
            "",
            None,
            ErrorKind::Invalid(format!(
                "document of {} bytes is larger than the limit of {} MiB",
                text.len(),
                MAX_DOCUMENT_BYTES >> 20
            )),
        ));
    }
    let body = text.trim_start_matches('\u{feff}').trim_start();
    if body.starts_with('{') || body.starts_with('[') {
        check_json(text)?;
    }
    serde_saphyr::from_str_with_options::<RawDocument>(text, options(text.len()))
        .map_err(|e| yaml_error(text, &e))
}

/// Parse limits for a text of `len` bytes. Without aliases each node, event and scalar byte
/// needs at least one byte of input, so limits proportional to the size never refuse a plain
/// document, however large (the fixed defaults refused a region of 10 000 cloudlets). The node
/// budget also counts what aliases replay, so an alias bomb stops after work linear in its
/// size; that makes the library's alias-to-anchor ratio heuristic redundant, and it is off (it
/// refused a region whose instances all name their app through one anchor). Nesting keeps the
/// library's default cap.
fn options(len: usize) -> serde_saphyr::Options {
    let mut b = serde_saphyr::Budget::default();
    b.max_nodes = b.max_nodes.max(len);
    // A node is at most a start and an end event.
    b.max_events = b.max_events.max(len.saturating_mul(2));
    b.max_total_scalar_bytes = b.max_total_scalar_bytes.max(len);
    b.enforce_alias_anchor_ratio = false;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(b);
    let replayed = &mut options.alias_limits.max_total_replayed_events;
    *replayed = (*replayed).max(len.saturating_mul(2));
    options
}

fn check_json(text: &str) -> Result<(), DocumentError> {
    let text = text.trim_start_matches('\u{feff}');
    let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) else {
        return Ok(());
    };
    // serde_json appends " at line L column C"; the line and column are kept as fields instead.
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    let line = (e.line() > 0).then_some(e.line());
    Err(DocumentError {
        path: line
            .map(|l| locate::path_at(text, l, e.column()))
            .unwrap_or_default(),
        line,
        column: (e.column() > 0).then_some(e.column()),
        kind: ErrorKind::Json(one_line(&message)),
    })
}

fn yaml_error(text: &str, err: &serde_saphyr::Error) -> DocumentError {
    let err = err.without_snippet();
    let location = err.location().filter(|l| l.line() > 0);
    let line = location.and_then(|l| usize::try_from(l.line()).ok());
    let column = location.and_then(|l| usize::try_from(l.column()).ok());
    let kind = match err {
        serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } => ErrorKind::UnknownField {
            field: field.clone(),
            expected: expected.join(", "),
        },
        // The formatter gives the message without the " at line, column" suffix.
        other => ErrorKind::Syntax(one_line(&UserMessageFormatter.format_message(other))),
    };
    let path = match (line, column) {
        (Some(l), Some(c)) if matches!(err, serde_saphyr::Error::SerdeMissingField { .. }) => {
            locate::container_at(text, l, c)
        }
        (Some(l), Some(c)) => locate::path_at(text, l, c),
        _ => String::new(),
    };
    DocumentError {
        path,
        line,
        column,
        kind,
    }
}

/// Escapes control characters (hostile input can put them into parser messages) so an error
/// always prints as one line.
fn one_line(message: &str) -> String {
    message
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_debug().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn limits_grow_with_the_input_and_never_fall_below_the_defaults() {
        let small = super::options(100);
        let defaults = serde_saphyr::Options::default();
        let (b, d) = (small.budget.unwrap(), defaults.budget.unwrap());
        assert_eq!((b.max_nodes, b.max_events), (d.max_nodes, d.max_events));
        let big = super::options(30 << 20);
        let b = big.budget.unwrap();
        assert_eq!(b.max_nodes, 30 << 20);
        assert_eq!(b.max_events, 60 << 20);
        assert_eq!(big.alias_limits.max_total_replayed_events, 60 << 20);
        // Nesting is not relaxed by size.
        assert_eq!(b.max_depth, d.max_depth);
    }
}
