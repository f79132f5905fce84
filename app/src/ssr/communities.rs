//! Groups: a `community` row plus membership rows in `user_relation` (role_type 2, the
//! community id as target). Every change locks the community row first (SQLite: the write
//! lock), so approvals, removals, transfers and the member limit never race each other.
//! Only the owner may approve, decline, edit, remove members, transfer and dissolve.
use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::auth::CurrentUser;
use super::entity::{community, user_base, user_relation};
use super::relations::{delete_row, find_reachable, memo, public_user, put_row, row, write_txn};
use super::{AppCore, RelationEvent, now_ms};
use crate::contacts::{Community, Member, Membership, RelationType, RoleType, limits::*};
use crate::error::{ApiError, ErrorCode};
use crate::protocol::RelationChange;

/// Tells every member of `group` (and `extra` users) that the group changed.
async fn announce_group(
    core: &AppCore,
    group: Uuid,
    members: Vec<Uuid>,
    extra: &[(Uuid, RelationChange)],
) {
    let mut events: Vec<RelationEvent> = members
        .into_iter()
        .filter(|m| !extra.iter().any(|(u, _)| u == m))
        .map(|user| RelationEvent {
            user,
            change: RelationChange::GroupChanged,
            username: None,
            community_id: Some(group),
        })
        .collect();
    events.extend(extra.iter().map(|(user, change)| RelationEvent {
        user: *user,
        change: *change,
        username: None,
        community_id: Some(group),
    }));
    core.announce(events);
}

async fn members_now(core: &AppCore, group: Uuid) -> Vec<Uuid> {
    super::messages::group_members(&core.db, group)
        .await
        .unwrap_or_default()
}

fn group_not_found() -> ApiError {
    ApiError::not_found("There is no such group.")
}

fn not_owner() -> ApiError {
    ApiError::new(ErrorCode::NotOwner, "Only the group's owner may do this.")
}

/// Parses a group id; anything that is not one names no group.
pub fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw.trim()).map_err(|_| group_not_found())
}

/// A group's name: 1–32 characters, one line.
fn name(raw: &str) -> Result<String, ApiError> {
    let rule = format!("A group name is one line of 1 to {GROUP_NAME_MAX} characters.");
    let name = crate::validate::line("name", raw, GROUP_NAME_MAX, &rule)?;
    if name.is_empty() {
        return Err(ApiError::invalid("name", rule));
    }
    Ok(name)
}

fn description(raw: &str) -> Result<String, ApiError> {
    crate::validate::lines(
        "description",
        raw,
        GROUP_DESCRIPTION_MAX,
        &format!(
            "A description has at most {GROUP_DESCRIPTION_MAX} characters and no control characters."
        ),
    )
}

/// An avatar: empty, an http(s) URL, or a path on this site (`/…`, but not `//…` or `/\…`,
/// which browsers read as another host), without spaces, quotes or control characters.
pub fn avatar(raw: &str) -> Result<String, ApiError> {
    let url = raw.trim();
    let site_path = url.starts_with('/') && !url.starts_with("//") && !url.starts_with("/\\");
    let ok = url.is_empty()
        || ((url.starts_with("https://") || url.starts_with("http://") || site_path)
            && url.len() <= AVATAR_URL_MAX
            && !url.chars().any(|c| {
                c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>' | '\\')
            }));
    if !ok {
        return Err(ApiError::invalid(
            "avatar",
            "An avatar is an http(s) address, a path on this site, or empty.",
        ));
    }
    Ok(url.to_owned())
}

/// A live (not dissolved) group.
async fn live(db: &impl ConnectionTrait, id: Uuid) -> Result<community::Model, ApiError> {
    community::Entity::find_by_id(id)
        .filter(community::Column::DeletedAt.is_null())
        .one(db)
        .await?
        .ok_or_else(group_not_found)
}

