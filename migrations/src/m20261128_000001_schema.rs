//! The first schema: the whole product's tables, modelled on the seed's `user_base`,
//! `user_relation`, `community` and `chat_record`, plus server-side sessions and read cursors.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Builds a named index over `cols` of `table`.
fn index(name: &str, table: &str, cols: &[&str], unique: bool) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(Alias::new(table));
    for col in cols {
        idx.col(Alias::new(*col));
    }
    if unique {
        idx.unique();
    }
    idx.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Accounts. `username` is stored lower-cased, which makes the unique index
        // case-insensitive on every backend.
        manager
            .create_table(
                Table::create()
                    .table("user_base")
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    .col(string_len("username", 32))
                    .col(string_len("nickname", 128))
                    .col(string_len("password_hash", 255))
                    .col(small_integer("role").default(0))
                    .col(small_integer("gender").default(0))
                    .col(string_len("signature", 255).default(""))
                    .col(string_len("mobile", 32).default(""))
                    .col(string_len("avatar", 512).default(""))
                    .col(big_integer("created_at"))
                    .col(big_integer("updated_at"))
                    .col(big_integer_null("deleted_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ux_user_base_username",
                "user_base",
                &["username"],
                true,
            ))
            .await?;

        // Server-side sessions; the cookie holds a random token, the table its SHA-256.
        manager
            .create_table(
                Table::create()
                    .table("user_session")
                    .if_not_exists()
                    .col(string_len("id", 64).primary_key())
                    .col(uuid("user_id"))
                    .col(big_integer("created_at"))
                    .col(big_integer("expires_at"))
                    .col(big_integer("last_seen_at"))
                    .col(string_len("user_agent", 255).default(""))
                    .col(string_len("ip", 64).default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_user_session_user",
                "user_session",
                &["user_id"],
                false,
            ))
            .await?;

        // The seed's relation table: relation_type 1 request, 2 accepted, 3 removed;
        // role_type 1 friend, 2 group (then target_id is a community id).
        manager
            .create_table(
                Table::create()
                    .table("user_relation")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(uuid("user_id"))
                    .col(uuid("target_id"))
                    .col(small_integer("relation_type"))
                    .col(small_integer("role_type"))
                    .col(string_len("memo", 255).default(""))
                    .col(big_integer("created_at"))
                    .col(big_integer("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ux_user_relation_pair",
                "user_relation",
                &["user_id", "target_id", "role_type"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_user_relation_list",
                "user_relation",
                &["user_id", "relation_type", "role_type"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_user_relation_target",
                "user_relation",
                &["target_id", "relation_type", "role_type"],
                false,
            ))
            .await?;

        // Groups.
        manager
            .create_table(
                Table::create()
                    .table("community")
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    .col(uuid("owner_id"))
                    .col(string_len("name", 128))
                    .col(string_len("description", 1024).default(""))
                    .col(string_len("avatar", 512).default(""))
                    .col(big_integer("created_at"))
                    .col(big_integer("updated_at"))
                    .col(big_integer_null("deleted_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("ix_community_name", "community", &["name"], false))
            .await?;

        // Messages. `conversation` is a stable key ("d:<low>:<high>" for two users,
        // "g:<community>" for a group); (sender_id, client_id) makes resends idempotent.
        manager
            .create_table(
                Table::create()
                    .table("chat_record")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(string_len("client_id", 64))
                    .col(uuid("sender_id"))
                    .col(string_len("conversation", 80))
                    .col(small_integer("target_kind"))
                    .col(uuid("target_id"))
                    .col(string_len("content_kind", 16))
                    .col(text("body"))
                    .col(big_integer("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ux_chat_record_client",
                "chat_record",
                &["sender_id", "client_id"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_chat_record_conversation",
                "chat_record",
                &["conversation", "id"],
                false,
            ))
            .await?;

        // How far each user has read each conversation.
        manager
            .create_table(
                Table::create()
                    .table("read_cursor")
                    .if_not_exists()
                    .col(uuid("user_id"))
                    .col(string_len("conversation", 80))
                    .col(big_integer("last_read_id"))
                    .col(big_integer("updated_at"))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("user_id"))
                            .col(Alias::new("conversation")),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "read_cursor",
            "chat_record",
            "community",
            "user_relation",
            "user_session",
            "user_base",
        ] {
            manager
                .drop_table(
                    Table::drop()
                        .table(Alias::new(table))
                        .if_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
