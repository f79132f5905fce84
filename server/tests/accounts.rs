//! Accounts over real HTTP against a real database: register, login, sessions, profile,
//! password, throttling, malformed input, and the server-rendered pages.
mod common;

use common::{Backend, PASSWORD, TestServer};
use reqwest::StatusCode;
use serde_json::json;

db_tests!(
    register_signs_in_and_me_answers,
    duplicate_username_is_a_conflict_in_any_case,
    concurrent_registrations_of_one_name_leave_one_account,
    every_invalid_field_is_refused_and_nothing_is_stored,
    login_right_and_wrong_without_telling_which,
    session_cookie_flags,
    logout_ends_the_session,
    password_change_revokes_other_sessions,
    repeated_failures_are_throttled,
    malformed_and_oversized_bodies_get_4xx,
    profile_update_is_kept_and_validated,
    pages_render_on_the_server_and_guard_the_shell,
    pages_answer_fifty_parallel_requests,
    login_form_works_without_javascript,
    language_follows_cookie_then_browser,
    health_check_answers,
);

async fn register_signs_in_and_me_answers(server: TestServer) {
    let mut alice = server.session();
    let answer = alice.register("Alice_1").await;
    assert_eq!(
        answer.body["username"], "alice_1",
        "usernames are stored in lower case"
    );
    assert_eq!(answer.body["nickname"], "Nick Alice_1");
    assert_eq!(answer.body["gender"], "unspecified");
    assert!(
        alice.cookie.is_some(),
        "registering signs the new account in"
    );
    let me = alice.me().await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["username"], "alice_1");
    assert_eq!(me.body["id"], answer.body["id"]);
    assert!(
        me.body.get("password_hash").is_none(),
        "the hash never leaves the server"
    );
}

