//! A subscriber's copy of the region: the objects the controller sent it, one typed map per kind,
//! changed only through its session. The root LB and the CRM use it as it is; the DME keeps one
//! inside its mirror, beside the indexes its tables are built from.

use std::collections::HashMap;

use edge_model::{
    App, AppInst, AppInstKey, AppKey, Cloudlet, CloudletInfo, CloudletKey, ClusterInst, ClusterKey,
    Flavor, Object, ObjectKey, OperatorCode, Settings,
};

use super::session::Apply;

/// The objects of a region as last sent, by kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Replica {
    settings: Option<Settings>,
    operator_codes: HashMap<String, OperatorCode>,
    flavors: HashMap<String, Flavor>,
    cloudlets: HashMap<CloudletKey, Cloudlet>,
    cloudlet_infos: HashMap<CloudletKey, CloudletInfo>,
    apps: HashMap<AppKey, App>,
    cluster_insts: HashMap<ClusterKey, ClusterInst>,
    app_insts: HashMap<AppInstKey, AppInst>,
}

/// Typed access to one kind's map: `$get(key)` and `$all()`.
macro_rules! accessors {
    ($($get:ident, $all:ident: $field:ident, $key:ty => $ty:ty;)+) => {$(
        pub fn $get(&self, key: &$key) -> Option<&$ty> {
            self.$field.get(key)
        }

        pub fn $all(&self) -> impl ExactSizeIterator<Item = &$ty> + '_ {
            self.$field.values()
        }
    )+};
}

impl Replica {
    pub fn new() -> Self {
        Self::default()
    }

    accessors! {
        operator_code, operator_codes: operator_codes, String => OperatorCode;
        flavor, flavors: flavors, String => Flavor;
        cloudlet, cloudlets: cloudlets, CloudletKey => Cloudlet;
        cloudlet_info, cloudlet_infos: cloudlet_infos, CloudletKey => CloudletInfo;
        app, apps: apps, AppKey => App;
        cluster_inst, cluster_insts: cluster_insts, ClusterKey => ClusterInst;
        app_inst, app_insts: app_insts, AppInstKey => AppInst;
    }

    /// The region's settings, if the controller sent them.
    pub fn settings(&self) -> Option<&Settings> {
        self.settings.as_ref()
    }

    /// Stores `object`; returns the one it replaced.
    pub fn insert(&mut self, object: Object) -> Option<Object> {
        match object {
            Object::Settings(s) => self.settings.replace(s).map(Object::Settings),
            Object::OperatorCode(o) => self
                .operator_codes
                .insert(o.code.clone(), o)
                .map(Object::OperatorCode),
            Object::Flavor(f) => self.flavors.insert(f.name.clone(), f).map(Object::Flavor),
            Object::Cloudlet(c) => self
                .cloudlets
                .insert(c.key.clone(), c)
                .map(Object::Cloudlet),
            Object::CloudletInfo(i) => self
                .cloudlet_infos
                .insert(i.key.clone(), i)
                .map(Object::CloudletInfo),
            Object::App(a) => self.apps.insert(a.key.clone(), a).map(Object::App),
            Object::ClusterInst(c) => self
                .cluster_insts
                .insert(c.key.clone(), c)
                .map(Object::ClusterInst),
            Object::AppInst(i) => self.app_insts.insert(i.key.clone(), i).map(Object::AppInst),
        }
    }

    /// Removes the object under `key`; returns it.
    pub fn remove(&mut self, key: &ObjectKey) -> Option<Object> {
        match key {
            ObjectKey::Settings => self.settings.take().map(Object::Settings),
            ObjectKey::OperatorCode(k) => self.operator_codes.remove(k).map(Object::OperatorCode),
            ObjectKey::Flavor(k) => self.flavors.remove(k).map(Object::Flavor),
            ObjectKey::Cloudlet(k) => self.cloudlets.remove(k).map(Object::Cloudlet),
            ObjectKey::CloudletInfo(k) => self.cloudlet_infos.remove(k).map(Object::CloudletInfo),
            ObjectKey::App(k) => self.apps.remove(k).map(Object::App),
            ObjectKey::ClusterInst(k) => self.cluster_insts.remove(k).map(Object::ClusterInst),
            ObjectKey::AppInst(k) => self.app_insts.remove(k).map(Object::AppInst),
        }
    }

