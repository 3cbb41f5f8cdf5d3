//! The group robots' messages (DingTalk, WeCom): grouping alerts by
//! contact, rendering the markdown, and pacing each robot.

use super::*;

/// One robot message: the batch's messages it carries and its JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct RobotMessage {
    /// Indices into the batch.
    pub members: Vec<usize>,
    /// The robot request's body.
    pub body: serde_json::Value,
}

/// What messages are aggregated by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum GroupKey {
    /// Absences and arrivals: the supervisor's name and contact.
    Supervisor(String, Option<String>),
    /// Terminal alerts: the operations contact.
    Operations(String),
    /// Summaries and publications: each on its own.
    Alone(usize),
}

/// A `supervisor_contact`: a mainland mobile number (11 digits from 1) or
/// a number written with `+`, else a robot user id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contact {
    /// Mentioned by mobile number.
    Mobile(String),
    /// Mentioned by user id.
    UserId(String),
}

impl Contact {
    /// Classifies a contact.
    pub fn parse(s: &str) -> Contact {
        let digits = s.trim_start_matches('+');
        let numeric = !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit() || c == '-');
        let mainland = s.len() == 11 && s.starts_with('1') && s.chars().all(|c| c.is_ascii_digit());
        if mainland || (s.starts_with('+') && numeric) {
            Contact::Mobile(s.to_string())
        } else {
            Contact::UserId(s.to_string())
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Contact::Mobile(s) | Contact::UserId(s) => s,
        }
    }
}

/// The robot message format a group is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Style {
    /// DingTalk `markdown` with `at`.
    DingTalk,
    /// WeCom `markdown` (`<@userid>` mentions; no lists).
    WeComMarkdown,
    /// WeCom `text` with `mentioned_mobile_list`.
    WeComText,
}

impl Style {
    /// The documented size limits: WeCom markdown content at most 4096
    /// bytes, text content at most 2048; DingTalk's is larger, kept at
    /// WeCom's markdown size so that a message stays readable on a phone.
    fn budget(self) -> usize {
        match self {
            Style::WeComText => 2000,
            _ => 4000,
        }
    }
}

/// Splits a group's members so that each message stays within the size
/// limit of its format.
pub(super) fn split_to_fit(
    key: &GroupKey,
    members: &[usize],
    msgs: &[(&str, &serde_json::Value)],
    style: Style,
    keyword: Option<&str>,
    contact: Option<&Contact>,
) -> Vec<Vec<usize>> {
    let mut chunks: Vec<Vec<usize>> = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    for &i in members {
        cur.push(i);
        let (_, text) = render(key, &cur, msgs, style, keyword, contact);
        if text.len() > style.budget() && cur.len() > 1 {
            cur.pop();
            chunks.push(std::mem::take(&mut cur));
            cur.push(i);
        }
    }
    if !cur.is_empty() {
        chunks.push(cur);
    }
    chunks
}

