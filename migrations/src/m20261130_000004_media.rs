//! Uploaded files and images (`media`), and where each was used (`media_use`).
//!
//! A `media` row is one upload by one user; its bytes live in the media store under their
//! SHA-256 (`sha256`), so the same content uploaded twice is stored once while each upload
//! keeps its own owner, name and quota share. `media_use` says who besides the owner may
//! fetch it: the conversation it was sent in ("d:…"/"g:…", as `chat_record.conversation`),
//! or "avatar" (any signed-in user). A row without a use is deleted after a day.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("media")
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    .col(uuid("owner_id"))
                    .col(string_len("sha256", 64))
                    .col(big_integer("size"))
                    .col(string_len("mime", 128))
                    .col(string_len("name", 255))
                    .col(integer("width").default(0))
                    .col(integer("height").default(0))
                    .col(string_len("thumb_sha256", 64).default(""))
                    .col(big_integer("thumb_size").default(0))
                    .col(string_len("thumb_mime", 128).default(""))
                    .col(big_integer("created_at"))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("ix_media_owner", &["owner_id", "created_at"][..]),
            ("ix_media_sha256", &["sha256"][..]),
            ("ix_media_thumb_sha256", &["thumb_sha256"][..]),
            ("ix_media_created", &["created_at"][..]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Alias::new("media"));
            for col in cols {
                index.col(Alias::new(*col));
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("media_use")
                    .if_not_exists()
                    .col(uuid("media_id"))
                    .col(string_len("conversation", 80))
                    .col(big_integer("created_at"))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("media_id"))
                            .col(Alias::new("conversation")),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["media_use", "media"] {
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
