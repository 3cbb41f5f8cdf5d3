//! Properties that must hold for any punches.

use attendd::domain::types::{DayVerdict, Punch};
use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;

use crate::common::{Case, pts, shipped};

/// 2026-11-02 00:00 in Asia/Shanghai, as seconds.
fn monday_midnight() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 16, 0, 0).unwrap()
}

fn punches_at(offsets: &[i64]) -> Vec<Punch> {
    offsets
        .iter()
        .map(|s| Punch {
            at: monday_midnight() + Duration::seconds(*s),
            device: None,
            direction: None,
        })
        .collect()
}

fn eval(policy: &str, punches: Vec<Punch>) -> Vec<DayVerdict> {
    let p = shipped(policy);
    let mut c = Case::new(&p);
    if policy == "city-management-24h" {
        c = c
            .roster("2026-11-02", "night")
            .roster("2026-11-03", "morning");
    }
    c.punches = punches;
    c.eval("2026-11-02", "2026-11-03")
}

const POLICIES: [&str; 4] = [
    "seed-default",
    "city-management-24h",
    "outbound-call-centre",
    "hengshui-acceptance",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// The day's points never exceed the day cap (seed-default 10).
    #[test]
    fn points_never_exceed_the_cap(offsets in prop::collection::vec(0i64..2 * 86_400, 0..8), pi in 0usize..4) {
        let policy = POLICIES[pi];
        let p = shipped(policy);
        for v in eval(policy, punches_at(&offsets)) {
            if let Some(cap) = p.absence.day_cap {
                prop_assert!(v.points <= cap, "{policy}: {} > {}", v.points, cap);
            }
            prop_assert!(v.absence_days <= pts("1"));
            let sum: attendd::domain::Points = v.deductions.iter().map(|d| d.points).sum();
            prop_assert_eq!(sum, v.points);
        }
    }

    /// A later check-in never lowers the points (the check-out fixed at
    /// 17:30). Check-ins within `visit_minutes` (30) of the check-out are
    /// left out: with them the two punches are one visit and the one-punch
    /// rule decides (policy.md, "One visit, one punch"; issue 12).
    #[test]
    fn later_check_in_never_lowers_points(a in 4 * 3600 + 1800i64..17 * 3600, b in 4 * 3600 + 1800i64..17 * 3600, pi in 0usize..4) {
        let policy = POLICIES[pi];
        if policy == "city-management-24h" { return Ok(()); }
        let (early, late) = (a.min(b), a.max(b));
        let out = 17 * 3600 + 30 * 60;
        let p1 = eval(policy, punches_at(&[early, out]))[0].points;
        let p2 = eval(policy, punches_at(&[late, out]))[0].points;
        prop_assert!(p1 <= p2, "{policy}: in at {early}s costs {p1}, at {late}s costs {p2}");
    }

    /// Punch order and repeated identical punches do not change the verdict.
    #[test]
    fn order_and_repeats_do_not_matter(offsets in prop::collection::vec(0i64..2 * 86_400, 0..8), seed in any::<u64>(), pi in 0usize..4) {
        let policy = POLICIES[pi];
        let base = eval(policy, punches_at(&offsets));
        let mut shuffled = offsets.clone();
        // Duplicate some, then permute deterministically from the seed.
        for (i, o) in offsets.iter().enumerate() {
            if (seed >> (i % 64)) & 1 == 1 { shuffled.push(*o); }
        }
        let n = shuffled.len();
        if n > 1 {
            let mut s = seed;
            for i in (1..n).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (s >> 33) as usize % (i + 1));
            }
        }
        let again = eval(policy, punches_at(&shuffled));
        for (x, y) in base.iter().zip(&again) {
            prop_assert_eq!(x.status, y.status);
            prop_assert_eq!(x.points, y.points);
            prop_assert_eq!(x.check_in, y.check_in);
            prop_assert_eq!(x.check_out, y.check_out);
            prop_assert_eq!(&x.deductions, &y.deductions);
        }
    }

    /// Evaluating twice gives the same result.
    #[test]
    fn evaluation_is_deterministic(offsets in prop::collection::vec(0i64..2 * 86_400, 0..8), pi in 0usize..4) {
        let policy = POLICIES[pi];
        prop_assert_eq!(eval(policy, punches_at(&offsets)), eval(policy, punches_at(&offsets)));
    }
}
