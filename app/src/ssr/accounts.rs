//! Account services: register, log in, sessions, profile, password. Each takes the
//! [`AppCore`] and already-authenticated callers; authorization happens in the callers'
//! extractor, validation here.
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, SqlErr, TransactionTrait,
};
use uuid::Uuid;

use super::auth::{self, CurrentUser};
use super::entity::{user_base, user_session};
use super::{AppCore, now_ms};
use crate::error::{ApiError, ErrorCode};
use crate::model::{Gender, Role, UserProfile};
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

/// Creates an account. The username is case-folded, so `Bob` collides with `bob`.
pub async fn register(
    core: &AppCore,
    username: &str,
    nickname: &str,
    password: &str,
) -> Result<user_base::Model, ApiError> {
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
    let hash = auth::hash_password(password.to_owned()).await?;
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
    match row.insert(&core.db).await {
        Ok(model) => Ok(model),
        Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(username_taken())
        }
        Err(err) => Err(err.into()),
    }
}

/// Checks a username and password and opens a session. Failures never say whether the
/// username exists, and count against the username and the address in the throttle.
pub async fn login(
    core: &AppCore,
    username: &str,
    password: &str,
    ip: &str,
    user_agent: &str,
) -> Result<(user_base::Model, String), ApiError> {
    let key = username.trim().to_ascii_lowercase();
    core.throttle.check(&key, ip)?;
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
            core.throttle.record_failure(&key, ip);
            return Err(ApiError::new(
                ErrorCode::InvalidCredentials,
                "The username or password is incorrect.",
            ));
        }
    };
    core.throttle.record_success(&key);
    if Role::from_i16(user.role) == Role::Banned {
        return Err(ApiError::new(
            ErrorCode::AccountBanned,
            "This account has been suspended.",
        ));
    }
    let token = open_session(core, user.id, ip, user_agent).await?;
    Ok((user, token))
}

/// Stores a new session for `user_id` and returns the cookie token.
pub async fn open_session(
    core: &AppCore,
    user_id: Uuid,
    ip: &str,
    user_agent: &str,
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
        user_agent: Set(user_agent.chars().take(255).collect()),
        ip: Set(ip.chars().take(64).collect()),
    }
    .insert(&core.db)
    .await?;
    Ok(token)
}

/// The user behind a session token, if the session is live and the account usable.
pub async fn authenticate(core: &AppCore, token: &str) -> Result<CurrentUser, ApiError> {
    let id = auth::token_hash(token);
    let session = user_session::Entity::find_by_id(id.clone())
        .filter(user_session::Column::ExpiresAt.gt(now_ms()))
        .one(&core.db)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let user = user_base::Entity::find_by_id(session.user_id)
        .filter(user_base::Column::DeletedAt.is_null())
        .one(&core.db)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if Role::from_i16(user.role) == Role::Banned {
        return Err(ApiError::new(
            ErrorCode::AccountBanned,
            "This account has been suspended.",
        ));
    }
    Ok(CurrentUser {
        user,
        session_id: id,
    })
}

/// Ends one session.
pub async fn close_session(core: &AppCore, session_id: &str) -> Result<(), ApiError> {
    user_session::Entity::delete_by_id(session_id.to_owned())
        .exec(&core.db)
        .await?;
    Ok(())
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
    Ok(row.update(&core.db).await?)
}

/// Changes the password after checking the current one, and ends every other session of
/// the user (the one making the change stays signed in).
pub async fn change_password(
    core: &AppCore,
    me: &CurrentUser,
    current: &str,
    new: &str,
) -> Result<(), ApiError> {
    validate::password("new_password", new)?;
    if !auth::verify_password(current.to_owned(), Some(me.user.password_hash.clone())).await? {
        return Err(ApiError::new(
            ErrorCode::WrongPassword,
            "The current password is incorrect.",
        ));
    }
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
    Ok(())
}
