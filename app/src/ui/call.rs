//! The call screen, over everything else: the incoming call with Accept / Decline, the
//! outgoing call while it rings, and the call itself (the other side's video large, one's
//! own small in a corner, a running timer, the quality, mute, camera and hang up). When the
//! attempt ends it says how for a moment.
use leptos::prelude::*;

use crate::call::Phase;
use crate::chat::use_chat;
use crate::i18n::{Msg, use_i18n};
use crate::protocol::{CallMedia, CallOutcome, Peer};
use crate::ui::chats::clock;
use crate::ui::widgets::{Avatar, Icon, IconSvg};

#[component]
pub fn CallOverlay() -> impl IntoView {
    let chat = use_chat();
    view! {
        <Show when=move || chat.calls.view.with(|v| v.is_some())>
            <CallScreen/>
        </Show>
    }
}

#[component]
fn CallScreen() -> impl IntoView {
    let i18n = use_i18n();
    let chat = use_chat();
    let calls = chat.calls;
    let view_of = move || calls.view.get();
    let phase = move || calls.view.with(|v| v.as_ref().map(|v| v.phase));
    let media = move || {
        calls
            .view
            .with(|v| v.as_ref().map(|v| v.media))
            .unwrap_or(CallMedia::Audio)
    };
    let peer_id = move || {
        calls
            .view
            .with(|v| v.as_ref().map(|v| v.peer.clone()))
            .unwrap_or_default()
    };
    let conversation = move |f: fn(&crate::chat::Conversation) -> String| {
        chat.conversations
            .with(|all| all.get(&Peer::User(peer_id())).map(f))
            .unwrap_or_default()
    };
    let name = Signal::derive(move || {
        let title = conversation(|c| c.title.clone());
        if title.is_empty() {
            i18n.t(Msg::VideoCall).to_owned()
        } else {
            title
        }
    });
    let avatar = Signal::derive(move || conversation(|c| c.avatar.clone()));
    let seed = Signal::derive(peer_id);

    // A clock that moves the timer.
    let now = RwSignal::new(0f64);
    #[cfg(feature = "hydrate")]
    {
        let handle = set_interval_with_handle(
            move || now.set(js_sys::Date::now()),
            std::time::Duration::from_millis(500),
        );
        on_cleanup(move || {
            if let Ok(h) = handle {
                h.clear();
            }
        });
    }
    let timer = move || {
        let v = view_of()?;
        match v.phase {
            Phase::Ended(CallOutcome::Completed) => Some(clock(v.duration_ms)),
            Phase::Active | Phase::Reconnecting => {
                v.started_at.map(|s| clock((now.get() - s).max(0.0) as u64))
            }
            _ => None,
        }
    };
    let status = move || {
        let v = view_of()?;
        if let Some(problem) = v.error {
            return Some(i18n.t(problem).to_owned());
        }
        Some(
            match v.phase {
                Phase::Outgoing => i18n.t(Msg::Calling),
                Phase::Ringing => i18n.t(Msg::Ringing),
                Phase::Incoming if v.media == CallMedia::Video => i18n.t(Msg::IncomingVideo),
                Phase::Incoming => i18n.t(Msg::IncomingAudio),
                Phase::Connecting => i18n.t(Msg::CallConnecting),
                Phase::Active => return None,
                Phase::Reconnecting => i18n.t(Msg::CallReconnecting),
                Phase::Ended(outcome) => i18n.t(match outcome {
                    CallOutcome::Completed => Msg::CallEnded,
                    CallOutcome::Declined => Msg::CallDeclined,
                    CallOutcome::Cancelled => Msg::CallCancelled,
                    CallOutcome::Missed => Msg::CallMissed,
                    CallOutcome::Busy => Msg::CallBusy,
                    CallOutcome::AnsweredElsewhere => Msg::CallAnsweredElsewhere,
                    CallOutcome::Failed => Msg::CallFailed,
                }),
            }
            .to_owned(),
        )
    };
    let state_name = move || match phase() {
        Some(Phase::Outgoing) => "outgoing".to_owned(),
        Some(Phase::Ringing) => "ringing".to_owned(),
        Some(Phase::Incoming) => "incoming".to_owned(),
        Some(Phase::Connecting) => "connecting".to_owned(),
        Some(Phase::Active) => "active".to_owned(),
        Some(Phase::Reconnecting) => "reconnecting".to_owned(),
        Some(Phase::Ended(o)) => format!(
            "ended-{}",
            serde_json::to_value(o)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ),
        None => String::new(),
    };
    let quality = move || {
        calls
            .view
            .with(|v| v.as_ref().and_then(|v| v.stats.quality()))
    };
    let stat = move |f: fn(&crate::call::CallStats) -> String| {
        calls
            .view
            .with(|v| v.as_ref().map(|v| f(&v.stats)).unwrap_or_default())
    };
    let muted = move || calls.view.with(|v| v.as_ref().is_some_and(|v| v.muted));
    let camera_off = move || {
        calls
            .view
            .with(|v| v.as_ref().is_some_and(|v| v.camera_off))
    };
    let in_call = move || {
        matches!(
            phase(),
            Some(Phase::Connecting | Phase::Active | Phase::Reconnecting)
        )
    };
    let incoming = move || phase() == Some(Phase::Incoming);
    let ended = move || matches!(phase(), Some(Phase::Ended(_)));
    let video = move || media() == CallMedia::Video;

    let remote_video = NodeRef::<leptos::html::Video>::new();
    let local_video = NodeRef::<leptos::html::Video>::new();
    #[cfg(feature = "hydrate")]
    {
        Effect::new(move |_| {
            let stream = calls.remote.get();
            if let Some(el) = remote_video.get() {
                // `autoplay` starts it; an explicit play() would reject when the
                // stream changes under it.
                el.set_src_object(stream.as_ref());
            }
        });
        Effect::new(move |_| {
            let stream = calls.local.get();
            if let Some(el) = local_video.get() {
                // `autoplay` starts it; an explicit play() would reject when the
                // stream changes under it.
                el.set_src_object(stream.as_ref());
            }
        });
    }

    view! {
        <div class="call-overlay" class:video=video role="dialog" aria-modal="true" data-testid="call"
            data-state=state_name
            data-frames-decoded=move || stat(|s| s.frames_decoded.to_string())
            data-audio-packets=move || stat(|s| s.audio_packets.to_string())
            data-audio-energy=move || stat(|s| format!("{:.6}", s.audio_energy))
            data-candidate-type=move || stat(|s| s.candidate_type.clone())
        >
            // The other side's video fills the screen; audio plays through it too.
            <video node_ref=remote_video class="remote-video" data-testid="remote-video" autoplay playsinline
                class:hidden=move || !(video() && in_call())></video>
            <video node_ref=local_video class="local-video" data-testid="local-video" autoplay playsinline muted
                class:hidden=move || !video() || camera_off() || ended()></video>
            <div class="call-info" class:over-video=move || video() && in_call()>
                <Avatar name=name seed=seed url=avatar size="lg"/>
                <h2 data-testid="call-peer">{move || name.get()}</h2>
                <p class="call-status" data-testid="call-status" aria-live="polite">{status}</p>
                <p class="call-timer" data-testid="call-timer">{timer}</p>
                {move || quality().map(|q| view! {
                    <p class=format!("call-quality quality-{}", match q { Msg::QualityGood => "good", Msg::QualityFair => "fair", _ => "poor" })
                        data-testid="call-quality">{i18n.t(q)}</p>
                })}
            </div>
            <div class="call-controls">
                <Show when=incoming>
                    <button type="button" class="call-button decline" data-testid="call-decline" on:click=move |_| chat.hang_up()>
                        <IconSvg icon=Icon::HangUp/><span>{move || i18n.t(Msg::Decline)}</span>
                    </button>
                    <button type="button" class="call-button accept" data-testid="call-accept" on:click=move |_| chat.accept_call()>
                        <IconSvg icon=if video() { Icon::Video } else { Icon::Phone }/><span>{move || i18n.t(Msg::AnswerCall)}</span>
                    </button>
                </Show>
                <Show when=in_call>
                    <button type="button" class="call-button" class:off=muted data-testid="call-mute" aria-pressed=move || muted().to_string()
                        on:click=move |_| chat.toggle_mute()>
                        {move || if muted() { view! { <IconSvg icon=Icon::MicOff/> } } else { view! { <IconSvg icon=Icon::Mic/> } }}
                        <span>{move || i18n.t(if muted() { Msg::Unmute } else { Msg::Mute })}</span>
                    </button>
                    <Show when=video>
                        <button type="button" class="call-button" class:off=camera_off data-testid="call-camera" aria-pressed=move || camera_off().to_string()
                            on:click=move |_| chat.toggle_camera()>
                            {move || if camera_off() { view! { <IconSvg icon=Icon::CameraOff/> } } else { view! { <IconSvg icon=Icon::Video/> } }}
                            <span>{move || i18n.t(if camera_off() { Msg::CameraOn } else { Msg::CameraOff })}</span>
                        </button>
                    </Show>
                </Show>
                <Show when=in_call>
                    <DevicePicker/>
                </Show>
                <Show when=move || !incoming() && !ended()>
                    <button type="button" class="call-button decline" data-testid="call-hangup" on:click=move |_| chat.hang_up()>
                        <IconSvg icon=Icon::HangUp/>
                        <span>{move || i18n.t(if in_call() { Msg::HangUp } else { Msg::Cancel })}</span>
                    </button>
                </Show>
                <Show when=ended>
                    <button type="button" class="call-button" data-testid="call-close" on:click=move |_| chat.hang_up()>
                        <span>{move || i18n.t(Msg::Close)}</span>
                    </button>
                </Show>
            </div>
        </div>
    }
}

