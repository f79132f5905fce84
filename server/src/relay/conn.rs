//! One WebSocket connection: a writer task fed by the connection's bounded queue, and the
//! reader loop below that answers each client frame. Nothing here panics on input: a bad
//! frame gets an `error` frame and the connection goes on, until too many bad frames close
//! it with a policy code.
use std::sync::Arc;
use std::time::Duration;

use app::error::{ApiError, ErrorCode};
use app::protocol::{
    CallMedia, ClientKind, ClientMessage, Content, MAX_FRAME_BYTES, MAX_TEXT_CHARS, Me, PAGE_SIZE,
    Peer, Presence, ServerEvent, VERSION, close,
};
use app::ssr::auth::CurrentUser;
use app::ssr::media;
use app::ssr::messages::{self, NewMessage, Target};
use app::ssr::now_ms;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::calls::{self, CallOp, Session, Signal};
use super::hub::{Connection, Frame};
use super::store::Job;
use super::{Relay, frame};
use crate::cluster::calls::Claim;

/// Malformed frames tolerated per connection before it is closed.
const MAX_STRIKES: u32 = 20;
/// How long a closing connection waits for the client's close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Serves one upgraded socket until either side closes it.
pub async fn run(relay: Arc<Relay>, user: CurrentUser, socket: WebSocket) {
    let (sink, stream) = socket.split();
    let me = user.id();
    let (conn, queue) = relay
        .hub
        .connection(me, &user.session_id, relay.settings.queue);
    // Registered before `ready` is read: a message committed from now on reaches this
    // connection's queue, and `ready` holds everything committed before, so nothing can fall
    // between the two. The writer starts with `ready` and only then sends what queued up
    // meanwhile, so `ready` stays the first frame.
    let mut registered = relay
        .hub
        .register(conn.clone(), relay.settings.max_connections_per_user);
    // On a cluster the cap counts every node's connections too.
    if registered.is_some() && !Box::pin(relay.claim_connection(me, conn.id)).await {
        relay.hub.unregister(me, conn.id);
        registered = None;
    }
    // The big futures are boxed so that an idle connection's task holds only what it
    // needs while waiting (this keeps each idle connection a few KB smaller).
    let opening = match registered {
        None => {
            conn.close(
                close::TOO_MANY_CONNECTIONS,
                "too many connections: close another tab",
            );
            None
        }
        Some(_) => match Box::pin(ready(&relay, &user)).await {
            Ok(Some(event)) => Some(frame(&event)),
            Ok(None) => {
                conn.close(close::SESSION_ENDED, "the session has ended: sign in again");
                None
            }
            Err(err) => {
                conn.close(close::SERVER_ERROR, "could not load the session");
                Some(error_frame(&err, None))
            }
        },
    };
    // Recorded (on a cluster, in Redis) before the client sees `ready`: a tab it opens next,
    // on any node, finds this one, and closing another tab meanwhile does not look like
    // going offline.
    if registered == Some(true) {
        Box::pin(relay.came_online(me)).await;
    }
    let writer = tokio::spawn(write_loop(
        sink,
        opening,
        queue,
        conn.clone(),
        relay.settings.ping_every,
    ));
    if registered.is_none() {
        let _ = writer.await;
        linger(stream).await;
        return;
    }
    // A call ringing for this user rings on this new tab too.
    let effects = relay.calls.connected(Session {
        user: me,
        conn: conn.id,
    });
    relay.apply_call_effects(effects);
    if let Some(cluster) = &relay.cluster {
        cluster.send(crate::cluster::Remote::CallSession {
            user: me,
            conn: conn.id,
            open: true,
            signed_out: false,
        });
    }
    metrics::counter!("qc_ws_connects_total").increment(1);
    let closed_by_us = read_loop(&relay, &user, &conn, stream).await;
    let reason = conn.close_reason().map(|(code, _)| code);
    let code = reason.map_or_else(|| "client".to_owned(), |code| code.to_string());
    metrics::counter!("qc_ws_closes_total", "code" => code).increment(1);
    conn.closed.cancel();
    // A ringing call this connection placed ends with it; an answered one waits for it to
    // resume from another, unless its session ended (signed out, revoked, expired).
    let signed_out = reason == Some(close::SESSION_ENDED);
    let effects = relay.calls.disconnected(
        Session {
            user: me,
            conn: conn.id,
        },
        signed_out,
    );
    relay.apply_call_effects(effects);
    if let Some(cluster) = &relay.cluster {
        cluster.send(crate::cluster::Remote::CallSession {
            user: me,
            conn: conn.id,
            open: false,
            signed_out,
        });
    }
    let _ = writer.await;
    if relay.hub.unregister(me, conn.id) {
        Box::pin(relay.went_offline(me)).await;
    }
    Box::pin(relay.release_connection(me, conn.id)).await;
    if let Some(stream) = closed_by_us {
        linger(stream).await;
    }
}