/// The title and text of one robot message for `members` of a group.
pub(super) fn render(
    key: &GroupKey,
    members: &[usize],
    msgs: &[(&str, &serde_json::Value)],
    style: Style,
    keyword: Option<&str>,
    contact: Option<&Contact>,
) -> (String, String) {
    // DingTalk's markdown needs a blank line to break a line; WeCom's takes
    // a newline. Neither list syntax is used: WeCom's markdown does not
    // render `- ` lists.
    let br = if style == Style::DingTalk {
        "\n\n"
    } else {
        "\n"
    };
    let strong = |s: &str| match style {
        Style::WeComText => s.to_string(),
        _ => format!("**{s}**"),
    };
    let of = |kind: &str| -> Vec<&serde_json::Value> {
        members
            .iter()
            .filter(|&&i| msgs[i].0 == kind)
            .map(|&i| msgs[i].1)
            .collect()
    };
    let mut head = match key {
        GroupKey::Supervisor(sup, _) => {
            let (a, r) = (of("absence").len(), of("arrival").len());
            let mut t = String::from("考勤提醒 attendance");
            if a > 0 {
                t.push_str(&format!(" · 未打卡 absent {a}"));
            }
            if r > 0 {
                t.push_str(&format!(" · 已到岗 arrived {r}"));
            }
            if !sup.is_empty() {
                t.push_str(&format!(" · {sup}"));
            }
            t
        }
        GroupKey::Operations(_) => format!("终端告警 terminal alerts {}", members.len()),
        GroupKey::Alone(_) => {
            let (kind, m) = msgs[members[0]];
            title(kind, m)
        }
    };
    if let Some(w) = keyword {
        head = format!("{w} {head}");
    }
    let mut lines: Vec<String> = Vec::new();
    match style {
        Style::WeComText => lines.push(head.clone()),
        _ => lines.push(format!("### {head}")),
    }
    match key {
        GroupKey::Supervisor(sup, _) => {
            for (kind, label) in [("absence", "未打卡 absent"), ("arrival", "已到岗 arrived")]
            {
                let items = of(kind);
                if items.is_empty() {
                    continue;
                }
                lines.push(strong(&format!("{label} ({})", items.len())));
                for m in items {
                    lines.push(m["text"].as_str().unwrap_or("").to_string());
                }
            }
            let mention = match (style, contact) {
                (Style::WeComMarkdown, Some(Contact::UserId(u))) => format!(" <@{u}>"),
                (Style::DingTalk, Some(c)) => format!(" @{}", c.as_str()),
                _ => String::new(),
            };
            if !sup.is_empty() || !mention.is_empty() {
                lines.push(format!("主管 supervisor: {sup}{mention}"));
            }
        }
        GroupKey::Operations(to) => {
            for &i in members {
                lines.push(msgs[i].1["text"].as_str().unwrap_or("").to_string());
            }
            if !to.is_empty() {
                lines.push(format!("运维 operations: {to}"));
            }
        }
        GroupKey::Alone(_) => {
            let (kind, m) = msgs[members[0]];
            lines.extend(body_lines(kind, m));
        }
    }
    let ids: Vec<&str> = members
        .iter()
        .filter_map(|&i| msgs[i].1["id"].as_str())
        .collect();
    match style {
        Style::WeComText => lines.push(format!("id: {}", ids.join(" "))),
        _ => lines.push(format!("> id: {}", ids.join(" "))),
    }
    (head, lines.join(br))
}

/// The robot request body in the format's documented shape.
pub(super) fn robot_body(
    style: Style,
    title: &str,
    text: &str,
    contact: Option<&Contact>,
) -> serde_json::Value {
    match style {
        Style::DingTalk => {
            let (mobiles, users): (Vec<&str>, Vec<&str>) = match contact {
                Some(Contact::Mobile(m)) => (vec![m.as_str()], vec![]),
                Some(Contact::UserId(u)) => (vec![], vec![u.as_str()]),
                None => (vec![], vec![]),
            };
            serde_json::json!({
                "msgtype": "markdown",
                "markdown": {"title": title, "text": text},
                "at": {"atMobiles": mobiles, "atUserIds": users, "isAtAll": false},
            })
        }
        Style::WeComMarkdown => serde_json::json!({
            "msgtype": "markdown",
            "markdown": {"content": text},
        }),
        Style::WeComText => {
            let mobiles: Vec<&str> = match contact {
                Some(Contact::Mobile(m)) => vec![m.as_str()],
                _ => vec![],
            };
            serde_json::json!({
                "msgtype": "text",
                "text": {"content": text, "mentioned_mobile_list": mobiles},
            })
        }
    }
}

/// At most `limit` messages in any `window` (a sliding window over the
/// times messages were sent): robots count per minute and throttle what
/// goes over, so a burst may use the whole minute's allowance but never
/// more. (A token bucket such as governor's `Quota::per_minute(20)` lets
/// 20 go at once and then one every 3 s, i.e. up to 39 within one minute:
/// docs.rs/governor, `Quota`, "Burst sizes".)
#[derive(Clone, Debug)]
pub struct Pace {
    limit: usize,
    window: Duration,
    sent: VecDeque<DateTime<Utc>>,
}

impl Pace {
    /// An empty pace.
    pub fn new(limit: usize, window: Duration) -> Pace {
        Pace {
            limit,
            window,
            sent: VecDeque::new(),
        }
    }

    /// A pace that already counts messages sent at `times`.
    pub fn seeded(limit: usize, window: Duration, times: &[DateTime<Utc>]) -> Pace {
        let mut p = Pace::new(limit, window);
        let mut t = times.to_vec();
        t.sort();
        p.sent.extend(t);
        p
    }

