//! Builders shared by the integration tests.

use std::path::PathBuf;

use attendd::domain::calendar::ShiftClock;
use attendd::domain::classify::{EmployeeDays, evaluate_employee};
use attendd::domain::policy::Policy;
use attendd::domain::types::*;
use attendd::input::LocalTimes;
use chrono::{DateTime, NaiveDate, Utc};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A shipped policy by file stem.
#[track_caller]
pub fn shipped(name: &str) -> Policy {
    let path = root().join("config/policies").join(format!("{name}.toml"));
    attendd::policy_file::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// A policy from text.
#[track_caller]
pub fn inline(text: &str) -> Policy {
    attendd::policy_file::parse_str(text, "<inline>").unwrap_or_else(|e| panic!("{e}"))
}

/// `YYYY-MM-DD`.
#[track_caller]
pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// A local time in the policy's zone (`YYYY-MM-DD HH:MM[:SS]`) or RFC 3339.
#[track_caller]
pub fn at(p: &Policy, s: &str) -> DateTime<Utc> {
    LocalTimes::new(p.tz).parse(s).unwrap()
}

/// One employee's data, built up by a test.
pub struct Case<'p> {
    pub policy: &'p Policy,
    pub punches: Vec<Punch>,
    pub roster: Roster,
    pub leaves: Vec<Leave>,
    pub holidays: Holidays,
    pub default_shift: Option<ShiftIdx>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    /// The instant verdicts are made for; by default after every window,
    /// so every verdict is final.
    pub now: DateTime<Utc>,
}

impl<'p> Case<'p> {
    pub fn new(policy: &'p Policy) -> Self {
        Case {
            policy,
            punches: Vec::new(),
            roster: Roster::new(),
            leaves: Vec::new(),
            holidays: policy.holidays.clone(),
            default_shift: None,
            start_date: None,
            end_date: None,
            now: DateTime::<Utc>::MAX_UTC,
        }
    }

    /// Employment dates (inclusive; either may be `""` for none).
    pub fn employed(mut self, start: &str, end: &str) -> Self {
        self.start_date = (!start.is_empty()).then(|| date(start));
        self.end_date = (!end.is_empty()).then(|| date(end));
        self
    }

    /// Evaluates as known at `now` (a local time), so open windows are
    /// provisional.
    pub fn at_time(mut self, now: &str) -> Self {
        self.now = at(self.policy, now);
        self
    }

    /// Adds punches given as local times.
    pub fn punches(mut self, times: &[&str]) -> Self {
        for t in times {
            let at = at(self.policy, t);
            self.punches.push(Punch {
                at,
                device: Some("gate-1".into()),
                direction: None,
            });
        }
        self
    }

    /// Adds a roster row: a shift id or `rest`.
    pub fn roster(mut self, d: &str, shift: &str) -> Self {
        let entry = if shift == "rest" {
            RosterEntry::Rest
        } else {
            RosterEntry::Shift(self.policy.shift_by_id(shift).expect("known shift"))
        };
        self.roster.insert(date(d), entry);
        self
    }

    /// Adds a leave record.
    pub fn leave(mut self, start: &str, end: &str, kind: &str, status: LeaveStatus) -> Self {
        self.leaves.push(Leave {
            start: at(self.policy, start),
            end: at(self.policy, end),
            kind: kind.into(),
            status,
            requested_at: None,
            document: LeaveDocument::Unknown,
        });
        self
    }

    /// Adds an approved leave record with its request time (local, or
    /// `""` for none) and document (`""` for none handed in).
    pub fn leave_asked(
        mut self,
        start: &str,
        end: &str,
        kind: &str,
        requested_at: &str,
        document: &str,
    ) -> Self {
        self.leaves.push(Leave {
            start: at(self.policy, start),
            end: at(self.policy, end),
            kind: kind.into(),
            status: LeaveStatus::Approved,
            requested_at: (!requested_at.is_empty()).then(|| at(self.policy, requested_at)),
            document: if document.is_empty() {
                LeaveDocument::Missing
            } else {
                LeaveDocument::Given(document.into())
            },
        });
        self
    }

    /// Marks a date in the holiday calendar.
    pub fn holiday(mut self, d: &str, kind: HolidayKind) -> Self {
        self.holidays.insert(date(d), kind);
        self
    }

    /// Evaluates `[from, to]`.
    pub fn eval(&self, from: &str, to: &str) -> Vec<DayVerdict> {
        let (from, to) = (date(from), date(to));
        let clock = ShiftClock::new(
            self.policy,
            from - chrono::Days::new(40),
            to + chrono::Days::new(3),
        );
        let id = EmployeeId::from("E001");
        evaluate_employee(
            &clock,
            &self.holidays,
            &EmployeeDays {
                employee: &id,
                default_shift: self.default_shift,
                punches: &self.punches,
                roster: Some(&self.roster),
                leaves: &self.leaves,
                start_date: self.start_date,
                end_date: self.end_date,
            },
            from,
            to,
            self.now,
        )
    }

    /// Evaluates one date.
    #[track_caller]
    pub fn day(&self, d: &str) -> DayVerdict {
        let v = self.eval(d, d);
        assert_eq!(v.len(), 1);
        v.into_iter().next().unwrap()
    }
}

/// Points from text, for readable assertions.
pub fn pts(s: &str) -> attendd::domain::Points {
    s.parse().unwrap()
}