/// The first frame: who the caller is, their conversations, their friends' presence.
/// `None` when the session ended after the upgrade was authenticated (its ending may have
/// been announced before this connection was registered, so it is checked once more here).
async fn ready(relay: &Relay, user: &CurrentUser) -> Result<Option<ServerEvent>, ApiError> {
    let db = &relay.core.db;
    let me = user.id();
    let session = std::slice::from_ref(&user.session_id);
    if app::ssr::accounts::live_sessions(db, session)
        .await?
        .is_empty()
    {
        return Ok(None);
    }
    let groups = messages::my_groups(db, me).await?;
    // The cursor before the snapshot: whatever the snapshot holds beyond it comes again in
    // the client's `sync`, where ids make it harmless; read after, a message committed in
    // between would be behind the cursor and in no snapshot.
    let last_id = messages::last_visible_id(db, me, &groups).await?;
    let conversations = messages::conversations(db, me, &groups).await?;
    let friends = relay.core.permissions.friends_of(db, me).await?;
    let last_seen = messages::last_seen_of(db, &friends).await?;
    let ids: Vec<Uuid> = last_seen.iter().map(|(id, _)| *id).collect();
    let online = relay.online(&ids).await;
    let presence = last_seen
        .into_iter()
        .zip(online)
        .map(|((id, last_seen), online)| Presence {
            user: id.to_string(),
            online,
            last_seen,
        })
        .collect();
    Ok(Some(ServerEvent::Ready {
        version: VERSION,
        me: Me {
            id: me.to_string(),
            username: user.user.username.clone(),
            nickname: user.user.nickname.clone(),
            avatar: user.user.avatar.clone(),
        },
        conversations,
        presence,
        last_id,
    }))
}

fn error_frame(err: &ApiError, client_id: Option<String>) -> Frame {
    frame(&ServerEvent::Error {
        code: err.code,
        message: err.message.clone(),
        client_id,
    })
}

