//! Storing a batch of messages: one transaction, idempotent per `(sender, client_id)`, ids
//! in commit order.
use std::collections::{HashMap, HashSet};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QuerySelect, Statement,
};
use uuid::Uuid;

use super::{NewMessage, Stored, Target, conversation_key, push_placeholder, view};
use crate::ssr::entity::chat_record;
use crate::ssr::relations::write_txn;

/// Direct conversations known to have their `read_cursor` rows, so a batch only writes them
/// for conversations new to this process. Rows are never deleted, so what it holds stays
/// true; it forgets everything past [`KnownConversations::MAX`] entries.
#[derive(Debug, Default)]
pub struct KnownConversations(HashSet<String>);

impl KnownConversations {
    const MAX: usize = 200_000;
}

/// Stores a batch of messages in one transaction and answers one [`Stored`] per input, in
/// order. A message whose `(sender, client_id)` exists already is not stored again. The
/// first message of a direct conversation also gives both people a `read_cursor` row, which
/// is how [`sync_page`](super::sync_page) and [`conversations`](super::conversations) find it.
///
/// The batch first locks `message_lock` (PostgreSQL, MySQL; SQLite's write lock does the
/// same), so batches commit in id order across server processes. The inserted rows come
/// back from `RETURNING` (SQLite, PostgreSQL); MySQL has none, and there the rows with an id
/// above the highest one before the insert are exactly this batch's (the lock again): a
/// primary-key range scan. Only messages that were not inserted (resends) are looked up one
/// by one.
pub async fn store_batch(
    db: &DatabaseConnection,
    batch: &[NewMessage],
    known: &mut KnownConversations,
) -> Result<Vec<Stored>, DbErr> {
    let backend = db.get_database_backend();
    let txn = write_txn(db).await.map_err(|e| DbErr::Custom(e.message))?;
    if backend != DbBackend::Sqlite {
        txn.execute_unprepared("SELECT id FROM message_lock WHERE id = 1 FOR UPDATE")
            .await?;
    }
    let highest = if backend == DbBackend::MySql {
        let highest: Option<Option<i64>> = chat_record::Entity::find()
            .select_only()
            .column_as(chat_record::Column::Id.max(), "max_id")
            .into_tuple()
            .one(&txn)
            .await?;
        highest.flatten().unwrap_or(0)
    } else {
        0
    };
    // Over TCP, sqlx leaves Nagle's algorithm on: a statement longer than one segment waits
    // for the server's delayed acknowledgement (40 ms on Linux) before its last bytes go.
    // Statements of 32 ordinary messages stay within one segment on loopback; with 256
    // rows each, PostgreSQL stored 5,900 messages a second instead of 30,600.
    let rows = if backend == DbBackend::Sqlite {
        256
    } else {
        32
    };
    let mut inserted = Vec::with_capacity(batch.len());
    for chunk in batch.chunks(rows) {
        let insert = insert_statement(backend, chunk);
        if backend == DbBackend::MySql {
            txn.execute_raw(insert).await?;
        } else {
            inserted.extend(
                chat_record::Entity::find()
                    .from_raw_sql(insert)
                    .all(&txn)
                    .await?,
            );
        }
    }
    if backend == DbBackend::MySql {
        inserted = chat_record::Entity::find()
            .filter(chat_record::Column::Id.gt(highest))
            .all(&txn)
            .await?;
    }
    let new_conversations = add_members(&txn, batch, known).await?;
    let mut found: HashMap<(Uuid, String), chat_record::Model> = inserted
        .into_iter()
        .map(|r| ((r.sender_id, r.client_id.clone()), r))
        .collect();
    let fresh: HashSet<(Uuid, String)> = found.keys().cloned().collect();
    for m in batch {
        let key = (m.sender, m.client_id.clone());
        if !found.contains_key(&key)
            && let Some(row) = chat_record::Entity::find()
                .filter(chat_record::Column::SenderId.eq(m.sender))
                .filter(chat_record::Column::ClientId.eq(m.client_id.as_str()))
                .one(&txn)
                .await?
        {
            found.insert(key, row);
        }
    }
    txn.commit().await?;
    if known.0.len() + new_conversations.len() > KnownConversations::MAX {
        known.0.clear();
    }
    known.0.extend(new_conversations);
    // Only the first send of a new client id in this batch is new; resends are duplicates.
    let mut answered = HashSet::new();
    batch
        .iter()
        .map(|m| {
            let key = (m.sender, m.client_id.clone());
            let row = found
                .get(&key)
                .ok_or_else(|| DbErr::Custom("stored message vanished".into()))?;
            let view =
                view(row).ok_or_else(|| DbErr::Custom("stored message unreadable".into()))?;
            let duplicate = !fresh.contains(&key) || !answered.insert(key);
            Ok(Stored { view, duplicate })
        })
        .collect()
}

