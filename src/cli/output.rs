//! Output shaping for the remote commands: JSON printed the way Hydra v1.9.2's Go CLI prints
//! its go-swagger models, and the bordered table `clients list` draws.
//!
//! Hydra decodes each response into a generated model (internal/httpclient/models) and
//! re-encodes it with `json.MarshalIndent(v, "", "\t")`: unknown members vanish, members are
//! in the model's (alphabetical) order, `omitempty` members disappear when empty, required
//! members print `null` when missing, date-times carry milliseconds, and `<`, `>`, `&` are
//! escaped. `shape` and `go_json` reproduce that so scripts parsing the output keep working.
use serde_json::{Map, Value};

/// How a model member is encoded by Go.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    /// `omitempty`: dropped when "", 0, false, null, [] or {}.
    OmitEmpty,
    /// No `omitempty`: always printed, `null` when absent.
    Always,
    /// An `interface{}` with `omitempty`: dropped only when absent or null.
    Any,
    /// `strfmt.DateTime`: always printed, RFC 3339 with milliseconds.
    DateTime,
}

use Kind::{Always, Any, DateTime, OmitEmpty};

/// models.OAuth2Client.
pub(crate) const CLIENT: &[(&str, Kind)] = &[
    ("allowed_cors_origins", OmitEmpty),
    ("audience", OmitEmpty),
    ("backchannel_logout_session_required", OmitEmpty),
    ("backchannel_logout_uri", OmitEmpty),
    ("client_id", OmitEmpty),
    ("client_name", OmitEmpty),
    ("client_secret", OmitEmpty),
    ("client_secret_expires_at", OmitEmpty),
    ("client_uri", OmitEmpty),
    ("contacts", OmitEmpty),
    ("created_at", DateTime),
    ("frontchannel_logout_session_required", OmitEmpty),
    ("frontchannel_logout_uri", OmitEmpty),
    ("grant_types", OmitEmpty),
    ("jwks", Any),
    ("jwks_uri", OmitEmpty),
    ("logo_uri", OmitEmpty),
    ("metadata", Any),
    ("owner", OmitEmpty),
    ("policy_uri", OmitEmpty),
    ("post_logout_redirect_uris", OmitEmpty),
    ("redirect_uris", OmitEmpty),
    ("request_object_signing_alg", OmitEmpty),
    ("request_uris", OmitEmpty),
    ("response_types", OmitEmpty),
    ("scope", OmitEmpty),
    ("sector_identifier_uri", OmitEmpty),
    ("subject_type", OmitEmpty),
    ("token_endpoint_auth_method", OmitEmpty),
    ("token_endpoint_auth_signing_alg", OmitEmpty),
    ("tos_uri", OmitEmpty),
    ("updated_at", DateTime),
    ("userinfo_signed_response_alg", OmitEmpty),
];

/// models.OAuth2TokenIntrospection.
pub(crate) const INTROSPECTION: &[(&str, Kind)] = &[
    ("active", Always),
    ("aud", Always),
    ("client_id", OmitEmpty),
    ("exp", OmitEmpty),
    ("ext", OmitEmpty),
    ("iat", OmitEmpty),
    ("iss", OmitEmpty),
    ("nbf", OmitEmpty),
    ("obfuscated_subject", OmitEmpty),
    ("scope", OmitEmpty),
    ("sub", OmitEmpty),
    ("token_type", OmitEmpty),
    ("token_use", OmitEmpty),
    ("username", OmitEmpty),
];

/// models.JSONWebKey.
const JWK: &[(&str, Kind)] = &[
    ("alg", Always),
    ("crv", OmitEmpty),
    ("d", OmitEmpty),
    ("dp", OmitEmpty),
    ("dq", OmitEmpty),
    ("e", OmitEmpty),
    ("k", OmitEmpty),
    ("kid", Always),
    ("kty", Always),
    ("n", OmitEmpty),
    ("p", OmitEmpty),
    ("q", OmitEmpty),
    ("qi", OmitEmpty),
    ("use", Always),
    ("x", OmitEmpty),
    ("x5c", Always),
    ("y", OmitEmpty),
];

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Go's map encoding sorts keys; rebuild nested objects in sorted order.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let mut m = Map::new();
            for k in keys {
                if let Some(x) = o.get(k) {
                    m.insert(k.clone(), sorted(x));
                }
            }
            Value::Object(m)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// strfmt.DateTime marshals as `2006-01-02T15:04:05.000Z07:00`; Go's zero time when absent.
fn go_datetime(v: Option<&Value>) -> Value {
    let parsed = v.and_then(Value::as_str).and_then(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
    });
    let text = match parsed {
        Some(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            )
        }
        None => "0001-01-01T00:00:00.000Z".to_string(),
    };
    Value::String(text)
}