/// Sends `opening` (the `ready` frame, or the error that stopped it), then queued frames and
/// pings until the connection is closed; a closed connection gets a close frame with its
/// reason.
async fn write_loop<S>(
    mut sink: S,
    opening: Option<Frame>,
    mut queue: mpsc::Receiver<Frame>,
    conn: Connection,
    ping_every: Duration,
) where
    S: Sink<Message> + Unpin,
{
    if let Some(first) = opening {
        let sent = tokio::time::timeout(ping_every, sink.send(Message::Text(first))).await;
        if !matches!(sent, Ok(Ok(()))) {
            conn.close(close::TOO_SLOW, "too slow: reconnect and sync");
        }
    }
    // The first ping comes after half the interval plus a random part of the other half:
    // connections opened together (every client reconnecting after a restart) would
    // otherwise be pinged together, every interval, and the burst would delay the messages
    // around it. (None comes in the first half: the connection has just proved alive.)
    let fraction = 0.5 + (Uuid::new_v4().as_u128() % 1000) as f64 / 2000.0;
    let first = tokio::time::Instant::now() + ping_every.mul_f64(fraction);
    let mut ping = tokio::time::interval_at(first, ping_every);
    loop {
        tokio::select! {
            biased;
            _ = conn.closed.cancelled() => break,
            next = queue.recv() => {
                let Some(text) = next else { break };
                tokio::select! {
                    sent = send_queued(&mut sink, text, &mut queue) => if let Err(err) = sent {
                        // Most often: the client stopped reading and the socket's write
                        // buffer is full. It reconnects and syncs.
                        let _ = err;
                        conn.close(close::TOO_SLOW, "too slow: reconnect and sync");
                        break;
                    },
                    _ = conn.closed.cancelled() => break,
                }
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
    if let Some((code, reason)) = conn.close_reason() {
        // Frames queued before a deliberate close (the error that caused it) go out first,
        // unless the reason is that this client does not read.
        if code != close::TOO_SLOW {
            while let Ok(text) = queue.try_recv() {
                if tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Text(text)))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
        let close = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
    // However the writer ended, the connection is over: this ends the reader too.
    conn.closed.cancel();
}

/// Most frames written with one flush.
const FRAMES_PER_WRITE: usize = 64;

/// Writes `first` and whatever else is already queued (up to [`FRAMES_PER_WRITE`]), then
/// flushes once: under load a connection's acknowledgements and messages leave in one
/// system call instead of one each.
async fn send_queued<S>(
    sink: &mut S,
    first: Frame,
    queue: &mut mpsc::Receiver<Frame>,
) -> Result<(), S::Error>
where
    S: Sink<Message> + Unpin,
{
    sink.feed(Message::Text(first)).await?;
    for _ in 1..FRAMES_PER_WRITE {
        let Ok(text) = queue.try_recv() else { break };
        sink.feed(Message::Text(text)).await?;
    }
    sink.flush().await
}

/// Per-connection state of the reader.
struct Reader<'a> {
    relay: &'a Arc<Relay>,
    user: &'a CurrentUser,
    conn: &'a Connection,
    strikes: u32,
}

/// Answers the client's frames until either side closes. Returns the stream when the
/// server closed the connection, for [`linger`].
async fn read_loop<S>(
    relay: &Arc<Relay>,
    user: &CurrentUser,
    conn: &Connection,
    mut stream: S,
) -> Option<S>
where
    S: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let mut reader = Reader {
        relay,
        user,
        conn,
        strikes: 0,
    };
    // Tokio's clock, like the timers here (a paused clock in the tests moves both).
    let mut last_heard = tokio::time::Instant::now();
    let mut idle_check =
        tokio::time::interval(Duration::from_secs(5).min(relay.settings.idle_timeout));
    // The session's end: the connection goes with it.
    let expiry = u64::try_from(user.session_expires_at.saturating_sub(now_ms())).unwrap_or(0);
    let expired = tokio::time::sleep(Duration::from_millis(expiry));
    tokio::pin!(expired);
    loop {
        // Biased: once the connection is closed (session revoked or expired, too slow, too
        // many bad frames) no frame the client already sent is answered, however many wait.
        tokio::select! {
            biased;
            _ = conn.closed.cancelled() => break,
            _ = &mut expired => {
                conn.close(close::SESSION_ENDED, "the session has expired: sign in again");
                break;
            }
            _ = idle_check.tick() => {
                if last_heard.elapsed() > relay.settings.idle_timeout {
                    conn.close(close::IDLE, "idle timeout");
                    break;
                }
            }
            next = stream.next() => {
                let message = match next {
                    Some(Ok(message)) => message,
                    Some(Err(err)) if too_big(&err) => {
                        conn.close(close::TOO_BIG, "frames are at most 128 KiB");
                        break;
                    }
                    Some(Err(_)) | None => return None,
                };
                last_heard = tokio::time::Instant::now();
                match message {
                    Message::Text(text) => Box::pin(reader.frame(text.as_str())).await,
                    Message::Binary(_) => reader.strike(ErrorCode::BadFrame, "Frames are JSON text."),
                    Message::Close(_) => return None,
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
        }
    }
    Some(stream)
}

/// The server closed the connection: until the client answers the close frame (or a short
/// while passes), what it still sends is read and dropped. A socket closed with unread data
/// is reset, and a reset can discard the close frame (and its code) before the client
/// reads it.
async fn linger<S>(mut stream: S)
where
    S: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let drain = async {
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Close(_) = message {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_LINGER, drain).await;
}

impl Reader<'_> {
    fn me(&self) -> Uuid {
        self.user.id()
    }

    fn reply(&self, event: &ServerEvent) {
        self.conn.push(frame(event));
    }

    fn refuse(&self, err: &ApiError, client_id: Option<String>) {
        self.conn.push(error_frame(err, client_id));
    }

    /// A malformed frame: an error, and after too many, the door.
    fn strike(&mut self, code: ErrorCode, message: &str) {
        self.strikes += 1;
        self.refuse(&ApiError::new(code, message), None);
        if self.strikes > MAX_STRIKES {
            self.conn.close(close::POLICY, "too many malformed frames");
        }
    }

    /// Spends one of the user's non-message frames (shared by all their connections, on
    /// every node).
    async fn within_budget(&self) -> Result<(), ApiError> {
        self.relay
            .frames
            .take_anywhere(&self.me())
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::RateLimited,
                    "Too many requests on this connection. Slow down.",
                )
            })
    }

    /// Spends one of the user's messages (shared by all their connections, on every node).
    async fn may_send(&self, what: &str) -> Result<(), ApiError> {
        self.relay
            .sends
            .take_anywhere(&self.me())
            .await
            .map_err(|_| ApiError::new(ErrorCode::RateLimited, what))
    }

    async fn frame(&mut self, text: &str) {
        if text.len() > MAX_FRAME_BYTES {
            self.strike(ErrorCode::FrameTooLarge, "Frames are at most 64 KiB.");
            return;
        }
        let message = match serde_json::from_str::<ClientMessage>(text) {
            Ok(message) => message,
            Err(err) => {
                let (code, what) = classify(text);
                self.strike(code, &format!("{what}: {err}"));
                return;
            }
        };
        if !matches!(message, ClientMessage::Send { .. })
            && let Err(err) = self.within_budget().await
        {
            let call_id = match &message {
                ClientMessage::CallInvite { call_id, .. }
                | ClientMessage::CallAccept { call_id }
                | ClientMessage::CallDecline { call_id }
                | ClientMessage::CallCancel { call_id }
                | ClientMessage::CallHangup { call_id }
                | ClientMessage::CallOffer { call_id, .. }
                | ClientMessage::CallAnswer { call_id, .. }
                | ClientMessage::CallCandidate { call_id, .. } => {
                    Some(call_id.chars().take(64).collect())
                }
                _ => None,
            };
            self.refuse(&err, call_id);
            return;
        }
        let result = match message {
            ClientMessage::Send {
                client_id,
                to,
                content,
            } => {
                self.send(client_id, to, content).await;
                Ok(())
            }
            ClientMessage::Sync { after } => self.sync(after).await,
            ClientMessage::History {
                with,
                before,
                limit,
            } => self.history(with, before, limit).await,
            ClientMessage::Read {
                conversation,
                up_to,
            } => self.read(conversation, up_to).await,
            ClientMessage::Typing { to } => self.typing(to).await,
            ClientMessage::Ping { nonce } => {
                self.reply(&ServerEvent::Pong { nonce });
                Ok(())
            }
            ClientMessage::CallInvite { call_id, to, media } => {
                let result = self.call_invite(&call_id, &to, media).await;
                return self.call_result(result, call_id);
            }
            ClientMessage::CallAccept { call_id } => {
                return self.call_op(call_id, CallOp::Accept).await;
            }
            ClientMessage::CallDecline { call_id } => {
                return self.call_op(call_id, CallOp::Decline).await;
            }
            ClientMessage::CallCancel { call_id } => {
                return self.call_op(call_id, CallOp::Cancel).await;
            }
            ClientMessage::CallHangup { call_id } => {
                return self.call_op(call_id, CallOp::Hangup).await;
            }
            ClientMessage::CallOffer { call_id, sdp } => {
                return self
                    .call_op(call_id, CallOp::Signal(Signal::Offer(sdp)))
                    .await;
            }
            ClientMessage::CallAnswer { call_id, sdp } => {
                return self
                    .call_op(call_id, CallOp::Signal(Signal::Answer(sdp)))
                    .await;
            }
            ClientMessage::CallCandidate { call_id, candidate } => {
                return self
                    .call_op(call_id, CallOp::Signal(Signal::Candidate(candidate)))
                    .await;
            }
            ClientMessage::CallResume { call_id } => {
                return self.call_op(call_id, CallOp::Resume).await;
            }
        };
        if let Err(err) = result {
            self.refuse(&err, None);
        }
    }

    fn session(&self) -> Session {
        Session {
            user: self.me(),
            conn: self.conn.id,
        }
    }

    /// Carries out a call operation's effects, or tells the client why not (the error's
    /// `client_id` is the call id).
    fn call_result(&self, result: Result<Vec<calls::Effect>, ApiError>, call_id: String) {
        match result {
            Ok(effects) => self.relay.apply_call_effects(effects),
            Err(err) => self.refuse(&err, Some(call_id.chars().take(64).collect())),
        }
    }

    /// Carries out `op` on the call `call_id`: here when this node holds the call, else
    /// (on a cluster) on the node that does, which answers this connection itself.
    async fn call_op(&self, call_id: String, op: CallOp) {
        let who = self.session();
        if !self.relay.calls.has(&call_id)
            && let Some(cluster) = &self.relay.cluster
        {
            match cluster.call_exists(&call_id).await {
                Ok(true) => {
                    cluster.send(crate::cluster::Remote::Call {
                        call_id,
                        user: who.user,
                        conn: who.conn,
                        op,
                    });
                    return;
                }
                Ok(false) => {}
                Err(err) => tracing::warn!(%err, "cannot tell where a call is held"),
            }
        }
        let result = self.relay.calls.apply(who, &call_id, op);
        self.call_result(result, call_id);
    }

    /// Rings a friend, if the caller may call them.
    async fn call_invite(
        &self,
        call_id: &str,
        to: &Peer,
        media: CallMedia,
    ) -> Result<Vec<calls::Effect>, ApiError> {
        let Target::User(callee) = Self::target(to)? else {
            return Err(ApiError::invalid("to", "Calls are between two friends."));
        };
        if callee == self.me() {
            return Err(ApiError::forbidden("You cannot call yourself."));
        }
        self.may_send("You are calling too often. Wait a moment.")
            .await?;
        // Only friends call each other (the same check as for messages).
        self.relay
            .recipients(self.me(), Target::User(callee))
            .await?;
        let online = self.relay.online(&[callee]).await.first() == Some(&true);
        let Some(cluster) = &self.relay.cluster else {
            return self
                .relay
                .calls
                .invite(self.session(), callee, call_id, media, online);
        };
        if Uuid::parse_str(call_id).is_err() {
            return Err(ApiError::invalid("call_id", "call_id is a UUID."));
        }
        // Who is in a call is known to Redis, wherever the call is held.
        match cluster.claim_call(call_id, self.me(), callee).await {
            Ok(Claim::CallerBusy) => {
                return Err(ApiError::new(
                    ErrorCode::Conflict,
                    "You are already in a call.",
                ));
            }
            Ok(Claim::CalleeBusy) => {
                return Ok(self
                    .relay
                    .calls
                    .busy(self.session(), callee, call_id, media));
            }
            Ok(Claim::Claimed) => {}
            // Redis is down: this node's knowledge only.
            Err(err) => tracing::warn!(%err, "cannot tell who is in a call elsewhere"),
        }
        let invited = self
            .relay
            .calls
            .invite(self.session(), callee, call_id, media, online);
        if invited.is_err() {
            let _ = cluster.release_call(call_id, self.me(), callee).await;
        }
        invited
    }

    fn target(peer: &Peer) -> Result<Target, ApiError> {
        Target::parse(peer).ok_or_else(|| ApiError::not_found("There is no such user or group."))
    }

    async fn send(&mut self, client_id: String, to: Peer, content: Content) {
        let valid_id =
            (1..=64).contains(&client_id.len()) && client_id.chars().all(|c| c.is_ascii_graphic());
        if !valid_id {
            self.refuse(
                &ApiError::invalid(
                    "client_id",
                    "client_id is 1 to 64 visible ASCII characters.",
                ),
                Some(client_id.chars().take(64).collect()),
            );
            return;
        }
        let checked = async {
            match &content {
                Content::Text { text } => Self::check_text(text)?,
                Content::Image { .. } | Content::File { .. } => {}
                Content::Call { .. } => {
                    return Err(ApiError::invalid(
                        "content",
                        "Call records are written by the server.",
                    ));
                }
            }
            let target = Self::target(&to)?;
            // Spent before the permission lookup, so that sends to made-up ids cost the
            // sender their own allowance, not the database its time.
            self.may_send("You are sending too fast. Wait a moment.")
                .await?;
            let recipients = self.relay.recipients(self.me(), target).await?;
            // Media: the sender's own upload, described as stored, and from now on visible
            // to the conversation's members.
            let db = &self.relay.core.db;
            let (content, media) = media::checked_content(db, self.me(), content).await?;
            if let Some(id) = media {
                let key = messages::conversation_key(self.me(), target);
                media::add_use(db, id, &key, now_ms()).await?;
                if !media::exists(db, id).await? {
                    return Err(media::not_found());
                }
            }
            Ok((target, recipients, content))
        };
        match checked.await {
            Ok((target, recipients, content)) => {
                let message = NewMessage {
                    sender: self.me(),
                    client_id,
                    target,
                    content,
                    created_at: now_ms(),
                };
                self.relay
                    .store
                    .submit(Job {
                        message,
                        sender: Some(self.conn.clone()),
                        recipients,
                    })
                    .await;
            }
            Err(err) => self.refuse(&err, Some(client_id)),
        }
    }

    /// What a text must be: not blank, no control characters but line breaks, not too long.
    fn check_text(text: &str) -> Result<(), ApiError> {
        if text.trim().is_empty() {
            return Err(ApiError::invalid("content", "A message cannot be empty."));
        }
        if app::validate::has_controls_beyond_breaks(text) {
            return Err(ApiError::invalid(
                "content",
                "A message cannot contain control characters.",
            ));
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(ApiError::new(
                ErrorCode::MessageTooLong,
                format!("A message has at most {MAX_TEXT_CHARS} characters."),
            ));
        }
        Ok(())
    }

    async fn sync(&mut self, after: i64) -> Result<(), ApiError> {
        metrics::counter!("qc_sync_requests_total").increment(1);
        let db = &self.relay.core.db;
        let groups = messages::my_groups(db, self.me()).await?;
        let (messages, more) =
            messages::sync_page(db, self.me(), &groups, after.max(0), PAGE_SIZE).await?;
        let cursor = messages.last().map_or(after.max(0), |m| m.id);
        self.reply(&ServerEvent::Synced {
            messages,
            more,
            cursor,
        });
        Ok(())
    }

    async fn history(
        &mut self,
        with: Peer,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Result<(), ApiError> {
        let target = Self::target(&with)?;
        if let Target::Group(group) = target
            && !self.relay.group_members(group).await?.contains(&self.me())
        {
            return Err(ApiError::new(
                ErrorCode::NotMember,
                "You are not a member of this group.",
            ));
        }
        let limit = limit.unwrap_or(50).clamp(1, PAGE_SIZE);
        let (messages, more) =
            messages::history_page(&self.relay.core.db, self.me(), target, before, limit).await?;
        self.reply(&ServerEvent::History {
            with,
            messages,
            more,
        });
        Ok(())
    }

    /// Moves the caller's read cursor. The same rule as sending: only in a conversation the
    /// caller may write to. Receipts go out only when the cursor moved.
    async fn read(&mut self, conversation: Peer, up_to: i64) -> Result<(), ApiError> {
        let target = Self::target(&conversation)?;
        self.relay.recipients(self.me(), target).await?;
        let Some(cursor) =
            messages::mark_read(&self.relay.core.db, self.me(), target, up_to).await?
        else {
            return Ok(());
        };
        let me = self.me().to_string();
        // The reader's other sessions update their unread counts.
        let own = frame(&ServerEvent::Receipt {
            conversation: conversation.clone(),
            reader: me.clone(),
            up_to: cursor,
        });
        self.relay
            .bus
            .publish(&[self.me()], &own, Some(self.conn.id));
        // In a 1:1 chat the friend sees "read".
        if let Target::User(peer) = target {
            let theirs = frame(&ServerEvent::Receipt {
                conversation: Peer::User(me.clone()),
                reader: me,
                up_to: cursor,
            });
            self.relay.bus.publish(&[peer], &theirs, None);
        }
        Ok(())
    }

    /// Tells the others in a conversation that the caller is typing: only where the caller
    /// may write, and per user and conversation at most once every 2 s (over all the
    /// user's connections); more often is dropped without an error.
    async fn typing(&mut self, to: Peer) -> Result<(), ApiError> {
        let target = Self::target(&to)?;
        let recipients = self.relay.recipients(self.me(), target).await?;
        if !self.relay.typing.allow(&(self.me(), target)) {
            return Ok(());
        }
        let others: Vec<Uuid> = recipients.into_iter().filter(|u| *u != self.me()).collect();
        let conversation = match target {
            Target::User(_) => Peer::User(self.me().to_string()),
            Target::Group(g) => Peer::Group(g.to_string()),
        };
        let event = frame(&ServerEvent::Typing {
            from: self.me().to_string(),
            conversation,
        });
        self.relay.bus.publish(&others, &event, None);
        Ok(())
    }
}

/// Whether a read error is a frame over the socket's size limit.
fn too_big(err: &axum::Error) -> bool {
    std::error::Error::source(err)
        .and_then(|inner| inner.downcast_ref::<tungstenite::Error>())
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

/// Why a frame did not parse: not JSON at all, a `type` we do not know, or a known type with
/// missing or wrong fields.
fn classify(text: &str) -> (ErrorCode, &'static str) {
    match serde_json::from_str::<serde_json::Value>(text) {
        Err(_) => (ErrorCode::BadFrame, "Not valid JSON"),
        Ok(value) => match value.get("type").and_then(|t| t.as_str()) {
            Some(t) if ClientKind::parse(t).is_some() => {
                (ErrorCode::BadFrame, "Missing or wrong fields")
            }
            Some(_) => (ErrorCode::UnknownType, "Unknown frame type"),
            None => (ErrorCode::BadFrame, "A frame is an object with a \"type\""),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::hub::Hub;
    use super::*;
    use tokio_util::sync::PollSender;

    /// A connection of the hub with a queue of `capacity`, and a socket stand-in: a channel
    /// of `room` frames whose other end is the "client".
    fn socket(
        capacity: usize,
        room: usize,
    ) -> (
        Connection,
        mpsc::Receiver<Frame>,
        PollSender<Message>,
        mpsc::Receiver<Message>,
    ) {
        let (conn, queue) = Hub::default().connection(Uuid::nil(), "session", capacity);
        let (sink, client) = mpsc::channel(room);
        (conn, queue, PollSender::new(sink), client)
    }

    fn text(m: &Message) -> Option<&str> {
        match m {
            Message::Text(t) => Some(t.as_str()),
            _ => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_writer_sends_ready_then_the_queue_then_the_reason_it_closed() {
        let (conn, queue, sink, mut client) = socket(8, 64);
        conn.push("a".into());
        conn.push("b".into());
        let ping = Duration::from_secs(30);
        let writer = tokio::spawn(write_loop(
            sink,
            Some("ready".into()),
            queue,
            conn.clone(),
            ping,
        ));
        for want in ["ready", "a", "b"] {
            assert_eq!(client.recv().await.as_ref().and_then(text), Some(want));
        }
        // An error frame queued just before a deliberate close still goes out, first.
        conn.push("too many malformed frames".into());
        conn.close(close::POLICY, "too many malformed frames");
        writer.await.unwrap();
        let mut rest = Vec::new();
        while let Ok(m) = client.try_recv() {
            rest.push(m);
        }
        assert_eq!(
            rest.first().and_then(text),
            Some("too many malformed frames")
        );
        match rest.last() {
            Some(Message::Close(Some(frame))) => assert_eq!(frame.code, close::POLICY),
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_cut_off_and_its_writer_ends() {
        // The socket takes one frame and then nothing (the client reads nothing).
        let (conn, queue, sink, mut client) = socket(2, 1);
        let writer = tokio::spawn(write_loop(
            sink,
            None,
            queue,
            conn.clone(),
            Duration::from_secs(30),
        ));
        let mut pushed = 0;
        while conn.push(format!("m{pushed}").into()) {
            pushed += 1;
            tokio::task::yield_now().await;
            assert!(pushed < 100, "a full queue must close the connection");
        }
        assert_eq!(conn.close_reason().map(|r| r.0), Some(close::TOO_SLOW));
        // The writer gives up on the stuck socket within its bounded waits.
        tokio::time::timeout(Duration::from_secs(5), writer)
            .await
            .expect("the writer ends")
            .unwrap();
        assert!(conn.closed.is_cancelled());
        // The client finally reads the one frame that fitted, nothing after it.
        assert_eq!(client.recv().await.as_ref().and_then(text), Some("m0"));
        assert!(client.try_recv().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_pinged_but_not_in_the_first_half_interval() {
        let (conn, queue, sink, mut client) = socket(8, 64);
        let every = Duration::from_secs(20);
        let writer = tokio::spawn(write_loop(sink, None, queue, conn.clone(), every));
        tokio::time::sleep(every / 2 - Duration::from_millis(1)).await;
        assert!(client.try_recv().is_err(), "no ping in the first half");
        tokio::time::sleep(every).await;
        assert!(matches!(client.try_recv(), Ok(Message::Ping(_))));
        conn.close(close::IDLE, "idle timeout");
        writer.await.unwrap();
    }

    /// A relay on an empty database (no tables: the frames these tests send must not need
    /// any), then a paused clock.
    async fn relay() -> Arc<Relay> {
        use app::ssr::{AppCore, Settings};
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        let relay = Relay::start(
            AppCore::new(db, Settings::default()),
            super::super::RelaySettings::default(),
            None,
        );
        tokio::time::pause();
        relay
    }

    /// Ann, whose session ends `expires_in` ms from now.
    fn ann(expires_in: i64) -> CurrentUser {
        CurrentUser {
            user: app::ssr::entity::user_base::Model {
                id: Uuid::from_u128(1),
                username: "ann".into(),
                nickname: "Ann".into(),
                password_hash: String::new(),
                role: 0,
                gender: 0,
                signature: String::new(),
                mobile: String::new(),
                avatar: String::new(),
                created_at: 0,
                updated_at: 0,
                deleted_at: None,
                last_seen_at: None,
            },
            session_id: "session".into(),
            session_expires_at: now_ms() + expires_in,
        }
    }

    const HOUR: i64 = 3_600_000;

    /// The client's side of the reader: frames sent on the channel arrive as the socket's.
    fn client() -> (
        mpsc::UnboundedSender<Result<Message, axum::Error>>,
        impl Stream<Item = Result<Message, axum::Error>> + Unpin,
    ) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        (
            tx,
            futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)),
        )
    }

    fn ping() -> Result<Message, axum::Error> {
        Ok(Message::Text(r#"{"type":"ping","nonce":7}"#.into()))
    }

    fn queued(queue: &mut mpsc::Receiver<Frame>) -> Vec<String> {
        std::iter::from_fn(|| queue.try_recv().ok())
            .map(|f| f.as_str().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn too_many_malformed_frames_close_the_connection_and_nothing_after_is_answered() {
        let relay = relay().await;
        let user = ann(HOUR);
        let (conn, mut queue) = relay.hub.connection(user.id(), "session", 64);
        let (tx, stream) = client();
        for i in 0..=MAX_STRIKES {
            let bad = if i % 2 == 0 {
                Message::Text(format!("{{nope {i}").into())
            } else {
                Message::Binary(vec![1, 2, 3].into())
            };
            tx.send(Ok(bad)).unwrap();
        }
        tx.send(ping()).unwrap();
        let lingering = read_loop(&relay, &user, &conn, stream).await;
        assert!(lingering.is_some(), "the server closed it");
        assert_eq!(conn.close_reason().map(|r| r.0), Some(close::POLICY));
        let frames = queued(&mut queue);
        assert_eq!(frames.len(), MAX_STRIKES as usize + 1, "{frames:?}");
        assert!(frames.iter().all(|f| f.contains("bad_frame")), "{frames:?}");
    }

    #[tokio::test]
    async fn a_few_malformed_frames_are_answered_and_the_connection_goes_on() {
        let relay = relay().await;
        let user = ann(HOUR);
        let (conn, mut queue) = relay.hub.connection(user.id(), "session", 64);
        let (tx, stream) = client();
        tx.send(Ok(Message::Text(r#"{"type":"dance"}"#.into())))
            .unwrap();
        tx.send(ping()).unwrap();
        let reader = tokio::spawn({
            let (relay, conn) = (relay.clone(), conn.clone());
            async move { read_loop(&relay, &user, &conn, stream).await.is_some() }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let frames = queued(&mut queue);
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert!(frames[0].contains("unknown_type"), "{frames:?}");
        assert!(
            frames[1].contains("pong") && frames[1].contains('7'),
            "{frames:?}"
        );
        assert_eq!(conn.close_reason(), None);
        // The client closes: the reader ends without lingering.
        tx.send(Ok(Message::Close(None))).unwrap();
        assert!(!reader.await.unwrap());
    }

    #[tokio::test]
    async fn a_silent_client_is_closed_after_the_idle_timeout_and_a_talking_one_is_not() {
        let idle = super::super::RelaySettings::default().idle_timeout;
        let relay = relay().await;
        let (talker, mut talker_queue) = relay.hub.connection(Uuid::from_u128(1), "a", 64);
        let (silent, _silent_queue) = relay.hub.connection(Uuid::from_u128(1), "b", 64);
        let (talk, talking) = client();
        let (_quiet, quiet) = client();
        let readers = [
            (talker.clone(), talking.boxed()),
            (silent.clone(), quiet.boxed()),
        ]
        .map(|(conn, stream)| {
            let relay = relay.clone();
            tokio::spawn(
                async move { read_loop(&relay, &ann(HOUR), &conn, stream).await.is_some() },
            )
        });
        // The talker says something every half timeout, for three timeouts.
        for _ in 0..6 {
            tokio::time::sleep(idle / 2).await;
            talk.send(ping()).unwrap();
        }
        let [talking, silent_reader] = readers;
        assert!(silent_reader.await.unwrap());
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(silent.close_reason().map(|r| r.0), Some(close::IDLE));
        assert_eq!(talker.close_reason(), None);
        assert_eq!(queued(&mut talker_queue).len(), 6, "every ping answered");
        talk.send(Ok(Message::Close(None))).unwrap();
        assert!(!talking.await.unwrap());
    }

    #[tokio::test]
    async fn the_connection_ends_with_its_session() {
        let relay = relay().await;
        let user = ann(90_000);
        let (conn, _queue) = relay.hub.connection(user.id(), "session", 64);
        let (tx, stream) = client();
        let reader = tokio::spawn({
            let conn = conn.clone();
            async move { read_loop(&relay, &user, &conn, stream).await.is_some() }
        });
        // Busy, so never idle: the session's end closes it all the same.
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let _ = tx.send(ping());
        }
        assert!(reader.await.unwrap());
        assert_eq!(conn.close_reason().map(|r| r.0), Some(close::SESSION_ENDED));
    }

    #[tokio::test]
    async fn frames_waiting_when_the_session_is_revoked_are_never_answered() {
        // The reader could pick a waiting frame over the closed connection (tokio::select!
        // picks at random among ready branches): try it often enough to see it.
        let relay = relay().await;
        let user = ann(HOUR);
        for _ in 0..20 {
            let (conn, mut queue) = relay.hub.connection(user.id(), "session", 64);
            let (tx, stream) = client();
            for _ in 0..10 {
                tx.send(ping()).unwrap();
            }
            assert!(relay.hub.register(conn.clone(), 1).is_some());
            relay
                .hub
                .close_sessions(user.id(), &app::ssr::EndedSessions::One("session".into()));
            assert!(read_loop(&relay, &user, &conn, stream).await.is_some());
            assert_eq!(queued(&mut queue), Vec::<String>::new());
            relay.hub.unregister(user.id(), conn.id);
        }
    }

    #[test]
    fn malformed_frames_are_told_apart() {
        assert_eq!(classify("{nope").0, ErrorCode::BadFrame);
        assert_eq!(classify(r#"{"type":"dance"}"#).0, ErrorCode::UnknownType);
        assert_eq!(classify(r#"{"type":"send","to":5}"#).0, ErrorCode::BadFrame);
        assert_eq!(
            classify(r#"{"type":"call_offer","call_id":"x"}"#).0,
            ErrorCode::BadFrame,
            "a call frame missing its sdp"
        );
        assert_eq!(classify("[1,2]").0, ErrorCode::BadFrame);
    }
}
