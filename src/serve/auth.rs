//! The access token, as Jupyter does it: required on any address other than loopback,
//! generated at start unless given, accepted from `?token=`, a cookie or a Bearer header.
//!
//! Opening the printed link (`/?token=...`) sets an HttpOnly cookie and redirects to the
//! same page without the token, so it leaves the address bar and never reaches a Referer.

use std::net::IpAddr;

use super::http::{Request, Response};

pub const COOKIE: &str = "foldsweep_token";

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

/// The token the server requires, if any: the given one, a new one on a non-loopback
/// address, none on loopback.
pub fn required_token(ip: IpAddr, given: Option<Token>) -> Option<String> {
    match given {
        Some(Token(token)) => Some(token),
        None if ip.is_loopback() => None,
        None => Some(generate()),
    }
}

/// 128 random bits as hex, from the OS-seeded thread generator.
pub fn generate() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// What to do with a request before routing it.
pub enum Gate {
    Pass,
    /// The printed link was opened: set the cookie and redirect to the page without the token.
    SetCookie(Response),
    Deny(Response),
}

pub fn check(request: &Request, token: Option<&str>, is_api: bool) -> Gate {
    let Some(token) = token else {
        return Gate::Pass;
    };
    let from_query = request.query.get("token").map(String::as_str);
    if from_query.is_some_and(|t| same(t, token)) && !is_api {
        let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax");
        // The path is one the router accepted (no `//` or `..`), so this stays on this site.
        let redirect = Response::text(303, "see other")
            .with_header("Location", request.path.as_str())
            .with_header("Set-Cookie", cookie);
        return Gate::SetCookie(redirect);
    }
    let candidates = [from_query, cookie_token(request), bearer_token(request)];
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

fn cookie_token(request: &Request) -> Option<&str> {
    request.header("cookie")?.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE).then_some(value)
    })
}

fn bearer_token(request: &Request) -> Option<&str> {
    request.header("authorization")?.strip_prefix("Bearer ").map(str::trim)
}

/// Compares in time independent of where the first difference is.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_needs_no_token_and_other_addresses_get_one() {
        assert_eq!(required_token("127.0.0.1".parse().unwrap(), None), None);
        assert_eq!(required_token("::1".parse().unwrap(), None), None);
        let generated = required_token("0.0.0.0".parse().unwrap(), None).unwrap();
        assert_eq!(generated.len(), 32);
        assert!(
            "short".parse::<Token>().is_err() && "a b c d e f g h i j".parse::<Token>().is_err()
        );
        let given: Token = "0123456789abcdef".parse().unwrap();
        assert_eq!(required_token("127.0.0.1".parse().unwrap(), Some(given)).unwrap().len(), 16);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
