use super::*;
use crate::collect::fixtures::{cloudlet, inst};
use crate::line::FieldValue;

/// A `/proc/<pid>/stat` line with `utime`, `stime` and `starttime` set.
fn stat_line(comm: &str, utime: u64, stime: u64, start: u64) -> String {
    // Fields 3..=13, then utime, stime, 16..=21, starttime, the rest.
    format!(
        "42 ({comm}) S 1 42 42 0 -1 4194560 100 0 0 0 {utime} {stime} 0 0 20 0 1 0 {start} 1000 200 18446744073709551615 0 0 0"
    )
}

#[test]
fn reads_cpu_ticks_and_start_time_whatever_the_command_name() {
    for comm in ["server", "my app", "a) b (c", ")", ""] {
        let line = stat_line(comm, 150, 50, 9_000);
        assert_eq!(parse_stat(&line), Some((9_000, 200)), "{comm:?}");
    }
    for bad in [
        "",
        "42 (x",
        "42 (x) S 1 2",
        "42 (x) S 1 42 42 0 -1 4 1 0 0 0 a b",
    ] {
        assert_eq!(parse_stat(bad), None, "{bad:?}");
    }
}

#[test]
fn reads_resident_memory() {
    let status = "Name:\tserver\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t4\n";
    assert_eq!(parse_rss(status), 1234 * 1024);
    assert_eq!(parse_rss("Name:\tkthreadd\n"), 0);
    assert_eq!(parse_rss("VmRSS:\tlots kB\n"), 0);
}

#[test]
fn reads_pid_files_leniently() {
    assert_eq!(
        parse_pids("12\n 7 \n\n12\nabc\n0\n-3\n99999999999\n3"),
        [3, 7, 12]
    );
    assert!(parse_pids("").is_empty());
}

fn key(name: &str) -> AppInstKey {
    AppInstKey {
        organization: "NimbusGames".into(),
        name: name.into(),
    }
}

fn st(start: u64, cpu_ticks: u64) -> ProcStat {
    ProcStat {
        start,
        cpu_ticks,
        rss_bytes: 0,
    }
}

#[test]
fn cpu_is_the_tick_difference_over_wall_time_of_processes_seen_twice() {
    let mut t = CpuTracker::default();
    let k = key("a");
    assert_eq!(
        t.update(&k, 1_000, &[(10, st(1, 100)), (11, st(1, 0))]),
        None
    );
    // 2 s later: pid 10 used 100 ticks (1 s of CPU), pid 11 restarted (new start time: its
    // ticks do not count), pid 12 is new.
    let procs = [(10, st(1, 200)), (11, st(5, 50)), (12, st(6, 80))];
    assert_eq!(t.update(&k, 3_000, &procs), Some(50.0));
    // Same instant again: no rate.
    assert_eq!(t.update(&k, 3_000, &procs), None);
    // Another 1 s: 10 + 20 + 30 ticks.
    let procs = [(10, st(1, 210)), (11, st(5, 70)), (12, st(6, 110))];
    assert_eq!(t.update(&k, 4_000, &procs), Some(60.0));
    t.retain(|k| k.name != "a");
    assert_eq!(t.update(&k, 5_000, &procs), None);
}

#[test]
fn points_sum_memory_and_carry_the_instance_tags() {
    let i = inst("arena-1", cloudlet(), vec![]);
    let procs = [
        (
            1,
            ProcStat {
                rss_bytes: 100,
                ..st(1, 0)
            },
        ),
        (
            2,
            ProcStat {
                rss_bytes: 23,
                ..st(1, 0)
            },
        ),
    ];
    let ps = points(&i, &procs, None, 5);
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].measurement, "appinst-mem");
    assert_eq!(ps[0].fields["mem"], FieldValue::Integer(123));
    assert_eq!(ps[0].tags["appinst"], "arena-1");
    let ps = points(&i, &procs, Some(12.5), 5);
    assert_eq!(ps[1].measurement, "appinst-cpu");
    assert_eq!(ps[1].fields["cpu"], FieldValue::Float(12.5));
    assert_eq!(ps[1].tags, ps[0].tags);
}

#[test]
fn state_dir_source_reads_pid_files_and_a_fake_proc() {
    let dir = tempfile::tempdir().unwrap();
    let (state, proc_root) = (dir.path().join("state"), dir.path().join("proc"));
    let inst_dir = state.join("instances/NimbusGames/arena-1");
    std::fs::create_dir_all(&inst_dir).unwrap();
    std::fs::write(inst_dir.join("pids"), "77\n78\n").unwrap();
    std::fs::create_dir_all(proc_root.join("77")).unwrap();
    std::fs::write(proc_root.join("77/stat"), stat_line("srv", 3, 4, 55)).unwrap();
    std::fs::write(proc_root.join("77/status"), "VmRSS:\t 2 kB\n").unwrap();
    let src = StateDirSource::with_proc_root(&state, &proc_root);

    assert_eq!(src.pids(&key("arena-1")).unwrap(), Some(vec![77, 78]));
    assert_eq!(src.pids(&key("arena-9")).unwrap(), None);
    let want = ProcStat {
        start: 55,
        cpu_ticks: 7,
        rss_bytes: 2048,
    };
    assert_eq!(src.stat(77).unwrap(), Some(want));
    // 78 has exited.
    assert_eq!(src.stat(78).unwrap(), None);
    std::fs::create_dir_all(proc_root.join("79")).unwrap();
    std::fs::write(proc_root.join("79/stat"), "garbage").unwrap();
    std::fs::write(proc_root.join("79/status"), "").unwrap();
    assert!(src.stat(79).is_err());
}

#[test]
fn names_that_are_not_one_path_component_have_no_pids() {
    let dir = tempfile::tempdir().unwrap();
    // A pids file one level up that `..` would reach.
    std::fs::create_dir_all(dir.path().join("instances/x")).unwrap();
    std::fs::write(dir.path().join("instances/x/pids"), "1\n").unwrap();
    let src = StateDirSource::new(dir.path());
    for (org, name) in [
        ("..", "x"),
        ("instances", "../x"),
        ("", "x"),
        (".", "x"),
        ("a\0", "x"),
    ] {
        let k = AppInstKey {
            organization: org.into(),
            name: name.into(),
        };
        assert_eq!(src.pids(&k).unwrap(), None, "{org:?}/{name:?}");
    }
}

#[test]
fn reads_this_process_from_the_real_proc() {
    let src = StateDirSource::new("/nonexistent");
    let me = src.stat(std::process::id()).unwrap().unwrap();
    assert!(me.rss_bytes > 0);
    assert!(me.start > 0);
}
