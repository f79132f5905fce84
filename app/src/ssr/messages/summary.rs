//! The conversation list: each conversation's newest message, unread count, read cursors
//! and title.
use std::collections::HashMap;

use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::read::{conversation_keys, newest_ids};
use super::{Target, conversation_key, view};
use crate::error::ApiError;
use crate::protocol::{ConversationSummary, MessageView, Peer};
use crate::ssr::entity::{chat_record, community, read_cursor, user_base};

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
    let unread = unread_counts(db, me, &lasts, &mine).await?;
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
        let unread = unread.get(key.as_str()).copied().unwrap_or(0);
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

/// How many conversations one query counts unread messages for: a statement stays far
/// below the databases' limits on expression depth and bound values.
const UNREAD_CHUNK: usize = 100;

/// For each conversation with messages after the caller's read cursor: how many are from
/// others. One query per hundred such conversations, not one each.
async fn unread_counts(
    db: &impl ConnectionTrait,
    me: Uuid,
    lasts: &HashMap<String, MessageView>,
    read_up_to: &HashMap<&str, i64>,
) -> Result<HashMap<String, u64>, ApiError> {
    let behind: Vec<(&str, i64)> = lasts
        .iter()
        .filter_map(|(key, last)| {
            let cursor = read_up_to.get(key.as_str()).copied().unwrap_or(0);
            (last.id > cursor).then_some((key.as_str(), cursor))
        })
        .collect();
    let mut counts = HashMap::new();
    for chunk in behind.chunks(UNREAD_CHUNK) {
        let after_cursor = chunk.iter().fold(Condition::any(), |any, (key, cursor)| {
            any.add(
                Condition::all()
                    .add(chat_record::Column::Conversation.eq(*key))
                    .add(chat_record::Column::Id.gt(*cursor)),
            )
        });
        let rows: Vec<(String, i64)> = chat_record::Entity::find()
            .select_only()
            .column(chat_record::Column::Conversation)
            .column_as(chat_record::Column::Id.count(), "unread")
            .filter(after_cursor)
            .filter(chat_record::Column::SenderId.ne(me))
            .group_by(chat_record::Column::Conversation)
            .into_tuple()
            .all(db)
            .await?;
        counts.extend(
            rows.into_iter()
                .map(|(key, n)| (key, u64::try_from(n).unwrap_or(0))),
        );
    }
    Ok(counts)
}
