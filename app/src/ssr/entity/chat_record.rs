//! `chat_record`: every stored message.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "chat_record")]
pub struct Model {
    /// The server id; increases across the whole server.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The sender's own id for the message; a resend with the same one is not stored twice.
    pub client_id: String,
    pub sender_id: Uuid,
    /// "d:<low uuid>:<high uuid>" or "g:<community uuid>".
    pub conversation: String,
    /// 1 a user, 2 a group.
    pub target_kind: i16,
    pub target_id: Uuid,
    /// "text", "image", "file", "call".
    pub content_kind: String,
    /// The content as JSON.
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
