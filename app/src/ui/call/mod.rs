//! The call screen, over everything else: the incoming call with Accept / Decline, the
//! outgoing call while it rings, and the call itself (the other side's video large, one's
//! own small in a corner). Who and how it goes (`info`: name, face, status, timer,
//! quality), the buttons and device pickers (`controls`). When the attempt ends it says
//! how for a moment.
mod controls;
mod info;

use leptos::prelude::*;

use crate::call::{CallStats, Calls, Phase};
use crate::chat::use_chat;
use crate::protocol::{CallMedia, CallOutcome};

/// The call screen while there is a call. Its code (and the engine's) is a WASM chunk of
/// its own with `--split`: fetched a few seconds after the page is up, so the first call
/// rings without waiting for a download. The chunk's part is mounted once, at the first
/// call, and stays: calls come and go inside it as they did before the split.
#[component]
pub fn CallOverlay() -> impl IntoView {
    let chat = use_chat();
    #[cfg(feature = "hydrate")]
    set_timeout(
        || {
            leptos::task::spawn_local(async {
                futures::join!(__preload_call_screens(), Calls::preload());
            })
        },
        std::time::Duration::from_secs(PRELOAD_AFTER_S),
    );
    let needed = Memo::new(move |before: Option<&bool>| {
        before.copied().unwrap_or(false) || chat.calls.view.with(|v| v.is_some())
    });
    view! {
        <Show when=move || needed.get()>
            <Suspense fallback=|| ()>{Suspend::new(call_screens())}</Suspense>
        </Show>
    }
}

/// How long after the page is up the call screen's code is fetched.
#[cfg(feature = "hydrate")]
const PRELOAD_AFTER_S: u64 = 3;

#[leptos::lazy]
fn call_screens() -> AnyView {
    let chat = use_chat();
    view! {
        <Show when=move || chat.calls.view.with(|v| v.is_some())>
            <CallScreen />
        </Show>
    }
    .into_any()
}

/// What the parts of the call screen read of the call on screen.
#[derive(Clone, Copy)]
struct Screen {
    calls: Calls,
}

impl Screen {
    fn phase(self) -> Option<Phase> {
        self.calls.view.with(|v| v.as_ref().map(|v| v.phase))
    }

    fn video(self) -> bool {
        self.calls
            .view
            .with(|v| v.as_ref().is_some_and(|v| v.media == CallMedia::Video))
    }

    fn in_call(self) -> bool {
        matches!(
            self.phase(),
            Some(Phase::Connecting | Phase::Active | Phase::Reconnecting)
        )
    }

    fn incoming(self) -> bool {
        self.phase() == Some(Phase::Incoming)
    }

    fn ended(self) -> bool {
        matches!(self.phase(), Some(Phase::Ended(_)))
    }

    fn muted(self) -> bool {
        self.calls
            .view
            .with(|v| v.as_ref().is_some_and(|v| v.muted))
    }

    fn camera_off(self) -> bool {
        self.calls
            .view
            .with(|v| v.as_ref().is_some_and(|v| v.camera_off))
    }

    fn stat(self, f: fn(&CallStats) -> String) -> String {
        self.calls
            .view
            .with(|v| v.as_ref().map(|v| f(&v.stats)).unwrap_or_default())
    }

    /// The phase as the tests and styles read it (`ringing`, `ended-declined`, ...).
    fn state_name(self) -> String {
        match self.phase() {
            Some(Phase::Outgoing) => "outgoing".to_owned(),
            Some(Phase::Ringing) => "ringing".to_owned(),
            Some(Phase::Incoming) => "incoming".to_owned(),
            Some(Phase::Connecting) => "connecting".to_owned(),
            Some(Phase::Active) => "active".to_owned(),
            Some(Phase::Reconnecting) => "reconnecting".to_owned(),
            Some(Phase::Ended(o)) => format!("ended-{}", outcome_name(o)),
            None => String::new(),
        }
    }
}

fn outcome_name(outcome: CallOutcome) -> String {
    serde_json::to_value(outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[component]
fn CallScreen() -> impl IntoView {
    let screen = Screen {
        calls: use_chat().calls,
    };
    let remote_video = NodeRef::<leptos::html::Video>::new();
    let local_video = NodeRef::<leptos::html::Video>::new();
    #[cfg(feature = "hydrate")]
    {
        let calls = screen.calls;
        // `autoplay` starts each; an explicit play() would reject when the stream changes
        // under it.
        // `try_get`: a stream can change in the turn the screen goes away.
        Effect::new(move |_| {
            let stream = calls.remote.get();
            if let Some(Some(el)) = remote_video.try_get() {
                el.set_src_object(stream.as_ref());
            }
        });
        Effect::new(move |_| {
            let stream = calls.local.get();
            if let Some(Some(el)) = local_video.try_get() {
                el.set_src_object(stream.as_ref());
            }
        });
    }
    let video = move || screen.video();
    view! {
        <div
            class="call-overlay"
            class:video=video
            role="dialog"
            aria-modal="true"
            data-testid="call"
            data-state=move || screen.state_name()
            data-frames-decoded=move || screen.stat(|s| s.frames_decoded.to_string())
            data-audio-packets=move || screen.stat(|s| s.audio_packets.to_string())
            data-audio-energy=move || screen.stat(|s| format!("{:.6}", s.audio_energy))
            data-candidate-type=move || screen.stat(|s| s.candidate_type.clone())
        >
            // The other side's video fills the screen; audio plays through it too.
            <video
                node_ref=remote_video
                class="remote-video"
                data-testid="remote-video"
                autoplay
                playsinline
                class:hidden=move || !(video() && screen.in_call())
            ></video>
            <video
                node_ref=local_video
                class="local-video"
                data-testid="local-video"
                autoplay
                playsinline
                muted
                class:hidden=move || !video() || screen.camera_off() || screen.ended()
            ></video>
            <info::CallInfo screen />
            <controls::CallControls screen />
        </div>
    }
}
