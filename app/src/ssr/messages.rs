//! Messages in the database: storing batches (idempotent, ids in commit order), what a user
//! may see, sync pages, history pages, the conversation list, read cursors.
//!
//! The relay calls these; it owns the connections and never touches SQL itself.
use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend,
    DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use super::entity::{chat_record, community, read_cursor, user_base, user_relation};
use super::relations::write_txn;
use crate::contacts::{relation_type, role_type};
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

/// Stores a batch of messages in one transaction and answers one [`Stored`] per input, in
/// order. A message whose `(sender, client_id)` exists already is not stored again.
///
/// The batch first locks `message_lock` (PostgreSQL, MySQL; SQLite's write lock does the
/// same), so batches commit in id order across server processes, and so the rows with an id
/// above the highest one before the insert are exactly this batch's: finding them is a
/// primary-key range scan. Only messages that were not inserted (resends) are looked up one
/// by one.
pub async fn store_batch(
    db: &DatabaseConnection,
    batch: &[NewMessage],
) -> Result<Vec<Stored>, DbErr> {
    let txn = write_txn(db).await.map_err(|e| DbErr::Custom(e.message))?;
    if txn.get_database_backend() != DbBackend::Sqlite {
        txn.execute_unprepared("SELECT id FROM message_lock WHERE id = 1 FOR UPDATE")
            .await?;
    }
    let highest: Option<Option<i64>> = chat_record::Entity::find()
        .select_only()
        .column_as(chat_record::Column::Id.max(), "max_id")
        .into_tuple()
        .one(&txn)
        .await?;
    let highest = highest.flatten().unwrap_or(0);
    // Over TCP, sqlx leaves Nagle's algorithm on: a statement longer than one segment waits
    // for the server's delayed acknowledgement (40 ms on Linux) before its last bytes go.
    // Statements of 32 ordinary messages stay within one segment on loopback; with 256
    // rows each, PostgreSQL stored 5,900 messages a second instead of 30,600.
    let rows = if txn.get_database_backend() == DbBackend::Sqlite {
        256
    } else {
        32
    };
    for chunk in batch.chunks(rows) {
        txn.execute_raw(insert_statement(txn.get_database_backend(), chunk))
            .await?;
    }
    let mut found: HashMap<(Uuid, String), chat_record::Model> = chat_record::Entity::find()
        .filter(chat_record::Column::Id.gt(highest))
        .all(&txn)
        .await?
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
        sql.push_str(" ON CONFLICT (sender_id, client_id) DO NOTHING");
    }
    Statement::from_sql_and_values(backend, sql, values)
}

/// The groups `me` belongs to.
pub async fn my_groups(db: &impl ConnectionTrait, me: Uuid) -> Result<Vec<Uuid>, ApiError> {
    Ok(user_relation::Entity::find()
        .select_only()
        .column(user_relation::Column::TargetId)
        .filter(user_relation::Column::UserId.eq(me))
        .filter(user_relation::Column::RoleType.eq(role_type::GROUP))
        .filter(user_relation::Column::RelationType.eq(relation_type::ACCEPTED))
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
        .filter(user_relation::Column::RoleType.eq(role_type::GROUP))
        .filter(user_relation::Column::RelationType.eq(relation_type::ACCEPTED))
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
        .filter(user_relation::Column::RoleType.eq(role_type::FRIEND))
        .filter(user_relation::Column::RelationType.eq(relation_type::ACCEPTED))
        .into_tuple()
        .all(db)
        .await?)
}

/// What `me` may see: their direct messages both ways, and the messages of their groups.
fn visible_to(me: Uuid, groups: &[Uuid]) -> Condition {
    Condition::any()
        .add(chat_record::Column::SenderId.eq(me))
        .add(
            Condition::all()
                .add(chat_record::Column::TargetKind.eq(TO_USER))
                .add(chat_record::Column::TargetId.eq(me)),
        )
        .add(
            Condition::all()
                .add(chat_record::Column::TargetKind.eq(TO_GROUP))
                .add(chat_record::Column::TargetId.is_in(groups.iter().copied())),
        )
}

