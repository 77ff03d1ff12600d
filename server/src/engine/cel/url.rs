//! URLs for the CEL URL library (`url('https://example.com:80/path?x=1')`), parsed the way Go's
//! `url.ParseRequestURI` does: an absolute URL or an absolute path, no fragment.

use std::collections::BTreeMap;

/// A parsed URL.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeUrl {
    /// Lower-cased scheme, empty for a path.
    pub scheme: String,
    /// The opaque part of `scheme:opaque` URLs.
    pub opaque: String,
    /// `host` or `host:port`, `[v6]:port`.
    pub host: String,
    /// The path as written (still escaped).
    pub path: String,
    /// The query without `?`.
    pub raw_query: String,
}

impl KubeUrl {
    /// Parses `s` or says why not, in Go's words.
    pub fn parse(s: &str) -> Result<KubeUrl, String> {
        if s.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(format!("parse {s:?}: net/url: invalid control character in URL"));
        }
        if s.is_empty() {
            return Err("parse \"\": empty url".into());
        }
        let mut url =
            KubeUrl { scheme: String::new(), opaque: String::new(), host: String::new(), path: String::new(), raw_query: String::new() };
        let mut rest = s;
        for (i, c) in s.char_indices() {
            match c {
                'a'..='z' | 'A'..='Z' => {}
                '0'..='9' | '+' | '-' | '.' if i > 0 => {}
                ':' if i == 0 => return Err(format!("parse {s:?}: missing protocol scheme")),
                ':' => {
                    url.scheme = s[..i].to_ascii_lowercase();
                    rest = &s[i + 1..];
                    break;
                }
                _ => break,
            }
        }
        if rest.ends_with('?') && rest.matches('?').count() == 1 {
            rest = &rest[..rest.len() - 1];
        } else if let Some((before, query)) = rest.split_once('?') {
            url.raw_query = query.to_string();
            rest = before;
        }
        if !rest.starts_with('/') {
            if !url.scheme.is_empty() {
                url.opaque = rest.to_string();
                return Ok(url);
            }
            return Err(format!("parse {s:?}: invalid URI for request"));
        }
        if !url.scheme.is_empty() && rest.starts_with("//") {
            let after = &rest[2..];
            let (authority, path) = match after.find('/') {
                Some(i) => after.split_at(i),
                None => (after, ""),
            };
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            check_host(host).map_err(|e| format!("parse {s:?}: {e}"))?;
            url.host = host.to_string();
            rest = path;
        }
        check_escapes(rest).map_err(|e| format!("parse {s:?}: {e}"))?;
        url.path = rest.to_string();
        Ok(url)
    }

    /// The host without port and brackets.
    pub fn hostname(&self) -> String {
        let (host, _) = split_host_port(&self.host);
        host.trim_start_matches('[').trim_end_matches(']').to_string()
    }

    /// The port, empty if none.
    pub fn port(&self) -> String {
        split_host_port(&self.host).1.to_string()
    }

    /// The path, escaped.
    pub fn escaped_path(&self) -> String {
        self.path.clone()
    }

    /// The query parameters, each with its values in order.
    pub fn query(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for pair in self.raw_query.split('&').filter(|p| !p.is_empty() && !p.contains(';')) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if let (Some(key), Some(value)) = (unescape_query(key), unescape_query(value)) {
                out.entry(key).or_default().push(value);
            }
        }
        out
    }
}

fn split_host_port(host: &str) -> (&str, &str) {
    let colon = match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => i,
        _ => return (host, ""),
    };
    (&host[..colon], &host[colon + 1..])
}

fn check_host(host: &str) -> Result<(), String> {
    let port = if let Some(stripped) = host.strip_prefix('[') {
        let end = stripped.find(']').ok_or("missing ']' in host")?;
        let port = &stripped[end + 1..];
        if !port.is_empty() && !port.starts_with(':') {
            return Err(format!("invalid port {port:?} after host"));
        }
        port
    } else {
        match host.rfind(':') {
            Some(i) => &host[i..],
            None => "",
        }
    };
    if port.len() > 1 && !port[1..].bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid port {port:?} after host"));
    }
    if host.contains(' ') {
        return Err("invalid character \" \" in host name".to_string());
    }
    check_escapes(host)
}

fn check_escapes(s: &str) -> Result<(), String> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = bytes.len() > i + 2 && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit();
            if !ok {
                let end = (i + 3).min(bytes.len());
                return Err(format!("invalid URL escape {:?}", &s[i..end]));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

fn unescape_query(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_parse_request_uri() {
        let u = KubeUrl::parse("HTTPS://user@example.com:8080/a%20b?x=1&x=2&y=a+b").unwrap();
        assert_eq!((u.scheme.as_str(), u.host.as_str(), u.path.as_str()), ("https", "example.com:8080", "/a%20b"));
        assert_eq!((u.hostname(), u.port()), ("example.com".to_string(), "8080".to_string()));
        assert_eq!(u.query()["x"], vec!["1", "2"]);
        assert_eq!(u.query()["y"], vec!["a b"]);
        let v6 = KubeUrl::parse("https://[::1]:80").unwrap();
        assert_eq!((v6.hostname(), v6.port()), ("::1".to_string(), "80".to_string()));
        assert!(KubeUrl::parse("/just/a/path").is_ok());
        assert!(KubeUrl::parse("mailto:someone").is_ok());
        for bad in ["", "example.com", "../x", ":foo", "https://a:b/", "http://a/%zz", "http://a/\u{7}"] {
            assert!(KubeUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
