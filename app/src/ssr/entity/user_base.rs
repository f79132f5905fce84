//! `user_base`: one row per account.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_base")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Lower-cased; unique.
    pub username: String,
    pub nickname: String,
    /// An argon2id PHC string.
    pub password_hash: String,
    /// 0 normal, 1 banned, 2 admin.
    pub role: i16,
    /// 0 unspecified, 1 male, 2 female.
    pub gender: i16,
    pub signature: String,
    pub mobile: String,
    /// A URL or an empty string (the UI then draws initials).
    pub avatar: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// Set when the account was deleted; such accounts cannot log in or be found.
    pub deleted_at: Option<i64>,
    /// When the user's last connection to the relay closed (Unix ms).
    pub last_seen_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
