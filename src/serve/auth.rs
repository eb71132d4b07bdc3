//! Who is calling: an API token (only its SHA-256 is configured) or the identity headers of
//! the trusted single-sign-on proxy (only from its configured addresses); for the page, a
//! session cookie (HttpOnly, SameSite=Strict, Secure off loopback) with a CSRF token for its forms. Identity never
//! comes from a request body.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE, HOST};
use chrono::{DateTime, Duration, Utc};
use kars_workflow::Actor;
use kars_workflow::driver::{Roster, RosterError};
use ring::rand::SecureRandom;

use super::config::Settings;
use super::problem::Problem;

/// The header a trusted proxy sets to the authenticated login, unless the config names
/// another (`proxy: { header: x-auth-request-email }`). Only that one header is read: a proxy
/// overwrites the header it sets, and any other identity header could be the client's.
pub const USER_HEADER: &str = "x-forwarded-user";
/// The page's session cookie.
pub const SESSION_COOKIE: &str = "kars_session";
/// How long a page session lasts.
const SESSION_HOURS: i64 = 12;

/// The SHA-256 of `token`, lowercase hex: what the config stores instead of the token.
#[must_use]
pub fn hash_token(token: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, token.trim().as_bytes()).as_ref())
}

/// A new random token: 32 bytes from the system's secure generator, hex.
///
/// # Errors
/// A sentence when the system's random generator fails.
pub fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| "the system's random generator failed".to_owned())?;
    Ok(hex(&bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Who a request comes from, before it is looked up on an instance's roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A roster person, named by the token they presented.
    Person(String),
    /// A login (or e-mail address) the proxy vouched for, matched against roster `logins:`.
    Login(String),
}

impl Principal {
    /// The principal as an actor of `roster`.
    ///
    /// # Errors
    /// [`RosterError`] when the roster does not know them.
    pub fn actor(&self, roster: &Roster) -> Result<Actor, RosterError> {
        match self {
            Self::Person(name) => roster.actor(name),
            Self::Login(login) => roster.actor_for_login(login),
        }
    }

    /// How to show them.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Person(name) | Self::Login(name) => name,
        }
    }
}

/// The principal of an API request: a bearer token, or the proxy's headers from a trusted
/// peer. Proxy headers from any other peer are not identity.
///
/// # Errors
/// A 401 problem: no credentials, an unknown token, or proxy headers from an untrusted peer.
pub(crate) fn authenticate(settings: &Settings, headers: &HeaderMap, peer: IpAddr) -> Result<Principal, Problem> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let token =
            value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).ok_or_else(|| {
                Problem::unauthenticated("the `Authorization` header is not `Bearer TOKEN`".to_owned())
            })?;
        return match settings.tokens.get(&hash_token(token)) {
            Some(person) => Ok(Principal::Person(person.to_string())),
            None => Err(Problem::unauthenticated("the API token is not one this server knows".to_owned())),
        };
    }
    // An IPv4 proxy seen through a dual-stack socket (`--listen [::]`) is `::ffff:a.b.c.d`.
    let peer = peer.to_canonical();
    let mut values = headers.get_all(&settings.proxy_header).iter();
    let proxied = match (values.next(), values.next()) {
        (Some(value), None) => Some(value.to_str().ok()),
        // Two values: one of them is not the proxy's.
        (Some(_), Some(_)) => Some(None),
        (None, _) => None,
    };
    match proxied {
        Some(Some(login)) if settings.proxy_peers.contains(&peer) && !login.trim().is_empty() => {
            Ok(Principal::Login(login.trim().to_owned()))
        }
        Some(_) if settings.proxy_peers.contains(&peer) => Err(Problem::unauthenticated(format!(
            "the proxy's `{}` header must appear once, with a login in visible ASCII",
            settings.proxy_header
        ))),
        Some(_) => Err(Problem::unauthenticated(format!(
            "identity headers from `{peer}` are ignored: it is not a configured proxy address"
        ))),
        None => Err(Problem::unauthenticated("no credentials: send `Authorization: Bearer TOKEN`".to_owned())),
    }
}

/// A signed-in page session.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub principal: Principal,
    pub csrf: String,
    expires: DateTime<Utc>,
}

/// The page's sessions, in memory (a restart signs everyone out).
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Opens a session for `principal` at `now`; returns its id and CSRF token.
    pub fn open(&self, principal: Principal, now: DateTime<Utc>) -> Result<(String, Session), String> {
        let id = new_token()?;
        let session = Session { principal, csrf: new_token()?, expires: now + Duration::hours(SESSION_HOURS) };
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, s| s.expires > now);
        map.insert(id.clone(), session.clone());
        Ok((id, session))
    }

    /// The live session the request's cookie names.
    pub fn find(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Option<(String, Session)> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&id).filter(|s| s.expires > now).map(|s| (id.clone(), s.clone()))
    }

    /// Whether session `id` is `principal`'s.
    pub fn held_by(&self, id: &str, principal: &Principal) -> bool {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(id).is_some_and(|s| s.principal == *principal)
    }

    /// Ends a session.
    pub fn close(&self, id: &str) {
        self.map.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }
}

