//! Documents against a controller: `apply` creates what is missing and updates what differs,
//! parents first; `delete` removes what a document names, children first. `apply` → `show` →
//! `apply` is a fixed point.

use std::collections::HashMap;

use crate::transport::Transport;
use edge_api::pb::{self, controller_client::ControllerClient};
use edge_model::document::ComputedFields;
use edge_model::{AppInst, Deployment, Object, ObjectKey};
use tonic::{Code, Status};

use crate::objects::{document_objects, updatable_diff};

/// What an apply or delete did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub deleted: usize,
    pub absent: usize,
    /// The store revision after the last change.
    pub revision: u64,
    /// Objects whose document entry set fields the controller computes, with each field whose
    /// given value differs from the controller's.
    pub not_taken: Vec<NotTaken>,
}

/// Fields of one object that the document gave and the controller computed otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotTaken {
    /// Where the entry is: its path and line in the document.
    pub path: String,
    pub line: Option<usize>,
    pub key: ObjectKey,
    /// `(field, given, controller's)`.
    pub fields: Vec<(&'static str, String, String)>,
}

/// Creates one object and waits for it to settle (a CRM's READY, for clusters and instances);
/// returns the revision, or the error status (with the CRM's reason when it failed).
pub async fn create_object<T: Transport>(
    client: &mut ControllerClient<T>,
    object: &Object,
) -> Result<u64, Status> {
    let req = pb::CreateRequest {
        object: Some(pb::Object::from(object)),
    };
    finish(client.create(req).await).await
}

/// Deletes one object and waits for it to be gone (a CRM's delete, for clusters and
/// instances); returns the revision, or the error status.
pub async fn delete_object<T: Transport>(
    client: &mut ControllerClient<T>,
    key: &ObjectKey,
) -> Result<u64, Status> {
    let req = pb::DeleteRequest {
        key: Some(pb::ObjectKey::from(key)),
    };
    finish(client.delete(req).await).await
}

/// Drains a progress stream; returns the final revision, or the error status.
pub async fn finish(
    stream: Result<tonic::Response<tonic::Streaming<pb::Progress>>, Status>,
) -> Result<u64, Status> {
    let mut s = stream?.into_inner();
    let mut revision = 0;
    while let Some(p) = s.message().await? {
        if p.done {
            revision = p.revision;
        }
    }
    Ok(revision)
}

async fn current<T: Transport>(
    client: &mut ControllerClient<T>,
    key: &ObjectKey,
) -> Result<Option<Object>, Status> {
    let req = pb::ShowRequest {
        key: Some(pb::ObjectKey::from(key)),
        ..Default::default()
    };
    let mut s = client.show(req).await?.into_inner();
    match s.message().await? {
        Some(o) => Object::try_from(o)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string())),
        None => Ok(None),
    }
}

/// Creates or updates every object of `doc`, parents first.
pub async fn apply<T: Transport>(
    client: &mut ControllerClient<T>,
    doc: &Deployment,
) -> Result<Report, Status> {
    apply_noting(client, doc, &[]).await
}

/// [`apply`], and `computed` (from
/// [`edge_model::document::parse_noting_computed`]) names the entries that set fields the
/// controller computes; each such field whose value differs from the controller's is reported
/// in [`Report::not_taken`].
pub async fn apply_noting<T: Transport>(
    client: &mut ControllerClient<T>,
    doc: &Deployment,
    computed: &[ComputedFields],
) -> Result<Report, Status> {
    let mut report = Report::default();
    let computed: HashMap<&ObjectKey, &ComputedFields> =
        computed.iter().map(|c| (&c.key, c)).collect();
    for obj in document_objects(doc) {
        let key = obj.key();
        if let Some(note) = computed.get(&key) {
            let (r, stored) = apply_one(client, &key, &obj).await?;
            let stored = match stored {
                Some(s) => Some(s),
                None => current(client, &key).await?,
            };
            if let (Object::AppInst(given), Some(Object::AppInst(stored))) = (&obj, &stored) {
                let fields = differing(given, stored, &note.fields);
                if !fields.is_empty() {
                    report.not_taken.push(NotTaken {
                        path: note.path.clone(),
                        line: note.line,
                        key: key.clone(),
                        fields,
                    });
                }
            }
            report.add(&r);
            continue;
        }
        let (r, _) = apply_one(client, &key, &obj).await?;
        report.add(&r);
    }
    Ok(report)
}

