//! OAUTHBEARER's server side in the mock (feature `sasl`), as Kafka's broker
//! runs it with its default validator (`OAuthBearerSaslServer` over
//! `OAuthBearerUnsecuredValidatorCallbackHandler`), for test clusters as
//! Kafka's is:
//!
//! - the client's first message (RFC 7628) `n,[a=authzid],\x01auth=Bearer
//!   <token>\x01[key=value\x01]*\x01`; anything else fails the exchange with
//!   Kafka's generic message (extensions are all accepted, as Kafka's
//!   unsecured handler does);
//! - the token an unsecured JWS: three dot-separated base64url parts, header
//!   `alg` `none`, an empty signature, JSON claims with a string principal
//!   claim, a numeric `exp`, optionally `iat` and a scope (a string or a list
//!   of strings), checked against the mock's wall clock with Kafka's rules and
//!   order (iat not in the future, now before exp, exp after iat, every
//!   required scope present);
//! - a token that fails is answered with Kafka's JSON error
//!   (`{"status":"invalid_token"}`, or `insufficient_scope` with the required
//!   scope); the exchange then fails once the client acknowledges it with
//!   `\x01`.
//!
//! The claims are read by a small JSON reader of the values Kafka's
//! validator distinguishes (text, number, list of text).

use std::collections::BTreeMap;

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

/// Options of Kafka's unsecured OAUTHBEARER validator (its
/// `unsecuredValidator*` JAAS options); the default is Kafka's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockOAuthValidator {
    /// `unsecuredValidatorPrincipalClaimName`: the string claim naming the principal (`sub`).
    pub principal_claim: String,
    /// `unsecuredValidatorScopeClaimName`: the claim holding the token's scope (`scope`).
    pub scope_claim: String,
    /// `unsecuredValidatorRequiredScope`: scopes every token must carry (none).
    pub required_scope: Vec<String>,
    /// `unsecuredValidatorAllowableClockSkewMs`: slack on `iat` and `exp` (0).
    pub allowable_clock_skew_ms: u32,
}

impl Default for MockOAuthValidator {
    fn default() -> Self {
        MockOAuthValidator {
            principal_claim: "sub".into(),
            scope_claim: "scope".into(),
            required_scope: Vec::new(),
            allowable_clock_skew_ms: 0,
        }
    }
}

/// The client's first message, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct InitialResponse {
    /// The authorization id (`a=`), empty when absent.
    pub(super) authzid: String,
    /// The bearer token.
    pub(super) token: String,
    /// The SASL extensions (every key=value pair but `auth`).
    pub(super) extensions: BTreeMap<String, String>,
}

fn is_saslname(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'=' if b[i..].starts_with(b"=2C") || b[i..].starts_with(b"=3D") => i += 3,
            b'=' | b',' => return false,
            0x01..=0x7f => i += 1,
            _ => return false,
        }
    }
    !b.is_empty()
}

/// Parses RFC 7628's client first message as Kafka does
/// (`OAuthBearerClientInitialResponse`); `Err` says why it is not one.
pub(super) fn parse_initial(msg: &[u8]) -> Result<InitialResponse, &'static str> {
    const INVALID: &str = "Invalid OAUTHBEARER client first message";
    let text = std::str::from_utf8(msg).map_err(|_| INVALID)?;
    let rest = text.strip_prefix("n,").ok_or(INVALID)?;
    let (authz, rest) = rest.split_once(',').ok_or(INVALID)?;
    let authzid = match authz {
        "" => String::new(),
        a => a
            .strip_prefix("a=")
            .filter(|n| is_saslname(n))
            .ok_or(INVALID)?
            .to_owned(),
    };
    let pairs = rest
        .strip_prefix('\x01')
        .and_then(|r| r.strip_suffix('\x01'))
        .ok_or(INVALID)?;
    let mut map = BTreeMap::new();
    if !pairs.is_empty() {
        let pairs = pairs.strip_suffix('\x01').ok_or(INVALID)?;
        for pair in pairs.split('\x01') {
            let (k, v) = pair.split_once('=').ok_or(INVALID)?;
            let key_ok = !k.is_empty() && k.bytes().all(|c| c.is_ascii_alphabetic());
            let value_ok = !v.is_empty()
                && v.bytes()
                    .all(|c| matches!(c, 0x21..=0x7e | b' ' | b'\t' | b'\r' | b'\n'));
            if !key_ok || !value_ok {
                return Err(INVALID);
            }
            map.insert(k.to_owned(), v.to_owned());
        }
    }
    let auth = map
        .remove("auth")
        .ok_or("Invalid OAUTHBEARER client first message: 'auth' not specified")?;
    let bad_auth = "Invalid OAUTHBEARER client first message: invalid 'auth' format";
    let (scheme, token) = auth.split_once(' ').ok_or(bad_auth)?;
    let token = token.trim_start_matches(' ');
    let scheme_ok = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_');
    let token_ok = !token.is_empty()
        && token
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if !scheme_ok || !token_ok {
        return Err(bad_auth);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("Invalid scheme in OAUTHBEARER client first message");
    }
    Ok(InitialResponse {
        authzid,
        token: token.to_owned(),
        extensions: map,
    })
}

