//! Types of the contacts API (friends, requests, groups), shared by server and browser.
use serde::{Deserialize, Serialize};

use crate::model::Gender;

/// The seed's `relation_type`: where a relation stands.
pub mod relation_type {
    /// A friend request, or a request to join a group, waiting for an answer.
    pub const REQUESTED: i16 = 1;
    /// Friends, or a member of a group.
    pub const ACCEPTED: i16 = 2;
    /// The other side removed this user ("removed you").
    pub const REMOVED: i16 = 3;
}

/// The seed's `role_type`: what the other side is.
pub mod role_type {
    pub const FRIEND: i16 = 1;
    pub const GROUP: i16 = 2;
}

/// What anyone signed in may see of another user: their contact card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicUser {
    pub id: String,
    pub username: String,
    pub nickname: String,
    pub avatar: String,
    pub gender: Gender,
    pub signature: String,
}

/// How the caller stands with another user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// The caller themself.
    Myself,
    /// Nothing between them.
    None,
    /// The caller asked; waiting for the other.
    Requested,
    /// The other asked the caller; the caller may accept or decline.
    RequestedYou,
    Friend,
    /// The other removed the caller; the caller may ask again.
    RemovedYou,
}

/// A search hit: the card and how the caller stands with that user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCard {
    #[serde(flatten)]
    pub user: PublicUser,
    pub standing: Standing,
}

/// A group as its members and searchers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Community {
    pub id: String,
    pub name: String,
    pub description: String,
    pub avatar: String,
    pub owner: PublicUser,
    pub member_count: u64,
    /// How the caller stands with this group.
    pub membership: Membership,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Membership {
    None,
    /// The caller asked to join; waiting for the owner.
    Requested,
    Member,
    Owner,
}

/// One row of `relation/list`: the other side of a relation as the caller sees it.
///
/// For friends (`role_type` 1) `username` and the card fields describe the other user. For
/// groups (`role_type` 2) `community` is the group; `username` is the person the row is about:
/// the requester for join requests, the caller for their own memberships.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationEntry {
    pub username: String,
    pub nickname: String,
    pub avatar: String,
    pub user_id: String,
    pub gender: Gender,
    pub signature: String,
    pub relation_type: i16,
    pub role_type: i16,
    /// The note sent with the request.
    pub memo: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<CommunitySummary>,
    /// Unix milliseconds of the last change.
    pub updated_at: i64,
}

/// A group named inside another answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunitySummary {
    pub id: String,
    pub name: String,
    pub avatar: String,
}

/// A member of a group, as `community/members` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    #[serde(flatten)]
    pub user: PublicUser,
    pub is_owner: bool,
    pub joined_at: i64,
}

/// Limits of the contacts features.
pub mod limits {
    pub const MEMO_MAX: usize = 100;
    pub const GROUP_NAME_MAX: usize = 32;
    pub const GROUP_DESCRIPTION_MAX: usize = 200;
    pub const AVATAR_URL_MAX: usize = 500;
    pub const SEARCH_RESULTS: u64 = 20;
}
