//! Redirect URIs: what a client may register, and how a requested one is
//! matched against the registered list.
//!
//! RFC 9700 §2.1: exact string comparison, nothing looser, with one
//! exception: RFC 8252 §7.3 loopback redirects (`http://127.0.0.1:PORT/…`,
//! `http://[::1]:PORT/…`), where a native app picks its port at run time,
//! match a registered loopback URI on any port.

/// A URI that may be registered as a redirect (or post-logout redirect)
/// URI: absolute, no fragment (RFC 6749 §3.1.2), https, or http only on a
/// loopback host (RFC 8252 §7.3, §8.3: `localhost` is not accepted, it may
/// resolve elsewhere). At most 512 bytes, printable ASCII without spaces.
pub fn parse_redirect_uri(text: &str) -> Result<String, String> {
    let bad = |why: &str| Err(format!("redirect URI {text:?} {why}"));
    if text.is_empty() || text.len() > 512 {
        return bad("must be 1 to 512 characters");
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return bad("may contain only printable ASCII without spaces");
    }
    if text.contains('#') {
        return bad("must not have a fragment");
    }
    let Some(parts) = Parts::of(text) else {
        return bad("must be an absolute https URI (or http on 127.0.0.1 or [::1])");
    };
    match parts.scheme {
        "https" if !parts.host.is_empty() => Ok(text.to_string()),
        "http" if parts.is_loopback() => Ok(text.to_string()),
        "http" => bad("must use https unless its host is 127.0.0.1 or [::1]"),
        _ => bad("must be an absolute https URI (or http on 127.0.0.1 or [::1])"),
    }
}

/// Whether `requested` is one of `registered`: the same string, or, for an
/// http loopback URI, the same apart from the port.
pub fn redirect_matches(registered: &[String], requested: &str) -> bool {
    if registered.iter().any(|r| r == requested) {
        return true;
    }
    let Some(asked) = Parts::of(requested).filter(|p| p.scheme == "http" && p.is_loopback()) else {
        return false;
    };
    registered.iter().any(|r| {
        Parts::of(r).is_some_and(|reg| {
            reg.scheme == "http"
                && reg.host == asked.host
                && reg.rest == asked.rest
                && asked
                    .port
                    .is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
    })
}

/// The scheme, host, port and the rest (path and query) of an absolute URI.
struct Parts<'a> {
    scheme: &'a str,
    host: &'a str,
    port: Option<&'a str>,
    rest: &'a str,
}

impl<'a> Parts<'a> {
    fn of(uri: &'a str) -> Option<Parts<'a>> {
        let (scheme, after) = uri.split_once("://")?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return None;
        }
        let end = after.find(['/', '?']).unwrap_or(after.len());
        let (authority, rest) = after.split_at(end);
        if authority.contains('@') {
            return None; // userinfo in a redirect URI is a phishing device
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (inside, after) = v6.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?),
            };
            (&authority[..inside.len() + 2], port)
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        Some(Parts {
            scheme,
            host,
            port,
            rest,
        })
    }

    fn is_loopback(&self) -> bool {
        self.host == "127.0.0.1" || self.host == "[::1]"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_takes_https_and_loopback_http_only() {
        for ok in [
            "https://app.example.com/cb",
            "https://app.example.com:8443/cb?x=1",
            "http://127.0.0.1/callback",
            "http://[::1]:8080/callback",
        ] {
            assert_eq!(parse_redirect_uri(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "",
            "/cb",
            "app.example.com/cb",
            "http://app.example.com/cb",
            "http://localhost/cb",
            "https://app.example.com/cb#frag",
            "https://user@app.example.com/cb",
            "https:///cb",
            "javascript://alert(1)",
            "https://app.example.com/a b",
        ] {
            assert!(parse_redirect_uri(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn matching_is_exact_except_for_the_loopback_port() {
        let registered = vec![
            "https://app.example.com/cb".to_string(),
            "http://127.0.0.1/native".to_string(),
        ];
        assert!(redirect_matches(&registered, "https://app.example.com/cb"));
        assert!(!redirect_matches(
            &registered,
            "https://app.example.com/cb/"
        ));
        assert!(!redirect_matches(
            &registered,
            "https://app.example.com/cb?x=1"
        ));
        assert!(!redirect_matches(&registered, "https://APP.example.com/cb"));
        assert!(redirect_matches(
            &registered,
            "http://127.0.0.1:51004/native"
        ));
        assert!(!redirect_matches(
            &registered,
            "http://127.0.0.1:51004/other"
        ));
        assert!(!redirect_matches(&registered, "http://127.0.0.1:x/native"));
        assert!(!redirect_matches(&registered, "http://[::1]:51004/native"));
    }
}
