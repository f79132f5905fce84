//! ICE servers for calls: the configured STUN servers, and TURN servers with credentials
//! minted per user by the shared-secret scheme TURN servers check (coturn's
//! `use-auth-secret`): the username is `<expiry unix seconds>:<user id>` and the password is
//! the base64 HMAC-SHA1 of that username under the shared secret.
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use super::IceSettings;
use crate::protocol::IceServer;

/// A TURN username and password valid until `expires` (Unix seconds).
pub fn turn_credential(secret: &str, user: &str, expires: u64) -> (String, String) {
    let username = format!("{expires}:{user}");
    let password = match Hmac::<Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(username.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; this cannot happen.
        Err(_) => String::new(),
    };
    (username, password)
}

/// The `RTCIceServer` list for `user` at `now` (Unix seconds).
pub fn ice_servers(settings: &IceSettings, user: &str, now: u64) -> Vec<IceServer> {
    let mut servers = Vec::new();
    if !settings.stun_urls.is_empty() {
        servers.push(IceServer {
            urls: settings.stun_urls.clone(),
            username: None,
            credential: None,
        });
    }
    if !settings.turn_urls.is_empty() && !settings.turn_secret.is_empty() {
        let (username, credential) = turn_credential(
            &settings.turn_secret,
            user,
            now + settings.turn_ttl.as_secs(),
        );
        servers.push(IceServer {
            urls: settings.turn_urls.clone(),
            username: Some(username),
            credential: Some(credential),
        });
    }
    servers
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn credentials_follow_the_shared_secret_scheme() {
        // Worked out independently with
        //   printf '1700000000:alice' | openssl dgst -sha1 -hmac 'north' -binary | base64
        let (user, pass) = turn_credential("north", "alice", 1_700_000_000);
        assert_eq!(user, "1700000000:alice");
        assert_eq!(pass, "Cd/49soE35ICqcJF/bCTn8Z4OyE=");
    }

    #[test]
    fn no_servers_unless_configured() {
        let mut settings = IceSettings {
            turn_ttl: Duration::from_secs(600),
            ..IceSettings::default()
        };
        assert!(
            ice_servers(&settings, "u", 0).is_empty(),
            "no public STUN by default"
        );
        settings.turn_urls = vec!["turn:127.0.0.1:3478".into()];
        assert!(
            ice_servers(&settings, "u", 0).is_empty(),
            "TURN needs its secret"
        );
        settings.turn_secret = "s".into();
        settings.stun_urls = vec!["stun:127.0.0.1:3478".into()];
        let servers = ice_servers(&settings, "u", 100);
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[1].username.as_deref(), Some("700:u"));
        assert!(servers[0].credential.is_none());
    }
}
