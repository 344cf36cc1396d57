//! Per-run results and the closing summary of `dme-load`: scenarios, one line per run, medians
//! over rounds, FindCloudlet/floor and CAMARA/FindCloudlet ratios of throughput and of server
//! CPU per request.

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
    /// CAMARA Simple Edge Discovery (retrieve-closest-edge-cloud-zone) over REST.
    RestSed,
    /// CAMARA Application Endpoint Discovery (retrieve-optimal-app-endpoints) over REST.
    RestAed,
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
            Self::RestSed => "rest-sed",
            Self::RestAed => "rest-aed",
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
    // (numerator, denominator, stack, their names, target of the throughput ratio)
    let ratios = [
        (
            Scenario::GrpcFind,
            Scenario::GrpcFloor,
            "gRPC",
            "FindCloudlet",
            "floor",
            0.85,
        ),
        (
            Scenario::RestFind,
            Scenario::RestFloor,
            "REST",
            "FindCloudlet",
            "floor",
            0.85,
        ),
        (
            Scenario::RestSed,
            Scenario::RestFind,
            "REST",
            "SED",
            "FindCloudlet",
            0.9,
        ),
        (
            Scenario::RestAed,
            Scenario::RestFind,
            "REST",
            "AED",
            "FindCloudlet",
            0.9,
        ),
    ];
    for (num, den, what, num_name, den_name, target) in ratios {
        if of(num).next().is_none() || of(den).next().is_none() {
            continue;
        }
        let ratio = med(num, &|r| r.report.rps()) / med(den, &|r| r.report.rps());
        // Per-round ratios too: the two runs of one round ran close together.
        let per_round: Vec<f64> = of(num)
            .filter_map(|(round, f)| {
                of(den)
                    .find(|(r2, _)| r2 == round)
                    .map(|(_, d)| f.report.rps() / d.report.rps())
            })
            .collect();
        let listed = per_round
            .iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>();
        let p99 = med(num, &|r| r.report.q(0.99) as f64);
        // Server CPU per request is steadier than throughput on a shared machine; its inverse
        // ratio is the throughput ratio a server-bound run would show.
        let cpu = |s: Scenario| med(s, &|r| r.server_us.unwrap_or(f64::NAN));
        let cpu_ratio = cpu(den) / cpu(num);
        if cpu_ratio.is_finite() {
            println!(
                "  {what} server CPU per request: {den_name} {:.1} µs, {num_name} {:.1} µs \
                 ({den_name}/{num_name} = {cpu_ratio:.2})",
                cpu(den),
                cpu(num)
            );
        }
        println!(
            "  {what} {num_name} / {den_name} = {ratio:.3} (per round: {}; median {:.3}); \
             {num_name} p99 under load {p99:.0} µs; target >= {target}: {}",
            listed.join(", "),
            median(per_round.clone()),
            if ratio >= target { "met" } else { "NOT met" }
        );
    }
}
