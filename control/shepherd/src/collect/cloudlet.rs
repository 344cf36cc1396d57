//! CloudletInfo → `cloudlet-utilization`: the resources the cloudlet's CRM last reported
//! (vCPUs, memory in MB, disk in GB; upstream's units).

use edge_model::CloudletInfo;

use super::{cloudlet_tags, measurement};
use crate::line::Point;

/// The utilisation point of `info`, or `None` when its CRM reported no capacity (every
/// maximum 0: the platform does not measure it, and zeros would read as an empty cloudlet).
pub fn utilization(info: &CloudletInfo, now_ms: i64) -> Option<Point> {
    let r = &info.resources;
    if r.vcpus_max == 0 && r.ram_mb_max == 0 && r.disk_gb_max == 0 {
        return None;
    }
    let mut p = Point::new(measurement::CLOUDLET_UTILIZATION, now_ms)
        .field("vCpuUsed", r.vcpus_used)
        .field("vCpuMax", r.vcpus_max)
        .field("memUsed", r.ram_mb_used)
        .field("memMax", r.ram_mb_max)
        .field("diskUsed", r.disk_gb_used)
        .field("diskMax", r.disk_gb_max);
    p.tags = cloudlet_tags(&info.key);
    Some(p)
}

#[cfg(test)]
mod tests {
    use edge_model::{CloudletResources, CloudletState};

    use super::*;
    use crate::collect::fixtures::cloudlet;
    use crate::line::FieldValue;

    #[test]
    fn reports_used_and_max_of_each_resource() {
        let mut info = CloudletInfo::with_state(cloudlet(), CloudletState::Ready);
        assert_eq!(utilization(&info, 1), None);
        info.resources = CloudletResources {
            vcpus_max: 16,
            vcpus_used: 5,
            ram_mb_max: 65536,
            ram_mb_used: 2048,
            disk_gb_max: 500,
            disk_gb_used: 0,
        };
        let p = utilization(&info, 7).unwrap();
        assert_eq!(p.measurement, "cloudlet-utilization");
        assert_eq!(p.timestamp_ms, 7);
        assert_eq!(p.tags["cloudlet"], "berlin-1");
        assert_eq!(p.tags["cloudletorg"], "TelcoOp");
        let fields: Vec<_> = p.fields.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let int = FieldValue::Integer;
        assert_eq!(
            fields,
            [
                ("diskMax", &int(500)),
                ("diskUsed", &int(0)),
                ("memMax", &int(65536)),
                ("memUsed", &int(2048)),
                ("vCpuMax", &int(16)),
                ("vCpuUsed", &int(5)),
            ]
        );
    }
}
