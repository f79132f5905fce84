//! Contacts over real HTTP on a real database: searching people, friend requests and their
//! rules, removal, groups and their owner-only actions, and the races between accepts and
//! removes (which must never leave a half friendship).
mod common;

use app::contacts::{RelationType, RoleType};
use app::ssr::entity::{user_base, user_relation};
use common::{Session, TestServer};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};

db_tests!(
    search_finds_people_with_their_standing,
    request_then_accept_makes_friends_both_ways,
    request_rules,
    only_the_target_may_accept_or_decline,
    removing_leaves_a_removed_you_entry_and_allows_a_new_request,
    groups_join_approve_leave,
    group_owner_rules,
    group_member_limit,
    parallel_accepts_and_removes_never_leave_half_a_friendship,
    listing_needs_a_session_and_a_known_kind,
);

/// The relation rows between two users, as (a→b, b→a) relation types.
async fn pair(server: &TestServer, a: &str, b: &str) -> (Option<i16>, Option<i16>) {
    let id = |name: &str| {
        let name = name.to_owned();
        async move {
            user_base::Entity::find()
                .filter(user_base::Column::Username.eq(name))
                .one(&server.core.db)
                .await
                .unwrap()
                .unwrap()
                .id
        }
    };
    let (a, b) = (id(a).await, id(b).await);
    let kind = |x, y| async move {
        user_relation::Entity::find()
            .filter(user_relation::Column::UserId.eq(x))
            .filter(user_relation::Column::TargetId.eq(y))
            .filter(user_relation::Column::RoleType.eq(RoleType::Friend))
            .one(&server.core.db)
            .await
            .unwrap()
            .map(|r| i16::from(r.relation_type))
    };
    (kind(a, b).await, kind(b, a).await)
}