    /// Whether an object equal to `object` is held (so storing it again would change nothing).
    pub fn holds(&self, object: &Object) -> bool {
        match object {
            Object::Settings(s) => self.settings.as_ref() == Some(s),
            Object::OperatorCode(o) => self.operator_codes.get(&o.code) == Some(o),
            Object::Flavor(f) => self.flavors.get(&f.name) == Some(f),
            Object::Cloudlet(c) => self.cloudlets.get(&c.key) == Some(c),
            Object::CloudletInfo(i) => self.cloudlet_infos.get(&i.key) == Some(i),
            Object::App(a) => self.apps.get(&a.key) == Some(a),
            Object::ClusterInst(c) => self.cluster_insts.get(&c.key) == Some(c),
            Object::AppInst(i) => self.app_insts.get(&i.key) == Some(i),
        }
    }

    /// Whether an object is held under `key`.
    pub fn contains_key(&self, key: &ObjectKey) -> bool {
        match key {
            ObjectKey::Settings => self.settings.is_some(),
            ObjectKey::OperatorCode(k) => self.operator_codes.contains_key(k),
            ObjectKey::Flavor(k) => self.flavors.contains_key(k),
            ObjectKey::Cloudlet(k) => self.cloudlets.contains_key(k),
            ObjectKey::CloudletInfo(k) => self.cloudlet_infos.contains_key(k),
            ObjectKey::App(k) => self.apps.contains_key(k),
            ObjectKey::ClusterInst(k) => self.cluster_insts.contains_key(k),
            ObjectKey::AppInst(k) => self.app_insts.contains_key(k),
        }
    }

    /// Every key held.
    pub fn keys(&self) -> Vec<ObjectKey> {
        let mut out = Vec::with_capacity(self.len());
        out.extend(self.settings.iter().map(|_| ObjectKey::Settings));
        out.extend(
            self.operator_codes
                .keys()
                .cloned()
                .map(ObjectKey::OperatorCode),
        );
        out.extend(self.flavors.keys().cloned().map(ObjectKey::Flavor));
        out.extend(self.cloudlets.keys().cloned().map(ObjectKey::Cloudlet));
        out.extend(
            self.cloudlet_infos
                .keys()
                .cloned()
                .map(ObjectKey::CloudletInfo),
        );
        out.extend(self.apps.keys().cloned().map(ObjectKey::App));
        out.extend(
            self.cluster_insts
                .keys()
                .cloned()
                .map(ObjectKey::ClusterInst),
        );
        out.extend(self.app_insts.keys().cloned().map(ObjectKey::AppInst));
        out
    }

    /// How many objects are held.
    pub fn len(&self) -> usize {
        usize::from(self.settings.is_some())
            + self.operator_codes.len()
            + self.flavors.len()
            + self.cloudlets.len()
            + self.cloudlet_infos.len()
            + self.apps.len()
            + self.cluster_insts.len()
            + self.app_insts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FromIterator<Object> for Replica {
    fn from_iter<I: IntoIterator<Item = Object>>(objects: I) -> Self {
        let mut r = Self::new();
        for o in objects {
            r.insert(o);
        }
        r
    }
}

impl Apply for Replica {
    fn upsert(&mut self, object: Object) -> bool {
        if self.holds(&object) {
            return false;
        }
        self.insert(object);
        true
    }

    fn remove(&mut self, key: &ObjectKey) -> bool {
        Replica::remove(self, key).is_some()
    }

    fn keys(&self) -> Vec<ObjectKey> {
        Replica::keys(self)
    }
}
