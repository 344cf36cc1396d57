//! Per-run results and the closing summary of `dme-load`: scenarios, one line per run, medians
//! over rounds, FindCloudlet/floor ratios of throughput and of server CPU per request.

use clap::ValueEnum;

use crate::engine::Report;

/// One kind of load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    GrpcFloor,
    GrpcFind,
    RestFloor,
    RestFind,
    GrpcRegister,
    RestRegister,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Self::GrpcFloor => "grpc-floor",
            Self::GrpcFind => "grpc-find",
            Self::RestFloor => "rest-floor",
            Self::RestFind => "rest-find",
            Self::GrpcRegister => "grpc-register",
            Self::RestRegister => "rest-register",
        }
    }
}

/// Sum of the CPU time (ns, from schedstat) of this process's threads named `prefix*`.
pub fn threads_cpu_ns(prefix: &str) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .filter_map(|t| {
            let s = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
            s.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

pub struct Run {
    pub scenario: Scenario,
    pub report: Report,
    /// Server and client CPU, µs per successful request (in-process server only).
    pub server_us: Option<f64>,
    pub client_us: f64,
}

pub fn print_run(round: usize, r: &Run) {
    let rep = &r.report;
    let errors = if rep.errors.is_empty() {
        "none".to_string()
    } else {
        rep.errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "round {round} {:<14} {:>9.0} req/s  p50 {:>6} p90 {:>6} p99 {:>6} p99.9 {:>6} µs  \
         cpu/req server {} client {:.1} µs  errors: {errors}",
        r.scenario.name(),
        rep.rps(),
        rep.q(0.5),
        rep.q(0.9),
        rep.q(0.99),
        rep.q(0.999),
        r.server_us.map_or("-".into(), |s| format!("{s:.1}")),
        r.client_us,
    );
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub fn summary(rounds: usize, scenarios: &[Scenario], runs: &[(usize, Run)]) {
    println!("\nmedians over {} round(s):", rounds.max(1));
    let of = |s: Scenario| runs.iter().filter(move |(_, r)| r.scenario == s);
    let med = |s: Scenario, f: &dyn Fn(&Run) -> f64| median(of(s).map(|(_, r)| f(r)).collect());
    for s in scenarios {
        if of(*s).next().is_none() {
            continue;
        }
        let errors: u64 = of(*s).map(|(_, r)| r.report.error_count()).sum();
        println!(
            "  {:<14} {:>9.0} req/s  p50 {:>6.0} p90 {:>6.0} p99 {:>6.0} p99.9 {:>6.0} µs  \
             server cpu/req {}  errors {errors}",
            s.name(),
            med(*s, &|r| r.report.rps()),
            med(*s, &|r| r.report.q(0.5) as f64),
            med(*s, &|r| r.report.q(0.9) as f64),
            med(*s, &|r| r.report.q(0.99) as f64),
            med(*s, &|r| r.report.q(0.999) as f64),
            of(*s)
                .next()
                .and_then(|(_, r)| r.server_us)
                .map_or("-".into(), |_| format!(
                    "{:.1} µs",
                    med(*s, &|r| r.server_us.unwrap_or(f64::NAN))
                )),
        );
    }
    for (find, floor, what) in [
        (Scenario::GrpcFind, Scenario::GrpcFloor, "gRPC"),
        (Scenario::RestFind, Scenario::RestFloor, "REST"),
    ] {
        if of(find).next().is_none() || of(floor).next().is_none() {
            continue;
        }
        let ratio = med(find, &|r| r.report.rps()) / med(floor, &|r| r.report.rps());
        // Per-round ratios too: floor and FindCloudlet of one round ran back to back.
        let per_round: Vec<f64> = of(find)
            .filter_map(|(round, f)| {
                of(floor)
                    .find(|(r2, _)| r2 == round)
                    .map(|(_, fl)| f.report.rps() / fl.report.rps())
            })
            .collect();
        let listed = per_round
            .iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>();
        let p99 = med(find, &|r| r.report.q(0.99) as f64);
        // Server CPU per request is steadier than throughput on a shared machine; its inverse
        // ratio is the throughput ratio a server-bound run would show.
        let cpu = |s: Scenario| med(s, &|r| r.server_us.unwrap_or(f64::NAN));
        let cpu_ratio = cpu(floor) / cpu(find);
        if cpu_ratio.is_finite() {
            println!(
                "  {what} server CPU per request: floor {:.1} µs, FindCloudlet {:.1} µs \
                 (floor/FindCloudlet = {cpu_ratio:.2})",
                cpu(floor),
                cpu(find)
            );
        }
        println!(
            "  {what} FindCloudlet / floor = {ratio:.3} (per round: {}; median {:.3}); \
             FindCloudlet p99 under load {p99:.0} µs; target >= 0.85: {}",
            listed.join(", "),
            median(per_round.clone()),
            if ratio >= 0.85 { "met" } else { "NOT met" }
        );
    }
}