/// The next page of everything visible to `me` after `after`, in id order, and whether more
/// follows.
pub async fn sync_page(
    db: &impl ConnectionTrait,
    me: Uuid,
    groups: &[Uuid],
    after: i64,
    limit: u32,
) -> Result<(Vec<MessageView>, bool), ApiError> {
    let mut rows = chat_record::Entity::find()
        .filter(chat_record::Column::Id.gt(after))
        .filter(visible_to(me, groups))
        .order_by_asc(chat_record::Column::Id)
        .limit(u64::from(limit) + 1)
        .all(db)
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok((views(&rows), more))
}

/// The highest message id visible to `me` (0 when none).
pub async fn last_visible_id(
    db: &impl ConnectionTrait,
    me: Uuid,
    groups: &[Uuid],
) -> Result<i64, ApiError> {
    let max: Option<Option<i64>> = chat_record::Entity::find()
        .select_only()
        .column_as(chat_record::Column::Id.max(), "max_id")
        .filter(visible_to(me, groups))
        .into_tuple()
        .one(db)
        .await?;
    Ok(max.flatten().unwrap_or(0))
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
/// conversation's newest message. Answers the cursor now in effect.
pub async fn mark_read(
    db: &DatabaseConnection,
    me: Uuid,
    target: Target,
    up_to: i64,
) -> Result<i64, ApiError> {
    let key = conversation_key(me, target);
    let newest: Option<Option<i64>> = chat_record::Entity::find()
        .select_only()
        .column_as(chat_record::Column::Id.max(), "max_id")
        .filter(chat_record::Column::Conversation.eq(key.as_str()))
        .into_tuple()
        .one(db)
        .await?;
    let up_to = Ord::min(up_to, newest.flatten().unwrap_or(0));
    let now = super::now_ms();
    let txn = write_txn(db).await?;
    let current = read_cursor::Entity::find_by_id((me, key.clone()))
        .one(&txn)
        .await?;
    let cursor = match current {
        Some(row) if row.last_read_id >= up_to => row.last_read_id,
        Some(_) => {
            read_cursor::Entity::update_many()
                .col_expr(read_cursor::Column::LastReadId, Expr::value(up_to))
                .col_expr(read_cursor::Column::UpdatedAt, Expr::value(now))
                .filter(read_cursor::Column::UserId.eq(me))
                .filter(read_cursor::Column::Conversation.eq(key.as_str()))
                .filter(Expr::col(read_cursor::Column::LastReadId).lt(up_to))
                .exec(&txn)
                .await?;
            up_to
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
            up_to
        }
    };
    txn.commit().await?;
    Ok(cursor)
}

/// The caller's conversations, newest activity first: every direct conversation with
/// messages, and every group they belong to.
pub async fn conversations(
    db: &impl ConnectionTrait,
    me: Uuid,
    groups: &[Uuid],
) -> Result<Vec<ConversationSummary>, ApiError> {
    // The newest message id of each conversation.
    let direct: Vec<(String, i64)> = chat_record::Entity::find()
        .select_only()
        .column(chat_record::Column::Conversation)
        .column_as(chat_record::Column::Id.max(), "max_id")
        .filter(chat_record::Column::TargetKind.eq(TO_USER))
        .filter(
            Condition::any()
                .add(chat_record::Column::SenderId.eq(me))
                .add(chat_record::Column::TargetId.eq(me)),
        )
        .group_by(chat_record::Column::Conversation)
        .into_tuple()
        .all(db)
        .await?;
    let grouped: Vec<(String, i64)> = chat_record::Entity::find()
        .select_only()
        .column(chat_record::Column::Conversation)
        .column_as(chat_record::Column::Id.max(), "max_id")
        .filter(chat_record::Column::TargetKind.eq(TO_GROUP))
        .filter(chat_record::Column::TargetId.is_in(groups.iter().copied()))
        .group_by(chat_record::Column::Conversation)
        .into_tuple()
        .all(db)
        .await?;
    let last_ids: Vec<i64> = direct
        .iter()
        .chain(grouped.iter())
        .map(|(_, id)| *id)
        .collect();
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
