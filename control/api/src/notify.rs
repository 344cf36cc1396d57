//! The notify stream's messages as domain enums, so the controller's sender and the subscribers'
//! appliers match on these rather than on generated oneofs and raw action numbers.

use std::fmt;
use std::str::FromStr;

use edge_model::{CloudletKey, Object, ObjectKey, ObjectKind};

use crate::convert::{
    ConvertError, ConvertErrorKind, Within, cloudlet_key, kind_to_wire, object_kind, required,
};
use crate::pb;
use crate::pb::notice::Action;
use crate::pb::subscriber_message::Msg;

/// One message from the controller to a subscriber.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// The object as of store revision `version` (created or changed).
    Update { version: u64, object: Object },
    /// The object is gone as of `version`.
    Delete { version: u64, key: ObjectKey },
    /// The snapshot sent on connect is complete as of `version`: drop what it did not contain.
    SnapshotEnd { version: u64 },
    /// An operator's one-off request, outside the versioned stream of objects.
    Request(Request),
}

/// A one-off request relayed by the controller to the subscribers it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// DMEs: the edge-events clients of this instance should measure their latency.
    AppInstLatency(edge_model::AppInstKey),
}

impl Request {
    /// Whether a subscriber of `role` acts on it.
    pub fn concerns(&self, role: Role) -> bool {
        match self {
            Self::AppInstLatency(_) => role == Role::Dme,
        }
    }
}

impl Notice {
    /// The store version the notice brings the subscriber to; 0 for requests, which carry none.
    pub fn version(&self) -> u64 {
        match self {
            Self::Update { version, .. }
            | Self::Delete { version, .. }
            | Self::SnapshotEnd { version } => *version,
            Self::Request(_) => 0,
        }
    }
}

impl TryFrom<pb::Request> for Request {
    type Error = ConvertError;

    fn try_from(r: pb::Request) -> Result<Self, ConvertError> {
        use pb::request::Kind;
        match Kind::try_from(r.kind) {
            Ok(Kind::AppInstLatency) => {
                match ObjectKey::try_from(required(r.key, "key")?).within("key")? {
                    ObjectKey::AppInst(k) => Ok(Self::AppInstLatency(k)),
                    other => Err(ConvertError::new(
                        "key",
                        ConvertErrorKind::Invalid(format!(
                            "APP_INST_LATENCY names an AppInst, not a {}",
                            other.kind()
                        )),
                    )),
                }
            }
            Ok(Kind::Unspecified) => Err(ConvertError::new(
                "kind",
                ConvertErrorKind::Unspecified("Request.Kind"),
            )),
            Err(_) => Err(ConvertError::new(
                "kind",
                ConvertErrorKind::UnknownEnum {
                    what: "Request.Kind",
                    value: r.kind,
                },
            )),
        }
    }
}

impl From<&Request> for pb::Request {
    fn from(r: &Request) -> Self {
        match r {
            Request::AppInstLatency(k) => Self {
                kind: pb::request::Kind::AppInstLatency as i32,
                key: Some((&ObjectKey::AppInst(k.clone())).into()),
            },
        }
    }
}

impl TryFrom<pb::Notice> for Notice {
    type Error = ConvertError;

    fn try_from(n: pb::Notice) -> Result<Self, ConvertError> {
        notice(n).within("notice")
    }
}

fn notice(n: pb::Notice) -> Result<Notice, ConvertError> {
    let version = n.version;
    match Action::try_from(n.action) {
        Ok(Action::Update) => {
            let object = required(n.object, "object")?;
            Ok(Notice::Update {
                version,
                object: Object::try_from(object).within("object")?,
            })
        }
        Ok(Action::Delete) => {
            let key = required(n.key, "key")?;
            Ok(Notice::Delete {
                version,
                key: ObjectKey::try_from(key).within("key")?,
            })
        }
        Ok(Action::SnapshotEnd) => Ok(Notice::SnapshotEnd { version }),
        Ok(Action::Request) => Ok(Notice::Request(
            Request::try_from(required(n.request, "request")?).within("request")?,
        )),
        Ok(Action::Unspecified) => Err(ConvertError::new(
            "action",
            ConvertErrorKind::Unspecified("Notice.Action"),
        )),
        Err(_) => Err(ConvertError::new(
            "action",
            ConvertErrorKind::UnknownEnum {
                what: "Notice.Action",
                value: n.action,
            },
        )),
    }
}

impl From<&Notice> for pb::Notice {
    fn from(n: &Notice) -> Self {
        let (action, object, key, request) = match n {
            Notice::Update { object, .. } => (Action::Update, Some(object.into()), None, None),
            Notice::Delete { key, .. } => (Action::Delete, None, Some(key.into()), None),
            Notice::SnapshotEnd { .. } => (Action::SnapshotEnd, None, None, None),
            Notice::Request(r) => (Action::Request, None, None, Some(r.into())),
        };
        Self {
            action: action as i32,
            version: n.version(),
            object,
            key,
            request,
        }
    }
}

/// What kind of subscriber is on the other end (decides nothing here; the controller may).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Dme,
    RootLb,
    Crm,
    /// The region's DNS, serving the names the controller hands out.
    Dns,
    /// A cloudlet's metrics agent.
    Shepherd,
}

