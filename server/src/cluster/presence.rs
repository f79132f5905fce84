//! Who is online on any node, kept in Redis.
//!
//! `<prefix>:online:<user>` is a sorted set of the nodes the user has connections on, each
//! scored with the time (Redis's clock, in ms) until which that holds; a node renews its
//! users every `node_ttl / 3`. `<prefix>:node:<node>:users` lists a node's users, and
//! `<prefix>:nodes` every node with the time until which it counts as alive. A node whose
//! time has passed is dead: the first node to notice ([`Cluster::reap`], one Lua script, so
//! exactly one) takes its users off and answers those now offline everywhere, whose friends
//! it then tells. Every key expires by itself, so a cluster that stops leaves nothing.
use std::time::Duration;

use fred::prelude::Error;
use fred::types::scripts::Script;
use std::sync::LazyLock;
use uuid::Uuid;

use super::Cluster;

/// The time on Redis's clock (every node reads the same one), in ms.
const NOW: &str = "local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

/// Makes a user's set expire with its latest entry.
const KEEP: &str = "local function keep(key)
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if top[2] then redis.call('PEXPIREAT', key, top[2]) end
end
";

/// KEYS: the user's set, the node's users. ARGV: ttl ms, node, user. Answers on how many
/// other nodes the user is online.
static CAME_ONLINE: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(format!(
        "{NOW}{KEEP}
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local others = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
keep(KEYS[1])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], 3 * tonumber(ARGV[1]))
return others"
    ))
});

/// KEYS: the user's set, the node's users. ARGV: node, user. Answers on how many nodes
/// the user is still online.
static WENT_OFFLINE: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(format!(
        "{NOW}
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local left = redis.call('ZCARD', KEYS[1])
if left == 0 then redis.call('DEL', KEYS[1]) end
return left"
    ))
});

/// KEYS: users' sets. Answers, for each, on how many nodes the user is online.
static ONLINE: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(format!(
        "{NOW}
local out = {{}}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('ZCOUNT', key, '(' .. now, '+inf')
end
return out"
    ))
});

/// KEYS: the nodes, the node's users. ARGV: ttl ms, node, the users' key prefix, then
/// users. Answers 1 when the node was not listed (new, or taken for dead).
static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(format!(
        "{NOW}{KEEP}
local ttl = tonumber(ARGV[1])
local added = redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
redis.call('PEXPIRE', KEYS[1], 3 * ttl)
for i = 4, #ARGV do
  local key = ARGV[3] .. ARGV[i]
  redis.call('ZADD', key, now + ttl, ARGV[2])
  keep(key)
  redis.call('SADD', KEYS[2], ARGV[i])
end
redis.call('PEXPIRE', KEYS[2], 3 * ttl)
return added"
    ))
});

/// KEYS: the nodes. ARGV: the key prefix. Takes every dead node off and answers the users
/// who were online only there.
static REAP: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(format!(
        "{NOW}
local offline = {{}}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('ZREM', KEYS[1], node)
  local users = ARGV[1] .. 'node:' .. node .. ':users'
  for _, user in ipairs(redis.call('SMEMBERS', users)) do
    local key = ARGV[1] .. 'online:' .. user
    redis.call('ZREM', key, node)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    if redis.call('ZCARD', key) == 0 then
      redis.call('DEL', key)
      table.insert(offline, user)
    end
  end
  redis.call('DEL', users)
end
return offline"
    ))
});

/// Users renewed per heartbeat script call.
const HEARTBEAT_CHUNK: usize = 1000;

impl Cluster {
    pub(super) fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.settings.prefix)
    }

    fn online_key(&self, user: Uuid) -> String {
        self.key(&format!("online:{user}"))
    }

    fn my_users_key(&self) -> String {
        self.key(&format!("node:{}:users", self.node))
    }

    pub(super) fn ttl_ms(&self) -> u64 {
        u64::try_from(self.settings.node_ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// How often this node renews its users: a third of the time they stay online.
    pub fn heartbeat_every(&self) -> Duration {
        (self.settings.node_ttl / 3).max(Duration::from_millis(100))
    }

    /// Records that `user` has a connection on this node; true when they were online on
    /// no other node (they just came online).
    pub async fn came_online(&self, user: Uuid) -> Result<bool, Error> {
        let others: i64 = CAME_ONLINE
            .evalsha_with_reload(
                self.client(),
                vec![self.online_key(user), self.my_users_key()],
                vec![
                    self.ttl_ms().to_string(),
                    self.node.to_string(),
                    user.to_string(),
                ],
            )
            .await?;
        Ok(others == 0)
    }

    /// Records that `user` has no connection left on this node; true when they are online
    /// on no other node either (they just went offline).
    pub async fn went_offline(&self, user: Uuid) -> Result<bool, Error> {
        let left: i64 = WENT_OFFLINE
            .evalsha_with_reload(
                self.client(),
                vec![self.online_key(user), self.my_users_key()],
                vec![self.node.to_string(), user.to_string()],
            )
            .await?;
        Ok(left == 0)
    }

    /// Whether each of `users` is online on some node.
    pub async fn online(&self, users: &[Uuid]) -> Result<Vec<bool>, Error> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = users.iter().map(|u| self.online_key(*u)).collect();
        let counts: Vec<i64> = ONLINE
            .evalsha_with_reload(self.client(), keys, Vec::<String>::new())
            .await?;
        Ok(counts.into_iter().map(|c| c > 0).collect())
    }

    /// Renews this node and its `users`; true when the node had been taken for dead (or
    /// Redis forgot it), so that its users' friends must hear that they are online.
    pub async fn heartbeat(&self, users: &[Uuid]) -> Result<bool, Error> {
        let mut revived = false;
        let prefix = self.key("online:");
        let mut chunks: Vec<&[Uuid]> = users.chunks(HEARTBEAT_CHUNK).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        for chunk in chunks {
            let mut args = vec![
                self.ttl_ms().to_string(),
                self.node.to_string(),
                prefix.clone(),
            ];
            args.extend(chunk.iter().map(Uuid::to_string));
            let added: i64 = HEARTBEAT
                .evalsha_with_reload(
                    self.client(),
                    vec![self.key("nodes"), self.my_users_key()],
                    args,
                )
                .await?;
            revived |= added == 1;
        }
        Ok(revived)
    }

    /// Takes dead nodes off; answers the users who are now online nowhere.
    pub async fn reap(&self) -> Result<Vec<Uuid>, Error> {
        let offline: Vec<String> = REAP
            .evalsha_with_reload(
                self.client(),
                vec![self.key("nodes")],
                vec![format!("{}:", self.settings.prefix)],
            )
            .await?;
        Ok(offline
            .iter()
            .filter_map(|u| Uuid::parse_str(u).ok())
            .collect())
    }
}
