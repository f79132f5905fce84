//! Friendships on the seed's `user_relation` rows, made safe.
//!
//! A request is a row requester → target with relation_type 1. Accepting turns it into 2 and
//! writes the reverse row as 2, in one transaction. Removing deletes the remover's row and
//! marks the other side's row 3 ("removed you"), in one transaction. Declining deletes the
//! request. Every write locks both users' rows first (PostgreSQL/MySQL) or takes SQLite's
//! write lock at `BEGIN`, so concurrent accepts and removes between two people run one after
//! the other and never leave a half friendship. The caller is always the session's user.
use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::auth::CurrentUser;
use super::entity::{community, user_base, user_relation};
use super::{AppCore, RelationEvent, now_ms};
use crate::contacts::{
    CommunitySummary, PublicUser, RelationEntry, RelationType, RoleType, Standing, UserCard,
    limits::*,
};
use crate::error::{ApiError, ErrorCode};
use crate::model::{Gender, Role};
use crate::protocol::RelationChange;

/// The card of a user.
pub fn public_user(user: &user_base::Model) -> PublicUser {
    PublicUser {
        id: user.id.to_string(),
        username: user.username.clone(),
        nickname: user.nickname.clone(),
        avatar: user.avatar.clone(),
        gender: Gender::from_i16(user.gender),
        signature: user.signature.clone(),
    }
}

pub use super::write_txn;

/// Locks the rows of the given users until the transaction ends (in id order, so two
/// transactions locking the same pair cannot deadlock). SQLite needs no row locks: its
/// write transaction already excludes every other writer.
pub async fn lock_users(txn: &DatabaseTransaction, ids: &[Uuid]) -> Result<(), ApiError> {
    if txn.get_database_backend() == DbBackend::Sqlite {
        return Ok(());
    }
    user_base::Entity::find()
        .select_only()
        .column(user_base::Column::Id)
        .filter(user_base::Column::Id.is_in(ids.iter().copied()))
        .order_by_asc(user_base::Column::Id)
        .lock_exclusive()
        .into_tuple::<Uuid>()
        .all(txn)
        .await?;
    Ok(())
}

/// An account that others may find and befriend: not deleted, not banned.
pub async fn find_reachable(
    db: &impl ConnectionTrait,
    username: &str,
) -> Result<user_base::Model, ApiError> {
    let name = username.trim().to_ascii_lowercase();
    user_base::Entity::find()
        .filter(user_base::Column::Username.eq(name))
        .filter(user_base::Column::DeletedAt.is_null())
        .filter(user_base::Column::Role.ne(Role::Banned.as_i16()))
        .one(db)
        .await?
        .ok_or_else(user_not_found)
}

fn user_not_found() -> ApiError {
    ApiError::new(
        ErrorCode::UserNotFound,
        "There is no user with this username.",
    )
}

/// The relation row `user → target` of the given role, if any.
pub async fn row(
    db: &impl ConnectionTrait,
    user: Uuid,
    target: Uuid,
    role: RoleType,
) -> Result<Option<user_relation::Model>, ApiError> {
    Ok(user_relation::Entity::find()
        .filter(user_relation::Column::UserId.eq(user))
        .filter(user_relation::Column::TargetId.eq(target))
        .filter(user_relation::Column::RoleType.eq(role))
        .one(db)
        .await?)
}