/// Choose the microphone and (in a video call) the camera, during the call.
#[component]
fn DevicePicker() -> impl IntoView {
    let i18n = use_i18n();
    let chat = use_chat();
    let video = move || {
        chat.calls
            .view
            .with(|v| v.as_ref().is_some_and(|v| v.media == CallMedia::Video))
    };
    let select = move |kind: &'static str, label: Msg| {
        let options = move || {
            chat.calls.devices.with(|all| {
                all.iter()
                    .filter(|d| d.kind == kind)
                    .enumerate()
                    .map(|(i, d)| {
                        let text = if d.label.is_empty() {
                            format!("{} {}", i18n.t(label), i + 1)
                        } else {
                            d.label.clone()
                        };
                        view! { <option value=d.id.clone() selected=d.current>{text}</option> }
                    })
                    .collect::<Vec<_>>()
            })
        };
        view! {
            <label class="device-picker">
                <span>{move || i18n.t(label)}</span>
                <select data-testid=format!("device-{kind}")
                    on:change=move |ev| chat.switch_device(kind.to_owned(), event_target_value(&ev))>
                    {options}
                </select>
            </label>
        }
    };
    view! {
        <div class="device-pickers">
            {select("audioinput", Msg::Microphone)}
            <Show when=video>{select("videoinput", Msg::Camera)}</Show>
        </div>
    }
}
