//! A registry's `WWW-Authenticate` challenge and the token it may send a
//! client for (distribution's token authentication): on `Bearer
//! realm="…",service="…"`, a token from the realm for a scope, asked with
//! the user's credentials when there are some; on `Basic`, the
//! credentials themselves. `mini login` and `mini push` speak it here;
//! pulls go through oci-client, which speaks it itself.

/// The realm and service of a Bearer challenge.
#[derive(Debug, PartialEq, Eq)]
pub struct Bearer {
    realm: String,
    service: Option<String>,
}

/// The Bearer challenge in header `challenge`; None for any other scheme.
pub fn bearer(challenge: &str) -> Option<Bearer> {
    let params = challenge.strip_prefix("Bearer ")?;
    let (mut realm, mut service) = (None, None);
    for part in split_params(params) {
        let (k, v) = part.split_once('=')?;
        let v = v.trim().trim_matches('"').to_string();
        match k.trim() {
            "realm" => realm = Some(v),
            "service" => service = Some(v),
            _ => {}
        }
    }
    Some(Bearer { realm: realm?, service })
}

impl Bearer {
    /// Where to GET a token: for `scope` (none: a login's check) and
    /// `account` (the user name, when asking with credentials).
    pub fn token_url(&self, scope: Option<&str>, account: Option<&str>) -> String {
        let query: Vec<String> = [("service", self.service.as_deref()), ("scope", scope), ("account", account)]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
            .collect();
        format!("{}?{}", self.realm, query.join("&"))
    }
}

/// The token in a realm's answer: `token`, or OAuth2's `access_token`.
pub fn token_of(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["token", "access_token"].iter().find_map(|k| v.get(k)?.as_str().filter(|t| !t.is_empty()).map(str::to_string))
}

/// `a="x,y",b=z` → [`a="x,y"`, `b=z`]: commas inside quotes stay.
fn split_params(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim());
    out.into_iter().filter(|p| !p.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_give_the_token_url() {
        let c = r#"Bearer realm="http://127.0.0.1:5003/token",service="mini registry",scope="repository:a:pull,push""#;
        let b = bearer(c).unwrap();
        assert_eq!(b.token_url(None, Some("mini")), "http://127.0.0.1:5003/token?service=mini registry&account=mini");
        assert_eq!(
            b.token_url(Some("repository:a/b:pull,push"), None),
            "http://127.0.0.1:5003/token?service=mini registry&scope=repository:a/b:pull,push"
        );
        assert_eq!(
            bearer(r#"Bearer realm="https://auth.example/t""#).unwrap().token_url(None, None),
            "https://auth.example/t?"
        );
        assert!(bearer("Basic realm=\"x\"").is_none());
        assert!(bearer(r#"Bearer service="no realm""#).is_none());
    }

    #[test]
    fn tokens_come_from_token_or_access_token() {
        assert_eq!(token_of(br#"{"token":"a","access_token":"b"}"#).as_deref(), Some("a"));
        assert_eq!(token_of(br#"{"access_token":"b"}"#).as_deref(), Some("b"));
        assert_eq!(token_of(br#"{"token":""}"#), None);
        assert_eq!(token_of(b"not json"), None);
    }
}
