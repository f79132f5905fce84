//! Several nodes of one cluster (PostgreSQL or MariaDB, and Redis) with real clients on
//! different nodes: every cross-node path behaves as on one node, and the `after` cursor
//! never skips a message while three nodes write at once.
mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::people::{User, befriend, connect, group, session, text, to_user, user};
use common::{TestServer, Ws};
use reqwest::StatusCode;
use serde_json::{Value, json};

cluster_tests!(
    messages_receipts_and_typing_cross_nodes,
    presence_is_one_across_nodes,
    relation_changes_and_ended_sessions_reach_every_node,
    three_writers_never_make_a_reader_skip,
    a_call_rings_and_signals_across_nodes,
    metrics_count_what_happens_and_stay_off_the_public_port,
);
shared_database_tests!(
    redis_stops_for_ten_seconds,
    a_node_stopped_or_killed_loses_nothing,
    the_login_and_registration_throttle_counts_on_every_node,
    message_and_request_allowances_hold_across_nodes,
    leased_message_tokens_keep_the_allowance_across_nodes,
    connections_and_frames_are_counted_over_every_node,
    a_socket_opened_while_redis_was_away_frees_no_other_place,
    a_call_resumes_on_another_node,
    a_node_that_stops_ends_its_calls,
);

fn to_group(id: &str) -> Value {
    json!({"group": id})
}

/// `count` nodes of a cluster on the machine's Redis, each configured by `tweak`, with
/// Alice and Bob, friends, registered through the first.
async fn nodes_and_friends(
    backend: common::Backend,
    count: usize,
    tweak: impl FnOnce(&mut server::Config),
) -> Option<(Vec<TestServer>, User, User)> {
    let nodes = common::cluster_with(backend, count, tweak).await?;
    let alice = user(&nodes[0], "alice").await;
    let bob = user(&nodes[0], "bob").await;
    befriend(&nodes[0], &alice, &bob).await;
    Some((nodes, alice, bob))
}

async fn messages_receipts_and_typing_cross_nodes(nodes: Vec<TestServer>) {
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let alice = user(a, "alice").await;
    let bob = user(b, "bob").await;
    let carol = user(c, "carol").await;
    befriend(a, &alice, &bob).await;
    let group = group(c, &carol, &[&alice, &bob]).await;

    let mut alice_a = connect(a, &alice).await;
    let mut alice_b = connect(b, &alice).await;
    let mut bob_b = connect(b, &bob).await;
    let mut bob_c = connect(c, &bob).await;
    let mut carol_c = connect(c, &carol).await;

    // The first message of a conversation nobody opened yet, sender on A, receiver on B
    // and C, the sender's other tab on B.
    alice_a.send(text("m1", to_user(&bob), "hello")).await;
    let ack = alice_a.next_of("ack").await;
    let id = ack["id"].as_i64().unwrap();
    for ws in [&mut bob_b, &mut bob_c, &mut alice_b] {
        let m = ws.next_of("message").await;
        assert_eq!(
            (m["id"].as_i64(), m["from"].as_str()),
            (Some(id), Some(alice.id.as_str()))
        );
    }
    alice_a.none_of("message", 300).await;

    // A group message from C reaches everybody, each connection once.
    carol_c
        .send(text("g1", to_group(&group), "club news"))
        .await;
    let gid = carol_c.next_of("ack").await["id"].as_i64().unwrap();
    for ws in [&mut alice_a, &mut alice_b, &mut bob_b, &mut bob_c] {
        assert_eq!(ws.next_of("message").await["id"].as_i64(), Some(gid));
    }
    for ws in [&mut alice_a, &mut bob_b, &mut carol_c] {
        ws.none_of("message", 200).await;
    }

    // Bob reads on C: Alice's tabs on A and B get the receipt.
    bob_c
        .send(json!({"type": "read", "conversation": to_user(&alice), "up_to": id}))
        .await;
    for ws in [&mut alice_a, &mut alice_b] {
        let r = ws.next_of("receipt").await;
        assert_eq!(r["up_to"].as_i64(), Some(id));
        assert_eq!(r["reader"], bob.id.as_str());
    }

    // Typing on B reaches Alice on A.
    bob_b
        .send(json!({"type": "typing", "to": to_user(&alice)}))
        .await;
    let t = alice_a.next_of("typing").await;
    assert_eq!(t["from"], bob.id.as_str());
}

