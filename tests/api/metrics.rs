//! `/metrics/prometheus` on the admin port: after one authorization-code flow, every metric
//! the Grafana dashboard (deploy/grafana/portcullis.json) queries is served, every metric the
//! server serves is documented in docs/operations.md, and the counters count what happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::config_docs::repo_path;
use super::flow::*;
use super::harness::json;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const DASHBOARD: &str = "deploy/grafana/portcullis.json";
const OPERATIONS: &str = "docs/operations.md";

/// Every `expr` in the dashboard, panels nested in rows included.
fn expressions(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => expressions(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| expressions(x, out)),
        _ => {}
    }
}

/// The metric names a PromQL expression selects: identifiers that are not functions,
/// keywords, label names or inside strings, label matchers or ranges.
fn metric_names(expr: &str) -> BTreeSet<String> {
    // Drop strings, then {label matchers}, [ranges] and `by (...)`-style label lists.
    let mut s = String::new();
    let mut in_string = false;
    for c in expr.chars() {
        if c == '"' {
            in_string = !in_string;
        } else if !in_string {
            s.push(c);
        }
    }
    let mut plain = String::new();
    let mut depth_curly = 0;
    let mut depth_square = 0;
    for c in s.chars() {
        match c {
            '{' => depth_curly += 1,
            '}' => depth_curly -= 1,
            '[' => depth_square += 1,
            ']' => depth_square -= 1,
            _ if depth_curly == 0 && depth_square == 0 => plain.push(c),
            _ => {}
        }
    }
    for kw in [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ] {
        while let Some(at) = find_word(&plain, kw) {
            let rest = plain[at + kw.len()..].trim_start();
            let Some(list) = rest.strip_prefix('(') else {
                break;
            };
            let close = list.find(')').unwrap();
            let tail = list[close + 1..].to_string();
            plain = format!("{} {}", &plain[..at], tail);
        }
    }
    let keywords = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "group_left",
        "group_right",
    ];
    let mut names = BTreeSet::new();
    let chars: Vec<char> = plain.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            let preceded_by_digit = start > 0 && chars[start - 1].is_ascii_digit();
            if next != Some(&'(') && !keywords.contains(&word.as_str()) && !preceded_by_digit {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

fn find_word(s: &str, word: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(p) = s[from..].find(word) {
        let at = from + p;
        let before_ok =
            at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let end = at + word.len();
        let after_ok =
            end >= bytes.len() || !(bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_');
        if before_ok && after_ok {
            return Some(at);
        }
        from = end;
    }
    None
}

#[test]
fn promql_names_are_found() {
    assert_eq!(
        metric_names("histogram_quantile(0.99, sum by (le, endpoint) (rate(hydra_response_time_seconds_bucket{instance=~\"$instance\"}[$__rate_interval])))"),
        BTreeSet::from(["hydra_response_time_seconds_bucket".to_string()])
    );
    assert_eq!(
        metric_names("sum(a_total{x=\"by (y)\"}) / on (instance) group_left b + 2e3"),
        BTreeSet::from(["a_total".to_string(), "b".to_string()])
    );
}

/// Sample names (`name` or `name{...}` at the start of a line) and metric families
/// (`# TYPE name ...`) of a text exposition.
fn exposition(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut samples = BTreeSet::new();
    let mut families = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            families.insert(rest.split(' ').next().unwrap().to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap();
            samples.insert(line[..end].to_string());
        }
    }
    (samples, families)
}

/// The dashboard: valid JSON whose every query names served metrics only, and it charts
/// everything issue 9 asks for.
fn check_dashboard(samples: &BTreeSet<String>, text: &str) {
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_path(DASHBOARD)).unwrap()).unwrap();
    let mut exprs = Vec::new();
    expressions(&dashboard, &mut exprs);
    assert!(exprs.len() >= 10, "{exprs:?}");
    let mut used = BTreeSet::new();
    for e in &exprs {
        let names = metric_names(e);
        assert!(!names.is_empty(), "no metric in {e}");
        used.extend(names);
    }
    let missing: Vec<_> = used.difference(samples).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics the server does not serve: {missing:?}\n{text}"
    );
    // It charts everything issue 9 asks for.
    for family in [
        "portcullis_tokens_issued_total",
        "portcullis_authorization_flows_total",
        "portcullis_introspections_total",
        "portcullis_backchannel_logouts_total",
        "portcullis_db_pool_connections",
        "portcullis_db_pool_acquire_timeouts_total",
        "portcullis_janitor_deleted_rows_total",
    ] {
        assert!(
            used.contains(family),
            "the dashboard does not chart {family}"
        );
    }
}

