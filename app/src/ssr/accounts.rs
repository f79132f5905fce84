//! Account services: register, log in, sessions, profile, password. Each takes the
//! [`AppCore`] and already-authenticated callers; authorization happens in the callers'
//! extractor, validation here.
use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use http::request::Parts;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QuerySelect, Set, SqlErr, TransactionTrait,
};
use uuid::Uuid;

use super::auth::{self, CurrentUser};
use super::entity::{user_base, user_session};
use super::{AppCore, EndedSessions, now_ms};
use crate::error::{ApiError, ErrorCode};
use crate::model::{Gender, Role, SessionInfo, UserProfile};
use crate::validate;

/// What the API shows of an account to its owner.
pub fn profile(user: &user_base::Model) -> UserProfile {
    UserProfile {
        id: user.id.to_string(),
        username: user.username.clone(),
        nickname: user.nickname.clone(),
        gender: Gender::from_i16(user.gender),
        signature: user.signature.clone(),
        mobile: user.mobile.clone(),
        avatar: user.avatar.clone(),
        role: Role::from_i16(user.role),
        created_at: user.created_at,
    }
}

fn username_taken() -> ApiError {
    ApiError::new(ErrorCode::UsernameTaken, "This username is already taken.")
}

/// Creates an account and signs it in: answers the account and the new session's cookie
/// token. The username is case-folded, so `Bob` collides with `bob`. Each creation counts
/// against the address (`REGISTER_MAX_PER_IP`), and the password is hashed once.
pub async fn register(
    core: &AppCore,
    username: &str,
    nickname: &str,
    password: &str,
    client: &Client,
) -> Result<(user_base::Model, String), ApiError> {
    let username = validate::username(username)?;
    let nickname = validate::nickname(nickname)?;
    validate::password("password", password)?;
    let existing = user_base::Entity::find()
        .filter(user_base::Column::Username.eq(username.as_str()))
        .one(&core.db)
        .await?;
    if existing.is_some() {
        return Err(username_taken());
    }
    let attempt = core.throttle.register(&client.ip).await?;
    let hash = auth::hash_password(password.to_owned()).await?;
    attempt.succeeded();
    let now = now_ms();
    let row = user_base::ActiveModel {
        id: Set(Uuid::now_v7()),
        username: Set(username),
        nickname: Set(nickname),
        password_hash: Set(hash),
        role: Set(Role::Normal.as_i16()),
        gender: Set(Gender::Unspecified.as_i16()),
        signature: Set(String::new()),
        mobile: Set(String::new()),
        avatar: Set(String::new()),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        last_seen_at: Set(None),
    };
    // Two registrations of one name can race past the check above; the unique index decides.
    let user = match row.insert(&core.db).await {
        Ok(model) => model,
        Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(username_taken());
        }
        Err(err) => return Err(err.into()),
    };
    let token = open_session(core, user.id, client).await?;
    Ok((user, token))
}

/// Where a request comes from, for the throttle and the session list.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: String,
    pub user_agent: String,
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidCredentials,
        "The username or password is incorrect.",
    )
}

/// Checks a username and password and opens a session. Failures never say whether the
/// username exists. The attempt is reserved in the throttle before the password is hashed.
pub async fn login(
    core: &AppCore,
    username: &str,
    password: &str,
    client: &Client,
) -> Result<(user_base::Model, String), ApiError> {
    // A name that cannot be a username names no account: it counts against the address
    // only, and no hash is computed for it.
    let Ok(key) = validate::username(username) else {
        core.throttle.login(None, &client.ip).await?.failed();
        return Err(invalid_credentials());
    };
    let attempt = core.throttle.login(Some(&key), &client.ip).await?;
    let user = user_base::Entity::find()
        .filter(user_base::Column::Username.eq(key.as_str()))
        .filter(user_base::Column::DeletedAt.is_null())
        .one(&core.db)
        .await?;
    let ok = auth::verify_password(
        password.to_owned(),
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await?;
    let user = match user {
        Some(user) if ok => user,
        _ => {
            attempt.failed();
            return Err(invalid_credentials());
        }
    };
    attempt.succeeded();
    if Role::from_i16(user.role) == Role::Banned {
        return Err(banned());
    }
    let token = open_session(core, user.id, client).await?;
    Ok((user, token))
}

fn banned() -> ApiError {
    ApiError::new(ErrorCode::AccountBanned, "This account has been suspended.")
}

/// Stores a new session for `user_id` and returns the cookie token.
pub async fn open_session(
    core: &AppCore,
    user_id: Uuid,
    client: &Client,
) -> Result<String, ApiError> {
    let (token, id) = auth::new_session_token()?;
    let now = now_ms();
    let ttl_ms = i64::try_from(core.settings.session_ttl.as_millis()).unwrap_or(i64::MAX / 2);
    user_session::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        created_at: Set(now),
        expires_at: Set(now.saturating_add(ttl_ms)),
        last_seen_at: Set(now),
        user_agent: Set(client.user_agent.chars().take(255).collect()),
        ip: Set(client.ip.chars().take(64).collect()),
    }
    .insert(&core.db)
    .await?;
    Ok(token)
}

