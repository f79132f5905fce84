//! Types of the contacts API (friends, requests, groups), shared by server and browser.
use serde::{Deserialize, Serialize};

use crate::model::Gender;

/// The seed's `relation_type`: where a relation stands. Stored and sent as the seed's
/// integers (1, 2, 3), so neither the tables nor the API change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::FromRepr)]
#[repr(i16)]
#[serde(into = "i16", try_from = "i16")]
#[cfg_attr(feature = "ssr", derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum))]
#[cfg_attr(feature = "ssr", sea_orm(rs_type = "i16", db_type = "SmallInteger"))]
pub enum RelationType {
    /// A friend request, or a request to join a group, waiting for an answer.
    Requested = 1,
    /// Friends, or a member of a group.
    Accepted = 2,
    /// The other side removed this user ("removed you").
    Removed = 3,
}

/// The seed's `role_type`: what the other side is (1 a user, 2 a group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::FromRepr)]
#[repr(i16)]
#[serde(into = "i16", try_from = "i16")]
#[cfg_attr(feature = "ssr", derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum))]
#[cfg_attr(feature = "ssr", sea_orm(rs_type = "i16", db_type = "SmallInteger"))]
pub enum RoleType {
    Friend = 1,
    Group = 2,
}

impl From<RelationType> for i16 {
    fn from(value: RelationType) -> i16 {
        value as i16
    }
}

impl TryFrom<i16> for RelationType {
    type Error = String;

    fn try_from(value: i16) -> Result<Self, String> {
        Self::from_repr(value).ok_or_else(|| format!("relation_type {value} is not 1, 2 or 3"))
    }
}

impl From<RoleType> for i16 {
    fn from(value: RoleType) -> i16 {
        value as i16
    }
}

impl TryFrom<i16> for RoleType {
    type Error = String;

    fn try_from(value: i16) -> Result<Self, String> {
        Self::from_repr(value).ok_or_else(|| format!("role_type {value} is not 1 or 2"))
    }
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
    pub relation_type: RelationType,
    pub role_type: RoleType,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_types_travel_as_the_seed_integers() {
        for (kind, n) in [
            (RelationType::Requested, 1),
            (RelationType::Accepted, 2),
            (RelationType::Removed, 3),
        ] {
            assert_eq!(serde_json::to_string(&kind).unwrap(), n.to_string());
            assert_eq!(
                serde_json::from_str::<RelationType>(&n.to_string()).unwrap(),
                kind
            );
        }
        for (role, n) in [(RoleType::Friend, 1), (RoleType::Group, 2)] {
            assert_eq!(serde_json::to_string(&role).unwrap(), n.to_string());
            assert_eq!(
                serde_json::from_str::<RoleType>(&n.to_string()).unwrap(),
                role
            );
        }
        assert!(serde_json::from_str::<RelationType>("4").is_err());
        assert!(serde_json::from_str::<RoleType>("0").is_err());
    }
}