/// A token the validator accepted.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ValidToken {
    /// The principal claim.
    pub(super) principal: String,
    /// `exp` in Unix milliseconds: the credential's end, which bounds the session.
    pub(super) lifetime_ms: i64,
}

/// Why a token was refused, and the JSON error that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    /// The validator's reason (logged, never sent: Kafka sends only the status).
    pub(super) reason: String,
    /// The required scope, when that is what the token lacks.
    pub(super) scope: Option<String>,
}

impl Refusal {
    fn invalid(reason: impl Into<String>) -> Refusal {
        Refusal {
            reason: reason.into(),
            scope: None,
        }
    }

    /// The server's error message (RFC 7628 section 3.2.2), as Kafka words it.
    pub(super) fn json(&self) -> String {
        match &self.scope {
            None => r#"{"status":"invalid_token"}"#.to_owned(),
            Some(s) => format!(r#"{{"status":"insufficient_scope", "scope":"{s}"}}"#),
        }
    }
}

/// A claim's value as Kafka's validator sees it (`OAuthBearerUnsecuredJws`:
/// numbers stay numbers, arrays become lists of their elements' text,
/// anything else its text).
#[derive(Debug, Clone, PartialEq)]
enum Claim {
    Text(String),
    Number(f64),
    List(Vec<String>),
}

impl Claim {
    fn kind(&self) -> &'static str {
        match self {
            Claim::Text(_) => "String",
            Claim::Number(_) => "Number",
            Claim::List(_) => "List",
        }
    }
}

/// Nesting beyond this is refused, so that hostile tokens cannot exhaust the stack.
const MAX_DEPTH: usize = 16;

/// A JSON reader just large enough for a token's header and claims.
struct Json<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Json<'a> {
    fn ws(&mut self) {
        while self
            .s
            .get(self.i)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn object(&mut self, depth: usize) -> Option<BTreeMap<String, Claim>> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'{')?;
        let mut map = BTreeMap::new();
        if self.eat(b'}').is_some() {
            return Some(map);
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.eat(b':')?;
            let value = self.value(depth)?;
            map.insert(key, value);
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(map);
                }
                _ => return None,
            }
        }
    }

    fn value(&mut self, depth: usize) -> Option<Claim> {
        Some(match self.peek()? {
            b'{' => {
                self.object(depth + 1)?;
                Claim::Text(String::new())
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                let mut items = Vec::new();
                if self.eat(b']').is_none() {
                    loop {
                        self.ws();
                        let start = self.i;
                        items.push(match self.value(depth + 1)? {
                            Claim::Text(t) => t,
                            Claim::Number(_) => {
                                String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
                            }
                            Claim::List(_) => String::new(),
                        });
                        match self.peek()? {
                            b',' => self.i += 1,
                            b']' => {
                                self.i += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                Claim::List(items)
            }
            b'"' => Claim::Text(self.string()?),
            b't' => self.literal("true")?,
            b'f' => self.literal("false")?,
            b'n' => self.literal("null")?,
            _ => Claim::Number(self.number()?),
        })
    }

    fn literal(&mut self, word: &str) -> Option<Claim> {
        self.s[self.i..].starts_with(word.as_bytes()).then(|| {
            self.i += word.len();
            Claim::Text(word.to_owned())
        })
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Option<f64> {
        let start = self.i;
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match self.s.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            (self.digits() > 0).then_some(())?;
        }
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            (self.digits() > 0).then_some(())?;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        self.i += 4;
        u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
    }

    fn string(&mut self) -> Option<String> {
        (self.s.get(self.i) == Some(&b'"')).then_some(())?;
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let c = *self.s.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&hi) {
                                (self.s.get(self.i..self.i + 2) == Some(b"\\u")).then_some(())?;
                                self.i += 2;
                                let lo = self.hex4()?;
                                (0xdc00..0xe000).contains(&lo).then_some(())?;
                                0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                            } else {
                                hi
                            };
                            char::from_u32(code)?
                        }
                        _ => return None,
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                0x00..=0x1f => return None,
                c => out.push(c),
            }
        }
    }
}

