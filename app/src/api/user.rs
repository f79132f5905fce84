//! `/api/v1/user/*`: register, log in and out, the own profile, the password.
//!
//! `login_form` and `register_form` are the same operations for plain HTML forms (URL-encoded,
//! answering with a redirect), so the login page works before the WASM has loaded.
use leptos::prelude::*;
use leptos::server_fn::codec::{GetUrl, Json, PostUrl};

use crate::error::ApiError;
use crate::model::{SessionInfo, UserProfile};

#[cfg(feature = "ssr")]
mod ssr {
    pub use crate::ssr::accounts::{self, ProfileChange, current_user};
    pub use crate::ssr::auth;
    pub use crate::ssr::core;

    use crate::error::ApiError;
    use crate::model::UserProfile;

    /// Who is asking, as far as the request tells: their address and browser.
    pub fn client() -> Result<accounts::Client, ApiError> {
        let core = core()?;
        let parts = leptos::prelude::use_context::<http::request::Parts>()
            .ok_or_else(|| ApiError::internal("request parts missing"))?;
        Ok(accounts::Client {
            ip: auth::client_ip(
                &parts,
                core.settings.trust_proxy_headers,
                &core.settings.trusted_proxies,
            ),
            user_agent: auth::user_agent(&parts),
        })
    }

    /// Logs in and sets the session cookie.
    pub async fn login(username: &str, password: &str) -> Result<UserProfile, ApiError> {
        let core = core()?;
        let (user, token) = accounts::login(&core, username, password, &client()?).await?;
        auth::set_cookie(&auth::session_cookie(&token, &core));
        Ok(accounts::profile(&user))
    }

    /// Registers and logs the new account in.
    pub async fn register(
        username: &str,
        nickname: &str,
        password: &str,
    ) -> Result<UserProfile, ApiError> {
        let core = core()?;
        let (user, token) =
            accounts::register(&core, username, nickname, password, &client()?).await?;
        auth::set_cookie(&auth::session_cookie(&token, &core));
        Ok(accounts::profile(&user))
    }

    /// Whether the request is a plain form post (no JavaScript): it accepts HTML.
    fn plain_form() -> bool {
        leptos::prelude::use_context::<http::request::Parts>()
            .and_then(|p| p.headers.get(http::header::ACCEPT).cloned())
            .and_then(|v| v.to_str().ok().map(|s| s.contains("text/html")))
            .unwrap_or(false)
    }

    /// For a plain form post, send the browser on to `to`.
    pub fn redirect_plain_form(to: &str) {
        if plain_form() {
            leptos_axum::redirect(to);
        }
    }

    /// A plain form that failed goes back to `page` with the error (as Leptos encodes it for
    /// the form's server function at `path`) and what the user typed in `fields`, so the
    /// page shows the error and keeps the fields filled (never the password).
    pub fn back_to_form(page: &str, path: &str, fields: &[(&str, &str)], err: &ApiError) {
        use leptos::server_fn::error::ServerFnUrlError;
        if !plain_form() {
            return;
        }
        let query: Vec<String> = fields
            .iter()
            .map(|(name, value)| format!("{name}={}", percent_encode(value)))
            .collect();
        let base = format!("http://form.invalid{page}?{}", query.join("&"));
        if let Ok(url) = ServerFnUrlError::new(path, err.clone()).to_url(&base) {
            leptos_axum::redirect(&format!("{}?{}", url.path(), url.query().unwrap_or("")));
        }
    }

    /// Every byte but `A-Z a-z 0-9 - . _ ~` as `%XX`.
    fn percent_encode(value: &str) -> String {
        value
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn percent_encoding_keeps_what_is_safe_and_escapes_the_rest() {
            assert_eq!(super::percent_encode("amy_01"), "amy_01");
            assert_eq!(super::percent_encode("a&b=c d"), "a%26b%3Dc%20d");
            assert_eq!(super::percent_encode("小"), "%E5%B0%8F");
        }
    }
}

/// `POST /api/v1/user/register` `{"username","nickname","password"}`: creates the account and
/// signs it in (sets the session cookie).
#[server(prefix = "/api/v1", endpoint = "user/register", input = Json, output = Json)]
pub async fn register(
    username: String,
    nickname: String,
    password: String,
) -> Result<UserProfile, ApiError> {
    ssr::register(&username, &nickname, &password).await
}

/// The register page's form: as `register`, URL-encoded.
#[server(prefix = "/api/v1", endpoint = "user/register_form", input = PostUrl, output = Json)]
pub async fn register_form(
    username: String,
    nickname: String,
    password: String,
) -> Result<UserProfile, ApiError> {
    use leptos::server_fn::ServerFn;
    match ssr::register(&username, &nickname, &password).await {
        Ok(profile) => {
            ssr::redirect_plain_form("/chats");
            Ok(profile)
        }
        Err(err) => {
            let fields = [
                ("username", username.as_str()),
                ("nickname", nickname.as_str()),
            ];
            ssr::back_to_form("/register", RegisterForm::PATH, &fields, &err);
            Err(err)
        }
    }
}

/// `POST /api/v1/user/login` `{"username","password"}`: sets the session cookie.
#[server(prefix = "/api/v1", endpoint = "user/login", input = Json, output = Json)]
pub async fn login(username: String, password: String) -> Result<UserProfile, ApiError> {
    ssr::login(&username, &password).await
}

/// The login page's form: as `login`, URL-encoded.
#[server(prefix = "/api/v1", endpoint = "user/login_form", input = PostUrl, output = Json)]
pub async fn login_form(username: String, password: String) -> Result<UserProfile, ApiError> {
    use leptos::server_fn::ServerFn;
    match ssr::login(&username, &password).await {
        Ok(profile) => {
            ssr::redirect_plain_form("/chats");
            Ok(profile)
        }
        Err(err) => {
            let fields = [("username", username.as_str())];
            ssr::back_to_form("/login", LoginForm::PATH, &fields, &err);
            Err(err)
        }
    }
}

