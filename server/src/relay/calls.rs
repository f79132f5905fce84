//! Calls: who is calling whom, on which sessions, and where each call stands. The relay
//! forwards call signalling only between the two sessions of a call (the caller's, and the
//! callee's that answered); everything else is refused with an error code.
//!
//! An answered call outlives a dropped connection for a while: the media flows between the
//! browsers, not through here. The side whose connection closed is *away*: signals for it
//! are kept, and when it comes back (`call_resume` from a new connection of the same user)
//! its new session takes the old one's place and gets what was kept. A side still away
//! when the resume time is up ends the call as failed.
//!
//! [`Calls`] is a plain state machine: every operation checks who asks and answers the
//! [`Effect`]s to carry out (frames to send, a call record to store, a ring timer to start),
//! which the connection code performs. This keeps every transition testable without sockets.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use app::error::{ApiError, ErrorCode};
use app::protocol::{CallMedia, CallOutcome, IceCandidate, MAX_SDP_BYTES, ServerEvent};
use uuid::Uuid;

/// A session: a user and one of their connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub user: Uuid,
    pub conn: u64,
}

/// What the caller of an operation must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send to one connection.
    ToSession(Session, ServerEvent),
    /// Send to every connection of a user except `skip`.
    ToUser {
        user: Uuid,
        skip: Option<u64>,
        event: ServerEvent,
    },
    /// Store the call record (a message from the caller to the callee).
    Record {
        call_id: String,
        caller: Uuid,
        callee: Uuid,
        media: CallMedia,
        outcome: CallOutcome,
        duration_ms: u64,
    },
    /// Call [`Calls::ring_timeout`] for this call once the ring time is up.
    StartRingTimer(String),
    /// Call [`Calls::resume_timeout`] with this call and session once the resume time is
    /// up.
    StartResumeTimer(String, Session),
}

/// Most signals kept for a side that is away, and most bytes of descriptions and
/// candidates among them; later ones are dropped (an ICE restart after the resume makes
/// new ones).
pub const KEPT_FOR_AWAY: usize = 64;
pub const KEPT_BYTES_FOR_AWAY: usize = 4 * MAX_SDP_BYTES;

/// The signals kept for a side that is away.
#[derive(Debug, Clone, Default)]
struct Kept {
    events: Vec<ServerEvent>,
    bytes: usize,
}

impl Kept {
    fn keep(&mut self, event: ServerEvent) {
        let bytes = match &event {
            ServerEvent::CallOffer { sdp, .. } | ServerEvent::CallAnswer { sdp, .. } => sdp.len(),
            ServerEvent::CallCandidate { candidate, .. } => candidate.candidate.len(),
            _ => 0,
        };
        if self.events.len() < KEPT_FOR_AWAY && self.bytes + bytes <= KEPT_BYTES_FOR_AWAY {
            self.bytes += bytes;
            self.events.push(event);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ringing,
    /// Answered at this instant, by this connection of the callee.
    Active {
        since: Instant,
        callee_conn: u64,
    },
}

#[derive(Debug, Clone)]
struct Call {
    caller: Session,
    callee: Uuid,
    media: CallMedia,
    phase: Phase,
    /// Whether the caller was told the callee's device rings.
    rang: bool,
    /// The sides of an answered call whose connection went away, with the signals kept
    /// for them.
    away: HashMap<Uuid, Kept>,
}

impl Call {
    /// The callee's session of an answered call.
    fn callee_session(&self) -> Option<Session> {
        match self.phase {
            Phase::Active { callee_conn, .. } => Some(Session {
                user: self.callee,
                conn: callee_conn,
            }),
            Phase::Ringing => None,
        }
    }

    /// Whether `who` is the caller's session or the answering session of the callee.
    fn is_side(&self, who: Session) -> bool {
        who == self.caller || self.callee_session() == Some(who)
    }
}

/// A description or candidate to forward.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    Offer(String),
    Answer(String),
    Candidate(IceCandidate),
}

/// What a session does to a call that exists (on a cluster, the node that holds the call
/// is told by the node of the session).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOp {
    Accept,
    Decline,
    Cancel,
    Hangup,
    Signal(Signal),
    /// A new connection of a side takes the place of the one that went away.
    Resume,
}

