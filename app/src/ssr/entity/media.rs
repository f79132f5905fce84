//! `media`: one upload by one user (its bytes are in the media store under `sha256`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "media")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Who uploaded it; only they may send it.
    pub owner_id: Uuid,
    /// Hex SHA-256 of the stored bytes (for an image: after its metadata was removed).
    pub sha256: String,
    pub size: i64,
    /// Decided from the bytes, never from the name or the uploader's `Content-Type`.
    pub mime: String,
    /// The file name the uploader gave, cleaned.
    pub name: String,
    /// Pixels, for images (0 otherwise).
    pub width: i32,
    pub height: i32,
    /// The thumbnail's content hash, size and type; empty for files that are not images.
    pub thumb_sha256: String,
    pub thumb_size: i64,
    pub thumb_mime: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