impl Role {
    pub const ALL: [Self; 5] = [
        Self::Dme,
        Self::RootLb,
        Self::Crm,
        Self::Dns,
        Self::Shepherd,
    ];

    /// The wire form (`dme`, `rootlb`, `crm`, `dns`, `shepherd`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dme => "dme",
            Self::RootLb => "rootlb",
            Self::Crm => "crm",
            Self::Dns => "dns",
            Self::Shepherd => "shepherd",
        }
    }
}

impl FromStr for Role {
    type Err = ConvertError;

    fn from_str(s: &str) -> Result<Self, ConvertError> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|r| r.as_str()).collect();
                let msg = format!("unknown role {s:?}; expected one of {}", names.join(", "));
                ConvertError::new("", ConvertErrorKind::Invalid(msg))
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A subscriber's opening message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub name: String,
    pub role: Role,
    pub want: Vec<ObjectKind>,
    /// Only objects of this cloudlet (and the Apps of its AppInsts).
    pub cloudlet_filter: Option<CloudletKey>,
    /// Only objects of cloudlets whose `platform_type` is this (and every App): a CRM serving
    /// every cloudlet of one platform. Exclusive with `cloudlet_filter`.
    pub platform_filter: Option<String>,
}

impl Subscription {
    /// A subscription of `role` for `want`, unfiltered.
    pub fn new(name: impl Into<String>, role: Role, want: Vec<ObjectKind>) -> Self {
        Self {
            name: name.into(),
            role,
            want,
            cloudlet_filter: None,
            platform_filter: None,
        }
    }
}

/// A line about the current operation on an object, from the CRM doing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub key: ObjectKey,
    pub message: String,
    /// The operation failed, and `message` says why.
    pub error: bool,
}

/// One message from a subscriber to the controller.
#[derive(Clone, Debug, PartialEq)]
pub enum SubscriberMessage {
    Subscribe(Subscription),
    /// The notice version the subscriber has applied and now serves.
    Ack {
        version: u64,
    },
    /// An object sent up (CloudletInfo from a CRM, AppInst health from the root LB).
    Report(Object),
    /// Progress of an operation, from the CRM doing it.
    Progress(Progress),
}

fn subscription(s: pb::Subscribe) -> Result<Subscription, ConvertError> {
    let want = s
        .want
        .iter()
        .enumerate()
        .map(|(i, k)| object_kind(*k, &format!("want[{i}]")))
        .collect::<Result<_, _>>()?;
    let cloudlet_filter = s
        .cloudlet_filter
        .map(|k| cloudlet_key(k).within("cloudlet_filter"))
        .transpose()?;
    let platform_filter = Some(s.platform_filter).filter(|p| !p.is_empty());
    if cloudlet_filter.is_some() && platform_filter.is_some() {
        return Err(ConvertError::new(
            "platform_filter",
            ConvertErrorKind::Invalid(
                "a subscription filters by cloudlet or by platform, not both".into(),
            ),
        ));
    }
    Ok(Subscription {
        name: s.name,
        role: s.role.parse().within("role")?,
        want,
        cloudlet_filter,
        platform_filter,
    })
}

impl TryFrom<pb::SubscriberMessage> for SubscriberMessage {
    type Error = ConvertError;

    fn try_from(m: pb::SubscriberMessage) -> Result<Self, ConvertError> {
        subscriber_message(m).within("subscriber_message")
    }
}

fn subscriber_message(m: pb::SubscriberMessage) -> Result<SubscriberMessage, ConvertError> {
    match required(m.msg, "msg")? {
        Msg::Subscribe(s) => subscription(s)
            .within("subscribe")
            .map(SubscriberMessage::Subscribe),
        Msg::Ack(a) => Ok(SubscriberMessage::Ack { version: a.version }),
        Msg::Report(r) => {
            let object = required(r.object, "object").within("report")?;
            Object::try_from(object)
                .within("report.object")
                .map(SubscriberMessage::Report)
        }
        Msg::Progress(p) => {
            let key = required(p.key, "key").within("progress")?;
            Ok(SubscriberMessage::Progress(Progress {
                key: ObjectKey::try_from(key).within("progress.key")?,
                message: p.message,
                error: p.error,
            }))
        }
    }
}

impl From<&SubscriberMessage> for pb::SubscriberMessage {
    fn from(m: &SubscriberMessage) -> Self {
        let msg = match m {
            SubscriberMessage::Subscribe(s) => Msg::Subscribe(pb::Subscribe {
                name: s.name.clone(),
                role: s.role.as_str().to_owned(),
                want: s.want.iter().map(|k| kind_to_wire(*k)).collect(),
                cloudlet_filter: s.cloudlet_filter.as_ref().map(Into::into),
                platform_filter: s.platform_filter.clone().unwrap_or_default(),
            }),
            SubscriberMessage::Ack { version } => Msg::Ack(pb::Ack { version: *version }),
            SubscriberMessage::Report(o) => Msg::Report(pb::Report {
                object: Some(o.into()),
            }),
            SubscriberMessage::Progress(p) => Msg::Progress(pb::OperationProgress {
                key: Some((&p.key).into()),
                message: p.message.clone(),
                error: p.error,
            }),
        };
        Self { msg: Some(msg) }
    }
}

#[cfg(test)]
mod tests;
