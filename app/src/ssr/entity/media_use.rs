//! `media_use`: where a media file was used, which decides who may fetch it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "media_use")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub media_id: Uuid,
    /// A conversation key ("d:<low>:<high>", "g:<group>") or "avatar".
    #[sea_orm(primary_key, auto_increment = false)]
    pub conversation: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
