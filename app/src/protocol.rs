//! The WebSocket protocol between the browser and the relay (`GET /ws`), shared by both.
//!
//! Every frame is one JSON object whose `type` names the variant in snake_case. The client
//! sends [`ClientMessage`]s; the server answers with [`ServerEvent`]s, the first of which is
//! always `ready` with the protocol [`VERSION`]. The server never trusts a sender id from the
//! client: who sends is the session's user. See docs/API.md for every frame.
use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;

/// The protocol version carried by `ready`.
pub const VERSION: u32 = 1;

/// Longest text message, in characters.
pub const MAX_TEXT_CHARS: usize = 4000;

/// Largest frame the server accepts, in bytes.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Most messages in one `synced` or `history` answer.
pub const PAGE_SIZE: u32 = 200;

/// The WebSocket close codes the relay ends a connection with (docs/API.md lists them).
pub mod close {
    /// Too many malformed frames.
    pub const POLICY: u16 = 1008;
    /// A frame over twice [`super::MAX_FRAME_BYTES`].
    pub const TOO_BIG: u16 = 1009;
    /// The server could not load what the connection needs (`ready`).
    pub const SERVER_ERROR: u16 = 1011;
    /// Silent past the idle timeout.
    pub const IDLE: u16 = 4000;
    /// Fell behind reading: reconnect and sync.
    pub const TOO_SLOW: u16 = 4001;
    /// The session ended (logout, password change, revoked, expired, account suspended):
    /// do not reconnect; sign in again.
    pub const SESSION_ENDED: u16 = 4003;
    /// The user already has the most connections allowed (`WS_MAX_CONNECTIONS_PER_USER`).
    pub const TOO_MANY_CONNECTIONS: u16 = 4008;
    /// The server is shutting down or restarting: reconnect at once (another node of a
    /// cluster answers) and sync.
    pub const RESTARTING: u16 = 1012;
}

/// A conversation partner: `{"user": "<id>"}` or `{"group": "<id>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Peer {
    User(String),
    Group(String),
}

impl Peer {
    pub fn id(&self) -> &str {
        match self {
            Peer::User(id) | Peer::Group(id) => id,
        }
    }

    pub fn is_group(&self) -> bool {
        matches!(self, Peer::Group(_))
    }
}

/// What a message carries: text, an image or a file from a user, or the record of a call
/// (written by the server only, when a call attempt ends).
///
/// For `image` and `file` the sender gives only `media` (the id `POST /api/v1/media`
/// answered); the server fills in every other field from what it stored, so what the
/// receiver sees (dimensions, size, type) is never the sender's claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Content {
    Text {
        text: String,
    },
    /// A picture: shown inline from its thumbnail (`thumb`), full size from
    /// `/api/v1/media/<media>`.
    Image {
        media: String,
        #[serde(default)]
        width: u32,
        #[serde(default)]
        height: u32,
        /// The thumbnail's URL (at most 320 px on the long side).
        #[serde(default)]
        thumb: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        size: u64,
    },
    /// Any other file: downloaded from `/api/v1/media/<media>`.
    File {
        media: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        size: u64,
        /// The type found in the file's bytes (`application/octet-stream` when unknown).
        #[serde(default)]
        mime: String,
    },
    Call {
        media: CallMedia,
        outcome: CallOutcome,
        /// How long the call lasted (0 unless it was answered).
        #[serde(default)]
        duration_ms: u64,
    },
}

impl Content {
    /// The media id a message refers to, if it carries an image or a file.
    pub fn media(&self) -> Option<&str> {
        match self {
            Content::Image { media, .. } | Content::File { media, .. } => Some(media),
            Content::Text { .. } | Content::Call { .. } => None,
        }
    }

    /// The `content_kind` column value.
    pub fn kind(&self) -> &'static str {
        match self {
            Content::Text { .. } => "text",
            Content::Image { .. } => "image",
            Content::File { .. } => "file",
            Content::Call { .. } => "call",
        }
    }

    /// A one-line preview of a text (or a file's name) for conversation lists and
    /// notifications (images and call records are worded by the UI, in the reader's
    /// language).
    pub fn preview(&self) -> String {
        match self {
            Content::Text { text } => text
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(80)
                .collect(),
            Content::File { name, .. } => name.chars().take(80).collect(),
            Content::Image { .. } | Content::Call { .. } => String::new(),
        }
    }
}