/// The live group, its row locked until the transaction ends.
async fn lock(txn: &DatabaseTransaction, id: Uuid) -> Result<community::Model, ApiError> {
    let mut query =
        community::Entity::find_by_id(id).filter(community::Column::DeletedAt.is_null());
    if txn.get_database_backend() != DbBackend::Sqlite {
        query = query.lock_exclusive();
    }
    query.one(txn).await?.ok_or_else(group_not_found)
}

pub async fn member_count(db: &impl ConnectionTrait, id: Uuid) -> Result<u64, ApiError> {
    Ok(user_relation::Entity::find()
        .filter(user_relation::Column::TargetId.eq(id))
        .filter(user_relation::Column::RoleType.eq(RoleType::Group))
        .filter(user_relation::Column::RelationType.eq(RelationType::Accepted))
        .count(db)
        .await?)
}

/// Whether `user` is a member (the owner included) of group `id`.
pub async fn is_member(db: &impl ConnectionTrait, id: Uuid, user: Uuid) -> Result<bool, ApiError> {
    Ok(row(db, user, id, RoleType::Group)
        .await?
        .is_some_and(|r| r.relation_type == RelationType::Accepted))
}

async fn membership(
    db: &impl ConnectionTrait,
    group: &community::Model,
    user: Uuid,
) -> Result<Membership, ApiError> {
    if group.owner_id == user {
        return Ok(Membership::Owner);
    }
    Ok(
        match row(db, user, group.id, RoleType::Group)
            .await?
            .map(|r| r.relation_type)
        {
            Some(RelationType::Accepted) => Membership::Member,
            Some(RelationType::Requested) => Membership::Requested,
            _ => Membership::None,
        },
    )
}

/// The API's view of a group for `me`.
async fn view(
    db: &impl ConnectionTrait,
    group: &community::Model,
    me: Uuid,
) -> Result<Community, ApiError> {
    let owner = user_base::Entity::find_by_id(group.owner_id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::internal(format!("group {} has no owner row", group.id)))?;
    Ok(Community {
        id: group.id.to_string(),
        name: group.name.clone(),
        description: group.description.clone(),
        avatar: group.avatar.clone(),
        owner: public_user(&owner),
        member_count: member_count(db, group.id).await?,
        membership: membership(db, group, me).await?,
        created_at: group.created_at,
    })
}

/// Creates a group owned (and joined) by the caller.
pub async fn create(
    core: &AppCore,
    me: &CurrentUser,
    name_text: &str,
    description_text: &str,
    avatar_text: &str,
) -> Result<Community, ApiError> {
    let now = now_ms();
    let group = community::ActiveModel {
        id: Set(Uuid::now_v7()),
        owner_id: Set(me.id()),
        name: Set(name(name_text)?),
        description: Set(description(description_text)?),
        avatar: Set(avatar(avatar_text)?),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
    };
    let txn = write_txn(&core.db).await?;
    let group = group.insert(&txn).await?;
    put_row(
        &txn,
        None,
        me.id(),
        group.id,
        RoleType::Group,
        RelationType::Accepted,
        None,
    )
    .await?;
    txn.commit().await?;
    announce_group(
        core,
        group.id,
        vec![],
        &[(me.id(), RelationChange::GroupJoined)],
    )
    .await;
    view(&core.db, &group, me.id()).await
}

pub async fn get(core: &AppCore, me: &CurrentUser, id: &str) -> Result<Community, ApiError> {
    let group = live(&core.db, parse_id(id)?).await?;
    view(&core.db, &group, me.id()).await
}

/// Finds groups by exact id, or by a part of the name (case-insensitive).
pub async fn search(
    core: &AppCore,
    me: &CurrentUser,
    query: &str,
) -> Result<Vec<Community>, ApiError> {
    let query = crate::validate::query(query, GROUP_NAME_MAX.max(36))?;
    let query = query.as_str();
    if query.is_empty() {
        return Ok(Vec::new());
    }
    let groups = if let Ok(id) = Uuid::parse_str(query) {
        live(&core.db, id)
            .await
            .map(|g| vec![g])
            .unwrap_or_default()
    } else {
        let escaped = query
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        community::Entity::find()
            .filter(community::Column::DeletedAt.is_null())
            .filter(
                Expr::expr(Func::lower(Expr::col(community::Column::Name)))
                    .like(LikeExpr::new(format!("%{escaped}%")).escape('\\')),
            )
            .order_by_asc(community::Column::Name)
            .limit(SEARCH_RESULTS)
            .all(&core.db)
            .await?
    };
    let mut out = Vec::with_capacity(groups.len());
    for group in &groups {
        out.push(view(&core.db, group, me.id()).await?);
    }
    Ok(out)
}

