//! People in a test: registered users with their cookies, friendships, relay connections
//! and the frames they send. Shared by the relay and the trust tests.
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{TestServer, Ws};

/// A registered user with a session cookie and their id.
pub struct User {
    pub name: String,
    pub id: String,
    pub cookie: String,
}

pub async fn user(server: &TestServer, name: &str) -> User {
    let mut s = server.session();
    let answer = s.register(name).await;
    User {
        name: name.to_owned(),
        id: answer.body["id"].as_str().unwrap().to_owned(),
        cookie: s.cookie.unwrap(),
    }
}

pub fn session<'a>(server: &'a TestServer, u: &User) -> super::Session<'a> {
    let mut s = server.session();
    s.cookie = Some(u.cookie.clone());
    s
}

pub async fn befriend(server: &TestServer, a: &User, b: &User) {
    let r = session(server, a)
        .post(
            "/api/v1/relation/request",
            json!({"username": b.name, "memo": ""}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = session(server, b)
        .post("/api/v1/relation/accept", json!({"username": a.name}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

pub async fn connect(server: &TestServer, u: &User) -> Ws {
    let mut ws = Ws::connect(server, &u.cookie).await;
    let ready = ws.next().await.expect("ready");
    assert_eq!(ready["type"], "ready", "the first frame is ready: {ready}");
    assert_eq!(ready["version"], 1);
    assert_eq!(ready["me"]["id"], u.id.as_str());
    ws
}

pub fn text(client_id: &str, to: Value, text: &str) -> Value {
    json!({"type": "send", "client_id": client_id, "to": to, "content": {"kind": "text", "text": text}})
}

pub fn to_user(u: &User) -> Value {
    json!({"user": u.id})
}

/// A group `owner` created through `server`, with each of `members` joined and approved;
/// answers its id.
pub async fn group(server: &TestServer, owner: &User, members: &[&User]) -> String {
    let r = session(server, owner)
        .post(
            "/api/v1/community/create",
            json!({"name": "Hikers", "description": ""}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let gid = r.body["id"].as_str().expect("id").to_owned();
    for member in members {
        let r = session(server, member)
            .post(
                "/api/v1/community/join",
                json!({"community_id": gid, "memo": ""}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let r = session(server, owner)
            .post(
                "/api/v1/community/approve",
                json!({"community_id": gid, "username": member.name}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    gid
}
