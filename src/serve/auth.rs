//! Who may read: the Host a request names, and the access token, as Jupyter does it.
//!
//! - Host allow-list, against DNS rebinding (a web page whose name resolves to 127.0.0.1
//!   would otherwise read this server from the user's own browser): only the bound address,
//!   `localhost`, `127.0.0.1`, `[::1]` and the names given with `--allow-host`; on an
//!   unspecified address (0.0.0.0, ::) also any IP literal (rebinding needs a name) and this
//!   machine's host name, which the printed link uses. Anything else is 403.
//! - A token on every address, loopback too, generated at start unless given; accepted from
//!   `?token=`, the cookie or a Bearer header. `--no-token` turns it off, on loopback only.
//!   Opening the printed link (`/?token=...`) sets an HttpOnly cookie named with the port
//!   (two servers on one host do not overwrite each other's) and redirects to the page
//!   without the token, so it leaves the address bar and never reaches a Referer.

use crate::error::InputError;
use std::net::IpAddr;

use axum::http::{header, request::Parts};

use super::http::{Query, Response};

/// A token given with `--token`: 16 to 256 characters that need no escaping in a URL or a
/// cookie, so the printed link works as printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::str::FromStr for Token {
    type Err = String;

    fn from_str(text: &str) -> Result<Token, String> {
        let ok = (16..=256).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b));
        if !ok {
            return Err(
                "a token is 16 to 256 characters of letters, digits, '-', '_', '.' or '~'".into()
            );
        }
        Ok(Token(text.to_string()))
    }
}

/// Whether requests need a token, and which.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TokenChoice {
    /// A new random one (the default, on every address).
    #[default]
    Generate,
    Given(Token),
    /// `--no-token`: none at all; refused on any address but loopback.
    Off,
}

/// The token the server requires, if any.
/// A refusal is bad input naming `no_token` (the CLI's `--no-token`).
pub fn required_token(ip: IpAddr, choice: TokenChoice) -> Result<Option<String>, InputError> {
    match choice {
        TokenChoice::Given(Token(token)) => Ok(Some(token)),
        TokenChoice::Generate => Ok(Some(generate())),
        TokenChoice::Off if ip.is_loopback() => Ok(None),
        TokenChoice::Off => Err(InputError::new(format!(
            "serving without a token is for loopback only (127.0.0.1 or ::1), not {ip}: \
             anyone who can reach {ip} could read the results"
        ))
        .field("no_token")),
    }
}

/// 128 random bits as hex, from the OS-seeded thread generator.
pub fn generate() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The cookie that carries the token of the server on `port`.
pub fn cookie_name(port: u16) -> String {
    format!("foldsweep_token_{port}")
}

/// The Host names a server bound to `ip` answers to.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    names: Vec<String>,
    any_ip_literal: bool,
}

impl AllowedHosts {
    pub fn new(ip: IpAddr, extra: &[String], machine_name: &str) -> AllowedHosts {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "[::1]"].map(String::from).into();
        names.push(host_literal(ip));
        names.extend(extra.iter().map(|name| normalise(name)));
        if ip.is_unspecified() {
            names.push(normalise(machine_name));
        }
        AllowedHosts { names, any_ip_literal: ip.is_unspecified() }
    }

    /// Whether a Host header's value (name or address, perhaps with a port) is allowed.
    pub fn allows(&self, host: &str) -> bool {
        let name = normalise(strip_port(host));
        if name.is_empty() {
            return false;
        }
        if self.any_ip_literal && is_ip_literal(&name) {
            return true;
        }
        self.names.contains(&name)
    }
}

/// An address as it appears in a Host header or a link: IPv6 in brackets.
pub fn host_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

