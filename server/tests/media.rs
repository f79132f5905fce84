//! Images and files end to end against a real server, database and media directory: upload,
//! send, download by those who may and 404 for everyone else (a stranger, a removed friend,
//! a former member), typing by content, pictures cleaned and refused, size limits before
//! and while streaming, ranges and validators, stored once, quota, rate, other sites, and
//! the expiry of uploads never sent.
mod common;

use std::time::Duration;

use app::ssr::entity::media as media_row;
use common::people::{User, befriend, connect, group, session, to_user, user};
use common::{Backend, TestServer, Ws};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderMap};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use server::media::picture::samples::{jpeg_with_exif, png_claiming};

db_tests!(
    a_file_goes_to_the_friend_and_nobody_else,
    pictures_are_typed_by_content_cleaned_and_upright,
    broken_and_huge_pictures_are_refused,
    ranges_validators_and_one_copy,
    a_removed_friend_and_a_former_member_lose_access,
    only_the_uploader_may_send_it,
    unsent_uploads_expire_and_sent_ones_stay,
    uploads_from_other_sites_or_as_forms_are_refused,
    an_avatar_is_seen_by_everyone_and_friends_hear_of_it,
    a_group_gets_a_picture_and_members_hear_of_new_faces,
);

/// Each test also run with a configuration of its own, on every backend.
macro_rules! tweaked_tests {
    ($($name:ident),* $(,)?) => {
        mod tweaked {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                for backend in [$crate::Backend::Sqlite, $crate::Backend::Postgres, $crate::Backend::MySql] {
                    super::$name(backend).await;
                }
            })*
        }
    };
}

tweaked_tests!(
    oversize_is_refused_before_and_while_streaming,
    quota_and_rate,
    fifty_parallel_uploads_fit_the_quota_exactly,
);

