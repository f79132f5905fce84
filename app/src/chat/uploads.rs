//! Files on their way up, as a plain state machine: what the user added, how far each got,
//! which failed (kept, to retry) and what was cancelled. It answers effects the browser
//! driver carries out (start or abort a request, forget a file, send the message), so the
//! rules are tested natively. A finished upload becomes an ordinary message through the
//! chat's outbox (sent now, or when the connection returns).
use crate::error::ErrorCode;
use crate::model::{MediaKind, MediaView};
use crate::protocol::{Content, Peer};

/// One file being uploaded (or failed).
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub key: u64,
    pub to: Peer,
    pub name: String,
    pub size: u64,
    /// Bytes the server has taken so far.
    pub sent: u64,
    /// Why the last attempt failed (then it waits for retry or removal, or, when the
    /// network failed, for the connection to return).
    pub failed: Option<ErrorCode>,
}

impl Upload {
    /// It failed for want of a network and goes on by itself when the connection returns.
    pub fn waits_for_connection(&self) -> bool {
        self.failed == Some(ErrorCode::Network)
    }

    /// 0.0 to 1.0.
    pub fn progress(&self) -> f64 {
        if self.size == 0 {
            0.0
        } else {
            (self.sent as f64 / self.size as f64).min(1.0)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum UploadInput {
    /// The user picked, dropped or pasted a file for `to`.
    Add {
        key: u64,
        to: Peer,
        name: String,
        size: u64,
    },
    Progress {
        key: u64,
        sent: u64,
    },
    /// The server stored it.
    Done {
        key: u64,
        media: MediaView,
    },
    Failed {
        key: u64,
        code: ErrorCode,
    },
    /// The user gives up on it (uploading or failed).
    Cancel(u64),
    /// The user tries a failed one again.
    Retry(u64),
    /// The connection to the server is back: what the network interrupted starts again.
    Online,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UploadEffect {
    /// Send the file kept under this key.
    Start(u64),
    /// Stop its request.
    Abort(u64),
    /// Its file is no longer needed.
    Forget(u64),
    /// Send this message (the upload is done).
    Send { to: Peer, content: Content },
}

/// The message content for a stored upload: a picture if the server decoded it as one.
pub fn content_for(media: &MediaView) -> Content {
    match (media.kind, &media.thumb) {
        (MediaKind::Image, Some(thumb)) => Content::Image {
            media: media.id.clone(),
            width: media.width,
            height: media.height,
            thumb: thumb.clone(),
            name: media.name.clone(),
            size: media.size,
        },
        _ => Content::File {
            media: media.id.clone(),
            name: media.name.clone(),
            size: media.size,
            mime: media.mime.clone(),
        },
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Uploads {
    items: Vec<Upload>,
}

impl Uploads {
    pub fn items(&self) -> &[Upload] {
        &self.items
    }

    /// The uploads going to `to`, in the order they were added.
    pub fn for_peer<'a>(&'a self, to: &'a Peer) -> impl Iterator<Item = &'a Upload> + 'a {
        self.items.iter().filter(move |u| &u.to == to)
    }

    pub fn apply(&mut self, input: UploadInput) -> Vec<UploadEffect> {
        let mut fx = Vec::new();
        match input {
            UploadInput::Add {
                key,
                to,
                name,
                size,
            } => {
                if self.items.iter().all(|u| u.key != key) {
                    self.items.push(Upload {
                        key,
                        to,
                        name,
                        size,
                        sent: 0,
                        failed: None,
                    });
                    fx.push(UploadEffect::Start(key));
                }
            }
            UploadInput::Progress { key, sent } => {
                if let Some(u) = self.get(key).filter(|u| u.failed.is_none()) {
                    u.sent = sent.max(u.sent);
                }
            }
            UploadInput::Done { key, media } => {
                // Cancelled meanwhile: nothing is sent (the server drops it after a day).
                if let Some(i) = self.items.iter().position(|u| u.key == key) {
                    let u = self.items.remove(i);
                    fx.push(UploadEffect::Forget(key));
                    fx.push(UploadEffect::Send {
                        to: u.to,
                        content: content_for(&media),
                    });
                }
            }
            UploadInput::Failed { key, code } => {
                if let Some(u) = self.get(key) {
                    u.failed = Some(code);
                    u.sent = 0;
                }
            }
            UploadInput::Cancel(key) => {
                if let Some(i) = self.items.iter().position(|u| u.key == key) {
                    let u = self.items.remove(i);
                    if u.failed.is_none() {
                        fx.push(UploadEffect::Abort(key));
                    }
                    fx.push(UploadEffect::Forget(key));
                }
            }
            UploadInput::Retry(key) => {
                if let Some(u) = self.get(key).filter(|u| u.failed.is_some()) {
                    u.failed = None;
                    u.sent = 0;
                    fx.push(UploadEffect::Start(key));
                }
            }
            UploadInput::Online => {
                for u in self.items.iter_mut().filter(|u| u.waits_for_connection()) {
                    u.failed = None;
                    u.sent = 0;
                    fx.push(UploadEffect::Start(u.key));
                }
            }
        }
        fx
    }

    fn get(&mut self, key: u64) -> Option<&mut Upload> {
        self.items.iter_mut().find(|u| u.key == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann() -> Peer {
        Peer::User("ann".into())
    }

    fn add(u: &mut Uploads, key: u64, name: &str) -> Vec<UploadEffect> {
        u.apply(UploadInput::Add {
            key,
            to: ann(),
            name: name.into(),
            size: 1000,
        })
    }

    fn stored(id: &str, kind: MediaKind) -> MediaView {
        MediaView {
            id: id.into(),
            kind,
            mime: if kind == MediaKind::Image {
                "image/png".into()
            } else {
                "application/pdf".into()
            },
            name: "x".into(),
            size: 1000,
            width: if kind == MediaKind::Image { 40 } else { 0 },
            height: if kind == MediaKind::Image { 30 } else { 0 },
            url: format!("/api/v1/media/{id}"),
            thumb: (kind == MediaKind::Image).then(|| format!("/api/v1/media/{id}/thumb")),
        }
    }

    #[test]
    fn an_upload_starts_reports_progress_and_becomes_a_message() {
        let mut u = Uploads::default();
        assert_eq!(add(&mut u, 1, "cat.png"), vec![UploadEffect::Start(1)]);
        u.apply(UploadInput::Progress { key: 1, sent: 250 });
        assert_eq!(u.items()[0].progress(), 0.25);
        // Progress never goes back (events can arrive late).
        u.apply(UploadInput::Progress { key: 1, sent: 100 });
        assert_eq!(u.items()[0].sent, 250);
        let fx = u.apply(UploadInput::Done {
            key: 1,
            media: stored("m1", MediaKind::Image),
        });
        assert!(u.items().is_empty());
        assert_eq!(fx[0], UploadEffect::Forget(1));
        let UploadEffect::Send { to, content } = &fx[1] else {
            panic!("{fx:?}")
        };
        assert_eq!(to, &ann());
        assert_eq!(
            content,
            &Content::Image {
                media: "m1".into(),
                width: 40,
                height: 30,
                thumb: "/api/v1/media/m1/thumb".into(),
                name: "x".into(),
                size: 1000
            }
        );
    }

    #[test]
    fn anything_but_a_decoded_picture_is_sent_as_a_file() {
        let mut u = Uploads::default();
        add(&mut u, 1, "report.pdf");
        let fx = u.apply(UploadInput::Done {
            key: 1,
            media: stored("m2", MediaKind::File),
        });
        assert!(matches!(
            &fx[1],
            UploadEffect::Send { content: Content::File { media, mime, .. }, .. }
                if media == "m2" && mime == "application/pdf"
        ));
    }

    #[test]
    fn a_failure_waits_for_retry_and_keeps_the_file() {
        let mut u = Uploads::default();
        add(&mut u, 1, "a.pdf");
        u.apply(UploadInput::Progress { key: 1, sent: 900 });
        let fx = u.apply(UploadInput::Failed {
            key: 1,
            code: ErrorCode::Network,
        });
        assert!(fx.is_empty(), "the file is kept: {fx:?}");
        assert_eq!(u.items()[0].failed, Some(ErrorCode::Network));
        assert_eq!(u.items()[0].sent, 0);
        // Progress of the dead request changes nothing.
        u.apply(UploadInput::Progress { key: 1, sent: 950 });
        assert_eq!(u.items()[0].sent, 0);
        assert_eq!(u.apply(UploadInput::Retry(1)), vec![UploadEffect::Start(1)]);
        assert_eq!(u.items()[0].failed, None);
        // Retrying one that is not failed does nothing.
        assert!(u.apply(UploadInput::Retry(1)).is_empty());
    }

    #[test]
    fn what_the_network_interrupted_goes_on_when_the_connection_returns() {
        let mut u = Uploads::default();
        add(&mut u, 1, "offline.png");
        add(&mut u, 2, "too-big.zip");
        add(&mut u, 3, "still-going.pdf");
        u.apply(UploadInput::Failed {
            key: 1,
            code: ErrorCode::Network,
        });
        u.apply(UploadInput::Failed {
            key: 2,
            code: ErrorCode::PayloadTooLarge,
        });
        assert!(u.items()[0].waits_for_connection());
        assert!(!u.items()[1].waits_for_connection());
        // Only the one the network stopped starts again; a refusal waits for the user,
        // and one still running is left alone.
        assert_eq!(u.apply(UploadInput::Online), vec![UploadEffect::Start(1)]);
        assert_eq!(u.items()[0].failed, None);
        assert_eq!(u.items()[1].failed, Some(ErrorCode::PayloadTooLarge));
        // Once it runs, another "online" does not start it twice.
        assert!(u.apply(UploadInput::Online).is_empty());
        // When it is stored, it is sent like any other upload (through the outbox).
        let fx = u.apply(UploadInput::Done {
            key: 1,
            media: stored("m9", MediaKind::Image),
        });
        assert!(matches!(&fx[1], UploadEffect::Send { .. }));
    }

    #[test]
    fn cancelling_aborts_and_a_late_answer_sends_nothing() {
        let mut u = Uploads::default();
        add(&mut u, 1, "big.zip");
        add(&mut u, 2, "other.zip");
        assert_eq!(
            u.apply(UploadInput::Cancel(1)),
            vec![UploadEffect::Abort(1), UploadEffect::Forget(1)]
        );
        // The request had finished just before the abort: its answer is dropped.
        assert!(
            u.apply(UploadInput::Done {
                key: 1,
                media: stored("m3", MediaKind::File),
            })
            .is_empty()
        );
        assert_eq!(u.items().len(), 1);
        // A failed one is removed without an abort (no request runs).
        u.apply(UploadInput::Failed {
            key: 2,
            code: ErrorCode::PayloadTooLarge,
        });
        assert_eq!(
            u.apply(UploadInput::Cancel(2)),
            vec![UploadEffect::Forget(2)]
        );
        assert!(u.items().is_empty());
    }

    #[test]
    fn uploads_are_listed_per_conversation_in_order() {
        let mut u = Uploads::default();
        add(&mut u, 1, "one");
        u.apply(UploadInput::Add {
            key: 2,
            to: Peer::Group("g".into()),
            name: "two".into(),
            size: 5,
        });
        add(&mut u, 3, "three");
        let a = ann();
        let names: Vec<_> = u.for_peer(&a).map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["one", "three"]);
        // The same key twice is one upload.
        assert!(add(&mut u, 3, "three").is_empty());
    }
}