/// Writes `user → target` with the given type (and memo, when given), inserting the row if
/// there is none.
pub async fn put_row(
    db: &impl ConnectionTrait,
    existing: Option<user_relation::Model>,
    user: Uuid,
    target: Uuid,
    role: RoleType,
    kind: RelationType,
    memo: Option<&str>,
) -> Result<(), ApiError> {
    let now = now_ms();
    match existing {
        Some(model) => {
            let mut row: user_relation::ActiveModel = model.into();
            row.relation_type = Set(kind);
            if let Some(memo) = memo {
                row.memo = Set(memo.to_owned());
            }
            row.updated_at = Set(now);
            row.update(db).await?;
        }
        None => {
            user_relation::ActiveModel {
                user_id: Set(user),
                target_id: Set(target),
                relation_type: Set(kind),
                role_type: Set(role),
                memo: Set(memo.unwrap_or_default().to_owned()),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(db)
            .await?;
        }
    }
    Ok(())
}

pub async fn delete_row(
    db: &impl ConnectionTrait,
    row: user_relation::Model,
) -> Result<(), ApiError> {
    user_relation::Entity::delete_by_id(row.id).exec(db).await?;
    Ok(())
}

/// A request note: trimmed, one line, at most 100 characters.
pub fn memo(raw: &str) -> Result<String, ApiError> {
    crate::validate::line(
        "memo",
        raw,
        MEMO_MAX,
        &format!("A note is one line of at most {MEMO_MAX} characters."),
    )
}

/// How `me` stands with `other`, from both rows.
fn standing(
    mine: Option<&user_relation::Model>,
    theirs: Option<&user_relation::Model>,
) -> Standing {
    match (
        mine.map(|r| r.relation_type),
        theirs.map(|r| r.relation_type),
    ) {
        (Some(RelationType::Accepted), _) => Standing::Friend,
        (_, Some(RelationType::Requested)) => Standing::RequestedYou,
        (Some(RelationType::Requested), _) => Standing::Requested,
        (Some(RelationType::Removed), _) => Standing::RemovedYou,
        _ => Standing::None,
    }
}

/// Finds users whose username starts with `query` (or equals it), with the caller's standing.
pub async fn search(
    core: &AppCore,
    me: &CurrentUser,
    query: &str,
) -> Result<Vec<UserCard>, ApiError> {
    let query =
        crate::validate::query(query, crate::model::limits::USERNAME_MAX)?.to_ascii_lowercase();
    if query.is_empty() {
        return Ok(Vec::new());
    }
    // Escape LIKE wildcards: usernames may contain `_`.
    let pattern = format!(
        "{}%",
        query
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let users = user_base::Entity::find()
        .filter(
            Expr::col(user_base::Column::Username)
                .like(sea_orm::sea_query::LikeExpr::new(pattern).escape('\\')),
        )
        .filter(user_base::Column::DeletedAt.is_null())
        .filter(user_base::Column::Role.ne(Role::Banned.as_i16()))
        .order_by_asc(Expr::expr(Func::char_length(Expr::col(
            user_base::Column::Username,
        ))))
        .order_by_asc(user_base::Column::Username)
        .limit(SEARCH_RESULTS)
        .all(&core.db)
        .await?;
    let ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
    let rows = user_relation::Entity::find()
        .filter(user_relation::Column::RoleType.eq(RoleType::Friend))
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(user_relation::Column::UserId.eq(me.id()))
                        .add(user_relation::Column::TargetId.is_in(ids.clone())),
                )
                .add(
                    Condition::all()
                        .add(user_relation::Column::TargetId.eq(me.id()))
                        .add(user_relation::Column::UserId.is_in(ids)),
                ),
        )
        .all(&core.db)
        .await?;
    Ok(users
        .iter()
        .map(|u| {
            let standing = if u.id == me.id() {
                Standing::Myself
            } else {
                let mine = rows
                    .iter()
                    .find(|r| r.user_id == me.id() && r.target_id == u.id);
                let theirs = rows
                    .iter()
                    .find(|r| r.user_id == u.id && r.target_id == me.id());
                standing(mine, theirs)
            };
            UserCard {
                user: public_user(u),
                standing,
            }
        })
        .collect())
}

/// Sends (or renews) a friend request. If the other already asked the caller, they become
/// friends at once.
pub async fn request(
    core: &AppCore,
    me: &CurrentUser,
    username: &str,
    memo_text: &str,
) -> Result<Standing, ApiError> {
    let memo = memo(memo_text)?;
    let target = find_reachable(&core.db, username).await?;
    if target.id == me.id() {
        return Err(ApiError::new(
            ErrorCode::CannotAddSelf,
            "You cannot add yourself as a friend.",
        ));
    }
    core.contact_request_allowed(me.id()).await?;
    let txn = write_txn(&core.db).await?;
    lock_users(&txn, &[me.id(), target.id]).await?;
    let mine = row(&txn, me.id(), target.id, RoleType::Friend).await?;
    let theirs = row(&txn, target.id, me.id(), RoleType::Friend).await?;
    let result = match standing(mine.as_ref(), theirs.as_ref()) {
        Standing::Friend => {
            return Err(ApiError::new(
                ErrorCode::AlreadyFriends,
                "You are already friends.",
            ));
        }
        Standing::RequestedYou => {
            // Both asked: that is a yes from each side.
            put_row(
                &txn,
                theirs,
                target.id,
                me.id(),
                RoleType::Friend,
                RelationType::Accepted,
                None,
            )
            .await?;
            put_row(
                &txn,
                mine,
                me.id(),
                target.id,
                RoleType::Friend,
                RelationType::Accepted,
                Some(&memo),
            )
            .await?;
            Standing::Friend
        }
        // The same request again: nothing changes, and the target is not told twice.
        Standing::Requested if mine.as_ref().is_some_and(|r| r.memo == memo) => {
            txn.commit().await?;
            return Ok(Standing::Requested);
        }
        _ => {
            put_row(
                &txn,
                mine,
                me.id(),
                target.id,
                RoleType::Friend,
                RelationType::Requested,
                Some(&memo),
            )
            .await?;
            Standing::Requested
        }
    };
    txn.commit().await?;
    let change = if result == Standing::Friend {
        RelationChange::FriendAdded
    } else {
        RelationChange::FriendRequest
    };
    let mut events = vec![event(target.id, change, &me.user.username)];
    if result == Standing::Friend {
        events.push(event(me.id(), change, &target.username));
    }
    core.announce(events);
    Ok(result)
}

