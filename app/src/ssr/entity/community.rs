//! `community`: groups.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "community")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The one member who may approve, edit, remove and dissolve.
    pub owner_id: Uuid,
    pub name: String,
    pub description: String,
    pub avatar: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Set when dissolved.
    pub deleted_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
