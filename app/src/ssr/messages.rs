//! Messages in the database: storing batches (idempotent, ids in commit order), what a user
//! may see, sync pages, history pages, the conversation list, read cursors.
//!
//! The relay calls these (and `accounts::record_last_seen`); it owns the connections and
//! runs no query of its own (only SQLite's log checkpoint, in `relay/store.rs`).
use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use super::entity::{chat_record, community, read_cursor, user_base, user_relation};
use super::relations::write_txn;
use crate::contacts::{RelationType, RoleType};
use crate::error::ApiError;
use crate::protocol::{Content, ConversationSummary, MessageView, Peer};

/// `target_kind` of a direct message.
pub const TO_USER: i16 = 1;
/// `target_kind` of a group message.
pub const TO_GROUP: i16 = 2;

/// Whom a message is addressed to, with parsed ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    User(Uuid),
    Group(Uuid),
}

impl Target {
    /// Parses a protocol peer; `None` when the id is not a UUID.
    pub fn parse(peer: &Peer) -> Option<Target> {
        let id = Uuid::parse_str(peer.id()).ok()?;
        Some(if peer.is_group() {
            Target::Group(id)
        } else {
            Target::User(id)
        })
    }

    pub fn peer(self) -> Peer {
        match self {
            Target::User(id) => Peer::User(id.to_string()),
            Target::Group(id) => Peer::Group(id.to_string()),
        }
    }

    fn kind_and_id(self) -> (i16, Uuid) {
        match self {
            Target::User(id) => (TO_USER, id),
            Target::Group(id) => (TO_GROUP, id),
        }
    }
}

/// The stable key of the conversation between `me` and `target`.
pub fn conversation_key(me: Uuid, target: Target) -> String {
    match target {
        Target::User(other) => {
            let (a, b) = if me < other { (me, other) } else { (other, me) };
            format!("d:{a}:{b}")
        }
        Target::Group(g) => format!("g:{g}"),
    }
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub sender: Uuid,
    pub client_id: String,
    pub target: Target,
    pub content: Content,
    pub created_at: i64,
}

/// A stored message; `duplicate` when an earlier send with the same client id stored it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub view: MessageView,
    pub duplicate: bool,
}

fn view(row: &chat_record::Model) -> Option<MessageView> {
    let content: Content = serde_json::from_str(&row.body).ok()?;
    let to = match row.target_kind {
        TO_GROUP => Peer::Group(row.target_id.to_string()),
        _ => Peer::User(row.target_id.to_string()),
    };
    Some(MessageView {
        id: row.id,
        client_id: row.client_id.clone(),
        from: row.sender_id.to_string(),
        to,
        content,
        created_at: row.created_at,
    })
}

fn views(rows: &[chat_record::Model]) -> Vec<MessageView> {
    rows.iter().filter_map(view).collect()
}

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
/// is how [`sync_page`] and [`conversations`] find it.
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
            if backend == DbBackend::Postgres {
                sql.push_str(&format!("(${},${},0,0)", i * 2 + 1, i * 2 + 2));
            } else {
                sql.push_str("(?,?,0,0)");
            }
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
            if backend == DbBackend::Postgres {
                sql.push_str(&format!("${}", i * 8 + c + 1));
            } else {
                sql.push('?');
            }
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

/// The groups `me` belongs to.
pub async fn my_groups(db: &impl ConnectionTrait, me: Uuid) -> Result<Vec<Uuid>, ApiError> {
    Ok(user_relation::Entity::find()
        .select_only()
        .column(user_relation::Column::TargetId)
        .filter(user_relation::Column::UserId.eq(me))
        .filter(user_relation::Column::RoleType.eq(RoleType::Group))
        .filter(user_relation::Column::RelationType.eq(RelationType::Accepted))
        .into_tuple()
        .all(db)
        .await?)
}

/// The members of a live group.
pub async fn group_members(db: &impl ConnectionTrait, group: Uuid) -> Result<Vec<Uuid>, ApiError> {
    Ok(user_relation::Entity::find()
        .select_only()
        .column(user_relation::Column::UserId)
        .filter(user_relation::Column::TargetId.eq(group))
        .filter(user_relation::Column::RoleType.eq(RoleType::Group))
        .filter(user_relation::Column::RelationType.eq(RelationType::Accepted))
        .into_tuple()
        .all(db)
        .await?)
}

/// The user's friends (accepted on both sides is checked by the caller where it matters;
/// the caller's own row being accepted means the other's is too).
pub async fn friends_of(db: &impl ConnectionTrait, me: Uuid) -> Result<Vec<Uuid>, ApiError> {
    Ok(user_relation::Entity::find()
        .select_only()
        .column(user_relation::Column::TargetId)
        .filter(user_relation::Column::UserId.eq(me))
        .filter(user_relation::Column::RoleType.eq(RoleType::Friend))
        .filter(user_relation::Column::RelationType.eq(RelationType::Accepted))
        .into_tuple()
        .all(db)
        .await?)
}