fn event(user: Uuid, change: RelationChange, username: &str) -> RelationEvent {
    RelationEvent {
        user,
        change,
        username: Some(username.to_owned()),
        community_id: None,
    }
}

fn no_request() -> ApiError {
    ApiError::not_found("There is no pending friend request from this user.")
}

/// Accepts the request `username` sent to the caller.
pub async fn accept(core: &AppCore, me: &CurrentUser, username: &str) -> Result<(), ApiError> {
    let requester = find_reachable(&core.db, username)
        .await
        .map_err(|_| no_request())?;
    let txn = write_txn(&core.db).await?;
    lock_users(&txn, &[me.id(), requester.id]).await?;
    let theirs = row(&txn, requester.id, me.id(), RoleType::Friend).await?;
    if theirs.as_ref().map(|r| r.relation_type) != Some(RelationType::Requested) {
        return Err(no_request());
    }
    let mine = row(&txn, me.id(), requester.id, RoleType::Friend).await?;
    put_row(
        &txn,
        theirs,
        requester.id,
        me.id(),
        RoleType::Friend,
        RelationType::Accepted,
        None,
    )
    .await?;
    put_row(
        &txn,
        mine,
        me.id(),
        requester.id,
        RoleType::Friend,
        RelationType::Accepted,
        None,
    )
    .await?;
    txn.commit().await?;
    core.announce(vec![
        event(requester.id, RelationChange::FriendAdded, &me.user.username),
        event(me.id(), RelationChange::FriendAdded, &requester.username),
    ]);
    Ok(())
}

/// Declines (deletes) the request `username` sent to the caller.
pub async fn decline(core: &AppCore, me: &CurrentUser, username: &str) -> Result<(), ApiError> {
    let requester = super::accounts::any_user_by_name(&core.db, username)
        .await?
        .ok_or_else(no_request)?;
    let txn = write_txn(&core.db).await?;
    lock_users(&txn, &[me.id(), requester.id]).await?;
    let theirs = row(&txn, requester.id, me.id(), RoleType::Friend).await?;
    match theirs {
        Some(r) if r.relation_type == RelationType::Requested => delete_row(&txn, r).await?,
        _ => return Err(no_request()),
    }
    txn.commit().await?;
    core.announce(vec![event(
        me.id(),
        RelationChange::FriendRequest,
        &requester.username,
    )]);
    Ok(())
}

/// Removes `username` from the caller's contacts: a friend is unfriended (they keep a
/// "removed you" entry), a pending request of the caller's is withdrawn, and a "removed you"
/// entry is dismissed.
pub async fn remove(core: &AppCore, me: &CurrentUser, username: &str) -> Result<(), ApiError> {
    let not_related = || ApiError::not_found("This user is not in your contacts.");
    let other = super::accounts::any_user_by_name(&core.db, username)
        .await?
        .ok_or_else(not_related)?;
    let txn = write_txn(&core.db).await?;
    lock_users(&txn, &[me.id(), other.id]).await?;
    let mine = row(&txn, me.id(), other.id, RoleType::Friend)
        .await?
        .ok_or_else(not_related)?;
    let change = match mine.relation_type {
        RelationType::Accepted => RelationChange::FriendRemoved,
        _ => RelationChange::FriendRequest,
    };
    if mine.relation_type == RelationType::Accepted
        && let Some(theirs) = row(&txn, other.id, me.id(), RoleType::Friend).await?
        && theirs.relation_type == RelationType::Accepted
    {
        put_row(
            &txn,
            Some(theirs),
            other.id,
            me.id(),
            RoleType::Friend,
            RelationType::Removed,
            None,
        )
        .await?;
    }
    delete_row(&txn, mine).await?;
    txn.commit().await?;
    core.announce(vec![
        event(other.id, change, &me.user.username),
        event(me.id(), change, &other.username),
    ]);
    Ok(())
}