/// A session's "last active" time is written at most this often (milliseconds).
const TOUCH_EVERY_MS: i64 = 5 * 60 * 1000;

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let core = parts
            .extensions
            .get::<Arc<AppCore>>()
            .cloned()
            .ok_or_else(|| ApiError::internal("AppCore missing from request extensions"))?;
        let token = auth::cookie_value(&parts.headers, auth::SESSION_COOKIE)
            .ok_or_else(ApiError::unauthorized)?;
        authenticate(&core, &token).await
    }
}

/// Any account by username, banned or deleted or not: for undoing relations with it and
/// for group members who may have been banned since they joined.
pub async fn any_user_by_name(
    db: &impl ConnectionTrait,
    username: &str,
) -> Result<Option<user_base::Model>, ApiError> {
    Ok(user_base::Entity::find()
        .filter(user_base::Column::Username.eq(username.trim().to_ascii_lowercase()))
        .one(db)
        .await?)
}

/// Stores when each user was last online (Unix milliseconds), all in one transaction.
pub async fn record_last_seen(
    db: &DatabaseConnection,
    latest: &std::collections::HashMap<Uuid, i64>,
) -> Result<(), ApiError> {
    let txn = super::write_txn(db).await?;
    for (user, at) in latest {
        user_base::Entity::update_many()
            .set(user_base::ActiveModel {
                last_seen_at: Set(Some(*at)),
                ..Default::default()
            })
            .filter(user_base::Column::Id.eq(*user))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// The caller of the current server function, or 401.
pub async fn current_user() -> Result<CurrentUser, ApiError> {
    let mut parts = leptos::prelude::use_context::<Parts>()
        .ok_or_else(|| ApiError::internal("request parts missing"))?;
    CurrentUser::from_request_parts(&mut parts, &()).await
}

/// The user behind a session token, if the session is live and the account usable.
pub async fn authenticate(core: &AppCore, token: &str) -> Result<CurrentUser, ApiError> {
    let id = auth::token_hash(token);
    let now = now_ms();
    let session = user_session::Entity::find_by_id(id.clone())
        .filter(user_session::Column::ExpiresAt.gt(now))
        .one(&core.db)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let user = user_base::Entity::find_by_id(session.user_id)
        .filter(user_base::Column::DeletedAt.is_null())
        .one(&core.db)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if Role::from_i16(user.role) == Role::Banned {
        return Err(banned());
    }
    if now - session.last_seen_at > TOUCH_EVERY_MS {
        touch_sessions(&core.db, std::slice::from_ref(&id)).await;
    }
    Ok(CurrentUser {
        user,
        session_id: id,
        session_expires_at: session.expires_at,
    })
}

/// Ends one session.
pub async fn close_session(core: &AppCore, me: &CurrentUser) -> Result<(), ApiError> {
    user_session::Entity::delete_by_id(me.session_id.clone())
        .exec(&core.db)
        .await?;
    core.sessions_ended(me.id(), EndedSessions::One(me.session_id.clone()));
    Ok(())
}

/// The caller's live sessions, the current one first, then the most recently active.
pub async fn list_sessions(core: &AppCore, me: &CurrentUser) -> Result<Vec<SessionInfo>, ApiError> {
    let mut rows = user_session::Entity::find()
        .filter(user_session::Column::UserId.eq(me.id()))
        .filter(user_session::Column::ExpiresAt.gt(now_ms()))
        .all(&core.db)
        .await?;
    rows.sort_by_key(|r| (r.id != me.session_id, std::cmp::Reverse(r.last_seen_at)));
    Ok(rows
        .into_iter()
        .map(|r| SessionInfo {
            current: r.id == me.session_id,
            device: device_label(&r.user_agent),
            id: r.id,
            user_agent: r.user_agent,
            ip: r.ip,
            created_at: r.created_at,
            last_active_at: r.last_seen_at,
            expires_at: r.expires_at,
        })
        .collect())
}

/// Ends one of the caller's sessions (its sockets close at once). Another user's session,
/// or none, is `not_found`.
pub async fn revoke_session(core: &AppCore, me: &CurrentUser, id: &str) -> Result<(), ApiError> {
    let gone = user_session::Entity::delete_many()
        .filter(user_session::Column::Id.eq(id))
        .filter(user_session::Column::UserId.eq(me.id()))
        .exec(&core.db)
        .await?;
    if gone.rows_affected == 0 {
        return Err(ApiError::not_found("There is no such session."));
    }
    core.sessions_ended(me.id(), EndedSessions::One(id.to_owned()));
    Ok(())
}

/// Ends every session of the caller but this one. Answers how many ended.
pub async fn revoke_other_sessions(core: &AppCore, me: &CurrentUser) -> Result<u64, ApiError> {
    let gone = user_session::Entity::delete_many()
        .filter(user_session::Column::UserId.eq(me.id()))
        .filter(user_session::Column::Id.ne(me.session_id.as_str()))
        .exec(&core.db)
        .await?;
    core.sessions_ended(me.id(), EndedSessions::AllBut(me.session_id.clone()));
    Ok(gone.rows_affected)
}

/// Which of the sessions `ids` still authenticate: not ended, not expired, their account
/// neither deleted nor suspended. The relay asks this for its open sockets now and then,
/// so an ending it was not told about (another server process, the database edited by
/// hand) closes them too.
pub async fn live_sessions(
    db: &impl ConnectionTrait,
    ids: &[String],
) -> Result<HashSet<String>, ApiError> {
    let now = now_ms();
    let mut live = HashSet::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, Uuid)> = user_session::Entity::find()
            .select_only()
            .column(user_session::Column::Id)
            .column(user_session::Column::UserId)
            .filter(user_session::Column::Id.is_in(chunk.iter().cloned()))
            .filter(user_session::Column::ExpiresAt.gt(now))
            .into_tuple()
            .all(db)
            .await?;
        let users: HashSet<Uuid> = rows.iter().map(|(_, u)| *u).collect();
        let usable: HashSet<Uuid> = user_base::Entity::find()
            .select_only()
            .column(user_base::Column::Id)
            .filter(user_base::Column::Id.is_in(users))
            .filter(user_base::Column::DeletedAt.is_null())
            .filter(user_base::Column::Role.ne(Role::Banned.as_i16()))
            .into_tuple()
            .all(db)
            .await?
            .into_iter()
            .collect();
        live.extend(
            rows.into_iter()
                .filter(|(_, u)| usable.contains(u))
                .map(|(id, _)| id),
        );
    }
    Ok(live)
}

