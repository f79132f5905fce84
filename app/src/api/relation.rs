//! `/api/v1/user/search` and `/api/v1/relation/*`: finding people and friendships.
//! The other person is always named by `username`; the caller is always the session's user.
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::contacts::{RelationEntry, Standing, UserCard};
use crate::error::ApiError;

#[cfg(feature = "ssr")]
use crate::ssr::{accounts::current_user, core, relations};

/// `POST /api/v1/user/search` `{"query"}`: users whose username starts with `query`, with how
/// the caller stands with each.
#[server(prefix = "/api/v1", endpoint = "user/search", input = Json, output = Json)]
pub async fn search_users(query: String) -> Result<Vec<UserCard>, ApiError> {
    let me = current_user().await?;
    relations::search(&*core()?, &me, &query).await
}

/// `POST /api/v1/relation/request` `{"username","memo"}`: asks to be friends (or renews the
/// note of a pending request). Answers the new standing: `requested`, or `friend` when the
/// other had already asked the caller.
#[server(prefix = "/api/v1", endpoint = "relation/request", input = Json, output = Json)]
pub async fn request_friend(
    username: String,
    #[server(default)] memo: String,
) -> Result<Standing, ApiError> {
    let me = current_user().await?;
    relations::request(&*core()?, &me, &username, &memo).await
}

/// `POST /api/v1/relation/accept` `{"username"}`: accepts that user's request to the caller.
#[server(prefix = "/api/v1", endpoint = "relation/accept", input = Json, output = Json)]
pub async fn accept_friend(username: String) -> Result<(), ApiError> {
    let me = current_user().await?;
    relations::accept(&*core()?, &me, &username).await
}

/// `POST /api/v1/relation/decline` `{"username"}`: declines that user's request.
#[server(prefix = "/api/v1", endpoint = "relation/decline", input = Json, output = Json)]
pub async fn decline_friend(username: String) -> Result<(), ApiError> {
    let me = current_user().await?;
    relations::decline(&*core()?, &me, &username).await
}

/// `POST /api/v1/relation/remove` `{"username"}`: unfriends, withdraws the caller's request,
/// or dismisses a "removed you" entry.
#[server(prefix = "/api/v1", endpoint = "relation/remove", input = Json, output = Json)]
pub async fn remove_friend(username: String) -> Result<(), ApiError> {
    let me = current_user().await?;
    relations::remove(&*core()?, &me, &username).await
}

/// `POST /api/v1/relation/list` `{"relation_type","role_type","sent"?}`: the seed's listing
/// for the caller (see docs/API.md for each combination).
#[server(prefix = "/api/v1", endpoint = "relation/list", input = Json, output = Json)]
pub async fn list_relations(
    relation_type: i16,
    role_type: i16,
    #[server(default)] sent: bool,
) -> Result<Vec<RelationEntry>, ApiError> {
    let me = current_user().await?;
    relations::list(&*core()?, &me, relation_type, role_type, sent).await
}