async fn list(s: &mut Session<'_>, kind: i16, role: i16) -> Vec<Value> {
    let answer = s
        .post(
            "/api/v1/relation/list",
            json!({"relation_type": kind, "role_type": role}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.body.as_array().cloned().unwrap_or_default()
}

fn usernames(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .filter_map(|e| e["username"].as_str())
        .collect()
}

async fn request(s: &mut Session<'_>, username: &str, memo: &str) -> common::Answer {
    s.post(
        "/api/v1/relation/request",
        json!({"username": username, "memo": memo}),
    )
    .await
}

async fn act(s: &mut Session<'_>, what: &str, username: &str) -> common::Answer {
    s.post(
        &format!("/api/v1/relation/{what}"),
        json!({"username": username}),
    )
    .await
}

/// Registers both and makes them friends.
async fn friends<'a>(server: &'a TestServer, a: &str, b: &str) -> (Session<'a>, Session<'a>) {
    let mut sa = server.session();
    sa.register(a).await;
    let mut sb = server.session();
    sb.register(b).await;
    assert_eq!(request(&mut sa, b, "hi").await.status, StatusCode::OK);
    assert_eq!(act(&mut sb, "accept", a).await.status, StatusCode::OK);
    (sa, sb)
}

async fn search_finds_people_with_their_standing(server: TestServer) {
    let mut alice = server.session();
    alice.register("alice").await;
    server.session().register("bob").await;
    server.session().register("bobby").await;
    server.session().register("rob").await;
    server.session().register("banned_bob").await;
    user_base::Entity::update_many()
        .set(user_base::ActiveModel {
            role: Set(1),
            ..Default::default()
        })
        .filter(user_base::Column::Username.eq("banned_bob"))
        .exec(&server.core.db)
        .await
        .unwrap();

    let hits = alice
        .post("/api/v1/user/search", json!({"query": "BOB"}))
        .await;
    assert_eq!(hits.status, StatusCode::OK, "{}", hits.text);
    let hits = hits.body.as_array().unwrap().clone();
    assert_eq!(
        usernames(&hits),
        ["bob", "bobby"],
        "prefix match, shortest first, banned hidden"
    );
    assert_eq!(hits[0]["nickname"], "Nick bob");
    assert_eq!(hits[0]["standing"], "none");
    assert!(hits[0].get("password_hash").is_none() && hits[0].get("mobile").is_none());

    request(&mut alice, "bob", "hello").await;
    let hits = alice
        .post("/api/v1/user/search", json!({"query": "bob"}))
        .await
        .body;
    assert_eq!(hits[0]["standing"], "requested");
    let me = alice
        .post("/api/v1/user/search", json!({"query": "alice"}))
        .await
        .body;
    assert_eq!(me[0]["standing"], "myself");
    // `_` is a literal character, not a wildcard.
    let none = alice
        .post("/api/v1/user/search", json!({"query": "b_b"}))
        .await
        .body;
    assert_eq!(none, json!([]));
    let anonymous = server
        .session()
        .post("/api/v1/user/search", json!({"query": "bob"}))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

async fn request_then_accept_makes_friends_both_ways(server: TestServer) {
    let mut a = server.session();
    a.register("anna").await;
    let mut b = server.session();
    b.register("ben").await;
    let sent = request(&mut a, "ben", "We met at the club").await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    assert_eq!(sent.body, "requested");
    assert_eq!(pair(&server, "anna", "ben").await, (Some(1), None));

    let received = list(
        &mut b,
        RelationType::Requested.into(),
        RoleType::Friend.into(),
    )
    .await;
    assert_eq!(usernames(&received), ["anna"]);
    assert_eq!(received[0]["memo"], "We met at the club");
    assert_eq!(received[0]["nickname"], "Nick anna");
    let outgoing = a
        .post(
            "/api/v1/relation/list",
            json!({"relation_type": 1, "role_type": 1, "sent": true}),
        )
        .await;
    assert_eq!(usernames(outgoing.body.as_array().unwrap()), ["ben"]);
    assert!(
        list(&mut a, 1, 1).await.is_empty(),
        "the requester has nothing to answer"
    );

    assert_eq!(act(&mut b, "accept", "anna").await.status, StatusCode::OK);
    assert_eq!(pair(&server, "anna", "ben").await, (Some(2), Some(2)));
    assert_eq!(usernames(&list(&mut a, 2, 1).await), ["ben"]);
    assert_eq!(usernames(&list(&mut b, 2, 1).await), ["anna"]);
    assert!(
        list(&mut b, 1, 1).await.is_empty(),
        "the request is answered"
    );
}

async fn request_rules(server: TestServer) {
    let (mut a, mut b) = friends(&server, "carl", "cora").await;
    let to_self = request(&mut a, "carl", "").await;
    assert_eq!(
        (to_self.status, to_self.code()),
        (StatusCode::BAD_REQUEST, "cannot_add_self")
    );
    let to_friend = request(&mut a, "cora", "again?").await;
    assert_eq!(
        (to_friend.status, to_friend.code()),
        (StatusCode::CONFLICT, "already_friends")
    );
    let unknown = request(&mut a, "nobody", "").await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::NOT_FOUND, "user_not_found")
    );
    let long_memo = request(&mut a, "cora", &"m".repeat(101)).await;
    assert_eq!(long_memo.body["field"], "memo");

    // Banned and deleted accounts cannot be requested.
    let mut c = server.session();
    c.register("cyril").await;
    c.register("dina").await;
    user_base::Entity::update_many()
        .set(user_base::ActiveModel {
            role: Set(1),
            ..Default::default()
        })
        .filter(user_base::Column::Username.eq("cyril"))
        .exec(&server.core.db)
        .await
        .unwrap();
    user_base::Entity::update_many()
        .set(user_base::ActiveModel {
            deleted_at: Set(Some(1)),
            ..Default::default()
        })
        .filter(user_base::Column::Username.eq("dina"))
        .exec(&server.core.db)
        .await
        .unwrap();
    for name in ["cyril", "dina"] {
        let answer = request(&mut a, name, "").await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{name}");
    }

    // A second request while one is pending updates the note; it does not duplicate.
    let mut e = server.session();
    e.register("emil").await;
    request(&mut a, "emil", "first note").await;
    request(&mut a, "emil", "second note").await;
    let received = list(&mut e, 1, 1).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["memo"], "second note");

    // Asking someone who already asked you makes you friends.
    let mut f = server.session();
    f.register("fay").await;
    request(&mut f, "emil", "hi emil").await;
    let mutual = request(&mut e, "fay", "hi fay").await;
    assert_eq!(mutual.body, "friend");
    assert_eq!(pair(&server, "emil", "fay").await, (Some(2), Some(2)));
    let _ = &mut b;
}

