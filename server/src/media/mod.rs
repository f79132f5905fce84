//! Images and files: `POST /api/v1/media` (upload), `GET /api/v1/media/{id}` and
//! `GET /api/v1/media/{id}/thumb` (download). docs/API.md describes both with every error.
//!
//! An upload streams to a file under `DATA_DIR/tmp` while it is hashed and counted (never
//! held in memory whole), is typed by its bytes, and — for a picture — decoded within
//! limits, turned upright, stripped of metadata and given a thumbnail on a blocking thread.
//! Its row is written before its bytes reach the store, so the clean-up (which deletes
//! bytes only when no row refers to them) can never take bytes from under a new upload.
pub mod picture;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use app::error::{ApiError, ErrorCode};
use app::ssr::AppCore;
use app::ssr::auth::CurrentUser;
use app::ssr::entity::media as media_row;
use app::ssr::media as db;
use app::ssr::rate::Buckets;
use axum::body::Body;
use axum::extract::{Extension, Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

pub use store::{MediaStore, StoreConfig};

/// The media settings (from the server configuration).
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// Largest upload, in bytes.
    pub max_upload_bytes: u64,
    /// Bytes of uploads one user may keep.
    pub quota_bytes: u64,
    /// Uploads per user per hour (and at once).
    pub uploads_per_hour: u32,
    /// Uploads never sent are deleted after this long.
    pub unsent_ttl: Duration,
    /// `DATA_DIR`: uploads stream into `tmp/` below it.
    pub data_dir: PathBuf,
    pub store: StoreConfig,
    /// Origins besides the server's own that may upload.
    pub allowed_origins: Vec<String>,
}

impl Default for MediaSettings {
    fn default() -> Self {
        Self {
            max_upload_bytes: 100 * 1024 * 1024,
            quota_bytes: 1024 * 1024 * 1024,
            uploads_per_hour: 300,
            unsent_ttl: Duration::from_secs(24 * 3600),
            data_dir: PathBuf::from("data"),
            store: StoreConfig::Directory(PathBuf::from("data/media")),
            allowed_origins: Vec::new(),
        }
    }
}

/// Pictures decoded at once (each may take up to `picture::MAX_DECODE_BYTES`).
const DECODERS: usize = 2;
/// Largest file treated as a picture; larger ones are stored as plain files.
const MAX_PICTURE_BYTES: u64 = 40 * 1024 * 1024;
/// Expired uploads looked at per sweep.
const SWEEP_BATCH: u64 = 500;

pub struct Media {
    pub core: Arc<AppCore>,
    pub store: MediaStore,
    pub settings: MediaSettings,
    uploads: Buckets<Uuid>,
    decoders: tokio::sync::Semaphore,
    /// Held while an upload's size is checked against its owner's quota and its row
    /// written, so that parallel uploads cannot each fit the same free space.
    quota_check: tokio::sync::Mutex<()>,
    tmp: PathBuf,
}

impl Media {
    /// Opens the store, empties the upload scratch directory (what is there was never
    /// stored) and starts the hourly sweep of unsent uploads.
    pub fn start(core: Arc<AppCore>, settings: MediaSettings) -> Result<Arc<Self>, String> {
        let store = MediaStore::open(&settings.store)?;
        let tmp = settings.data_dir.join("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)
            .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        let per_hour = f64::from(settings.uploads_per_hour.max(1));
        let media = Arc::new(Self {
            core,
            store,
            uploads: Buckets::new(per_hour / 3600.0, per_hour),
            decoders: tokio::sync::Semaphore::new(DECODERS),
            quota_check: tokio::sync::Mutex::new(()),
            tmp,
            settings,
        });
        tokio::spawn(sweep(Arc::downgrade(&media)));
        Ok(media)
    }

    /// Deletes uploads older than the allowance that were never sent, and the bytes no
    /// upload refers to any more. `now` is Unix milliseconds (a test moves it).
    pub async fn expire_unsent(&self, now: i64) -> Result<usize, ApiError> {
        let ttl = i64::try_from(self.settings.unsent_ttl.as_millis()).unwrap_or(i64::MAX);
        let mut removed = 0;
        loop {
            let hashes =
                db::expire_unused(&self.core.db, now.saturating_sub(ttl), SWEEP_BATCH).await?;
            if hashes.is_empty() {
                return Ok(removed);
            }
            for hash in hashes {
                match self.store.delete(&hash).await {
                    Ok(()) => removed += 1,
                    Err(err) => tracing::warn!(%err, hash, "cannot delete expired media"),
                }
            }
        }
    }
}

/// Once an hour (first a minute after start), until the server stops.
async fn sweep(media: std::sync::Weak<Media>) {
    tokio::time::sleep(Duration::from_secs(60)).await;
    loop {
        let Some(m) = media.upgrade() else { return };
        match m.expire_unsent(app::ssr::now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "deleted unsent uploads"),
            Err(err) => tracing::warn!(?err, "media sweep failed"),
        }
        drop(m);
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

#[derive(serde::Deserialize)]
pub struct UploadQuery {
    #[serde(default)]
    name: String,
}

/// A file name as given, made safe to show and to offer as a download name: no path, no
/// control characters, at most 255 characters; "file" when nothing is left.
pub fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .trim_start_matches('.')
        .chars()
        .take(255)
        .collect();
    if cleaned.is_empty() {
        "file".into()
    } else {
        cleaned
    }
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("A file may be at most {} MB.", max / (1024 * 1024)),
    )
}