/// The counters counted the flow of the dashboard test; the pool gauges are consistent.
fn check_counters(samples: &BTreeSet<String>, text: &str) {
    let has = |line: &str| {
        assert!(
            text.lines().any(|l| l == line),
            "no line `{line}` in:\n{text}"
        );
    };
    has("portcullis_tokens_issued_total{grant_type=\"authorization_code\"} 1");
    has("portcullis_tokens_issued_total{grant_type=\"refresh_token\"} 1");
    has("portcullis_tokens_issued_total{grant_type=\"client_credentials\"} 1");
    has("portcullis_tokens_issued_total{grant_type=\"implicit\"} 0");
    has("portcullis_authorization_flows_total{outcome=\"login_requested\"} 1");
    has("portcullis_authorization_flows_total{outcome=\"consent_requested\"} 1");
    has("portcullis_authorization_flows_total{outcome=\"completed\"} 1");
    has("portcullis_authorization_flows_total{outcome=\"rejected\"} 0");
    has("portcullis_authorization_flows_total{outcome=\"failed\"} 0");
    has("portcullis_introspections_total{result=\"active\"} 1");
    has("portcullis_introspections_total{result=\"inactive\"} 1");
    has("portcullis_backchannel_logouts_total{result=\"delivered\"} 0");
    // Process-wide (every test server in this binary shares it): present, whatever its value.
    assert!(samples.contains("portcullis_db_pool_acquire_timeouts_total"));
    has("portcullis_janitor_deleted_rows_total{kind=\"access_token\"} 0");
    let gauge = |name: &str| -> i64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let max = gauge("portcullis_db_pool_max_connections ");
    let in_use = gauge("portcullis_db_pool_connections{state=\"in_use\"}");
    let idle = gauge("portcullis_db_pool_connections{state=\"idle\"}");
    assert!(
        max >= 1 && in_use >= 0 && idle >= 0 && in_use + idle <= max,
        "{in_use} {idle} {max}"
    );
}

#[tokio::test]
async fn the_dashboard_queries_only_served_metrics_and_every_metric_is_documented() {
    let (app, c) = app_and_client().await;
    // One complete flow: authorization (login, consent, code), code exchange, a refresh,
    // an introspection and a client_credentials token.
    let tokens = tokens(&app, &c, &["openid", "offline"]).await;
    let res = refresh(&app, &c, &s(&tokens, "refresh_token")).await;
    assert_eq!(res.status(), 200);
    let access = s(&json(res).await, "access_token");
    assert_active(&app, &access, true).await;
    assert_active(&app, "not-a-token", false).await;
    let res = grant(&app, &c, "client_credentials", &[("scope", "read")]).await;
    assert_eq!(res.status(), 200);

    let res = app.get(app.admin("/metrics/prometheus")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain; version=0.0.4");
    let text = res.text().await.unwrap();
    let (samples, families) = exposition(&text);

    check_dashboard(&samples, &text);
    // Every served metric family is documented, by name, in docs/operations.md.
    let doc = std::fs::read_to_string(repo_path(OPERATIONS)).unwrap();
    for f in &families {
        assert!(
            doc.contains(&format!("`{f}`")),
            "{f} is not documented in {OPERATIONS}"
        );
    }

    check_counters(&samples, &text);
    app.stop().await;
}

#[tokio::test]
async fn a_rejected_consent_and_a_bad_request_are_counted_apart() {
    let (app, c) = app_and_client().await;
    let consent = consent_for(&app, &c.id, json!({"subject": "bob"})).await;
    let res = reject(
        &app,
        "consent",
        &consent,
        json!({"error": "access_denied", "error_description": "no"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let to = redirect_to(res).await;
    let res = browse(&app, &to).await;
    assert_eq!(
        param(&location(&res), "error").as_deref(),
        Some("access_denied")
    );
    // An unknown client goes to the error page.
    let res = authorize(&app, "no-such-client", &[]).await;
    assert_eq!(res.status(), 302);
    let text = app.metrics_text().await;
    for line in [
        "portcullis_authorization_flows_total{outcome=\"login_requested\"} 1",
        "portcullis_authorization_flows_total{outcome=\"consent_requested\"} 1",
        "portcullis_authorization_flows_total{outcome=\"rejected\"} 1",
        "portcullis_authorization_flows_total{outcome=\"failed\"} 1",
        "portcullis_authorization_flows_total{outcome=\"completed\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line `{line}` in:\n{text}"
        );
    }
    app.stop().await;
}
