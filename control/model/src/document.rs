//! The deployment document (format v1, `shared/spec/deployment-document.md`): one YAML or JSON
//! text describing a region — settings, operator codes, flavors, cloudlets, apps, cluster and app
//! instances. [`parse`] validates it whole (every reference resolves, values in range) or rejects
//! it whole; [`to_yaml`] prints a [`Deployment`] back so that `parse(to_yaml(d)) == d`.
//!
//! # How errors get their line and path
//!
//! - Schema errors (unknown field, wrong type, YAML syntax, duplicate mapping key) come from
//!   `serde-saphyr` with a line and column. Their field path (`cloudlets[2].location.colour`)
//!   is recovered by a second pass over the parser's event stream that tracks the path up to
//!   that position (module `locate`); it runs only when there is an error.
//! - Semantic errors (dangling references, duplicates, bad coordinates, bad enum names) use the
//!   line of a `serde_saphyr::Spanned` wrapper kept on each list item and on the fields that are
//!   validated after deserialisation; the path is built while converting.
//! - JSON: a document whose first non-blank character is `{` or `[` is JSON and is first checked
//!   by `serde_json`, so JSON syntax errors carry serde_json's line and message. A valid JSON
//!   text is valid YAML and then goes through the same YAML path (and the same spans).
//!
//! # Defaults
//!
//! `region` is `local`; a cloudlet's `state` is READY (a standalone document stands in for the
//! CRM that would report it), `maintenance_state` NORMAL_OPERATION, `platform_type` `fake`; an
//! app's `deployment` is `docker`; a cluster instance has `ip_access: shared`, 1 master and 0
//! nodes; an app instance is READY with health OK, its `uri` is
//! `<app-label>.<cloudlet-name>-<cloudlet-org>.<region>.<app_dns_root>` ([`crate::naming`]) and
//! its `mapped_ports` are the app's access ports with public = internal.
//!
//! # Checks beyond the spec's list
//!
//! Explicit `mapped_ports` must each name one of the app's access ports (same proto, port and
//! range); a mapped port's `public_port` defaults to its `internal_port`. `region` and
//! `app_dns_root` must be usable in DNS names. `auth_public_key` must look like PEM. Repeated
//! mapping keys are rejected as YAML errors. The fixed point `parse(to_yaml(d)) == d` holds for
//! every `d` that `parse` returned (hand-built deployments must keep access ports' public port
//! equal to the internal one, as parsing does).

mod check;
mod convert;
mod emit;
mod instances;
mod locate;
mod raw;

pub use raw::MAX_DOCUMENT_BYTES;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use geodata::CoordError;

use crate::enums::ParseEnumError;
use crate::object::ObjectKey;
use crate::ports::PortsError;
use crate::types::{App, AppInst, Cloudlet, ClusterInst, Flavor, OperatorCode, Settings};

/// The only document format version.
pub const VERSION: i64 = 1;

/// Region used when a document names none.
pub const DEFAULT_REGION: &str = "local";

/// A validated deployment document: every reference resolves and every defaulted field is
/// filled in (app instances always have `uri` and `mapped_ports`).
#[derive(Clone, Debug, PartialEq)]
pub struct Deployment {
    pub region: String,
    pub settings: Settings,
    pub operator_codes: Vec<OperatorCode>,
    pub flavors: Vec<Flavor>,
    pub cloudlets: Vec<Cloudlet>,
    pub apps: Vec<App>,
    pub cluster_insts: Vec<ClusterInst>,
    pub app_insts: Vec<AppInst>,
}

/// Why a document was rejected, and where.
#[derive(Debug, thiserror::Error)]
#[error("{}{kind}{}", PathPrefix(.path), LineSuffix(*.line))]
pub struct DocumentError {
    /// Field path in the document, e.g. `app_insts[3].cloudlet`; empty when unknown or when the
    /// error is about the whole document.
    pub path: String,
    /// 1-based line the error points at, when known.
    pub line: Option<usize>,
    /// 1-based column, when known (schema and syntax errors).
    pub column: Option<usize>,
    pub kind: ErrorKind,
}

