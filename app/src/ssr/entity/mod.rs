//! sea-orm entities, one per table of `migrations`. Field comments say what a column means;
//! the migration is the source of truth for types and indexes.
pub mod chat_record;
pub mod community;
pub mod media;
pub mod media_use;
pub mod read_cursor;
pub mod user_base;
pub mod user_relation;
pub mod user_session;