async fn only_the_target_may_accept_or_decline(server: TestServer) {
    let mut a = server.session();
    a.register("gus").await;
    let mut b = server.session();
    b.register("gwen").await;
    let mut c = server.session();
    c.register("hank").await;
    request(&mut a, "gwen", "hi").await;
    // The requester cannot accept their own request, nor can a third person.
    assert_eq!(
        act(&mut a, "accept", "gwen").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        act(&mut c, "accept", "gus").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        act(&mut c, "decline", "gus").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        pair(&server, "gus", "gwen").await,
        (Some(1), None),
        "nothing changed"
    );
    assert_eq!(act(&mut b, "decline", "gus").await.status, StatusCode::OK);
    assert_eq!(
        pair(&server, "gus", "gwen").await,
        (None, None),
        "declining deletes the request"
    );
    assert_eq!(
        act(&mut b, "decline", "gus").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        act(&mut b, "accept", "gus").await.status,
        StatusCode::NOT_FOUND
    );
    let anonymous = server
        .session()
        .post("/api/v1/relation/accept", json!({"username": "gus"}))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

async fn removing_leaves_a_removed_you_entry_and_allows_a_new_request(server: TestServer) {
    let (mut a, mut b) = friends(&server, "ida", "ivo").await;
    assert_eq!(act(&mut a, "remove", "ivo").await.status, StatusCode::OK);
    assert_eq!(pair(&server, "ida", "ivo").await, (None, Some(3)));
    assert!(list(&mut a, 2, 1).await.is_empty());
    assert!(list(&mut b, 2, 1).await.is_empty());
    assert_eq!(
        usernames(&list(&mut b, 3, 1).await),
        ["ida"],
        "ivo sees 'removed you'"
    );
    let hits = b
        .post("/api/v1/user/search", json!({"query": "ida"}))
        .await
        .body;
    assert_eq!(hits[0]["standing"], "removed_you");
    // Removing again is a 404: nothing left on ida's side.
    assert_eq!(
        act(&mut a, "remove", "ivo").await.status,
        StatusCode::NOT_FOUND
    );

    // The removed one may ask again; the remover sees it and can accept.
    assert_eq!(
        request(&mut b, "ida", "friends again?").await.body,
        "requested"
    );
    let received = list(&mut a, 1, 1).await;
    assert_eq!(usernames(&received), ["ivo"]);
    assert_eq!(received[0]["memo"], "friends again?");
    assert_eq!(act(&mut a, "accept", "ivo").await.status, StatusCode::OK);
    assert_eq!(pair(&server, "ida", "ivo").await, (Some(2), Some(2)));

    // Withdrawing a pending request, and dismissing a "removed you" entry.
    let mut c = server.session();
    c.register("jon").await;
    request(&mut c, "ida", "hi").await;
    assert_eq!(act(&mut c, "remove", "ida").await.status, StatusCode::OK);
    assert!(list(&mut a, 1, 1).await.is_empty());
    act(&mut b, "remove", "ida").await;
    assert_eq!(usernames(&list(&mut a, 3, 1).await), ["ivo"]);
    assert_eq!(act(&mut a, "remove", "ivo").await.status, StatusCode::OK);
    assert!(list(&mut a, 3, 1).await.is_empty());
    assert_eq!(pair(&server, "ida", "ivo").await, (None, None));
}

async fn create_group(s: &mut Session<'_>, name: &str) -> Value {
    let answer = s
        .post(
            "/api/v1/community/create",
            json!({"name": name, "description": "A group"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.body
}

async fn community(s: &mut Session<'_>, what: &str, body: Value) -> common::Answer {
    s.post(&format!("/api/v1/community/{what}"), body).await
}

async fn groups_join_approve_leave(server: TestServer) {
    let mut owner = server.session();
    owner.register("kate").await;
    let mut b = server.session();
    b.register("karl").await;
    let group = create_group(&mut owner, "Chess Club").await;
    let id = group["id"].as_str().unwrap().to_owned();
    assert_eq!(group["membership"], "owner");
    assert_eq!(group["member_count"], 1);
    assert_eq!(group["owner"]["username"], "kate");

    let by_name = community(&mut b, "search", json!({"query": "chess"})).await;
    assert_eq!(by_name.body[0]["id"], id.as_str(), "{}", by_name.text);
    assert_eq!(by_name.body[0]["membership"], "none");
    let by_id = community(&mut b, "search", json!({"query": id})).await;
    assert_eq!(by_id.body[0]["name"], "Chess Club");

    let joined = community(
        &mut b,
        "join",
        json!({"community_id": id, "memo": "I play"}),
    )
    .await;
    assert_eq!(joined.body, "requested", "{}", joined.text);
    let requests = list(&mut owner, 1, 2).await;
    assert_eq!(usernames(&requests), ["karl"]);
    assert_eq!(requests[0]["memo"], "I play");
    assert_eq!(requests[0]["community"]["id"], id.as_str());
    // Not a member yet: no member list.
    let early = community(&mut b, "members", json!({"community_id": id})).await;
    assert_eq!(
        (early.status, early.code()),
        (StatusCode::FORBIDDEN, "not_member")
    );
    let self_approve = community(
        &mut b,
        "approve",
        json!({"community_id": id, "username": "karl"}),
    )
    .await;
    assert_eq!(
        (self_approve.status, self_approve.code()),
        (StatusCode::FORBIDDEN, "not_owner")
    );

    let approved = community(
        &mut owner,
        "approve",
        json!({"community_id": id, "username": "karl"}),
    )
    .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
    for s in [&mut owner, &mut b] {
        let members = community(s, "members", json!({"community_id": id})).await;
        let names: Vec<&str> = members
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["username"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["kate", "karl"], "owner first");
        assert_eq!(members.body[0]["is_owner"], true);
    }
    assert_eq!(
        list(&mut b, 2, 2).await[0]["community"]["name"],
        "Chess Club"
    );
    let again = community(&mut b, "join", json!({"community_id": id})).await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "already_member")
    );

    assert_eq!(
        community(&mut b, "leave", json!({"community_id": id}))
            .await
            .status,
        StatusCode::OK
    );
    let members = community(&mut owner, "members", json!({"community_id": id})).await;
    assert_eq!(members.body.as_array().unwrap().len(), 1);
    assert!(list(&mut b, 2, 2).await.is_empty());

    // Declining a join request deletes it.
    community(&mut b, "join", json!({"community_id": id, "memo": "again"})).await;
    let declined = community(
        &mut owner,
        "decline",
        json!({"community_id": id, "username": "karl"}),
    )
    .await;
    assert_eq!(declined.status, StatusCode::OK);
    assert!(list(&mut owner, 1, 2).await.is_empty());
    let unknown = community(&mut b, "get", json!({"community_id": "not-a-uuid"})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

async fn group_owner_rules(server: TestServer) {
    let mut owner = server.session();
    owner.register("lena").await;
    let mut m = server.session();
    m.register("leo").await;
    let mut other = server.session();
    other.register("lou").await;
    let id = create_group(&mut owner, "Hikers").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for s in [&mut m, &mut other] {
        community(s, "join", json!({"community_id": id})).await;
    }
    for name in ["leo", "lou"] {
        community(
            &mut owner,
            "approve",
            json!({"community_id": id, "username": name}),
        )
        .await;
    }

    let leave = community(&mut owner, "leave", json!({"community_id": id})).await;
    assert_eq!(
        (leave.status, leave.code()),
        (StatusCode::CONFLICT, "owner_cannot_leave")
    );
    for (what, body) in [
        ("update", json!({"community_id": id, "name": "Mine now"})),
        (
            "remove_member",
            json!({"community_id": id, "username": "lou"}),
        ),
        ("transfer", json!({"community_id": id, "username": "leo"})),
        ("dissolve", json!({"community_id": id})),
    ] {
        let answer = community(&mut m, what, body).await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::FORBIDDEN, "not_owner"),
            "{what}"
        );
    }
    let group = community(&mut m, "get", json!({"community_id": id}))
        .await
        .body;
    assert_eq!(
        (group["name"].as_str(), group["member_count"].as_u64()),
        (Some("Hikers"), Some(3))
    );

    let updated = community(
        &mut owner,
        "update",
        json!({"community_id": id, "name": "Mountain Hikers", "description": "Up we go"}),
    )
    .await;
    assert_eq!(updated.body["name"], "Mountain Hikers", "{}", updated.text);
    let bad = community(
        &mut owner,
        "update",
        json!({"community_id": id, "name": ""}),
    )
    .await;
    assert_eq!(bad.body["field"], "name");

    assert_eq!(
        community(
            &mut owner,
            "remove_member",
            json!({"community_id": id, "username": "lou"})
        )
        .await
        .status,
        StatusCode::OK
    );
    let gone = community(&mut other, "members", json!({"community_id": id})).await;
    assert_eq!(gone.status, StatusCode::FORBIDDEN);

    let transferred = community(
        &mut owner,
        "transfer",
        json!({"community_id": id, "username": "leo"}),
    )
    .await;
    assert_eq!(
        transferred.body["owner"]["username"], "leo",
        "{}",
        transferred.text
    );
    assert_eq!(transferred.body["membership"], "member");
    assert_eq!(
        community(&mut owner, "leave", json!({"community_id": id}))
            .await
            .status,
        StatusCode::OK
    );
    let not_owner = community(&mut owner, "dissolve", json!({"community_id": id})).await;
    assert_eq!(not_owner.status, StatusCode::FORBIDDEN);

    assert_eq!(
        community(&mut m, "dissolve", json!({"community_id": id}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        community(&mut m, "get", json!({"community_id": id}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(list(&mut m, 2, 2).await.is_empty());
    let search = community(&mut other, "search", json!({"query": "hikers"})).await;
    assert_eq!(search.body, json!([]));
}

async fn group_member_limit(server: TestServer) {
    let backend = server.backend;
    drop(server);
    let server = TestServer::start_with(backend, |c| c.group_max_members = 2)
        .await
        .unwrap();
    let mut owner = server.session();
    owner.register("mia").await;
    let id = create_group(&mut owner, "Duo").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut b = server.session();
    b.register("max").await;
    let mut c = server.session();
    c.register("mel").await;
    community(&mut b, "join", json!({"community_id": id})).await;
    community(&mut c, "join", json!({"community_id": id})).await;
    assert_eq!(
        community(
            &mut owner,
            "approve",
            json!({"community_id": id, "username": "max"})
        )
        .await
        .status,
        StatusCode::OK
    );
    let full = community(
        &mut owner,
        "approve",
        json!({"community_id": id, "username": "mel"}),
    )
    .await;
    assert_eq!(
        (full.status, full.code()),
        (StatusCode::CONFLICT, "group_full")
    );
    let mut d = server.session();
    d.register("moe").await;
    let join = community(&mut d, "join", json!({"community_id": id})).await;
    assert_eq!(join.code(), "group_full");
}

/// A friendship is whole (both rows accepted) or absent on one side; never one row accepted
/// and the other not.
fn whole(pair: (Option<i16>, Option<i16>)) -> bool {
    let accepted = |k: Option<i16>| k == Some(RelationType::Accepted.into());
    accepted(pair.0) == accepted(pair.1)
}

async fn parallel_accepts_and_removes_never_leave_half_a_friendship(server: TestServer) {
    for round in 0..8 {
        let a_name = format!("ra{round}");
        let b_name = format!("rb{round}");
        let mut a = server.session();
        a.register(&a_name).await;
        let mut b = server.session();
        b.register(&b_name).await;
        request(&mut a, &b_name, "race").await;
        let (a_cookie, b_cookie) = (a.cookie.clone().unwrap(), b.cookie.clone().unwrap());
        let call = |cookie: String, what: &'static str, username: String| {
            let client = server.client.clone();
            let url = format!("{}/api/v1/relation/{what}", server.base);
            tokio::spawn(async move {
                client
                    .post(url)
                    .header("cookie", format!("qc_session={cookie}"))
                    .json(&json!({"username": username}))
                    .send()
                    .await
                    .map(|r| r.status())
                    .expect("request")
            })
        };
        // Two accepts at once, and an accept racing the requester's remove and the target's.
        let tasks = [
            call(b_cookie.clone(), "accept", a_name.clone()),
            call(b_cookie.clone(), "accept", a_name.clone()),
            call(a_cookie.clone(), "remove", b_name.clone()),
            call(
                b_cookie.clone(),
                if round % 2 == 0 { "remove" } else { "accept" },
                a_name.clone(),
            ),
        ];
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        assert!(
            statuses
                .iter()
                .all(|s| *s == StatusCode::OK || *s == StatusCode::NOT_FOUND),
            "round {round}: only success or 'nothing to do', never a server error: {statuses:?}"
        );
        let state = pair(&server, &a_name, &b_name).await;
        assert!(
            whole(state),
            "round {round}: half a friendship {state:?} after {statuses:?}"
        );
    }
}

async fn listing_needs_a_session_and_a_known_kind(server: TestServer) {
    let anonymous = server
        .session()
        .post(
            "/api/v1/relation/list",
            json!({"relation_type": 2, "role_type": 1}),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let mut s = server.session();
    s.register("nia").await;
    let odd = s
        .post(
            "/api/v1/relation/list",
            json!({"relation_type": 3, "role_type": 2}),
        )
        .await;
    assert_eq!(
        (odd.status, odd.code()),
        (StatusCode::BAD_REQUEST, "invalid_field")
    );
    let not_number = s
        .post(
            "/api/v1/relation/list",
            json!({"relation_type": "friends", "role_type": 1}),
        )
        .await;
    assert_eq!(not_number.status, StatusCode::BAD_REQUEST);
}
