//! Objects and keys from `field=value` assignments (`key.name=berlin-1 location.latitude=52.5`):
//! dotted proto field paths of the kind's message, typed through [`Schema`], assembled into the
//! proto JSON of the object and decoded by pbjson into a wire message. Domain validation is the
//! controller's: these only make a well-typed message.
//!
//! Values: string fields take the text as typed; numbers and booleans must parse; enums take
//! their value name (any case, prefix optional); a repeated field takes a JSON array or a comma
//! separated list (`alliance_orgs=telekom,orange`); a message field takes a JSON object.

use edge_api::pb;
use edge_model::ObjectKind;
use prost_types::field_descriptor_proto::Type;
use serde_json::{Map, Value};

use crate::schema::{Field, Schema};

/// Why assignments do not make an object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignError {
    #[error("`{0}`: expected FIELD=VALUE, e.g. key.name=berlin-1")]
    Syntax(String),
    #[error("{path}: unknown field; {message} has {known}")]
    UnknownField {
        path: String,
        message: String,
        known: String,
    },
    #[error("{path}: {problem}")]
    Value { path: String, problem: String },
    #[error("{path}: given more than once")]
    Repeated { path: String },
    #[error("{kind} has no key field {path}; its key fields are {keys}")]
    NotKey {
        kind: ObjectKind,
        path: String,
        keys: String,
    },
    #[error("{kind}: {message}")]
    Decode { kind: ObjectKind, message: String },
    #[error("cannot read the proto descriptors: {0}")]
    Schema(String),
}

/// One `path=value` from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub path: Vec<String>,
    pub raw: String,
}

impl Assignment {
    pub fn parse(arg: &str) -> Result<Self, AssignError> {
        let (path, raw) = arg
            .split_once('=')
            .ok_or_else(|| AssignError::Syntax(arg.to_string()))?;
        let path: Vec<String> = path.split('.').map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            return Err(AssignError::Syntax(arg.to_string()));
        }
        Ok(Self {
            path,
            raw: raw.to_string(),
        })
    }

    pub fn dotted(&self) -> String {
        self.path.join(".")
    }

    /// The top-level field this assigns (what an update's field mask names).
    pub fn top(&self) -> &str {
        &self.path[0]
    }
}

/// The `pb::Object` oneof field (and `pb::ObjectKey` field) of a kind: `cluster_inst`.
pub fn wire_field(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::OperatorCode => "operator_code",
        ObjectKind::Flavor => "flavor",
        ObjectKind::Settings => "settings",
        ObjectKind::Cloudlet => "cloudlet",
        ObjectKind::CloudletInfo => "cloudlet_info",
        ObjectKind::App => "app",
        ObjectKind::ClusterInst => "cluster_inst",
        ObjectKind::AppInst => "app_inst",
    }
}

/// The top-level fields that name an object of `kind` (mirrors edge-api's update-mask rule).
pub fn key_fields(kind: ObjectKind) -> &'static [&'static str] {
    match kind {
        ObjectKind::OperatorCode => &["code"],
        ObjectKind::Flavor => &["name"],
        ObjectKind::Settings => &[],
        _ => &["key"],
    }
}

pub fn is_key(kind: ObjectKind, a: &Assignment) -> bool {
    key_fields(kind).contains(&a.top())
}

/// The proto JSON of `kind`'s message holding `assignments`, each typed by the schema.
pub fn to_json(kind: ObjectKind, assignments: &[Assignment]) -> Result<Value, AssignError> {
    let schema = Schema::load().map_err(|e| AssignError::Schema(e.to_string()))?;
    let mut root = Map::new();
    for a in assignments {
        let value = typed(&schema, kind, a)?;
        insert(&mut root, &a.path, value)
            .map_err(|()| AssignError::Repeated { path: a.dotted() })?;
    }
    Ok(Value::Object(root))
}

