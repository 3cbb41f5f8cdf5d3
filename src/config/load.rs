//! Reading and checking the config file.

use super::*;

/// The embedded broker's keys: who may log in, and its limits.
fn check_embedded(key: &str, m: &RawMqtt, push: &mut impl FnMut(&str, String)) {
    if m.broker != "embedded" {
        let set = [
            ("allow_anonymous", m.allow_anonymous),
            ("terminals", !m.terminals.is_empty()),
            ("readers", !m.readers.is_empty()),
            ("max_connections", m.max_connections.is_some()),
            ("max_packet_bytes", m.max_packet_bytes.is_some()),
            ("max_pending_bytes", m.max_pending_bytes.is_some()),
        ];
        for (k, _) in set.iter().filter(|(_, on)| *on) {
            push(
                &format!("{key}.{k}"),
                "only used with broker = \"embedded\"".into(),
            );
        }
        return;
    }
    for k in [
        ("username", m.username.is_some()),
        ("password", m.password.is_some()),
        ("password_env", m.password_env.is_some()),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(k, _)| k)
    {
        push(
            &format!("{key}.{k}"),
            "not used with broker = \"embedded\": terminals log in with [[source.mqtt.terminals]] username and password_env".into(),
        );
    }
    let listen = m.listen.as_deref().unwrap_or("127.0.0.1:1883");
    if m.allow_anonymous
        && let Ok(addr) = listen.parse::<SocketAddr>()
        && !addr.ip().is_loopback()
    {
        push(
            &format!("{key}.allow_anonymous"),
            format!(
                "true only on a loopback listen; listen = {listen:?} is reachable from other hosts, so give each terminal a user in [[source.mqtt.terminals]]"
            ),
        );
    }
    if !m.allow_anonymous && m.terminals.is_empty() {
        push(
            &format!("{key}.terminals"),
            "no terminal may log in: add [[source.mqtt.terminals]] (username, password_env), or allow_anonymous = true on a loopback listen".into(),
        );
    }
    let mut names = std::collections::HashSet::new();
    for (j, u) in m.terminals.iter().enumerate() {
        u.check(&format!("{key}.terminals[{j}]"), &mut names, push);
    }
    for (j, u) in m.readers.iter().enumerate() {
        u.check(&format!("{key}.readers[{j}]"), &mut names, push);
        if !u.topics.is_empty() {
            push(
                &format!("{key}.readers[{j}].topics"),
                "readers publish nothing: topics is for terminals".into(),
            );
        }
    }
    for (j, u) in m.terminals.iter().enumerate() {
        for (t, f) in u.topics.iter().enumerate() {
            if f.is_empty() || f.starts_with("$share/") || f.contains('\0') {
                push(
                    &format!("{key}.terminals[{j}].topics[{t}]"),
                    format!("{f:?} is not an MQTT topic filter"),
                );
            }
        }
    }
    if m.max_connections == Some(0) {
        push(&format!("{key}.max_connections"), "must be positive".into());
    }
    let packet = m.max_packet_bytes.unwrap_or(4 * 1024 * 1024);
    if !(1024..=256 * 1024 * 1024).contains(&packet) {
        push(
            &format!("{key}.max_packet_bytes"),
            format!("{packet} is not between 1024 and 268435456"),
        );
    }
    if let Some(p) = m.max_pending_bytes
        && p < packet
    {
        push(
            &format!("{key}.max_pending_bytes"),
            format!("{p} is less than max_packet_bytes ({packet})"),
        );
    }
}

fn check_schedule(s: &RawSchedule, push: &mut impl FnMut(&str, String)) {
    for (key, v) in [
        ("schedule.alert_after_minutes", s.alert_after_minutes),
        ("schedule.close_delay_minutes", s.close_delay_minutes),
        ("schedule.revision_days", s.revision_days),
        (
            "schedule.terminal_silent_minutes",
            s.terminal_silent_minutes,
        ),
        ("schedule.quarantine_spike", s.quarantine_spike),
    ] {
        if v < 0 {
            push(key, format!("{v} is negative"));
        }
    }
    if s.tick_seconds == 0 {
        push("schedule.tick_seconds", "must be at least 1".into());
    }
    if s.working_hours().is_none() {
        push(
            "schedule.working_hours",
            format!("{:?} is not HH:MM-HH:MM", s.working_hours),
        );
    }
}