/// Asks to join a group (a second ask updates the note).
pub async fn join(
    core: &AppCore,
    me: &CurrentUser,
    id: &str,
    memo_text: &str,
) -> Result<Membership, ApiError> {
    let memo = memo(memo_text)?;
    let id = parse_id(id)?;
    core.contact_request_allowed(me.id()).await?;
    let txn = write_txn(&core.db).await?;
    let group = lock(&txn, id).await?;
    let mine = row(&txn, me.id(), id, RoleType::Group).await?;
    if group.owner_id == me.id()
        || mine
            .as_ref()
            .is_some_and(|r| r.relation_type == RelationType::Accepted)
    {
        return Err(ApiError::new(
            ErrorCode::AlreadyMember,
            "You are already a member of this group.",
        ));
    }
    if member_count(&txn, id).await? >= core.settings.group_max_members {
        return Err(group_full());
    }
    // The same request again: nothing changes, and the owner is not told twice.
    if mine
        .as_ref()
        .is_some_and(|r| r.relation_type == RelationType::Requested && r.memo == memo)
    {
        txn.commit().await?;
        return Ok(Membership::Requested);
    }
    put_row(
        &txn,
        mine,
        me.id(),
        id,
        RoleType::Group,
        RelationType::Requested,
        Some(&memo),
    )
    .await?;
    txn.commit().await?;
    core.announce(vec![RelationEvent {
        user: group.owner_id,
        change: RelationChange::GroupRequest,
        username: Some(me.user.username.clone()),
        community_id: Some(id),
    }]);
    Ok(Membership::Requested)
}

fn group_full() -> ApiError {
    ApiError::new(
        ErrorCode::GroupFull,
        "This group has reached its member limit.",
    )
}

/// Locks the group and checks that the caller owns it.
async fn owned(
    txn: &DatabaseTransaction,
    me: &CurrentUser,
    id: &str,
) -> Result<community::Model, ApiError> {
    let group = lock(txn, parse_id(id)?).await?;
    if group.owner_id != me.id() {
        return Err(not_owner());
    }
    Ok(group)
}

fn no_join_request() -> ApiError {
    ApiError::not_found("This user has not asked to join the group.")
}

/// The owner lets a requester in.
pub async fn approve(
    core: &AppCore,
    me: &CurrentUser,
    id: &str,
    username: &str,
) -> Result<(), ApiError> {
    let txn = write_txn(&core.db).await?;
    let group = owned(&txn, me, id).await?;
    let user = find_reachable(&txn, username)
        .await
        .map_err(|_| no_join_request())?;
    let request = row(&txn, user.id, group.id, RoleType::Group).await?;
    if request.as_ref().map(|r| r.relation_type) != Some(RelationType::Requested) {
        return Err(no_join_request());
    }
    if member_count(&txn, group.id).await? >= core.settings.group_max_members {
        return Err(group_full());
    }
    put_row(
        &txn,
        request,
        user.id,
        group.id,
        RoleType::Group,
        RelationType::Accepted,
        None,
    )
    .await?;
    txn.commit().await?;
    let members = members_now(core, group.id).await;
    announce_group(
        core,
        group.id,
        members,
        &[(user.id, RelationChange::GroupJoined)],
    )
    .await;
    Ok(())
}

