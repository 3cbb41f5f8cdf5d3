//! Validation of a raw policy into a [`Policy`].

use super::*;

/// Validates a raw policy, returning every problem found.
pub fn validate(raw: RawPolicy) -> Result<Policy, Vec<Issue>> {
    let mut is = Issues(Vec::new());
    let tz = identity(&raw, &mut is);
    // Categories and rules first: everything else refers to them.
    let (categories, rules) = categories_and_rules(&raw, &mut is);
    let (shifts, shift_ids) = shifts(&raw, &mut is);
    let (default_shift, unrostered) = default_shift(&raw, &shift_ids, &mut is);
    let (workdays, holidays) = calendar(&raw, &mut is);
    check_window(&raw, &mut is);
    let absence = absence(&raw, &rules, &mut is);
    let grading = |name: &str, g: &RawGrading, is: &mut Issues| {
        grading_of(name, g.grace_minutes, &g.steps, &absence, &rules, is)
    };
    let lateness = grading("lateness", &raw.lateness, &mut is);
    let earliness = grading("earliness", &raw.earliness, &mut is);
    let leaving_post = leaving_post(&raw, &absence, &rules, &mut is);
    let (overtime, leave) = overtime_and_leave(&raw, &mut is);
    let hours = hours(&raw, &rules, &mut is);
    let (actions, ladder) = actions_and_ladder(&raw, &mut is);
    let mut engine_rules: Vec<(String, &Arc<str>)> = Vec::new();
    for (name, g) in [("lateness", &lateness), ("earliness", &earliness)]
        .into_iter()
        .chain(
            leaving_post
                .as_ref()
                .map(|lp| ("leaving_post", &lp.grading)),
        )
    {
        for (i, st) in g.steps.iter().enumerate() {
            engine_rules.push((format!("{name}.steps[{i}].rule"), &st.rule));
        }
    }
    engine_rules.push(("absence.no_punch_rule".into(), &absence.no_punch_rule));
    if let MissingPunch::AbsentHalf { rule, .. } = &absence.missing_punch {
        engine_rules.push(("absence.missing_punch_rule".into(), rule));
    }
    if let Some(r) = &hours.rule {
        engine_rules.push(("hours.rule".into(), r));
    }
    check_engine_rules(&rules, engine_rules, &mut is);
    let hr = validate_hr_rules(
        raw.appeal_answer_days,
        raw.pass_mark,
        raw.score_base,
        &raw.corrections,
        &mut is,
    );

    if !is.0.is_empty() {
        return Err(is.0);
    }
    Ok(Policy {
        id: raw.id,
        version: raw.version,
        name: raw.name,
        tz,
        shifts,
        shift_ids,
        default_shift,
        workdays,
        unrostered,
        holidays,
        window_before_secs: raw.window.before_minutes * 60,
        window_after_secs: raw.window.after_minutes * 60,
        dedupe_secs: raw.window.dedupe_seconds,
        visit_secs: raw.window.visit_minutes * 60,
        hours,
        lateness,
        earliness,
        absence,
        ladder,
        leaving_post,
        overtime,
        leave,
        score_base: raw.score_base,
        appeal_days: raw.appeal_days,
        hr,
        categories,
        rules,
        actions,
    })
}

/// `id`, `version` and `timezone`.
fn identity(raw: &RawPolicy, is: &mut Issues) -> Tz {
    if raw.id.trim().is_empty() {
        is.push("id", "must not be empty");
    }
    if raw.version.trim().is_empty() {
        is.push("version", "must not be empty");
    }
    match raw.timezone.parse() {
        Ok(tz) => tz,
        Err(_) => {
            is.push(
                "timezone",
                format!(
                    "{:?} is not an IANA time zone (e.g. Asia/Shanghai)",
                    raw.timezone
                ),
            );
            chrono_tz::Asia::Shanghai
        }
    }
}

/// A reference to a deduction rule at `key`: it must be declared and not a
/// bonus.
fn rule_ref(rules: &BTreeMap<Arc<str>, Rule>, is: &mut Issues, key: String, id: &str) -> Arc<str> {
    match rules.get_key_value(id) {
        Some((k, r)) => {
            if r.kind == RuleKind::Bonus {
                is.push(key, format!("rule {id:?} is a bonus, not a deduction"));
            }
            k.clone()
        }
        None => {
            is.push(
                key,
                format!("unknown rule {id:?} (declare it as [rule.{id}])"),
            );
            Arc::from(id)
        }
    }
}