impl Report {
    fn add(&mut self, one: &Report) {
        self.created += one.created;
        self.updated += one.updated;
        self.unchanged += one.unchanged;
        self.deleted += one.deleted;
        self.absent += one.absent;
        self.revision = self.revision.max(one.revision);
    }
}

/// The computed fields among `fields` whose given value differs from the stored one, rendered
/// in document syntax.
fn differing(
    given: &AppInst,
    stored: &AppInst,
    fields: &[&'static str],
) -> Vec<(&'static str, String, String)> {
    let ports = |i: &AppInst| {
        let v: Vec<String> = i
            .mapped_ports
            .iter()
            .map(|p| format!("{}->{}", p, p.public_port))
            .collect();
        format!("[{}]", v.join(", "))
    };
    fields
        .iter()
        .filter_map(|f| {
            let (g, s) = match *f {
                "uri" => (given.uri.clone(), stored.uri.clone()),
                "mapped_ports" => (ports(given), ports(stored)),
                "state" => (given.state.as_str().into(), stored.state.as_str().into()),
                "health" => (given.health.as_str().into(), stored.health.as_str().into()),
                _ => return None,
            };
            (g != s).then_some((*f, g, s))
        })
        .collect()
}

/// Creates or updates one object; also returns the stored object when it was read anyway.
async fn apply_one<T: Transport>(
    client: &mut ControllerClient<T>,
    key: &ObjectKey,
    obj: &Object,
) -> Result<(Report, Option<Object>), Status> {
    let mut report = Report::default();
    // Settings always exist (defaults): set them only when they differ.
    if *key == ObjectKey::Settings && current(client, key).await?.as_ref() == Some(obj) {
        report.unchanged += 1;
        return Ok((report, None));
    }
    let created = finish(
        client
            .create(pb::CreateRequest {
                object: Some(pb::Object::from(obj)),
            })
            .await,
    )
    .await;
    match created {
        Ok(rev) => {
            report.created += 1;
            report.revision = rev;
            Ok((report, None))
        }
        Err(s) if s.code() == Code::AlreadyExists => {
            let Some(cur) = current(client, key).await? else {
                return Ok((report, None));
            };
            let fields = updatable_diff(&cur, obj);
            if fields.is_empty() {
                report.unchanged += 1;
                return Ok((report, Some(cur)));
            }
            let req = pb::UpdateRequest {
                object: Some(pb::Object::from(obj)),
                fields,
            };
            report.revision = finish(client.update(req).await).await?;
            report.updated += 1;
            // The computed fields are not updatable: the update left them as they were.
            Ok((report, Some(cur)))
        }
        Err(s) => Err(Status::new(
            s.code(),
            format!("{}: {}", key.to_store_key(), s.message()),
        )),
    }
}

/// Deletes every object `doc` names, children first; missing ones are counted, not errors.
pub async fn delete<T: Transport>(
    client: &mut ControllerClient<T>,
    doc: &Deployment,
) -> Result<Report, Status> {
    let mut report = Report::default();
    let mut objs = document_objects(doc);
    objs.reverse();
    for obj in objs {
        let key = obj.key();
        if key == ObjectKey::Settings {
            continue;
        }
        match finish(
            client
                .delete(pb::DeleteRequest {
                    key: Some(pb::ObjectKey::from(&key)),
                })
                .await,
        )
        .await
        {
            Ok(rev) => {
                report.deleted += 1;
                report.revision = report.revision.max(rev);
            }
            Err(s) if s.code() == Code::NotFound => report.absent += 1,
            Err(s) => {
                return Err(Status::new(
                    s.code(),
                    format!("{}: {}", key.to_store_key(), s.message()),
                ));
            }
        }
    }
    Ok(report)
}
