//! `create`, `update`, `delete KIND` and `show`: single objects from `field=value` pairs, and
//! listings in three formats.

use std::collections::BTreeSet;

use crate::transport::Transport;
use anyhow::{Context, Result, bail};
use edge_api::pb::{self, controller_client::ControllerClient};
use edge_model::{Object, ObjectKind};
use serde_json::Value;
use tonic::Status;

use super::{Output, status};
use crate::assign::{self, Assignment};

/// Flags of `show`.
#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// Only this kind (cloudlet, app_inst, ...); default all kinds.
    #[arg(conflicts_with = "all")]
    kind: Option<ObjectKind>,
    /// Every kind (what `-o yaml` needs for a complete document).
    #[arg(long)]
    all: bool,
    /// Only objects of this organization.
    #[arg(long)]
    org: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: Output,
    /// Region written into `-o yaml` documents; default: read from the app instances' URIs
    /// (`<app>.<cloudlet>.<region>.<app_dns_root>`), else `local`.
    #[arg(long)]
    region: Option<String>,
}

fn parse_all(fields: &[String]) -> Result<Vec<Assignment>> {
    Ok(fields
        .iter()
        .map(|f| Assignment::parse(f))
        .collect::<Result<_, _>>()?)
}

/// Drains a progress stream, printing each step as it arrives (a create on a real platform
/// takes a while: the CRM's progress shows live): the messages, and the revision of the final
/// `done`.
async fn finish(
    reply: Result<tonic::Response<tonic::Streaming<pb::Progress>>, Status>,
) -> Result<(Vec<String>, u64)> {
    let mut s = reply.map_err(|e| status(&e))?.into_inner();
    let (mut messages, mut revision) = (Vec::new(), 0);
    while let Some(p) = s.message().await.map_err(|e| status(&e))? {
        if p.done {
            revision = p.revision;
        } else {
            println!("  {}", p.message);
        }
        messages.push(p.message);
    }
    Ok((messages, revision))
}

fn report(messages: &[String], revision: u64) {
    let last = messages.last().map_or("done", String::as_str);
    println!("{last} (revision {revision})");
}

pub async fn create<T: Transport>(
    client: &mut ControllerClient<T>,
    kind: ObjectKind,
    fields: &[String],
) -> Result<()> {
    let body = assign::to_json(kind, &parse_all(fields)?)?;
    let object = assign::object(kind, body)?;
    let (messages, revision) = finish(
        client
            .create(pb::CreateRequest {
                object: Some(object),
            })
            .await,
    )
    .await
    .with_context(|| format!("create {kind}"))?;
    report(&messages, revision);
    Ok(())
}

/// Fetches the object, overlays the given fields, and sends an update whose mask is the
/// top-level non-key fields given (so `location.latitude=1` keeps the current longitude).
pub async fn update<T: Transport>(
    client: &mut ControllerClient<T>,
    kind: ObjectKind,
    fields: &[String],
) -> Result<()> {
    let all = parse_all(fields)?;
    let (keys, changes): (Vec<_>, Vec<_>) =
        all.iter().cloned().partition(|a| assign::is_key(kind, a));
    let mask: Vec<String> = changes
        .iter()
        .map(|a| a.top().to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if mask.is_empty() {
        bail!(
            "update {kind}: give at least one field to change; updatable: {}",
            edge_api::updatable_fields(kind).join(", ")
        );
    }
    let key = assign::key(kind, &keys)?;
    let current = show_raw(client, None, Some(key), None)
        .await?
        .pop()
        .ok_or_else(|| not_found(kind, &keys))?;
    let mut body = serde_json::to_value(&current)?
        .get_mut(assign::wire_field(kind))
        .map(Value::take)
        .unwrap_or(Value::Null);
    assign::merge(&mut body, assign::to_json(kind, &all)?);
    let object = assign::object(kind, body)?;
    let req = pb::UpdateRequest {
        object: Some(object),
        fields: mask,
    };
    let (messages, revision) = finish(client.update(req).await)
        .await
        .with_context(|| format!("update {kind}"))?;
    report(&messages, revision);
    Ok(())
}

fn not_found(kind: ObjectKind, keys: &[Assignment]) -> anyhow::Error {
    if kind == ObjectKind::Settings {
        return anyhow::anyhow!(
            "update Settings: NotFound: no settings stored yet (the DMEs use defaults); \
             set them with `edgectl create settings ...`"
        );
    }
    let named: Vec<String> = keys
        .iter()
        .map(|a| format!("{}={}", a.dotted(), a.raw))
        .collect();
    anyhow::anyhow!(
        "update {kind}: NotFound: no {kind} with {}",
        named.join(" ")
    )
}

pub async fn delete<T: Transport>(
    client: &mut ControllerClient<T>,
    kind: ObjectKind,
    fields: &[String],
) -> Result<()> {
    let key = assign::key(kind, &parse_all(fields)?)?;
    let (messages, revision) = finish(client.delete(pb::DeleteRequest { key: Some(key) }).await)
        .await
        .with_context(|| format!("delete {kind}"))?;
    report(&messages, revision);
    Ok(())
}

async fn show_raw<T: Transport>(
    client: &mut ControllerClient<T>,
    kind: Option<ObjectKind>,
    key: Option<pb::ObjectKey>,
    org: Option<&str>,
) -> Result<Vec<pb::Object>> {
    let req = pb::ShowRequest {
        kind: kind.map_or(0, edge_api::kind_to_wire),
        key,
        organization: org.unwrap_or_default().to_string(),
    };
    let mut s = client
        .show(req)
        .await
        .map_err(|e| status(&e))
        .context("show")?
        .into_inner();
    let mut out = Vec::new();
    while let Some(o) = s.message().await.map_err(|e| status(&e))? {
        out.push(o);
    }
    Ok(out)
}

pub async fn show<T: Transport>(client: &mut ControllerClient<T>, args: &ShowArgs) -> Result<()> {
    let wire = show_raw(client, args.kind, None, args.org.as_deref()).await?;
    if args.output == Output::Json {
        let doc = serde_json::json!({ "objects": wire });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let objects: Vec<Object> = wire
        .into_iter()
        .map(Object::try_from)
        .collect::<Result<_, _>>()
        .context("the controller sent an object this edgectl cannot read")?;
    match args.output {
        Output::Table => print!("{}", crate::table::render(&objects)),
        _ => {
            let region = args.region.clone().unwrap_or_else(|| region_of(&objects));
            let doc = crate::document_from(&region, objects);
            print!("{}", edge_model::document::to_yaml(&doc));
        }
    }
    Ok(())
}

/// The region as generated URIs spell it: the label before the settings' DNS root.
fn region_of(objects: &[Object]) -> String {
    let root = objects.iter().find_map(|o| match o {
        Object::Settings(s) => Some(s.app_dns_root.clone()),
        _ => None,
    });
    let root = root.unwrap_or_else(|| edge_model::Settings::default().app_dns_root);
    objects
        .iter()
        .find_map(|o| match o {
            Object::AppInst(i) => i
                .uri
                .strip_suffix(&format!(".{root}"))
                .and_then(|rest| rest.rsplit('.').next())
                .map(str::to_string),
            _ => None,
        })
        .unwrap_or_else(|| edge_model::document::DEFAULT_REGION.to_string())
}
