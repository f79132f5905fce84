//! The page's call as a plain state machine, the browser's twin of the relay's
//! `server/src/relay/calls.rs`: [`CallState::apply`] takes an [`Input`] (a user action, a
//! `call_*` frame, or what the WebRTC engine reports) and answers [`Effect`]s for the
//! driver (`super::rtc`) to carry out. Every decision is made here and tested without a
//! browser: where the call stands, what goes over the socket, perfect negotiation (who
//! ignores a colliding offer), candidates kept until the remote description is set, the
//! ICE restart and the give-up timer.
//!
//! The callee is the polite peer: on an offer collision the caller ignores the other
//! side's offer and the callee rolls back (the browser does that when it sets the remote
//! offer).
use crate::error::ErrorCode;
use crate::i18n::Msg;
use crate::protocol::{CallMedia, CallOutcome, ClientMessage, IceCandidate, Peer, ServerEvent};

/// How long a broken connection may try to recover before the call ends.
pub const RECOVER_MS: u32 = 20_000;
/// How long an ended call stays on screen, saying how it ended.
pub const ENDED_SHOWN_MS: u32 = 3_000;

/// Where the call on screen stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Getting the camera and microphone, then inviting.
    Outgoing,
    /// The callee's devices ring.
    Ringing,
    /// Someone calls this user.
    Incoming,
    /// Answered; media is being connected.
    Connecting,
    Active,
    /// The connection broke; ICE is restarting.
    Reconnecting,
    Ended(CallOutcome),
}

/// What the call screen shows.
#[derive(Debug, Clone, PartialEq)]
pub struct CallView {
    pub call_id: String,
    /// The other person's user id.
    pub peer: String,
    pub media: CallMedia,
    pub caller: bool,
    pub phase: Phase,
    pub muted: bool,
    pub camera_off: bool,
    /// When media started flowing (ms since the epoch).
    pub started_at: Option<f64>,
    /// The call's length, once ended.
    pub duration_ms: u64,
    /// A problem in words (no camera, permission denied).
    pub error: Option<Msg>,
    pub stats: CallStats,
}

impl CallView {
    /// A new attempt: outgoing for the caller, incoming for the callee.
    fn new(call_id: String, peer: String, media: CallMedia, caller: bool) -> Self {
        Self {
            call_id,
            peer,
            media,
            caller,
            phase: if caller {
                Phase::Outgoing
            } else {
                Phase::Incoming
            },
            muted: false,
            camera_off: false,
            started_at: None,
            duration_ms: 0,
            error: None,
            stats: CallStats::default(),
        }
    }

    fn ended(&self) -> bool {
        matches!(self.phase, Phase::Ended(_))
    }
}

/// What the connection's statistics say, refreshed every second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallStats {
    pub frames_decoded: u64,
    pub audio_packets: u64,
    pub audio_energy: f64,
    pub rtt_ms: Option<f64>,
    pub loss_pct: f64,
    /// `host`, `srflx` or `relay`: how this side reaches the other.
    pub candidate_type: String,
}

impl CallStats {
    pub fn quality(&self) -> Option<Msg> {
        let rtt = self.rtt_ms?;
        Some(if rtt < 150.0 && self.loss_pct < 2.0 {
            Msg::QualityGood
        } else if rtt < 400.0 && self.loss_pct < 8.0 {
            Msg::QualityFair
        } else {
            Msg::QualityPoor
        })
    }
}

/// What the ICE agent says of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ice {
    Connected,
    Disconnected,
    Failed,
}