/// `default_shift` and `unrostered`.
fn default_shift(
    raw: &RawPolicy,
    shift_ids: &HashMap<Arc<str>, ShiftIdx>,
    is: &mut Issues,
) -> (Option<ShiftIdx>, Unrostered) {
    let default_shift = match &raw.default_shift {
        Some(id) => match shift_ids.get(id.as_str()) {
            Some(s) => Some(*s),
            None => {
                is.push("default_shift", format!("unknown shift {id:?}"));
                None
            }
        },
        None => None,
    };
    let unrostered = match raw.unrostered.as_str() {
        "default-shift" => {
            if default_shift.is_none() {
                is.push(
                    "default_shift",
                    "required unless unrostered = \"rest\" (which shift do weekly workdays carry?)",
                );
            }
            Unrostered::DefaultShift
        }
        "rest" => Unrostered::Rest,
        other => {
            is.push(
                "unrostered",
                format!("{other:?} is not `default-shift` or `rest`"),
            );
            Unrostered::DefaultShift
        }
    };
    (default_shift, unrostered)
}

/// `[absence]`.
fn absence(raw: &RawPolicy, rules: &BTreeMap<Arc<str>, Rule>, is: &mut Issues) -> Absence {
    let a = &raw.absence;
    for (k, v) in [
        ("absence.half_day_points", a.half_day_points),
        ("absence.full_day_points", a.full_day_points),
    ] {
        if v < Points::ZERO {
            is.push(k, "must not be negative");
        }
    }
    let no_punch_rule = rule_ref(rules, is, "absence.no_punch_rule".into(), &a.no_punch_rule);
    let missing_punch = match a.missing_punch.as_str() {
        "absent-half" => match &a.missing_punch_rule {
            Some(r) => MissingPunch::AbsentHalf {
                rule: rule_ref(rules, is, "absence.missing_punch_rule".into(), r),
                points: a.half_day_points,
            },
            None => {
                is.push(
                    "absence.missing_punch_rule",
                    "required when missing_punch = \"absent-half\"",
                );
                MissingPunch::Flag
            }
        },
        "flag" => MissingPunch::Flag,
        other => {
            is.push(
                "absence.missing_punch",
                format!("{other:?} is not `absent-half` or `flag`"),
            );
            MissingPunch::Flag
        }
    };
    Absence {
        half_day_points: a.half_day_points,
        full_day_points: a.full_day_points,
        day_cap: a.day_cap,
        no_punch_rule,
        no_punch_points: a.no_punch_points.unwrap_or(a.full_day_points),
        missing_punch,
    }
}

/// A grading ladder (`lateness`, `earliness`, `leaving_post`): bounds that
/// rise, only the last step open-ended, points defaulting to the absence
/// points of a half-day or full-day grade.
fn grading_of(
    name: &str,
    grace: i64,
    raw_steps: &[RawStep],
    absence: &Absence,
    rules: &BTreeMap<Arc<str>, Rule>,
    is: &mut Issues,
) -> Grading {
    if grace < 0 {
        is.push(format!("{name}.grace_minutes"), "must not be negative");
    }
    let mut steps = Vec::new();
    let mut prev = grace;
    for (i, s) in raw_steps.iter().enumerate() {
        let key = format!("{name}.steps[{i}]");
        let last = i + 1 == raw_steps.len();
        match (s.up_to, last) {
            (Some(u), _) if u <= prev => is.push(
                format!("{key}.up_to"),
                format!("{u} must be greater than the previous bound {prev}"),
            ),
            (Some(u), _) => prev = u,
            (None, false) => is.push(format!("{key}.up_to"), "only the last step may omit up_to"),
            (None, true) => {}
        }
        let grade = parse_grade(&s.grade).unwrap_or_else(|| {
            is.push(
                format!("{key}.grade"),
                format!("{:?} is not `minor`, `half-day` or `full-day`", s.grade),
            );
            Grade::Minor
        });
        let points = match (s.points, grade) {
            (Some(p), _) => p,
            (None, Grade::HalfDay) => absence.half_day_points,
            (None, Grade::FullDay) => absence.full_day_points,
            (None, _) => {
                is.push(format!("{key}.points"), "required for a `minor` step");
                Points::ZERO
            }
        };
        if points < Points::ZERO {
            is.push(format!("{key}.points"), "must not be negative");
        }
        steps.push(Step {
            up_to: s.up_to,
            grade,
            rule: rule_ref(rules, is, format!("{key}.rule"), &s.rule),
            points,
        });
    }
    if steps.is_empty() {
        is.push(format!("{name}.steps"), "at least one step is required");
    } else if steps.last().is_some_and(|s| s.up_to.is_some()) {
        is.push(
            format!("{name}.steps[{}].up_to", steps.len() - 1),
            "the last step must have no up_to (it covers everything beyond)",
        );
    }
    Grading {
        grace_minutes: grace,
        steps,
    }
}

