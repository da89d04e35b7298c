//! Time rules for JWTs a client presents to us (RFC 7523 §3: client assertions, and later the
//! JWT-bearer grant): `exp`, `nbf` and `iat` checked against the injected clock with one small,
//! explicit skew, and how long a spent `jti` must be remembered so that a replay can never
//! outlive its record.
//!
//! fosite (client_authentication.go, through jwt-go's `StandardClaims.Valid`) accepts a token
//! while `now <= exp` and remembers the `jti` until `exp`. We allow the same window widened by
//! [`CLOCK_SKEW_SECS`] for clients whose clocks run a little behind ours, and therefore remember
//! the `jti` until at least `exp + CLOCK_SKEW_SECS`: the acceptance window and the replay record
//! always end together, whatever leeway is chosen.
use serde_json::Value;

/// Tolerated clock difference between the client and us, applied to `exp`, `nbf` and `iat`.
/// Small on purpose: every second of it is a second an expired assertion still verifies.
pub const CLOCK_SKEW_SECS: i64 = 5;

/// Upper bound on `exp - now`. An assertion is meant to be minted for one request (RFC 7523 §3
/// asks the server to bound the lifetime it accepts); one hour leaves room for slow clients
/// while keeping the replay table small. A longer-lived assertion is refused, never trimmed.
pub const MAX_LIFETIME_SECS: i64 = 3600;

/// Extra time a spent `jti` is kept beyond the acceptance window, so that a replica whose
/// clock runs behind the one that purges the table still finds the record.
pub const JTI_RETENTION_MARGIN_SECS: i64 = 60;

/// Why the time claims are refused; the message is the OAuth error hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeClaimError {
    #[error("Claim 'exp' is missing.")]
    MissingExp,
    #[error("Claim '{0}' is not a valid NumericDate (a number of seconds that fits in 64 bits).")]
    Malformed(&'static str),
    #[error("The token has expired (claim 'exp').")]
    Expired,
    #[error("Claim 'exp' lies more than {MAX_LIFETIME_SECS} seconds in the future.")]
    TooLongLived,
    #[error("The token is not valid yet (claim 'nbf' lies in the future).")]
    NotYetValid,
    #[error("The token was issued in the future (claim 'iat').")]
    IssuedInFuture,
}

/// A NumericDate (RFC 7519 §2): whole seconds, or a fraction rounded up (a later `exp` or
/// `nbf` is the cautious reading). Values outside i64 are refused instead of wrapping to 0.
fn numeric_date(v: &Value, name: &'static str) -> Result<i64, TimeClaimError> {
    if let Some(i) = v.as_i64() {
        return Ok(i);
    }
    // u64 above i64::MAX, strings, booleans, ...: refused.
    let f = match v {
        Value::Number(n) if !n.is_u64() => n.as_f64(),
        _ => None,
    }
    .ok_or(TimeClaimError::Malformed(name))?;
    // ±2^53 is far beyond any real date and exactly representable, so the cast is exact.
    const LIMIT: f64 = 9_007_199_254_740_992.0;
    if !f.is_finite() || f.abs() >= LIMIT {
        return Err(TimeClaimError::Malformed(name));
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok(f.ceil() as i64)
}

/// Checks `exp` (required), `nbf` and `iat` (optional) of `claims` at `now` (Unix seconds) and
/// returns the time until which the token's `jti` must be remembered as spent.
pub fn check_time_claims(claims: &Value, now: i64) -> Result<i64, TimeClaimError> {
    let exp = numeric_date(claims.get("exp").ok_or(TimeClaimError::MissingExp)?, "exp")?;
    if now > exp.saturating_add(CLOCK_SKEW_SECS) {
        return Err(TimeClaimError::Expired);
    }
    if exp.saturating_sub(now) > MAX_LIFETIME_SECS {
        return Err(TimeClaimError::TooLongLived);
    }
    let latest_start = now.saturating_add(CLOCK_SKEW_SECS);
    if let Some(nbf) = claims.get("nbf") {
        if numeric_date(nbf, "nbf")? > latest_start {
            return Err(TimeClaimError::NotYetValid);
        }
    }
    if let Some(iat) = claims.get("iat") {
        if numeric_date(iat, "iat")? > latest_start {
            return Err(TimeClaimError::IssuedInFuture);
        }
    }
    // exp is at most now + MAX_LIFETIME_SECS here, so this cannot overflow.
    Ok(exp
        .saturating_add(CLOCK_SKEW_SECS)
        .saturating_add(JTI_RETENTION_MARGIN_SECS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn table() {
        let cases: Vec<(Value, Result<i64, TimeClaimError>)> = vec![
            (
                json!({"exp": NOW + 3}),
                Ok(NOW + 3 + CLOCK_SKEW_SECS + JTI_RETENTION_MARGIN_SECS),
            ),
            (
                json!({"exp": NOW - CLOCK_SKEW_SECS}),
                Ok(NOW + JTI_RETENTION_MARGIN_SECS),
            ),
            (
                json!({"exp": NOW - CLOCK_SKEW_SECS - 1}),
                Err(TimeClaimError::Expired),
            ),
            (json!({"exp": NOW - 30}), Err(TimeClaimError::Expired)),
            (
                json!({"exp": u64::MAX}),
                Err(TimeClaimError::Malformed("exp")),
            ),
            (json!({"exp": i64::MAX}), Err(TimeClaimError::TooLongLived)),
            (json!({"exp": i64::MIN}), Err(TimeClaimError::Expired)),
            (json!({"exp": 1e300}), Err(TimeClaimError::Malformed("exp"))),
            (
                json!({"exp": "soon"}),
                Err(TimeClaimError::Malformed("exp")),
            ),
            (
                json!({"exp": (NOW as f64) + 10.5}),
                Ok(NOW + 11 + CLOCK_SKEW_SECS + JTI_RETENTION_MARGIN_SECS),
            ),
            (
                json!({"exp": NOW + MAX_LIFETIME_SECS}),
                Ok(NOW + MAX_LIFETIME_SECS + CLOCK_SKEW_SECS + JTI_RETENTION_MARGIN_SECS),
            ),
            (
                json!({"exp": NOW + MAX_LIFETIME_SECS + 1}),
                Err(TimeClaimError::TooLongLived),
            ),
            (
                json!({"exp": NOW + 7200}),
                Err(TimeClaimError::TooLongLived),
            ),
            (json!({}), Err(TimeClaimError::MissingExp)),
            (
                json!({"exp": NOW + 60, "nbf": NOW + CLOCK_SKEW_SECS}),
                Ok(NOW + 60 + CLOCK_SKEW_SECS + JTI_RETENTION_MARGIN_SECS),
            ),
            (
                json!({"exp": NOW + 60, "nbf": NOW + CLOCK_SKEW_SECS + 1}),
                Err(TimeClaimError::NotYetValid),
            ),
            (
                json!({"exp": NOW + 60, "iat": NOW + 60}),
                Err(TimeClaimError::IssuedInFuture),
            ),
            (
                json!({"exp": NOW + 60, "iat": u64::MAX}),
                Err(TimeClaimError::Malformed("iat")),
            ),
            (
                json!({"exp": NOW + 60, "iat": NOW - 100, "nbf": NOW - 100}),
                Ok(NOW + 60 + CLOCK_SKEW_SECS + JTI_RETENTION_MARGIN_SECS),
            ),
        ];
        for (claims, want) in cases {
            assert_eq!(check_time_claims(&claims, NOW), want, "{claims}");
        }
    }
}
