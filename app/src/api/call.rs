//! `/api/v1/call/*`: what the browser needs to set up a call.
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// `POST /api/v1/call/ice_servers` `{}`: the STUN and TURN servers the caller's browser uses
/// for calls, TURN with credentials minted for the caller that expire after `TURN_TTL_SECS`.
/// Empty when the operator configured none (calls then work on the same network only).
#[server(prefix = "/api/v1", endpoint = "call/ice_servers", input = Json, output = Json)]
pub async fn ice_servers() -> Result<Vec<IceServer>, ApiError> {
    let user = crate::ssr::auth::current_user().await?;
    let core = crate::ssr::core()?;
    let now = crate::ssr::now_ms().max(0) as u64 / 1000;
    Ok(crate::ssr::calls::ice_servers(
        &core.settings.ice,
        &user.id().to_string(),
        now,
    ))
}
