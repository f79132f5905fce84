//! `/api/v1/call/*`: what the browser needs to set up a call.
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::error::ApiError;

pub use crate::protocol::IceServer;

/// `POST /api/v1/call/ice_servers` `{}`: the STUN and TURN servers the caller's browser uses
/// for calls, TURN with credentials minted for the caller that expire after `TURN_TTL_SECS`.
/// Empty when the operator configured none (calls then work on the same network only).
#[server(prefix = "/api/v1", endpoint = "call/ice_servers", input = Json, output = Json)]
pub async fn ice_servers() -> Result<Vec<IceServer>, ApiError> {
    let user = crate::ssr::accounts::current_user().await?;
    let core = crate::ssr::core()?;
    let now = crate::ssr::now_ms().max(0) as u64 / 1000;
    Ok(crate::ssr::calls::ice_servers(
        &core.settings.ice,
        &user.id().to_string(),
        now,
    ))
}
