use super::*;

const FEED: &str = "\
# test feed
ip 10.20.0.0/16 52.52 13.405 2000
ip 10.20.30.0/24 48.1372 11.5756 300   # a more specific pool
ip 2001:db8:20::/48 50.0 8.0 1000
phone +4917012345678 53.55 9.99 500
";

fn v4(s: &str) -> Identifier {
    Identifier::Ipv4 {
        public: s.parse().unwrap(),
        private: None,
        port: Some(5000),
    }
}

#[test]
fn longest_prefix_and_phones() {
    let f = Feed::parse(FEED, 1_700_000_000).unwrap();
    assert_eq!(f.len(), 4);
    let t = f.tile(&v4("10.20.1.1")).unwrap();
    assert_eq!(t.radius_m, 2000.0);
    let t = f.tile(&v4("10.20.30.7")).unwrap();
    assert_eq!(t.radius_m, 300.0);
    assert!(f.tile(&v4("10.21.0.1")).is_none());
    let t = f
        .tile(&Identifier::Ipv6("2001:db8:20:ffff::9".parse().unwrap()))
        .unwrap();
    assert_eq!(t.radius_m, 1000.0);
    assert!(
        f.tile(&Identifier::Ipv6("2001:db8:21::1".parse().unwrap()))
            .is_none()
    );
    let t = f.tile(&Identifier::Phone("+4917012345678".into())).unwrap();
    assert_eq!(t.center.lat(), 53.55);
    assert!(
        f.tile(&Identifier::Phone("+4917000000000".into()))
            .is_none()
    );
}

#[test]
fn bad_lines_name_the_line() {
    for (text, line, needle) in [
        ("ip 10.0.0.0/33 1 2 3", 1, "too long"),
        ("\nip 10.0.0.0 1 2 3", 2, "not a prefix"),
        ("phone 4917 1 2 3", 1, "E.164"),
        ("ip 10.0.0.0/8 91 2 3", 1, "atitude"),
        ("ip 10.0.0.0/8 1 2 0", 1, "radius"),
        ("cell 1 1 2 3", 1, "unknown entry kind"),
        ("ip 10.0.0.0/8 1 2", 1, "expected"),
        ("ip 10.0.0.0/8 1 2 3\nip 10.0.0.0/8 1 2 3", 2, "twice"),
    ] {
        match Feed::parse(text, 0) {
            Err(FeedError::Line { line: l, reason }) => {
                assert_eq!(l, line, "{text}");
                assert!(reason.contains(needle), "{text}: {reason}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_bad_reload_keeps_the_previous_feed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.txt");
    std::fs::write(&path, FEED).unwrap();
    let loc = FeedLocator::open(&path).unwrap();
    let phone = Identifier::Phone("+4917012345678".into());
    assert!(loc.locate(&phone, 0).is_ok());
    std::fs::write(&path, "ip nonsense").unwrap();
    assert!(loc.reload().is_err());
    assert!(loc.locate(&phone, 0).is_ok());
    std::fs::write(&path, "phone +4917099999999 1 2 3\n").unwrap();
    assert_eq!(loc.reload().unwrap(), 1);
    assert_eq!(loc.locate(&phone, 0), Err(LocateError::NotFound));
}