async fn duplicate_username_is_a_conflict_in_any_case(server: TestServer) {
    server.session().register("bob").await;
    for name in ["bob", "BOB", " Bob "] {
        let answer = server
            .session()
            .post(
                "/api/v1/user/register",
                json!({"username": name, "nickname": "Other", "password": "another pass"}),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::CONFLICT,
            "{name}: {}",
            answer.text
        );
        assert_eq!(answer.code(), "username_taken");
        assert!(!answer.body["message"].as_str().unwrap_or("").is_empty());
    }
    // The first account is untouched: its password still works, the other does not.
    assert_eq!(
        server.session().login("bob", PASSWORD).await.status,
        StatusCode::OK
    );
    assert_eq!(
        server.session().login("bob", "another pass").await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn concurrent_registrations_of_one_name_leave_one_account(server: TestServer) {
    let attempts = (0..6).map(|i| {
        let client = server.client.clone();
        let url = format!("{}/api/v1/user/register", server.base);
        async move {
            let res = client
                .post(url)
                .json(&json!({"username": "racer", "nickname": format!("R{i}"), "password": format!("password{i}")}))
                .send()
                .await
                .expect("request");
            let status = res.status();
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            (status, body)
        }
    });
    let answers = futures_join_all(attempts).await;
    let ok = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    assert_eq!(ok, 1, "exactly one registration wins: {answers:?}");
    for (status, body) in answers
        .iter()
        .filter(|(status, _)| *status != StatusCode::OK)
    {
        assert_eq!(*status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["code"], "username_taken");
    }
}

/// Runs futures concurrently (tests do not need a futures crate for this).
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

async fn every_invalid_field_is_refused_and_nothing_is_stored(server: TestServer) {
    let long = "x".repeat(33);
    let long_nick = "好".repeat(33);
    let long_password = "p".repeat(129);
    let cases = [
        (
            json!({"username": "ab", "nickname": "N", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": long, "nickname": "N", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "has-dash", "nickname": "N", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "名字abc", "nickname": "N", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "okname1", "nickname": "", "password": PASSWORD}),
            "nickname",
        ),
        (
            json!({"username": "okname2", "nickname": "   ", "password": PASSWORD}),
            "nickname",
        ),
        (
            json!({"username": "okname3", "nickname": long_nick, "password": PASSWORD}),
            "nickname",
        ),
        (
            json!({"username": "okname4", "nickname": "N", "password": "short"}),
            "password",
        ),
        (
            json!({"username": "okname5", "nickname": "N", "password": long_password}),
            "password",
        ),
    ];
    for (body, field) in cases {
        let answer = server
            .session()
            .post("/api/v1/user/register", body.clone())
            .await;
        answer.assert_invalid_field(field, &body.to_string());
        assert!(
            answer.set_cookies().is_empty(),
            "no session for a refused registration"
        );
    }
    // Nothing was stored: every name that failed on another field is still free.
    for i in 1..=5 {
        server.session().register(&format!("okname{i}")).await;
    }
    // Limits are inclusive: 3 and 32 character usernames, 32 character nickname, 8 and 128
    // character passwords are accepted.
    let answer = server
        .session()
        .post(
            "/api/v1/user/register",
            json!({"username": "abc", "nickname": "好".repeat(32), "password": "12345678"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let answer = server
        .session()
        .post(
            "/api/v1/user/register",
            json!({"username": "a".repeat(32), "nickname": "N", "password": "p".repeat(128)}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

async fn login_right_and_wrong_without_telling_which(server: TestServer) {
    server.session().register("carol").await;
    let mut carol = server.session();
    let ok = carol.login("CAROL", PASSWORD).await;
    assert_eq!(
        ok.status,
        StatusCode::OK,
        "usernames are case-insensitive at login"
    );
    assert_eq!(ok.body["username"], "carol");
    assert_eq!(carol.me().await.body["username"], "carol");

    let wrong_password = server.session().login("carol", "wrong password").await;
    let no_such_user = server
        .session()
        .login("nobody_here", "wrong password")
        .await;
    for answer in [&wrong_password, &no_such_user] {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text);
        assert_eq!(answer.code(), "invalid_credentials");
        assert!(answer.set_cookies().is_empty());
    }
    assert_eq!(
        wrong_password.body, no_such_user.body,
        "a failed login must not reveal whether the username exists"
    );
}

async fn session_cookie_flags(server: TestServer) {
    let answer = server.session().register("dave").await;
    let cookie = answer
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("qc_session="))
        .expect("session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "not Secure unless configured: {cookie}"
    );
    let ttl = server.settings().session_ttl.as_secs();
    assert!(cookie.contains(&format!("Max-Age={ttl}")), "{cookie}");

    // With COOKIE_SECURE the same cookie is marked Secure.
    let backend = server.backend;
    drop(server);
    let secure = TestServer::start_with(backend, |c| c.cookie_secure = true)
        .await
        .expect("server");
    let answer = secure.session().register("erin").await;
    let cookie = answer
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("qc_session="))
        .unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

async fn logout_ends_the_session(server: TestServer) {
    let mut frank = server.session();
    frank.register("frank").await;
    let token = frank.cookie.clone();
    let answer = frank.post("/api/v1/user/logout", json!({})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert!(
        answer
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("qc_session=;") && c.contains("Max-Age=0")),
        "logout clears the cookie: {:?}",
        answer.set_cookies()
    );
    assert_eq!(frank.me().await.status, StatusCode::UNAUTHORIZED);
    // Replaying the old cookie does not work either: the session is gone on the server.
    let mut replay = server.session();
    replay.cookie = token;
    let me = replay.me().await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.code(), "unauthorized");
    // Logging out again is harmless.
    assert_eq!(
        replay.post("/api/v1/user/logout", json!({})).await.status,
        StatusCode::OK
    );
    // A made-up cookie is simply not a session.
    let mut forged = server.session();
    forged.cookie = Some("not-a-real-token".into());
    assert_eq!(forged.me().await.status, StatusCode::UNAUTHORIZED);
}

async fn password_change_revokes_other_sessions(server: TestServer) {
    let mut laptop = server.session();
    laptop.register("grace").await;
    let mut phone = server.session();
    assert_eq!(phone.login("grace", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(phone.me().await.status, StatusCode::OK);

    let wrong = laptop
        .post(
            "/api/v1/user/password",
            json!({"current_password": "not it at all", "new_password": "brand new secret"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.text);
    assert_eq!(wrong.code(), "wrong_password");
    assert_eq!(
        phone.me().await.status,
        StatusCode::OK,
        "a refused change revokes nothing"
    );

    let short = laptop
        .post(
            "/api/v1/user/password",
            json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert_eq!(short.body["field"], "new_password");

    let ok = laptop
        .post(
            "/api/v1/user/password",
            json!({"current_password": PASSWORD, "new_password": "brand new secret"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(
        laptop.me().await.status,
        StatusCode::OK,
        "the changing session stays signed in"
    );
    assert_eq!(
        phone.me().await.status,
        StatusCode::UNAUTHORIZED,
        "other sessions are revoked"
    );
    assert_eq!(
        server.session().login("grace", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server
            .session()
            .login("grace", "brand new secret")
            .await
            .status,
        StatusCode::OK
    );
    let anonymous = server
        .session()
        .post(
            "/api/v1/user/password",
            json!({"current_password": "x", "new_password": "yyyyyyyy"}),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

async fn repeated_failures_are_throttled(server: TestServer) {
    server.session().register("heidi").await;
    let limit = server.settings().throttle.per_user_and_address;
    for i in 0..limit {
        let answer = server.session().login("heidi", &format!("guess {i}")).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let blocked = server.session().login("heidi", "guess again").await;
    assert_eq!(
        blocked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        blocked.text
    );
    assert_eq!(blocked.code(), "too_many_requests");
    let retry: u64 = blocked
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After header");
    assert!(
        retry >= 1 && retry <= server.settings().throttle.window.as_secs() + 1,
        "{retry}"
    );
    assert_eq!(blocked.body["retry_after"], retry);
    // While throttled even the right password is refused, so guessing gains nothing.
    let right = server.session().login("heidi", PASSWORD).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    // Unknown usernames are throttled the same way (no hint that they do not exist).
    for i in 0..limit {
        server.session().login("ghost_user", &format!("g{i}")).await;
    }
    assert_eq!(
        server.session().login("ghost_user", "x").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn malformed_and_oversized_bodies_get_4xx(server: TestServer) {
    let mut s = server.session();
    let garbage = s
        .post_raw(
            "/api/v1/user/login",
            "application/json",
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST, "{}", garbage.text);
    assert_eq!(garbage.code(), "bad_request");
    assert!(garbage.body["message"].is_string());

    let missing = s.post("/api/v1/user/login", json!({"username": "x"})).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.text);
    assert_eq!(missing.code(), "bad_request");

    let wrong_type = s
        .post(
            "/api/v1/user/register",
            json!({"username": 5, "nickname": [], "password": {}}),
        )
        .await;
    assert_eq!(
        wrong_type.status,
        StatusCode::BAD_REQUEST,
        "{}",
        wrong_type.text
    );

    let unknown = s.post("/api/v1/user/nope", json!({})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.code(), "not_found");

    let not_utf8 = s
        .post_raw(
            "/api/v1/user/login",
            "application/json",
            vec![0xff, 0xfe, 0x00],
        )
        .await;
    assert_eq!(
        not_utf8.status,
        StatusCode::BAD_REQUEST,
        "{}",
        not_utf8.text
    );

    // Three times the 64 KiB limit: small enough that the client has written all of it
    // before the server answers and closes that connection.
    let huge = format!(
        r#"{{"username":"{}","password":"x"}}"#,
        "a".repeat(3 * 64 * 1024)
    );
    let big = server
        .session()
        .post_raw("/api/v1/user/login", "application/json", huge.into_bytes())
        .await;
    assert!(
        big.status.is_client_error(),
        "oversized body: {}",
        big.status
    );
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", big.text);
    assert_eq!(big.code(), "payload_too_large");

    // None of that created a session or an account.
    assert!(s.cookie.is_none());
    assert_eq!(s.me().await.status, StatusCode::UNAUTHORIZED);
}

async fn profile_update_is_kept_and_validated(server: TestServer) {
    let mut ivan = server.session();
    ivan.register("ivan").await;
    let update = ivan
        .post(
            "/api/v1/user/update",
            json!({"nickname": "伊万", "gender": "male", "signature": "Hello 世界", "mobile": "+86 138 0000 0000"}),
        )
        .await;
    assert_eq!(update.status, StatusCode::OK, "{}", update.text);
    assert_eq!(update.body["nickname"], "伊万");
    // A partial update changes only what it names.
    let partial = ivan
        .post("/api/v1/user/update", json!({"signature": "Busy"}))
        .await;
    assert_eq!(partial.status, StatusCode::OK, "{}", partial.text);
    let me = ivan.me().await;
    assert_eq!(me.body["nickname"], "伊万");
    assert_eq!(me.body["gender"], "male");
    assert_eq!(me.body["signature"], "Busy");
    assert_eq!(me.body["mobile"], "+86 138 0000 0000");

    for (body, field) in [
        (json!({"nickname": ""}), "nickname"),
        (json!({"gender": "robot"}), "gender"),
        (json!({"signature": "s".repeat(101)}), "signature"),
        (json!({"mobile": "call me"}), "mobile"),
        (json!({"nickname": "Fine", "mobile": "12"}), "mobile"),
    ] {
        let answer = ivan.post("/api/v1/user/update", body.clone()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer.body["field"], field, "{body}");
    }
    let me = ivan.me().await;
    assert_eq!(
        me.body["nickname"], "伊万",
        "a refused update stores no field at all"
    );
    assert_eq!(me.body["mobile"], "+86 138 0000 0000");

    let anonymous = server
        .session()
        .post("/api/v1/user/update", json!({"nickname": "Hacker"}))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

async fn pages_render_on_the_server_and_guard_the_shell(server: TestServer) {
    let mut visitor = server.session();
    let login = visitor.get("/login", &[]).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(
        login.text.contains(r#"action="/api/v1/user/login_form""#),
        "{}",
        login.text
    );
    assert!(login.text.contains(r#"name="username""#));
    for path in ["/chats", "/contacts", "/me", "/"] {
        let page = visitor.get(path, &[]).await;
        assert!(
            page.status.is_redirection(),
            "{path} without a session: {} {}",
            page.status,
            page.text
        );
        let location = page
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            location.ends_with("/login") || location.ends_with("/chats"),
            "{path} -> {location}"
        );
    }
    visitor.register("judy").await;
    let chats = visitor.get("/chats", &[]).await;
    assert_eq!(chats.status, StatusCode::OK);
    assert!(
        chats.text.contains("Nick judy"),
        "the shell shows who is signed in"
    );
    assert!(chats.text.contains(r#"class="rail""#));
    let me = visitor.get("/me", &[]).await;
    assert!(me.text.contains("@") && me.text.contains("judy"));
    let login_again = visitor.get("/login", &[]).await;
    assert!(
        login_again.status.is_redirection(),
        "a signed-in user skips the login page"
    );
    let missing = visitor.get("/no/such/page", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// Every server-rendered page answers, whole and in time, when fifty are asked for at once,
/// signed in and not. `QC_SSR_ROUNDS` asks for more rounds when hunting a race.
async fn pages_answer_fifty_parallel_requests(server: TestServer) {
    let mut member = server.session();
    member.register("pat").await;
    let cookie = format!("qc_session={}", member.cookie.clone().unwrap_or_default());
    let rounds: usize = std::env::var("QC_SSR_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let paths = ["/login", "/chats", "/contacts", "/me", "/", "/register"];
    for round in 0..rounds {
        let asks = (0..50).map(|i| {
            let client = server.client.clone();
            let path = paths[i % paths.len()];
            let url = format!("{}{path}", server.base);
            let cookie = (i % 2 == 0).then(|| cookie.clone());
            async move {
                let mut req = client
                    .get(url)
                    .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8");
                if let Some(cookie) = &cookie {
                    req = req.header("cookie", cookie);
                }
                let answer = tokio::time::timeout(std::time::Duration::from_secs(10), async {
                    let res = req.send().await.ok()?;
                    let status = res.status();
                    res.text().await.ok().map(|_| status)
                })
                .await;
                (path, cookie.is_some(), answer)
            }
        });
        let answers = futures_join_all(asks).await;
        let stuck: Vec<_> = answers
            .iter()
            .filter(|(_, _, answer)| !matches!(answer, Ok(Some(_))))
            .map(|(path, signed_in, _)| format!("{path} (signed in: {signed_in})"))
            .collect();
        assert!(
            stuck.is_empty(),
            "round {round}: no whole answer within 10 s: {stuck:?}"
        );
        for (path, signed_in, answer) in &answers {
            let Ok(Some(status)) = answer else { continue };
            assert!(
                status.is_success() || status.is_redirection(),
                "{path} (signed in: {signed_in}): {status}"
            );
        }
    }
}

/// Building a server's route list keeps every page of the whole process from loading its
/// data (Leptos suppresses resource loads while it walks the routes): a page asked for
/// meanwhile, from another server of the same process, waited for ever. Tests start many
/// servers in one process; here pages are asked for while more nodes start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_while_other_servers_start() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let askers: Vec<_> = (0..6)
        .map(|i| {
            let client = server.client.clone();
            let url = format!("{}{}", server.base, ["/login", "/chats", "/"][i % 3]);
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut answered = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let ask = client.get(&url).header("accept", "text/html").send();
                    match tokio::time::timeout(std::time::Duration::from_secs(10), ask).await {
                        Ok(Ok(_)) => answered += 1,
                        Ok(Err(e)) => return Err(format!("{url}: {e}")),
                        Err(_) => return Err(format!("{url}: no answer within 10 s")),
                    }
                }
                Ok(answered)
            })
        })
        .collect();
    for _ in 0..8 {
        drop(server.node().await);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for asker in askers {
        let answered = asker.await.expect("task");
        assert!(matches!(answered, Ok(n) if n > 0), "{answered:?}");
    }
}

async fn login_form_works_without_javascript(server: TestServer) {
    server.session().register("kim").await;
    let mut browser = server.session();
    let html_accept = "text/html,application/xhtml+xml";
    let form =
        |user: &str, pass: &str| format!("username={user}&password={}", pass.replace(' ', "+"));
    // A wrong password sends the browser back to the form with the error in the URL.
    let referer = format!("{}/login", server.base);
    let res = server
        .client
        .post(format!("{}/api/v1/user/login_form", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", html_accept)
        .header("referer", &referer)
        .body(form("kim", "nope nope"))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), StatusCode::FOUND);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.contains("/login") && location.contains("__err="),
        "{location}"
    );
    let page = browser
        .get(location.trim_start_matches(&server.base), &[])
        .await;
    assert!(
        page.text.contains("incorrect"),
        "the form page shows the error: {}",
        page.text
    );

    let ok = server
        .client
        .post(format!("{}/api/v1/user/login_form", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", html_accept)
        .header("referer", &referer)
        .body(form("kim", PASSWORD))
        .send()
        .await
        .expect("post");
    assert_eq!(ok.status(), StatusCode::FOUND);
    assert_eq!(ok.headers()["location"], "/chats");
    let cookie = ok.headers()["set-cookie"].to_str().unwrap();
    browser.cookie = cookie
        .strip_prefix("qc_session=")
        .and_then(|c| c.split(';').next())
        .map(str::to_owned);
    let chats = browser.get("/chats", &[]).await;
    assert_eq!(chats.status, StatusCode::OK);
    assert!(chats.text.contains("Nick kim"));
}

async fn language_follows_cookie_then_browser(server: TestServer) {
    let mut s = server.session();
    let zh = s
        .get("/login", &[("accept-language", "zh-CN,zh;q=0.9,en;q=0.5")])
        .await;
    assert!(zh.text.contains(r#"lang="zh-CN""#), "{}", zh.text);
    assert!(zh.text.contains("登录"));
    let en = s
        .get("/login", &[("accept-language", "en-US,en;q=0.9")])
        .await;
    assert!(en.text.contains(r#"lang="en""#));
    assert!(en.text.contains("Log in"));
    let chosen = s
        .get(
            "/login",
            &[("accept-language", "zh-CN"), ("cookie", "qc_lang=en")],
        )
        .await;
    assert!(
        chosen.text.contains(r#"lang="en""#),
        "the remembered choice wins over the browser"
    );
}

async fn health_check_answers(server: TestServer) {
    let res = server
        .client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::OK);
    let _ = Backend::Sqlite;
}
