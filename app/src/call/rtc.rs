//! The browser driver of the calls: carries out the state machine's [`Effect`]s straight on
//! `web-sys` and reports back what the browser did as [`Input`]s. It decides nothing: which
//! frame to send, whether to ignore an offer, when to give up are the state's.
use std::cell::Cell;
use std::rc::Rc;

use js_sys::{Array, Promise, Reflect};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{
    AudioContext, MediaDevices, MediaStream, MediaStreamConstraints, MediaStreamTrack,
    RtcConfiguration, RtcIceCandidateInit, RtcIceConnectionState, RtcIceServer, RtcPeerConnection,
    RtcPeerConnectionIceEvent, RtcRtpSender, RtcSdpType, RtcSessionDescriptionInit,
    RtcSignalingState, RtcTrackEvent,
};

use super::state::{CallStats, ENDED_SHOWN_MS, Effect, Ice, Input, RECOVER_MS};
use super::{Calls, Device};
use crate::clock::sleep;
use crate::i18n::Msg;
use crate::js_error::{JsError, JsResult, cast, or_warn, settle};
use crate::protocol::IceCandidate;

// web-sys lacks the argument-less forms of these two; bind them here on a local view of
// the same JavaScript class.
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = RTCPeerConnection)]
    type PeerConnectionExt;
    /// `pc.setLocalDescription()`: the browser creates the offer or answer that fits the
    /// signalling state (what perfect negotiation relies on).
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

/// Everything one call holds in the browser.
pub struct Engine {
    call_id: String,
    pc: Option<RtcPeerConnection>,
    local: Option<MediaStream>,
    remote: Option<MediaStream>,
    tracks_added: bool,
    ice: Array,
    ringer: Option<AudioContext>,
    closures: Vec<Closure<dyn FnMut(JsValue)>>,
    /// Set when the call ends: pollers stop.
    over: Rc<Cell<bool>>,
}

impl Engine {
    fn new(call_id: String) -> Self {
        Self {
            call_id,
            pc: None,
            local: None,
            remote: None,
            tracks_added: false,
            ice: Array::new(),
            ringer: None,
            closures: Vec::new(),
            over: Rc::default(),
        }
    }

    fn stop_ringing(&mut self) {
        if let Some(ringer) = self.ringer.take() {
            or_warn(ringer.close().map_err(JsError::from), "stopping the ringer");
        }
    }

