//! How many connections each user has open on all nodes together, so that
//! `WS_MAX_CONNECTIONS_PER_USER` holds for the cluster and not per node.
//!
//! `<prefix>:conns:<user>` is a hash: node → that node's open connections of the user. A
//! claim counts only nodes still alive in `<prefix>:nodes` (see [`super::presence`]) and
//! drops the entries of dead ones, so a node that dies frees its users' places within the
//! node TTL. The key expires a day after its last claim; should it expire under a user's
//! open connections, the cap counts too few for a while, never too many.
use std::sync::LazyLock;

use fred::prelude::Error;
use fred::types::scripts::Script;
use uuid::Uuid;

use super::Cluster;

/// How long a user's counts outlive their last claim.
const KEEP_MS: u64 = 24 * 3600 * 1000;

/// KEYS: the user's counts, the nodes. ARGV: node, cap, keep ms. Counts one more
/// connection on `node` and answers the user's total, or -1 (counting nothing) when the
/// live nodes together already hold `cap`.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local counts = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #counts, 2 do
  local node, n = counts[i], tonumber(counts[i + 1])
  local alive = node == ARGV[1]
  if not alive then
    local until_ = redis.call('ZSCORE', KEYS[2], node)
    alive = until_ and tonumber(until_) > now
  end
  if alive then total = total + n else redis.call('HDEL', KEYS[1], node) end
end
if total >= tonumber(ARGV[2]) then return -1 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return total + 1",
    )
});

/// KEYS: the user's counts. ARGV: node. Counts one connection less on `node`.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return redis.call('HLEN', KEYS[1])",
    )
});

impl Cluster {
    fn conns_key(&self, user: Uuid) -> String {
        self.key(&format!("conns:{user}"))
    }

    /// Counts a new connection of `user` on this node, unless the user already has `cap`
    /// open on the live nodes: then false, and nothing is counted.
    pub async fn claim_connection(&self, user: Uuid, cap: usize) -> Result<bool, Error> {
        let total: i64 = CLAIM
            .evalsha_with_reload(
                self.client(),
                vec![self.conns_key(user), self.key("nodes")],
                vec![self.node.to_string(), cap.to_string(), KEEP_MS.to_string()],
            )
            .await?;
        Ok(total > 0)
    }

    /// Counts one connection of `user` on this node less (one claimed before).
    pub async fn release_connection(&self, user: Uuid) -> Result<(), Error> {
        let _: i64 = RELEASE
            .evalsha_with_reload(
                self.client(),
                vec![self.conns_key(user)],
                vec![self.node.to_string()],
            )
            .await?;
        Ok(())
    }
}
