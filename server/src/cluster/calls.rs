//! Calls on a cluster: a call is held by the node of the caller's connection; sessions on
//! other nodes reach it over the bus. Redis knows which calls exist and who is in one, so
//! that a callee in a call held anywhere makes another call busy, and a node can answer
//! `not_found` for a call that exists nowhere. Every key expires after the node TTL unless
//! the holding node renews it, so a dead node's calls free their users.
//!
//! `<prefix>:incall:<user>` holds the id of the call the user is in; `<prefix>:call:<id>`
//! marks a call that exists.
use std::sync::LazyLock;

use fred::prelude::Error;
use fred::types::scripts::Script;
use uuid::Uuid;

use super::Cluster;

/// KEYS: the caller's, the callee's, the call's. ARGV: call id, ttl ms. Answers 0 when the
/// call is claimed, 1 when the caller is in another call, 2 when the callee is.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "local mine = redis.call('GET', KEYS[1])
if mine and mine ~= ARGV[1] then return 1 end
local theirs = redis.call('GET', KEYS[2])
if theirs and theirs ~= ARGV[1] then return 2 end
for i = 1, 3 do redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
return 0",
    )
});

/// KEYS as for `CLAIM`. ARGV: call id, ttl ms (0: release). Renews or releases what this
/// call holds, and nothing another call holds.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "for i = 1, 3 do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    if ARGV[2] == '0' then redis.call('DEL', KEYS[i])
    else redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
  end
end
return 0",
    )
});

/// KEYS: the call's. Answers 1 when the call exists.
static EXISTS: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua("return redis.call('EXISTS', KEYS[1])"));

/// How a claim for a new call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Claimed,
    CallerBusy,
    CalleeBusy,
}

impl Cluster {
    fn call_keys(&self, call_id: &str, caller: Uuid, callee: Uuid) -> Vec<String> {
        vec![
            self.key(&format!("incall:{caller}")),
            self.key(&format!("incall:{callee}")),
            self.key(&format!("call:{call_id}")),
        ]
    }

    /// Marks `caller` and `callee` as in the call `call_id`, unless either is in another.
    pub async fn claim_call(
        &self,
        call_id: &str,
        caller: Uuid,
        callee: Uuid,
    ) -> Result<Claim, Error> {
        let answer: i64 = CLAIM
            .evalsha_with_reload(
                self.client(),
                self.call_keys(call_id, caller, callee),
                vec![call_id.to_owned(), self.ttl_ms().to_string()],
            )
            .await?;
        Ok(match answer {
            1 => Claim::CallerBusy,
            2 => Claim::CalleeBusy,
            _ => Claim::Claimed,
        })
    }

    /// Renews what the call holds for another node TTL.
    pub async fn renew_call(&self, call_id: &str, caller: Uuid, callee: Uuid) -> Result<(), Error> {
        self.renew(call_id, caller, callee, self.ttl_ms()).await
    }

    /// Frees the call's users and id.
    pub async fn release_call(
        &self,
        call_id: &str,
        caller: Uuid,
        callee: Uuid,
    ) -> Result<(), Error> {
        self.renew(call_id, caller, callee, 0).await
    }

    async fn renew(
        &self,
        call_id: &str,
        caller: Uuid,
        callee: Uuid,
        ttl: u64,
    ) -> Result<(), Error> {
        RENEW
            .evalsha_with_reload::<i64, _, _>(
                self.client(),
                self.call_keys(call_id, caller, callee),
                vec![call_id.to_owned(), ttl.to_string()],
            )
            .await
            .map(|_| ())
    }

    /// Whether the call `call_id` exists on some node.
    pub async fn call_exists(&self, call_id: &str) -> Result<bool, Error> {
        let n: i64 = EXISTS
            .evalsha_with_reload(
                self.client(),
                vec![self.key(&format!("call:{call_id}"))],
                Vec::<String>::new(),
            )
            .await?;
        Ok(n == 1)
    }
}