    /// Releases everything: the connection, the camera and microphone, the ringer and the
    /// closures the browser held.
    fn close(&mut self) {
        self.over.set(true);
        if let Some(pc) = self.pc.take() {
            pc.set_onicecandidate(None);
            pc.set_ontrack(None);
            pc.set_onnegotiationneeded(None);
            pc.set_oniceconnectionstatechange(None);
            pc.close();
        }
        for stream in [self.local.take(), self.remote.take()]
            .into_iter()
            .flatten()
        {
            stop_tracks(&stream);
        }
        self.stop_ringing();
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

fn with_engine<T>(calls: Calls, call_id: &str, f: impl FnOnce(&mut Engine) -> T) -> Option<T> {
    calls
        .engine
        .try_update_value(|e| e.as_mut().filter(|e| e.call_id == call_id).map(f))
        .flatten()
}

/// Feeds an input later, after the effects of this turn have run.
fn later(calls: Calls, input: Input) {
    spawn_local(async move { calls.input(input) });
}

/// What the engine is asked to do.
pub enum Job {
    Effect(Effect),
    /// An offer or answer from the other side.
    RemoteDescription {
        call_id: String,
        offer: bool,
        sdp: String,
    },
    /// Another camera or microphone (`kind` is `audioinput` or `videoinput`).
    SwitchDevice {
        kind: String,
        id: String,
    },
}

/// Does one job. The entry to this module's code: with `--split` it is a chunk of its own.
#[leptos::lazy]
pub fn run(calls: Calls, job: Job) {
    match job {
        Job::Effect(effect) => carry_out(calls, effect),
        Job::RemoteDescription {
            call_id,
            offer,
            sdp,
        } => remote_description(calls, call_id, offer, sdp),
        Job::SwitchDevice { kind, id } => switch_device(calls, kind, id),
    }
}

fn carry_out(calls: Calls, effect: Effect) {
    match effect {
        Effect::Prepare { call_id } => {
            release(calls);
            calls.engine.set_value(Some(Engine::new(call_id)));
        }
        Effect::GetMedia { call_id, video } => get_media(calls, call_id, video),
        Effect::Ring => {
            if let Some(call_id) = calls.live_call() {
                with_engine(calls, &call_id, |e| e.ringer = ringer());
            }
        }
        Effect::StopRing => {
            if let Some(call_id) = calls.live_call() {
                with_engine(calls, &call_id, Engine::stop_ringing);
            }
        }
        Effect::Connect {
            call_id,
            add_tracks,
        } => {
            let built = with_engine(calls, &call_id, |e| {
                let built = build_connection(calls, e);
                if built.is_ok() && add_tracks {
                    add_local_tracks(e);
                }
                built
            });
            match built {
                Some(Ok(())) => later(calls, Input::ConnectionReady { call_id }),
                Some(Err(err)) => {
                    err.warn("creating the peer connection");
                    later(
                        calls,
                        Input::Failed {
                            call_id,
                            problem: Msg::CallNotPossible,
                        },
                    );
                }
                None => {}
            }
        }
        Effect::SetRemote {
            call_id,
            offer,
            sdp,
        } => set_remote(calls, call_id, offer, sdp),
        Effect::MakeAnswer { call_id } => make_answer(calls, call_id),
        Effect::AddCandidates {
            call_id,
            candidates,
        } => {
            if let Some(pc) = with_engine(calls, &call_id, |e| e.pc.clone()).flatten() {
                spawn_local(async move {
                    for c in candidates {
                        let init = RtcIceCandidateInit::new(&c.candidate);
                        init.set_sdp_mid(c.sdp_mid.as_deref());
                        init.set_sdp_m_line_index(c.sdp_m_line_index);
                        let added =
                            pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init));
                        or_warn(settle(added).await, "adding a candidate");
                    }
                });
            }
        }
        Effect::RestartIce { call_id } => {
            if let Some(pc) = with_engine(calls, &call_id, |e| e.pc.clone()).flatten() {
                pc.unchecked_ref::<PeerConnectionExt>().restart_ice();
            }
        }
        Effect::GiveUpLater { call_id, since } => spawn_local(async move {
            sleep(RECOVER_MS).await;
            calls.input(Input::GiveUp { call_id, since });
        }),
        Effect::ClearLater { call_id } => spawn_local(async move {
            sleep(ENDED_SHOWN_MS).await;
            calls.input(Input::Clear { call_id });
        }),
        Effect::Release => release(calls),
        Effect::ListDevices => list_devices(calls),
        Effect::SetMuted(muted) => set_muted(calls, muted),
        Effect::SetCamera { off } => set_camera(calls, off),
        Effect::Transmit(_) | Effect::Unexpected { .. } => {}
    }
}

/// Ends and forgets the engine (idempotent).
fn release(calls: Calls) {
    calls.engine.update_value(|e| {
        if let Some(mut engine) = e.take() {
            engine.close();
        }
    });
    calls.local.set(None);
    calls.remote.set(None);
}

fn media_devices() -> JsResult<MediaDevices> {
    web_sys::window()
        .ok_or(JsError::Missing("window"))?
        .navigator()
        .media_devices()
        .map_err(|_| JsError::Missing("navigator.mediaDevices"))
}