async fn presence_is_one_across_nodes(nodes: Vec<TestServer>) {
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let alice = user(a, "alice").await;
    let bob = user(a, "bob").await;
    befriend(a, &alice, &bob).await;

    let mut bob_a = connect(a, &bob).await;
    // Alice connects on B: Bob (on A) is online in her first frame.
    let mut alice_b = Ws::connect(b, &alice.cookie).await;
    let ready = alice_b.next_of("ready").await;
    let bobs = ready["presence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user"] == bob.id.as_str())
        .cloned()
        .expect("bob in presence");
    assert_eq!(bobs["online"], true, "{ready}");
    // Bob hears Alice came online, once.
    let p = bob_a.next_of("presence").await;
    assert_eq!(
        (p["user"].as_str(), p["online"].as_bool()),
        (Some(alice.id.as_str()), Some(true))
    );

    // Bob opens a tab on C and closes the one on A: still online, nobody is told otherwise.
    let bob_c = connect(c, &bob).await;
    bob_a.close().await;
    alice_b.none_of("presence", 700).await;
    // Closing the last one, anywhere, takes him offline.
    bob_c.close().await;
    let p = alice_b.next_of("presence").await;
    assert_eq!(
        (p["user"].as_str(), p["online"].as_bool()),
        (Some(bob.id.as_str()), Some(false))
    );
    assert!(p["last_seen"].as_i64().is_some(), "{p}");
}