/// A scratch file removed when dropped (unless it was handed to the store).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `POST /api/v1/media?name=<file name>`: the body is the file (`application/octet-stream`).
pub async fn upload(
    Extension(media): Extension<Arc<Media>>,
    user: CurrentUser,
    headers: HeaderMap,
    Query(query): Query<UploadQuery>,
    body: Body,
) -> Response {
    match upload_inner(&media, &user, &headers, &query.name, body).await {
        Ok(view) => (StatusCode::CREATED, axum::Json(view)).into_response(),
        Err(err) => {
            // A refusal may come before the body was read: the connection cannot carry
            // another request, and the client must not reuse it (it would fail there).
            let mut response = err.into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

async fn upload_inner(
    media: &Media,
    user: &CurrentUser,
    headers: &HeaderMap,
    name: &str,
    body: Body,
) -> Result<app::model::MediaView, ApiError> {
    if let Some(refusal) = crate::edge::cross_site_refusal(headers, &media.settings.allowed_origins)
    {
        return Err(refusal);
    }
    if crate::edge::media_type(headers).as_deref() != Some("application/octet-stream") {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Send the file's bytes as application/octet-stream.",
        ));
    }
    let max = media.settings.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let me = user.id();
    if let Err(wait) = media.uploads.take(&me) {
        return Err(ApiError {
            retry_after: Some(wait.as_secs().max(1)),
            ..ApiError::new(
                ErrorCode::RateLimited,
                "You are uploading too often. Wait a moment.",
            )
        });
    }
    let quota = media.settings.quota_bytes;
    let used = db::used_bytes(&media.core.db, me).await?;
    if used.saturating_add(declared.unwrap_or(0)) > quota {
        return Err(db::quota_exceeded(quota));
    }

    // Stream the body to a scratch file, hashing and counting. (Handing the hashing and
    // writing to a thread of their own was measured: no faster on two cores, where curl,
    // SHA-256 and the page-cache copy already share the CPU, and more memory in flight.)
    let scratch = Scratch(media.tmp.join(format!("up-{}", Uuid::new_v4().simple())));
    let mut file = tokio::fs::File::create(&scratch.0)
        .await
        .map_err(ApiError::internal)?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut head: Vec<u8> = Vec::with_capacity(8192);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| {
            tracing::info!(%err, "upload interrupted");
            ApiError::new(ErrorCode::BadRequest, "The upload was interrupted.")
        })?;
        size += chunk.len() as u64;
        if size > max {
            return Err(too_large(max));
        }
        if head.len() < 8192 {
            let take = (8192 - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    file.flush().await.map_err(ApiError::internal)?;
    drop(file);
    if size == 0 {
        return Err(ApiError::invalid("body", "An empty file cannot be sent."));
    }
    if used.saturating_add(size) > quota {
        return Err(db::quota_exceeded(quota));
    }
    let mime = picture::sniff(&head);
    let mut row = media_row::Model {
        id: Uuid::now_v7(),
        owner_id: me,
        sha256: format!("{:x}", hasher.finalize()),
        size: i64::try_from(size).unwrap_or(i64::MAX),
        mime: mime.to_owned(),
        name: clean_name(name),
        width: 0,
        height: 0,
        thumb_sha256: String::new(),
        thumb_size: 0,
        thumb_mime: String::new(),
        created_at: app::ssr::now_ms(),
    };

    let mut rewritten: Option<Vec<u8>> = None;
    let mut thumb: Option<Vec<u8>> = None;
    if picture::is_picture(mime) && size <= MAX_PICTURE_BYTES {
        let bytes = tokio::fs::read(&scratch.0)
            .await
            .map_err(ApiError::internal)?;
        let permit = media.decoders.acquire().await.map_err(ApiError::internal)?;
        let mime_owned = mime.to_owned();
        let processed = tokio::task::spawn_blocking(move || picture::process(bytes, &mime_owned))
            .await
            .map_err(ApiError::internal)?;
        drop(permit);
        let p = processed.map_err(|err| {
            tracing::info!(%err, "refused a picture");
            ApiError::new(
                ErrorCode::BadImage,
                match err {
                    picture::PictureError::TooLarge => {
                        "This picture is too large to show (at most 16,384 pixels a side and about 40 megapixels)."
                    }
                    picture::PictureError::Unreadable(_) => {
                        "This picture is damaged or incomplete and cannot be shown."
                    }
                },
            )
        })?;
        row.width = i32::try_from(p.width).unwrap_or(0);
        row.height = i32::try_from(p.height).unwrap_or(0);
        row.sha256 = format!("{:x}", Sha256::digest(&p.bytes));
        row.size = i64::try_from(p.bytes.len()).unwrap_or(i64::MAX);
        let own_thumb = match p.thumb {
            Some((t, t_mime)) => {
                row.thumb_sha256 = format!("{:x}", Sha256::digest(&t));
                row.thumb_size = i64::try_from(t.len()).unwrap_or(0);
                row.thumb_mime = t_mime.to_owned();
                Some(t)
            }
            None => {
                row.thumb_sha256 = row.sha256.clone();
                row.thumb_mime = mime.to_owned();
                None
            }
        };
        rewritten = Some(p.bytes);
        thumb = own_thumb;
    }

    // The row first, then the bytes (see the module comment); a failure removes the row.
    {
        let _quota = media.quota_check.lock().await;
        let used = db::used_bytes(&media.core.db, me).await?;
        let total = u64::try_from(row.size + row.thumb_size).unwrap_or(u64::MAX);
        if used.saturating_add(total) > quota {
            return Err(db::quota_exceeded(quota));
        }
        db::insert(&media.core.db, row.clone()).await?;
    }
    let stored = async {
        match rewritten {
            Some(bytes) => media.store.put_bytes(&row.sha256, bytes).await?,
            None => media.store.put_file(&row.sha256, &scratch.0).await?,
        }
        if let Some(t) = thumb {
            media.store.put_bytes(&row.thumb_sha256, t).await?;
        }
        Ok::<(), String>(())
    }
    .await;
    if let Err(err) = stored {
        tracing::error!(%err, "cannot store an upload");
        let _ = db::delete(&media.core.db, row.id).await;
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "The file could not be stored. Please try again.",
        ));
    }
    tracing::info!(id = %row.id, size = row.size, mime = %row.mime, "stored an upload");
    Ok(db::view(&row))
}