/// The owner turns a requester away.
pub async fn decline(
    core: &AppCore,
    me: &CurrentUser,
    id: &str,
    username: &str,
) -> Result<(), ApiError> {
    let txn = write_txn(&core.db).await?;
    let group = owned(&txn, me, id).await?;
    let user = super::accounts::any_user_by_name(&txn, username)
        .await?
        .ok_or_else(no_join_request)?;
    match row(&txn, user.id, group.id, RoleType::Group).await? {
        Some(r) if r.relation_type == RelationType::Requested => delete_row(&txn, r).await?,
        _ => return Err(no_join_request()),
    }
    txn.commit().await?;
    announce_group(
        core,
        group.id,
        vec![me.id()],
        &[(user.id, RelationChange::GroupLeft)],
    )
    .await;
    Ok(())
}

/// A member leaves (or withdraws a join request). The owner must hand over first.
pub async fn leave(core: &AppCore, me: &CurrentUser, id: &str) -> Result<(), ApiError> {
    let txn = write_txn(&core.db).await?;
    let group = lock(&txn, parse_id(id)?).await?;
    if group.owner_id == me.id() {
        return Err(ApiError::new(
            ErrorCode::OwnerCannotLeave,
            "The owner cannot leave; hand the group over or dissolve it.",
        ));
    }
    let mine = row(&txn, me.id(), group.id, RoleType::Group)
        .await?
        .ok_or_else(|| {
            ApiError::new(ErrorCode::NotMember, "You are not a member of this group.")
        })?;
    delete_row(&txn, mine).await?;
    txn.commit().await?;
    let members = members_now(core, group.id).await;
    announce_group(
        core,
        group.id,
        members,
        &[(me.id(), RelationChange::GroupLeft)],
    )
    .await;
    Ok(())
}

/// What the owner changes; absent fields stay.
#[derive(Debug, Default)]
pub struct GroupChange {
    pub name: Option<String>,
    pub description: Option<String>,
    /// An address (or `""` for initials).
    pub avatar: Option<String>,
    /// One of the owner's uploaded pictures, to become the avatar (or `""` for initials).
    pub avatar_media: Option<String>,
}

/// The owner changes the name, description or avatar.
pub async fn update(
    core: &AppCore,
    me: &CurrentUser,
    id: &str,
    change: GroupChange,
) -> Result<Community, ApiError> {
    let GroupChange {
        name: new_name,
        description: new_description,
        avatar: mut new_avatar,
        avatar_media,
    } = change;
    let txn = write_txn(&core.db).await?;
    let group = owned(&txn, me, id).await?;
    if let Some(media) = avatar_media {
        new_avatar = Some(super::media::avatar_url(&txn, me, &media).await?);
    }
    let mut row: community::ActiveModel = group.into();
    if let Some(n) = new_name {
        row.name = Set(name(&n)?);
    }
    if let Some(d) = new_description {
        row.description = Set(description(&d)?);
    }
    if let Some(a) = new_avatar {
        row.avatar = Set(avatar(&a)?);
    }
    row.updated_at = Set(now_ms());
    let group = row.update(&txn).await?;
    txn.commit().await?;
    let members = members_now(core, group.id).await;
    announce_group(core, group.id, members, &[]).await;
    view(&core.db, &group, me.id()).await
}

fn not_a_member() -> ApiError {
    ApiError::new(
        ErrorCode::NotMember,
        "This user is not a member of the group.",
    )
}

/// The owner removes a member.
pub async fn remove_member(
    core: &AppCore,
    me: &CurrentUser,
    id: &str,
    username: &str,
) -> Result<(), ApiError> {
    let txn = write_txn(&core.db).await?;
    let group = owned(&txn, me, id).await?;
    let user = super::accounts::any_user_by_name(&txn, username)
        .await?
        .ok_or_else(not_a_member)?;
    if user.id == me.id() {
        return Err(ApiError::new(
            ErrorCode::OwnerCannotLeave,
            "The owner cannot remove themself.",
        ));
    }
    match row(&txn, user.id, group.id, RoleType::Group).await? {
        Some(r) if r.relation_type == RelationType::Accepted => delete_row(&txn, r).await?,
        _ => return Err(not_a_member()),
    }
    txn.commit().await?;
    let members = members_now(core, group.id).await;
    announce_group(
        core,
        group.id,
        members,
        &[(user.id, RelationChange::GroupLeft)],
    )
    .await;
    Ok(())
}