fn check_sink(
    i: usize,
    k: &RawSink,
    sources: &RawSources,
    names: &mut std::collections::HashSet<String>,
    push: &mut impl FnMut(&str, String),
) {
    let key = format!("sink[{i}]");
    if !SINK_KINDS.contains(&k.kind.as_str()) {
        push(
            &format!("{key}.kind"),
            format!(
                "unknown sink {:?} (one of {})",
                k.kind,
                SINK_KINDS.join(", ")
            ),
        );
        return;
    }
    if !names.insert(k.name(i)) {
        push(
            &format!("{key}.name"),
            format!("{:?} is used twice", k.name(i)),
        );
    }
    for e in k.events.iter().flatten() {
        if !EVENT_KINDS.contains(&e.as_str()) {
            push(
                &format!("{key}.events"),
                format!("unknown event {e:?} (one of {})", EVENT_KINDS.join(", ")),
            );
        }
    }
    match &k.keyword {
        Some(w) if !matches!(k.kind.as_str(), "dingtalk" | "wecom") => push(
            &format!("{key}.keyword"),
            format!("{w:?}: only dingtalk and wecom robots take a keyword"),
        ),
        Some(w) if w.trim().is_empty() => {
            push(&format!("{key}.keyword"), "is empty".into());
        }
        _ => {}
    }
    if k.kind == "mqtt" {
        let broker = k.broker.clone().or_else(|| {
            sources.mqtt.first().map(|m| {
                if m.broker == "embedded" {
                    format!("mqtt://{}", m.listen.as_deref().unwrap_or("127.0.0.1:1883"))
                } else {
                    m.broker.clone()
                }
            })
        });
        match broker {
            None => push(
                &format!("{key}.broker"),
                "required: there is no [[source.mqtt]] to default to".into(),
            ),
            Some(b) if !b.starts_with("mqtt://") => push(
                &format!("{key}.broker"),
                format!("{b:?} is not mqtt://HOST:PORT"),
            ),
            Some(_) => {}
        }
        return;
    }
    match k.url() {
        None => push(
            &format!("{key}.url"),
            match &k.url_env {
                Some(v) => format!("environment variable {v} (url_env) is not set"),
                None => "required for this sink (or url_env)".into(),
            },
        ),
        Some(u) if !u.starts_with("http://") && !u.starts_with("https://") => push(
            &format!("{key}.url"),
            format!("{u:?} is not an http:// or https:// URL"),
        ),
        Some(u) if u.starts_with("https://") => {
            if let Err(e) = crate::tls::client_config(k.ca_file.as_deref(), None) {
                push(&format!("{key}.ca_file"), e);
            }
        }
        Some(_) => {}
    }
    if k.secret_env
        .as_ref()
        .is_some_and(|v| std::env::var(v).is_err())
    {
        push(
            &format!("{key}.secret_env"),
            format!(
                "environment variable {} is not set",
                k.secret_env.as_deref().unwrap_or_default()
            ),
        );
    }
}

/// Each `[[policy.group]]`'s id and policy file.
type GroupPaths = Vec<(String, PathBuf)>;

/// Loads each `[[policy.group]]`'s policy (its file relative to the
/// configuration's folder); every problem names the group's id and file.
/// Duplicate and reserved ids are refused by [`crate::policy_file::Policies::new`].
fn load_groups(
    raw: &[RawPolicyGroup],
    base: &Path,
    problems: &mut Vec<String>,
) -> (Vec<(String, Policy)>, GroupPaths) {
    let mut groups = Vec::new();
    let mut paths = Vec::new();
    for (i, g) in raw.iter().enumerate() {
        let path = base.join(&g.file);
        match crate::policy_file::load(&path) {
            Ok(p) => groups.push((g.id.clone(), p)),
            Err(e) => problems.extend(
                e.to_string()
                    .lines()
                    .map(|l| format!("policy group {:?} (policy.group[{i}]): {l}", g.id)),
            ),
        }
        paths.push((g.id.clone(), path));
    }
    (groups, paths)
}