/// `[leaving_post]`.
fn leaving_post(
    raw: &RawPolicy,
    absence: &Absence,
    rules: &BTreeMap<Arc<str>, Rule>,
    is: &mut Issues,
) -> Option<LeavingPost> {
    raw.leaving_post.as_ref().map(|lp| {
        let mut allowed_breaks = Vec::new();
        for (i, b) in lp.allowed_breaks.iter().enumerate() {
            let parsed = b
                .split_once('-')
                .and_then(|(a, z)| Some((parse_hm(a.trim())?, parse_hm(z.trim())?)));
            match parsed {
                Some(w) if w.0 != w.1 => allowed_breaks.push(w),
                _ => is.push(
                    format!("leaving_post.allowed_breaks[{i}]"),
                    format!("{b:?} is not a window HH:MM-HH:MM (e.g. \"11:30-12:30\")"),
                ),
            }
        }
        if lp.grace_minutes > 24 * 60 {
            is.push(
                "leaving_post.grace_minutes",
                format!("{} is outside 0 … 1440 minutes", lp.grace_minutes),
            );
        }
        LeavingPost {
            allowed_breaks,
            grading: grading_of(
                "leaving_post",
                lp.grace_minutes,
                &lp.steps,
                absence,
                rules,
                is,
            ),
            trust_direction: lp.trust_direction,
        }
    })
}

/// `[overtime]` and `[leave]`.
fn overtime_and_leave(raw: &RawPolicy, is: &mut Issues) -> (Option<Overtime>, Option<LeaveRules>) {
    let overtime = raw.overtime.as_ref().map(|o| {
        if !(1..=24 * 60).contains(&o.min_minutes) {
            is.push(
                "overtime.min_minutes",
                format!("{} is outside 1 … 1440 minutes", o.min_minutes),
            );
        }
        Overtime {
            min_minutes: o.min_minutes,
        }
    });
    let leave = raw.leave.as_ref().map(|l| {
        if !(0..=24 * 366).contains(&l.notice_hours) {
            is.push(
                "leave.notice_hours",
                format!("{} is outside 0 … 8784 hours", l.notice_hours),
            );
        }
        if !(0..=366).contains(&l.sick_days_need_hospital_record) {
            is.push(
                "leave.sick_days_need_hospital_record",
                format!(
                    "{} is outside 0 … 366 days",
                    l.sick_days_need_hospital_record
                ),
            );
        }
        LeaveRules {
            notice_hours: l.notice_hours,
            sick_days_need_hospital_record: l.sick_days_need_hospital_record,
        }
    });
    (overtime, leave)
}

/// `[hours]`.
fn hours(raw: &RawPolicy, rules: &BTreeMap<Arc<str>, Rule>, is: &mut Issues) -> Hours {
    let Some(h) = &raw.hours else {
        return Hours::default();
    };
    for (k, v) in [
        ("hours.half_day_below", h.half_day_below),
        ("hours.absent_below", h.absent_below),
    ] {
        if let Some(v) = v
            && !(1..=24 * 60).contains(&v)
        {
            is.push(k, format!("{v} is outside 1 … 1440 minutes"));
        }
    }
    if let (Some(half), Some(full)) = (h.half_day_below, h.absent_below)
        && full > half
    {
        is.push(
            "hours.absent_below",
            format!(
                "{full} is above half_day_below = {half} (fewer minutes cannot be a smaller absence)"
            ),
        );
    }
    let any = h.half_day_below.is_some() || h.absent_below.is_some();
    let rule = match (&h.rule, any) {
        (Some(r), _) => Some(rule_ref(rules, is, "hours.rule".into(), r)),
        (None, true) => {
            is.push(
                "hours.rule",
                "required when half_day_below or absent_below is set",
            );
            None
        }
        (None, false) => None,
    };
    Hours {
        half_day_below: h.half_day_below,
        absent_below: h.absent_below,
        rule,
    }
}

