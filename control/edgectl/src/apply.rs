//! Documents against a controller: `apply` creates what is missing and updates what differs,
//! parents first; `delete` removes what a document names, children first. `apply` → `show` →
//! `apply` is a fixed point.

use edge_api::pb::{self, controller_client::ControllerClient};
use edge_model::{Deployment, Object, ObjectKey};
use tonic::transport::Channel;
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

async fn current(
    client: &mut ControllerClient<Channel>,
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
pub async fn apply(
    client: &mut ControllerClient<Channel>,
    doc: &Deployment,
) -> Result<Report, Status> {
    let mut report = Report::default();
    for obj in document_objects(doc) {
        let key = obj.key();
        // Settings always exist (defaults): set them only when they differ.
        if key == ObjectKey::Settings && current(client, &key).await?.as_ref() == Some(&obj) {
            report.unchanged += 1;
            continue;
        }
        let created = finish(
            client
                .create(pb::CreateRequest {
                    object: Some(pb::Object::from(&obj)),
                })
                .await,
        )
        .await;
        match created {
            Ok(rev) => {
                report.created += 1;
                report.revision = report.revision.max(rev);
            }
            Err(s) if s.code() == Code::AlreadyExists => {
                let Some(cur) = current(client, &key).await? else {
                    continue;
                };
                let fields = updatable_diff(&cur, &obj);
                if fields.is_empty() {
                    report.unchanged += 1;
                    continue;
                }
                let req = pb::UpdateRequest {
                    object: Some(pb::Object::from(&obj)),
                    fields,
                };
                let rev = finish(client.update(req).await).await?;
                report.updated += 1;
                report.revision = report.revision.max(rev);
            }
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

/// Deletes every object `doc` names, children first; missing ones are counted, not errors.
pub async fn delete(
    client: &mut ControllerClient<Channel>,
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
