//! Where media bytes live: a directory under `DATA_DIR` (the default) or any S3-compatible
//! object store, both through the `object_store` crate. Objects are named by the SHA-256 of
//! their content (`ab/cd/abcd…`), so the same bytes are stored once however often they are
//! uploaded.
//!
//! An upload first streams into a file under `DATA_DIR/tmp` (hashing as it goes); only then
//! is its name known. The directory store moves that file into place (a rename on the same
//! disk: nothing is copied); the S3 store streams it up in parts.
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Which store, with what it needs.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// Files under this directory.
    Directory(PathBuf),
    S3 {
        endpoint: String,
        bucket: String,
        region: String,
        access_key_id: String,
        secret_access_key: String,
    },
}

/// The media store.
#[derive(Debug, Clone)]
pub struct MediaStore {
    store: Arc<dyn ObjectStore>,
    /// For the directory store: its root, so an upload can be renamed into place.
    root: Option<PathBuf>,
}

/// A stored object's bytes (or part of them), as a stream.
pub struct Fetched {
    pub stream: futures_util::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>,
    /// The byte range returned, within `0..size`.
    pub range: Range<u64>,
    /// The whole object's size.
    pub size: u64,
}

impl MediaStore {
    pub fn open(config: &StoreConfig) -> Result<Self, String> {
        match config {
            StoreConfig::Directory(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                let fs = LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| format!("cannot use {}: {e}", dir.display()))?;
                Ok(Self {
                    store: Arc::new(fs),
                    root: Some(dir.canonicalize().unwrap_or_else(|_| dir.clone())),
                })
            }
            StoreConfig::S3 {
                endpoint,
                bucket,
                region,
                access_key_id,
                secret_access_key,
            } => {
                // TLS for the S3 client: rustls on ring (see server/Cargo.toml). Another
                // provider installed first (a second store in tests) is fine.
                let _ = rustls::crypto::ring::default_provider().install_default();
                // A store that is down must answer a user (and `/healthz`) within seconds,
                // not after object_store's default three minutes of retries.
                let retry = object_store::RetryConfig {
                    backoff: object_store::BackoffConfig::default(),
                    max_retries: 3,
                    retry_timeout: std::time::Duration::from_secs(10),
                };
                let client = object_store::ClientOptions::new()
                    .with_connect_timeout(std::time::Duration::from_secs(3));
                let mut builder = AmazonS3Builder::new()
                    .with_retry(retry)
                    .with_client_options(client)
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_access_key_id(access_key_id)
                    .with_secret_access_key(secret_access_key);
                if !endpoint.is_empty() {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"))
                        // Self-hosted S3 servers (MinIO, Garage, moto) serve buckets as a
                        // path, not as a host name.
                        .with_virtual_hosted_style_request(false);
                }
                let store = builder.build().map_err(|e| format!("S3 store: {e}"))?;
                Ok(Self {
                    store: Arc::new(store),
                    root: None,
                })
            }
        }
    }

    fn path(hash: &str) -> ObjectPath {
        let a = hash.get(..2).unwrap_or("00");
        let b = hash.get(2..4).unwrap_or("00");
        ObjectPath::from(format!("{a}/{b}/{hash}"))
    }

    /// Whether bytes are stored under `hash`.
    pub async fn exists(&self, hash: &str) -> Result<bool, object_store::Error> {
        match self.store.head(&Self::path(hash)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Stores the file at `file` (which this call consumes) under `hash`. Already stored:
    /// nothing to do.
    pub async fn put_file(&self, hash: &str, file: &Path) -> Result<(), String> {
        let result = self.put_file_inner(hash, file).await;
        let _ = tokio::fs::remove_file(file).await;
        result
    }

    async fn put_file_inner(&self, hash: &str, file: &Path) -> Result<(), String> {
        if self.exists(hash).await.map_err(|e| e.to_string())? {
            return Ok(());
        }
        let path = Self::path(hash);
        if let Some(root) = &self.root {
            let target = root.join(path.as_ref());
            if let Some(dir) = target.parent() {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| format!("create {}: {e}", dir.display()))?;
            }
            // Same disk (both under DATA_DIR): a rename, atomic, nothing copied.
            return match tokio::fs::rename(file, &target).await {
                Ok(()) => Ok(()),
                Err(_) => tokio::fs::copy(file, &target)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("copy into {}: {e}", target.display())),
            };
        }
        let mut source = tokio::fs::File::open(file)
            .await
            .map_err(|e| format!("open {}: {e}", file.display()))?;
        // Parts of 8 MiB (S3 wants at least 5 MiB but the last), two in flight.
        let mut writer = BufWriter::with_capacity(self.store.clone(), path, 8 * 1024 * 1024)
            .with_max_concurrency(2);
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            let n = source
                .read(&mut chunk)
                .await
                .map_err(|e| format!("read {}: {e}", file.display()))?;
            if n == 0 {
                break;
            }
            if let Err(err) = writer.write_all(&chunk[..n]).await {
                let _ = writer.abort().await;
                return Err(format!("upload: {err}"));
            }
        }
        writer.shutdown().await.map_err(|e| format!("upload: {e}"))
    }

    /// Stores `bytes` under `hash` (small things: thumbnails, re-encoded pictures).
    pub async fn put_bytes(&self, hash: &str, bytes: Vec<u8>) -> Result<(), String> {
        if self.exists(hash).await.map_err(|e| e.to_string())? {
            return Ok(());
        }
        self.store
            .put(&Self::path(hash), bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The bytes under `hash`, or the part `range` of them (clamped to the object).
    /// `Ok(None)`: nothing stored there.
    pub async fn get(
        &self,
        hash: &str,
        range: Option<Range<u64>>,
    ) -> Result<Option<Fetched>, object_store::Error> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        match self.store.get_opts(&Self::path(hash), options).await {
            Ok(result) => {
                let size = result.meta.size;
                let range = result.range.clone();
                Ok(Some(Fetched {
                    stream: result.into_stream().boxed(),
                    range,
                    size,
                }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The size of what is stored under `hash`.
    pub async fn size(&self, hash: &str) -> Result<Option<u64>, object_store::Error> {
        match self.store.head(&Self::path(hash)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Removes what is stored under `hash` (nothing there is fine).
    pub async fn delete(&self, hash: &str) -> Result<(), object_store::Error> {
        match self.store.delete(&Self::path(hash)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An https S3 endpoint gets a working TLS client (a missing crypto provider would
    /// panic here): a closed port answers an error, quickly.
    #[tokio::test]
    async fn an_https_store_that_cannot_be_reached_says_so() {
        let store = MediaStore::open(&StoreConfig::S3 {
            endpoint: "https://127.0.0.1:9".into(),
            bucket: "b".into(),
            region: "us-east-1".into(),
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
        })
        .expect("open");
        let started = std::time::Instant::now();
        assert!(store.exists("healthz").await.is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
    }
}