/// Gives both people of each direct conversation in `batch` that `known` does not hold a
/// `read_cursor` row (at 0, kept when it exists). Answers the conversations it wrote for.
async fn add_members(
    txn: &impl ConnectionTrait,
    batch: &[NewMessage],
    known: &KnownConversations,
) -> Result<HashSet<String>, DbErr> {
    let mut members: Vec<(Uuid, String)> = Vec::new();
    let mut keys: HashSet<String> = HashSet::new();
    for m in batch {
        let Target::User(to) = m.target else {
            continue;
        };
        let key = conversation_key(m.sender, m.target);
        if known.0.contains(&key) || keys.contains(&key) {
            continue;
        }
        members.push((m.sender, key.clone()));
        members.push((to, key.clone()));
        keys.insert(key);
    }
    let backend = txn.get_database_backend();
    // Half the rows of a message statement: a cursor row has half the columns.
    for chunk in members.chunks(if backend == DbBackend::Sqlite {
        256
    } else {
        64
    }) {
        let mut sql = String::from(if backend == DbBackend::MySql {
            "INSERT IGNORE INTO "
        } else {
            "INSERT INTO "
        });
        sql.push_str("read_cursor (user_id, conversation, last_read_id, updated_at) VALUES ");
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 2);
        for (i, (user, key)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            push_placeholder(&mut sql, backend, i * 2 + 1);
            sql.push(',');
            push_placeholder(&mut sql, backend, i * 2 + 2);
            sql.push_str(",0,0)");
            values.extend([(*user).into(), key.clone().into()]);
        }
        if backend != DbBackend::MySql {
            sql.push_str(" ON CONFLICT DO NOTHING");
        }
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    Ok(keys)
}

/// One multi-row `INSERT` that skips rows whose `(sender_id, client_id)` exists, written
/// out by hand: built through the query builder it cost several times more per row.
fn insert_statement(backend: DbBackend, messages: &[NewMessage]) -> Statement {
    const COLUMNS: &str = "client_id, sender_id, conversation, target_kind, target_id, content_kind, body, created_at";
    let mut sql = String::with_capacity(96 + messages.len() * 48);
    sql.push_str(if backend == DbBackend::MySql {
        "INSERT IGNORE INTO chat_record ("
    } else {
        "INSERT INTO chat_record ("
    });
    sql.push_str(COLUMNS);
    sql.push_str(") VALUES ");
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(messages.len() * 8);
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..8 {
            if c > 0 {
                sql.push(',');
            }
            push_placeholder(&mut sql, backend, i * 8 + c + 1);
        }
        sql.push(')');
        let (kind, target_id) = m.target.kind_and_id();
        values.extend([
            m.client_id.clone().into(),
            m.sender.into(),
            conversation_key(m.sender, m.target).into(),
            kind.into(),
            target_id.into(),
            m.content.kind().into(),
            serde_json::to_string(&m.content).unwrap_or_default().into(),
            m.created_at.into(),
        ]);
    }
    if backend != DbBackend::MySql {
        sql.push_str(" ON CONFLICT (sender_id, client_id) DO NOTHING RETURNING ");
        sql.push_str("id, ");
        sql.push_str(COLUMNS);
    }
    Statement::from_sql_and_values(backend, sql, values)
}
