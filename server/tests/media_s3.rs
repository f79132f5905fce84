//! The S3 media store against a real S3-compatible server: `moto` (PyPI) in server mode,
//! started here on a free port of 127.0.0.1 and stopped at the end. moto was chosen because
//! it installs from PyPI with pip (which this machine reaches), runs without any network,
//! and implements the multipart uploads and ranged reads the store uses; `scripts/test`
//! installs it when missing. Without it the test is skipped, or fails under
//! `QC_TEST_REQUIRE_ALL=1`.
mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::people::{befriend, connect, to_user, user};
use common::{Backend, TestServer};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE};
use serde_json::{Value, json};
use server::config::MediaStoreKind;
use server::media::picture::samples::jpeg_with_exif;

const BUCKET: &str = "qc-media";

/// A moto server on its own port, killed when dropped.
struct Moto {
    child: tokio::process::Child,
    endpoint: String,
}

impl Moto {
    async fn start() -> Option<Moto> {
        let has_moto = std::process::Command::new("python3")
            .args(["-c", "import moto.server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !has_moto {
            if std::env::var("QC_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1") {
                panic!(
                    "moto is not installed (pip install 'moto[server]') but QC_TEST_REQUIRE_ALL=1"
                );
            }
            eprintln!("skipping: moto is not installed");
            return None;
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let child = tokio::process::Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start moto");
        let endpoint = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if client.get(&endpoint).send().await.is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "moto did not start");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let made = client
            .put(format!("{endpoint}/{BUCKET}"))
            .send()
            .await
            .expect("create bucket");
        assert!(
            made.status().is_success(),
            "create bucket: {}",
            made.status()
        );
        Some(Moto { child, endpoint })
    }

    /// The keys in the bucket.
    async fn keys(&self) -> Vec<String> {
        let xml = reqwest::get(format!("{}/{BUCKET}?list-type=2", self.endpoint))
            .await
            .expect("list")
            .text()
            .await
            .expect("list body");
        xml.split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split("</Key>").next().map(str::to_owned))
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn upload(server: &TestServer, cookie: &str, name: &str, bytes: Vec<u8>) -> Value {
    let res = server
        .client
        .post(format!("{}/api/v1/media?name={name}", server.base))
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(COOKIE, format!("qc_session={cookie}"))
        .body(bytes)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.expect("json")
}

async fn download(
    server: &TestServer,
    cookie: &str,
    path: &str,
    range: Option<&str>,
) -> (StatusCode, Vec<u8>) {
    let mut req = server
        .client
        .get(format!("{}{path}", server.base))
        .header(COOKIE, format!("qc_session={cookie}"));
    if let Some(range) = range {
        req = req.header("range", range);
    }
    let res = req.send().await.expect("download");
    (res.status(), res.bytes().await.expect("bytes").to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_live_in_s3_once_and_come_back_whole_or_in_part() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let endpoint = moto.endpoint.clone();
    let Some(server) = TestServer::start_with(Backend::Sqlite, |c| {
        c.media_store = MediaStoreKind::S3;
        c.s3_endpoint = endpoint;
        c.s3_bucket = BUCKET.into();
        c.s3_access_key_id = "test".into();
        c.s3_secret_access_key = "test".into();
    })
    .await
    else {
        return;
    };
    let (ann, bea) = (user(&server, "ann").await, user(&server, "bea").await);
    befriend(&server, &ann, &bea).await;

    // 20 MiB: sent up in several parts.
    let mut big = b"%PDF-1.7\n".to_vec();
    big.extend((0..20 * 1024 * 1024).map(|i: usize| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let first = upload(&server, &ann.cookie, "big.pdf", big.clone()).await;
    let again = upload(&server, &ann.cookie, "again.pdf", big.clone()).await;
    assert_ne!(first["id"], again["id"]);
    assert_eq!(moto.keys().await.len(), 1, "stored once");
    let photo = upload(
        &server,
        &ann.cookie,
        "photo.jpg",
        jpeg_with_exif(800, 800, 1),
    )
    .await;
    assert_eq!(photo["kind"], "image");
    assert_eq!(moto.keys().await.len(), 3, "the photo and its thumbnail");

    let mut wa = connect(&server, &ann).await;
    let mut wb = connect(&server, &bea).await;
    wa.send(
        json!({"type": "send", "client_id": "s3-1", "to": to_user(&bea),
                   "content": {"kind": "file", "media": first["id"]}}),
    )
    .await;
    wa.next_of("ack").await;
    wb.next_of("message").await;
    let url = first["url"].as_str().expect("url");
    let (status, bytes) = download(&server, &bea.cookie, url, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes == big, "the same 20 MiB back");
    let (status, part) = download(&server, &bea.cookie, url, Some("bytes=12000000-12000099")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part, big[12_000_000..12_000_100]);
    let thumb = photo["thumb"].as_str().expect("thumb");
    let (status, small) = download(&server, &ann.cookie, thumb, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        image::load_from_memory(&small).expect("decodes").width(),
        320
    );

    // A day later: the sent file stays; the unsent photo and its thumbnail go.
    let removed = server
        .media
        .expire_unsent(app::ssr::now_ms() + 25 * 3_600_000)
        .await
        .expect("sweep");
    assert_eq!(removed, 2);
    assert_eq!(moto.keys().await.len(), 1);
    assert_eq!(
        download(&server, &bea.cookie, url, None).await.0,
        StatusCode::OK
    );

    // The store is fine: so says /healthz.
    let health = |server: &TestServer| {
        let (client, url) = (server.client.clone(), format!("{}/healthz", server.base));
        async move {
            let r = client.get(url).send().await.expect("healthz");
            (r.status(), r.json::<Value>().await.expect("json"))
        }
    };
    assert_eq!(health(&server).await.1["status"], "ok");

    // S3 goes away: chat goes on, /healthz says degraded, uploads and downloads say
    // "unavailable" within seconds instead of hanging.
    drop(moto);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let (status, body) = health(&server).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["media"], "unavailable");
    let r = server
        .client
        .post(format!("{}/api/v1/media?name=late.pdf", server.base))
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(COOKIE, format!("qc_session={}", ann.cookie))
        .body(b"%PDF-1.7 late".to_vec())
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["code"], "unavailable", "{body}");
    assert_eq!(
        download(&server, &bea.cookie, url, None).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "answered in {:?}",
        started.elapsed()
    );
    wa.send(
        json!({"type": "send", "client_id": "s3-2", "to": to_user(&bea),
                   "content": {"kind": "text", "text": "still here"}}),
    )
    .await;
    wa.next_of("ack").await;
    assert_eq!(wb.next_of("message").await["content"]["text"], "still here");
}