/// The keys of every conversation `me` may read: their direct conversations (each has a
/// `read_cursor` row from its first message on, see [`store_batch`]) and their groups'.
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
async fn newest_ids(db: &impl ConnectionTrait, keys: &[String]) -> Result<Vec<i64>, ApiError> {
    let backend = db.get_database_backend();
    let mut ids = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(200) {
        let mut sql = String::with_capacity(chunk.len() * 80);
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(" UNION ALL ");
            }
            sql.push_str("SELECT (SELECT MAX(id) FROM chat_record WHERE conversation = ");
            if backend == DbBackend::Postgres {
                sql.push_str(&format!("${}", i + 1));
            } else {
                sql.push('?');
            }
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
    let snapshot = super::read_snapshot(db).await?;
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
    let snapshot = super::read_snapshot(db).await?;
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
    let now = super::now_ms();
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

/// When each of `users` was last online (`None` if never recorded).
pub async fn last_seen_of(
    db: &impl ConnectionTrait,
    users: &[Uuid],
) -> Result<Vec<(Uuid, Option<i64>)>, ApiError> {
    Ok(user_base::Entity::find()
        .select_only()
        .column(user_base::Column::Id)
        .column(user_base::Column::LastSeenAt)
        .filter(user_base::Column::Id.is_in(users.iter().copied()))
        .into_tuple()
        .all(db)
        .await?)
}

/// The caller's conversations, newest activity first: every direct conversation with
/// messages, and every group they belong to.
pub async fn conversations(
    db: &impl ConnectionTrait,
    me: Uuid,
    groups: &[Uuid],
) -> Result<Vec<ConversationSummary>, ApiError> {
    let keys = conversation_keys(db, me, groups).await?;
    let last_ids = newest_ids(db, &keys).await?;
    let lasts: HashMap<String, MessageView> = chat_record::Entity::find()
        .filter(chat_record::Column::Id.is_in(last_ids))
        .all(db)
        .await?
        .iter()
        .filter_map(|r| Some((r.conversation.clone(), view(r)?)))
        .collect();
    let keys: Vec<String> = lasts.keys().cloned().collect();
    let cursors: Vec<read_cursor::Model> = read_cursor::Entity::find()
        .filter(read_cursor::Column::Conversation.is_in(keys.clone()))
        .all(db)
        .await?;
    let mine: HashMap<&str, i64> = cursors
        .iter()
        .filter(|c| c.user_id == me)
        .map(|c| (c.conversation.as_str(), c.last_read_id))
        .collect();
    let theirs: HashMap<&str, i64> = cursors
        .iter()
        .filter(|c| c.user_id != me)
        .map(|c| (c.conversation.as_str(), c.last_read_id))
        .collect();

    // Who each direct conversation is with.
    let peers: Vec<Uuid> = lasts
        .values()
        .filter_map(|m| match m.conversation_for(&me.to_string()) {
            Peer::User(id) => Uuid::parse_str(&id).ok(),
            Peer::Group(_) => None,
        })
        .collect();
    let users: HashMap<Uuid, user_base::Model> = user_base::Entity::find()
        .filter(user_base::Column::Id.is_in(peers))
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
    let communities: HashMap<Uuid, community::Model> = community::Entity::find()
        .filter(community::Column::Id.is_in(groups.iter().copied()))
        .filter(community::Column::DeletedAt.is_null())
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();

    let mut out = Vec::new();
    for (key, last) in &lasts {
        let with = last.conversation_for(&me.to_string());
        let read_up_to = mine.get(key.as_str()).copied().unwrap_or(0);
        let unread = if last.id > read_up_to {
            chat_record::Entity::find()
                .filter(chat_record::Column::Conversation.eq(key.as_str()))
                .filter(chat_record::Column::Id.gt(read_up_to))
                .filter(chat_record::Column::SenderId.ne(me))
                .count(db)
                .await?
        } else {
            0
        };
        let (title, avatar, username, peer_read_up_to) = match &with {
            Peer::User(id) => {
                let user = Uuid::parse_str(id).ok().and_then(|id| users.get(&id));
                (
                    user.map(|u| u.nickname.clone()).unwrap_or_default(),
                    user.map(|u| u.avatar.clone()).unwrap_or_default(),
                    user.map(|u| u.username.clone()).unwrap_or_default(),
                    theirs.get(key.as_str()).copied().unwrap_or(0),
                )
            }
            Peer::Group(id) => {
                let Some(group) = Uuid::parse_str(id).ok().and_then(|id| communities.get(&id))
                else {
                    continue;
                };
                (group.name.clone(), group.avatar.clone(), String::new(), 0)
            }
        };
        out.push(ConversationSummary {
            with,
            title,
            avatar,
            username,
            last: Some(last.clone()),
            unread,
            read_up_to,
            peer_read_up_to,
        });
    }
    // Groups without messages yet still have a conversation.
    for group in communities.values() {
        let key = conversation_key(me, Target::Group(group.id));
        if !lasts.contains_key(&key) {
            out.push(ConversationSummary {
                with: Peer::Group(group.id.to_string()),
                title: group.name.clone(),
                avatar: group.avatar.clone(),
                username: String::new(),
                last: None,
                unread: 0,
                read_up_to: 0,
                peer_read_up_to: 0,
            });
        }
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.last.as_ref().map_or(0, |m| m.id)));
    Ok(out)
}