/// The ICE servers the server hands out, as `RTCIceServer`s (none if it cannot say: host
/// candidates still work on one network).
async fn ice_servers() -> Array {
    let list = Array::new();
    match crate::api::call::ice_servers().await {
        Ok(servers) => {
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
        Err(err) => leptos::logging::warn!("no ICE servers: {}", err.message),
    }
    list
}

/// A stream of the microphone (`audio`) and camera (`video`), as constraints allow.
async fn user_media(audio: &JsValue, video: &JsValue) -> JsResult<MediaStream> {
    let constraints = MediaStreamConstraints::new();
    constraints.set_audio(audio);
    constraints.set_video(video);
    let asked = media_devices()?.get_user_media_with_constraints(&constraints)?;
    cast(settle(asked).await?, "MediaStream")
}

/// The camera and microphone (or the microphone alone) and the ICE servers.
fn get_media(calls: Calls, call_id: String, video: bool) {
    spawn_local(async move {
        let stream = match user_media(&JsValue::TRUE, &JsValue::from_bool(video)).await {
            Ok(stream) => stream,
            Err(err) => {
                err.warn("getting the camera and microphone");
                calls.input(Input::Failed {
                    call_id,
                    problem: err.media_problem(),
                });
                return;
            }
        };
        let ice = ice_servers().await;
        let kept = with_engine(calls, &call_id, |e| {
            e.local = Some(stream.clone());
            e.ice = ice;
        });
        if kept.is_none() {
            // The call ended while the browser asked.
            stop_tracks(&stream);
            return;
        }
        calls.local.set(Some(stream));
        calls.input(Input::MediaReady { call_id });
    });
}

/// The callee's ringer: a soft two-tone pattern until answered or ended.
fn ringer() -> Option<AudioContext> {
    let ring = || -> JsResult<AudioContext> {
        let ctx = AudioContext::new()?;
        let osc = ctx.create_oscillator()?;
        let gain = ctx.create_gain()?;
        osc.frequency().set_value(440.0);
        let t = ctx.current_time();
        gain.gain().set_value(0.0);
        for i in 0..40 {
            let start = t + f64::from(i) * 2.0;
            gain.gain().set_value_at_time(0.08, start)?;
            gain.gain().set_value_at_time(0.0, start + 0.8)?;
        }
        osc.connect_with_audio_node(&gain)?;
        gain.connect_with_audio_node(&ctx.destination())?;
        osc.start()?;
        // Resuming may wait for a user gesture; the call screen shows either way.
        or_warn(ctx.resume().map_err(JsError::from), "resuming the ringer");
        Ok(ctx)
    };
    or_warn(ring(), "starting the ringer")
}

fn add_local_tracks(e: &mut Engine) {
    if std::mem::replace(&mut e.tracks_added, true) {
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

/// Creates the peer connection and wires its events to inputs.
fn build_connection(calls: Calls, e: &mut Engine) -> JsResult<()> {
    let config = RtcConfiguration::new();
    config.set_ice_servers(&e.ice);
    if let Some(policy) = forced_policy() {
        config.set_ice_transport_policy(policy);
    }
    let pc = RtcPeerConnection::new_with_configuration(&config)?;
    let call_id = e.call_id.clone();
    let remote = MediaStream::new()?;
    e.remote = Some(remote.clone());

    let on_candidate = {
        let call_id = call_id.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
            let Ok(ev) = ev.dyn_into::<RtcPeerConnectionIceEvent>() else {
                return;
            };
            if let Some(c) = ev.candidate() {
                calls.input(Input::LocalCandidate {
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

    let on_track = Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
        if let Ok(ev) = ev.dyn_into::<RtcTrackEvent>() {
            remote.add_track(&ev.track());
            // Each new track reloads the element, so it shows the video track even when
            // the audio track came first.
            calls.remote.set(Some(remote.clone()));
        }
    });
    pc.set_ontrack(Some(on_track.as_ref().unchecked_ref()));

    let on_negotiation = {
        let (pc, call_id) = (pc.clone(), call_id.clone());
        Closure::<dyn FnMut(JsValue)>::new(move |_| {
            let (pc, call_id) = (pc.clone(), call_id.clone());
            spawn_local(async move {
                let making = |making| Input::MakingOffer {
                    call_id: call_id.clone(),
                    making,
                };
                calls.input(making(true));
                match settle(set_local_description_implicit(&pc)).await {
                    Ok(_) => {
                        if let Some(desc) = pc.local_description() {
                            calls.input(Input::LocalDescription {
                                call_id: call_id.clone(),
                                offer: true,
                                sdp: desc.sdp(),
                            });
                        }
                    }
                    Err(err) => err.warn("making an offer"),
                }
                calls.input(making(false));
            });
        })
    };
    pc.set_onnegotiationneeded(Some(on_negotiation.as_ref().unchecked_ref()));

    let on_ice_state = {
        let (pc, call_id) = (pc.clone(), call_id.clone());
        Closure::<dyn FnMut(JsValue)>::new(move |_| {
            let state = match pc.ice_connection_state() {
                RtcIceConnectionState::Connected | RtcIceConnectionState::Completed => {
                    Ice::Connected
                }
                RtcIceConnectionState::Disconnected => Ice::Disconnected,
                RtcIceConnectionState::Failed => Ice::Failed,
                _ => return,
            };
            calls.input(Input::Ice {
                call_id: call_id.clone(),
                state,
                now: crate::clock::now_ms(),
            });
        })
    };
    pc.set_oniceconnectionstatechange(Some(on_ice_state.as_ref().unchecked_ref()));

    e.closures
        .extend([on_candidate, on_track, on_negotiation, on_ice_state]);
    e.pc = Some(pc.clone());
    poll_stats(calls, call_id, pc, e.over.clone());
    Ok(())
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

/// An offer or answer from the other side: the state decides, knowing whether the
/// connection's signalling is stable right now.
fn remote_description(calls: Calls, call_id: String, offer: bool, sdp: String) {
    let stable = with_engine(calls, &call_id, |e| {
        e.pc.as_ref()
            .is_none_or(|pc| pc.signaling_state() == RtcSignalingState::Stable)
    })
    .unwrap_or(true);
    calls.input(Input::RemoteDescription {
        call_id,
        offer,
        sdp,
        stable,
    });
}

fn set_remote(calls: Calls, call_id: String, offer: bool, sdp: String) {
    let Some(pc) = with_engine(calls, &call_id, |e| e.pc.clone()).flatten() else {
        return;
    };
    spawn_local(async move {
        let desc = RtcSessionDescriptionInit::new(if offer {
            RtcSdpType::Offer
        } else {
            RtcSdpType::Answer
        });
        desc.set_sdp(&sdp);
        match settle(pc.set_remote_description(&desc)).await {
            Ok(_) => calls.input(Input::RemoteSet { call_id, offer }),
            Err(err) => err.warn("setting the other side's description"),
        }
    });
}

/// The callee's tracks join in its answer.
fn make_answer(calls: Calls, call_id: String) {
    let Some(pc) = with_engine(calls, &call_id, |e| {
        add_local_tracks(e);
        e.pc.clone()
    })
    .flatten() else {
        return;
    };
    spawn_local(async move {
        match settle(set_local_description_implicit(&pc)).await {
            Ok(_) => {
                if let Some(answer) = pc.local_description() {
                    calls.input(Input::LocalDescription {
                        call_id,
                        offer: false,
                        sdp: answer.sdp(),
                    });
                }
            }
            Err(err) => err.warn("making an answer"),
        }
    });
}

/// The live call's id, connection and local stream, once connected.
fn live_media(calls: Calls) -> Option<(String, RtcPeerConnection, MediaStream)> {
    let call_id = calls.live_call()?;
    let (pc, local) =
        with_engine(calls, &call_id, |e| e.pc.clone().zip(e.local.clone())).flatten()?;
    Some((call_id, pc, local))
}

/// The sender of `kind` ("audio" or "video"), also while it sends nothing.
fn sender_of(pc: &RtcPeerConnection, kind: &str) -> Option<RtcRtpSender> {
    let sender = pc
        .get_senders()
        .iter()
        .filter_map(|s| s.dyn_into::<RtcRtpSender>().ok())
        .find(|s| {
            s.track().is_some_and(|t| t.kind() == kind)
                || Reflect::get(s, &"__qc_kind".into())
                    .ok()
                    .and_then(|v| v.as_string())
                    .as_deref()
                    == Some(kind)
        })?;
    // Remember its kind for when it carries no track.
    or_warn(
        Reflect::set(&sender, &"__qc_kind".into(), &kind.into()).map_err(JsError::from),
        "marking a sender",
    );
    Some(sender)
}

/// Muted, the microphone is disabled and its sender sends nothing (the other side's audio
/// packets stop); unmuted, the same track goes out again.
fn set_muted(calls: Calls, muted: bool) {
    let Some((_, pc, local)) = live_media(calls) else {
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
        spawn_local(async move {
            let replaced = sender.replace_track(if muted { None } else { Some(&track) });
            or_warn(settle(replaced).await, "muting");
        });
    }
}

/// Camera off stops the camera (its light goes out) and sends no video; on starts it again
/// in the same sender.
fn set_camera(calls: Calls, off: bool) {
    let Some((call_id, pc, local)) = live_media(calls) else {
        return;
    };
    spawn_local(async move {
        let Some(sender) = sender_of(&pc, "video") else {
            return;
        };
        if off {
            or_warn(
                settle(sender.replace_track(None)).await,
                "turning the camera off",
            );
            for t in local.get_video_tracks().iter() {
                if let Ok(t) = t.dyn_into::<MediaStreamTrack>() {
                    t.stop();
                    local.remove_track(&t);
                }
            }
            return;
        }
        match user_media(&JsValue::FALSE, &JsValue::TRUE).await {
            Ok(stream) => {
                if let Ok(track) = stream
                    .get_video_tracks()
                    .get(0)
                    .dyn_into::<MediaStreamTrack>()
                {
                    let replaced = sender.replace_track(Some(&track));
                    or_warn(settle(replaced).await, "turning the camera on");
                    local.add_track(&track);
                }
                calls.local.set(Some(local.clone()));
            }
            Err(err) => calls.input(Input::Problem {
                call_id,
                problem: err.media_problem(),
            }),
        }
    });
}

fn text(value: &JsValue, key: &str) -> String {
    Reflect::get(value, &key.into())
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default()
}

fn number(value: &JsValue, key: &str) -> Option<f64> {
    Reflect::get(value, &key.into()).ok()?.as_f64()
}

/// Lists the cameras and microphones, marking the ones the call uses.
fn list_devices(calls: Calls) {
    spawn_local(async move {
        let listed = match media_devices().and_then(|d| Ok(d.enumerate_devices()?)) {
            Ok(promise) => settle(promise).await,
            Err(err) => Err(err),
        };
        let Some(list) = or_warn(listed, "listing the devices") else {
            return;
        };
        let in_use: Vec<String> = calls
            .local
            .get_untracked()
            .map(|l| {
                l.get_tracks()
                    .iter()
                    .filter_map(|t| t.dyn_into::<MediaStreamTrack>().ok())
                    .map(|t| text(&t.get_settings(), "deviceId"))
                    .collect()
            })
            .unwrap_or_default();
        let found: Vec<Device> = Array::from(&list)
            .iter()
            .filter_map(|d| {
                let kind = text(&d, "kind");
                let id = text(&d, "deviceId");
                (matches!(kind.as_str(), "audioinput" | "videoinput") && !id.is_empty()).then(
                    || Device {
                        current: in_use.contains(&id),
                        label: text(&d, "label"),
                        kind,
                        id,
                    },
                )
            })
            .collect();
        calls.devices.set(found);
    });
}

/// Replaces the microphone or camera track in the call and in the self-view.
fn switch_device(calls: Calls, kind: String, id: String) {
    let Some((call_id, pc, local)) = live_media(calls) else {
        return;
    };
    let (muted, camera_off) = calls
        .view
        .with_untracked(|v| v.as_ref().map(|v| (v.muted, v.camera_off)))
        .unwrap_or_default();
    spawn_local(async move {
        let audio = kind == "audioinput";
        let exact = js_sys::Object::new();
        let wanted = js_sys::Object::new();
        let marked = Reflect::set(&exact, &"exact".into(), &id.as_str().into())
            .and_then(|_| Reflect::set(&wanted, &"deviceId".into(), &exact));
        if or_warn(marked.map_err(JsError::from), "choosing a device").is_none() {
            return;
        }
        let (a, v): (JsValue, JsValue) = if audio {
            (wanted.into(), JsValue::FALSE)
        } else {
            (JsValue::FALSE, wanted.into())
        };
        let track = match user_media(&a, &v).await.and_then(|stream| {
            cast::<MediaStreamTrack>(stream.get_tracks().get(0), "MediaStreamTrack")
        }) {
            Ok(track) => track,
            Err(err) => {
                err.warn("switching devices");
                calls.input(Input::Problem {
                    call_id,
                    problem: err.media_problem(),
                });
                return;
            }
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
            or_warn(
                settle(sender.replace_track(Some(&track))).await,
                "switching devices",
            );
        }
        calls.local.set(Some(local));
        list_devices(calls);
    });
}

/// Reads the connection's statistics every second into the view (the quality indicator,
/// and the figures the call screen exposes as data attributes).
fn poll_stats(calls: Calls, call_id: String, pc: RtcPeerConnection, over: Rc<Cell<bool>>) {
    spawn_local(async move {
        let mut last = (0.0, 0.0);
        while !over.get() {
            sleep(1000).await;
            if over.get() {
                break;
            }
            let Ok(report) = settle(pc.get_stats()).await else {
                continue;
            };
            let stats = read_stats(&report, &mut last);
            calls.input(Input::Stats {
                call_id: call_id.clone(),
                stats,
            });
        }
    });
}

/// One `RTCStatsReport` as [`CallStats`]; `last` holds the loss counters of the previous
/// report (loss is over the last second).
fn read_stats(report: &JsValue, last: &mut (f64, f64)) -> CallStats {
    let mut stats = CallStats::default();
    let (mut lost, mut received) = (0.0, 0.0);
    let mut local_candidate = String::new();
    let mut candidates = std::collections::HashMap::new();
    if let Ok(Some(entries)) = js_sys::try_iter(report) {
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
                        stats.audio_energy += number(&stat, "totalAudioEnergy").unwrap_or(0.0);
                    }
                }
                "candidate-pair"
                    if Reflect::get(&stat, &"nominated".into()).is_ok_and(|v| v.is_truthy())
                        && text(&stat, "state") == "succeeded" =>
                {
                    stats.rtt_ms = number(&stat, "currentRoundTripTime").map(|s| s * 1000.0);
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
    let (dl, dr) = (lost - last.0, received - last.1);
    stats.loss_pct = if dl + dr > 0.0 {
        (dl.max(0.0) / (dl + dr)) * 100.0
    } else {
        0.0
    };
    *last = (lost, received);
    stats
}