/// `[actions]` and the `[ladder]` that names them.
fn actions_and_ladder(
    raw: &RawPolicy,
    is: &mut Issues,
) -> (BTreeMap<Arc<str>, ActionLabel>, Option<Ladder>) {
    let mut actions = BTreeMap::new();
    for (id, l) in &raw.actions {
        actions.insert(
            Arc::<str>::from(id.as_str()),
            ActionLabel {
                zh: l.zh.clone(),
                en: l.en.clone(),
            },
        );
    }
    let action_ref = |is: &mut Issues, key: String, id: &str| -> Arc<str> {
        match actions.get_key_value(id) {
            Some((k, _)) => k.clone(),
            None => {
                is.push(
                    key,
                    format!("unknown action {id:?} (label it in [actions])"),
                );
                Arc::from(id)
            }
        }
    };
    let ladder = raw.ladder.as_ref().map(|l| {
        if l.steps.is_empty() {
            is.push("ladder.steps", "at least one step is required");
        }
        let steps = l
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.iter()
                    .enumerate()
                    .map(|(j, a)| action_ref(is, format!("ladder.steps[{i}][{j}]"), a))
                    .collect()
            })
            .collect();
        let consecutive_actions = l
            .consecutive_actions
            .iter()
            .enumerate()
            .map(|(j, a)| action_ref(is, format!("ladder.consecutive_actions[{j}]"), a))
            .collect();
        Ladder {
            steps,
            consecutive: l.consecutive,
            consecutive_actions,
        }
    });
    (actions, ladder)
}

/// `absence_days` is for manual entries: an engine rule already counts its
/// absence on the verdict, and counting it again would double it.
fn check_engine_rules(
    rules: &BTreeMap<Arc<str>, Rule>,
    engine_rules: Vec<(String, &Arc<str>)>,
    is: &mut Issues,
) {
    for (used_by, id) in engine_rules {
        if rules.get(id).is_some_and(|r| !r.absence_days.is_zero()) {
            is.push(
                format!("rule.{id}.absence_days"),
                format!(
                    "only manual rules may count as absence; {used_by} uses rule {id:?}, whose days already count"
                ),
            );
        }
    }
}

/// `workdays` and `[holidays]`.
fn calendar(raw: &RawPolicy, is: &mut Issues) -> ([bool; 7], BTreeMap<NaiveDate, HolidayKind>) {
    let mut workdays = [false; 7];
    for (i, w) in raw.workdays.iter().enumerate() {
        match parse_weekday(w) {
            Some(d) => workdays[d.num_days_from_monday() as usize] = true,
            None => is.push(
                format!("workdays[{i}]"),
                format!("{w:?} is not a weekday (mon … sun)"),
            ),
        }
    }
    let mut holidays = BTreeMap::new();
    for (d, k) in &raw.holidays {
        let key = format!("holidays.\"{d}\"");
        let Ok(date) = NaiveDate::parse_from_str(d, "%Y-%m-%d") else {
            is.push(key, format!("{d:?} is not a date YYYY-MM-DD"));
            continue;
        };
        match k.as_str() {
            "holiday" => holidays.insert(date, HolidayKind::Holiday),
            "workday" => holidays.insert(date, HolidayKind::Workday),
            other => {
                is.push(key, format!("{other:?} is not `holiday` or `workday`"));
                None
            }
        };
    }
    (workdays, holidays)
}

/// `[window]`: the bounds of its minutes and seconds.
fn check_window(raw: &RawPolicy, is: &mut Issues) {
    let w = &raw.window;
    for (k, v) in [
        ("window.before_minutes", w.before_minutes),
        ("window.after_minutes", w.after_minutes),
    ] {
        if !(0..=24 * 60).contains(&v) {
            is.push(k, format!("{v} is outside 0 … 1440 minutes"));
        }
    }
    if !(0..=3600).contains(&w.dedupe_seconds) {
        is.push(
            "window.dedupe_seconds",
            format!("{} is outside 0 … 3600 seconds", w.dedupe_seconds),
        );
    }
    if !(0..=24 * 60).contains(&w.visit_minutes) {
        is.push(
            "window.visit_minutes",
            format!("{} is outside 0 … 1440 minutes", w.visit_minutes),
        );
    }
}

