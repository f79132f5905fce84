//! What a user may read: the conversations they belong to, sync pages across all of them,
//! history pages of one.
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use uuid::Uuid;

use super::{Target, conversation_key, push_placeholder, views};
use crate::error::ApiError;
use crate::protocol::MessageView;
use crate::ssr::entity::{chat_record, read_cursor};

/// The keys of every conversation `me` may read: their direct conversations (each has a
/// `read_cursor` row from its first message on, see [`store_batch`](super::store_batch)) and their groups'.
pub async fn conversation_keys(
    db: &impl ConnectionTrait,
    me: Uuid,
    groups: &[Uuid],
) -> Result<Vec<String>, ApiError> {
    let mut keys: Vec<String> = read_cursor::Entity::find()
        .select_only()
        .column(read_cursor::Column::Conversation)
        .filter(read_cursor::Column::UserId.eq(me))
        .filter(read_cursor::Column::Conversation.starts_with("d:"))
        .into_tuple()
        .all(db)
        .await?;
    keys.extend(
        groups
            .iter()
            .map(|g| conversation_key(me, Target::Group(*g))),
    );
    Ok(keys)
}

/// The id of the newest message of each of the conversations `keys` that has one: one index
/// lookup each (a `MAX` over a conversation's messages would read them all), a few hundred
/// per statement (SQLite allows 500 parts in a `UNION ALL`).
pub(super) async fn newest_ids(
    db: &impl ConnectionTrait,
    keys: &[String],
) -> Result<Vec<i64>, ApiError> {
    let backend = db.get_database_backend();
    let mut ids = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(200) {
        let mut sql = String::with_capacity(chunk.len() * 80);
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(" UNION ALL ");
            }
            sql.push_str("SELECT (SELECT MAX(id) FROM chat_record WHERE conversation = ");
            push_placeholder(&mut sql, backend, i + 1);
            sql.push_str(") AS max_id");
        }
        let values = chunk.iter().map(|k| k.clone().into());
        let statement = Statement::from_sql_and_values(backend, sql, values);
        for row in db.query_all_raw(statement).await? {
            if let Ok(Some(id)) = row.try_get_by_index::<Option<i64>>(0) {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

/// The next page of everything visible to `me` after `after`, in id order, and whether more
/// follows.
///
/// The conversations and their messages are read in one snapshot: read apart, the first
/// message of a new conversation could commit between the two reads, its conversation be
/// missing from the first and later messages of known ones be in the second, and the
/// client's cursor would pass it for good.
pub async fn sync_page(
    db: &DatabaseConnection,
    me: Uuid,
    groups: &[Uuid],
    after: i64,
    limit: u32,
) -> Result<(Vec<MessageView>, bool), ApiError> {
    let snapshot = crate::ssr::read_snapshot(db).await?;
    let keys = conversation_keys(&snapshot, me, groups).await?;
    let mut rows = chat_record::Entity::find()
        .filter(chat_record::Column::Conversation.is_in(keys))
        .filter(chat_record::Column::Id.gt(after))
        .order_by_asc(chat_record::Column::Id)
        .limit(u64::from(limit) + 1)
        .all(&snapshot)
        .await?;
    snapshot.commit().await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok((views(&rows), more))
}

/// The highest message id visible to `me` (0 when none), read in one snapshot for the
/// reason [`sync_page`] gives.
pub async fn last_visible_id(
    db: &DatabaseConnection,
    me: Uuid,
    groups: &[Uuid],
) -> Result<i64, ApiError> {
    let snapshot = crate::ssr::read_snapshot(db).await?;
    let keys = conversation_keys(&snapshot, me, groups).await?;
    let newest = newest_ids(&snapshot, &keys).await?;
    snapshot.commit().await?;
    Ok(newest.into_iter().max().unwrap_or(0))
}

/// One page of the conversation with `target` before `before`, oldest first, and whether
/// older messages exist.
pub async fn history_page(
    db: &impl ConnectionTrait,
    me: Uuid,
    target: Target,
    before: Option<i64>,
    limit: u32,
) -> Result<(Vec<MessageView>, bool), ApiError> {
    let mut query = chat_record::Entity::find()
        .filter(chat_record::Column::Conversation.eq(conversation_key(me, target)))
        .order_by_desc(chat_record::Column::Id)
        .limit(u64::from(limit) + 1);
    if let Some(before) = before {
        query = query.filter(chat_record::Column::Id.lt(before));
    }
    let mut rows = query.all(db).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    rows.reverse();
    Ok((views(&rows), more))
}
