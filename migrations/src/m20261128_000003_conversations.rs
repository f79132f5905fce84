//! Fewer indexes on `chat_record`, and `read_cursor` as the list of a user's direct
//! conversations.
//!
//! Every index on `chat_record` costs each stored message one more page written (with
//! thousands of conversations, consecutive messages land on different pages of it). The
//! `(sender_id, id)` and `(target_id, id)` indexes only served "everything visible to a
//! user", which the `(conversation, id)` index answers as well once the user's conversations
//! are known: from now on the writer gives both people of a direct conversation a
//! `read_cursor` row (at 0) with its first message, and this migration does the same for
//! the messages already stored.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const DROPPED: [(&str, &str); 2] = [
    ("ix_chat_record_sender", "sender_id"),
    ("ix_chat_record_target", "target_id"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let insert = match manager.get_database_backend() {
            DbBackend::MySql => "INSERT IGNORE INTO",
            DbBackend::Sqlite => "INSERT OR IGNORE INTO",
            _ => "INSERT INTO",
        };
        let ignore = match manager.get_database_backend() {
            DbBackend::Postgres => " ON CONFLICT DO NOTHING",
            _ => "",
        };
        for who in ["sender_id", "target_id"] {
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "{insert} read_cursor (user_id, conversation, last_read_id, updated_at) \
                     SELECT DISTINCT {who}, conversation, 0, 0 FROM chat_record \
                     WHERE target_kind = 1{ignore}"
                ))
                .await?;
        }
        for (name, _) in DROPPED {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(Alias::new("chat_record"))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, col) in DROPPED {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Alias::new("chat_record"))
                        .col(Alias::new(col))
                        .col(Alias::new("id"))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