/// Everything that can happen to the call.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The user calls `peer` (a fresh `call_id`).
    Start {
        call_id: String,
        peer: String,
        media: CallMedia,
    },
    /// The user answers the call ringing here.
    Accept,
    /// The user declines, cancels or hangs up, whichever fits.
    HangUp {
        now: f64,
    },
    ToggleMute,
    ToggleCamera,
    /// A `call_*` frame from the relay.
    Server(ServerEvent),
    /// The chat's socket is open again after it dropped (its `ready` came): the relay
    /// hears that this connection carries the call now.
    Reconnected,
    /// The relay refused a call frame of `call_id`.
    Refused {
        call_id: String,
        code: ErrorCode,
    },
    /// The camera and microphone (and the ICE servers) are ready.
    MediaReady {
        call_id: String,
    },
    /// The peer connection exists (after [`Effect::Connect`]).
    ConnectionReady {
        call_id: String,
    },
    /// The engine failed for a reason the user must hear (no camera, no connection): the
    /// call ends.
    Failed {
        call_id: String,
        problem: Msg,
    },
    /// Something went wrong that the call survives (another camera would not start).
    Problem {
        call_id: String,
        problem: Msg,
    },
    /// The engine started (`true`) or finished (`false`) making an offer.
    MakingOffer {
        call_id: String,
        making: bool,
    },
    /// The engine made a description of its own: an offer, or the answer to one.
    LocalDescription {
        call_id: String,
        offer: bool,
        sdp: String,
    },
    /// A candidate of this side to send.
    LocalCandidate {
        call_id: String,
        candidate: IceCandidate,
    },
    /// An offer or answer from the other side arrived; `stable` is whether the connection's
    /// signalling state is stable right now.
    RemoteDescription {
        call_id: String,
        offer: bool,
        sdp: String,
        stable: bool,
    },
    /// The other side's description is set.
    RemoteSet {
        call_id: String,
        offer: bool,
    },
    Ice {
        call_id: String,
        state: Ice,
        now: f64,
    },
    /// The give-up timer of the break that began at `since` ran out.
    GiveUp {
        call_id: String,
        since: f64,
    },
    /// An ended call has been shown long enough.
    Clear {
        call_id: String,
    },
    Stats {
        call_id: String,
        stats: CallStats,
    },
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Transmit(ClientMessage),
    /// Set up the engine of a new call (releasing any other).
    Prepare {
        call_id: String,
    },
    /// Get the microphone (and the camera for `video`) and the ICE servers, then answer
    /// [`Input::MediaReady`] or [`Input::Failed`].
    GetMedia {
        call_id: String,
        video: bool,
    },
    Ring,
    StopRing,
    /// Create the peer connection, then answer [`Input::ConnectionReady`] (or
    /// [`Input::Failed`]); the caller's tracks join at once (which starts the negotiation),
    /// the callee's with its first answer.
    Connect {
        call_id: String,
        add_tracks: bool,
    },
    /// Set the other side's description, then answer [`Input::RemoteSet`].
    SetRemote {
        call_id: String,
        offer: bool,
        sdp: String,
    },
    /// Add the local tracks and make the answer (answer [`Input::LocalDescription`]).
    MakeAnswer {
        call_id: String,
    },
    AddCandidates {
        call_id: String,
        candidates: Vec<IceCandidate>,
    },
    RestartIce {
        call_id: String,
    },
    /// Answer [`Input::GiveUp`] after [`RECOVER_MS`].
    GiveUpLater {
        call_id: String,
        since: f64,
    },
    /// Answer [`Input::Clear`] after [`ENDED_SHOWN_MS`].
    ClearLater {
        call_id: String,
    },
    /// Close the connection, stop the camera, microphone and ringer.
    Release,
    /// The call is connected: list the devices to switch between.
    ListDevices,
    SetMuted(bool),
    SetCamera {
        off: bool,
    },
    /// A refusal about no call this page knows: a client bug worth a warning.
    Unexpected {
        call_id: String,
        code: ErrorCode,
    },
}

/// Perfect negotiation's memory of one call.
#[derive(Debug, Default)]
struct Negotiation {
    making_offer: bool,
    /// The last remote offer collided and this (impolite) side ignores it.
    ignore_offer: bool,
    remote_set: bool,
    /// Candidates that came before the remote description.
    pending: Vec<IceCandidate>,
    /// When the current break began.
    broken_since: Option<f64>,
    /// The relay knows this side of the call: the caller has invited, the callee has
    /// answered.
    on_server: bool,
    /// This side asked the relay to resume the call after its socket dropped.
    resumed: bool,
}

/// The page's call.
#[derive(Debug, Default)]
pub struct CallState {
    view: Option<CallView>,
    talk: Negotiation,
}

impl CallState {
    pub fn new() -> Self {
        Self::default()
    }