#[derive(Default)]
struct State {
    calls: HashMap<String, Call>,
    /// The call each user is in (ringing or answered): one at a time.
    by_user: HashMap<Uuid, String>,
}

impl State {
    /// The call `user` is in, with its id.
    fn call_of(&mut self, user: Uuid) -> Option<(String, &mut Call)> {
        let call_id = self.by_user.get(&user)?.clone();
        let call = self.calls.get_mut(&call_id)?;
        Some((call_id, call))
    }
}

#[derive(Default)]
pub struct Calls {
    state: Mutex<State>,
}

fn no_call() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "There is no such call.")
}

fn not_yours() -> ApiError {
    ApiError::new(ErrorCode::Forbidden, "This call is not on this session.")
}

impl Calls {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many calls are ringing or answered (for tests and logs).
    pub fn len(&self) -> usize {
        self.state().calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the call `call_id` is held here.
    pub fn has(&self, call_id: &str) -> bool {
        self.state().calls.contains_key(call_id)
    }

    /// The calls held here: id, caller and callee.
    pub fn held(&self) -> Vec<(String, Uuid, Uuid)> {
        self.state()
            .calls
            .iter()
            .map(|(id, c)| (id.clone(), c.caller.user, c.callee))
            .collect()
    }

    /// Carries out `op` from `who`.
    pub fn apply(&self, who: Session, call_id: &str, op: CallOp) -> Result<Vec<Effect>, ApiError> {
        match op {
            CallOp::Accept => self.accept(who, call_id),
            CallOp::Decline => self.decline(who, call_id),
            CallOp::Cancel => self.cancel(who, call_id),
            CallOp::Hangup => self.hangup(who, call_id),
            CallOp::Signal(signal) => self.signal(who, call_id, signal),
            CallOp::Resume => self.resume(who, call_id),
        }
    }

    /// `caller` rings `callee`, who is in a call held elsewhere (another node): a busy
    /// attempt, ended at once and recorded.
    pub fn busy(
        &self,
        caller: Session,
        callee: Uuid,
        call_id: &str,
        media: CallMedia,
    ) -> Vec<Effect> {
        vec![
            Effect::ToSession(caller, ended(call_id, CallOutcome::Busy, 0)),
            record(call_id, caller.user, callee, media, CallOutcome::Busy, 0),
        ]
    }

    /// `caller` rings `callee` (their friendship is checked by the caller of this). A callee
    /// already in a call makes it a busy attempt, ended at once and recorded.
    pub fn invite(
        &self,
        caller: Session,
        callee: Uuid,
        call_id: &str,
        media: CallMedia,
        callee_online: bool,
    ) -> Result<Vec<Effect>, ApiError> {
        if Uuid::parse_str(call_id).is_err() {
            return Err(ApiError::invalid("call_id", "call_id is a UUID."));
        }
        if callee == caller.user {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "You cannot call yourself.",
            ));
        }
        let mut state = self.state();
        if state.calls.contains_key(call_id) {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "This call id is in use.",
            ));
        }
        if state.by_user.contains_key(&caller.user) {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "You are already in a call.",
            ));
        }
        if state.by_user.contains_key(&callee) {
            return Ok(self.busy(caller, callee, call_id, media));
        }
        state.calls.insert(
            call_id.to_owned(),
            Call {
                caller,
                callee,
                media,
                phase: Phase::Ringing,
                rang: callee_online,
                away: HashMap::new(),
            },
        );
        state.by_user.insert(caller.user, call_id.to_owned());
        state.by_user.insert(callee, call_id.to_owned());
        let mut effects = vec![
            Effect::ToUser {
                user: callee,
                skip: None,
                event: ServerEvent::CallInvite {
                    call_id: call_id.to_owned(),
                    from: caller.user.to_string(),
                    media,
                },
            },
            Effect::StartRingTimer(call_id.to_owned()),
        ];
        if callee_online {
            effects.push(Effect::ToSession(
                caller,
                ServerEvent::CallRinging {
                    call_id: call_id.to_owned(),
                },
            ));
        }
        Ok(effects)
    }

    /// A session of the callee answers.
    pub fn accept(&self, who: Session, call_id: &str) -> Result<Vec<Effect>, ApiError> {
        let mut state = self.state();
        let call = state.calls.get_mut(call_id).ok_or_else(no_call)?;
        if who.user != call.callee {
            return Err(not_yours());
        }
        if call.phase != Phase::Ringing {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "This call was answered already.",
            ));
        }
        call.phase = Phase::Active {
            since: Instant::now(),
            callee_conn: who.conn,
        };
        Ok(vec![
            Effect::ToSession(
                call.caller,
                ServerEvent::CallAccepted {
                    call_id: call_id.to_owned(),
                },
            ),
            Effect::ToUser {
                user: call.callee,
                skip: Some(who.conn),
                event: ended(call_id, CallOutcome::AnsweredElsewhere, 0),
            },
        ])
    }

    /// The callee declines a ringing call.
    pub fn decline(&self, who: Session, call_id: &str) -> Result<Vec<Effect>, ApiError> {
        let mut state = self.state();
        let call = state.calls.get(call_id).ok_or_else(no_call)?;
        if who.user != call.callee {
            return Err(not_yours());
        }
        if call.phase != Phase::Ringing {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "This call was answered already.",
            ));
        }
        Ok(finish(&mut state, call_id, CallOutcome::Declined))
    }

    /// The caller gives up on a ringing call.
    pub fn cancel(&self, who: Session, call_id: &str) -> Result<Vec<Effect>, ApiError> {
        let mut state = self.state();
        let call = state.calls.get(call_id).ok_or_else(no_call)?;
        if who != call.caller {
            return Err(not_yours());
        }
        if call.phase != Phase::Ringing {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "This call was answered; hang up instead.",
            ));
        }
        Ok(finish(&mut state, call_id, CallOutcome::Cancelled))
    }

    /// Either session of an answered call hangs up; before an answer, the caller cancels
    /// and the callee declines.
    pub fn hangup(&self, who: Session, call_id: &str) -> Result<Vec<Effect>, ApiError> {
        let mut state = self.state();
        let call = state.calls.get(call_id).ok_or_else(no_call)?;
        let outcome = match call.phase {
            Phase::Ringing if who == call.caller => CallOutcome::Cancelled,
            Phase::Ringing if who.user == call.callee => CallOutcome::Declined,
            Phase::Active { .. } if call.is_side(who) => CallOutcome::Completed,
            _ => return Err(not_yours()),
        };
        Ok(finish(&mut state, call_id, outcome))
    }

    /// Forwards a description or candidate to the other session of an answered call.
    pub fn signal(
        &self,
        who: Session,
        call_id: &str,
        signal: Signal,
    ) -> Result<Vec<Effect>, ApiError> {
        if let Signal::Offer(sdp) | Signal::Answer(sdp) = &signal
            && sdp.len() > MAX_SDP_BYTES
        {
            return Err(ApiError::invalid(
                "sdp",
                "The session description is too large.",
            ));
        }
        let mut state = self.state();
        let call = state.calls.get_mut(call_id).ok_or_else(no_call)?;
        let Some(callee) = call.callee_session() else {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "This call has not been answered yet.",
            ));
        };
        let other = if who == call.caller {
            callee
        } else if who == callee {
            call.caller
        } else {
            return Err(not_yours());
        };
        let call_id = call_id.to_owned();
        let event = match signal {
            Signal::Offer(sdp) => ServerEvent::CallOffer { call_id, sdp },
            Signal::Answer(sdp) => ServerEvent::CallAnswer { call_id, sdp },
            Signal::Candidate(candidate) => ServerEvent::CallCandidate { call_id, candidate },
        };
        if let Some(kept) = call.away.get_mut(&other.user) {
            kept.keep(event);
            return Ok(Vec::new());
        }
        Ok(vec![Effect::ToSession(other, event)])
    }

    /// A new connection of a side of the call takes the place of its old one (which went
    /// away, or is about to): it gets the signals kept meanwhile, and the call goes on.
    pub fn resume(&self, who: Session, call_id: &str) -> Result<Vec<Effect>, ApiError> {
        let mut state = self.state();
        let call = state.calls.get_mut(call_id).ok_or_else(no_call)?;
        if who.user == call.caller.user {
            call.caller = who;
        } else if who.user == call.callee {
            let Phase::Active { callee_conn, .. } = &mut call.phase else {
                return Err(ApiError::new(
                    ErrorCode::Conflict,
                    "This call has not been answered yet.",
                ));
            };
            *callee_conn = who.conn;
        } else {
            return Err(not_yours());
        }
        let kept = call.away.remove(&who.user).unwrap_or_default();
        Ok(kept
            .events
            .into_iter()
            .map(|event| Effect::ToSession(who, event))
            .collect())
    }

    /// The resume time of `who`, away since its connection closed, is up: if that side has
    /// not come back, the call fails.
    pub fn resume_timeout(&self, call_id: &str, who: Session) -> Vec<Effect> {
        let mut state = self.state();
        match state.calls.get(call_id) {
            Some(call) if call.is_side(who) && call.away.contains_key(&who.user) => {
                finish(&mut state, call_id, CallOutcome::Failed)
            }
            _ => Vec::new(),
        }
    }

    /// The ring time is up: a call still ringing is missed.
    pub fn ring_timeout(&self, call_id: &str) -> Vec<Effect> {
        let mut state = self.state();
        match state.calls.get(call_id) {
            Some(call) if call.phase == Phase::Ringing => {
                finish(&mut state, call_id, CallOutcome::Missed)
            }
            _ => Vec::new(),
        }
    }

    /// A connection of `who.user` opened: while a call rings for them it rings there too,
    /// and a caller who rang an offline callee now hears that it rings.
    pub fn connected(&self, who: Session) -> Vec<Effect> {
        let mut state = self.state();
        let Some((call_id, call)) = state.call_of(who.user) else {
            return Vec::new();
        };
        if call.phase != Phase::Ringing || call.callee != who.user {
            return Vec::new();
        }
        let mut effects = vec![Effect::ToSession(
            who,
            ServerEvent::CallInvite {
                call_id: call_id.clone(),
                from: call.caller.user.to_string(),
                media: call.media,
            },
        )];
        if !call.rang {
            call.rang = true;
            effects.push(Effect::ToSession(
                call.caller,
                ServerEvent::CallRinging { call_id },
            ));
        }
        effects
    }

    /// Ends every call held here as failed: the process is shutting down, and the calls
    /// cannot outlive it.
    pub fn end_all(&self) -> Vec<Effect> {
        let mut state = self.state();
        let ids: Vec<String> = state.calls.keys().cloned().collect();
        let mut effects = Vec::new();
        for id in ids {
            effects.extend(finish(&mut state, &id, CallOutcome::Failed));
        }
        effects
    }

    /// A connection closed: a ringing call ends when it was the caller's (a ringing callee
    /// session going away changes nothing while the callee has others); an answered call
    /// waits for that side to resume, unless `signed_out` (its session ended: nobody will
    /// come back on it), when it ends at once.
    pub fn disconnected(&self, who: Session, signed_out: bool) -> Vec<Effect> {
        let mut state = self.state();
        let Some((call_id, call)) = state.call_of(who.user) else {
            return Vec::new();
        };
        match call.phase {
            Phase::Ringing if who == call.caller => {
                finish(&mut state, &call_id, CallOutcome::Cancelled)
            }
            Phase::Active { .. } if call.is_side(who) && signed_out => {
                finish(&mut state, &call_id, CallOutcome::Failed)
            }
            Phase::Active { .. } if call.is_side(who) => {
                call.away.entry(who.user).or_default();
                vec![Effect::StartResumeTimer(call_id, who)]
            }
            _ => Vec::new(),
        }
    }
}