/// Records that the sessions `ids` are in use now (those not recorded within the last few
/// minutes). Best effort: a failure is logged, nothing else.
pub async fn touch_sessions(db: &impl ConnectionTrait, ids: &[String]) {
    let now = now_ms();
    for chunk in ids.chunks(500) {
        let result = user_session::Entity::update_many()
            .col_expr(user_session::Column::LastSeenAt, Expr::value(now))
            .filter(user_session::Column::Id.is_in(chunk.iter().cloned()))
            .filter(user_session::Column::LastSeenAt.lt(now - TOUCH_EVERY_MS))
            .exec(db)
            .await;
        if let Err(err) = result {
            tracing::warn!(%err, "could not record session activity");
        }
    }
}

/// Suspends (`banned`) or restores an account. Suspending ends all its sessions at once.
/// Only an admin may; nobody may suspend themself.
pub async fn set_banned(
    core: &AppCore,
    admin: &CurrentUser,
    username: &str,
    banned: bool,
) -> Result<(), ApiError> {
    if Role::from_i16(admin.user.role) != Role::Admin {
        return Err(ApiError::forbidden("Only an administrator may do this."));
    }
    let name = validate::username(username).map_err(|_| no_such_user())?;
    let user = user_base::Entity::find()
        .filter(user_base::Column::Username.eq(name.as_str()))
        .filter(user_base::Column::DeletedAt.is_null())
        .one(&core.db)
        .await?
        .ok_or_else(no_such_user)?;
    if user.id == admin.id() {
        return Err(ApiError::forbidden("You cannot suspend your own account."));
    }
    let role = if banned { Role::Banned } else { Role::Normal };
    let txn = core.db.begin().await?;
    user_base::Entity::update_many()
        .col_expr(user_base::Column::Role, Expr::value(role.as_i16()))
        .col_expr(user_base::Column::UpdatedAt, Expr::value(now_ms()))
        .filter(user_base::Column::Id.eq(user.id))
        .exec(&txn)
        .await?;
    if banned {
        user_session::Entity::delete_many()
            .filter(user_session::Column::UserId.eq(user.id))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    if banned {
        core.sessions_ended(user.id, EndedSessions::All);
    }
    Ok(())
}

fn no_such_user() -> ApiError {
    ApiError::new(ErrorCode::UserNotFound, "There is no user with this name.")
}

/// Makes an existing account an administrator (the `server make-admin` command).
pub async fn make_admin(db: &DatabaseConnection, username: &str) -> Result<(), ApiError> {
    let name = validate::username(username).map_err(|_| no_such_user())?;
    let done = user_base::Entity::update_many()
        .col_expr(user_base::Column::Role, Expr::value(Role::Admin.as_i16()))
        .filter(user_base::Column::Username.eq(name.as_str()))
        .filter(user_base::Column::DeletedAt.is_null())
        .exec(db)
        .await?;
    if done.rows_affected == 0 {
        return Err(no_such_user());
    }
    Ok(())
}

/// A short name for the device behind a user agent: "Firefox on Windows", "Safari on
/// iPhone", "Chrome"; empty when nothing is recognised.
pub fn device_label(user_agent: &str) -> String {
    let ua = user_agent;
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("OPR/") {
        "Opera"
    } else if ua.contains("Firefox/") {
        "Firefox"
    } else if ua.contains("Chromium/") {
        "Chromium"
    } else if ua.contains("Chrome/") || ua.contains("CriOS/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else {
        ""
    };
    let system = if ua.contains("iPhone") {
        "iPhone"
    } else if ua.contains("iPad") {
        "iPad"
    } else if ua.contains("Android") {
        "Android"
    } else if ua.contains("Windows") {
        "Windows"
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        "macOS"
    } else if ua.contains("CrOS") {
        "ChromeOS"
    } else if ua.contains("Linux") {
        "Linux"
    } else {
        ""
    };
    match (browser, system) {
        ("", "") => String::new(),
        (b, "") => b.to_owned(),
        ("", s) => s.to_owned(),
        (b, s) => format!("{b} on {s}"),
    }
}

/// The profile fields a user may change; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct ProfileChange {
    pub nickname: Option<String>,
    pub gender: Option<String>,
    pub signature: Option<String>,
    pub mobile: Option<String>,
}