/// Audio only, or audio and video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallMedia {
    Audio,
    Video,
}

/// How a call attempt ended, as `call_ended` tells both sides and the call record keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// Answered, then hung up by either side.
    Completed,
    /// The callee said no.
    Declined,
    /// The caller gave up before an answer.
    Cancelled,
    /// Nobody answered in time.
    Missed,
    /// The callee was already in a call.
    Busy,
    /// Another session of the callee answered (only to the callee's other sessions).
    AnsweredElsewhere,
    /// A side's connection went away.
    Failed,
}

/// One ICE candidate as the browser gives it (`RTCIceCandidateInit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default)]
    pub sdp_mid: Option<String>,
    #[serde(default)]
    pub sdp_m_line_index: Option<u16>,
}

/// Longest SDP the relay forwards, in bytes.
pub const MAX_SDP_BYTES: usize = 32 * 1024;

/// Most seconds a call rings before it counts as missed (the server's default).
pub const CALL_RING_SECS: u64 = 30;

/// Seconds an answered call waits for a side whose connection dropped to resume it (the
/// server's default).
pub const CALL_RESUME_SECS: u64 = 20;

/// A stored message as both sides see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    /// The server id: increases across the whole server.
    pub id: i64,
    /// The sender's id for it (idempotency key).
    pub client_id: String,
    /// The sender's user id.
    pub from: String,
    /// As addressed: the recipient user, or the group.
    pub to: Peer,
    pub content: Content,
    /// Unix milliseconds, server time.
    pub created_at: i64,
}

impl MessageView {
    /// The conversation this message belongs to, seen by `me`.
    pub fn conversation_for(&self, me: &str) -> Peer {
        match &self.to {
            Peer::Group(g) => Peer::Group(g.clone()),
            Peer::User(u) if u == me => Peer::User(self.from.clone()),
            Peer::User(u) => Peer::User(u.clone()),
        }
    }
}

/// Frames the browser sends. [`ClientKind`] names each variant by its `type`, derived from
/// this enum, so the relay can tell an unknown `type` from a known one with bad fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::EnumDiscriminants)]
#[serde(tag = "type", rename_all = "snake_case")]
#[strum_discriminants(
    name(ClientKind),
    derive(strum::EnumString, strum::EnumIter, strum::IntoStaticStr),
    strum(serialize_all = "snake_case")
)]
pub enum ClientMessage {
    /// Send a message. A resend with the same `client_id` is acknowledged with the same id
    /// and stored once.
    Send {
        client_id: String,
        to: Peer,
        content: Content,
    },
    /// Everything visible to the caller with an id above `after`, in id order, in pages.
    Sync {
        after: i64,
    },
    /// One page of a conversation before `before` (newest first if absent).
    History {
        with: Peer,
        #[serde(default)]
        before: Option<i64>,
        #[serde(default)]
        limit: Option<u32>,
    },
    /// The caller has read `conversation` up to the message `up_to`.
    Read {
        conversation: Peer,
        up_to: i64,
    },
    /// The caller is typing to `to`.
    Typing {
        to: Peer,
    },
    Ping {
        #[serde(default)]
        nonce: Option<u64>,
    },
    /// Ring a friend: every session of theirs hears `call_invite`. `call_id` is the
    /// caller's new UUID for this call.
    CallInvite {
        call_id: String,
        to: Peer,
        media: CallMedia,
    },
    /// The callee answers on this session; their other sessions stop ringing.
    CallAccept {
        call_id: String,
    },
    /// The callee says no.
    CallDecline {
        call_id: String,
    },
    /// The caller gives up before an answer.
    CallCancel {
        call_id: String,
    },
    /// Either side ends an answered call (before an answer it cancels or declines).
    CallHangup {
        call_id: String,
    },
    /// Session descriptions and candidates, forwarded to the other session of the call.
    CallOffer {
        call_id: String,
        sdp: String,
    },
    CallAnswer {
        call_id: String,
        sdp: String,
    },
    CallCandidate {
        call_id: String,
        candidate: IceCandidate,
    },
    /// A side of an answered call whose connection dropped is back on this new one: it
    /// takes the old one's place, and gets the signals kept meanwhile.
    CallResume {
        call_id: String,
    },
}