/// The `Set-Cookie` value of a session for a request with `headers`.
pub(crate) fn session_cookie(id: &str, headers: &HeaderMap) -> String {
    format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        SESSION_HOURS * 3600,
        secure_attribute(headers)
    )
}

/// The `Set-Cookie` value that ends a session.
pub(crate) fn cleared_cookie(headers: &HeaderMap) -> String {
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}", secure_attribute(headers))
}

/// `; Secure` (the browser sends the cookie over HTTPS only) unless the page was asked for on
/// a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`), the one place plain HTTP is
/// expected: `kars serve` speaks HTTP and runs behind a TLS-terminating proxy anywhere else. A
/// client that names a loopback host it is not on only weakens its own cookie.
fn secure_attribute(headers: &HeaderMap) -> &'static str {
    if loopback_host(headers) { "" } else { "; Secure" }
}

/// Whether the request's `Host` header names this machine's loopback interface.
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    // Strip the port: `[::1]:8080`, `127.0.0.1:8080`, `localhost:8080`.
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(rest, |(inside, _)| inside),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback())
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// Whether two secrets are equal, in time independent of where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, value.parse().unwrap());
        headers
    }

    #[test]
    fn session_cookies_are_secure_except_on_loopback_hosts() {
        for local in ["localhost", "LOCALHOST:8080", "127.0.0.1:7878", "127.3.2.1", "[::1]:80", "[::1]"] {
            assert!(!session_cookie("id", &host(local)).contains("Secure"), "{local}");
            assert!(!cleared_cookie(&host(local)).contains("Secure"), "{local}");
        }
        for remote in
            ["kars.example.com", "kars.example.com:443", "10.0.0.5:8080", "[2001:db8::1]:80", "localhost.evil"]
        {
            assert!(session_cookie("id", &host(remote)).ends_with("; Secure"), "{remote}");
            assert!(cleared_cookie(&host(remote)).ends_with("; Secure"), "{remote}");
        }
        // No Host header (HTTP/1.0, a test client): secure, the safe side.
        assert!(session_cookie("id", &HeaderMap::new()).ends_with("; Secure"));
        assert!(
            session_cookie("id", &host("localhost"))
                .starts_with("kars_session=id; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200")
        );
    }

    #[test]
    fn a_token_hash_is_its_sha256() {
        // echo -n password | sha256sum
        assert_eq!(hash_token("password"), "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8");
        assert_eq!(new_token().unwrap().len(), 64);
    }

    #[test]
    fn proxy_headers_count_only_from_configured_peers() {
        let settings = Settings { proxy_peers: vec!["10.0.0.1".parse().unwrap()], ..Settings::default() };
        let mut headers = HeaderMap::new();
        headers.insert(USER_HEADER, "carol".parse().unwrap());
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(authenticate(&settings, &headers, proxy).unwrap(), Principal::Login("carol".to_owned()));
        assert_eq!(authenticate(&settings, &headers, other).unwrap_err().status().as_u16(), 401);
        // The same proxy through a dual-stack socket.
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(authenticate(&settings, &headers, mapped).unwrap(), Principal::Login("carol".to_owned()));
        // A second value (the client's own header passed through) is not identity.
        headers.append(USER_HEADER, "frank".parse().unwrap());
        assert_eq!(authenticate(&settings, &headers, proxy).unwrap_err().status().as_u16(), 401);
    }

    #[test]
    fn only_the_configured_header_is_identity() {
        let settings = Settings { proxy_peers: vec!["10.0.0.1".parse().unwrap()], ..Settings::default() }
            .with_proxy_header("X-Auth-Request-Email")
            .unwrap();
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        // A proxy that sets only the e-mail header passes the client's `X-Forwarded-User` on.
        let mut headers = HeaderMap::new();
        headers.insert(USER_HEADER, "frank".parse().unwrap());
        assert_eq!(authenticate(&settings, &headers, proxy).unwrap_err().status().as_u16(), 401);
        headers.insert("x-auth-request-email", "carol@example.com".parse().unwrap());
        assert_eq!(authenticate(&settings, &headers, proxy).unwrap(), Principal::Login("carol@example.com".to_owned()));
        for bad in ["authorization", "Cookie", "not a header", ""] {
            assert!(Settings::default().with_proxy_header(bad).is_err(), "{bad}");
        }
    }
}