fn normalise(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn is_ip_literal(name: &str) -> bool {
    let bare = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
    bare.parse::<IpAddr>().is_ok()
}

/// What to do with a request before routing it.
pub enum Gate {
    Pass,
    /// The printed link was opened: set the cookie and redirect to the page without the token.
    SetCookie(Response),
    Deny(Response),
}

pub struct TokenCheck<'a> {
    pub token: Option<&'a str>,
    pub cookie: &'a str,
}

impl TokenCheck<'_> {
    pub fn check(&self, parts: &Parts, query: &Query, is_api: bool) -> Gate {
        let Some(token) = self.token else {
            return Gate::Pass;
        };
        let from_query = query.get("token").map(String::as_str);
        if from_query.is_some_and(|t| same(t, token)) && !is_api {
            let cookie = format!("{}={token}; Path=/; HttpOnly; SameSite=Lax", self.cookie);
            // Back to the same path on this site: one a browser could read as another site's
            // (`//host`, `/\host`) goes to the index instead.
            let path = parts.uri.path();
            let elsewhere = path.starts_with("//") || path.starts_with("/\\");
            let redirect = Response::text(303, "see other")
                .with_header("Location", if elsewhere { "/" } else { path })
                .with_header("Set-Cookie", cookie);
            return Gate::SetCookie(redirect);
        }
        let candidates = [from_query, self.cookie_token(parts), bearer_token(parts)];
        if candidates.into_iter().flatten().any(|t| same(t, token)) {
            return Gate::Pass;
        }
        let deny = if is_api {
            Response::json_error(401, "missing or wrong token")
        } else {
            Response::text(
                401,
                "401: this foldsweep serve needs its token; open the link it printed at start",
            )
        };
        Gate::Deny(deny.with_header("WWW-Authenticate", "Bearer"))
    }

    fn cookie_token<'p>(&self, parts: &'p Parts) -> Option<&'p str> {
        parts.headers.get_all(header::COOKIE).iter().find_map(|value| {
            value.to_str().ok()?.split(';').find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                (name == self.cookie).then_some(value)
            })
        })
    }
}

fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim)
}

/// Compares in time independent of where the first difference is.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_address_gets_a_token_unless_loopback_turns_it_off() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        assert_eq!(required_token(loopback, TokenChoice::Generate).unwrap().unwrap().len(), 32);
        assert_eq!(required_token(any, TokenChoice::Generate).unwrap().unwrap().len(), 32);
        assert_eq!(required_token(loopback, TokenChoice::Off).unwrap(), None);
        assert_eq!(required_token("::1".parse().unwrap(), TokenChoice::Off).unwrap(), None);
        assert!(required_token(any, TokenChoice::Off).is_err());
        assert!(
            "short".parse::<Token>().is_err() && "a b c d e f g h i j".parse::<Token>().is_err()
        );
        let given: Token = "0123456789abcdef".parse().unwrap();
        assert_eq!(required_token(loopback, TokenChoice::Given(given)).unwrap().unwrap().len(), 16);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }

    #[test]
    fn hosts_are_the_bound_address_loopback_names_and_the_allowed_ones() {
        let loopback =
            AllowedHosts::new("127.0.0.1".parse().unwrap(), &["Box.Example".into()], "m");
        for ok in ["localhost", "LOCALHOST:8765", "127.0.0.1:1", "[::1]:8765", "box.example."] {
            assert!(loopback.allows(ok), "{ok}");
        }
        for bad in ["evil.example", "evil.example:8765", "127.0.0.2", "", "m", "localhost.evil"] {
            assert!(!loopback.allows(bad), "{bad}");
        }
        let lan = AllowedHosts::new("192.0.2.7".parse().unwrap(), &[], "m");
        assert!(lan.allows("192.0.2.7:80") && !lan.allows("192.0.2.8") && !lan.allows("m"));
        let any = AllowedHosts::new("0.0.0.0".parse().unwrap(), &[], "Machine");
        assert!(any.allows("192.0.2.8:1") && any.allows("[2001:db8::1]") && any.allows("machine"));
        assert!(!any.allows("evil.example"));
    }
}