    /// What the call screen shows.
    pub fn view(&self) -> Option<&CallView> {
        self.view.as_ref()
    }

    /// The id of the call on screen, unless it has ended.
    pub fn live_call(&self) -> Option<&str> {
        self.view
            .as_ref()
            .filter(|v| !v.ended())
            .map(|v| v.call_id.as_str())
    }

    /// The live call with this id.
    fn live(&mut self, call_id: &str) -> Option<&mut CallView> {
        self.view
            .as_mut()
            .filter(|v| v.call_id == call_id && !v.ended())
    }

    pub fn apply(&mut self, input: Input) -> Vec<Effect> {
        let mut fx = Vec::new();
        match input {
            Input::Start {
                call_id,
                peer,
                media,
            } => {
                if self.live_call().is_some() {
                    return fx;
                }
                self.begin(CallView::new(call_id.clone(), peer, media, true));
                fx.push(Effect::Prepare {
                    call_id: call_id.clone(),
                });
                fx.push(Effect::GetMedia {
                    call_id,
                    video: media == CallMedia::Video,
                });
            }
            Input::Accept => {
                if let Some(v) = self.view.as_mut().filter(|v| v.phase == Phase::Incoming) {
                    v.phase = Phase::Connecting;
                    fx.push(Effect::StopRing);
                    fx.push(Effect::GetMedia {
                        call_id: v.call_id.clone(),
                        video: v.media == CallMedia::Video,
                    });
                }
            }
            Input::HangUp { now } => self.hang_up(now, None, &mut fx),
            Input::ToggleMute => {
                if let Some(v) = self.view.as_mut().filter(|v| !v.ended()) {
                    v.muted = !v.muted;
                    fx.push(Effect::SetMuted(v.muted));
                }
            }
            Input::ToggleCamera => {
                if let Some(v) = self.view.as_mut().filter(|v| !v.ended()) {
                    v.camera_off = !v.camera_off;
                    fx.push(Effect::SetCamera { off: v.camera_off });
                }
            }
            Input::Server(event) => self.server(event, &mut fx),
            Input::Reconnected => {
                let Some(v) = self.view.as_ref().filter(|v| !v.ended()) else {
                    return fx;
                };
                if self.talk.on_server {
                    self.talk.resumed = true;
                    let call_id = v.call_id.clone();
                    fx.push(Effect::Transmit(ClientMessage::CallResume {
                        call_id: call_id.clone(),
                    }));
                    // What this side signalled while the socket was down is lost: a
                    // connection that is broken starts its ICE restart again.
                    if v.phase == Phase::Reconnecting {
                        fx.push(Effect::RestartIce { call_id });
                    }
                }
            }
            Input::Refused { call_id, code } => match self.view.as_ref() {
                Some(v) if v.call_id == call_id && v.ended() => {}
                Some(v) if v.call_id == call_id => {
                    let problem = match code {
                        ErrorCode::NotFriends => Some(Msg::ErrNotFriends),
                        // The call ended while this side was away: it dropped.
                        ErrorCode::NotFound if self.talk.resumed => None,
                        _ => Some(Msg::CallNotPossible),
                    };
                    if let Some(problem) = problem {
                        self.set_error(problem);
                    }
                    self.end(CallOutcome::Failed, 0, &mut fx);
                }
                _ => fx.push(Effect::Unexpected { call_id, code }),
            },
            Input::MediaReady { call_id } => {
                let Some(v) = self.live(&call_id) else {
                    return fx;
                };
                match (v.caller, v.phase) {
                    (true, Phase::Outgoing) => {
                        fx.push(Effect::Transmit(ClientMessage::CallInvite {
                            call_id,
                            to: Peer::User(v.peer.clone()),
                            media: v.media,
                        }));
                        self.talk.on_server = true;
                    }
                    (false, Phase::Connecting) => fx.push(Effect::Connect {
                        call_id,
                        add_tracks: false,
                    }),
                    _ => {}
                }
            }
            Input::ConnectionReady { call_id } => {
                // The callee says yes once it can take the caller's offer.
                if self
                    .live(&call_id)
                    .is_some_and(|v| !v.caller && v.phase == Phase::Connecting)
                {
                    fx.push(Effect::Transmit(ClientMessage::CallAccept { call_id }));
                    self.talk.on_server = true;
                }
            }
            Input::Failed { call_id, problem } => {
                if self.live(&call_id).is_some() {
                    self.set_error(problem);
                    self.hang_up(0.0, Some(CallOutcome::Failed), &mut fx);
                }
            }
            Input::Problem { call_id, problem } => {
                if let Some(v) = self.live(&call_id) {
                    v.error = Some(problem);
                }
            }
            Input::MakingOffer { call_id, making } => {
                if self.live(&call_id).is_some() {
                    self.talk.making_offer = making;
                }
            }
            Input::LocalDescription {
                call_id,
                offer,
                sdp,
            } => {
                if self.live(&call_id).is_some() {
                    fx.push(Effect::Transmit(if offer {
                        ClientMessage::CallOffer { call_id, sdp }
                    } else {
                        ClientMessage::CallAnswer { call_id, sdp }
                    }));
                }
            }
            Input::LocalCandidate { call_id, candidate } => {
                if self.live(&call_id).is_some() {
                    fx.push(Effect::Transmit(ClientMessage::CallCandidate {
                        call_id,
                        candidate,
                    }));
                }
            }
            Input::RemoteDescription {
                call_id,
                offer,
                sdp,
                stable,
            } => {
                let polite = match self.live(&call_id) {
                    Some(v) => !v.caller,
                    None => return fx,
                };
                let collision = offer && (self.talk.making_offer || !stable);
                self.talk.ignore_offer = !polite && collision;
                if !self.talk.ignore_offer {
                    fx.push(Effect::SetRemote {
                        call_id,
                        offer,
                        sdp,
                    });
                }
            }
            Input::RemoteSet { call_id, offer } => {
                if self.live(&call_id).is_none() {
                    return fx;
                }
                self.talk.remote_set = true;
                let candidates = std::mem::take(&mut self.talk.pending);
                if !candidates.is_empty() {
                    fx.push(Effect::AddCandidates {
                        call_id: call_id.clone(),
                        candidates,
                    });
                }
                if offer {
                    fx.push(Effect::MakeAnswer { call_id });
                }
            }
            Input::Ice {
                call_id,
                state,
                now,
            } => self.ice(call_id, state, now, &mut fx),
            Input::GiveUp { call_id, since } => {
                if self.live(&call_id).is_some() && self.talk.broken_since == Some(since) {
                    self.hang_up(now_after(since), None, &mut fx);
                }
            }
            Input::Clear { call_id } => {
                if self
                    .view
                    .as_ref()
                    .is_some_and(|v| v.call_id == call_id && v.ended())
                {
                    self.view = None;
                }
            }
            Input::Stats { call_id, stats } => {
                if let Some(v) = self.live(&call_id) {
                    v.stats = stats;
                }
            }
        }
        fx
    }

