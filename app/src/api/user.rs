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
    pub use crate::ssr::accounts::{self, ProfileChange};
    pub use crate::ssr::auth::{self, current_user};
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

    /// For a plain form post (no JavaScript), send the browser on to `to`.
    pub fn redirect_plain_form(to: &str) {
        let plain_form = leptos::prelude::use_context::<http::request::Parts>()
            .and_then(|p| p.headers.get(http::header::ACCEPT).cloned())
            .and_then(|v| v.to_str().ok().map(|s| s.contains("text/html")))
            .unwrap_or(false);
        if plain_form {
            leptos_axum::redirect(to);
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
    let profile = ssr::register(&username, &nickname, &password).await?;
    ssr::redirect_plain_form("/chats");
    Ok(profile)
}

/// `POST /api/v1/user/login` `{"username","password"}`: sets the session cookie.
#[server(prefix = "/api/v1", endpoint = "user/login", input = Json, output = Json)]
pub async fn login(username: String, password: String) -> Result<UserProfile, ApiError> {
    ssr::login(&username, &password).await
}

/// The login page's form: as `login`, URL-encoded.
#[server(prefix = "/api/v1", endpoint = "user/login_form", input = PostUrl, output = Json)]
pub async fn login_form(username: String, password: String) -> Result<UserProfile, ApiError> {
    let profile = ssr::login(&username, &password).await?;
    ssr::redirect_plain_form("/chats");
    Ok(profile)
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