/// `POST /api/v1/user/logout`: ends this session and clears the cookie. Answers 200 even
/// without a session, so it is safe to repeat.
#[server(prefix = "/api/v1", endpoint = "user/logout", input = Json, output = Json)]
pub async fn logout() -> Result<(), ApiError> {
    let core = ssr::core()?;
    match ssr::current_user().await {
        Ok(me) => ssr::accounts::close_session(&core, &me).await?,
        Err(e) if e.code == crate::error::ErrorCode::Unauthorized => {}
        Err(e) => return Err(e),
    }
    ssr::auth::set_cookie(&ssr::auth::clear_session_cookie(&core));
    Ok(())
}

/// `POST /api/v1/user/me`: the caller's profile.
#[server(prefix = "/api/v1", endpoint = "user/me", input = Json, output = Json)]
pub async fn me() -> Result<UserProfile, ApiError> {
    let me = ssr::current_user().await?;
    Ok(ssr::accounts::profile(&me.user))
}

/// The page's view of the session: like `me`, but "not signed in" is `None`, not an error.
#[server(prefix = "/api/v1", endpoint = "user/session", input = GetUrl, output = Json)]
pub async fn session_user() -> Result<Option<UserProfile>, ApiError> {
    match ssr::current_user().await {
        Ok(me) => Ok(Some(ssr::accounts::profile(&me.user))),
        Err(e) if e.code == crate::error::ErrorCode::Unauthorized => Ok(None),
        Err(e) => Err(e),
    }
}

/// `POST /api/v1/user/update` `{"nickname"?,"gender"?,"signature"?,"mobile"?}`: changes the
/// given fields of the caller's profile; all are validated before any is stored.
#[server(prefix = "/api/v1", endpoint = "user/update", input = Json, output = Json)]
pub async fn update_profile(
    #[server(default)] nickname: Option<String>,
    #[server(default)] gender: Option<String>,
    #[server(default)] signature: Option<String>,
    #[server(default)] mobile: Option<String>,
) -> Result<UserProfile, ApiError> {
    let core = ssr::core()?;
    let me = ssr::current_user().await?;
    let change = ssr::ProfileChange {
        nickname,
        gender,
        signature,
        mobile,
    };
    let user = ssr::accounts::update_profile(&core, &me, change).await?;
    Ok(ssr::accounts::profile(&user))
}

/// `POST /api/v1/user/avatar` `{"media"}`: makes the caller's uploaded picture their avatar
/// (`""`: back to initials); friends' pages show it at once.
#[server(prefix = "/api/v1", endpoint = "user/avatar", input = Json, output = Json)]
pub async fn set_avatar(media: String) -> Result<UserProfile, ApiError> {
    let core = ssr::core()?;
    let me = ssr::current_user().await?;
    let user = ssr::accounts::set_avatar(&core, &me, &media).await?;
    Ok(ssr::accounts::profile(&user))
}

/// `POST /api/v1/user/password` `{"current_password","new_password"}`: changes the password
/// and signs out every other session of the user.
#[server(prefix = "/api/v1", endpoint = "user/password", input = Json, output = Json)]
pub async fn change_password(
    current_password: String,
    new_password: String,
) -> Result<(), ApiError> {
    let core = ssr::core()?;
    let me = ssr::current_user().await?;
    ssr::accounts::change_password(&core, &me, &current_password, &new_password).await
}

/// `POST /api/v1/user/sessions`: the caller's signed-in sessions (devices), this one first.
#[server(prefix = "/api/v1", endpoint = "user/sessions", input = Json, output = Json)]
pub async fn list_sessions() -> Result<Vec<SessionInfo>, ApiError> {
    let core = ssr::core()?;
    let me = ssr::current_user().await?;
    ssr::accounts::list_sessions(&core, &me).await
}

/// `POST /api/v1/user/sessions/revoke` `{"id"}`: signs one of the caller's sessions out
/// (its open connections close at once).
#[server(prefix = "/api/v1", endpoint = "user/sessions/revoke", input = Json, output = Json)]
pub async fn revoke_session(id: String) -> Result<(), ApiError> {
    let core = ssr::core()?;
    let me = ssr::current_user().await?;
    ssr::accounts::revoke_session(&core, &me, &id).await
}

/// `POST /api/v1/user/sessions/revoke_others`: signs out every session of the caller but
/// this one; answers how many ended.
#[server(prefix = "/api/v1", endpoint = "user/sessions/revoke_others", input = Json, output = Json)]
pub async fn revoke_other_sessions() -> Result<u64, ApiError> {
    let core = ssr::core()?;
    let me = ssr::current_user().await?;
    ssr::accounts::revoke_other_sessions(&core, &me).await
}

/// `POST /api/v1/admin/ban` `{"username"}`: suspends an account and ends all its sessions
/// (administrators only).
#[server(prefix = "/api/v1", endpoint = "admin/ban", input = Json, output = Json)]
pub async fn ban_user(username: String) -> Result<(), ApiError> {
    let core = ssr::core()?;
    let me = ssr::current_user().await?;
    ssr::accounts::set_banned(&core, &me, &username, true).await
}

/// `POST /api/v1/admin/unban` `{"username"}`: restores a suspended account.
#[server(prefix = "/api/v1", endpoint = "admin/unban", input = Json, output = Json)]
pub async fn unban_user(username: String) -> Result<(), ApiError> {
    let core = ssr::core()?;
    let me = ssr::current_user().await?;
    ssr::accounts::set_banned(&core, &me, &username, false).await
}