    /// `None` when a message may go at `now`, else the first instant one
    /// may.
    pub fn next_free(&mut self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        while self.sent.front().is_some_and(|t| *t + self.window <= now) {
            self.sent.pop_front();
        }
        if self.sent.len() < self.limit {
            return None;
        }
        // The window holds `limit` or more: room comes when the one that
        // brings the count under the limit leaves it.
        let i = self.sent.len() - self.limit;
        self.sent.get(i).map(|t| *t + self.window)
    }

    /// Counts a message sent at `now`.
    pub fn record(&mut self, now: DateTime<Utc>) {
        self.sent.push_back(now);
    }
}

/// Messages a robot takes per minute (both robots' documented limit).
pub const ROBOT_PER_MINUTE: usize = 20;

/// Each robot's pace, by robot URL, shared by every sink that names the
/// robot and kept across reloads.
static PACES: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<Pace>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The pace of the robot at `url`, seeded on first use from what `sink`
/// sent in the last minute (a restart must not grant a fresh minute).
pub(super) async fn robot_pace(
    store: &Store,
    sink: &str,
    url: &str,
    now: DateTime<Utc>,
) -> Result<Arc<tokio::sync::Mutex<Pace>>, crate::store::StoreError> {
    if let Some(p) = PACES.lock().unwrap_or_else(|e| e.into_inner()).get(url) {
        return Ok(p.clone());
    }
    let window = Duration::minutes(1);
    let times = store.outbox_sent_since(sink, now - window).await?;
    let pace = Arc::new(tokio::sync::Mutex::new(Pace::seeded(
        ROBOT_PER_MINUTE,
        window,
        &times,
    )));
    Ok(PACES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(url.to_string())
        .or_insert(pace)
        .clone())
}

pub(super) fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

/// DingTalk and WeCom answer 200 with `{"errcode":0,…}` on success.
pub(super) fn robot_ok(r: Result<(u16, String), String>) -> Result<(), String> {
    let (code, body) = r?;
    if !(200..300).contains(&code) {
        return Err(format!("HTTP {code}: {}", truncate(&body)));
    }
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    match v["errcode"].as_i64() {
        Some(0) => Ok(()),
        _ => Err(format!("robot refused: {}", truncate(&body))),
    }
}

/// The signed robot URL: `&timestamp=…&sign=…` appended
/// (`sign` = URL-encoded Base64 of HMAC-SHA256(secret, "{ts}\n{secret}")).
pub fn dingtalk_signed_url(url: &str, secret: &str, timestamp_ms: i64) -> String {
    use base64::Engine as _;
    use hmac::{KeyInit, Mac};
    let to_sign = format!("{timestamp_ms}\n{secret}");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(to_sign.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let enc = percent_encoding::utf8_percent_encode(&sig, percent_encoding::NON_ALPHANUMERIC);
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}timestamp={timestamp_ms}&sign={enc}")
}

fn title(kind: &str, m: &serde_json::Value) -> String {
    match kind {
        "absence" => format!(
            "缺勤提醒 absence: {}",
            m["employee_id"].as_str().unwrap_or("")
        ),
        "arrival" => format!(
            "已到岗 arrived: {}",
            m["employee_id"].as_str().unwrap_or("")
        ),
        "summary" => format!(
            "考勤日报 daily summary {}",
            m["date"].as_str().unwrap_or("")
        ),
        "publication" => format!(
            "考核结果公布 scores published {}",
            m["month"].as_str().unwrap_or("")
        ),
        _ => "终端告警 terminal alert".to_string(),
    }
}

/// The lines of a summary, publication or other single message (no
/// list syntax: WeCom's markdown does not render it).
fn body_lines(kind: &str, m: &serde_json::Value) -> Vec<String> {
    let mut v = Vec::new();
    if kind == "summary" {
        let t = &m["totals"];
        v.push(format!(
            "employees {} · deductions {} · points {}",
            t["employees"], t["deductions"], t["points"]
        ));
        if let Some(by) = t["by_status"].as_object() {
            let parts: Vec<String> = by.iter().map(|(k, n)| format!("{k} {n}")).collect();
            v.push(parts.join(" · "));
        }
        if m["revision"].as_u64().unwrap_or(0) > 0 {
            v.push(format!("修订 revision {}", m["revision"]));
        }
    } else {
        v.push(m["text"].as_str().unwrap_or("").to_string());
    }
    v
}