/// Someone's presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub user: String,
    pub online: bool,
    /// Unix milliseconds of the last disconnect, when offline and known.
    #[serde(default)]
    pub last_seen: Option<i64>,
}

/// A conversation in the `ready` snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationSummary {
    pub with: Peer,
    /// The friend's nickname or the group's name.
    pub title: String,
    pub avatar: String,
    /// The friend's username (empty for groups).
    #[serde(default)]
    pub username: String,
    pub last: Option<MessageView>,
    /// Messages from others after the caller's read cursor.
    pub unread: u64,
    /// How far the caller has read.
    pub read_up_to: i64,
    /// How far the friend has read (1:1 only; 0 for groups).
    pub peer_read_up_to: i64,
}

/// The signed-in user as the relay names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub id: String,
    pub username: String,
    pub nickname: String,
    pub avatar: String,
}

/// What changed in the caller's contacts (the client reloads its lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationChange {
    FriendRequest,
    FriendAdded,
    FriendRemoved,
    GroupRequest,
    GroupJoined,
    GroupLeft,
    GroupChanged,
    /// A friend (or the user, on another page) changed their name or picture.
    ProfileChanged,
}

/// Frames the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    /// The first frame: who the caller is, their conversations and their friends' presence.
    Ready {
        version: u32,
        me: Me,
        conversations: Vec<ConversationSummary>,
        presence: Vec<Presence>,
        /// The highest message id visible to the caller now.
        last_id: i64,
    },
    /// The message with `client_id` is stored as `id`.
    Ack {
        client_id: String,
        id: i64,
        created_at: i64,
    },
    /// A new message (to the recipients and the sender's other sessions).
    Message(MessageView),
    /// An answer to `sync`: the next page; `more` asks for another `sync` from `cursor`.
    Synced {
        messages: Vec<MessageView>,
        more: bool,
        cursor: i64,
    },
    /// An answer to `history`, oldest first.
    History {
        with: Peer,
        messages: Vec<MessageView>,
        more: bool,
    },
    /// `reader` has read `conversation` up to `up_to`.
    Receipt {
        conversation: Peer,
        reader: String,
        up_to: i64,
    },
    Typing {
        from: String,
        conversation: Peer,
    },
    Presence(Presence),
    Relation {
        change: RelationChange,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        community_id: Option<String>,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default)]
        client_id: Option<String>,
    },
    Pong {
        #[serde(default)]
        nonce: Option<u64>,
    },
    /// A friend is calling (to every session of the callee).
    CallInvite {
        call_id: String,
        from: String,
        media: CallMedia,
    },
    /// The callee's devices are ringing (to the caller).
    CallRinging {
        call_id: String,
    },
    /// The callee answered (to the caller; the caller now sends the offer).
    CallAccepted {
        call_id: String,
    },
    /// The call or attempt is over, and why; `duration_ms` for an answered call.
    CallEnded {
        call_id: String,
        outcome: CallOutcome,
        #[serde(default)]
        duration_ms: u64,
    },
    CallOffer {
        call_id: String,
        sdp: String,
    },
    CallAnswer {
        call_id: String,
        sdp: String,
    },
    CallCandidate {
        call_id: String,
        candidate: IceCandidate,
    },
    /// The server may have missed events meant for this connection (on a cluster, its
    /// link to the other nodes was down): ask for everything after the cursor again
    /// (`sync`) and reload the contact lists. Nothing was lost; the database has it.
    Resync,
}

impl ClientKind {
    /// The kind a frame's `type` names, if it names one.
    pub fn parse(type_name: &str) -> Option<ClientKind> {
        type_name.parse().ok()
    }