/// Applies a profile change after validating every given field (all or nothing).
pub async fn update_profile(
    core: &AppCore,
    me: &CurrentUser,
    change: ProfileChange,
) -> Result<user_base::Model, ApiError> {
    let mut row: user_base::ActiveModel = me.user.clone().into();
    if let Some(nickname) = change.nickname {
        row.nickname = Set(validate::nickname(&nickname)?);
    }
    if let Some(gender) = change.gender {
        let gender = Gender::parse(&gender).ok_or_else(|| {
            ApiError::invalid("gender", "Gender is one of unspecified, male, female.")
        })?;
        row.gender = Set(gender.as_i16());
    }
    if let Some(signature) = change.signature {
        row.signature = Set(validate::signature(&signature)?);
    }
    if let Some(mobile) = change.mobile {
        row.mobile = Set(validate::mobile(&mobile)?);
    }
    row.updated_at = Set(now_ms());
    let user = row.update(&core.db).await?;
    if user.nickname != me.user.nickname {
        announce_profile(core, &user).await?;
    }
    Ok(user)
}

/// Makes the caller's own uploaded picture their avatar (its square thumbnail is what
/// everyone sees), or with `""` goes back to initials. Every signed-in user may fetch an
/// avatar from then on.
pub async fn set_avatar(
    core: &AppCore,
    me: &CurrentUser,
    media_id: &str,
) -> Result<user_base::Model, ApiError> {
    let avatar = super::media::avatar_url(&core.db, me, media_id).await?;
    let mut row: user_base::ActiveModel = me.user.clone().into();
    row.avatar = Set(avatar);
    row.updated_at = Set(now_ms());
    let user = row.update(&core.db).await?;
    announce_profile(core, &user).await?;
    Ok(user)
}

