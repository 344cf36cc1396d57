//! The shipped example region must stay valid and keep the features it demonstrates.

use std::path::Path;

use edge_model::document::{load, parse, to_yaml};
use edge_model::{HealthCheck, MaintenanceState, NetworkLocation};

fn example() -> edge_model::Deployment {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/region.yaml");
    load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn example_region_parses() {
    let d = example();
    assert_eq!(d.region, "eu");
    assert_eq!(d.operator_codes.len(), 4);
    assert!((8..=12).contains(&d.cloudlets.len()));
    assert!(d.cloudlets.iter().any(|c| c.key.organization == "aws"));
    let maintenance = d
        .cloudlets
        .iter()
        .filter(|c| c.maintenance_state == MaintenanceState::UnderMaintenance);
    assert_eq!(maintenance.count(), 1);
    assert!(d.cloudlets.iter().any(|c| !c.alliance_orgs.is_empty()));
    assert!(d.apps.iter().any(|a| a.platform_app));
    assert!(d.apps.iter().any(|a| !a.official_fqdn.is_empty()));
    assert!(matches!(
        d.settings.network_location,
        NetworkLocation::Static(_)
    ));
    assert!(
        d.app_insts
            .iter()
            .any(|i| i.health == HealthCheck::ServerFail)
    );
    let berlin = d
        .app_insts
        .iter()
        .find(|i| i.key.name == "arena-berlin")
        .unwrap();
    assert_eq!(
        berlin.uri,
        "arena-shooter23-nimbusgames.berlin-1-telekom.eu.edge.example.net"
    );
    // Every cloudlet but one carries at least one instance.
    let used = d
        .cloudlets
        .iter()
        .filter(|c| d.app_insts.iter().any(|i| i.cloudlet == c.key));
    assert!(used.count() >= d.cloudlets.len() - 1);
}

#[test]
fn example_region_survives_to_yaml() {
    let d = example();
    assert_eq!(parse(&to_yaml(&d)).unwrap(), d);
}