    /// The `type` value of frames of this kind.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    /// One frame of each kind, for the test below; the match makes a new variant a
    /// compile error here until it has an example.
    fn example(kind: ClientKind) -> ClientMessage {
        let id = || "c".to_owned();
        let peer = || Peer::User("u".into());
        match kind {
            ClientKind::Send => ClientMessage::Send {
                client_id: id(),
                to: peer(),
                content: Content::Text { text: "hi".into() },
            },
            ClientKind::Sync => ClientMessage::Sync { after: 0 },
            ClientKind::History => ClientMessage::History {
                with: peer(),
                before: None,
                limit: None,
            },
            ClientKind::Read => ClientMessage::Read {
                conversation: peer(),
                up_to: 1,
            },
            ClientKind::Typing => ClientMessage::Typing { to: peer() },
            ClientKind::Ping => ClientMessage::Ping { nonce: None },
            ClientKind::CallInvite => ClientMessage::CallInvite {
                call_id: id(),
                to: peer(),
                media: CallMedia::Audio,
            },
            ClientKind::CallAccept => ClientMessage::CallAccept { call_id: id() },
            ClientKind::CallDecline => ClientMessage::CallDecline { call_id: id() },
            ClientKind::CallCancel => ClientMessage::CallCancel { call_id: id() },
            ClientKind::CallHangup => ClientMessage::CallHangup { call_id: id() },
            ClientKind::CallOffer => ClientMessage::CallOffer {
                call_id: id(),
                sdp: "v=0".into(),
            },
            ClientKind::CallAnswer => ClientMessage::CallAnswer {
                call_id: id(),
                sdp: "v=0".into(),
            },
            ClientKind::CallResume => ClientMessage::CallResume { call_id: id() },
            ClientKind::CallCandidate => ClientMessage::CallCandidate {
                call_id: id(),
                candidate: IceCandidate {
                    candidate: "candidate:1".into(),
                    sdp_mid: None,
                    sdp_m_line_index: None,
                },
            },
        }
    }

    /// The kind names are exactly the `type` values serde writes and reads, for every
    /// variant: the relay's "known type" test cannot drift from the protocol.
    #[test]
    fn every_frame_kind_is_named_as_on_the_wire() {
        let mut names = Vec::new();
        for kind in ClientKind::iter() {
            let frame = example(kind);
            assert_eq!(ClientKind::from(&frame), kind);
            let json = serde_json::to_value(&frame).unwrap();
            assert_eq!(json["type"], kind.name(), "{kind:?}");
            assert_eq!(ClientKind::parse(kind.name()), Some(kind));
            let back: ClientMessage = serde_json::from_value(json).unwrap();
            assert_eq!(back, frame);
            names.push(kind.name());
        }
        assert!(names.contains(&"call_offer") && names.contains(&"send"));
        assert_eq!(ClientKind::parse("dance"), None);
        assert_eq!(ClientKind::parse("Send"), None, "names are exact");
    }

    #[test]
    fn frames_have_the_documented_shape() {
        let send: ClientMessage = serde_json::from_str(
            r#"{"type":"send","client_id":"c1","to":{"user":"u2"},"content":{"kind":"text","text":"hi"}}"#,
        )
        .unwrap();
        assert_eq!(
            send,
            ClientMessage::Send {
                client_id: "c1".into(),
                to: Peer::User("u2".into()),
                content: Content::Text { text: "hi".into() },
            }
        );
        let history: ClientMessage =
            serde_json::from_str(r#"{"type":"history","with":{"group":"g"}}"#).unwrap();
        assert_eq!(
            history,
            ClientMessage::History {
                with: Peer::Group("g".into()),
                before: None,
                limit: None
            }
        );
        let msg = ServerEvent::Message(MessageView {
            id: 7,
            client_id: "c1".into(),
            from: "u1".into(),
            to: Peer::Group("g".into()),
            content: Content::Text { text: "hi".into() },
            created_at: 1,
        });
        let json = serde_json::to_value(&msg).unwrap();
        assert_eq!(json["type"], "message");
        assert_eq!(json["id"], 7);
        assert_eq!(json["to"]["group"], "g");
        assert_eq!(json["content"]["kind"], "text");
        let err = serde_json::to_value(ServerEvent::Error {
            code: ErrorCode::NotFriends,
            message: "x".into(),
            client_id: Some("c1".into()),
        })
        .unwrap();
        assert_eq!(err["type"], "error");
        assert_eq!(err["code"], "not_friends");
    }

    #[test]
    fn a_direct_message_belongs_to_the_other_person() {
        let m = MessageView {
            id: 1,
            client_id: "c".into(),
            from: "alice".into(),
            to: Peer::User("bob".into()),
            content: Content::Text {
                text: String::new(),
            },
            created_at: 0,
        };
        assert_eq!(m.conversation_for("alice"), Peer::User("bob".into()));
        assert_eq!(m.conversation_for("bob"), Peer::User("alice".into()));
    }
}
