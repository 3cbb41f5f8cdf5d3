//! README's "The seed's rules, one by one" against the shipped policies: every
//! rule id a table names is in the catalogue of the policy its heading names,
//! every flag it names exists, and every catalogue rule of every shipped
//! policy is named in some table, so the table cannot drift silently.

use std::collections::{BTreeMap, BTreeSet};

use attendd::domain::types::Flag;

use crate::common::{root, shipped};

const SECTION: &str = "## The seed's rules, one by one";

/// The ways a rule is applied; every row's "How" names at least one.
const HOW: [&str; 7] = [
    "**engine**",
    "**flag**",
    "**manual entry**",
    "**report**",
    "**process**",
    "**not implemented**",
    "**not applicable**",
];

/// One `### …` table of the section.
struct Table {
    heading: String,
    policy: String,
    /// Header cell → column index.
    columns: BTreeMap<String, usize>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn cell<'a>(&self, row: &'a [String], column: &str) -> &'a str {
        let i = self
            .columns
            .get(column)
            .unwrap_or_else(|| panic!("README table {:?} has no column {column:?}", self.heading));
        &row[*i]
    }
}

/// The text between backticks, in order.
fn ticked(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_string()).collect()
}

fn tables(readme: &str) -> Vec<Table> {
    let start = readme
        .find(SECTION)
        .unwrap_or_else(|| panic!("README.md has no section {SECTION:?}"));
    let body = &readme[start + SECTION.len()..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    let mut out: Vec<Table> = Vec::new();
    for line in body.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            let policy = h
                .split("(policy `")
                .nth(1)
                .and_then(|r| r.split('`').next())
                .unwrap_or_else(|| panic!("README heading {h:?} names no (policy `ID`)"));
            out.push(Table {
                heading: h.to_string(),
                policy: policy.to_string(),
                columns: BTreeMap::new(),
                rows: Vec::new(),
            });
        } else if line.starts_with('|') {
            let t = out
                .last_mut()
                .unwrap_or_else(|| panic!("README table row before any ### heading: {line}"));
            let c = cells(line);
            if t.columns.is_empty() {
                t.columns = c.iter().enumerate().map(|(i, c)| (c.clone(), i)).collect();
            } else if c.iter().all(|c| c.chars().all(|ch| ch == '-' || ch == ':')) {
                continue;
            } else {
                assert_eq!(
                    c.len(),
                    t.columns.len(),
                    "README table {:?}: row has {} cells, header {}: {line}",
                    t.heading,
                    c.len(),
                    t.columns.len()
                );
                t.rows.push(c);
            }
        }
    }
    out
}

#[test]
fn readme_seed_tables_name_only_shipped_rules_and_every_shipped_rule() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let tables = tables(&readme);
    let sets: Vec<char> = tables
        .iter()
        .map(|t| t.heading.chars().next().unwrap())
        .collect();
    assert_eq!(
        sets,
        ['A', 'B', 'C', 'D'],
        "one table per rule set, in order"
    );

    // Every shipped policy, by id.
    let mut policies = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("config/policies")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
            policies.insert(stem.clone(), shipped(&stem));
        }
    }
    let year_flag = attendd::hr::year::FAILED_TWO_CONSECUTIVE_YEARS;

    // (policy, rule) pairs named anywhere.
    let mut named: BTreeSet<(String, String)> = BTreeSet::new();
    for t in &tables {
        let policy = policies.get(&t.policy).unwrap_or_else(|| {
            panic!(
                "README table {:?} names policy {:?}, not shipped",
                t.heading, t.policy
            )
        });
        assert!(!t.rows.is_empty(), "README table {:?} is empty", t.heading);
        let mut seeds = BTreeSet::new();
        // Rule ids this table names.
        let mut mine = BTreeSet::new();
        for row in &t.rows {
            let seed = t.cell(row, "Seed");
            assert!(
                seed.starts_with(t.heading.chars().next().unwrap()),
                "README table {:?}: seed reference {seed:?} is not of this rule set",
                t.heading
            );
            assert!(
                seeds.insert(seed),
                "README table {:?}: {seed:?} twice",
                t.heading
            );
            let how = t.cell(row, "How");
            assert!(
                HOW.iter().any(|h| how.contains(h)),
                "README table {:?}, {seed}: How {how:?} names none of {HOW:?}",
                t.heading
            );
            let ids = t.cell(row, "Rule id");
            let listed = ticked(ids);
            assert!(
                ids == "—" || !listed.is_empty(),
                "README table {:?}, {seed}: Rule id {ids:?} is neither — nor `ids`",
                t.heading
            );
            if how.contains("**manual entry**") {
                assert!(
                    !listed.is_empty(),
                    "README table {:?}, {seed}: a manual entry needs its rule id",
                    t.heading
                );
            }
            for id in listed {
                assert!(
                    policy.rules.contains_key(id),
                    "README table {:?}, {seed}: rule {id:?} is not in the catalogue of {}; known: {:?}",
                    t.heading,
                    t.policy,
                    policy.rules.keys().collect::<Vec<_>>()
                );
                mine.insert(id.to_string());
                named.insert((t.policy.clone(), id.to_string()));
            }
            // Flags named after **flag** exist.
            if let Some(rest) = how.split("**flag**").nth(1) {
                let rest = rest.split("**").next().unwrap_or("");
                for f in ticked(rest) {
                    let known = f == year_flag
                        || serde_json::from_value::<Flag>(serde_json::Value::String(f.into()))
                            .is_ok();
                    assert!(
                        known,
                        "README table {:?}, {seed}: flag {f:?} does not exist",
                        t.heading
                    );
                }
            }
        }
        // Every rule of this policy that cites this rule set's source is
        // named in this table.
        let sources: Vec<&str> = t
            .heading
            .split(" (policy")
            .next()
            .unwrap()
            .split_whitespace()
            .filter(|w| w.chars().count() > 3)
            .collect();
        for (id, rule) in &policy.rules {
            if sources.iter().any(|s| rule.seed.contains(s)) {
                assert!(
                    mine.contains(&**id),
                    "README table {:?} leaves out rule {id:?} of {} (seed {:?})",
                    t.heading,
                    t.policy,
                    rule.seed
                );
            }
        }
    }

    // Every catalogue rule of every shipped policy is named in some table
    // (seed-default's C rules under C, as city-management-24h carries them).
    let anywhere: BTreeSet<&str> = named.iter().map(|(_, r)| r.as_str()).collect();
    for (pid, p) in &policies {
        for id in p.rules.keys() {
            assert!(
                anywhere.contains(&**id),
                "README's seed tables never name rule {id:?} of {pid}"
            );
        }
    }
}
