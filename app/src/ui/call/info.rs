//! Who the call is with (name and face, from the page's directory of people) and how it
//! goes: its status in words, the running timer, the connection's quality.
use leptos::prelude::*;

use super::Screen;
use crate::call::Phase;
use crate::chat::use_chat;
use crate::i18n::{Msg, use_i18n};
use crate::protocol::{CallMedia, CallOutcome};
use crate::ui::chats::duration_text;
use crate::ui::widgets::Avatar;

#[component]
pub fn CallInfo(screen: Screen) -> impl IntoView {
    let i18n = use_i18n();
    let chat = use_chat();
    let calls = screen.calls;
    let view_of = move || calls.view.get();
    let peer_id = move || {
        calls
            .view
            .with(|v| v.as_ref().map(|v| v.peer.clone()))
            .unwrap_or_default()
    };
    // The other person, by name; unknown to this page (rare: a call from a friend made
    // after it loaded, before the lists came back), the kind of call stands in.
    let name = Signal::derive(move || match chat.person(&peer_id()) {
        Some(p) if !p.name().is_empty() => p.name().to_owned(),
        _ => i18n
            .t(if screen.video() {
                Msg::VideoCall
            } else {
                Msg::AudioCall
            })
            .to_owned(),
    });
    let avatar = Signal::derive(move || {
        chat.person(&peer_id())
            .map(|p| p.avatar)
            .unwrap_or_default()
    });
    let seed = Signal::derive(peer_id);

    // A clock that moves the timer.
    let now = RwSignal::new(0f64);
    #[cfg(feature = "hydrate")]
    {
        let handle = set_interval_with_handle(
            move || now.set(crate::clock::now_ms()),
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
            Phase::Ended(CallOutcome::Completed) => Some(duration_text(v.duration_ms)),
            Phase::Active | Phase::Reconnecting => v
                .started_at
                .map(|s| duration_text((now.get() - s).max(0.0) as u64)),
            _ => None,
        }
    };
    let status = move || {
        let v = view_of()?;
        if let Some(problem) = v.error {
            return Some(i18n.t(problem).to_owned());
        }
        Some(i18n.t(status_of(v.phase, v.media)?).to_owned())
    };
    let quality = move || {
        calls
            .view
            .with(|v| v.as_ref().and_then(|v| v.stats.quality()))
    };
    view! {
        <div class="call-info" class:over-video=move || screen.video() && screen.in_call()>
            <Avatar name=name seed=seed url=avatar size="lg" />
            <h2 data-testid="call-peer">{move || name.get()}</h2>
            <p class="call-status" data-testid="call-status" aria-live="polite">
                {status}
            </p>
            <p class="call-timer" data-testid="call-timer">
                {timer}
            </p>
            {move || {
                quality()
                    .map(|q| {
                        view! {
                            <p
                                class=format!(
                                    "call-quality quality-{}",
                                    match q {
                                        Msg::QualityGood => "good",
                                        Msg::QualityFair => "fair",
                                        _ => "poor",
                                    },
                                )
                                data-testid="call-quality"
                            >
                                {i18n.t(q)}
                            </p>
                        }
                    })
            }}
        </div>
    }
}

/// Where the call stands, in words (none while it runs: the timer says it).
fn status_of(phase: Phase, media: CallMedia) -> Option<Msg> {
    Some(match phase {
        Phase::Outgoing => Msg::Calling,
        Phase::Ringing => Msg::Ringing,
        Phase::Incoming if media == CallMedia::Video => Msg::IncomingVideo,
        Phase::Incoming => Msg::IncomingAudio,
        Phase::Connecting => Msg::CallConnecting,
        Phase::Active => return None,
        Phase::Reconnecting => Msg::CallReconnecting,
        Phase::Ended(outcome) => match outcome {
            CallOutcome::Completed => Msg::CallEnded,
            CallOutcome::Declined => Msg::CallDeclined,
            CallOutcome::Cancelled => Msg::CallCancelled,
            CallOutcome::Missed => Msg::CallMissed,
            CallOutcome::Busy => Msg::CallBusy,
            CallOutcome::AnsweredElsewhere => Msg::CallAnsweredElsewhere,
            CallOutcome::Failed => Msg::CallFailed,
        },
    })
}
