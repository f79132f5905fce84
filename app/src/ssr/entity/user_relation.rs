//! `user_relation`: the seed's friendship and group-membership rows.
use sea_orm::entity::prelude::*;

use crate::contacts::{RelationType, RoleType};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_relation")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Whose view of the relation this row is.
    pub user_id: Uuid,
    /// The other user (role_type 1) or the community (role_type 2).
    pub target_id: Uuid,
    /// 1 request pending, 2 accepted, 3 removed ("removed you").
    pub relation_type: RelationType,
    /// 1 friend, 2 group.
    pub role_type: RoleType,
    /// The note sent with the request.
    pub memo: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