/// Reads and validates a configuration and the policy it names, for the
/// daemon: every secret it names in the environment must be set.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_for(path, Purpose::Daemon)
}

/// Reads and validates a configuration for a command that only reads or
/// writes the store (`punches`, `day`, `quarantine`, `deduct`, …): secrets
/// named by `url_env`, `secret_env`, `password_env`, `path_secret_env` or
/// `token_env` may be unset, since only the daemon sends alerts, serves
/// terminals and answers the API. Everything else is checked as for the
/// daemon.
pub fn load_for_commands(path: &Path) -> Result<Config, ConfigError> {
    load_for(path, Purpose::Commands)
}

/// Who reads the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// `attendd run` and `check-config`: everything must be in place.
    Daemon,
    /// Store commands: secrets in the environment are not needed.
    Commands,
}

/// True for a problem that says a secret's environment variable is unset,
/// which only the daemon cares about.
fn is_unset_secret(key: &str, why: &str) -> bool {
    let secret_key = key.ends_with("_env") || (key.starts_with("sink[") && key.ends_with(".url"));
    secret_key && why.starts_with("environment variable ")
}

/// `[[source.mqtt]]`.
fn check_mqtt_sources(raw: &RawConfig, push: &mut impl FnMut(&str, String)) {
    for (i, m) in raw.source.mqtt.iter().enumerate() {
        let key = format!("source.mqtt[{i}]");
        if m.broker != "embedded"
            && !m.broker.starts_with("mqtt://")
            && !m.broker.starts_with("mqtts://")
        {
            push(
                &format!("{key}.broker"),
                format!(
                    "{:?} is not mqtt://HOST:PORT, mqtts://HOST:PORT or \"embedded\"",
                    m.broker
                ),
            );
        }
        if m.topics.is_empty() {
            push(
                &format!("{key}.topics"),
                "at least one topic is required".into(),
            );
        }
        if !DECODERS.contains(&m.decoder.as_str()) {
            push(
                &format!("{key}.decoder"),
                format!(
                    "unknown decoder {:?} (one of {})",
                    m.decoder,
                    DECODERS.join(", ")
                ),
            );
        }
        if m.broker.starts_with("mqtts://") {
            let client = match (&m.client_cert_file, &m.client_key_file) {
                (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
                (None, None) => None,
                _ => {
                    push(
                        &format!("{key}.client_cert_file"),
                        "client_cert_file and client_key_file go together".into(),
                    );
                    None
                }
            };
            if let Err(e) = crate::tls::client_config(m.ca_file.as_deref(), client) {
                push(&format!("{key}.ca_file"), e);
            }
        } else if m.ca_file.is_some() || m.client_cert_file.is_some() {
            push(
                &format!("{key}.ca_file"),
                "TLS files are only used with broker = \"mqtts://…\"".into(),
            );
        }
        if let Some(tz) = &m.timezone
            && tz.parse::<chrono_tz::Tz>().is_err()
        {
            push(
                &format!("{key}.timezone"),
                format!("{tz:?} is not an IANA time zone"),
            );
        }
        if let Some(var) = &m.password_env
            && std::env::var_os(var).is_none()
        {
            push(
                &format!("{key}.password_env"),
                format!("environment variable {var} is not set"),
            );
        }
        if let Some(l) = &m.listen
            && l.parse::<SocketAddr>().is_err()
        {
            push(
                &format!("{key}.listen"),
                format!("{l:?} is not an address such as 127.0.0.1:1883"),
            );
        }
        check_embedded(&key, m, push);
        if let Err(e) = crate::ingest::decode::Decoder::with_options(
            &m.decoder,
            m.decoder_options.as_ref().unwrap_or(&toml::Table::new()),
        ) && DECODERS.contains(&m.decoder.as_str())
        {
            push(&format!("{key}.decoder_options"), e.to_string());
        }
        if m.batch_max == 0 {
            push(&format!("{key}.batch_max"), "must be positive".into());
        }
        if m.client_id.trim().is_empty() {
            push(
                &format!("{key}.client_id"),
                "must not be empty (the broker keeps the session under it)".into(),
            );
        }
    }
}

/// `[[source.serial]]` and the terminals' sources.
fn check_device_sources(raw: &RawConfig, push: &mut impl FnMut(&str, String)) {
    for (i, s) in raw.source.serial.iter().enumerate() {
        let key = format!("source.serial[{i}]");
        if !DECODERS.contains(&s.decoder.as_str()) {
            push(
                &format!("{key}.decoder"),
                format!(
                    "unknown decoder {:?} (one of {})",
                    s.decoder,
                    DECODERS.join(", ")
                ),
            );
        }
        if s.baud == 0 {
            push(&format!("{key}.baud"), "must be positive".into());
        }
        if !(5..=8).contains(&s.data_bits) {
            push(
                &format!("{key}.data_bits"),
                format!("{} is not 5, 6, 7 or 8", s.data_bits),
            );
        }
        if !["none", "odd", "even"].contains(&s.parity.as_str()) {
            push(
                &format!("{key}.parity"),
                format!("{:?} is not none, odd or even", s.parity),
            );
        }
        if !(1..=2).contains(&s.stop_bits) {
            push(
                &format!("{key}.stop_bits"),
                format!("{} is not 1 or 2", s.stop_bits),
            );
        }
        if !["lines", "stx-etx"].contains(&s.framing.as_str()) {
            push(
                &format!("{key}.framing"),
                format!("{:?} is not lines or stx-etx", s.framing),
            );
        }
        if let Some(tz) = &s.timezone
            && tz.parse::<chrono_tz::Tz>().is_err()
        {
            push(
                &format!("{key}.timezone"),
                format!("{tz:?} is not an IANA time zone"),
            );
        }
    }
    for (i, z) in raw.source.zk_push.iter().enumerate() {
        z.check(&format!("source.zk_push[{i}]"), push);
    }
    for (i, h) in raw.source.hik_http.iter().enumerate() {
        h.check(&format!("source.hik_http[{i}]"), push);
    }
    for (i, z) in raw.source.zk_pull.iter().enumerate() {
        z.check(&format!("source.zk_pull[{i}]"), push);
    }
    for (i, h) in raw.source.hik_pull.iter().enumerate() {
        h.check(&format!("source.hik_pull[{i}]"), push);
    }
    for (i, d) in raw.source.dahua_pull.iter().enumerate() {
        d.check(&format!("source.dahua_pull[{i}]"), push);
    }
}

/// The bounds of `[store]`'s numbers.
fn check_store(store: &RawStore, push: &mut impl FnMut(&str, String)) {
    if !(1..=4096).contains(&store.sqlite_cache_mib) {
        push(
            "store.sqlite_cache_mib",
            format!(
                "{} is not between 1 and 4096 (MiB of page cache per SQLite connection)",
                store.sqlite_cache_mib
            ),
        );
    }
    if store.quarantine_retention_days == 0 {
        push(
            "store.quarantine_retention_days",
            "must be at least 1 (days an undecodable payload is kept)".into(),
        );
    }
}

/// The bounds of `[http]`'s numbers.
fn check_http(http: Option<&RawHttp>, push: &mut impl FnMut(&str, String)) {
    if http.is_some_and(|h| h.max_connections == 0) {
        push("http.max_connections", "must be positive".into());
    }
    if let Some(h) = http.filter(|h| h.page_cache_mib > 1024) {
        push(
            "http.page_cache_mib",
            format!(
                "{} is not between 0 and 1024 (MiB of daily-table pages kept)",
                h.page_cache_mib
            ),
        );
    }
}

fn load_for(path: &Path, purpose: Purpose) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let one = |m: String| ConfigError { problems: vec![m] };
    let text =
        std::fs::read_to_string(path).map_err(|e| one(format!("{file}: cannot read: {e}")))?;
    let mut raw: RawConfig = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        one(match line {
            Some(l) => format!("{file}:{l}: {}", e.message().trim()),
            None => format!("{file}: {}", e.message().trim()),
        })
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut problems = Vec::new();

    let policy_path = base.join(&raw.policy.file);
    for k in &mut raw.sink {
        if let Some(p) = &mut k.ca_file {
            *p = base.join(&*p);
        }
    }
    for m in &mut raw.source.mqtt {
        for p in [
            &mut m.ca_file,
            &mut m.client_cert_file,
            &mut m.client_key_file,
        ]
        .into_iter()
        .flatten()
        {
            *p = base.join(&*p);
        }
    }
    let policy = crate::policy_file::load(&policy_path);
    let (groups, group_paths) = load_groups(&raw.policy.group, base, &mut problems);
    let mut push = |key: &str, why: String| {
        if purpose == Purpose::Commands && is_unset_secret(key, &why) {
            return;
        }
        problems.push(format!("{file}: key `{key}`: {why}"))
    };
    if let Some(d) = raw.ingest.classify_from {
        let lo = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
        let hi = NaiveDate::from_ymd_opt(2100, 12, 31).unwrap_or_default();
        if d < lo || d > hi {
            push(
                "ingest.classify_from",
                format!("{d} lies outside 2000-01-01..2100-12-31"),
            );
        }
    }

    let url = std::env::var("ATTENDD_STORE_URL").unwrap_or(raw.store.url.clone());
    let store_url = if let Some(p) = url.strip_prefix("sqlite://") {
        let (p, q) = p.split_once('?').map_or((p, None), |(a, b)| (a, Some(b)));
        let abs = if Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            base.join(p)
        };
        match q {
            Some(q) => format!("sqlite://{}?{q}", abs.display()),
            None => format!("sqlite://{}", abs.display()),
        }
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        url
    } else {
        push(
            "store.url",
            format!("{url:?} is neither sqlite://PATH nor postgres://…"),
        );
        url
    };
    check_store(&raw.store, &mut push);
    check_mqtt_sources(&raw, &mut push);
    check_device_sources(&raw, &mut push);
    let http_listen = match &raw.http {
        Some(h) => match h.listen.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                push(
                    "http.listen",
                    format!("{:?} is not an address such as 127.0.0.1:8080", h.listen),
                );
                None
            }
        },
        None => None,
    };
    check_http(raw.http.as_ref(), &mut push);
    check_schedule(&raw.schedule, &mut push);
    let mut names = std::collections::HashSet::new();
    for (i, k) in raw.sink.iter().enumerate() {
        check_sink(i, k, &raw.source, &mut names, &mut push);
    }
    let mut http_tokens = Vec::new();
    for (i, t) in raw.http.iter().flat_map(|h| h.tokens.iter()).enumerate() {
        let key = format!("http.tokens[{i}]");
        match token::ApiToken::resolve(t, |v| std::env::var(v).ok()) {
            Ok(tok) => http_tokens.push(tok),
            Err((field, why)) => push(&format!("{key}.{field}"), why),
        }
    }
    let policy = match policy {
        Ok(p) => Some(p),
        Err(e) => {
            problems.extend(e.to_string().lines().map(String::from));
            None
        }
    };
    let policies = policy.as_ref().map(|p| {
        crate::policy_file::Policies::new(p.clone(), groups)
            .map_err(|e| problems.push(format!("{file}: key `policy.group`: {e}")))
    });
    match (policy, policies) {
        (Some(policy), Some(Ok(policies))) if problems.is_empty() => Ok(Config {
            path: path.to_path_buf(),
            policy_path,
            policy,
            policies,
            group_paths,
            store_url,
            quarantine_retention_days: raw.store.quarantine_retention_days,
            sqlite_cache_mib: raw.store.sqlite_cache_mib,
            sources: raw.source,
            http_listen,
            http_tokens,
            http_max_connections: raw
                .http
                .as_ref()
                .map_or(DEFAULT_MAX_CONNECTIONS, |h| h.max_connections),
            http_page_cache_mib: raw
                .http
                .as_ref()
                .map_or(DEFAULT_PAGE_CACHE_MIB, |h| h.page_cache_mib),
            ingest: raw.ingest,
            schedule: raw.schedule,
            sinks: raw.sink,
        }),
        _ => Err(ConfigError { problems }),
    }
}
