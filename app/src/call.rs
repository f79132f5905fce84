//! Calls in the browser: what the call screen shows ([`CallView`]) and, in the browser
//! only, the [`rtc::Engine`] that owns the `RTCPeerConnection`, the local stream, the
//! ringer and every JavaScript closure, and releases them all in one place
//! ([`rtc::Engine::close`]).
//!
//! Signalling rides the chat socket (`call_*` frames). The callee is the polite peer of
//! perfect negotiation: glare is resolved by the caller ignoring a colliding offer and the
//! callee rolling back. Candidates that arrive before the remote description are kept until
//! it is set. A failed ICE connection is restarted; a call that does not come back within
//! [`RECOVER_MS`] ends.
use leptos::prelude::*;

use crate::chat::Chat;
use crate::i18n::Msg;
use crate::protocol::{CallMedia, CallOutcome, ClientMessage, ServerEvent};

/// How long a broken connection may try to recover before the call ends.
pub const RECOVER_MS: u32 = 20_000;

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

/// A camera or microphone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// `audioinput` or `videoinput`.
    pub kind: String,
    pub id: String,
    pub label: String,
    /// The one in use.
    pub current: bool,
}

/// The call state of the page (a cheap copyable handle, part of [`Chat`]).
#[derive(Clone, Copy)]
pub struct Calls {
    pub view: RwSignal<Option<CallView>>,
    /// The cameras and microphones to switch between during a call.
    pub devices: RwSignal<Vec<Device>>,
    #[cfg(feature = "hydrate")]
    pub local: RwSignal<Option<web_sys::MediaStream>, LocalStorage>,
    #[cfg(feature = "hydrate")]
    pub remote: RwSignal<Option<web_sys::MediaStream>, LocalStorage>,
    #[cfg(feature = "hydrate")]
    engine: StoredValue<Option<rtc::Engine>, LocalStorage>,
}

impl Calls {
    pub fn new() -> Self {
        Self {
            view: RwSignal::new(None),
            devices: RwSignal::new(Vec::new()),
            #[cfg(feature = "hydrate")]
            local: RwSignal::new_local(None),
            #[cfg(feature = "hydrate")]
            remote: RwSignal::new_local(None),
            #[cfg(feature = "hydrate")]
            engine: StoredValue::new_local(None),
        }
    }

    /// The id of the call on screen, unless it has ended.
    pub fn live_call(self) -> Option<String> {
        self.view.with_untracked(|v| {
            v.as_ref()
                .filter(|v| !matches!(v.phase, Phase::Ended(_)))
                .map(|v| v.call_id.clone())
        })
    }

    fn update(self, call_id: &str, f: impl FnOnce(&mut CallView)) {
        self.view.update(|v| {
            if let Some(v) = v.as_mut().filter(|v| v.call_id == call_id) {
                f(v);
            }
        });
    }
}

impl Default for Calls {
    fn default() -> Self {
        Self::new()
    }
}

fn now_ms() -> f64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        0.0
    }
}

impl Chat {
    /// Calls a friend: camera and microphone first (a problem is shown, nothing is sent),
    /// then the invitation.
    pub fn start_call(self, peer: String, media: CallMedia) {
        if self.calls.live_call().is_some() {
            return;
        }
        let call_id = uuid::Uuid::new_v4().to_string();
        self.calls.view.set(Some(CallView::new(
            call_id.clone(),
            peer.clone(),
            media,
            true,
        )));
        #[cfg(feature = "hydrate")]
        rtc::prepare_outgoing(self, call_id, peer, media);
    }

    /// Answers the call ringing on this tab.
    pub fn accept_call(self) {
        let Some(view) = self.calls.view.get_untracked() else {
            return;
        };
        if view.phase != Phase::Incoming {
            return;
        }
        self.calls
            .update(&view.call_id, |v| v.phase = Phase::Connecting);
        #[cfg(feature = "hydrate")]
        rtc::answer(self, view.call_id, view.media);
    }

    /// Declines, cancels or hangs up, whichever fits where the call stands.
    pub fn hang_up(self) {
        let Some(view) = self.calls.view.get_untracked() else {
            return;
        };
        let call_id = view.call_id.clone();
        let (message, outcome) = match view.phase {
            Phase::Ended(_) => {
                self.calls.view.set(None);
                return;
            }
            Phase::Incoming => (
                ClientMessage::CallDecline {
                    call_id: call_id.clone(),
                },
                CallOutcome::Declined,
            ),
            Phase::Outgoing | Phase::Ringing => (
                ClientMessage::CallCancel {
                    call_id: call_id.clone(),
                },
                CallOutcome::Cancelled,
            ),
            _ => (
                ClientMessage::CallHangup {
                    call_id: call_id.clone(),
                },
                CallOutcome::Completed,
            ),
        };
        self.transmit(&message);
        let duration = view
            .started_at
            .map(|s| (now_ms() - s).max(0.0) as u64)
            .unwrap_or(0);
        self.end_call(&call_id, outcome, duration);
    }

