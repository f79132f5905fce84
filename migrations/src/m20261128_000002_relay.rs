//! What the real-time relay needs: the last time a user was seen online, indexes for
//! syncing and listing conversations, and the one-row lock that orders message ids.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("user_base"))
                    .add_column(big_integer_null("last_seen_at"))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("ix_chat_record_sender", "sender_id"),
            ("ix_chat_record_target", "target_id"),
        ] {
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
        // Every batch of new messages locks this row (PostgreSQL, MySQL) before inserting, so
        // message ids are committed in the order they are assigned even with several server
        // processes: a client's `sync` cursor can never pass an id that commits later.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("message_lock"))
                    .if_not_exists()
                    .col(integer("id").primary_key())
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(Alias::new("message_lock"))
                    .columns([Alias::new("id")])
                    .values_panic([1.into()])
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new("message_lock"))
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        for name in ["ix_chat_record_sender", "ix_chat_record_target"] {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(Alias::new("chat_record"))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("user_base"))
                    .drop_column(Alias::new("last_seen_at"))
                    .to_owned(),
            )
            .await
    }
}
