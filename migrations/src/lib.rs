//! Database schema for quick-chat, as sea-orm migrations.
//!
//! Owns every table of the product (accounts, sessions, relations, communities, messages,
//! read cursors). It must not depend on the application crates: the server applies
//! [`Migrator`] at start and the `migrations` binary applies it from the command line.
//! Every migration has to run on SQLite, PostgreSQL and MySQL/MariaDB alike, so it only uses
//! portable column types (times are Unix milliseconds in `BIGINT`).

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_schema;
mod m20261128_000002_relay;
mod m20261128_000003_conversations;
mod m20261130_000004_media;

/// The ordered list of migrations of quick-chat.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_schema::Migration),
            Box::new(m20261128_000002_relay::Migration),
            Box::new(m20261128_000003_conversations::Migration),
            Box::new(m20261130_000004_media::Migration),
        ]
    }
}