/// Walks `a.path` through the schema and converts the raw text for the field it ends at.
fn typed(schema: &Schema, kind: ObjectKind, a: &Assignment) -> Result<Value, AssignError> {
    if a.path.is_empty() {
        return Err(AssignError::Syntax(format!("={}", a.raw)));
    }
    let mut message = Schema::message_name(kind.as_str());
    for i in 0..a.path.len() - 1 {
        let path = a.path[..=i].join(".");
        let field = lookup(schema, &message, &a.path[i], &path)?;
        if field.kind() != Type::Message || field.is_repeated() {
            let problem = "has no sub-fields: assign it directly".to_string();
            return Err(AssignError::Value { path, problem });
        }
        message = field.type_name().to_string();
    }
    let path = a.dotted();
    let field = lookup(schema, &message, &a.path[a.path.len() - 1], &path)?;
    leaf(schema, &field, &a.raw).map_err(|problem| AssignError::Value { path, problem })
}

fn lookup<'s>(
    schema: &'s Schema,
    message: &str,
    name: &str,
    path: &str,
) -> Result<Field<'s>, AssignError> {
    schema
        .field(message, name)
        .map_err(|known| AssignError::UnknownField {
            path: path.to_string(),
            message: message.rsplit('.').next().unwrap_or("").to_string(),
            known: known.join(", "),
        })
}

/// The JSON value of `raw` for `field`; Err: what is wrong with it.
fn leaf(schema: &Schema, field: &Field<'_>, raw: &str) -> Result<Value, String> {
    if !field.is_repeated() {
        return scalar(schema, field, raw);
    }
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(raw) {
        return Ok(Value::Array(items));
    }
    if field.kind() == Type::Message {
        return Err(format!(
            "a list of messages: give a JSON array, e.g. '[{{...}}]' (got `{raw}`)"
        ));
    }
    let items: Result<Vec<Value>, String> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| scalar(schema, field, s))
        .collect();
    items.map(Value::Array)
}

fn scalar(schema: &Schema, field: &Field<'_>, raw: &str) -> Result<Value, String> {
    match field.kind() {
        Type::String | Type::Bytes => Ok(Value::String(raw.to_string())),
        Type::Bool => match raw {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("expected true or false, got `{raw}`")),
        },
        Type::Enum => schema
            .enum_value(field.type_name(), raw)
            .map(Value::String)
            .map_err(|names| {
                format!(
                    "unknown value `{raw}`; expected one of {}",
                    names.join(", ")
                )
            }),
        Type::Message => match serde_json::from_str::<Value>(raw) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(format!(
                "is a message: set its fields ({}.FIELD=...) or give a JSON object (got `{raw}`)",
                field.name()
            )),
        },
        // Every other type is a number.
        _ => match serde_json::from_str::<Value>(raw) {
            Ok(v @ Value::Number(_)) => Ok(v),
            _ => Err(format!("expected a number, got `{raw}`")),
        },
    }
}

