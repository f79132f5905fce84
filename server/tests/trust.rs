//! Trust at the edges, tried the way people break things: sessions ended while their sockets
//! are open, messages committed while a page connects, guesses sent fifty at a time, forms
//! posted from other sites, strangers' frames, repeated requests, control characters, and
//! frames the protocol does not know. Real server, real database, real sockets.
mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use app::ssr::entity::{read_cursor, user_base};
use common::people::{User, befriend, connect, session, text, to_user, user};
use common::{Backend, PASSWORD, TestServer, Ws};
use reqwest::StatusCode;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tokio::sync::Mutex;

db_tests!(
    ending_a_session_closes_exactly_its_sockets,
    expired_and_suspended_sessions_lose_their_sockets,
    sessions_are_listed_and_signed_out,
    no_message_slips_past_a_connecting_page,
    parallel_guesses_are_refused_beyond_the_allowance,
    a_guesser_cannot_lock_the_owner_out,
    registrations_and_password_checks_are_throttled,
    requests_from_other_sites_are_refused,
    strangers_frames_are_refused_and_cheap_frames_are_budgeted,
    repeated_contact_requests_are_quiet_and_limited,
    pages_carry_security_headers_and_no_text_from_the_url,
    control_characters_are_refused_everywhere,
    frames_follow_the_protocol_enum,
);

/// What the server says when it closes a socket because its session ended.
const SESSION_ENDED: u16 = 4003;
const WAIT: Duration = Duration::from_secs(5);

/// Logs `u` in once more: a second device with its own session.
async fn second_device(server: &TestServer, u: &User) -> User {
    second_device_with(server, u, PASSWORD).await
}

