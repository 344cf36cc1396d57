//! The controller's in-memory copy of the store: every object with the revision that last wrote
//! it, who refers to whom, and the revisions of the per-object reference counters. Only the
//! store-sync task changes it (from the store's watch), so it always equals the store at
//! `revision`; API handlers read it to plan transactions.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use edge_model::{AppInstKey, CloudletKey, ClusterKey, Object, ObjectKey, ObjectKind, Settings};
use edge_store::Revision;

/// One stored object and the revision of its last write.
#[derive(Clone, Debug, PartialEq)]
pub struct Stored {
    pub object: Object,
    pub mod_revision: Revision,
}

/// The mirrored region.
#[derive(Default, Debug)]
pub struct Model {
    /// The store revision this model reflects.
    pub revision: Revision,
    objects: BTreeMap<ObjectKey, Stored>,
    /// Parent → children that refer to it.
    children: HashMap<ObjectKey, BTreeSet<ObjectKey>>,
    /// mod_revision of each parent's reference counter key.
    refs: HashMap<ObjectKey, Revision>,
}

/// The objects an object refers to (its parents), which must exist while it does.
pub fn parents(obj: &Object) -> Vec<ObjectKey> {
    match obj {
        Object::AppInst(i) => {
            let mut p = vec![
                ObjectKey::App(i.app.clone()),
                ObjectKey::Cloudlet(i.cloudlet.clone()),
            ];
            if let Some(c) = &i.cluster {
                p.push(ObjectKey::ClusterInst(ClusterKey {
                    organization: i.key.organization.clone(),
                    name: c.clone(),
                }));
            }
            p
        }
        Object::ClusterInst(c) => {
            let mut p = vec![ObjectKey::Cloudlet(c.cloudlet.clone())];
            p.extend(c.flavor.iter().map(|f| ObjectKey::Flavor(f.clone())));
            p
        }
        Object::App(a) => a
            .default_flavor
            .iter()
            .map(|f| ObjectKey::Flavor(f.clone()))
            .collect(),
        _ => Vec::new(),
    }
}

impl Model {
    pub fn get(&self, key: &ObjectKey) -> Option<&Stored> {
        self.objects.get(key)
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Objects of one kind, in key order.
    pub fn of_kind(&self, kind: ObjectKind) -> impl Iterator<Item = &Stored> {
        self.objects
            .values()
            .filter(move |s| s.object.kind() == kind)
    }

    pub fn all(&self) -> impl Iterator<Item = (&ObjectKey, &Stored)> {
        self.objects.iter()
    }

    /// The objects referring to `key`.
    pub fn children(&self, key: &ObjectKey) -> impl Iterator<Item = &ObjectKey> {
        self.children.get(key).into_iter().flatten()
    }

    /// The revision of `key`'s reference counter (None: never written).
    pub fn refs_revision(&self, key: &ObjectKey) -> Option<Revision> {
        self.refs.get(key).copied()
    }

    pub fn settings(&self) -> Settings {
        match self.get(&ObjectKey::Settings).map(|s| &s.object) {
            Some(Object::Settings(s)) => s.clone(),
            _ => Settings::default(),
        }
    }

    /// App instances on a cloudlet.
    pub fn insts_on(&self, cloudlet: &CloudletKey) -> impl Iterator<Item = &edge_model::AppInst> {
        self.children(&ObjectKey::Cloudlet(cloudlet.clone()))
            .filter_map(|k| match self.get(k).map(|s| &s.object) {
                Some(Object::AppInst(i)) => Some(i),
                _ => None,
            })
            .collect::<Vec<_>>()
            .into_iter()
    }

    pub fn app_inst(&self, key: &AppInstKey) -> Option<&edge_model::AppInst> {
        match self
            .get(&ObjectKey::AppInst(key.clone()))
            .map(|s| &s.object)
        {
            Some(Object::AppInst(i)) => Some(i),
            _ => None,
        }
    }

    /// Applies a put seen in the store.
    pub fn put(&mut self, object: Object, mod_revision: Revision) {
        let key = object.key();
        self.unlink(&key);
        for p in parents(&object) {
            self.children.entry(p).or_default().insert(key.clone());
        }
        self.objects.insert(
            key,
            Stored {
                object,
                mod_revision,
            },
        );
    }

    /// Applies a delete seen in the store.
    pub fn delete(&mut self, key: &ObjectKey) {
        self.unlink(key);
        self.objects.remove(key);
    }

    fn unlink(&mut self, key: &ObjectKey) {
        let Some(old) = self.objects.get(key) else {
            return;
        };
        for p in parents(&old.object) {
            if let Some(set) = self.children.get_mut(&p) {
                set.remove(key);
                if set.is_empty() {
                    self.children.remove(&p);
                }
            }
        }
    }

    pub fn set_refs_revision(&mut self, key: ObjectKey, revision: Option<Revision>) {
        match revision {
            Some(r) => self.refs.insert(key, r),
            None => self.refs.remove(&key),
        };
    }
}