/// Inserts `value` at `path`, creating intermediate objects. Err: the path (or a prefix of it)
/// was already given.
fn insert(root: &mut Map<String, Value>, path: &[String], value: Value) -> Result<(), ()> {
    let (head, rest) = path.split_first().ok_or(())?;
    if rest.is_empty() {
        return match root.insert(head.clone(), value) {
            None => Ok(()),
            Some(_) => Err(()),
        };
    }
    let child = root
        .entry(head.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    match child {
        Value::Object(m) => insert(m, rest, value),
        _ => Err(()),
    }
}

/// Overlays `patch` onto `base`: objects merge field by field, anything else replaces.
pub fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// A `pb::Object` of `kind` from the proto JSON of its message.
pub fn object(kind: ObjectKind, body: Value) -> Result<pb::Object, AssignError> {
    let mut env = Map::new();
    env.insert(wire_field(kind).to_string(), body);
    serde_json::from_value(Value::Object(env)).map_err(|e| AssignError::Decode {
        kind,
        message: e.to_string(),
    })
}

/// A `pb::ObjectKey` of `kind` from key-field assignments only.
pub fn key(kind: ObjectKind, assignments: &[Assignment]) -> Result<pb::ObjectKey, AssignError> {
    if let Some(a) = assignments.iter().find(|a| !is_key(kind, a)) {
        return Err(AssignError::NotKey {
            kind,
            path: a.dotted(),
            keys: key_hint(kind),
        });
    }
    let body = match to_json(kind, assignments)? {
        // Keys with a key message are that message; the others are the message's own key field.
        Value::Object(mut m) if key_fields(kind) == ["key"] => {
            m.remove("key").unwrap_or_else(|| Value::Object(Map::new()))
        }
        other => other,
    };
    let mut env = Map::new();
    env.insert(wire_field(kind).to_string(), body);
    serde_json::from_value(Value::Object(env)).map_err(|e| AssignError::Decode {
        kind,
        message: e.to_string(),
    })
}

/// How to name an object of `kind` on the command line.
pub fn key_hint(kind: ObjectKind) -> String {
    match kind {
        ObjectKind::OperatorCode => "code=...".into(),
        ObjectKind::Flavor => "name=...".into(),
        ObjectKind::Settings => "(none: settings is a singleton)".into(),
        ObjectKind::App => "key.organization=... key.name=... key.version=...".into(),
        _ => "key.organization=... key.name=...".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(args: &[&str]) -> Vec<Assignment> {
        args.iter().map(|s| Assignment::parse(s).unwrap()).collect()
    }

    #[test]
    fn cloudlet_from_assignments() {
        let args = a(&[
            "key.organization=telekom",
            "key.name=berlin-2",
            "location.latitude=52.5",
            "location.longitude=13.4",
            "platform_type=fake",
            "alliance_orgs=orange,vodafone",
            "maintenance_state=under_maintenance",
        ]);
        let json = to_json(ObjectKind::Cloudlet, &args).unwrap();
        let Some(pb::object::Obj::Cloudlet(c)) = object(ObjectKind::Cloudlet, json).unwrap().obj
        else {
            panic!("not a cloudlet")
        };
        assert_eq!(c.key.unwrap().name, "berlin-2");
        assert_eq!(c.location.unwrap().latitude, 52.5);
        assert_eq!(c.alliance_orgs, ["orange", "vodafone"]);
        assert_eq!(
            c.maintenance_state,
            pb::MaintenanceState::UnderMaintenance as i32
        );
    }

    #[test]
    fn strings_stay_as_typed() {
        let k = key(
            ObjectKind::App,
            &a(&["key.organization=o", "key.name=n", "key.version=2.30"]),
        )
        .unwrap();
        let Some(pb::object_key::Key::App(k)) = k.key else {
            panic!("not an app key")
        };
        assert_eq!(k.version, "2.30");
        let k = key(ObjectKind::OperatorCode, &a(&["code=26201"])).unwrap();
        assert!(matches!(k.key, Some(pb::object_key::Key::OperatorCode(c)) if c.code == "26201"));
    }

    #[test]
    fn errors_name_the_path() {
        let err = |args: &[&str]| {
            to_json(ObjectKind::Cloudlet, &a(args))
                .unwrap_err()
                .to_string()
        };
        assert!(
            err(&["location.colour=red"])
                .starts_with("location.colour: unknown field; Loc has latitude, longitude")
        );
        assert!(err(&["location.latitude=north"]).contains("location.latitude: expected a number"));
        assert!(
            err(&["state=sleepy"])
                .contains("state: unknown value `sleepy`; expected one of CLOUDLET_STATE_UNKNOWN")
        );
        assert!(err(&["location=1"]).contains("location: is a message"));
        assert!(err(&["key.name=a", "key.name=b"]).contains("key.name: given more than once"));
        assert!(err(&["platform_type.x=1"]).contains("platform_type: has no sub-fields"));
        assert!(matches!(
            Assignment::parse("novalue"),
            Err(AssignError::Syntax(_))
        ));
        let e = key(ObjectKind::Cloudlet, &a(&["key.name=a", "platform_type=x"])).unwrap_err();
        assert!(
            e.to_string()
                .contains("Cloudlet has no key field platform_type")
        );
    }
}
