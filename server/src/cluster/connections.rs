//! How many connections each user has open on all nodes together, so that
//! `WS_MAX_CONNECTIONS_PER_USER` holds for the cluster and not per node.
//!
//! `<prefix>:conns:<user>` is a hash: one field per open connection (`<node>:<conn>`), whose
//! value is the node holding it. Each connection is its own field, so claiming and releasing
//! are idempotent: a release takes away exactly the connection it names, never another one,
//! whether or not its claim got through (a claim that failed because Redis was away, or
//! that timed out here but ran there later). A claim counts only nodes still alive in
//! `<prefix>:nodes` (see [`super::presence`]) and drops the fields of dead ones, so a node
//! that dies frees its users' places within the node TTL. The key expires a day after its
//! last claim; should it expire (or Redis restart empty) under a user's open connections,
//! the cap counts too few for a while, never too many.
use std::sync::LazyLock;

use fred::prelude::Error;
use fred::types::scripts::Script;
use uuid::Uuid;

use super::Cluster;

/// How long a user's counts outlive their last claim.
const KEEP_MS: u64 = 24 * 3600 * 1000;

/// KEYS: the user's connections, the nodes. ARGV: node, connection field, cap, keep ms.
/// Records the connection on `node` and answers the user's total, or -1 (recording
/// nothing) when the live nodes together already hold `cap` others.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local conns = redis.call('HGETALL', KEYS[1])
local alive = {[ARGV[1]] = true}
local total = 0
for i = 1, #conns, 2 do
  local field, node = conns[i], conns[i + 1]
  if alive[node] == nil then
    local until_ = redis.call('ZSCORE', KEYS[2], node)
    alive[node] = (until_ and tonumber(until_) > now) or false
  end
  if not alive[node] then
    redis.call('HDEL', KEYS[1], field)
  elseif field ~= ARGV[2] then
    total = total + 1
  end
end
if total >= tonumber(ARGV[3]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return total + 1",
    )
});

/// KEYS: the user's connections. ARGV: connection field. Forgets that connection.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "redis.call('HDEL', KEYS[1], ARGV[1])
return redis.call('HLEN', KEYS[1])",
    )
});

impl Cluster {
    fn conns_key(&self, user: Uuid) -> String {
        self.key(&format!("conns:{user}"))
    }

    /// A connection's field in its user's hash: unique in the cluster.
    fn conn_field(&self, conn: u64) -> String {
        format!("{}:{conn}", self.node)
    }

    /// Records connection `conn` of `user` on this node, unless the user already has `cap`
    /// others open on the live nodes: then false, and nothing is recorded.
    pub async fn claim_connection(&self, user: Uuid, conn: u64, cap: usize) -> Result<bool, Error> {
        let total: i64 = CLAIM
            .evalsha_with_reload(
                self.client(),
                vec![self.conns_key(user), self.key("nodes")],
                vec![
                    self.node.to_string(),
                    self.conn_field(conn),
                    cap.to_string(),
                    KEEP_MS.to_string(),
                ],
            )
            .await?;
        Ok(total > 0)
    }

    /// Forgets connection `conn` of `user` (whether or not its claim was recorded).
    pub async fn release_connection(&self, user: Uuid, conn: u64) -> Result<(), Error> {
        let _: i64 = RELEASE
            .evalsha_with_reload(
                self.client(),
                vec![self.conns_key(user)],
                vec![self.conn_field(conn)],
            )
            .await?;
        Ok(())
    }
}
