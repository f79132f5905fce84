//! A flood of password hashing: beyond what the hashing threads can queue, requests are
//! refused at once (503 with Retry-After) instead of waiting in an ever longer line, and
//! nothing is half done. Alone in its test binary: the hashing threads belong to the
//! process, and a flood here must not make another test's login wait.
mod common;

use std::time::{Duration, Instant};

use common::{Backend, PASSWORD, TestServer};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_hash_queue_refuses_at_once() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let started = Instant::now();
    let registrations = (0..300).map(|i| {
        let server = &server;
        async move {
            server
                .session()
                .post(
                    "/api/v1/user/register",
                    json!({"username": format!("flood_{i}"), "nickname": "F", "password": PASSWORD}),
                )
                .await
        }
    });
    let answers = futures_util::future::join_all(registrations).await;
    let ok = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .count();
    let busy: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert_eq!(ok + busy.len(), 300, "only successes and refusals");
    assert!(!busy.is_empty(), "300 at once overflow the queue");
    assert!(ok >= 50, "the queue's worth went through: {ok}");
    for answer in &busy {
        assert_eq!(answer.code(), "unavailable");
        assert_eq!(answer.headers["retry-after"], "1");
    }
    // Refusals cost no hashing: the whole flood is over in the time of the accepted ones.
    assert!(started.elapsed() < Duration::from_secs(60));
    // A refused registration created nothing, and the name is still free.
    let refused = answers
        .iter()
        .position(|a| a.status == StatusCode::SERVICE_UNAVAILABLE)
        .expect("one refused");
    let again = server
        .session()
        .post(
            "/api/v1/user/register",
            json!({"username": format!("flood_{refused}"), "nickname": "F", "password": PASSWORD}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
}