/// Whether two users are friends (both rows accepted).
pub async fn are_friends(db: &impl ConnectionTrait, a: Uuid, b: Uuid) -> Result<bool, ApiError> {
    let rows = user_relation::Entity::find()
        .filter(user_relation::Column::RoleType.eq(RoleType::Friend))
        .filter(user_relation::Column::RelationType.eq(RelationType::Accepted))
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(user_relation::Column::UserId.eq(a))
                        .add(user_relation::Column::TargetId.eq(b)),
                )
                .add(
                    Condition::all()
                        .add(user_relation::Column::UserId.eq(b))
                        .add(user_relation::Column::TargetId.eq(a)),
                ),
        )
        .count(db)
        .await?;
    Ok(rows == 2)
}

/// The seed's listing, always for the caller: by `(relation_type, role_type)`.
///
/// | relation_type, role_type | lists |
/// |---|---|
/// | 1, 1 | friend requests the caller received (`sent`: the ones the caller sent) |
/// | 2, 1 | friends |
/// | 3, 1 | users who removed the caller |
/// | 1, 2 | requests to join groups the caller owns (`sent`: the caller's own join requests) |
/// | 2, 2 | groups the caller is a member of |
pub async fn list(
    core: &AppCore,
    me: &CurrentUser,
    kind: i16,
    role: i16,
    sent: bool,
) -> Result<Vec<RelationEntry>, ApiError> {
    let unlisted = || {
        ApiError::invalid(
            "relation_type",
            "List relation_type 1, 2 or 3 with role_type 1, or relation_type 1 or 2 with role_type 2.",
        )
    };
    let kind = RelationType::try_from(kind).map_err(|_| unlisted())?;
    let role = RoleType::try_from(role).map_err(|_| unlisted())?;
    let base = user_relation::Entity::find()
        .filter(user_relation::Column::RelationType.eq(kind))
        .filter(user_relation::Column::RoleType.eq(role))
        .order_by_desc(user_relation::Column::UpdatedAt);
    // Which rows, and which column of each names the other user.
    let (rows, other_is_target) = match (kind, role) {
        (RelationType::Requested, RoleType::Friend) if !sent => (
            base.filter(user_relation::Column::TargetId.eq(me.id()))
                .all(&core.db)
                .await?,
            false,
        ),
        (
            RelationType::Requested | RelationType::Accepted | RelationType::Removed,
            RoleType::Friend,
        ) => (
            base.filter(user_relation::Column::UserId.eq(me.id()))
                .all(&core.db)
                .await?,
            true,
        ),
        (RelationType::Requested, RoleType::Group) if !sent => {
            let owned: Vec<Uuid> = community::Entity::find()
                .select_only()
                .column(community::Column::Id)
                .filter(community::Column::OwnerId.eq(me.id()))
                .filter(community::Column::DeletedAt.is_null())
                .into_tuple()
                .all(&core.db)
                .await?;
            (
                base.filter(user_relation::Column::TargetId.is_in(owned))
                    .all(&core.db)
                    .await?,
                false,
            )
        }
        (RelationType::Requested | RelationType::Accepted, RoleType::Group) => (
            base.filter(user_relation::Column::UserId.eq(me.id()))
                .all(&core.db)
                .await?,
            false,
        ),
        _ => return Err(unlisted()),
    };
    let user_ids: Vec<Uuid> = rows
        .iter()
        .map(|r| {
            if other_is_target {
                r.target_id
            } else {
                r.user_id
            }
        })
        .collect();
    let users: HashMap<Uuid, user_base::Model> = user_base::Entity::find()
        .filter(user_base::Column::Id.is_in(user_ids))
        .all(&core.db)
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
    let communities: HashMap<Uuid, community::Model> = if role == RoleType::Group {
        community::Entity::find()
            .filter(community::Column::Id.is_in(rows.iter().map(|r| r.target_id)))
            .filter(community::Column::DeletedAt.is_null())
            .all(&core.db)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect()
    } else {
        HashMap::new()
    };
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let other = users.get(&if other_is_target {
                r.target_id
            } else {
                r.user_id
            })?;
            if other.deleted_at.is_some() {
                return None;
            }
            let community = if role == RoleType::Group {
                let c = communities.get(&r.target_id)?;
                Some(CommunitySummary {
                    id: c.id.to_string(),
                    name: c.name.clone(),
                    avatar: c.avatar.clone(),
                })
            } else {
                None
            };
            let card = public_user(other);
            Some(RelationEntry {
                username: card.username,
                nickname: card.nickname,
                avatar: card.avatar,
                user_id: card.id,
                gender: card.gender,
                signature: card.signature,
                relation_type: r.relation_type,
                role_type: r.role_type,
                memo: r.memo,
                community,
                updated_at: r.updated_at,
            })
        })
        .collect())
}