/// One base64url part of the token as a JSON object (Kafka's `toMap`).
fn json_part(part: &str) -> Result<BTreeMap<String, Claim>, Refusal> {
    // RFC 7515 leaves padding out; a padded part is read too.
    const B64URL: GeneralPurpose = GeneralPurpose::new(
        &URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let bytes = B64URL
        .decode(part)
        .map_err(|_| Refusal::invalid("malformed Base64 URL encoded value"))?;
    let mut j = Json { s: &bytes, i: 0 };
    let map = j.object(0);
    j.ws();
    match map {
        Some(m) if j.i == bytes.len() => Ok(m),
        _ => Err(Refusal::invalid("malformed JSON")),
    }
}

fn number_claim(claims: &BTreeMap<String, Claim>, name: &str) -> Result<Option<f64>, Refusal> {
    match claims.get(name) {
        None => Ok(None),
        Some(Claim::Number(n)) => Ok(Some(*n)),
        Some(c) => Err(Refusal::invalid(format!(
            "The '{name}' claim was not of type Number: {}",
            c.kind()
        ))),
    }
}

/// Validates `token` at `now_ms` (Unix milliseconds) as Kafka's unsecured
/// validator does, in its order.
pub(super) fn validate(
    token: &str,
    v: &MockOAuthValidator,
    now_ms: i64,
) -> Result<ValidToken, Refusal> {
    if token.contains("..") {
        return Err(Refusal::invalid(
            "Malformed compact serialization contains '..'",
        ));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err(Refusal::invalid(
            "Unsecured JWS compact serializations must have 3 dot-separated Base64URL-encoded values",
        ));
    };
    let header = json_part(header)?;
    let claims = json_part(claims)?;
    if header.get("alg") != Some(&Claim::Text("none".into())) {
        return Err(Refusal::invalid(
            "Unsecured JWS must have 'none' for an algorithm",
        ));
    }
    if !signature.is_empty() {
        return Err(Refusal::invalid(
            "Unsecured JWS must not contain a digital signature",
        ));
    }
    let scope: Vec<String> = match claims.get(&v.scope_claim) {
        None => Vec::new(),
        Some(Claim::Text(s)) if s.trim().is_empty() => Vec::new(),
        Some(Claim::Text(s)) => vec![s.trim().to_owned()],
        Some(Claim::List(l)) => l
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(c) => {
            return Err(Refusal::invalid(format!(
                "The '{}' claim was not of type List: {}",
                v.scope_claim,
                c.kind()
            )))
        }
    };
    let exp = number_claim(&claims, "exp")?
        .ok_or_else(|| Refusal::invalid("No expiration time in JWT"))?;
    let principal = match claims.get(&v.principal_claim) {
        Some(Claim::Text(p)) if !p.trim().is_empty() => p.clone(),
        Some(Claim::Text(_)) | None => {
            return Err(Refusal::invalid(format!(
                "No principal name in JWT claim: {}",
                v.principal_claim
            )))
        }
        Some(c) => {
            return Err(Refusal::invalid(format!(
                "The '{}' claim was not of type String: {}",
                v.principal_claim,
                c.kind()
            )))
        }
    };
    let skew = f64::from(v.allowable_clock_skew_ms);
    let now = now_ms as f64;
    let iat = number_claim(&claims, "iat")?;
    if let Some(iat) = iat.filter(|iat| 1000.0 * iat > now + skew) {
        return Err(Refusal::invalid(format!(
            "The Issued At value ({iat} seconds) was after the indicated time ({now_ms} ms) plus allowable clock skew ({skew} ms)"
        )));
    }
    if now - skew >= 1000.0 * exp {
        return Err(Refusal::invalid(format!(
            "The indicated time ({now_ms} ms) minus allowable clock skew ({skew} ms) was on or after the Expiration Time value ({exp} seconds)"
        )));
    }
    if let Some(iat) = iat.filter(|iat| exp <= *iat) {
        return Err(Refusal::invalid(format!(
            "The Expiration Time time ({exp} seconds) was not after the Issued At time ({iat} seconds)"
        )));
    }
    if let Some(missing) = v.required_scope.iter().find(|r| !scope.contains(r)) {
        return Err(Refusal {
            reason: format!(
                "The provided scope ({scope:?}) was missing a required scope ({missing}).  All required scope elements: {:?}",
                v.required_scope
            ),
            scope: Some(format!("[{}]", v.required_scope.join(", "))),
        });
    }
    Ok(ValidToken {
        principal,
        lifetime_ms: (exp * 1000.0).round() as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn jws(header: &str, claims: &str) -> String {
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn first_message_as_kafka_reads_it() {
        let m = parse_initial(b"n,,\x01auth=Bearer a.b.\x01k=v w\x01\x01").unwrap();
        assert_eq!(m.token, "a.b.");
        assert_eq!(m.authzid, "");
        assert_eq!(m.extensions.get("k").map(String::as_str), Some("v w"));
        let m = parse_initial(b"n,a=svc,\x01auth=bearer  t\x01\x01").unwrap();
        assert_eq!((m.authzid.as_str(), m.token.as_str()), ("svc", "t"));
        for bad in [
            &b"n,,auth=Bearer t\x01\x01"[..],
            b"y,,\x01auth=Bearer t\x01\x01",
            b"n,,\x01auth=Bearer t\x01",
            b"n,,\x01\x01",
            b"n,,\x01auth=Basic t\x01\x01",
            b"n,,\x01auth=Bearer t!\x01\x01",
            b"n,,\x01auth=Bearer t\x01k1=v\x01\x01",
            b"n,a=,\x01auth=Bearer t\x01\x01",
            b"n,,\x01auth=Bearer t\x01\x01\x01",
        ] {
            assert!(parse_initial(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unsecured_tokens_validated_in_kafkas_order() {
        let v = MockOAuthValidator::default();
        let ok = jws(
            r#"{"alg":"none"}"#,
            r#"{"sub":"alice","iat":1699999999.5,"exp":1700000060,"scope":["a"," b "]}"#,
        );
        assert_eq!(
            validate(&ok, &v, NOW),
            Ok(ValidToken {
                principal: "alice".into(),
                lifetime_ms: 1_700_000_060_000
            })
        );
        let refused = |t: &str, v: &MockOAuthValidator| validate(t, v, NOW).unwrap_err();
        let expired = jws(r#"{"alg":"none"}"#, r#"{"sub":"a","exp":1700000000}"#);
        assert!(refused(&expired, &v).reason.contains("Expiration Time"));
        assert_eq!(
            refused(&expired, &v).json(),
            r#"{"status":"invalid_token"}"#
        );
        let skewed = MockOAuthValidator {
            allowable_clock_skew_ms: 1,
            ..v.clone()
        };
        assert!(validate(&expired, &skewed, NOW).is_ok());
        let future = jws(
            r#"{"alg":"none"}"#,
            r#"{"sub":"a","iat":1700000001,"exp":1700000060}"#,
        );
        assert!(refused(&future, &v).reason.contains("Issued At"));
        for bad in [
            jws(r#"{"alg":"HS256"}"#, r#"{"sub":"a","exp":1800000000}"#),
            jws(r#"{"alg":"none"}"#, r#"{"exp":1800000000}"#),
            jws(r#"{"alg":"none"}"#, r#"{"sub":7,"exp":1800000000}"#),
            jws(r#"{"alg":"none"}"#, r#"{"sub":"a","exp":"soon"}"#),
            jws(r#"{"alg":"none"}"#, r#"{"sub":"a"}"#),
            jws(r#"{"alg":"none"}"#, r#"{"sub":"a","exp":1800000000"#),
            format!(
                "{}sig",
                jws(r#"{"alg":"none"}"#, r#"{"sub":"a","exp":1800000000}"#)
            ),
            "a..b".into(),
            "e30.e30".into(),
            "!!.e30.".into(),
        ] {
            assert_eq!(refused(&bad, &v).scope, None, "{bad}");
        }
        let scoped = MockOAuthValidator {
            required_scope: vec!["a".into(), "c".into()],
            ..v.clone()
        };
        let r = refused(&ok, &scoped);
        assert_eq!(
            r.json(),
            r#"{"status":"insufficient_scope", "scope":"[a, c]"}"#
        );
        let text_scope = jws(
            r#"{"alg":"none"}"#,
            r#"{"sub":"a","exp":1800000000,"scope":"a"}"#,
        );
        let one = MockOAuthValidator {
            required_scope: vec!["a".into()],
            ..v
        };
        assert!(validate(&text_scope, &one, NOW).is_ok());
    }

    #[test]
    fn json_reader_takes_what_kafka_takes() {
        let claims = json_part(&URL_SAFE_NO_PAD.encode(
            r#" { "s" : "x\"\u00e9\ud83d\ude00", "n": -1.5e2, "l": [1, "b", true, null, {"o": 1}],
                "o": {"deep": [[]]}, "s": "last" } "#,
        ))
        .unwrap();
        assert_eq!(claims["s"], Claim::Text("last".into()));
        assert_eq!(claims["n"], Claim::Number(-150.0));
        assert_eq!(
            claims["l"],
            Claim::List(vec![
                "1".into(),
                "b".into(),
                "true".into(),
                "null".into(),
                "".into()
            ])
        );
        assert_eq!(claims["o"], Claim::Text(String::new()));
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(40), "]".repeat(40));
        assert!(json_part(&URL_SAFE_NO_PAD.encode(deep)).is_err());
        for bad in [
            r#"{"a":01}"#,
            r#"{"a":1,}"#,
            r#"{"a":"\x"}"#,
            "[1]",
            r#"{"a":1} x"#,
        ] {
            assert!(json_part(&URL_SAFE_NO_PAD.encode(bad)).is_err(), "{bad}");
        }
    }
}