async fn ending_a_session_closes_exactly_its_sockets(server: TestServer) {
    let (laptop, friend) = (user(&server, "lou").await, user(&server, "fay").await);
    befriend(&server, &laptop, &friend).await;
    let phone = second_device(&server, &laptop).await;
    let tablet = second_device(&server, &laptop).await;
    let mut on_laptop = connect(&server, &laptop).await;
    let mut on_phone = connect(&server, &phone).await;
    let mut on_phone_tab = connect(&server, &phone).await;
    let mut on_tablet = connect(&server, &tablet).await;
    let mut on_friend = connect(&server, &friend).await;

    // The owner changes the password on the laptop: every other session's sockets close
    // at once with the documented code; the laptop's stays.
    let changed = session(&server, &laptop)
        .post(
            "/api/v1/user/password",
            json!({"current_password": PASSWORD, "new_password": "a brand new secret"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    for (name, ws) in [
        ("phone", &mut on_phone),
        ("phone tab", &mut on_phone_tab),
        ("tablet", &mut on_tablet),
    ] {
        assert_eq!(
            ws.close_code(WAIT).await,
            Ok(Some(SESSION_ENDED)),
            "{name} is closed"
        );
    }
    // The thief's socket is gone before anything new is said; the owner's still gets it.
    on_friend
        .send(text("after", to_user(&laptop), "after the change"))
        .await;
    assert_eq!(on_laptop.next_of("message").await["client_id"], "after");
    // The old cookie opens nothing any more.
    assert_eq!(
        Ws::try_connect(&server, Some(&phone.cookie), &[])
            .await
            .err(),
        Some(401)
    );

    // Logging out closes that session's sockets (here: the laptop's).
    let laptop2 = second_device_with(&server, &laptop, "a brand new secret").await;
    let mut on_laptop2 = connect(&server, &laptop2).await;
    session(&server, &laptop)
        .post("/api/v1/user/logout", json!({}))
        .await;
    assert_eq!(on_laptop.close_code(WAIT).await, Ok(Some(SESSION_ENDED)));
    on_friend
        .send(text("after-logout", to_user(&laptop), "still here?"))
        .await;
    assert_eq!(
        on_laptop2.next_of("message").await["client_id"],
        "after-logout",
        "the other session is untouched"
    );

    // An administrator suspends the account: all its sockets close, it cannot sign in,
    // and restored it can again.
    let admin = user(&server, "ada").await;
    app::ssr::accounts::make_admin(&server.core.db, "ada")
        .await
        .expect("make admin");
    let not_admin = session(&server, &friend)
        .post("/api/v1/admin/ban", json!({"username": "lou"}))
        .await;
    assert_eq!(not_admin.status, StatusCode::FORBIDDEN);
    assert_eq!(not_admin.code(), "forbidden");
    on_laptop2.none_of("message", 100).await;
    let banned = session(&server, &admin)
        .post("/api/v1/admin/ban", json!({"username": "lou"}))
        .await;
    assert_eq!(banned.status, StatusCode::OK, "{}", banned.text);
    assert_eq!(on_laptop2.close_code(WAIT).await, Ok(Some(SESSION_ENDED)));
    let refused = server.session().login("lou", "a brand new secret").await;
    assert_eq!(refused.code(), "account_banned");
    let missing = session(&server, &admin)
        .post("/api/v1/admin/ban", json!({"username": "nobody_here"}))
        .await;
    assert_eq!(missing.code(), "user_not_found");
    let own = session(&server, &admin)
        .post("/api/v1/admin/ban", json!({"username": "ada"}))
        .await;
    assert_eq!(own.code(), "forbidden");
    session(&server, &admin)
        .post("/api/v1/admin/unban", json!({"username": "lou"}))
        .await;
    let back = server.session().login("lou", "a brand new secret").await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text);
    // The friend's socket never noticed any of it.
    on_friend.send(json!({"type": "ping", "nonce": 1})).await;
    assert_eq!(on_friend.next_of("pong").await["nonce"], 1);
}

async fn second_device_with(server: &TestServer, u: &User, password: &str) -> User {
    let mut s = server.session();
    let answer = s.login(&u.name, password).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    User {
        name: u.name.clone(),
        id: u.id.clone(),
        cookie: s.cookie.expect("cookie"),
    }
}

async fn expired_and_suspended_sessions_lose_their_sockets(server: TestServer) {
    // A server whose logins last two seconds and which checks open sessions every second.
    let short = TestServer::start_with(server.backend, |c| {
        c.session_ttl_secs = 2;
        c.ws_session_check_secs = 1;
    })
    .await
    .expect("server");
    let (a, b) = (user(&short, "eve").await, user(&short, "ivy").await);
    let mut ws = connect(&short, &a).await;
    let started = Instant::now();
    assert_eq!(
        ws.close_code(Duration::from_secs(6)).await,
        Ok(Some(SESSION_ENDED)),
        "closed when the session expires"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    drop(b);

    // Suspended by hand in the database (no API call to tell the relay): the periodic
    // check closes the socket within its interval.
    let checked = TestServer::start_with(server.backend, |c| c.ws_session_check_secs = 1)
        .await
        .expect("server");
    let c = user(&checked, "cam").await;
    let mut wc = connect(&checked, &c).await;
    user_base::Entity::update_many()
        .col_expr(user_base::Column::Role, Expr::value(1i16))
        .filter(user_base::Column::Username.eq("cam"))
        .exec(&checked.core.db)
        .await
        .expect("suspend");
    assert_eq!(
        wc.close_code(Duration::from_secs(5)).await,
        Ok(Some(SESSION_ENDED))
    );
    assert_eq!(
        Ws::try_connect(&checked, Some(&c.cookie), &[]).await.err(),
        Some(403),
        "a suspended account cannot open a socket"
    );
}

async fn sessions_are_listed_and_signed_out(server: TestServer) {
    let laptop = user(&server, "sid").await;
    let mut phone_session = server.session();
    let chrome = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Mobile Safari/537.36";
    let res = server
        .client
        .post(format!("{}/api/v1/user/login", server.base))
        .header("content-type", "application/json")
        .header("user-agent", chrome)
        .body(json!({"username": "sid", "password": PASSWORD}).to_string())
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    phone_session.cookie = cookie
        .strip_prefix("qc_session=")
        .and_then(|c| c.split(';').next())
        .map(str::to_owned);
    let phone = User {
        name: laptop.name.clone(),
        id: laptop.id.clone(),
        cookie: phone_session.cookie.clone().unwrap(),
    };
    let tablet = second_device(&server, &laptop).await;
    let mut on_phone = connect(&server, &phone).await;
    let mut on_tablet = connect(&server, &tablet).await;

    let list = session(&server, &laptop)
        .post("/api/v1/user/sessions", json!({}))
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let sessions = list.body.as_array().unwrap().clone();
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions[0]["current"], true, "this one first");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let android = sessions
        .iter()
        .find(|s| s["device"] == "Chrome on Android")
        .expect("the phone is named by its browser");
    assert_eq!(android["ip"], "127.0.0.1");
    assert!(android["last_active_at"].as_i64().unwrap() > 0);
    let phone_id = android["id"].as_str().unwrap().to_owned();

    // Another user cannot sign my sessions out, nor learn whether an id exists.
    let stranger = user(&server, "xander").await;
    let theirs = session(&server, &stranger)
        .post("/api/v1/user/sessions/revoke", json!({"id": phone_id}))
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(theirs.code(), "not_found");
    on_phone.none_of("error", 200).await;

    // Signing the phone out closes its socket only.
    let revoked = session(&server, &laptop)
        .post("/api/v1/user/sessions/revoke", json!({"id": phone_id}))
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert_eq!(on_phone.close_code(WAIT).await, Ok(Some(SESSION_ENDED)));
    on_tablet.send(json!({"type": "ping", "nonce": 2})).await;
    assert_eq!(on_tablet.next_of("pong").await["nonce"], 2);
    assert_eq!(
        session(&server, &phone).me().await.status,
        StatusCode::UNAUTHORIZED
    );

    // "Sign out everywhere else".
    let others = session(&server, &laptop)
        .post("/api/v1/user/sessions/revoke_others", json!({}))
        .await;
    assert_eq!(others.body, json!(1), "{}", others.text);
    assert_eq!(on_tablet.close_code(WAIT).await, Ok(Some(SESSION_ENDED)));
    let left = session(&server, &laptop)
        .post("/api/v1/user/sessions", json!({}))
        .await;
    assert_eq!(left.body.as_array().unwrap().len(), 1);
    assert_eq!(
        server
            .session()
            .post("/api/v1/user/sessions", json!({}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

/// Everything a receiver saw in one connection: the snapshot and the messages after it.
struct Visit {
    last_id: i64,
    /// The snapshot's newest message per conversation (by the other person's id).
    snapshot: HashMap<String, i64>,
    /// Message ids that came live or by `sync`.
    seen: HashSet<i64>,
}

/// Connects as `u` and does what the documented protocol says: cursor = `last_id`, then
/// `sync` (page after page), while taking live messages; gives up after `listen`.
async fn visit(server: &TestServer, u: &User, listen: Duration) -> Visit {
    let mut ws = Ws::connect(server, &u.cookie).await;
    let ready = ws.next().await.expect("ready");
    assert_eq!(ready["type"], "ready");
    let last_id = ready["last_id"].as_i64().unwrap();
    let snapshot = ready["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| {
            Some((
                c["with"]["user"].as_str()?.to_owned(),
                c["last"]["id"].as_i64()?,
            ))
        })
        .collect();
    ws.send(json!({"type": "sync", "after": last_id})).await;
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + listen;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Ok(Some(frame)) = ws.next_within(left).await else {
            break;
        };
        match frame["type"].as_str() {
            Some("message") => {
                seen.insert(frame["id"].as_i64().unwrap());
            }
            Some("synced") => {
                for m in frame["messages"].as_array().unwrap() {
                    seen.insert(m["id"].as_i64().unwrap());
                }
                if frame["more"] == true {
                    ws.send(json!({"type": "sync", "after": frame["cursor"]}))
                        .await;
                }
            }
            _ => {}
        }
    }
    ws.close().await;
    Visit {
        last_id,
        snapshot,
        seen,
    }
}

async fn no_message_slips_past_a_connecting_page(server: TestServer) {
    let server = TestServer::start_with(server.backend, |c| {
        c.ws_send_rate = 100_000;
        c.ws_send_burst = 100_000;
    })
    .await
    .expect("server");
    let receiver = user(&server, "rita").await;
    let senders = [user(&server, "sam").await, user(&server, "sue").await];
    for s in &senders {
        befriend(&server, s, &receiver).await;
    }
    // Two senders write all the time; every acknowledged id is noted with its sender.
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let mut tasks = Vec::new();
    for s in &senders {
        let mut ws = connect(&server, s).await;
        let (stop, acked, to, from) = (
            stop.clone(),
            acked.clone(),
            to_user(&receiver),
            s.id.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                ws.send(text(&format!("{from}-{n}"), to.clone(), "hello"))
                    .await;
                let ack = ws.next_of("ack").await;
                acked
                    .lock()
                    .await
                    .push((from.clone(), ack["id"].as_i64().unwrap()));
                n += 1;
            }
            ws.close().await;
        }));
    }
    // The receiver's page connects again and again meanwhile.
    let mut visits = Vec::new();
    for _ in 0..25 {
        visits.push(visit(&server, &receiver, Duration::from_millis(150)).await);
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("sender");
    }
    let acked = acked.lock().await.clone();
    assert!(acked.len() > 100, "the senders were busy: {}", acked.len());
    for (i, v) in visits.iter().enumerate() {
        // Up to the cursor, the snapshot knows each conversation's newest message...
        for s in &senders {
            let newest_before = acked
                .iter()
                .filter(|(from, id)| *from == s.id && *id <= v.last_id)
                .map(|(_, id)| *id)
                .max();
            if let Some(newest) = newest_before {
                let shown = v.snapshot.get(&s.id).copied().unwrap_or(0);
                assert!(
                    shown >= newest,
                    "visit {i}: message {newest} is behind the cursor {} but the snapshot \
                     shows {shown}",
                    v.last_id
                );
            }
        }
        // ...and after it, every message up to the newest one seen arrived.
        let Some(&highest) = v.seen.iter().max() else {
            continue;
        };
        let missing: Vec<i64> = acked
            .iter()
            .map(|(_, id)| *id)
            .filter(|id| *id > v.last_id && *id <= highest && !v.seen.contains(id))
            .collect();
        assert!(
            missing.is_empty(),
            "visit {i}: cursor {} saw up to {highest} but never {missing:?}",
            v.last_id
        );
    }
}

/// An anonymous client at `address` (the test server trusts one proxy, so the last
/// `X-Forwarded-For` entry is the client).
async fn login_from(
    server: &TestServer,
    address: &str,
    name: &str,
    password: &str,
) -> common::Answer {
    server
        .session()
        .post_json_with(
            "/api/v1/user/login",
            json!({"username": name, "password": password}),
            &[("x-forwarded-for", address)],
        )
        .await
}

fn behind_a_proxy(c: &mut server::Config) {
    c.trust_proxy_headers = true;
}

async fn parallel_guesses_are_refused_beyond_the_allowance(server: TestServer) {
    let server = TestServer::start_with(server.backend, behind_a_proxy)
        .await
        .expect("server");
    server.session().register("gus").await;
    let limit = 5;
    let guesses = (0..40).map(|i| {
        let server = &server;
        async move { login_from(server, "6.6.6.6", "gus", &format!("guess {i}")).await }
    });
    let answers = futures_util::future::join_all(guesses).await;
    let evaluated = answers
        .iter()
        .filter(|a| a.status == StatusCode::UNAUTHORIZED)
        .count();
    let refused = answers
        .iter()
        .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(evaluated, limit, "only the allowance is evaluated");
    assert_eq!(refused, 40 - limit);
    assert!(answers.iter().all(|a| a.status != StatusCode::OK));
    // The right password is refused while the guesser is stopped...
    let right = login_from(&server, "6.6.6.6", "gus", PASSWORD).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    // ...and claiming another address further left changes nothing.
    let spoofed = login_from(&server, "10.9.9.9, 6.6.6.6", "gus", "again").await;
    assert_eq!(spoofed.status, StatusCode::TOO_MANY_REQUESTS);
    // Names that cannot be usernames are not kept as throttle keys.
    let keys = server.core.throttle.tracked_keys();
    for i in 0..50 {
        let long = format!("{}{i}", "x".repeat(2000));
        let answer = login_from(&server, "7.7.7.7", &long, "whatever").await;
        assert!(
            matches!(answer.code(), "invalid_credentials" | "too_many_requests"),
            "{}",
            answer.text
        );
    }
    assert!(
        server.core.throttle.tracked_keys() <= keys + 1,
        "one address key at most"
    );
}

async fn a_guesser_cannot_lock_the_owner_out(server: TestServer) {
    let server = TestServer::start_with(server.backend, |c| {
        behind_a_proxy(c);
        c.login_max_failures_per_account = 12;
    })
    .await
    .expect("server");
    server.session().register("olive").await;
    // The owner signs in from home.
    assert_eq!(
        login_from(&server, "10.0.0.1", "olive", PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
    // A stranger elsewhere guesses until stopped.
    for i in 0..5 {
        let a = login_from(&server, "6.6.6.6", "olive", &format!("g{i}")).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login_from(&server, "6.6.6.6", "olive", "g5").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The owner at home is not locked out.
    assert_eq!(
        login_from(&server, "10.0.0.1", "olive", PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
    // Guessing spread over many addresses hits the account-wide limit: a new address is
    // stopped, the owner's known one is not.
    for i in 0..20 {
        login_from(&server, &format!("7.7.7.{i}"), "olive", "nope").await;
    }
    assert_eq!(
        login_from(&server, "8.8.8.8", "olive", PASSWORD)
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_from(&server, "10.0.0.1", "olive", PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
}

async fn registrations_and_password_checks_are_throttled(server: TestServer) {
    let server = TestServer::start_with(server.backend, |c| {
        behind_a_proxy(c);
        c.register_max_per_ip = 3;
    })
    .await
    .expect("server");
    let register = |name: String, address: &'static str| {
        let server = &server;
        async move {
            server
                .session()
                .post_json_with(
                    "/api/v1/user/register",
                    json!({"username": name, "nickname": "N", "password": PASSWORD}),
                    &[("x-forwarded-for", address)],
                )
                .await
        }
    };
    for i in 0..3 {
        let a = register(format!("reg_{i}"), "5.5.5.5").await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
    let fourth = register("reg_3".into(), "5.5.5.5").await;
    assert_eq!(
        fourth.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        fourth.text
    );
    assert!(fourth.headers.get("retry-after").is_some());
    let elsewhere = register("reg_4".into(), "5.5.5.6").await;
    assert_eq!(elsewhere.status, StatusCode::OK);
    let count = user_base::Entity::find()
        .filter(user_base::Column::Username.starts_with("reg_"))
        .count(&server.core.db)
        .await
        .unwrap();
    assert_eq!(count, 4, "the refused one was not created");

    // A wrong current password is throttled per account.
    let mut me = server.session();
    me.cookie = register("reg_pw".into(), "5.5.5.7")
        .await
        .set_cookies()
        .first()
        .and_then(|c| {
            c.strip_prefix("qc_session=")
                .and_then(|c| c.split(';').next())
                .map(str::to_owned)
        });
    let change = |current: &'static str| json!({"current_password": current, "new_password": "new secret 123"});
    for _ in 0..5 {
        let wrong = me.post("/api/v1/user/password", change("not it")).await;
        assert_eq!(wrong.code(), "wrong_password");
    }
    let stopped = me.post("/api/v1/user/password", change("not it")).await;
    assert_eq!(stopped.status, StatusCode::TOO_MANY_REQUESTS);
    let right = me.post("/api/v1/user/password", change(PASSWORD)).await;
    assert_eq!(
        right.status,
        StatusCode::TOO_MANY_REQUESTS,
        "while throttled even the right one is refused"
    );
}

async fn requests_from_other_sites_are_refused(server: TestServer) {
    server.session().register("cora").await;
    let form = "username=cora&password=correct+horse+battery";
    let post = |path: &'static str,
                content_type: &'static str,
                body: String,
                headers: Vec<(&'static str, String)>| {
        let server = &server;
        async move {
            let mut req = server
                .client
                .post(format!("{}{path}", server.base))
                .header("content-type", content_type)
                .header("accept", "text/html")
                .body(body);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            req.send().await.expect("post")
        }
    };
    // Login CSRF: a form on another site posting our login form is refused, no session.
    for headers in [
        vec![("origin", "https://evil.example".to_owned())],
        vec![("origin", "null".to_owned())],
        vec![("sec-fetch-site", "cross-site".to_owned())],
    ] {
        let res = post(
            "/api/v1/user/login_form",
            "application/x-www-form-urlencoded",
            form.into(),
            headers.clone(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert!(res.headers().get("set-cookie").is_none());
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "forbidden");
        let res = post(
            "/api/v1/user/register_form",
            "application/x-www-form-urlencoded",
            "username=mallory&nickname=M&password=12345678".into(),
            headers.clone(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{headers:?}");
    }
    assert_eq!(
        user_base::Entity::find()
            .filter(user_base::Column::Username.eq("mallory"))
            .count(&server.core.db)
            .await
            .unwrap(),
        0
    );
    // From our own page it works.
    let own = server.base.clone();
    let res = post(
        "/api/v1/user/login_form",
        "application/x-www-form-urlencoded",
        form.into(),
        vec![
            ("origin", own.clone()),
            ("sec-fetch-site", "same-origin".into()),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(res.headers().get("set-cookie").is_some());

    // JSON endpoints read JSON only: text/plain and forms (what another site can send
    // without asking) are refused before anything runs.
    let json_body = json!({"username": "cora", "password": PASSWORD}).to_string();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let res = post(
            "/api/v1/user/login",
            content_type,
            json_body.clone(),
            vec![],
        )
        .await;
        assert_eq!(
            res.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}"
        );
        assert!(res.headers().get("set-cookie").is_none());
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "unsupported_media_type");
    }
    // A signed-in victim's browser posting JSON from another site (it would need CORS,
    // but the Origin alone is refused).
    let mut victim = server.session();
    victim.login("cora", PASSWORD).await;
    let update = victim
        .post_json_with(
            "/api/v1/user/update",
            json!({"nickname": "Pwned"}),
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(update.status, StatusCode::FORBIDDEN);
    assert_ne!(victim.me().await.body["nickname"], "Pwned");
    let fine = victim
        .post_json_with(
            "/api/v1/user/update",
            json!({"nickname": "Cora"}),
            &[("origin", own.as_str())],
        )
        .await;
    assert_eq!(fine.status, StatusCode::OK, "{}", fine.text);
    // Reading stays open (a GET changes nothing).
    let session = server
        .client
        .get(format!("{}/api/v1/user/session", server.base))
        .header("sec-fetch-site", "cross-site")
        .header(
            "cookie",
            format!("qc_session={}", victim.cookie.clone().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), StatusCode::OK);
}

async fn strangers_frames_are_refused_and_cheap_frames_are_budgeted(server: TestServer) {
    let server = TestServer::start_with(server.backend, |c| {
        c.ws_max_connections_per_user = 3;
        c.ws_frame_rate = 5;
        c.ws_frame_burst = 20;
    })
    .await
    .expect("server");
    let (a, b, stranger) = (
        user(&server, "abe").await,
        user(&server, "bob").await,
        user(&server, "stan").await,
    );
    befriend(&server, &a, &b).await;
    let mut wa = connect(&server, &a).await;
    let mut wb = connect(&server, &b).await;
    let mut ws = connect(&server, &stranger).await;
    wa.send(text("hi", to_user(&b), "hi bo")).await;
    let id = wa.next_of("ack").await["id"].as_i64().unwrap();
    wb.next_of("message").await;

    // A stranger's `read` naming someone: refused, no receipt pushed, nothing written.
    ws.send(json!({"type": "read", "conversation": to_user(&a), "up_to": id}))
        .await;
    assert_eq!(ws.next_of("error").await["code"], "not_friends");
    wa.none_of("receipt", 300).await;
    let cursors = read_cursor::Entity::find()
        .filter(read_cursor::Column::UserId.eq(uuid(&stranger.id)))
        .count(&server.core.db)
        .await
        .unwrap();
    assert_eq!(cursors, 0, "no read_cursor row for the stranger");
    // Typing to someone who is not a friend, and to made-up ids: refused, and the
    // permission cache keeps nothing for them.
    let sizes = server.core.permissions.sizes();
    ws.send(json!({"type": "typing", "to": to_user(&a)})).await;
    assert_eq!(ws.next_of("error").await["code"], "not_friends");
    for _ in 0..10 {
        let random = uuid::Uuid::new_v4().to_string();
        ws.send(json!({"type": "typing", "to": {"user": random}}))
            .await;
        ws.send(json!({"type": "typing", "to": {"group": random}}))
            .await;
    }
    for _ in 0..20 {
        ws.next_of("error").await;
    }
    assert_eq!(server.core.permissions.sizes(), sizes);
    wa.none_of("typing", 200).await;

    // The same `read` twice: the friend hears of it once.
    wb.send(json!({"type": "read", "conversation": to_user(&a), "up_to": id}))
        .await;
    assert_eq!(wa.next_of("receipt").await["up_to"], id);
    wb.send(json!({"type": "read", "conversation": to_user(&a), "up_to": id}))
        .await;
    wa.none_of("receipt", 300).await;

    // Typing is limited per user, not per socket: two tabs typing at once are one notice.
    let mut wb2 = connect(&server, &b).await;
    wb.send(json!({"type": "typing", "to": to_user(&a)})).await;
    wb2.send(json!({"type": "typing", "to": to_user(&a)})).await;
    wa.next_of("typing").await;
    wa.none_of("typing", 500).await;

    // At most three sockets per user: the fourth is closed with its own code.
    let _wb3 = connect(&server, &b).await;
    let mut fourth = Ws::connect(&server, &b.cookie).await;
    assert_eq!(fourth.close_code(WAIT).await, Ok(Some(4008)));

    // Cheap frames share one budget per user: a flood of pings over two sockets is cut
    // to the burst, with `rate_limited` for the rest.
    for _ in 0..30 {
        wb.send(json!({"type": "ping"})).await;
        wb2.send(json!({"type": "ping"})).await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    for ws in [&mut wb, &mut wb2] {
        while let Ok(Some(frame)) = ws.next_within(Duration::from_millis(500)).await {
            match (frame["type"].as_str(), frame["code"].as_str()) {
                (Some("pong"), _) => pongs += 1,
                (_, Some("rate_limited")) => limited += 1,
                _ => {}
            }
        }
    }
    assert!((15..=27).contains(&pongs), "{pongs} pongs");
    assert_eq!(pongs + limited, 60);
}

/// Skips `relation` frames until one with `change` arrives.
async fn next_change(ws: &mut Ws, change: &str) {
    loop {
        if ws.next_of("relation").await["change"] == change {
            return;
        }
    }
}

fn uuid(id: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(id).unwrap()
}

async fn repeated_contact_requests_are_quiet_and_limited(server: TestServer) {
    let server = TestServer::start_with(server.backend, |c| {
        c.contact_requests_per_hour = 12;
    })
    .await
    .expect("server");
    let (a, b) = (user(&server, "rex").await, user(&server, "ros").await);
    let mut wb = connect(&server, &b).await;
    let ask = |memo: &'static str| {
        let server = &server;
        let a = &a;
        async move {
            session(server, a)
                .post(
                    "/api/v1/relation/request",
                    json!({"username": "ros", "memo": memo}),
                )
                .await
        }
    };
    assert_eq!(ask("hi").await.body, "requested");
    assert_eq!(wb.next_of("relation").await["change"], "friend_request");
    // The same request again: answered the same, but not announced again.
    assert_eq!(ask("hi").await.body, "requested");
    wb.none_of("relation", 300).await;
    // A new note is news.
    assert_eq!(ask("it's Rex").await.body, "requested");
    assert_eq!(wb.next_of("relation").await["change"], "friend_request");
    // Four at once is the allowance (12 an hour): the fifth is refused.
    assert_eq!(ask("again").await.body, "requested");
    let fifth = ask("once more").await;
    assert_eq!(
        fifth.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        fifth.text
    );
    assert!(fifth.body["retry_after"].as_u64().is_some());

    // Join requests likewise.
    let mut owner = session(&server, &b);
    let group = owner
        .post("/api/v1/community/create", json!({"name": "Quiet club"}))
        .await;
    let id = group.body["id"].as_str().unwrap().to_owned();
    let c = user(&server, "cid").await;
    let join = |memo: &'static str| {
        let server = &server;
        let (c, id) = (&c, id.clone());
        async move {
            session(server, c)
                .post(
                    "/api/v1/community/join",
                    json!({"community_id": id, "memo": memo}),
                )
                .await
        }
    };
    assert_eq!(join("let me in").await.body, "requested");
    next_change(&mut wb, "group_request").await;
    assert_eq!(join("let me in").await.body, "requested");
    wb.none_of("relation", 300).await;
}

async fn pages_carry_security_headers_and_no_text_from_the_url(server: TestServer) {
    let mut visitor = server.session();
    let page = visitor.get("/login", &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    let header = |name: &str| {
        page.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let csp = header("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("'wasm-unsafe-eval'"));
    assert!(!csp.contains("unsafe-inline"));
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in the policy");
    assert!(
        page.text.contains(&format!("nonce=\"{nonce}\"")),
        "the page's scripts carry the policy's nonce"
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("referrer-policy"), "same-origin");
    // A second page gets a new nonce.
    let again = visitor.get("/login", &[]).await;
    assert_ne!(
        again.headers.get("content-security-policy"),
        page.headers.get("content-security-policy")
    );
    // API answers: not sniffed, not stored.
    let api = visitor.me().await;
    assert_eq!(api.headers["x-content-type-options"], "nosniff");
    assert_eq!(api.headers["cache-control"], "no-store");

    // An error carried in the address is shown by its code only, in the reader's words:
    // whatever text the link's author put in it never reaches the page.
    let bait = "Your account is locked. Call +1 555 0100 to unlock it";
    let error_url = |page: &str, endpoint: &str, err: Value| {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::URL_SAFE.encode(err.to_string());
        format!(
            "/{page}?__path={}&__err={}",
            urlencode(&format!("/api/v1/user/{endpoint}")),
            urlencode(&encoded)
        )
    };
    let url = error_url(
        "login",
        "login_form",
        json!({"code": "invalid_credentials", "message": bait}),
    );
    let shown = visitor.get(&url, &[]).await;
    assert!(!shown.text.contains("555 0100"), "attacker text shown");
    assert!(
        shown
            .text
            .contains("The username or password is incorrect."),
        "the code's own words: {}",
        shown.text
    );
    let url = error_url(
        "register",
        "register_form",
        json!({"code": "invalid_field", "field": "username", "message": bait}),
    );
    let shown = visitor.get(&url, &[]).await;
    assert!(!shown.text.contains("555 0100"));
    assert!(shown.text.contains("A username has 3 to 32 letters"));

    // Pages and API answers are compressed for browsers that take it.
    let br = server
        .client
        .get(format!("{}/login", server.base))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(br.headers()["content-encoding"], "br");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn control_characters_are_refused_everywhere(server: TestServer) {
    let (a, b) = (user(&server, "cal").await, user(&server, "cat").await);
    befriend(&server, &a, &b).await;
    let mut s = session(&server, &a);
    let cases = [
        (
            "/api/v1/community/create",
            json!({"name": "Club", "description": "a\u{0}b"}),
            "description",
        ),
        (
            "/api/v1/community/create",
            json!({"name": "Club", "description": "bell\u{7}"}),
            "description",
        ),
        (
            "/api/v1/community/create",
            json!({"name": "Cl\u{1b}[31mub"}),
            "name",
        ),
        (
            "/api/v1/community/create",
            json!({"name": "Club", "avatar": "//evil.example/x.png"}),
            "avatar",
        ),
        (
            "/api/v1/community/create",
            json!({"name": "Club", "avatar": "/a\u{0}.png"}),
            "avatar",
        ),
        (
            "/api/v1/relation/request",
            json!({"username": "cat", "memo": "hi\u{0}"}),
            "memo",
        ),
        ("/api/v1/user/search", json!({"query": "ca\u{0}"}), "query"),
        (
            "/api/v1/community/search",
            json!({"query": "Cl\u{0}"}),
            "query",
        ),
        (
            "/api/v1/user/update",
            json!({"signature": "x\u{0}y"}),
            "signature",
        ),
    ];
    for (path, body, field) in cases {
        let answer = s.post(path, body.clone()).await;
        answer.assert_invalid_field(field, &format!("{path} {body}"));
    }
    // A multi-line description is fine.
    let ok = s
        .post(
            "/api/v1/community/create",
            json!({"name": "Club", "description": "line one\nline two", "avatar": "/favicon.svg"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    // Messages: line breaks yes, NUL no.
    let mut ws = connect(&server, &a).await;
    ws.send(text("nul", to_user(&b), "a\u{0}b")).await;
    let err = ws.next_of("error").await;
    assert_eq!(
        (err["code"].as_str(), err["client_id"].as_str()),
        (Some("invalid_field"), Some("nul"))
    );
    ws.send(text("lines", to_user(&b), "two\nlines")).await;
    assert_eq!(ws.next_of("ack").await["client_id"], "lines");
}

async fn frames_follow_the_protocol_enum(server: TestServer) {
    let (a, b) = (user(&server, "fen").await, user(&server, "fig").await);
    befriend(&server, &a, &b).await;
    let mut ws = connect(&server, &a).await;
    // A known call frame with a field missing is a bad frame, not an unknown type.
    for frame in [
        json!({"type": "call_offer", "call_id": uuid::Uuid::new_v4().to_string()}),
        json!({"type": "call_invite", "to": to_user(&b)}),
        json!({"type": "call_candidate", "call_id": "x"}),
    ] {
        ws.send(frame.clone()).await;
        assert_eq!(ws.next_of("error").await["code"], "bad_frame", "{frame}");
    }
    ws.send(json!({"type": "call_dance"})).await;
    assert_eq!(ws.next_of("error").await["code"], "unknown_type");
    // Calling oneself is forbidden.
    let call = uuid::Uuid::new_v4().to_string();
    ws.send(json!({"type": "call_invite", "call_id": call, "to": to_user(&a), "media": "audio"}))
        .await;
    let err = ws.next_of("error").await;
    assert_eq!(err["code"], "forbidden");
    assert_eq!(err["client_id"], call.as_str());
    // A frame over 128 KiB ends the connection with 1009 ("too big").
    let _ = ws.try_send_text(&"x".repeat(200 * 1024)).await;
    assert_eq!(ws.close_code(WAIT).await, Ok(Some(1009)));
    let _ = Backend::Sqlite;
}
