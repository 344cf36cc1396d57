use edge_model::{CloudletKey, Object, ObjectKey, ObjectKind};

use super::*;
use crate::convert::tests::{app_inst, cloudlet_info, objects, round_trip};

#[test]
fn notices_round_trip() {
    let mut notices: Vec<Notice> = objects()
        .into_iter()
        .enumerate()
        .map(|(i, object)| Notice::Update {
            version: i as u64 + 1,
            object,
        })
        .collect();
    notices.extend(objects().iter().map(|o| Notice::Delete {
        version: 99,
        key: o.key(),
    }));
    notices.push(Notice::SnapshotEnd { version: 100 });
    for n in &notices {
        round_trip::<Notice, pb::Notice>(n);
    }
    assert_eq!(notices.last().map(Notice::version), Some(100));
}

#[test]
fn subscriber_messages_round_trip() {
    let messages = [
        SubscriberMessage::Subscribe(Subscription {
            name: "dme-1".into(),
            role: Role::Dme,
            want: ObjectKind::DEPENDENCY_ORDER.to_vec(),
            cloudlet_filter: None,
            platform_filter: None,
        }),
        SubscriberMessage::Subscribe(Subscription {
            name: "crm-fra".into(),
            role: Role::Crm,
            want: vec![ObjectKind::AppInst, ObjectKind::App],
            cloudlet_filter: Some(CloudletKey {
                organization: "telekom".into(),
                name: "fra".into(),
            }),
            platform_filter: None,
        }),
        SubscriberMessage::Subscribe(Subscription {
            platform_filter: Some("fake".into()),
            ..Subscription::new("crm-fake", Role::Crm, vec![ObjectKind::AppInst])
        }),
        SubscriberMessage::Ack { version: 7 },
        SubscriberMessage::Report(Object::CloudletInfo(cloudlet_info())),
        SubscriberMessage::Report(Object::AppInst(app_inst())),
        SubscriberMessage::Progress(Progress {
            key: ObjectKey::AppInst(app_inst().key),
            message: "port tcp:443 is in use".into(),
            error: true,
        }),
    ];
    for m in &messages {
        round_trip::<SubscriberMessage, pb::SubscriberMessage>(m);
    }
    for r in Role::ALL {
        assert_eq!(r.as_str().parse::<Role>(), Ok(r));
    }
}

#[test]
fn bad_notices_are_rejected() {
    let e = Notice::try_from(pb::Notice::default()).unwrap_err();
    assert_eq!(e.path, "notice.action");
    let e = Notice::try_from(pb::Notice {
        action: 9,
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "notice.action: unknown Notice.Action value 9"
    );
    let e = Notice::try_from(pb::Notice {
        action: Action::Update as i32,
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(e.to_string(), "notice.object: is required");
    let e = Notice::try_from(pb::Notice {
        action: Action::Delete as i32,
        key: Some(pb::ObjectKey::from(&ObjectKey::Flavor(String::new()))),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(e.to_string(), "notice.key.flavor.name: must not be empty");
    let mut update = pb::Notice::from(&Notice::Update {
        version: 1,
        object: Object::AppInst(app_inst()),
    });
    if let Some(pb::object::Obj::AppInst(a)) = update.object.as_mut().and_then(|o| o.obj.as_mut()) {
        a.uri.clear();
        a.cloudlet = None;
    }
    let e = Notice::try_from(update).unwrap_err();
    assert_eq!(
        e.to_string(),
        "notice.object.app_inst.cloudlet: is required"
    );
}

#[test]
fn bad_subscriber_messages_are_rejected() {
    let e = SubscriberMessage::try_from(pb::SubscriberMessage { msg: None }).unwrap_err();
    assert_eq!(e.path, "subscriber_message.msg");
    let sub = |f: fn(&mut pb::Subscribe)| {
        let mut s = pb::Subscribe {
            name: "x".into(),
            role: "dme".into(),
            want: vec![kind_to_wire(ObjectKind::App)],
            cloudlet_filter: None,
            platform_filter: String::new(),
        };
        f(&mut s);
        SubscriberMessage::try_from(pb::SubscriberMessage {
            msg: Some(Msg::Subscribe(s)),
        })
        .unwrap_err()
        .to_string()
    };
    let e = sub(|s| s.role = "DME".into());
    assert!(
        e.starts_with("subscriber_message.subscribe.role: unknown role"),
        "{e}"
    );
    let e = sub(|s| s.want.push(0));
    assert!(
        e.starts_with("subscriber_message.subscribe.want[1]: must be specified"),
        "{e}"
    );
    let e = sub(|s| s.want.push(42));
    assert!(
        e.starts_with("subscriber_message.subscribe.want[1]: unknown"),
        "{e}"
    );
    let e = sub(|s| s.cloudlet_filter = Some(pb::CloudletKey::default()));
    assert_eq!(
        e,
        "subscriber_message.subscribe.cloudlet_filter.organization: must not be empty"
    );
    let e = sub(|s| {
        s.cloudlet_filter = Some(pb::CloudletKey {
            organization: "o".into(),
            name: "c".into(),
        });
        s.platform_filter = "fake".into();
    });
    assert!(e.contains("not both"), "{e}");
    let e = SubscriberMessage::try_from(pb::SubscriberMessage {
        msg: Some(Msg::Report(pb::Report { object: None })),
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "subscriber_message.report.object: is required"
    );
}

#[test]
fn requests_round_trip_and_refuse_what_they_cannot_name() {
    let key = edge_model::AppInstKey {
        organization: "acme".into(),
        name: "game-ber".into(),
    };
    let n = Notice::Request(Request::AppInstLatency(key.clone()));
    let wire = pb::Notice::from(&n);
    assert_eq!(Notice::try_from(wire.clone()).unwrap(), n);
    assert_eq!(n.version(), 0);
    assert!(Request::AppInstLatency(key).concerns(Role::Dme));
    let mut no_kind = wire.clone();
    if let Some(r) = &mut no_kind.request {
        r.kind = 0;
    }
    let e = Notice::try_from(no_kind).unwrap_err().to_string();
    assert!(e.contains("kind"), "{e}");
    let mut cloudlet = wire;
    if let Some(r) = &mut cloudlet.request {
        r.key = Some(
            (&ObjectKey::Cloudlet(CloudletKey {
                organization: "o".into(),
                name: "c".into(),
            }))
                .into(),
        );
    }
    let e = Notice::try_from(cloudlet).unwrap_err().to_string();
    assert!(e.contains("names an AppInst"), "{e}");
}