async fn relation_changes_and_ended_sessions_reach_every_node(nodes: Vec<TestServer>) {
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let alice = user(a, "alice").await;
    let bob = user(a, "bob").await;
    befriend(a, &alice, &bob).await;
    let mut bob_b = connect(b, &bob).await;
    let mut alice_c = connect(c, &alice).await;
    // B now holds "friends" in its cache.
    bob_b.send(text("before", to_user(&alice), "hi")).await;
    bob_b.next_of("ack").await;
    alice_c.next_of("message").await;

    // Alice unfriends Bob through A: Bob on B hears it, and B refuses his next message at
    // once (its cache forgot the friendship when the event arrived).
    let r = session(a, &alice)
        .post("/api/v1/relation/remove", json!({"username": bob.name}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let rel = bob_b.next_of("relation").await;
    assert_eq!(rel["change"], "friend_removed");
    bob_b
        .send(text("after", to_user(&alice), "still there?"))
        .await;
    let err = bob_b.next_of("error").await;
    assert_eq!(err["code"], "not_friends", "{err}");
    alice_c.none_of("message", 300).await;

    // Bob signs out through A: his socket on B closes at once, not at the next check.
    let started = Instant::now();
    let r = session(a, &bob)
        .post("/api/v1/user/logout", json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let code = bob_b.close_code(Duration::from_secs(5)).await;
    assert_eq!(code, Ok(Some(app::protocol::close::SESSION_ENDED)));
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Three nodes write into one group and into direct conversations at once while a reader
/// on yet another connection syncs all the while: it ends with every message it may see,
/// each exactly once and in ascending id order, which is only possible if the cursor never
/// passed a message that committed later.
async fn three_writers_never_make_a_reader_skip(nodes: Vec<TestServer>) {
    const PER_WRITER: usize = 60;
    let reader = user(&nodes[0], "reader").await;
    let mut writers = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        for j in 0..2 {
            let w = user(node, &format!("writer{i}{j}")).await;
            befriend(node, &reader, &w).await;
            writers.push((i, w));
        }
    }
    let members: Vec<&User> = writers.iter().map(|(_, w)| w).collect();
    let group = group(&nodes[0], &reader, &members).await;

    let mut sync_ws = connect(&nodes[1], &reader).await;
    let mut tasks = Vec::new();
    for (n, (node, w)) in writers.iter().enumerate() {
        let mut ws = connect(&nodes[*node], w).await;
        let (reader_id, group) = (reader.id.clone(), group.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for k in 0..PER_WRITER {
                let to = if k % 2 == 0 {
                    json!({"user": reader_id})
                } else {
                    to_group(&group)
                };
                ws.send(text(&format!("w{n}-{k}"), to, "x")).await;
                // Two in flight at a time: batches of several messages on every node.
                if k % 2 == 1 {
                    for _ in 0..2 {
                        ids.push(ws.next_of("ack").await["id"].as_i64().unwrap());
                    }
                }
            }
            ids
        }));
    }

    // The reader syncs from its cursor over and over while the writers write.
    let mut seen: Vec<i64> = Vec::new();
    let mut cursor = 0i64;
    while !tasks.iter().all(|t| t.is_finished()) {
        sync_once(&mut sync_ws, &mut cursor, &mut seen).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let mut written = Vec::new();
    for t in tasks {
        written.extend(t.await.expect("writer"));
    }
    sync_once(&mut sync_ws, &mut cursor, &mut seen).await;

    assert_eq!(written.len(), writers.len() * PER_WRITER);
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a message came twice");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "out of order");
    let mut expected = written.clone();
    expected.sort_unstable();
    // The group's creation notices and such are not in `written`; every written one is seen.
    let missing: Vec<i64> = expected
        .iter()
        .filter(|id| !unique.contains(id))
        .copied()
        .collect();
    assert!(missing.is_empty(), "the reader never saw {missing:?}");
}

/// Syncs from `cursor` until the server has nothing more, collecting the ids.
async fn sync_once(ws: &mut Ws, cursor: &mut i64, seen: &mut Vec<i64>) {
    loop {
        ws.send(json!({"type": "sync", "after": *cursor})).await;
        let page = ws.next_of("synced").await;
        for m in page["messages"].as_array().unwrap() {
            seen.push(m["id"].as_i64().unwrap());
        }
        *cursor = page["cursor"].as_i64().unwrap();
        if page["more"] != true {
            return;
        }
    }
}

/// A Redis of the test's own (`redis-server` on a free port, nothing on disk), to stop
/// and start again.
struct PrivateRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut redis = Self { port, child: None };
        redis.resume();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn resume(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `node`'s health check answers `status`.
async fn wait_health(node: &TestServer, status: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let health = node.session().get("/healthz", &[]).await;
        if health.body["status"] == status {
            return health.body;
        }
        assert!(Instant::now() < deadline, "health stayed {}", health.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Redis goes away for 10 s while both nodes have traffic: each node goes on storing,
/// acknowledging and delivering to its own connections, says `degraded`, and when Redis is
/// back every client is told to resync and ends up with everything, once.
async fn redis_stops_for_ten_seconds(backend: common::Backend) {
    let mut redis = PrivateRedis::start();
    let Some(nodes) = common::cluster_on(backend, &redis.url(), 2, |_| {}).await else {
        return;
    };
    let (a, b) = (&nodes[0], &nodes[1]);
    let alice = user(a, "alice").await;
    let bob = user(a, "bob").await;
    befriend(a, &alice, &bob).await;
    let mut alice_a = connect(a, &alice).await;
    let mut alice_a2 = connect(a, &alice).await;
    let mut bob_b = connect(b, &bob).await;

    redis.kill();
    for node in [a, b] {
        let health = wait_health(node, "degraded", Duration::from_secs(10)).await;
        assert_eq!(health["bus"], "unavailable", "{health}");
    }
    let down = Instant::now();
    let mut alice_sent = Vec::new();
    let mut bob_sent = Vec::new();
    let mut k = 0;
    while down.elapsed() < Duration::from_secs(10) {
        alice_a
            .send(text(&format!("a{k}"), to_user(&bob), "while down"))
            .await;
        alice_sent.push(alice_a.next_of("ack").await["id"].as_i64().unwrap());
        // Alice's other tab on the same node sees it at once.
        assert_eq!(
            alice_a2.next_of("message").await["id"].as_i64(),
            alice_sent.last().copied()
        );
        bob_b
            .send(text(&format!("b{k}"), to_user(&alice), "me too"))
            .await;
        bob_sent.push(bob_b.next_of("ack").await["id"].as_i64().unwrap());
        k += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    redis.resume();
    for node in [a, b] {
        wait_health(node, "ok", Duration::from_secs(15)).await;
    }
    // Each client is told to resync and, syncing, gets what it missed exactly once.
    for (ws, want) in [(&mut bob_b, &alice_sent), (&mut alice_a, &bob_sent)] {
        let mut seen = Vec::new();
        loop {
            let frame = ws.next().await.expect("open");
            if frame["type"] == "resync" {
                break;
            }
            if frame["type"] == "message" {
                seen.push(frame["id"].as_i64().unwrap());
            }
        }
        let mut cursor = 0;
        sync_once(ws, &mut cursor, &mut seen).await;
        let got: HashSet<i64> = seen.iter().copied().collect();
        for id in want {
            assert!(got.contains(id), "message {id} never arrived");
        }
    }
    // And the bus carries live traffic again.
    alice_a.send(text("after", to_user(&bob), "back")).await;
    let id = alice_a.next_of("ack").await["id"].as_i64();
    assert_eq!(bob_b.next_of("message").await["id"].as_i64(), id);
}

/// A node running as a child process of the test (the real binary), so that it can be
/// sent signals: same database, Redis and prefix as `like`.
struct ChildNode {
    child: std::process::Child,
    base: String,
}

impl ChildNode {
    async fn start(like: &TestServer) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let c = &like.config;
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", &like.database_url)
            .env("DATA_DIR", &c.data_dir)
            .env("REDIS_URL", &c.redis_url)
            .env("REDIS_PREFIX", &c.redis_prefix)
            .env("CLUSTER_NODE_TTL_SECS", c.cluster_node_ttl_secs.to_string())
            .env("REGISTER_MAX_PER_IP", "10000")
            .env("LOG_LEVEL", "warn")
            .spawn()
            .expect("start the server binary");
        let node = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let health = like
                .client
                .get(format!("{}/healthz", node.base))
                .send()
                .await;
            if let Ok(res) = health
                && res.json::<Value>().await.is_ok_and(|b| b["status"] == "ok")
            {
                return node;
            }
            assert!(Instant::now() < deadline, "the child node did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A WebSocket to this node with `u`'s session; answers it after `ready`.
    async fn connect(&self, u: &User) -> Ws {
        let url = format!("{}/ws", self.base.replacen("http://", "ws://", 1));
        let mut ws = Ws::try_connect_url(&url, Some(&u.cookie), &[])
            .await
            .expect("upgrade");
        assert_eq!(ws.next().await.expect("ready")["type"], "ready");
        ws
    }

    fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }
}

impl Drop for ChildNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Alice writes through a node that goes away mid-stream, gracefully (SIGTERM: sockets
/// closed with 1012, the batch in hand stored, the process exits) and then brutally
/// (SIGKILL). Each time she reconnects to the other node and sends what was not
/// acknowledged again, with the same client ids: Bob, on the surviving node, ends with
/// every message exactly once, and sees her offline when her node died.
async fn a_node_stopped_or_killed_loses_nothing(backend: common::Backend) {
    let Some((nodes, alice, bob)) = nodes_and_friends(backend, 1, |_| {}).await else {
        return;
    };
    let a = &nodes[0];
    let mut bob_a = connect(a, &bob).await;
    let mut received: Vec<i64> = Vec::new();
    for (round, signal) in ["TERM", "KILL"].into_iter().enumerate() {
        let mut b = ChildNode::start(a).await;
        let mut alice_b = b.connect(&alice).await;
        let p = bob_a.next_of("presence").await;
        assert_eq!(p["online"], true, "{p}");
        let ids: Vec<String> = (0..30).map(|k| format!("r{round}-{k}")).collect();
        for id in &ids {
            alice_b.send(text(id, to_user(&bob), "mid-stream")).await;
        }
        b.signal(signal);
        // What Alice's page learns before her socket ends.
        let (frames, code) = alice_b.until_closed(Duration::from_secs(10)).await;
        let acked: HashSet<String> = frames
            .iter()
            .filter(|f| f["type"] == "ack")
            .map(|f| f["client_id"].as_str().unwrap().to_owned())
            .collect();
        if signal == "TERM" {
            assert_eq!(code, Some(app::protocol::close::RESTARTING));
            let status = b.child.wait().expect("exit status");
            assert!(status.success(), "a graceful stop exits 0: {status}");
        } else {
            assert_eq!(code, None, "a killed node says nothing");
            // Her node is dead: Bob sees her go offline within the node TTL.
            let p = bob_a.next_of("presence").await;
            assert_eq!(
                (p["user"].as_str(), p["online"].as_bool()),
                (Some(alice.id.as_str()), Some(false))
            );
        }
        // She reconnects to the surviving node and resends what was not acknowledged.
        let mut alice_a = connect(a, &alice).await;
        for id in ids.iter().filter(|id| !acked.contains(*id)) {
            alice_a.send(text(id, to_user(&bob), "mid-stream")).await;
            alice_a.next_of("ack").await;
        }
        alice_a.close().await;
        // Bob, live and then by sync, has each of the 30 once.
        loop {
            match bob_a.next_within(Duration::from_millis(500)).await {
                Ok(Some(f)) if f["type"] == "message" => received.push(f["id"].as_i64().unwrap()),
                Ok(Some(_)) => {}
                _ => break,
            }
        }
    }
    let mut cursor = 0;
    let mut synced = Vec::new();
    sync_once(&mut bob_a, &mut cursor, &mut synced).await;
    assert_eq!(synced.len(), 60, "each message stored once: {synced:?}");
    let live: HashSet<i64> = received.iter().copied().collect();
    assert_eq!(live.len(), received.len(), "a message arrived twice");
    assert!(live.iter().all(|id| synced.contains(id)));
}

fn call(kind: &str, call_id: &str) -> Value {
    json!({"type": kind, "call_id": call_id})
}

fn invite(call_id: &str, to: &User, media: &str) -> Value {
    json!({"type": "call_invite", "call_id": call_id, "to": to_user(to), "media": media})
}

/// Alice on A calls Bob, whose tabs are on B and C; Carol on B calls Bob meanwhile. Each
/// step is what one node does: ringing on every device, busy, answered elsewhere, and
/// signals only between the two answering sessions, wherever they are.
async fn a_call_rings_and_signals_across_nodes(nodes: Vec<TestServer>) {
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let alice = user(a, "alice").await;
    let bob = user(b, "bob").await;
    let carol = user(c, "carol").await;
    befriend(a, &alice, &bob).await;
    befriend(a, &carol, &bob).await;
    let mut alice_a = connect(a, &alice).await;
    let mut bob_b = connect(b, &bob).await;
    let mut bob_c = connect(c, &bob).await;
    let mut carol_b = connect(b, &carol).await;
    let first = uuid::Uuid::new_v4().to_string();
    let second = uuid::Uuid::new_v4().to_string();

    alice_a.send(invite(&first, &bob, "video")).await;
    assert_eq!(
        alice_a.next_of("call_ringing").await["call_id"],
        first.as_str()
    );
    for tab in [&mut bob_b, &mut bob_c] {
        assert_eq!(tab.next_of("call_invite").await["from"], alice.id.as_str());
    }
    // A tab Bob opens on A while it rings rings too.
    let mut bob_a = connect(a, &bob).await;
    assert_eq!(
        bob_a.next_of("call_invite").await["call_id"],
        first.as_str()
    );

    // Bob answers on C.
    bob_c.send(call("call_accept", &first)).await;
    assert_eq!(
        alice_a.next_of("call_accepted").await["call_id"],
        first.as_str()
    );
    for tab in [&mut bob_b, &mut bob_a] {
        assert_eq!(
            tab.next_of("call_ended").await["outcome"],
            "answered_elsewhere"
        );
    }
    // Carol, on B, finds him busy: the call is held on A.
    carol_b.send(invite(&second, &bob, "audio")).await;
    assert_eq!(carol_b.next_of("call_ended").await["outcome"], "busy");

    // Signals go between Alice on A and Bob on C only.
    alice_a
        .send(json!({"type": "call_offer", "call_id": first, "sdp": "v=0 offer"}))
        .await;
    assert_eq!(bob_c.next_of("call_offer").await["sdp"], "v=0 offer");
    bob_b
        .send(json!({"type": "call_answer", "call_id": first, "sdp": "v=0 wrong tab"}))
        .await;
    let refused = bob_b.next_of("error").await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    assert_eq!(refused["client_id"], first.as_str());
    bob_c
        .send(json!({"type": "call_answer", "call_id": first, "sdp": "v=0 answer"}))
        .await;
    assert_eq!(alice_a.next_of("call_answer").await["sdp"], "v=0 answer");
    let candidate = json!({"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdp_mid": "0", "sdp_m_line_index": 0});
    bob_c
        .send(json!({"type": "call_candidate", "call_id": first, "candidate": candidate}))
        .await;
    assert_eq!(
        alice_a.next_of("call_candidate").await["candidate"],
        candidate
    );
    bob_b.none_of("call_offer", 200).await;

    // Bob hangs up on C: both sides hear it, the record is stored once.
    bob_c.send(call("call_hangup", &first)).await;
    assert_eq!(alice_a.next_of("call_ended").await["outcome"], "completed");
    assert_eq!(bob_c.next_of("call_ended").await["outcome"], "completed");
    // Signals for a call that is over, sent from a node that never held it.
    bob_c
        .send(json!({"type": "call_offer", "call_id": first, "sdp": "v=0 late"}))
        .await;
    assert_eq!(bob_c.next_of("error").await["code"], "not_found");

    // Bob is free again: Carol's next call rings him on every node, and she cancels.
    let third = uuid::Uuid::new_v4().to_string();
    carol_b.send(invite(&third, &bob, "audio")).await;
    assert_eq!(
        carol_b.next_of("call_ringing").await["call_id"],
        third.as_str()
    );
    for tab in [&mut bob_a, &mut bob_c] {
        assert_eq!(tab.next_of("call_invite").await["call_id"], third.as_str());
    }
    carol_b.send(call("call_cancel", &third)).await;
    for tab in [&mut bob_a, &mut bob_b, &mut bob_c] {
        let ended = loop {
            let f = tab.next_of("call_ended").await;
            if f["call_id"] == third.as_str() {
                break f;
            }
        };
        assert_eq!(ended["outcome"], "cancelled");
    }
}

/// Alice, on A, calls Bob, on B. Each side's socket drops in turn and comes back on the
/// other node: the call goes on (held on A all along), with what was signalled meanwhile.
async fn a_call_resumes_on_another_node(backend: common::Backend) {
    let Some((nodes, alice, bob)) = nodes_and_friends(backend, 2, |_| {}).await else {
        return;
    };
    let (a, b) = (&nodes[0], &nodes[1]);
    let mut alice_a = connect(a, &alice).await;
    let mut bob_b = connect(b, &bob).await;
    let id = uuid::Uuid::new_v4().to_string();
    alice_a.send(invite(&id, &bob, "video")).await;
    bob_b.next_of("call_invite").await;
    bob_b.send(call("call_accept", &id)).await;
    alice_a.next_of("call_accepted").await;

    // Alice's socket on A (the call's node) drops; Bob's offer meanwhile is kept.
    alice_a.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    bob_b
        .send(json!({"type": "call_offer", "call_id": id, "sdp": "v=0 while away"}))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut alice_b = connect(b, &alice).await;
    alice_b.send(call("call_resume", &id)).await;
    assert_eq!(alice_b.next_of("call_offer").await["sdp"], "v=0 while away");
    alice_b
        .send(json!({"type": "call_answer", "call_id": id, "sdp": "v=0 from b"}))
        .await;
    assert_eq!(bob_b.next_of("call_answer").await["sdp"], "v=0 from b");

    // Bob's socket on B drops, and he comes back on A.
    bob_b.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut bob_a = connect(a, &bob).await;
    bob_a.send(call("call_resume", &id)).await;
    alice_b
        .send(json!({"type": "call_offer", "call_id": id, "sdp": "v=0 again"}))
        .await;
    assert_eq!(bob_a.next_of("call_offer").await["sdp"], "v=0 again");
    bob_a.send(call("call_hangup", &id)).await;
    assert_eq!(alice_b.next_of("call_ended").await["outcome"], "completed");
    assert_eq!(bob_a.next_of("call_ended").await["outcome"], "completed");
}

/// Alice's call to Bob is held by her node, which is stopped gracefully (SIGTERM): the
/// call ends as failed on both sides, its record is stored, and she can call him again at
/// once from the other node; resuming the old call finds nothing.
async fn a_node_that_stops_ends_its_calls(backend: common::Backend) {
    let Some((nodes, alice, bob)) = nodes_and_friends(backend, 1, |_| {}).await else {
        return;
    };
    let a = &nodes[0];
    let mut bob_a = connect(a, &bob).await;
    let b = ChildNode::start(a).await;
    let mut alice_b = b.connect(&alice).await;
    let id = uuid::Uuid::new_v4().to_string();
    alice_b.send(invite(&id, &bob, "audio")).await;
    bob_a.next_of("call_invite").await;
    bob_a.send(call("call_accept", &id)).await;
    alice_b.next_of("call_accepted").await;

    b.signal("TERM");
    let ended = bob_a.next_of("call_ended").await;
    assert_eq!(ended["call_id"], id.as_str());
    assert_eq!(ended["outcome"], "failed");
    // Her socket closes with 1012 (its queue is dropped: she learns the call's end from
    // the record, or from the resume below).
    let (_, code) = alice_b.until_closed(Duration::from_secs(10)).await;
    assert_eq!(code, Some(app::protocol::close::RESTARTING));
    let record = loop {
        let m = bob_a.next_of("message").await;
        if m["content"]["kind"] == "call" {
            break m;
        }
    };
    assert_eq!(record["content"]["outcome"], "failed");

    let mut alice_a = connect(a, &alice).await;
    alice_a.send(call("call_resume", &id)).await;
    assert_eq!(alice_a.next_of("error").await["code"], "not_found");
    let again = uuid::Uuid::new_v4().to_string();
    alice_a.send(invite(&again, &bob, "audio")).await;
    assert_eq!(
        alice_a.next_of("call_ringing").await["call_id"],
        again.as_str()
    );
}

/// A guesser who spreads attempts over the nodes gets what one node would give, no more;
/// the same for accounts created from one address.
async fn the_login_and_registration_throttle_counts_on_every_node(backend: common::Backend) {
    let Some(nodes) = common::cluster_with(backend, 2, |c| {
        c.register_max_per_ip = 3;
        c.login_max_failures = 4;
    })
    .await
    else {
        return;
    };
    let (a, b) = (&nodes[0], &nodes[1]);
    a.session().register("alice").await;
    b.session().register("bob").await;
    a.session().register("carol").await;
    let fourth = b
        .session()
        .post(
            "/api/v1/user/register",
            json!({"username": "dave", "nickname": "Dave", "password": common::PASSWORD}),
        )
        .await;
    assert_eq!(
        fourth.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        fourth.text
    );

    for node in [a, b, a, b] {
        let r = node.session().login("alice", "not her password").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    }
    for node in [a, b] {
        let r = node.session().login("alice", common::PASSWORD).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
        assert!(r.headers.contains_key("retry-after"));
    }
    // Bob's own sign-in, from the same address, is another key.
    let r = b.session().login("bob", common::PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// A user with tabs on two nodes gets one allowance of messages, and one of friend
/// requests, not one per node.
async fn message_and_request_allowances_hold_across_nodes(backend: common::Backend) {
    let Some((nodes, alice, bob)) = nodes_and_friends(backend, 2, |c| {
        c.ws_send_burst = 6;
        c.ws_send_rate = 1;
        // A burst of two: one for befriending Bob, one more.
        c.contact_requests_per_hour = 6;
    })
    .await
    else {
        return;
    };
    let (a, b) = (&nodes[0], &nodes[1]);
    let carol = user(a, "carol").await;
    let dave = user(a, "dave").await;
    let mut alice_a = connect(a, &alice).await;
    let mut alice_b = connect(b, &alice).await;
    for k in 0..3 {
        for (tab, ws) in [("a", &mut alice_a), ("b", &mut alice_b)] {
            ws.send(text(&format!("m{k}{tab}"), to_user(&bob), "hi"))
                .await;
            ws.next_of("ack").await;
        }
    }
    alice_b
        .send(text("one-too-many", to_user(&bob), "hi"))
        .await;
    let refused = alice_b.next_of("error").await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");

    // The second request of the burst, wherever it is sent from, is the last.
    let r = session(a, &alice)
        .post(
            "/api/v1/relation/request",
            json!({"username": carol.name, "memo": ""}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = session(b, &alice)
        .post(
            "/api/v1/relation/request",
            json!({"username": dave.name, "memo": ""}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
}

/// The value of the sample `name` (with its labels, as Prometheus prints them), summed over
/// every test server of this process that recorded it.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Messages, connections, closes and bus traffic show in `/metrics`, with no label naming a
/// person; the public port has no `/metrics`.
async fn metrics_count_what_happens_and_stay_off_the_public_port(nodes: Vec<TestServer>) {
    let (a, b) = (&nodes[0], &nodes[1]);
    let alice = user(a, "alice").await;
    let bob = user(a, "bob").await;
    befriend(a, &alice, &bob).await;
    // The recorder is one per process (other tests run beside this one): compare figures
    // before and after, and only ones that can only grow.
    let before = a.metrics_text().await;
    let mut alice_a = connect(a, &alice).await;
    let mut bob_b = connect(b, &bob).await;
    for k in 0..3 {
        alice_a
            .send(text(&format!("m{k}"), to_user(&bob), "hi"))
            .await;
        alice_a.next_of("ack").await;
        bob_b.next_of("message").await;
    }
    bob_b.send(json!({"type": "sync", "after": 0})).await;
    bob_b.next_of("synced").await;
    bob_b.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = a.metrics_text().await;
    for (name, at_least) in [
        ("qc_messages_persisted_total", 3.0),
        ("qc_ws_connects_total", 2.0),
        ("qc_sync_requests_total", 1.0),
        ("qc_bus_published_total", 3.0),
        ("qc_bus_received_total", 3.0),
        ("qc_ws_closes_total{code=\"client\"}", 1.0),
    ] {
        let grew = sample(&after, name) - sample(&before, name);
        assert!(grew >= at_least, "{name} grew by {grew}:\n{after}");
    }
    for name in [
        "qc_persist_seconds_bucket",
        "qc_bus_lag_seconds_bucket",
        "qc_ws_connections",
        "qc_db_pool_connections",
        "qc_bus_up",
    ] {
        assert!(after.contains(name), "{name} missing:\n{after}");
    }
    for who in [&alice, &bob] {
        assert!(!after.contains(&who.id) && !after.contains(&who.name));
    }
    let public = a.session().get("/metrics", &[]).await;
    assert_eq!(public.status, StatusCode::NOT_FOUND, "{}", public.text);
}

/// With a burst of 20 each node takes two tokens from Redis at a time (a tenth of the
/// burst); a user sending from two nodes in turn still gets the burst, not more than a
/// lease beyond it, and is then refused on both.
async fn leased_message_tokens_keep_the_allowance_across_nodes(backend: common::Backend) {
    let Some((nodes, alice, bob)) = nodes_and_friends(backend, 2, |c| {
        c.ws_send_burst = 20;
        c.ws_send_rate = 1;
    })
    .await
    else {
        return;
    };
    let (a, b) = (&nodes[0], &nodes[1]);
    let mut tabs = [connect(a, &alice).await, connect(b, &alice).await];
    let mut accepted = 0;
    let mut refused = [0, 0];
    for k in 0..30 {
        let ws = &mut tabs[k % 2];
        ws.send(text(&format!("m{k}"), to_user(&bob), "hi")).await;
        let answer = loop {
            let frame = ws.next().await.expect("open");
            if frame["type"] == "ack" || frame["type"] == "error" {
                break frame;
            }
        };
        if answer["type"] == "ack" {
            accepted += 1;
        } else {
            assert_eq!(answer["code"], "rate_limited", "{answer}");
            refused[k % 2] += 1;
        }
    }
    // 20 from the burst, one or two more earned back (1/s) while the test runs, one more
    // at most from a lease the other node still held.
    assert!((20..=23).contains(&accepted), "{accepted} accepted");
    assert!(
        refused[0] > 0 && refused[1] > 0,
        "refused on both nodes: {refused:?}"
    );
}

/// `WS_MAX_CONNECTIONS_PER_USER` counts a user's sockets on every node together, and a
/// closed one frees its place wherever it was; the allowance of frames other than messages
/// (pings here) is one for the cluster, not one per node.
async fn connections_and_frames_are_counted_over_every_node(backend: common::Backend) {
    let Some((nodes, alice, _)) = nodes_and_friends(backend, 2, |c| {
        c.ws_max_connections_per_user = 3;
        c.ws_frame_burst = 20;
        c.ws_frame_rate = 1;
    })
    .await
    else {
        return;
    };
    let (a, b) = (&nodes[0], &nodes[1]);
    let on_a = connect(a, &alice).await;
    let mut on_b = connect(b, &alice).await;
    let mut on_a2 = connect(a, &alice).await;
    for node in [a, b] {
        let mut fourth = Ws::connect(node, &alice.cookie).await;
        assert_eq!(
            fourth.close_code(Duration::from_secs(5)).await,
            Ok(Some(4008)),
            "a fourth socket, on either node, is refused"
        );
    }
    on_a.close().await;
    // The place is given back once the server has seen the close: try until it has.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut ws = Ws::connect(b, &alice.cookie).await;
        match ws.next_within(Duration::from_secs(5)).await {
            Ok(Some(f)) if f["type"] == "ready" => break,
            _ => {
                assert!(
                    Instant::now() < deadline,
                    "the closed socket's place stayed taken"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    // Pings over a socket on each node: the burst of 20 once, plus at most one lease (two
    // tokens) still held by each node and what refills meanwhile; one node alone would
    // have answered 20 by itself.
    for _ in 0..30 {
        on_a2.send(json!({"type": "ping"})).await;
        on_b.send(json!({"type": "ping"})).await;
    }
    let (mut pongs, mut limited) = (0, [0, 0]);
    for (i, ws) in [&mut on_a2, &mut on_b].into_iter().enumerate() {
        while let Ok(Some(frame)) = ws.next_within(Duration::from_millis(500)).await {
            match (frame["type"].as_str(), frame["code"].as_str()) {
                (Some("pong"), _) => pongs += 1,
                (_, Some("rate_limited")) => limited[i] += 1,
                _ => {}
            }
        }
    }
    assert!((20..=26).contains(&pongs), "{pongs} pongs");
    assert_eq!(pongs + limited[0] + limited[1], 60, "every ping answered");
    assert!(
        limited[0] > 0 && limited[1] > 0,
        "refused on both: {limited:?}"
    );
}

/// A socket opened while Redis was away was not counted in the cluster's cap: closing it
/// later must not give back a place that another socket holds (a count-per-node did).
async fn a_socket_opened_while_redis_was_away_frees_no_other_place(backend: common::Backend) {
    let mut redis = PrivateRedis::start();
    let Some(nodes) = common::cluster_on(backend, &redis.url(), 2, |c| {
        c.ws_max_connections_per_user = 3;
    })
    .await
    else {
        return;
    };
    let (a, b) = (&nodes[0], &nodes[1]);
    let alice = user(a, "alice").await;

    redis.kill();
    wait_health(a, "degraded", Duration::from_secs(10)).await;
    let uncounted = connect(a, &alice).await;
    redis.resume();
    for node in [a, b] {
        wait_health(node, "ok", Duration::from_secs(15)).await;
    }
    // Both nodes are listed alive again (a heartbeat a second) before places are counted.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let _on_a = connect(a, &alice).await;
    let _on_b = connect(b, &alice).await;
    uncounted.close().await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Two counted sockets: one more place, on either node, and then none.
    let _third = connect(a, &alice).await;
    let mut fourth = Ws::connect(b, &alice.cookie).await;
    assert_eq!(
        fourth.close_code(Duration::from_secs(5)).await,
        Ok(Some(4008)),
        "a fourth counted socket is refused"
    );
}