/// `GET /api/v1/media/{id}`.
pub async fn download(
    Extension(media): Extension<Arc<Media>>,
    user: CurrentUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    serve(&media, &user, &id, false, &headers)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/v1/media/{id}/thumb`.
pub async fn thumbnail(
    Extension(media): Extension<Arc<Media>>,
    user: CurrentUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    serve(&media, &user, &id, true, &headers)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// What a `Range` header asks of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranged {
    /// No header, or one this server does not split (several ranges, another unit).
    Whole,
    /// These bytes, within the object.
    Part(std::ops::Range<u64>),
    /// No byte of it exists (416).
    Unsatisfiable,
}

/// Reads a `Range: bytes=…` header against an object of `size` bytes.
pub fn parse_range(value: Option<&str>, size: u64) -> Ranged {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Ranged::Whole;
    };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Ranged::Whole;
    };
    let (start, end) = (start.trim(), end.trim());
    match (start.parse::<u64>(), end.parse::<u64>()) {
        // The last `n` bytes.
        _ if start.is_empty() && end.is_empty() => Ranged::Whole,
        (Err(_), Ok(n)) if start.is_empty() => {
            if n == 0 || size == 0 {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(size.saturating_sub(n)..size)
            }
        }
        (Ok(s), _) if end.is_empty() => {
            if s >= size {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(s..size)
            }
        }
        (Ok(s), Ok(e)) if s < size && e >= s => Ranged::Part(s..e.min(size - 1) + 1),
        _ => Ranged::Unsatisfiable,
    }
}

async fn serve(
    media: &Media,
    user: &CurrentUser,
    id: &str,
    thumb: bool,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let Some(row) = db::find(&media.core.db, id).await? else {
        return Err(db::not_found());
    };
    if !db::may_see(&media.core, user.id(), &row).await? {
        return Err(db::not_found());
    }
    let (hash, mime) = if thumb {
        if row.thumb_sha256.is_empty() {
            return Err(db::not_found());
        }
        (&row.thumb_sha256, &row.thumb_mime)
    } else {
        (&row.sha256, &row.mime)
    };
    let picture = db::is_image_mime(mime) && !row.thumb_sha256.is_empty();
    let etag = format!("\"{hash}\"");
    let mut h = HeaderMap::new();
    let value = |s: &str| HeaderValue::from_str(s).map_err(ApiError::internal);
    h.insert(header::ETAG, value(&etag)?);
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if picture {
        h.insert(header::CONTENT_TYPE, value(mime)?);
        h.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("inline"),
        );
    } else {
        // Never shown by the browser, whatever it is: saved as a file.
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        h.insert(header::CONTENT_DISPOSITION, value(&attachment(&row.name))?);
    }
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return Ok((StatusCode::NOT_MODIFIED, h).into_response());
    }
    let size = match media.store.size(hash).await {
        Ok(Some(size)) => size,
        Ok(None) => {
            tracing::error!(%hash, id = %row.id, "media row without stored bytes");
            return Err(db::not_found());
        }
        Err(err) => return Err(store_unavailable(err)),
    };
    // `If-Range` with another validator: the whole file.
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == etag);
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let range = if if_range_ok {
        match parse_range(range_header, size) {
            Ranged::Whole => None,
            Ranged::Part(range) => Some(range),
            Ranged::Unsatisfiable => {
                h.insert(header::CONTENT_RANGE, value(&format!("bytes */{size}"))?);
                let mut res = ApiError::new(
                    ErrorCode::BadRequest,
                    "The requested range is outside the file.",
                )
                .into_response();
                *res.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
                res.headers_mut().extend(h);
                return Ok(res);
            }
        }
    } else {
        None
    };
    let partial = range.is_some();
    let fetched = match media.store.get(hash, range).await {
        Ok(Some(f)) => f,
        Ok(None) => return Err(db::not_found()),
        Err(err) => return Err(store_unavailable(err)),
    };
    h.insert(
        header::CONTENT_LENGTH,
        value(&(fetched.range.end - fetched.range.start).to_string())?,
    );
    let status = if partial {
        h.insert(
            header::CONTENT_RANGE,
            value(&format!(
                "bytes {}-{}/{}",
                fetched.range.start,
                fetched.range.end.saturating_sub(1),
                fetched.size
            ))?,
        );
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let body = Body::from_stream(fetched.stream);
    Ok((status, h, body).into_response())
}

fn store_unavailable(err: object_store::Error) -> ApiError {
    tracing::error!(%err, "media store failed");
    ApiError::new(
        ErrorCode::Unavailable,
        "The file store is not answering. Please try again.",
    )
}

/// `attachment` with the file's name: ASCII fallback and the exact name (RFC 6266/5987).
fn attachment(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use Ranged::*;
        assert_eq!(parse_range(None, 10), Whole);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), Part(0..4));
        assert_eq!(parse_range(Some("bytes=4-"), 10), Part(4..10));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Part(7..10));
        assert_eq!(parse_range(Some("bytes=-30"), 10), Part(0..10));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), Part(5..10));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), Whole);
        assert_eq!(parse_range(Some("bytes=x-1"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-"), 10), Whole);
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\Users\\me\\photo.jpg"), "photo.jpg");
        assert_eq!(clean_name("a\u{0}b\nc.txt"), "abc.txt");
        assert_eq!(clean_name("  "), "file");
        assert_eq!(clean_name(".htaccess"), "htaccess");
        assert_eq!(clean_name(&"é".repeat(300)).chars().count(), 255);
    }

    #[test]
    fn download_names_survive_any_characters() {
        assert_eq!(
            attachment("报告 \"final\".pdf"),
            "attachment; filename=\"__ _final_.pdf\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A%20%22final%22.pdf"
        );
    }

    #[test]
    fn any_range_header_answers_within_the_object() {
        // Headers made of the characters a Range header has, in every order and length.
        const ALPHABET: &[u8] = b"bytes=0123456789-, ";
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 24) as usize;
            let header: String = (0..len)
                .map(|i| ALPHABET[((x >> (i % 8 * 8)) as usize + i) % ALPHABET.len()] as char)
                .collect();
            let header = format!("bytes={header}");
            for size in [0, 1, 10, u64::MAX] {
                if let Ranged::Part(r) = parse_range(Some(&header), size) {
                    assert!(
                        r.start < r.end && r.end <= size,
                        "{header:?} of {size}: {r:?}"
                    );
                }
            }
        }
    }
}