fn ended(call_id: &str, outcome: CallOutcome, duration_ms: u64) -> ServerEvent {
    ServerEvent::CallEnded {
        call_id: call_id.to_owned(),
        outcome,
        duration_ms,
    }
}

fn record(
    call_id: &str,
    caller: Uuid,
    callee: Uuid,
    media: CallMedia,
    outcome: CallOutcome,
    duration_ms: u64,
) -> Effect {
    Effect::Record {
        call_id: call_id.to_owned(),
        caller,
        callee,
        media,
        outcome,
        duration_ms,
    }
}

/// Ends a call: both sides hear how (the callee on every session, so ringing stops
/// everywhere), and the record is stored.
fn finish(state: &mut State, call_id: &str, outcome: CallOutcome) -> Vec<Effect> {
    let Some(call) = state.calls.remove(call_id) else {
        return Vec::new();
    };
    state.by_user.remove(&call.caller.user);
    state.by_user.remove(&call.callee);
    let duration_ms = match (call.phase, outcome) {
        (Phase::Active { since, .. }, CallOutcome::Completed | CallOutcome::Failed) => {
            since.elapsed().as_millis() as u64
        }
        _ => 0,
    };
    vec![
        Effect::ToSession(call.caller, ended(call_id, outcome, duration_ms)),
        Effect::ToUser {
            user: call.callee,
            skip: None,
            event: ended(call_id, outcome, duration_ms),
        },
        record(
            call_id,
            call.caller.user,
            call.callee,
            call.media,
            outcome,
            duration_ms,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f5b8a52-9d4e-4c1a-8f7e-3b2a1c0d9e8f";
    const CALL_2: &str = "7c0d6e1f-2a3b-4c5d-8e9f-0a1b2c3d4e5f";

    fn sessions() -> (Session, Session, Session) {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        (
            Session { user: a, conn: 1 },
            Session { user: b, conn: 2 },
            Session { user: b, conn: 3 },
        )
    }

    fn outcome_of(effects: &[Effect]) -> Option<CallOutcome> {
        effects.iter().find_map(|e| match e {
            Effect::Record { outcome, .. } => Some(*outcome),
            _ => None,
        })
    }

    fn ringing(calls: &Calls) -> (Session, Session, Session) {
        let (a, b1, b2) = sessions();
        let effects = calls
            .invite(a, b1.user, ID, CallMedia::Video, true)
            .unwrap();
        assert!(effects.contains(&Effect::StartRingTimer(ID.into())));
        assert!(effects.iter().any(|e| matches!(e,
            Effect::ToUser { user, event: ServerEvent::CallInvite { .. }, .. } if *user == b1.user)));
        assert!(effects.iter().any(|e| matches!(e,
            Effect::ToSession(s, ServerEvent::CallRinging { .. }) if *s == a)));
        (a, b1, b2)
    }

    #[test]
    fn a_session_opened_while_ringing_rings_too() {
        let calls = Calls::default();
        let (a, b1, b2) = sessions();
        // B was offline: no `call_ringing` for A yet.
        let invited = calls
            .invite(a, b1.user, ID, CallMedia::Audio, false)
            .unwrap();
        assert!(
            !invited
                .iter()
                .any(|e| matches!(e, Effect::ToSession(_, ServerEvent::CallRinging { .. })))
        );
        let opened = calls.connected(b2);
        assert!(opened.iter().any(|e| matches!(e,
            Effect::ToSession(s, ServerEvent::CallInvite { media: CallMedia::Audio, from, .. })
                if *s == b2 && *from == a.user.to_string())));
        assert!(opened.iter().any(|e| matches!(e,
            Effect::ToSession(s, ServerEvent::CallRinging { .. }) if *s == a)));
        // A second new session rings as well; A is not told twice.
        let again = calls.connected(b1);
        assert_eq!(again.len(), 1);
        // The caller's own new sessions and anyone else's do not ring.
        assert!(
            calls
                .connected(Session {
                    user: a.user,
                    conn: 9
                })
                .is_empty()
        );
        assert!(
            calls
                .connected(Session {
                    user: Uuid::new_v4(),
                    conn: 8
                })
                .is_empty()
        );
        // Once answered, new sessions of the callee do not ring.
        calls.accept(b2, ID).unwrap();
        assert!(
            calls
                .connected(Session {
                    user: b1.user,
                    conn: 7
                })
                .is_empty()
        );
    }

    #[test]
    fn answered_then_hung_up() {
        let calls = Calls::default();
        let (a, b1, b2) = ringing(&calls);
        let accepted = calls.accept(b1, ID).unwrap();
        assert!(accepted.iter().any(|e| matches!(e,
            Effect::ToSession(s, ServerEvent::CallAccepted { .. }) if *s == a)));
        // The other tab stops ringing.
        assert!(accepted.iter().any(|e| matches!(
            e,
            Effect::ToUser {
                skip: Some(2),
                event: ServerEvent::CallEnded {
                    outcome: CallOutcome::AnsweredElsewhere,
                    ..
                },
                ..
            }
        )));
        // Signals go only between the caller and the answering session.
        let fwd = calls.signal(a, ID, Signal::Offer("v=0".into())).unwrap();
        assert!(
            matches!(&fwd[..], [Effect::ToSession(s, ServerEvent::CallOffer { .. })] if *s == b1)
        );
        let back = calls.signal(b1, ID, Signal::Answer("v=0".into())).unwrap();
        assert!(
            matches!(&back[..], [Effect::ToSession(s, ServerEvent::CallAnswer { .. })] if *s == a)
        );
        assert_eq!(
            calls
                .signal(b2, ID, Signal::Answer("v=0".into()))
                .unwrap_err()
                .code,
            ErrorCode::Forbidden
        );
        assert_eq!(calls.hangup(b2, ID).unwrap_err().code, ErrorCode::Forbidden);
        assert_eq!(calls.accept(b2, ID).unwrap_err().code, ErrorCode::Conflict);
        assert_eq!(calls.decline(b1, ID).unwrap_err().code, ErrorCode::Conflict);
        assert_eq!(calls.cancel(a, ID).unwrap_err().code, ErrorCode::Conflict);
        assert_eq!(
            outcome_of(&calls.hangup(b1, ID).unwrap()),
            Some(CallOutcome::Completed)
        );
        assert!(calls.is_empty());
        assert_eq!(calls.hangup(a, ID).unwrap_err().code, ErrorCode::NotFound);
    }

    #[test]
    fn declined_cancelled_missed() {
        let calls = Calls::default();
        let (a, b1, _) = ringing(&calls);
        assert_eq!(
            calls.decline(a, ID).unwrap_err().code,
            ErrorCode::Forbidden,
            "only the callee declines"
        );
        assert_eq!(
            outcome_of(&calls.decline(b1, ID).unwrap()),
            Some(CallOutcome::Declined)
        );

        let (a, b1, _) = ringing(&calls);
        assert_eq!(
            calls.cancel(b1, ID).unwrap_err().code,
            ErrorCode::Forbidden,
            "only the caller cancels"
        );
        let other_tab_of_caller = Session {
            user: a.user,
            conn: 99,
        };
        assert_eq!(
            calls.cancel(other_tab_of_caller, ID).unwrap_err().code,
            ErrorCode::Forbidden
        );
        assert_eq!(
            outcome_of(&calls.cancel(a, ID).unwrap()),
            Some(CallOutcome::Cancelled)
        );

        let (_, b1, _) = ringing(&calls);
        assert_eq!(
            calls
                .signal(b1, ID, Signal::Answer("x".into()))
                .unwrap_err()
                .code,
            ErrorCode::Conflict,
            "no signals before an answer"
        );
        assert_eq!(
            outcome_of(&calls.ring_timeout(ID)),
            Some(CallOutcome::Missed)
        );
        assert!(
            calls.ring_timeout(ID).is_empty(),
            "a timer for an ended call does nothing"
        );
    }

    #[test]
    fn busy_and_one_call_at_a_time() {
        let calls = Calls::default();
        let (a, b1, _) = ringing(&calls);
        let c = Session {
            user: Uuid::new_v4(),
            conn: 7,
        };
        let other = "0b7a1f3e-5c2d-4e6f-9a8b-1c2d3e4f5a6b";
        let busy = calls
            .invite(c, b1.user, other, CallMedia::Audio, true)
            .unwrap();
        assert_eq!(outcome_of(&busy), Some(CallOutcome::Busy));
        assert!(
            !busy.iter().any(|e| matches!(e, Effect::ToUser { .. })),
            "the busy callee's call goes on undisturbed"
        );
        assert_eq!(
            calls
                .invite(a, c.user, other, CallMedia::Audio, true)
                .unwrap_err()
                .code,
            ErrorCode::Conflict
        );
        assert_eq!(
            calls
                .invite(c, b1.user, ID, CallMedia::Audio, true)
                .unwrap_err()
                .code,
            ErrorCode::Conflict,
            "an id in use"
        );
        assert_eq!(
            calls
                .invite(c, c.user, other, CallMedia::Audio, true)
                .unwrap_err()
                .code,
            ErrorCode::Forbidden
        );
        assert_eq!(
            calls
                .invite(c, b1.user, "not-a-uuid", CallMedia::Audio, true)
                .unwrap_err()
                .code,
            ErrorCode::InvalidField
        );
        assert_eq!(calls.len(), 1);
    }

    #[test]
    fn a_lost_connection_cancels_a_ringing_call_and_pauses_an_answered_one() {
        let calls = Calls::default();
        let (a, _, b2) = ringing(&calls);
        assert!(
            calls.disconnected(b2, false).is_empty(),
            "one of the callee's tabs closing changes nothing"
        );
        assert_eq!(
            outcome_of(&calls.disconnected(a, false)),
            Some(CallOutcome::Cancelled)
        );
        let (a, b1, b2) = ringing(&calls);
        calls.accept(b1, ID).unwrap();
        assert!(
            calls.disconnected(b2, false).is_empty(),
            "a tab that did not answer"
        );
        assert_eq!(
            calls.disconnected(a, false),
            vec![Effect::StartResumeTimer(ID.into(), a)]
        );
        assert_eq!(calls.len(), 1, "the call waits for the caller");
        assert_eq!(
            outcome_of(&calls.resume_timeout(ID, a)),
            Some(CallOutcome::Failed)
        );
        assert!(calls.is_empty());
        // A side signed out (its session ended) will not come back: the call ends at once.
        let (_, b1, _) = ringing(&calls);
        calls.accept(b1, ID).unwrap();
        assert_eq!(
            outcome_of(&calls.disconnected(b1, true)),
            Some(CallOutcome::Failed)
        );
        assert!(calls.is_empty());
    }

    #[test]
    fn a_side_that_comes_back_gets_what_was_signalled_meanwhile() {
        let calls = Calls::default();
        let (a, b1, _) = ringing(&calls);
        calls.accept(b1, ID).unwrap();
        calls.disconnected(a, false);
        // B's ICE restart while A is away is kept, up to a bound.
        for n in 0..KEPT_FOR_AWAY + 6 {
            let sent = calls
                .signal(b1, ID, Signal::Offer(format!("v=0 {n}")))
                .unwrap();
            assert!(sent.is_empty());
        }
        let a2 = Session {
            user: a.user,
            conn: 7,
        };
        let resumed = calls.resume(a2, ID).unwrap();
        assert_eq!(resumed.len(), KEPT_FOR_AWAY);
        // Large descriptions are bounded by their bytes as well.
        calls.disconnected(a2, false);
        let big = "v".repeat(MAX_SDP_BYTES);
        for _ in 0..6 {
            calls.signal(b1, ID, Signal::Offer(big.clone())).unwrap();
        }
        assert_eq!(
            calls.resume(a2, ID).unwrap().len(),
            KEPT_BYTES_FOR_AWAY / MAX_SDP_BYTES
        );
        assert_eq!(
            resumed[0],
            Effect::ToSession(
                a2,
                ServerEvent::CallOffer {
                    call_id: ID.into(),
                    sdp: "v=0 0".into()
                }
            )
        );
        // The new session is the caller's now; the old one is nobody.
        assert!(matches!(
            calls.signal(b1, ID, Signal::Answer("v=0".into())).unwrap()[..],
            [Effect::ToSession(s, _)] if s == a2
        ));
        assert_eq!(
            calls
                .signal(a, ID, Signal::Answer("v=0".into()))
                .unwrap_err()
                .code,
            ErrorCode::Forbidden
        );
        assert!(
            calls.resume_timeout(ID, a).is_empty(),
            "the timer of the old session finds it came back"
        );
        // The callee goes away and comes back on another connection too.
        calls.disconnected(b1, false);
        let b3 = Session {
            user: b1.user,
            conn: 9,
        };
        assert!(calls.resume(b3, ID).unwrap().is_empty());
        assert!(calls.resume_timeout(ID, b1).is_empty());
        assert_eq!(
            outcome_of(&calls.hangup(b3, ID).unwrap()),
            Some(CallOutcome::Completed)
        );
    }

    #[test]
    fn only_the_sides_of_a_call_resume_it() {
        let calls = Calls::default();
        let (a, b1, b2) = ringing(&calls);
        assert_eq!(
            calls.resume(b2, ID).unwrap_err().code,
            ErrorCode::Conflict,
            "nothing to resume before an answer"
        );
        calls.accept(b1, ID).unwrap();
        let stranger = Session {
            user: Uuid::new_v4(),
            conn: 5,
        };
        assert_eq!(
            calls.resume(stranger, ID).unwrap_err().code,
            ErrorCode::Forbidden
        );
        assert_eq!(
            calls.resume(a, "not-a-call").unwrap_err().code,
            ErrorCode::NotFound
        );
        // A second resume timer after a second drop: the first finds nothing to do.
        calls.disconnected(a, false);
        let a2 = Session {
            user: a.user,
            conn: 6,
        };
        calls.resume(a2, ID).unwrap();
        calls.disconnected(a2, false);
        assert!(calls.resume_timeout(ID, a).is_empty());
        assert_eq!(
            outcome_of(&calls.resume_timeout(ID, a2)),
            Some(CallOutcome::Failed)
        );
        assert_eq!(
            calls.resume(a2, ID).unwrap_err().code,
            ErrorCode::NotFound,
            "too late"
        );
    }

    #[test]
    fn a_shutdown_ends_every_call_on_both_sides() {
        let calls = Calls::default();
        let (a, b1, _) = ringing(&calls);
        calls.accept(b1, ID).unwrap();
        calls.disconnected(a, false);
        let (c, d, _) = sessions();
        calls
            .invite(c, d.user, CALL_2, CallMedia::Audio, true)
            .unwrap();
        let effects = calls.end_all();
        assert!(calls.is_empty());
        let records: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Record { outcome, .. } => Some(*outcome),
                _ => None,
            })
            .collect();
        assert_eq!(records, vec![CallOutcome::Failed; 2]);
        for user in [b1.user, d.user] {
            assert!(effects.iter().any(|e| matches!(e,
                Effect::ToUser { user: u, event: ServerEvent::CallEnded { outcome: CallOutcome::Failed, .. }, .. }
                    if *u == user)));
        }
    }

    #[test]
    fn oversized_descriptions_are_refused() {
        let calls = Calls::default();
        let (a, b1, _) = ringing(&calls);
        calls.accept(b1, ID).unwrap();
        let huge = "a".repeat(MAX_SDP_BYTES + 1);
        assert_eq!(
            calls.signal(a, ID, Signal::Offer(huge)).unwrap_err().code,
            ErrorCode::InvalidField
        );
    }
}
