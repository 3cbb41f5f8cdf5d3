//! The shipped files parse, and broken ones are reported key by key.

use attendd::policy_file::parse_str;

use crate::common::root;

#[test]
fn every_shipped_policy_validates() {
    let dir = root().join("config/policies");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let p = attendd::policy_file::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                path.file_stem().unwrap().to_str().unwrap(),
                p.id,
                "file name and id agree"
            );
            n += 1;
        }
    }
    assert_eq!(n, 4);
}

#[test]
fn example_daemon_config_validates() {
    let c = attendd::config::load(&root().join("config/attendd.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.policy.id, "seed-default");
    assert!(c.store_url.starts_with("sqlite://"));
}

#[test]
fn unknown_key_is_rejected_with_its_line() {
    let text = std::fs::read_to_string(root().join("config/policies/seed-default.toml")).unwrap();
    let text = text.replace("grace_minutes = 15", "grace_minute = 15");
    let e = parse_str(&text, "bad.toml").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("grace_minute"), "{msg}");
    assert!(msg.starts_with("bad.toml:"), "{msg}");
    let line = e.issues[0].line.unwrap();
    assert!(
        text.lines().nth(line - 1).unwrap().contains("grace_minute"),
        "{msg}"
    );
}

#[test]
fn every_semantic_problem_is_listed_with_its_key() {
    let text = std::fs::read_to_string(root().join("config/policies/seed-default.toml")).unwrap();
    let text = text
        .replace(
            "timezone = \"Asia/Shanghai\"",
            "timezone = \"Mars/Olympus\"",
        )
        .replace("rule = \"late_half_day\"", "rule = \"late_half\"")
        .replace(
            "{ up_to = 180, grade = \"half-day\", rule = \"early_half_day\" }",
            "{ up_to = 20, grade = \"half-day\", rule = \"early_half_day\" }",
        )
        .replace("end = \"17:30\"", "end = \"07:30\"")
        .replace(
            "category = \"internal\"\nzh = \"擅自换班\"",
            "category = \"nowhere\"\nzh = \"擅自换班\"",
        );
    let e = parse_str(&text, "bad.toml").unwrap_err();
    let keys: Vec<&str> = e.issues.iter().map(|i| i.key.as_str()).collect();
    for k in [
        "timezone",
        "lateness.steps[1].rule",
        "earliness.steps[1].up_to",
        "shift[0].end",
        "rule.shift_swap.category",
    ] {
        assert!(keys.contains(&k), "missing {k} in {keys:?}\n{e}");
    }
    assert!(e.to_string().contains("Mars/Olympus"));
}

#[test]
fn decimal_points_with_more_than_two_places_are_refused() {
    let text =
        std::fs::read_to_string(root().join("config/policies/hengshui-acceptance.toml")).unwrap();
    let text = text.replace("points = 0.5", "points = 0.125");
    let e = parse_str(&text, "d.toml").unwrap_err();
    assert!(e.to_string().contains("0.125"), "{e}");
}