/// What was wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    #[error("cannot read {}: {source}", .file.display())]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid JSON: {0}")]
    Json(String),
    /// YAML syntax, a wrong type, a missing field or a repeated mapping key.
    #[error("{0}")]
    Syntax(String),
    #[error("unknown field `{field}`; expected one of {expected}")]
    UnknownField { field: String, expected: String },
    #[error("{0}")]
    Version(String),
    #[error("must not be empty")]
    Empty,
    #[error("{0}")]
    Invalid(String),
    // The larger payloads are boxed to keep `Result<_, DocumentError>` small (clippy's
    // result_large_err would otherwise fire here and in every caller).
    #[error(transparent)]
    Enum(Box<ParseEnumError>),
    #[error(transparent)]
    Coordinates(#[from] CoordError),
    #[error(transparent)]
    Ports(Box<PortsError>),
    #[error("duplicate {what} {key} (first defined on line {first_line})")]
    Duplicate {
        what: &'static str,
        key: String,
        first_line: usize,
    },
    #[error("{what} {key} is not defined")]
    Dangling { what: &'static str, key: String },
    #[error("{0}")]
    Mismatch(String),
}

/// Parses and validates a document (YAML, or JSON when it starts with `{` or `[`).
pub fn parse(text: &str) -> Result<Deployment, DocumentError> {
    let raw = raw::read(text)?;
    convert::convert(&raw)
}

/// Reads and parses a document file.
pub fn load(path: &Path) -> Result<Deployment, DocumentError> {
    parse(&read_file(path)?)
}

/// Fields of an app instance that a document may set for a standalone DME, but that a
/// controller computes itself: `uri` and `mapped_ports` from the app, cluster and cloudlet
/// (ports allocated on the shared root LB), `state` from the CRM, `health` from the root LB.
pub const CONTROLLER_COMPUTED: [&str; 4] = ["uri", "mapped_ports", "state", "health"];

/// An object whose document entry sets fields a controller computes (and so does not take).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComputedFields {
    /// The entry's path, e.g. `app_insts[3]`.
    pub path: String,
    pub line: Option<usize>,
    pub key: ObjectKey,
    /// The fields given, in [`CONTROLLER_COMPUTED`] order.
    pub fields: Vec<&'static str>,
}

/// [`parse`], also saying which entries set fields of [`CONTROLLER_COMPUTED`]: what a client of
/// the controller should tell its user it does not send.
pub fn parse_noting_computed(
    text: &str,
) -> Result<(Deployment, Vec<ComputedFields>), DocumentError> {
    let raw = raw::read(text)?;
    let deployment = convert::convert(&raw)?;
    let notes = raw
        .app_insts
        .iter()
        .zip(&deployment.app_insts)
        .enumerate()
        .filter_map(|(i, (item, inst))| {
            let a = &item.value;
            let given = [
                a.uri.is_some(),
                a.mapped_ports.is_some(),
                a.state.is_some(),
                a.health.is_some(),
            ];
            let fields: Vec<&'static str> = CONTROLLER_COMPUTED
                .iter()
                .zip(given)
                .filter_map(|(f, g)| g.then_some(*f))
                .collect();
            (!fields.is_empty()).then(|| ComputedFields {
                path: format!("app_insts[{i}]"),
                line: check::line_of(item),
                key: ObjectKey::AppInst(inst.key.clone()),
                fields,
            })
        })
        .collect();
    Ok((deployment, notes))
}

/// [`load`], noting computed fields as [`parse_noting_computed`] does.
pub fn load_noting_computed(
    path: &Path,
) -> Result<(Deployment, Vec<ComputedFields>), DocumentError> {
    parse_noting_computed(&read_file(path)?)
}

fn read_file(path: &Path) -> Result<String, DocumentError> {
    std::fs::read_to_string(path).map_err(|source| DocumentError {
        path: String::new(),
        line: None,
        column: None,
        kind: ErrorKind::Io {
            file: path.to_owned(),
            source,
        },
    })
}

/// Prints a deployment as a document with short enum names and every computed field explicit,
/// so that `parse(&to_yaml(d))` gives `d` back.
pub fn to_yaml(deployment: &Deployment) -> String {
    emit::to_yaml(deployment)
}

impl From<ParseEnumError> for ErrorKind {
    fn from(e: ParseEnumError) -> Self {
        Self::Enum(Box::new(e))
    }
}

impl From<PortsError> for ErrorKind {
    fn from(e: PortsError) -> Self {
        Self::Ports(Box::new(e))
    }
}

// === impl DocumentError ===

impl DocumentError {
    pub(crate) fn at(path: impl Into<String>, line: Option<usize>, kind: ErrorKind) -> Self {
        Self {
            path: path.into(),
            line,
            column: None,
            kind,
        }
    }
}

struct PathPrefix<'a>(&'a str);

impl fmt::Display for PathPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "{}: ", self.0)
        }
    }
}

struct LineSuffix(Option<usize>);

impl fmt::Display for LineSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, " (line {line})"),
            None => Ok(()),
        }
    }
}