    fn begin(&mut self, view: CallView) {
        self.view = Some(view);
        self.talk = Negotiation::default();
    }

    fn set_error(&mut self, problem: Msg) {
        if let Some(v) = self.view.as_mut() {
            v.error = Some(problem);
        }
    }

    fn server(&mut self, event: ServerEvent, fx: &mut Vec<Effect>) {
        match event {
            ServerEvent::CallInvite {
                call_id,
                from,
                media,
            } => {
                match self.live_call() {
                    // The relay rings this call again on a socket opened while it rang
                    // here: it goes on ringing.
                    Some(live) if live == call_id => return,
                    // Another call is on screen on this tab (the server lets a user be in
                    // one call at a time, so this is a stale view): say no.
                    Some(_) => {
                        fx.push(Effect::Transmit(ClientMessage::CallDecline { call_id }));
                        return;
                    }
                    None => {}
                }
                self.begin(CallView::new(call_id.clone(), from, media, false));
                fx.push(Effect::Prepare { call_id });
                fx.push(Effect::Ring);
            }
            ServerEvent::CallRinging { call_id } => {
                if let Some(v) = self.live(&call_id).filter(|v| v.phase == Phase::Outgoing) {
                    v.phase = Phase::Ringing;
                }
            }
            ServerEvent::CallAccepted { call_id } => {
                if let Some(v) = self.live(&call_id).filter(|v| v.caller) {
                    v.phase = Phase::Connecting;
                    fx.push(Effect::Connect {
                        call_id,
                        add_tracks: true,
                    });
                }
            }
            ServerEvent::CallEnded {
                call_id,
                outcome,
                duration_ms,
            } if self.live(&call_id).is_some() => self.end(outcome, duration_ms, fx),
            ServerEvent::CallOffer { .. } | ServerEvent::CallAnswer { .. } => {
                // Carried in as `RemoteDescription` by the driver, which knows the
                // connection's signalling state.
            }
            ServerEvent::CallCandidate { call_id, candidate } => {
                // A candidate of an offer this side ignores would only fail.
                if self.live(&call_id).is_none() || self.talk.ignore_offer {
                    return;
                }
                if self.talk.remote_set {
                    fx.push(Effect::AddCandidates {
                        call_id,
                        candidates: vec![candidate],
                    });
                } else {
                    self.talk.pending.push(candidate);
                }
            }
            _ => {}
        }
    }