    pub fn toggle_mute(self) {
        let Some(view) = self.calls.view.get_untracked() else {
            return;
        };
        let muted = !view.muted;
        self.calls.update(&view.call_id, |v| v.muted = muted);
        #[cfg(feature = "hydrate")]
        rtc::set_muted(self, muted);
    }

    pub fn toggle_camera(self) {
        let Some(view) = self.calls.view.get_untracked() else {
            return;
        };
        let off = !view.camera_off;
        self.calls.update(&view.call_id, |v| v.camera_off = off);
        #[cfg(feature = "hydrate")]
        rtc::set_camera(self, off);
    }

    /// Uses another camera or microphone (`kind` is `audioinput` or `videoinput`).
    pub fn switch_device(self, kind: String, id: String) {
        #[cfg(feature = "hydrate")]
        rtc::switch_device(self, kind, id);
        #[cfg(not(feature = "hydrate"))]
        let _ = (kind, id);
    }

    /// Ends the call on screen locally: media released, the outcome shown for a moment.
    fn end_call(self, call_id: &str, outcome: CallOutcome, duration_ms: u64) {
        #[cfg(feature = "hydrate")]
        rtc::release(self);
        self.calls.update(call_id, |v| {
            if !matches!(v.phase, Phase::Ended(_)) {
                v.phase = Phase::Ended(outcome);
                v.duration_ms = duration_ms;
            }
        });
        #[cfg(feature = "hydrate")]
        {
            let call_id = call_id.to_owned();
            leptos::task::spawn_local(async move {
                crate::chat::sleep_ms(3000).await;
                self.calls.view.update(|v| {
                    if v.as_ref()
                        .is_some_and(|v| v.call_id == call_id && matches!(v.phase, Phase::Ended(_)))
                    {
                        *v = None;
                    }
                });
            });
        }
    }

    /// Applies a `call_*` event from the relay.
    pub(crate) fn apply_call(self, event: ServerEvent) {
        match event {
            ServerEvent::CallInvite {
                call_id,
                from,
                media,
            } => {
                if self.calls.live_call().is_some() {
                    // Another call is on screen on this tab (the server lets a user be in
                    // one call at a time, so this is a stale view): say no.
                    self.transmit(&ClientMessage::CallDecline { call_id });
                    return;
                }
                self.calls
                    .view
                    .set(Some(CallView::new(call_id, from, media, false)));
                #[cfg(feature = "hydrate")]
                rtc::ring(self);
            }
            ServerEvent::CallRinging { call_id } => self.calls.update(&call_id, |v| {
                if v.phase == Phase::Outgoing {
                    v.phase = Phase::Ringing;
                }
            }),
            ServerEvent::CallAccepted { call_id } => {
                self.calls.update(&call_id, |v| v.phase = Phase::Connecting);
                #[cfg(feature = "hydrate")]
                rtc::connect_caller(self, call_id);
            }
            ServerEvent::CallEnded {
                call_id,
                outcome,
                duration_ms,
            } => self.end_call(&call_id, outcome, duration_ms),
            #[cfg(feature = "hydrate")]
            ServerEvent::CallOffer { call_id, sdp } => rtc::description(self, call_id, true, sdp),
            #[cfg(feature = "hydrate")]
            ServerEvent::CallAnswer { call_id, sdp } => rtc::description(self, call_id, false, sdp),
            #[cfg(feature = "hydrate")]
            ServerEvent::CallCandidate { call_id, candidate } => {
                rtc::candidate(self, call_id, candidate)
            }
            _ => {}
        }
    }

    /// A refused call frame (its `client_id` is the call id): true when it was about the
    /// call on screen. A late signal for a call that has just ended is expected and quiet.
    pub(crate) fn call_refused(self, call_id: &str, code: crate::error::ErrorCode) -> bool {
        let phase = self
            .calls
            .view
            .with_untracked(|v| v.as_ref().filter(|v| v.call_id == call_id).map(|v| v.phase));
        match phase {
            None => false,
            Some(Phase::Ended(_)) => true,
            Some(_) => {
                let problem = match code {
                    crate::error::ErrorCode::NotFriends => Msg::ErrNotFriends,
                    _ => Msg::CallNotPossible,
                };
                self.calls.update(call_id, |v| v.error = Some(problem));
                self.end_call(call_id, CallOutcome::Failed, 0);
                true
            }
        }
    }
}