/// `[[category]]` and `[rule.*]`: everything else refers to them.
#[allow(clippy::type_complexity)]
fn categories_and_rules(
    raw: &RawPolicy,
    is: &mut Issues,
) -> (Vec<Category>, BTreeMap<Arc<str>, Rule>) {
    let mut categories = Vec::new();
    for (i, c) in raw.category.iter().enumerate() {
        if categories.iter().any(|x: &Category| *x.id == *c.id) {
            is.push(
                format!("category[{i}].id"),
                format!("duplicate category {:?}", c.id),
            );
        }
        if c.cap.is_some_and(|cap| cap < Points::ZERO) {
            is.push(format!("category[{i}].cap"), "must not be negative");
        }
        categories.push(Category {
            id: Arc::from(c.id.as_str()),
            zh: c.zh.clone(),
            en: c.en.clone(),
            cap: c.cap,
        });
    }
    let mut rules = BTreeMap::new();
    for (id, r) in &raw.rule {
        let key = format!("rule.{id}");
        let Some(cat) = categories.iter().find(|c| *c.id == *r.category) else {
            is.push(
                format!("{key}.category"),
                format!(
                    "unknown category {:?} (declare it in [[category]])",
                    r.category
                ),
            );
            continue;
        };
        let kind = match r.kind.as_str() {
            "deduction" => RuleKind::Deduction,
            "bonus" => RuleKind::Bonus,
            other => {
                is.push(
                    format!("{key}.kind"),
                    format!("{other:?} is not `deduction` or `bonus`"),
                );
                RuleKind::Deduction
            }
        };
        if r.points.is_some_and(|p| p < Points::ZERO) {
            is.push(format!("{key}.points"), "must not be negative");
        }
        let absence_days = r.absence_days.unwrap_or(Points::ZERO);
        if let Some(a) = r.absence_days {
            if a != Points::HALF && a != Points::ONE {
                is.push(
                    format!("{key}.absence_days"),
                    format!("{a} is not 0.5 or 1 (days of absence an entry counts as)"),
                );
            } else if kind == RuleKind::Bonus {
                is.push(
                    format!("{key}.absence_days"),
                    "a bonus cannot count as absence",
                );
            }
        }
        rules.insert(
            Arc::<str>::from(id.as_str()),
            Rule {
                id: Arc::from(id.as_str()),
                category: cat.id.clone(),
                zh: r.zh.clone(),
                en: r.en.clone(),
                seed: r.seed.clone(),
                points: r.points,
                kind,
                absence_days,
            },
        );
    }
    (categories, rules)
}

/// `[[shift]]`: the shifts and their ids.
fn shifts(raw: &RawPolicy, is: &mut Issues) -> (Vec<Shift>, HashMap<Arc<str>, ShiftIdx>) {
    let mut shifts = Vec::new();
    let mut shift_ids = HashMap::new();
    for (i, s) in raw.shift.iter().enumerate() {
        let key = format!("shift[{i}]");
        if s.id.trim().is_empty() || s.id == "rest" {
            is.push(
                format!("{key}.id"),
                format!("{:?} cannot be a shift id", s.id),
            );
        }
        let start = parse_hm(&s.start);
        let end = parse_hm(&s.end);
        if start.is_none() {
            is.push(
                format!("{key}.start"),
                format!("{:?} is not HH:MM", s.start),
            );
        }
        if end.is_none() {
            is.push(format!("{key}.end"), format!("{:?} is not HH:MM", s.end));
        }
        let (start, end) = (start.unwrap_or_default(), end.unwrap_or_default());
        check_shift_bounds(start, end, s.overnight, is, &key);
        for (k, v) in [
            ("grace_minutes", s.grace_minutes),
            ("before_minutes", s.before_minutes),
            ("after_minutes", s.after_minutes),
        ] {
            if let Some(v) = v
                && !(0..=24 * 60).contains(&v)
            {
                is.push(
                    format!("{key}.{k}"),
                    format!("{v} is outside 0 … 1440 minutes"),
                );
            }
        }
        let id: Arc<str> = Arc::from(s.id.as_str());
        if shift_ids.insert(id.clone(), ShiftIdx(i as u16)).is_some() {
            is.push(format!("{key}.id"), format!("duplicate shift {:?}", s.id));
        }
        shifts.push(Shift {
            id,
            start,
            end,
            overnight: s.overnight,
            grace_minutes: s.grace_minutes,
            before_secs: s.before_minutes.unwrap_or(raw.window.before_minutes) * 60,
            after_secs: s.after_minutes.unwrap_or(raw.window.after_minutes) * 60,
        });
    }
    if shifts.is_empty() {
        is.push("shift", "at least one [[shift]] is required");
    }
    (shifts, shift_ids)
}