    fn ice(&mut self, call_id: String, state: Ice, now: f64, fx: &mut Vec<Effect>) {
        let Some(v) = self.live(&call_id) else {
            return;
        };
        match state {
            Ice::Connected => {
                v.phase = Phase::Active;
                v.started_at.get_or_insert(now);
                self.talk.broken_since = None;
                fx.push(Effect::ListDevices);
            }
            Ice::Disconnected | Ice::Failed => {
                if v.phase == Phase::Active {
                    v.phase = Phase::Reconnecting;
                }
                if state == Ice::Failed {
                    fx.push(Effect::RestartIce {
                        call_id: call_id.clone(),
                    });
                }
                if self.talk.broken_since.is_none() {
                    self.talk.broken_since = Some(now);
                    fx.push(Effect::GiveUpLater {
                        call_id,
                        since: now,
                    });
                }
            }
        }
    }

    /// Says no, cancels or hangs up, whichever fits where the call stands, and ends it
    /// (`outcome` overrides how it ended for this side).
    fn hang_up(&mut self, now: f64, outcome: Option<CallOutcome>, fx: &mut Vec<Effect>) {
        let Some(v) = self.view.as_ref() else {
            return;
        };
        if v.ended() {
            self.view = None;
            return;
        }
        let call_id = v.call_id.clone();
        let (message, own) = match v.phase {
            Phase::Incoming => (
                ClientMessage::CallDecline { call_id },
                CallOutcome::Declined,
            ),
            Phase::Connecting if !v.caller && v.started_at.is_none() && outcome.is_some() => {
                // The callee could not get going: the caller hears "declined".
                (
                    ClientMessage::CallDecline { call_id },
                    CallOutcome::Declined,
                )
            }
            Phase::Outgoing | Phase::Ringing => (
                ClientMessage::CallCancel { call_id },
                CallOutcome::Cancelled,
            ),
            _ => (
                ClientMessage::CallHangup { call_id },
                CallOutcome::Completed,
            ),
        };
        // A caller whose devices failed has sent nothing yet.
        if !(v.caller && v.phase == Phase::Outgoing && outcome.is_some()) {
            fx.push(Effect::Transmit(message));
        }
        let duration = v.started_at.map(|s| (now - s).max(0.0) as u64).unwrap_or(0);
        self.end(outcome.unwrap_or(own), duration, fx);
    }

    /// Ends the call here: media released, the outcome shown for a moment.
    fn end(&mut self, outcome: CallOutcome, duration_ms: u64, fx: &mut Vec<Effect>) {
        let Some(v) = self.view.as_mut().filter(|v| !v.ended()) else {
            return;
        };
        v.phase = Phase::Ended(outcome);
        v.duration_ms = duration_ms;
        fx.push(Effect::Release);
        fx.push(Effect::ClearLater {
            call_id: v.call_id.clone(),
        });
        self.talk = Negotiation::default();
    }
}

/// The moment the give-up timer of a break that began at `since` runs out.
fn now_after(since: f64) -> f64 {
    since + f64::from(RECOVER_MS)
}

#[cfg(test)]
mod tests;