/// The owner hands the group to another member.
pub async fn transfer(
    core: &AppCore,
    me: &CurrentUser,
    id: &str,
    username: &str,
) -> Result<Community, ApiError> {
    let txn = write_txn(&core.db).await?;
    let group = owned(&txn, me, id).await?;
    let user = super::accounts::any_user_by_name(&txn, username)
        .await?
        .ok_or_else(not_a_member)?;
    if user.id == me.id() {
        return Err(ApiError::conflict("You already own this group."));
    }
    if !is_member(&txn, group.id, user.id).await? {
        return Err(not_a_member());
    }
    let mut row: community::ActiveModel = group.into();
    row.owner_id = Set(user.id);
    row.updated_at = Set(now_ms());
    let group = row.update(&txn).await?;
    txn.commit().await?;
    let members = members_now(core, group.id).await;
    announce_group(core, group.id, members, &[]).await;
    view(&core.db, &group, me.id()).await
}

/// The owner dissolves the group: it disappears for everyone, memberships end.
pub async fn dissolve(core: &AppCore, me: &CurrentUser, id: &str) -> Result<(), ApiError> {
    let txn = write_txn(&core.db).await?;
    let group = owned(&txn, me, id).await?;
    let group_id = group.id;
    let members = super::messages::group_members(&txn, group_id).await?;
    let mut row: community::ActiveModel = group.into();
    let now = now_ms();
    row.deleted_at = Set(Some(now));
    row.updated_at = Set(now);
    row.update(&txn).await?;
    user_relation::Entity::delete_many()
        .filter(user_relation::Column::TargetId.eq(group_id))
        .filter(user_relation::Column::RoleType.eq(RoleType::Group))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    let leaving: Vec<(Uuid, RelationChange)> = members
        .into_iter()
        .map(|m| (m, RelationChange::GroupLeft))
        .collect();
    announce_group(core, group_id, vec![], &leaving).await;
    Ok(())
}

/// The member list, for members only: the owner first, then by join time.
pub async fn members(core: &AppCore, me: &CurrentUser, id: &str) -> Result<Vec<Member>, ApiError> {
    let group = live(&core.db, parse_id(id)?).await?;
    if !is_member(&core.db, group.id, me.id()).await? {
        return Err(ApiError::new(
            ErrorCode::NotMember,
            "Only members see who is in a group.",
        ));
    }
    let rows = user_relation::Entity::find()
        .filter(user_relation::Column::TargetId.eq(group.id))
        .filter(user_relation::Column::RoleType.eq(RoleType::Group))
        .filter(user_relation::Column::RelationType.eq(RelationType::Accepted))
        .order_by_asc(user_relation::Column::UpdatedAt)
        .all(&core.db)
        .await?;
    let users: HashMap<Uuid, user_base::Model> = user_base::Entity::find()
        .filter(user_base::Column::Id.is_in(rows.iter().map(|r| r.user_id)))
        .all(&core.db)
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
    let mut members: Vec<Member> = rows
        .iter()
        .filter_map(|r| {
            let user = users.get(&r.user_id)?;
            Some(Member {
                user: public_user(user),
                is_owner: user.id == group.owner_id,
                joined_at: r.updated_at,
            })
        })
        .collect();
    members.sort_by_key(|m| !m.is_owner);
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::avatar;

    #[test]
    fn avatars_are_http_or_paths_on_this_site() {
        assert!(avatar("").is_ok());
        assert!(avatar("https://example.org/a.png").is_ok());
        assert!(avatar("/favicon.svg").is_ok());
        for bad in [
            "//evil.example/x.png",
            "/\\evil.example/x.png",
            "javascript:alert(1)",
            "/a\0b.png",
            "/a b.png",
            "https://x/\"onerror=",
        ] {
            assert!(avatar(bad).is_err(), "{bad:?}");
        }
    }
}