/// What a download answered, bytes and all.
struct Got {
    status: StatusCode,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

async fn get(server: &TestServer, who: Option<&User>, path: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = server.client.get(format!("{}{path}", server.base));
    if let Some(u) = who {
        req = req.header(COOKIE, format!("qc_session={}", u.cookie));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.expect("request");
    Got {
        status: res.status(),
        headers: res.headers().clone(),
        bytes: res.bytes().await.expect("body").to_vec(),
    }
}

/// Uploads `bytes` as `name`; answers the status and JSON body.
async fn upload(
    server: &TestServer,
    who: &User,
    name: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let res = server
        .client
        .post(format!(
            "{}/api/v1/media?name={}",
            server.base,
            urlencode(name)
        ))
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(COOKIE, format!("qc_session={}", who.cookie))
        .body(bytes)
        .send()
        .await
        .expect("upload");
    let status = res.status();
    let body = res.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

async fn uploaded(server: &TestServer, who: &User, name: &str, bytes: Vec<u8>) -> Value {
    let (status, body) = upload(server, who, name, bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn pdf(n: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..n).map(|i| (i * 31 % 251) as u8));
    bytes
}

fn send_media(client_id: &str, to: Value, content: Value) -> Value {
    json!({"type": "send", "client_id": client_id, "to": to, "content": content})
}

/// Sends and waits for the ack; answers the stored message's content as the receiver
/// `rx` gets it.
async fn send_and_receive(
    tx: &mut Ws,
    rx: &mut Ws,
    client_id: &str,
    to: Value,
    content: Value,
) -> Value {
    tx.send(send_media(client_id, to, content)).await;
    let ack = loop {
        let frame = tx.next().await.expect("a frame");
        match frame["type"].as_str() {
            Some("ack") => break frame,
            Some("error") => panic!("{client_id} refused: {frame}"),
            _ => {}
        }
    };
    assert_eq!(ack["client_id"], client_id, "{ack}");
    let message = rx.next_of("message").await;
    message["content"].clone()
}

async fn rows_of(server: &TestServer, u: &User) -> u64 {
    media_row::Entity::find()
        .filter(media_row::Column::OwnerId.eq(uuid::Uuid::parse_str(&u.id).expect("uuid")))
        .count(&server.core.db)
        .await
        .expect("count")
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

async fn a_file_goes_to_the_friend_and_nobody_else(server: TestServer) {
    let (ann, bea, cid) = (
        user(&server, "ann").await,
        user(&server, "bea").await,
        user(&server, "cid").await,
    );
    befriend(&server, &ann, &bea).await;
    let bytes = pdf(50_000);
    let up = uploaded(&server, &ann, "Quarterly report 报告.pdf", bytes.clone()).await;
    assert_eq!(up["kind"], "file");
    assert_eq!(up["mime"], "application/pdf");
    assert_eq!(up["name"], "Quarterly report 报告.pdf");
    assert_eq!(up["size"], bytes.len());
    let id = up["id"].as_str().expect("id").to_owned();
    assert_eq!(up["url"], format!("/api/v1/media/{id}"));

    let (mut wa, mut wb) = (connect(&server, &ann).await, connect(&server, &bea).await);
    // The sender's claims about the file are replaced by what was stored.
    let content = send_and_receive(
        &mut wa,
        &mut wb,
        "f-1",
        to_user(&bea),
        json!({"kind": "file", "media": id, "name": "invoice.exe", "size": 1, "mime": "text/html"}),
    )
    .await;
    assert_eq!(
        content,
        json!({"kind": "file", "media": id, "name": "Quarterly report 报告.pdf",
               "size": bytes.len(), "mime": "application/pdf"})
    );

    let url = format!("/api/v1/media/{id}");
    let got = get(&server, Some(&bea), &url, &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.bytes == bytes, "the friend gets the same bytes");
    assert_eq!(got.header("content-type"), "application/octet-stream");
    assert!(got.header("content-disposition").starts_with("attachment;"));
    assert!(
        got.header("content-disposition")
            .contains("filename*=UTF-8''Quarterly%20report%20%E6%8A%A5%E5%91%8A.pdf")
    );
    assert_eq!(got.header("x-content-type-options"), "nosniff");
    assert_eq!(
        got.header("cache-control"),
        "private, max-age=31536000, immutable"
    );
    assert!(got.header("content-security-policy").contains("sandbox"));
    assert_eq!(got.header("accept-ranges"), "bytes");
    // The uploader too; a stranger, nobody signed in, a made-up id: nothing to see.
    assert_eq!(
        get(&server, Some(&ann), &url, &[]).await.status,
        StatusCode::OK
    );
    let stranger = get(&server, Some(&cid), &url, &[]).await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);
    assert_eq!(stranger.json()["code"], "not_found");
    assert_eq!(
        get(&server, None, &url, &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let other = uuid::Uuid::new_v4();
    assert_eq!(
        get(&server, Some(&bea), &format!("/api/v1/media/{other}"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&server, Some(&bea), "/api/v1/media/not-a-uuid", &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // A file has no thumbnail.
    assert_eq!(
        get(&server, Some(&bea), &format!("{url}/thumb"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // The message comes back the same way in sync.
    wb.send(json!({"type": "sync", "after": 0})).await;
    let synced = wb.next_of("synced").await;
    assert_eq!(synced["messages"][0]["content"]["media"], id.as_str());
    // A session that has ended downloads nothing, even with the address in hand.
    let r = session(&server, &bea)
        .post("/api/v1/user/logout", json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        get(&server, Some(&bea), &url, &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn pictures_are_typed_by_content_cleaned_and_upright(server: TestServer) {
    let (ann, bea) = (user(&server, "ann").await, user(&server, "bea").await);
    befriend(&server, &ann, &bea).await;
    // A photo with its GPS position, named like a program.
    let photo = jpeg_with_exif(1200, 600, 1);
    assert!(photo.windows(9).any(|w| w == b"GPSSECRET"));
    let up = uploaded(&server, &ann, "holiday.exe", photo.clone()).await;
    assert_eq!(up["kind"], "image", "{up}");
    assert_eq!(up["mime"], "image/jpeg");
    assert_eq!(
        (up["width"].as_u64(), up["height"].as_u64()),
        (Some(1200), Some(600))
    );
    let id = up["id"].as_str().expect("id").to_owned();
    assert_eq!(up["thumb"], format!("/api/v1/media/{id}/thumb"));

    let (mut wa, mut wb) = (connect(&server, &ann).await, connect(&server, &bea).await);
    let content = send_and_receive(
        &mut wa,
        &mut wb,
        "p-1",
        to_user(&bea),
        json!({"kind": "image", "media": id, "width": 5, "height": 5000}),
    )
    .await;
    assert_eq!(content["kind"], "image");
    assert_eq!(
        (content["width"].as_u64(), content["height"].as_u64()),
        (Some(1200), Some(600))
    );
    assert_eq!(content["thumb"], format!("/api/v1/media/{id}/thumb"));

    let full = get(&server, Some(&bea), &format!("/api/v1/media/{id}"), &[]).await;
    assert_eq!(full.status, StatusCode::OK);
    assert_eq!(full.header("content-type"), "image/jpeg");
    assert_eq!(full.header("content-disposition"), "inline");
    assert!(
        !full.bytes.windows(9).any(|w| w == b"GPSSECRET"),
        "no GPS position"
    );
    assert!(
        !full.bytes.windows(4).any(|w| w == b"Exif"),
        "no EXIF at all"
    );
    let decoded = image::load_from_memory(&full.bytes).expect("still a picture");
    assert_eq!((decoded.width(), decoded.height()), (1200, 600));
    let thumb = get(
        &server,
        Some(&bea),
        &format!("/api/v1/media/{id}/thumb"),
        &[],
    )
    .await;
    assert_eq!(thumb.status, StatusCode::OK);
    let small = image::load_from_memory(&thumb.bytes).expect("thumbnail decodes");
    assert_eq!((small.width(), small.height()), (320, 160));

    // Taken with the camera turned: stored upright, the sides swapped.
    let turned = uploaded(&server, &ann, "turned.jpg", jpeg_with_exif(600, 400, 6)).await;
    assert_eq!(
        (turned["width"].as_u64(), turned["height"].as_u64()),
        (Some(400), Some(600))
    );

    // A web page named like a picture is a file, served only as a download.
    let page = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>".to_vec();
    let up = uploaded(&server, &ann, "cat.png", page).await;
    assert_eq!(up["kind"], "file");
    assert_eq!(up["mime"], "text/html");
    assert!(up.get("thumb").is_none());
    let html = get(&server, Some(&ann), up["url"].as_str().expect("url"), &[]).await;
    assert_eq!(html.header("content-type"), "application/octet-stream");
    assert!(
        html.header("content-disposition")
            .starts_with("attachment;")
    );
    // And it cannot be sent as an image.
    wa.send(send_media(
        "p-2",
        to_user(&bea),
        json!({"kind": "image", "media": up["id"]}),
    ))
    .await;
    let refused = wa.next_of("error").await;
    assert_eq!(refused["code"], "invalid_field", "{refused}");
    assert_eq!(refused["client_id"], "p-2");
}

async fn broken_and_huge_pictures_are_refused(server: TestServer) {
    let ann = user(&server, "ann").await;
    // A real PNG header claiming 20,000 × 20,000 pixels: refused without decoding.
    let bomb = png_claiming(20_000, 20_000);
    let (status, body) = upload(&server, &ann, "bomb.png", bomb).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "bad_image");
    // Half a picture.
    let photo = jpeg_with_exif(300, 300, 1);
    let mut png = std::io::Cursor::new(Vec::new());
    image::load_from_memory(&photo)
        .expect("decode")
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("encode");
    let png = png.into_inner();
    let (status, body) = upload(&server, &ann, "half.png", png[..png.len() / 2].to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "bad_image");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    // Nothing was kept of either.
    assert_eq!(rows_of(&server, &ann).await, 0);
    assert!(files_under(&server.config.data_dir.join("media")).is_empty());
    assert!(files_under(&server.config.data_dir.join("tmp")).is_empty());
    // Empty is not a file.
    let (status, body) = upload(&server, &ann, "empty.txt", Vec::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "invalid_field");
}

async fn ranges_validators_and_one_copy(server: TestServer) {
    let ann = user(&server, "ann").await;
    let bytes = pdf(100_000);
    let first = uploaded(&server, &ann, "a.pdf", bytes.clone()).await;
    let second = uploaded(&server, &ann, "b.pdf", bytes.clone()).await;
    assert_ne!(first["id"], second["id"], "two uploads, two ids");
    let stored = files_under(&server.config.data_dir.join("media"));
    assert_eq!(
        stored.len(),
        1,
        "the same bytes are stored once: {stored:?}"
    );
    let url = first["url"].as_str().expect("url").to_owned();

    let part = get(&server, Some(&ann), &url, &[("range", "bytes=10-19")]).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes, bytes[10..20]);
    assert_eq!(
        part.header("content-range"),
        format!("bytes 10-19/{}", bytes.len())
    );
    assert_eq!(part.header("content-length"), "10");
    let tail = get(&server, Some(&ann), &url, &[("range", "bytes=-5")]).await;
    assert_eq!(tail.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(tail.bytes, bytes[bytes.len() - 5..]);
    let resume = get(&server, Some(&ann), &url, &[("range", "bytes=99000-")]).await;
    assert_eq!(resume.bytes, bytes[99_000..]);
    let beyond = get(&server, Some(&ann), &url, &[("range", "bytes=999999-")]).await;
    assert_eq!(beyond.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        beyond.header("content-range"),
        format!("bytes */{}", bytes.len())
    );

    let whole = get(&server, Some(&ann), &url, &[]).await;
    let etag = whole.header("etag").to_owned();
    assert!(etag.starts_with('"') && etag.len() == 66, "{etag}");
    let again = get(&server, Some(&ann), &url, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.bytes.is_empty());
    // A range against another version: the whole file.
    let stale = get(
        &server,
        Some(&ann),
        &url,
        &[("range", "bytes=0-9"), ("if-range", "\"something-else\"")],
    )
    .await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.bytes.len(), bytes.len());
}

async fn a_removed_friend_and_a_former_member_lose_access(server: TestServer) {
    let (ann, bea, cid) = (
        user(&server, "ann").await,
        user(&server, "bea").await,
        user(&server, "cid").await,
    );
    befriend(&server, &ann, &bea).await;
    let (mut wa, mut wb) = (connect(&server, &ann).await, connect(&server, &bea).await);
    let direct = uploaded(&server, &ann, "direct.pdf", pdf(1000)).await;
    send_and_receive(
        &mut wa,
        &mut wb,
        "d-1",
        to_user(&bea),
        json!({"kind": "file", "media": direct["id"]}),
    )
    .await;
    let url = direct["url"].as_str().expect("url").to_owned();
    assert_eq!(
        get(&server, Some(&bea), &url, &[]).await.status,
        StatusCode::OK
    );
    let r = session(&server, &ann)
        .post("/api/v1/relation/remove", json!({"username": "bea"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        get(&server, Some(&bea), &url, &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&server, Some(&ann), &url, &[]).await.status,
        StatusCode::OK,
        "the uploader keeps it"
    );

    // A group: ann owns it, cid joins, sees the file, leaves, and no longer does.
    let gid = group(&server, &ann, &[&cid]).await;
    let mut wc = connect(&server, &cid).await;
    let shared = uploaded(&server, &ann, "map.pdf", pdf(2000)).await;
    send_and_receive(
        &mut wa,
        &mut wc,
        "g-1",
        json!({"group": gid}),
        json!({"kind": "file", "media": shared["id"]}),
    )
    .await;
    let url = shared["url"].as_str().expect("url").to_owned();
    assert_eq!(
        get(&server, Some(&cid), &url, &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&server, Some(&bea), &url, &[]).await.status,
        StatusCode::NOT_FOUND
    );
    let r = session(&server, &cid)
        .post("/api/v1/community/leave", json!({"community_id": gid}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        get(&server, Some(&cid), &url, &[]).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn only_the_uploader_may_send_it(server: TestServer) {
    let (ann, bea) = (user(&server, "ann").await, user(&server, "bea").await);
    befriend(&server, &ann, &bea).await;
    let mine = uploaded(&server, &ann, "mine.pdf", pdf(500)).await;
    let mut wb = connect(&server, &bea).await;
    // Bea learnt the id somehow: she can neither send it nor, therefore, see it.
    wb.send(send_media(
        "x-1",
        to_user(&ann),
        json!({"kind": "file", "media": mine["id"]}),
    ))
    .await;
    let err = wb.next_of("error").await;
    assert_eq!(err["code"], "not_found", "{err}");
    assert_eq!(err["client_id"], "x-1");
    assert_eq!(
        get(&server, Some(&bea), mine["url"].as_str().expect("url"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Made-up and malformed ids, and call records, are refused the same way.
    wb.send(send_media(
        "x-2",
        to_user(&ann),
        json!({"kind": "file", "media": uuid::Uuid::new_v4()}),
    ))
    .await;
    assert_eq!(wb.next_of("error").await["code"], "not_found");
    wb.send(send_media(
        "x-3",
        to_user(&ann),
        json!({"kind": "image", "media": "../../etc/passwd"}),
    ))
    .await;
    assert_eq!(wb.next_of("error").await["code"], "not_found");
    wb.send(send_media(
        "x-4",
        to_user(&ann),
        json!({"kind": "call", "media": "video", "outcome": "completed"}),
    ))
    .await;
    assert_eq!(wb.next_of("error").await["code"], "invalid_field");
}

async fn unsent_uploads_expire_and_sent_ones_stay(server: TestServer) {
    let (ann, bea) = (user(&server, "ann").await, user(&server, "bea").await);
    befriend(&server, &ann, &bea).await;
    let shared_bytes = pdf(3000);
    // The same bytes twice: one upload is sent, the other never is.
    let sent = uploaded(&server, &ann, "sent.pdf", shared_bytes.clone()).await;
    let unsent_same = uploaded(&server, &bea, "same.pdf", shared_bytes).await;
    let unsent_own = uploaded(&server, &bea, "own.pdf", pdf(4000)).await;
    let (mut wa, mut wb) = (connect(&server, &ann).await, connect(&server, &bea).await);
    send_and_receive(
        &mut wa,
        &mut wb,
        "e-1",
        to_user(&bea),
        json!({"kind": "file", "media": sent["id"]}),
    )
    .await;
    let media_dir = server.config.data_dir.join("media");
    assert_eq!(files_under(&media_dir).len(), 2);

    let now = app::ssr::now_ms();
    // An hour later nothing has expired.
    assert_eq!(
        server
            .media
            .expire_unsent(now + 3_600_000)
            .await
            .expect("sweep"),
        0
    );
    assert_eq!(rows_of(&server, &bea).await, 2);
    // A day and an hour later the two unsent uploads are gone; the bytes they shared with
    // the sent one stay, their own are deleted.
    let removed = server
        .media
        .expire_unsent(now + 25 * 3_600_000)
        .await
        .expect("sweep");
    assert_eq!(removed, 1, "only bytes nothing refers to");
    assert_eq!(rows_of(&server, &bea).await, 0);
    assert_eq!(rows_of(&server, &ann).await, 1);
    assert_eq!(files_under(&media_dir).len(), 1);
    for gone in [&unsent_same, &unsent_own] {
        let got = get(&server, Some(&bea), gone["url"].as_str().expect("url"), &[]).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND);
    }
    let kept = get(&server, Some(&bea), sent["url"].as_str().expect("url"), &[]).await;
    assert_eq!(kept.status, StatusCode::OK);
    // An expired upload cannot be sent any more.
    wb.send(send_media(
        "e-2",
        to_user(&ann),
        json!({"kind": "file", "media": unsent_own["id"]}),
    ))
    .await;
    assert_eq!(wb.next_of("error").await["code"], "not_found");
}

async fn uploads_from_other_sites_or_as_forms_are_refused(server: TestServer) {
    let ann = user(&server, "ann").await;
    let post = |content_type: &'static str, origin: Option<&'static str>| {
        let mut req = server
            .client
            .post(format!("{}/api/v1/media?name=x.pdf", server.base))
            .header(CONTENT_TYPE, content_type)
            .header(COOKIE, format!("qc_session={}", ann.cookie))
            .body(pdf(10));
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        req.send()
    };
    let evil = post("application/octet-stream", Some("https://evil.example"))
        .await
        .expect("post");
    assert_eq!(evil.status(), StatusCode::FORBIDDEN);
    let form = post("multipart/form-data; boundary=x", None)
        .await
        .expect("post");
    assert_eq!(form.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let own = post(
        "application/octet-stream",
        Some(&*Box::leak(server.base.clone().into_boxed_str())),
    )
    .await
    .expect("post");
    assert_eq!(own.status(), StatusCode::CREATED);
    // Not signed in.
    let res = server
        .client
        .post(format!("{}/api/v1/media?name=x.pdf", server.base))
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(pdf(10))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(rows_of(&server, &ann).await, 1);
}

async fn oversize_is_refused_before_and_while_streaming(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, |c| c.max_upload_bytes = 64 * 1024).await
    else {
        return;
    };
    let ann = user(&server, "ann").await;
    // Said by Content-Length: refused before the body is read.
    let (status, body) = upload(&server, &ann, "big.pdf", pdf(100 * 1024)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "payload_too_large");
    // The unread body leaves the connection unusable: the answer says so, and the next
    // uploads on the same client go through (a reused dead connection once broke them).
    for round in 0..10 {
        let res = server
            .client
            .post(format!("{}/api/v1/media?name=big.pdf", server.base))
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(COOKIE, format!("qc_session={}", ann.cookie))
            .body(pdf(100 * 1024))
            .send()
            .await
            .expect("refused upload");
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            res.headers()
                .get("connection")
                .and_then(|v| v.to_str().ok()),
            Some("close")
        );
        uploaded(
            &server,
            &ann,
            &format!("fits-{round}.pdf"),
            pdf(1000 + round),
        )
        .await;
    }
    // Streamed without a length: refused once past the limit.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![7u8; 8 * 1024])).collect();
    let res = server
        .client
        .post(format!("{}/api/v1/media?name=stream.bin", server.base))
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(COOKIE, format!("qc_session={}", ann.cookie))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    // The server may close the connection before the client finished sending.
    if let Ok(res) = res {
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rows_of(&server, &ann).await, 10);
    assert_eq!(files_under(&server.config.data_dir.join("media")).len(), 10);
    assert!(
        files_under(&server.config.data_dir.join("tmp")).is_empty(),
        "nothing half-written is left"
    );
    // Just under the limit is fine.
    uploaded(&server, &ann, "fits.pdf", pdf(60 * 1024)).await;
}

async fn quota_and_rate(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, |c| {
        c.media_quota_bytes = 150 * 1024;
        c.media_uploads_per_hour = 3;
    })
    .await
    else {
        return;
    };
    let ann = user(&server, "ann").await;
    uploaded(&server, &ann, "one.pdf", pdf(100 * 1024)).await;
    let (status, body) = upload(&server, &ann, "two.pdf", pdf(100 * 1024)).await;
    assert_eq!(status.as_u16(), 507, "{body}");
    assert_eq!(body["code"], "quota_exceeded");
    // What fits still fits.
    uploaded(&server, &ann, "small.pdf", pdf(10 * 1024)).await;
    // The fourth upload within the hour waits.
    let (status, body) = upload(&server, &ann, "three.pdf", pdf(10)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "rate_limited");
    // Another user has their own allowance.
    let bea = user(&server, "bea").await;
    uploaded(&server, &bea, "b.pdf", pdf(100 * 1024)).await;
}

async fn fifty_parallel_uploads_fit_the_quota_exactly(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, |c| {
        c.media_quota_bytes = 10 * 10_009;
        c.media_uploads_per_hour = 1000;
    })
    .await
    else {
        return;
    };
    let ann = user(&server, "ann").await;
    // Fifty different files of 10,009 bytes at once: ten fit.
    let uploads = (0..50).map(|i| {
        let mut bytes = pdf(10_000);
        bytes[100] = i as u8;
        upload(&server, &ann, "p.pdf", bytes)
    });
    let answers = futures_util::future::join_all(uploads).await;
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let refused = answers
        .iter()
        .filter(|(s, b)| s.as_u16() == 507 && b["code"] == "quota_exceeded")
        .count();
    assert_eq!((created, refused), (10, 40), "{answers:?}");
    assert_eq!(rows_of(&server, &ann).await, 10);
}

async fn an_avatar_is_seen_by_everyone_and_friends_hear_of_it(server: TestServer) {
    let (ann, bea, cid) = (
        user(&server, "ann").await,
        user(&server, "bea").await,
        user(&server, "cid").await,
    );
    befriend(&server, &ann, &bea).await;
    let mut wb = connect(&server, &bea).await;
    let face = uploaded(&server, &ann, "face.jpg", jpeg_with_exif(600, 600, 1)).await;
    // Before it is an avatar, a stranger cannot see it.
    let thumb = face["thumb"].as_str().expect("thumb").to_owned();
    assert_eq!(
        get(&server, Some(&cid), &thumb, &[]).await.status,
        StatusCode::NOT_FOUND
    );
    let r = session(&server, &ann)
        .post("/api/v1/user/avatar", json!({"media": face["id"]}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["avatar"], thumb.as_str());
    // The friend's page hears of it at once.
    let change = wb.next_of("relation").await;
    assert_eq!(change["change"], "profile_changed");
    assert_eq!(change["username"], "ann");
    // Everyone signed in sees it, and every answer that names Ann carries it.
    assert_eq!(
        get(&server, Some(&cid), &thumb, &[]).await.status,
        StatusCode::OK
    );
    let listed = session(&server, &bea)
        .post(
            "/api/v1/relation/list",
            json!({"relation_type": 2, "role_type": 1}),
        )
        .await;
    assert_eq!(listed.body[0]["avatar"], thumb.as_str(), "{}", listed.text);
    let ready = connect(&server, &ann).await;
    drop(ready);
    // Someone else's picture, or a file, cannot be one's avatar.
    let r = session(&server, &bea)
        .post("/api/v1/user/avatar", json!({"media": face["id"]}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let doc = uploaded(&server, &bea, "cv.pdf", pdf(100)).await;
    let r = session(&server, &bea)
        .post("/api/v1/user/avatar", json!({"media": doc["id"]}))
        .await;
    r.assert_invalid_field("media", "a PDF as avatar");
    // Back to initials.
    let r = session(&server, &ann)
        .post("/api/v1/user/avatar", json!({"media": ""}))
        .await;
    assert_eq!(r.body["avatar"], "");
    // Used as an avatar once, it does not expire as an unsent upload.
    server
        .media
        .expire_unsent(app::ssr::now_ms() + 25 * 3_600_000)
        .await
        .expect("sweep");
    assert_eq!(
        get(&server, Some(&ann), &thumb, &[]).await.status,
        StatusCode::OK
    );
}

async fn a_group_gets_a_picture_and_members_hear_of_new_faces(server: TestServer) {
    let (ann, cid, dan) = (
        user(&server, "ann").await,
        user(&server, "cid").await,
        user(&server, "dan").await,
    );
    // Ann owns a group Cid belongs to; they are not friends, Dan is a stranger to both.
    let gid = group(&server, &ann, &[&cid]).await;
    let (mut wa, mut wc) = (connect(&server, &ann).await, connect(&server, &cid).await);

    // The owner gives the group one of their pictures; members hear of it, all may see it.
    let picture = uploaded(&server, &ann, "peak.jpg", jpeg_with_exif(800, 800, 1)).await;
    let thumb = picture["thumb"].as_str().expect("thumb").to_owned();
    let r = session(&server, &ann)
        .post(
            "/api/v1/community/update",
            json!({"community_id": gid, "avatar_media": picture["id"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["avatar"], thumb.as_str());
    let heard = wc.next_of("relation").await;
    assert_eq!(heard["community_id"], gid.as_str(), "{heard}");
    assert_eq!(
        get(&server, Some(&dan), &thumb, &[]).await.status,
        StatusCode::OK
    );
    let listed = session(&server, &cid)
        .post(
            "/api/v1/relation/list",
            json!({"relation_type": 2, "role_type": 2}),
        )
        .await;
    assert_eq!(
        listed.body[0]["community"]["avatar"],
        thumb.as_str(),
        "{}",
        listed.text
    );

    // Only the owner, only with their own pictures, only pictures.
    let mine = uploaded(&server, &cid, "me.jpg", jpeg_with_exif(300, 300, 1)).await;
    let r = session(&server, &cid)
        .post(
            "/api/v1/community/update",
            json!({"community_id": gid, "avatar_media": mine["id"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.body["code"], "not_owner");
    let r = session(&server, &ann)
        .post(
            "/api/v1/community/update",
            json!({"community_id": gid, "avatar_media": mine["id"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let doc = uploaded(&server, &ann, "rules.pdf", pdf(100)).await;
    let r = session(&server, &ann)
        .post(
            "/api/v1/community/update",
            json!({"community_id": gid, "avatar_media": doc["id"]}),
        )
        .await;
    r.assert_invalid_field("media", "a PDF as a group picture");

    // Cid, a member but no friend, changes face: Ann's page hears of it (the group's
    // bubbles show it), and the member list carries it.
    let r = session(&server, &cid)
        .post("/api/v1/user/avatar", json!({"media": mine["id"]}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // (Ann's own change of the group's picture came first.)
    let heard = loop {
        let frame = wa.next_of("relation").await;
        if frame["change"] != "group_changed" {
            break frame;
        }
    };
    assert_eq!(heard["change"], "profile_changed", "{heard}");
    assert_eq!(heard["username"], "cid");
    let members = session(&server, &ann)
        .post("/api/v1/community/members", json!({"community_id": gid}))
        .await;
    let cid_row = members
        .body
        .as_array()
        .and_then(|m| m.iter().find(|u| u["username"] == "cid"))
        .expect("cid listed");
    assert_eq!(cid_row["avatar"], mine["thumb"], "{}", members.text);
    // Back to initials for the group.
    let r = session(&server, &ann)
        .post(
            "/api/v1/community/update",
            json!({"community_id": gid, "avatar_media": ""}),
        )
        .await;
    assert_eq!(r.body["avatar"], "", "{}", r.text);
}
