//! Read cursors: how far each user has read each conversation, only ever forward.
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use super::{Target, conversation_key};
use crate::error::ApiError;
use crate::ssr::entity::{chat_record, read_cursor};
use crate::ssr::relations::write_txn;

/// Moves `me`'s read cursor in a conversation forward to `up_to` (never back), clamped to the
/// conversation's newest message. Answers the new cursor, or `None` when it did not move:
/// then nothing was written (a client repeating a `read` costs one indexed read).
pub async fn mark_read(
    db: &DatabaseConnection,
    me: Uuid,
    target: Target,
    up_to: i64,
) -> Result<Option<i64>, ApiError> {
    let key = conversation_key(me, target);
    let current = read_cursor::Entity::find_by_id((me, key.clone()))
        .one(db)
        .await?;
    let at = current.as_ref().map_or(0, |c| c.last_read_id);
    if up_to <= at {
        return Ok(None);
    }
    let newest: Option<Option<i64>> = chat_record::Entity::find()
        .select_only()
        .column_as(chat_record::Column::Id.max(), "max_id")
        .filter(chat_record::Column::Conversation.eq(key.as_str()))
        .into_tuple()
        .one(db)
        .await?;
    let up_to = Ord::min(up_to, newest.flatten().unwrap_or(0));
    if up_to <= at {
        return Ok(None);
    }
    let now = crate::ssr::now_ms();
    if current.is_some() {
        // Only ever forward, also against a concurrent `read` from another tab.
        let moved = read_cursor::Entity::update_many()
            .col_expr(read_cursor::Column::LastReadId, Expr::value(up_to))
            .col_expr(read_cursor::Column::UpdatedAt, Expr::value(now))
            .filter(read_cursor::Column::UserId.eq(me))
            .filter(read_cursor::Column::Conversation.eq(key.as_str()))
            .filter(Expr::col(read_cursor::Column::LastReadId).lt(up_to))
            .exec(db)
            .await?;
        return Ok((moved.rows_affected > 0).then_some(up_to));
    }
    // The first read in a group: the row is created, unless another tab just did.
    let txn = write_txn(db).await?;
    let existing = read_cursor::Entity::find_by_id((me, key.clone()))
        .one(&txn)
        .await?;
    let moved = match existing {
        Some(row) if row.last_read_id >= up_to => None,
        Some(_) => {
            read_cursor::Entity::update_many()
                .col_expr(read_cursor::Column::LastReadId, Expr::value(up_to))
                .col_expr(read_cursor::Column::UpdatedAt, Expr::value(now))
                .filter(read_cursor::Column::UserId.eq(me))
                .filter(read_cursor::Column::Conversation.eq(key.as_str()))
                .exec(&txn)
                .await?;
            Some(up_to)
        }
        None => {
            read_cursor::Entity::insert(read_cursor::ActiveModel {
                user_id: Set(me),
                conversation: Set(key),
                last_read_id: Set(up_to),
                updated_at: Set(now),
            })
            .exec_without_returning(&txn)
            .await?;
            Some(up_to)
        }
    };
    txn.commit().await?;
    Ok(moved)
}
