//! Who belongs where: a user's groups and friends, a group's members, when people were last
//! online.
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::contacts::{RelationType, RoleType};
use crate::error::ApiError;
use crate::ssr::entity::{user_base, user_relation};
use user_relation::Column;

/// The groups `me` belongs to.
pub async fn my_groups(db: &impl ConnectionTrait, me: Uuid) -> Result<Vec<Uuid>, ApiError> {
    accepted(db, Column::TargetId, Column::UserId, me, RoleType::Group).await
}

/// The members of a live group.
pub async fn group_members(db: &impl ConnectionTrait, group: Uuid) -> Result<Vec<Uuid>, ApiError> {
    accepted(db, Column::UserId, Column::TargetId, group, RoleType::Group).await
}

/// The user's friends (accepted on both sides is checked by the caller where it matters;
/// the caller's own row being accepted means the other's is too).
pub async fn friends_of(db: &impl ConnectionTrait, me: Uuid) -> Result<Vec<Uuid>, ApiError> {
    accepted(db, Column::TargetId, Column::UserId, me, RoleType::Friend).await
}

/// `pick` of the accepted relations of kind `role` whose `by` is `id`.
async fn accepted(
    db: &impl ConnectionTrait,
    pick: Column,
    by: Column,
    id: Uuid,
    role: RoleType,
) -> Result<Vec<Uuid>, ApiError> {
    Ok(user_relation::Entity::find()
        .select_only()
        .column(pick)
        .filter(by.eq(id))
        .filter(Column::RoleType.eq(role))
        .filter(Column::RelationType.eq(RelationType::Accepted))
        .into_tuple()
        .all(db)
        .await?)
}

/// When each of `users` was last online (`None` if never recorded).
pub async fn last_seen_of(
    db: &impl ConnectionTrait,
    users: &[Uuid],
) -> Result<Vec<(Uuid, Option<i64>)>, ApiError> {
    Ok(user_base::Entity::find()
        .select_only()
        .column(user_base::Column::Id)
        .column(user_base::Column::LastSeenAt)
        .filter(user_base::Column::Id.is_in(users.iter().copied()))
        .into_tuple()
        .all(db)
        .await?)
}