#[cfg(feature = "hydrate")]
pub mod rtc {
    //! The WebRTC side, straight on `web-sys`.
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    use js_sys::{Array, Promise, Reflect};
    use leptos::prelude::*;
    use leptos::task::spawn_local;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{
        AudioContext, MediaStream, MediaStreamConstraints, MediaStreamTrack, RtcConfiguration,
        RtcIceCandidateInit, RtcIceConnectionState, RtcIceServer, RtcPeerConnection,
        RtcPeerConnectionIceEvent, RtcRtpSender, RtcSdpType, RtcSessionDescriptionInit,
        RtcSignalingState, RtcTrackEvent,
    };

    use super::{CallStats, Phase, RECOVER_MS};
    use crate::chat::{Chat, sleep_ms};
    use crate::i18n::Msg;
    use crate::protocol::{CallMedia, ClientMessage, IceCandidate};

    // web-sys lacks the argument-less forms of these two; bind them here on a local view
    // of the same JavaScript class.
    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_name = RTCPeerConnection)]
        type PeerConnectionExt;
        /// `pc.setLocalDescription()`: the browser creates the offer or answer that fits
        /// the signalling state (what perfect negotiation relies on).
        #[wasm_bindgen(method, js_name = setLocalDescription)]
        fn set_local_description(this: &PeerConnectionExt) -> Promise;
        /// `pc.restartIce()`: new ICE credentials on the next negotiation.
        #[wasm_bindgen(method, js_name = restartIce)]
        fn restart_ice(this: &PeerConnectionExt);
    }

    fn set_local_description_implicit(pc: &RtcPeerConnection) -> Promise {
        pc.unchecked_ref::<PeerConnectionExt>()
            .set_local_description()
    }

    fn restart_ice(pc: &RtcPeerConnection) {
        pc.unchecked_ref::<PeerConnectionExt>().restart_ice();
    }

    /// Everything one call holds in the browser.
    pub struct Engine {
        call_id: String,
        pc: Option<RtcPeerConnection>,
        local: Option<MediaStream>,
        remote: MediaStream,
        polite: bool,
        making_offer: Rc<Cell<bool>>,
        ignore_offer: Rc<Cell<bool>>,
        remote_set: Rc<Cell<bool>>,
        tracks_added: Rc<Cell<bool>>,
        pending: Rc<RefCell<Vec<RtcIceCandidateInit>>>,
        ice: Array,
        ringer: Option<AudioContext>,
        closures: Vec<Closure<dyn FnMut(JsValue)>>,
        /// Set when the call ends: timers and pollers stop.
        over: Rc<Cell<bool>>,
    }

    impl Engine {
        fn new(call_id: String, polite: bool) -> Self {
            Self {
                call_id,
                pc: None,
                local: None,
                remote: MediaStream::new().unwrap_or_else(|_| JsValue::NULL.unchecked_into()),
                polite,
                making_offer: Rc::default(),
                ignore_offer: Rc::default(),
                remote_set: Rc::default(),
                tracks_added: Rc::default(),
                pending: Rc::default(),
                ice: Array::new(),
                ringer: None,
                closures: Vec::new(),
                over: Rc::default(),
            }
        }

        /// Releases everything: the connection, the camera and microphone, the ringer and
        /// the closures the browser held.
        pub fn close(&mut self) {
            self.over.set(true);
            if let Some(pc) = self.pc.take() {
                pc.set_onicecandidate(None);
                pc.set_ontrack(None);
                pc.set_onnegotiationneeded(None);
                pc.set_oniceconnectionstatechange(None);
                pc.close();
            }
            if let Some(local) = self.local.take() {
                stop_tracks(&local);
            }
            stop_tracks(&self.remote);
            if let Some(ringer) = self.ringer.take() {
                let _ = ringer.close();
            }
            self.closures.clear();
        }
    }

    fn stop_tracks(stream: &MediaStream) {
        for track in stream.get_tracks().iter() {
            if let Ok(track) = track.dyn_into::<MediaStreamTrack>() {
                track.stop();
            }
        }
    }

    fn with_engine<T>(chat: Chat, call_id: &str, f: impl FnOnce(&mut Engine) -> T) -> Option<T> {
        chat.calls
            .engine
            .try_update_value(|e| e.as_mut().filter(|e| e.call_id == call_id).map(f))
            .flatten()
    }

    /// Ends and forgets the engine (idempotent).
    pub fn release(chat: Chat) {
        chat.calls.engine.update_value(|e| {
            if let Some(mut engine) = e.take() {
                engine.close();
            }
        });
        chat.calls.local.set(None);
        chat.calls.remote.set(None);
    }

    /// The ICE servers the server hands out, as `RTCIceServer`s.
    async fn ice_servers() -> Array {
        let list = Array::new();
        if let Ok(servers) = crate::api::call::ice_servers().await {
            for s in servers {
                let server = RtcIceServer::new();
                let urls = Array::new();
                for u in &s.urls {
                    urls.push(&JsValue::from_str(u));
                }
                server.set_urls(&urls);
                if let Some(u) = &s.username {
                    server.set_username(u);
                }
                if let Some(c) = &s.credential {
                    server.set_credential(c);
                }
                list.push(&server);
            }
        }
        list
    }

    /// The camera and microphone (or the microphone alone), or why not in words.
    async fn user_media(audio: bool, video: bool) -> Result<MediaStream, Msg> {
        let devices = web_sys::window()
            .and_then(|w| w.navigator().media_devices().ok())
            .ok_or(Msg::NoDevice)?;
        let constraints = MediaStreamConstraints::new();
        constraints.set_audio(&JsValue::from_bool(audio));
        constraints.set_video(&JsValue::from_bool(video));
        let promise = devices
            .get_user_media_with_constraints(&constraints)
            .map_err(|_| Msg::DeviceError)?;
        match JsFuture::from(promise).await {
            Ok(stream) => stream
                .dyn_into::<MediaStream>()
                .map_err(|_| Msg::DeviceError),
            Err(err) => {
                let name = Reflect::get(&err, &"name".into())
                    .ok()
                    .and_then(|n| n.as_string())
                    .unwrap_or_default();
                Err(match name.as_str() {
                    "NotAllowedError" | "SecurityError" => Msg::DeviceDenied,
                    "NotFoundError" | "OverconstrainedError" => Msg::NoDevice,
                    _ => Msg::DeviceError,
                })
            }
        }
    }

    fn fail(chat: Chat, call_id: &str, problem: Msg) {
        chat.calls.update(call_id, |v| v.error = Some(problem));
    }

    /// The caller: media, then the invitation (the connection is made once answered).
    pub fn prepare_outgoing(chat: Chat, call_id: String, peer: String, media: CallMedia) {
        spawn_local(async move {
            let stream = match user_media(true, media == CallMedia::Video).await {
                Ok(stream) => stream,
                Err(problem) => {
                    fail(chat, &call_id, problem);
                    chat.end_call(&call_id, crate::protocol::CallOutcome::Failed, 0);
                    return;
                }
            };
            let ice = ice_servers().await;
            if chat.calls.live_call().as_deref() != Some(call_id.as_str()) {
                stop_tracks(&stream);
                return;
            }
            let mut engine = Engine::new(call_id.clone(), false);
            engine.local = Some(stream.clone());
            engine.ice = ice;
            chat.calls.engine.set_value(Some(engine));
            chat.calls.local.set(Some(stream));
            chat.transmit(&ClientMessage::CallInvite {
                call_id,
                to: crate::protocol::Peer::User(peer),
                media,
            });
        });
    }

    /// The callee's ringer: a soft two-tone pattern until answered or ended.
    pub fn ring(chat: Chat) {
        let Some(call_id) = chat.calls.live_call() else {
            return;
        };
        let mut engine = Engine::new(call_id, true);
        engine.ringer = ringer();
        chat.calls.engine.update_value(|e| {
            if let Some(mut old) = e.take() {
                old.close();
            }
            *e = Some(engine);
        });
    }

    fn ringer() -> Option<AudioContext> {
        let ctx = AudioContext::new().ok()?;
        let osc = ctx.create_oscillator().ok()?;
        let gain = ctx.create_gain().ok()?;
        osc.frequency().set_value(440.0);
        let t = ctx.current_time();
        gain.gain().set_value(0.0);
        for i in 0..40 {
            let start = t + f64::from(i) * 2.0;
            let _ = gain.gain().set_value_at_time(0.08, start);
            let _ = gain.gain().set_value_at_time(0.0, start + 0.8);
        }
        osc.connect_with_audio_node(&gain).ok()?;
        gain.connect_with_audio_node(&ctx.destination()).ok()?;
        osc.start().ok()?;
        let _ = ctx.resume();
        Some(ctx)
    }

    /// The callee answers: media, a polite connection, then `call_accept` (the caller
    /// sends the offer).
    pub fn answer(chat: Chat, call_id: String, media: CallMedia) {
        with_engine(chat, &call_id, |e| {
            if let Some(r) = e.ringer.take() {
                let _ = r.close();
            }
        });
        spawn_local(async move {
            let stream = match user_media(true, media == CallMedia::Video).await {
                Ok(stream) => stream,
                Err(problem) => {
                    fail(chat, &call_id, problem);
                    chat.transmit(&ClientMessage::CallDecline {
                        call_id: call_id.clone(),
                    });
                    chat.end_call(&call_id, crate::protocol::CallOutcome::Failed, 0);
                    return;
                }
            };
            let ice = ice_servers().await;
            let ok = with_engine(chat, &call_id, |e| {
                e.local = Some(stream.clone());
                e.ice = ice;
                build_connection(chat, e)
            });
            if ok != Some(true) {
                stop_tracks(&stream);
                return;
            }
            chat.calls.local.set(Some(stream));
            chat.transmit(&ClientMessage::CallAccept { call_id });
        });
    }

    /// The caller, once answered: its connection with its tracks (which starts the
    /// negotiation).
    pub fn connect_caller(chat: Chat, call_id: String) {
        with_engine(chat, &call_id, |e| {
            if build_connection(chat, e) {
                add_local_tracks(e);
            }
        });
    }

    fn add_local_tracks(e: &mut Engine) {
        if e.tracks_added.replace(true) {
            return;
        }
        if let (Some(pc), Some(local)) = (&e.pc, &e.local) {
            for track in local.get_tracks().iter() {
                if let Ok(track) = track.dyn_into::<MediaStreamTrack>() {
                    pc.add_track_0(&track, local);
                }
            }
        }
    }

    /// Creates the peer connection and wires its events.
    fn build_connection(chat: Chat, e: &mut Engine) -> bool {
        let config = RtcConfiguration::new();
        config.set_ice_servers(&e.ice);
        if let Some(policy) = forced_policy() {
            config.set_ice_transport_policy(policy);
        }
        let Ok(pc) = RtcPeerConnection::new_with_configuration(&config) else {
            fail(chat, &e.call_id, Msg::CallNotPossible);
            return false;
        };
        let call_id = e.call_id.clone();

        let on_candidate = {
            let call_id = call_id.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
                let Ok(ev) = ev.dyn_into::<RtcPeerConnectionIceEvent>() else {
                    return;
                };
                if let Some(c) = ev.candidate() {
                    chat.transmit(&ClientMessage::CallCandidate {
                        call_id: call_id.clone(),
                        candidate: IceCandidate {
                            candidate: c.candidate(),
                            sdp_mid: c.sdp_mid(),
                            sdp_m_line_index: c.sdp_m_line_index(),
                        },
                    });
                }
            })
        };
        pc.set_onicecandidate(Some(on_candidate.as_ref().unchecked_ref()));

        let on_track = {
            let remote = e.remote.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
                if let Ok(ev) = ev.dyn_into::<RtcTrackEvent>() {
                    remote.add_track(&ev.track());
                    // Each new track reloads the element, so it shows the video track
                    // even when the audio track came first.
                    chat.calls.remote.set(Some(remote.clone()));
                }
            })
        };
        pc.set_ontrack(Some(on_track.as_ref().unchecked_ref()));

        let on_negotiation = {
            let (pc, call_id, making_offer) = (pc.clone(), call_id.clone(), e.making_offer.clone());
            Closure::<dyn FnMut(JsValue)>::new(move |_| {
                let (pc, call_id, making_offer) =
                    (pc.clone(), call_id.clone(), making_offer.clone());
                spawn_local(async move {
                    making_offer.set(true);
                    let made = JsFuture::from(set_local_description_implicit(&pc)).await;
                    if made.is_ok()
                        && let Some(desc) = pc.local_description()
                    {
                        chat.transmit(&ClientMessage::CallOffer {
                            call_id,
                            sdp: desc.sdp(),
                        });
                    }
                    making_offer.set(false);
                });
            })
        };
        pc.set_onnegotiationneeded(Some(on_negotiation.as_ref().unchecked_ref()));

        let on_ice_state = {
            let (pc, call_id, over) = (pc.clone(), call_id.clone(), e.over.clone());
            let broken_since: Rc<Cell<Option<f64>>> = Rc::default();
            Closure::<dyn FnMut(JsValue)>::new(move |_| match pc.ice_connection_state() {
                RtcIceConnectionState::Connected | RtcIceConnectionState::Completed => {
                    broken_since.set(None);
                    chat.calls.update(&call_id, |v| {
                        v.phase = Phase::Active;
                        v.started_at.get_or_insert_with(js_sys::Date::now);
                    });
                    list_devices(chat);
                }
                RtcIceConnectionState::Disconnected | RtcIceConnectionState::Failed => {
                    chat.calls.update(&call_id, |v| {
                        if v.phase == Phase::Active {
                            v.phase = Phase::Reconnecting;
                        }
                    });
                    if pc.ice_connection_state() == RtcIceConnectionState::Failed {
                        restart_ice(&pc);
                    }
                    if broken_since.get().is_none() {
                        let since = js_sys::Date::now();
                        broken_since.set(Some(since));
                        let (over, broken_since) = (over.clone(), broken_since.clone());
                        spawn_local(async move {
                            sleep_ms(RECOVER_MS).await;
                            // Still this same break (not one that healed and came again).
                            if !over.get() && broken_since.get() == Some(since) {
                                chat.hang_up();
                            }
                        });
                    }
                }
                _ => {}
            })
        };
        pc.set_oniceconnectionstatechange(Some(on_ice_state.as_ref().unchecked_ref()));

        e.closures
            .extend([on_candidate, on_track, on_negotiation, on_ice_state]);
        e.pc = Some(pc.clone());
        poll_stats(chat, call_id, pc, e.over.clone());
        true
    }

    /// `localStorage["qc.ice_policy"] = "relay"` forces TURN (to check a TURN set-up).
    fn forced_policy() -> Option<web_sys::RtcIceTransportPolicy> {
        let value = web_sys::window()?
            .local_storage()
            .ok()??
            .get_item("qc.ice_policy")
            .ok()??;
        (value == "relay").then_some(web_sys::RtcIceTransportPolicy::Relay)
    }

    /// A description from the other side (perfect negotiation).
    pub fn description(chat: Chat, call_id: String, offer: bool, sdp: String) {
        let Some((pc, polite, making_offer, ignore_offer, remote_set, pending)) =
            with_engine(chat, &call_id, |e| {
                e.pc.clone().map(|pc| {
                    (
                        pc,
                        e.polite,
                        e.making_offer.clone(),
                        e.ignore_offer.clone(),
                        e.remote_set.clone(),
                        e.pending.clone(),
                    )
                })
            })
            .flatten()
        else {
            return;
        };
        let collision =
            offer && (making_offer.get() || pc.signaling_state() != RtcSignalingState::Stable);
        ignore_offer.set(!polite && collision);
        if ignore_offer.get() {
            return;
        }
        spawn_local(async move {
            let desc = RtcSessionDescriptionInit::new(if offer {
                RtcSdpType::Offer
            } else {
                RtcSdpType::Answer
            });
            desc.set_sdp(&sdp);
            if JsFuture::from(pc.set_remote_description(&desc))
                .await
                .is_err()
            {
                return;
            }
            remote_set.set(true);
            let waiting: Vec<_> = pending.borrow_mut().drain(..).collect();
            for c in waiting {
                let _ =
                    JsFuture::from(pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&c)))
                        .await;
            }
            if offer {
                // The callee's tracks join in its first answer.
                with_engine(chat, &call_id, add_local_tracks);
                if JsFuture::from(set_local_description_implicit(&pc))
                    .await
                    .is_ok()
                    && let Some(answer) = pc.local_description()
                {
                    chat.transmit(&ClientMessage::CallAnswer {
                        call_id,
                        sdp: answer.sdp(),
                    });
                }
            }
        });
    }

    /// A candidate from the other side; kept until the remote description is set.
    pub fn candidate(chat: Chat, call_id: String, c: IceCandidate) {
        let init = RtcIceCandidateInit::new(&c.candidate);
        init.set_sdp_mid(c.sdp_mid.as_deref());
        init.set_sdp_m_line_index(c.sdp_m_line_index);
        let ready = with_engine(chat, &call_id, |e| {
            if e.remote_set.get() {
                e.pc.clone()
            } else {
                e.pending.borrow_mut().push(init.clone());
                None
            }
        })
        .flatten();
        if let Some(pc) = ready {
            spawn_local(async move {
                let _ = JsFuture::from(
                    pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init)),
                )
                .await;
            });
        }
    }

    /// The live call's id, connection and local stream, once connected.
    fn live_media(chat: Chat) -> Option<(String, RtcPeerConnection, MediaStream)> {
        let call_id = chat.calls.live_call()?;
        let (pc, local) =
            with_engine(chat, &call_id, |e| e.pc.clone().zip(e.local.clone())).flatten()?;
        Some((call_id, pc, local))
    }

    /// Muted, the microphone is disabled and its sender sends nothing (the other side's
    /// audio packets stop); unmuted, the same track goes out again.
    pub fn set_muted(chat: Chat, muted: bool) {
        let Some((_, pc, local)) = live_media(chat) else {
            return;
        };
        let Ok(track) = local
            .get_audio_tracks()
            .get(0)
            .dyn_into::<MediaStreamTrack>()
        else {
            return;
        };
        track.set_enabled(!muted);
        if let Some(sender) = sender_of(&pc, "audio") {
            let _ = Reflect::set(&sender, &"__qc_kind".into(), &"audio".into());
            spawn_local(async move {
                let _ =
                    JsFuture::from(sender.replace_track(if muted { None } else { Some(&track) }))
                        .await;
            });
        }
    }

    /// The sender of `kind` ("audio" or "video"), also while it sends nothing.
    fn sender_of(pc: &RtcPeerConnection, kind: &str) -> Option<RtcRtpSender> {
        pc.get_senders()
            .iter()
            .filter_map(|s| s.dyn_into::<RtcRtpSender>().ok())
            .find(|s| {
                s.track().is_some_and(|t| t.kind() == kind)
                    || Reflect::get(s, &"__qc_kind".into())
                        .ok()
                        .and_then(|v| v.as_string())
                        .as_deref()
                        == Some(kind)
            })
    }

    /// Camera off stops the camera (its light goes out) and sends no video; on starts it
    /// again in the same sender.
    pub fn set_camera(chat: Chat, off: bool) {
        let Some((_, pc, local)) = live_media(chat) else {
            return;
        };
        spawn_local(async move {
            let Some(sender) = sender_of(&pc, "video") else {
                return;
            };
            let _ = Reflect::set(&sender, &"__qc_kind".into(), &"video".into());
            if off {
                let _ = JsFuture::from(sender.replace_track(None)).await;
                for t in local.get_video_tracks().iter() {
                    if let Ok(t) = t.dyn_into::<MediaStreamTrack>() {
                        t.stop();
                        local.remove_track(&t);
                    }
                }
            } else if let Ok(stream) = user_media(false, true).await {
                if let Ok(track) = stream
                    .get_video_tracks()
                    .get(0)
                    .dyn_into::<MediaStreamTrack>()
                {
                    let _ = JsFuture::from(sender.replace_track(Some(&track))).await;
                    local.add_track(&track);
                }
                chat.calls.local.set(Some(local.clone()));
            }
        });
    }

    /// Lists the cameras and microphones, marking the ones the call uses.
    pub fn list_devices(chat: Chat) {
        spawn_local(async move {
            let Some(devices) = web_sys::window().and_then(|w| w.navigator().media_devices().ok())
            else {
                return;
            };
            let Ok(promise) = devices.enumerate_devices() else {
                return;
            };
            let Ok(list) = JsFuture::from(promise).await else {
                return;
            };
            let in_use: Vec<String> = chat
                .calls
                .local
                .get_untracked()
                .map(|l| {
                    l.get_tracks()
                        .iter()
                        .filter_map(|t| t.dyn_into::<MediaStreamTrack>().ok())
                        .filter_map(|t| {
                            let settings = t.get_settings();
                            Reflect::get(&settings, &"deviceId".into())
                                .ok()?
                                .as_string()
                        })
                        .collect()
                })
                .unwrap_or_default();
            let found: Vec<super::Device> = Array::from(&list)
                .iter()
                .filter_map(|d| {
                    let kind = text(&d, "kind");
                    let id = text(&d, "deviceId");
                    (matches!(kind.as_str(), "audioinput" | "videoinput") && !id.is_empty()).then(
                        || super::Device {
                            current: in_use.contains(&id),
                            label: text(&d, "label"),
                            kind,
                            id,
                        },
                    )
                })
                .collect();
            chat.calls.devices.set(found);
        });
    }

    /// Replaces the microphone or camera track in the call and in the self-view.
    pub fn switch_device(chat: Chat, kind: String, id: String) {
        let Some((call_id, pc, local)) = live_media(chat) else {
            return;
        };
        let (muted, camera_off) = chat
            .calls
            .view
            .with_untracked(|v| v.as_ref().map(|v| (v.muted, v.camera_off)))
            .unwrap_or_default();
        spawn_local(async move {
            let audio = kind == "audioinput";
            let Some(devices) = web_sys::window().and_then(|w| w.navigator().media_devices().ok())
            else {
                return;
            };
            let exact = js_sys::Object::new();
            let _ = Reflect::set(&exact, &"exact".into(), &id.as_str().into());
            let wanted = js_sys::Object::new();
            let _ = Reflect::set(&wanted, &"deviceId".into(), &exact);
            let constraints = MediaStreamConstraints::new();
            constraints.set_audio(&if audio {
                wanted.clone().into()
            } else {
                JsValue::FALSE
            });
            constraints.set_video(&if audio { JsValue::FALSE } else { wanted.into() });
            let Ok(promise) = devices.get_user_media_with_constraints(&constraints) else {
                return;
            };
            let Ok(stream) = JsFuture::from(promise)
                .await
                .and_then(|s| s.dyn_into::<MediaStream>())
            else {
                fail(chat, &call_id, Msg::DeviceError);
                return;
            };
            let Ok(track) = stream.get_tracks().get(0).dyn_into::<MediaStreamTrack>() else {
                return;
            };
            let (old, label) = if audio {
                (local.get_audio_tracks(), "audio")
            } else {
                (local.get_video_tracks(), "video")
            };
            for t in old.iter() {
                if let Ok(t) = t.dyn_into::<MediaStreamTrack>() {
                    t.stop();
                    local.remove_track(&t);
                }
            }
            track.set_enabled(!(audio && muted));
            local.add_track(&track);
            let sending = if audio { !muted } else { !camera_off };
            if sending && let Some(sender) = sender_of(&pc, label) {
                let _ = Reflect::set(&sender, &"__qc_kind".into(), &label.into());
                let _ = JsFuture::from(sender.replace_track(Some(&track))).await;
            }
            chat.calls.local.set(Some(local));
            list_devices(chat);
        });
    }

    fn number(stat: &JsValue, key: &str) -> Option<f64> {
        Reflect::get(stat, &key.into()).ok()?.as_f64()
    }

    fn text(stat: &JsValue, key: &str) -> String {
        Reflect::get(stat, &key.into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    }

    /// Reads the connection's statistics every second into the view (the quality
    /// indicator, and the figures the call screen exposes as data attributes).
    fn poll_stats(chat: Chat, call_id: String, pc: RtcPeerConnection, over: Rc<Cell<bool>>) {
        spawn_local(async move {
            let (mut lost0, mut recv0) = (0.0, 0.0);
            while !over.get() {
                sleep_ms(1000).await;
                if over.get() {
                    break;
                }
                let Ok(report) = JsFuture::from(pc.get_stats()).await else {
                    continue;
                };
                let mut stats = CallStats::default();
                let (mut lost, mut received) = (0.0, 0.0);
                let mut local_candidate = String::new();
                let mut candidates = std::collections::HashMap::new();
                if let Ok(Some(entries)) = js_sys::try_iter(&report) {
                    for entry in entries.flatten() {
                        let stat = Array::from(&entry).get(1);
                        match text(&stat, "type").as_str() {
                            "inbound-rtp" => {
                                lost += number(&stat, "packetsLost").unwrap_or(0.0);
                                received += number(&stat, "packetsReceived").unwrap_or(0.0);
                                if text(&stat, "kind") == "video" {
                                    stats.frames_decoded +=
                                        number(&stat, "framesDecoded").unwrap_or(0.0) as u64;
                                } else {
                                    stats.audio_packets +=
                                        number(&stat, "packetsReceived").unwrap_or(0.0) as u64;
                                    stats.audio_energy +=
                                        number(&stat, "totalAudioEnergy").unwrap_or(0.0);
                                }
                            }
                            "candidate-pair"
                                if Reflect::get(&stat, &"nominated".into())
                                    .is_ok_and(|v| v.is_truthy())
                                    && text(&stat, "state") == "succeeded" =>
                            {
                                stats.rtt_ms =
                                    number(&stat, "currentRoundTripTime").map(|s| s * 1000.0);
                                local_candidate = text(&stat, "localCandidateId");
                            }
                            "local-candidate" => {
                                candidates.insert(text(&stat, "id"), text(&stat, "candidateType"));
                            }
                            _ => {}
                        }
                    }
                }
                stats.candidate_type = candidates.remove(&local_candidate).unwrap_or_default();
                let (dl, dr) = (lost - lost0, received - recv0);
                stats.loss_pct = if dl + dr > 0.0 {
                    (dl.max(0.0) / (dl + dr)) * 100.0
                } else {
                    0.0
                };
                (lost0, recv0) = (lost, received);
                chat.calls.update(&call_id, |v| v.stats = stats);
            }
        });
    }
}