/// Tells everyone who shows the user's name or picture (friends, the members of the user's
/// groups, and the user's other pages) that one of them changed: their pages reload the
/// lists that carry both.
async fn announce_profile(core: &AppCore, user: &user_base::Model) -> Result<(), ApiError> {
    let mut people: std::collections::BTreeSet<Uuid> = core
        .permissions
        .friends_of(&core.db, user.id)
        .await?
        .into_iter()
        .collect();
    for group in super::messages::my_groups(&core.db, user.id).await? {
        people.extend(super::messages::group_members(&core.db, group).await?);
    }
    people.insert(user.id);
    core.announce(
        people
            .into_iter()
            .map(|to| super::RelationEvent {
                user: to,
                change: crate::protocol::RelationChange::ProfileChanged,
                username: Some(user.username.clone()),
                community_id: None,
            })
            .collect(),
    );
    Ok(())
}

/// Changes the password after checking the current one, and ends every other session of
/// the user (the one making the change stays signed in; the others' sockets close at once).
/// Wrong current passwords are throttled per account like logins.
pub async fn change_password(
    core: &AppCore,
    me: &CurrentUser,
    current: &str,
    new: &str,
) -> Result<(), ApiError> {
    validate::password("new_password", new)?;
    let attempt = core.throttle.password_check(me.id()).await?;
    if !auth::verify_password(current.to_owned(), Some(me.user.password_hash.clone())).await? {
        attempt.failed();
        return Err(ApiError::new(
            ErrorCode::WrongPassword,
            "The current password is incorrect.",
        ));
    }
    attempt.succeeded();
    let hash = auth::hash_password(new.to_owned()).await?;
    let txn = core.db.begin().await?;
    user_base::Entity::update_many()
        .col_expr(user_base::Column::PasswordHash, Expr::value(hash))
        .col_expr(user_base::Column::UpdatedAt, Expr::value(now_ms()))
        .filter(user_base::Column::Id.eq(me.id()))
        .exec(&txn)
        .await?;
    user_session::Entity::delete_many()
        .filter(user_session::Column::UserId.eq(me.id()))
        .filter(user_session::Column::Id.ne(me.session_id.as_str()))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    core.sessions_ended(me.id(), EndedSessions::AllBut(me.session_id.clone()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::device_label;

    #[test]
    fn devices_are_named_from_the_user_agent() {
        let chrome_linux = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
        assert_eq!(device_label(chrome_linux), "Chrome on Linux");
        let safari_iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1";
        assert_eq!(device_label(safari_iphone), "Safari on iPhone");
        let firefox_windows =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0";
        assert_eq!(device_label(firefox_windows), "Firefox on Windows");
        let edge_mac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36 Edg/140.0.0.0";
        assert_eq!(device_label(edge_mac), "Edge on macOS");
        assert_eq!(device_label("curl/8.5.0"), "");
        assert_eq!(device_label(""), "");
    }
}