/// Re-encodes `v` as the Go model described by `model` would.
pub(crate) fn shape(v: &Value, model: &[(&str, Kind)]) -> Value {
    let obj = v.as_object();
    let mut m = Map::new();
    for (name, kind) in model {
        let val = obj.and_then(|o| o.get(*name));
        let keep = match kind {
            OmitEmpty => val.filter(|x| !is_empty(x)).map(sorted),
            Always => Some(val.map(sorted).unwrap_or(Value::Null)),
            Any => val.filter(|x| !x.is_null()).map(sorted),
            DateTime => Some(go_datetime(val)),
        };
        if let Some(x) = keep {
            m.insert((*name).to_string(), x);
        }
    }
    Value::Object(m)
}

/// models.JSONWebKeySet: `{"keys": [...]}` with each key shaped.
pub(crate) fn shape_key_set(v: &Value) -> Value {
    let keys = match v.get("keys") {
        Some(Value::Array(a)) => Value::Array(a.iter().map(|k| shape(k, JWK)).collect()),
        _ => Value::Null,
    };
    let mut m = Map::new();
    m.insert("keys".into(), keys);
    Value::Object(m)
}

/// `json.MarshalIndent(v, "", "\t")` with Go's HTML-safe escaping.
pub(crate) fn go_json(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if serde::Serialize::serialize(v, &mut ser).is_err() {
        return v.to_string();
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    // These characters only ever occur inside JSON strings, so a textual swap is safe.
    text.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// The table layout of olekukonko/tablewriter as Hydra configures it (cmd/cli/handler_helper.go
/// newTable: left/right borders, no top/bottom, `|` as centre separator): headers upper-cased
/// and centred, cells wrapped to 30 columns by minimum raggedness, numbers right-aligned.
pub(crate) struct Table {
    headers: Vec<Vec<String>>,
    rows: Vec<Vec<Vec<String>>>,
    widths: Vec<usize>,
}

const MAX_CELL_WIDTH: usize = 30;
const LONG_LINE_PENALTY: i64 = 100_000;

fn width(s: &str) -> usize {
    s.chars().count()
}

impl Table {
    pub(crate) fn new(headers: &[&str]) -> Table {
        let mut t = Table {
            headers: Vec::new(),
            rows: Vec::new(),
            widths: vec![0; headers.len()],
        };
        for (i, h) in headers.iter().enumerate() {
            let lines = t.cell(h, i);
            t.headers.push(lines);
        }
        t
    }

    pub(crate) fn row(&mut self, cells: &[String]) {
        let mut row = Vec::new();
        for (i, c) in cells.iter().enumerate() {
            row.push(self.cell(c, i));
        }
        self.rows.push(row);
    }

    /// Splits, reflows and wraps one cell, widening its column as needed.
    fn cell(&mut self, s: &str, col: usize) -> Vec<String> {
        let raw: Vec<&str> = s.split('\n').collect();
        let mut max = raw.iter().map(|l| width(l)).max().unwrap_or(0);
        if max > MAX_CELL_WIDTH {
            max = MAX_CELL_WIDTH;
        }
        let lines = wrap_string(&raw.join(" "), max);
        let widest = lines.iter().map(|l| width(l)).fold(max, usize::max);
        if col >= self.widths.len() {
            self.widths.resize(col + 1, 0);
        }
        if self.widths[col] < widest {
            self.widths[col] = widest;
        }
        lines
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let height = self.headers.iter().map(Vec::len).max().unwrap_or(0);
        for x in 0..height {
            out.push('|');
            for (y, w) in self.widths.iter().enumerate() {
                let h = self
                    .headers
                    .get(y)
                    .and_then(|l| l.get(x))
                    .map(|s| title(s))
                    .unwrap_or_default();
                out.push(' ');
                out.push_str(&pad_center(&h, *w));
                out.push_str(" |");
            }
            out.push('\n');
        }
        out.push('|');
        for w in &self.widths {
            out.push_str(&"-".repeat(w + 2));
            out.push('|');
        }
        out.push('\n');
        for row in &self.rows {
            let height = row.iter().map(Vec::len).max().unwrap_or(0);
            for x in 0..height {
                for (y, cell) in row.iter().enumerate() {
                    let w = self.widths.get(y).copied().unwrap_or(0);
                    // Short cells are filled with two-space lines (tablewriter's printRow).
                    let s = cell.get(x).map(String::as_str).unwrap_or("  ");
                    out.push_str("| ");
                    if is_decimal(s.trim()) {
                        out.push_str(&" ".repeat(w.saturating_sub(width(s))));
                        out.push_str(s);
                    } else {
                        out.push_str(s);
                        out.push_str(&" ".repeat(w.saturating_sub(width(s))));
                    }
                    out.push(' ');
                }
                out.push_str("|\n");
            }
        }
        out
    }
}

/// tablewriter's Title: `_` (and word-joining `.`) become spaces, trimmed, upper-cased.
fn title(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let num_or_space = |c: char| c.is_ascii_digit() || c == ' ';
    let mapped: String = chars
        .iter()
        .enumerate()
        .map(|(i, &c)| match c {
            '_' => ' ',
            '.' if (i != 0 && !num_or_space(chars[i - 1]))
                || (i + 1 != chars.len() && !num_or_space(chars[i + 1])) =>
            {
                ' '
            }
            other => other,
        })
        .collect();
    let trimmed = mapped.trim();
    if trimmed.is_empty() && !s.is_empty() {
        return " ".into();
    }
    trimmed.to_uppercase()
}

fn pad_center(s: &str, w: usize) -> String {
    let gap = w.saturating_sub(width(s));
    let left = gap / 2;
    format!("{}{s}{}", " ".repeat(left), " ".repeat(gap - left))
}

/// tablewriter's `^-?(?:\d{1,3}(?:,\d{3})*|\d+)(\.\d+)?$`.
fn is_decimal(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    if let Some(f) = frac {
        if !digits(f) {
            return false;
        }
    }
    if digits(int) {
        return true;
    }
    let mut groups = int.split(',');
    let first_ok = groups.next().is_some_and(|g| digits(g) && g.len() <= 3);
    first_ok && int.contains(',') && groups.all(|g| digits(g) && g.len() == 3)
}

fn wrap_string(s: &str, limit: usize) -> Vec<String> {
    let words: Vec<&str> = s.split(' ').collect();
    let mut limit = limit;
    for w in &words {
        limit = limit.max(width(w));
    }
    wrap_words(&words, limit)
        .into_iter()
        .map(|line| line.join(" "))
        .collect()
}

/// Minimum-raggedness line breaking with one space between words (tablewriter's WrapWords).
fn wrap_words<'a>(words: &[&'a str], limit: usize) -> Vec<Vec<&'a str>> {
    let n = words.len();
    let limit = limit as i64;
    // length(i, j): width of words i..=j joined by single spaces.
    let mut prefix = vec![0i64; n + 1];
    for (i, w) in words.iter().enumerate() {
        prefix[i + 1] = prefix[i] + width(w) as i64;
    }
    let length = |i: usize, j: usize| prefix[j + 1] - prefix[i] + (j - i) as i64;
    let mut next_break = vec![n; n];
    let mut cost = vec![i64::from(i32::MAX); n];
    for i in (0..n).rev() {
        if length(i, n - 1) <= limit {
            cost[i] = 0;
            next_break[i] = n;
        } else {
            for j in i + 1..n {
                let d = limit - length(i, j - 1);
                let mut c = d * d + cost[j];
                if length(i, j - 1) > limit {
                    c += LONG_LINE_PENALTY;
                }
                if c < cost[i] {
                    cost[i] = c;
                    next_break[i] = j;
                }
            }
        }
    }
    let mut lines = Vec::new();
    let mut i = 0;
    while i < n {
        let j = next_break[i].max(i + 1);
        lines.push(words[i..j].to_vec());
        i = j;
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_style_json() {
        let v = shape(
            &json!({"client_id": "a<b", "scope": "", "grant_types": [], "metadata": {}, "unknown": 1,
                    "created_at": "2021-01-02T03:04:05Z"}),
            CLIENT,
        );
        assert_eq!(
            go_json(&v),
            "{\n\t\"client_id\": \"a\\u003cb\",\n\t\"created_at\": \"2021-01-02T03:04:05.000Z\",\n\t\"metadata\": {},\n\t\"updated_at\": \"0001-01-01T00:00:00.000Z\"\n}"
        );
    }

    #[test]
    fn table_layout() {
        let mut t = Table::new(&["Client ID", "Redirect Uris"]);
        t.row(&["c1".into(), "http://a/cb\nhttp://b/cb".into()]);
        t.row(&["42".into(), String::new()]);
        assert_eq!(
            t.render(),
            "| CLIENT ID | REDIRECT URIS |\n|-----------|---------------|\n| c1        | http://a/cb   |\n|           | http://b/cb   |\n|        42 |               |\n"
        );
    }

    #[test]
    fn wraps_long_cells() {
        let words = ["aaaa", "bbbb", "cccc"];
        assert_eq!(
            wrap_words(&words, 9),
            vec![vec!["aaaa", "bbbb"], vec!["cccc"]]
        );
        assert!(
            is_decimal("1,234.5") && is_decimal("-12") && !is_decimal("1,23") && !is_decimal("")
        );
    }
}
