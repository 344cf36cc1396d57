//! The control-plane protos' field types, read from edge-api's descriptor set, so that
//! `field=value` assignments are typed by the message they land in: a string field takes the
//! text as typed (`key.version=2.3` stays "2.3"), a number field must parse as a number, an enum
//! takes its value name in any case with or without the enum's prefix, and a misspelt field is
//! reported with the fields that exist.

use std::collections::HashMap;

use edge_api::pb;
use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FieldDescriptorProto};

/// The proto package of the control-plane messages.
const PACKAGE: &str = ".edgeplane.v1";

/// Messages and enums by full name (`.edgeplane.v1.Cloudlet`, `.edgeplane.v1.NetworkLocation.Kind`).
pub struct Schema {
    messages: HashMap<String, DescriptorProto>,
    enums: HashMap<String, EnumDescriptorProto>,
}

/// One field of a message.
pub struct Field<'a> {
    pub desc: &'a FieldDescriptorProto,
}

impl Field<'_> {
    pub fn name(&self) -> &str {
        self.desc.name()
    }
    pub fn is_repeated(&self) -> bool {
        self.desc.label() == Label::Repeated
    }
    pub fn kind(&self) -> Type {
        self.desc.r#type()
    }
    /// The full name of the field's message or enum type (empty for scalars).
    pub fn type_name(&self) -> &str {
        self.desc.type_name()
    }
}

impl Schema {
    /// Decodes the descriptor set compiled into edge-api.
    pub fn load() -> Result<Self, prost::DecodeError> {
        let fds = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET)?;
        let mut schema = Self {
            messages: HashMap::new(),
            enums: HashMap::new(),
        };
        for file in fds.file {
            let prefix = format!(".{}", file.package());
            for e in file.enum_type {
                schema.enums.insert(format!("{prefix}.{}", e.name()), e);
            }
            for m in file.message_type {
                schema.add_message(&prefix, m);
            }
        }
        Ok(schema)
    }

    fn add_message(&mut self, prefix: &str, m: DescriptorProto) {
        let name = format!("{prefix}.{}", m.name());
        for e in &m.enum_type {
            self.enums.insert(format!("{name}.{}", e.name()), e.clone());
        }
        for nested in &m.nested_type {
            self.add_message(&name, nested.clone());
        }
        self.messages.insert(name, m);
    }

    /// The full name of a message of the control-plane package (`Cloudlet`).
    pub fn message_name(short: &str) -> String {
        format!("{PACKAGE}.{short}")
    }

    /// Field `name` of message `message`, or the names that exist.
    pub fn field(&self, message: &str, name: &str) -> Result<Field<'_>, Vec<String>> {
        let m = self.messages.get(message).ok_or_else(Vec::new)?;
        m.field
            .iter()
            .find(|f| f.name() == name)
            .map(|desc| Field { desc })
            .ok_or_else(|| m.field.iter().map(|f| f.name().to_string()).collect())
    }

    /// The value name of enum `full_name` that `text` means: exact, case-insensitive, or
    /// without the values' common prefix (`ready` → `CLOUDLET_STATE_READY`). Err: the names.
    pub fn enum_value(&self, full_name: &str, text: &str) -> Result<String, Vec<String>> {
        let names: Vec<String> = self
            .enums
            .get(full_name)
            .map(|e| e.value.iter().map(|v| v.name().to_string()).collect())
            .unwrap_or_default();
        let upper = text.to_ascii_uppercase().replace('-', "_");
        let suffix = format!("_{upper}");
        names
            .iter()
            .find(|n| **n == upper)
            .or_else(|| {
                let mut by_suffix = names.iter().filter(|n| n.ends_with(&suffix));
                // Only an unambiguous short name is accepted.
                match (by_suffix.next(), by_suffix.next()) {
                    (Some(n), None) => Some(n),
                    _ => None,
                }
            })
            .cloned()
            .ok_or(names)
    }
}
