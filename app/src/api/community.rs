//! `/api/v1/community/*`: groups. A group is named by `community_id`, a member by `username`.
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::contacts::{Community, Member, Membership};
use crate::error::ApiError;

#[cfg(feature = "ssr")]
use crate::ssr::{accounts::current_user, communities, core};

/// `POST /api/v1/community/create` `{"name","description"?,"avatar"?}`.
#[server(prefix = "/api/v1", endpoint = "community/create", input = Json, output = Json)]
pub async fn create_community(
    name: String,
    #[server(default)] description: String,
    #[server(default)] avatar: String,
) -> Result<Community, ApiError> {
    let me = current_user().await?;
    communities::create(&*core()?, &me, &name, &description, &avatar).await
}

/// `POST /api/v1/community/get` `{"community_id"}`.
#[server(prefix = "/api/v1", endpoint = "community/get", input = Json, output = Json)]
pub async fn get_community(community_id: String) -> Result<Community, ApiError> {
    let me = current_user().await?;
    communities::get(&*core()?, &me, &community_id).await
}

/// `POST /api/v1/community/search` `{"query"}`: by exact id or part of the name.
#[server(prefix = "/api/v1", endpoint = "community/search", input = Json, output = Json)]
pub async fn search_communities(query: String) -> Result<Vec<Community>, ApiError> {
    let me = current_user().await?;
    communities::search(&*core()?, &me, &query).await
}

/// `POST /api/v1/community/join` `{"community_id","memo"?}`: asks the owner to let the caller in.
#[server(prefix = "/api/v1", endpoint = "community/join", input = Json, output = Json)]
pub async fn join_community(
    community_id: String,
    #[server(default)] memo: String,
) -> Result<Membership, ApiError> {
    let me = current_user().await?;
    communities::join(&*core()?, &me, &community_id, &memo).await
}

/// `POST /api/v1/community/approve` `{"community_id","username"}` (owner only).
#[server(prefix = "/api/v1", endpoint = "community/approve", input = Json, output = Json)]
pub async fn approve_member(community_id: String, username: String) -> Result<(), ApiError> {
    let me = current_user().await?;
    communities::approve(&*core()?, &me, &community_id, &username).await
}

/// `POST /api/v1/community/decline` `{"community_id","username"}` (owner only).
#[server(prefix = "/api/v1", endpoint = "community/decline", input = Json, output = Json)]
pub async fn decline_member(community_id: String, username: String) -> Result<(), ApiError> {
    let me = current_user().await?;
    communities::decline(&*core()?, &me, &community_id, &username).await
}

/// `POST /api/v1/community/leave` `{"community_id"}`: leave (or withdraw a join request).
#[server(prefix = "/api/v1", endpoint = "community/leave", input = Json, output = Json)]
pub async fn leave_community(community_id: String) -> Result<(), ApiError> {
    let me = current_user().await?;
    communities::leave(&*core()?, &me, &community_id).await
}

/// `POST /api/v1/community/update`
/// `{"community_id","name"?,"description"?,"avatar"?,"avatar_media"?}` (owner only).
#[server(prefix = "/api/v1", endpoint = "community/update", input = Json, output = Json)]
pub async fn update_community(
    community_id: String,
    #[server(default)] name: Option<String>,
    #[server(default)] description: Option<String>,
    #[server(default)] avatar: Option<String>,
    #[server(default)] avatar_media: Option<String>,
) -> Result<Community, ApiError> {
    let me = current_user().await?;
    let change = communities::GroupChange {
        name,
        description,
        avatar,
        avatar_media,
    };
    communities::update(&*core()?, &me, &community_id, change).await
}

/// `POST /api/v1/community/remove_member` `{"community_id","username"}` (owner only).
#[server(prefix = "/api/v1", endpoint = "community/remove_member", input = Json, output = Json)]
pub async fn remove_member(community_id: String, username: String) -> Result<(), ApiError> {
    let me = current_user().await?;
    communities::remove_member(&*core()?, &me, &community_id, &username).await
}

/// `POST /api/v1/community/transfer` `{"community_id","username"}` (owner only): hands over.
#[server(prefix = "/api/v1", endpoint = "community/transfer", input = Json, output = Json)]
pub async fn transfer_community(
    community_id: String,
    username: String,
) -> Result<Community, ApiError> {
    let me = current_user().await?;
    communities::transfer(&*core()?, &me, &community_id, &username).await
}

/// `POST /api/v1/community/dissolve` `{"community_id"}` (owner only).
#[server(prefix = "/api/v1", endpoint = "community/dissolve", input = Json, output = Json)]
pub async fn dissolve_community(community_id: String) -> Result<(), ApiError> {
    let me = current_user().await?;
    communities::dissolve(&*core()?, &me, &community_id).await
}

/// `POST /api/v1/community/members` `{"community_id"}` (members only).
#[server(prefix = "/api/v1", endpoint = "community/members", input = Json, output = Json)]
pub async fn community_members(community_id: String) -> Result<Vec<Member>, ApiError> {
    let me = current_user().await?;
    communities::members(&*core()?, &me, &community_id).await
}
