//! Calls in the browser, built like the chat: the plain state machine (`state`: phases,
//! what goes over the socket, perfect negotiation, buffered candidates, ICE restart and
//! give-up timers), and in the browser the driver (`rtc`) that owns the
//! `RTCPeerConnection`, the local stream, the ringer and every JavaScript closure, and
//! releases them all in one place. [`Calls`] ties them together; every change goes
//! through [`Calls::input`].
//!
//! Signalling rides the chat socket (`call_*` frames): the chat hands the calls their
//! frames ([`Calls::server`]), and the calls send theirs through the [`CallLink`] the chat
//! connects, so this module never imports the chat.
#[cfg(feature = "hydrate")]
mod rtc;
pub mod state;

use leptos::prelude::*;

use crate::protocol::{CallMedia, ClientMessage, ServerEvent};
use state::{CallState, Effect, Input};
pub use state::{CallStats, CallView, Phase};

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

/// How the calls send a frame: the chat's socket.
pub type CallLink = Callback<ClientMessage>;

impl Default for Calls {
    fn default() -> Self {
        Self::new()
    }
}

/// The call state of the page (a cheap copyable handle).
#[derive(Clone, Copy)]
pub struct Calls {
    state: StoredValue<CallState>,
    /// What the call screen shows.
    pub view: RwSignal<Option<CallView>>,
    /// The cameras and microphones to switch between during a call.
    pub devices: RwSignal<Vec<Device>>,
    #[cfg(feature = "hydrate")]
    pub local: RwSignal<Option<web_sys::MediaStream>, LocalStorage>,
    #[cfg(feature = "hydrate")]
    pub remote: RwSignal<Option<web_sys::MediaStream>, LocalStorage>,
    #[cfg(feature = "hydrate")]
    engine: StoredValue<Option<rtc::Engine>, LocalStorage>,
    /// Work for the engine, done in order (see [`Calls::rtc`]).
    #[cfg(feature = "hydrate")]
    jobs: StoredValue<Jobs, LocalStorage>,
    link: StoredValue<Option<CallLink>>,
}

/// The engine's work not yet done, and whether a task is doing it.
#[cfg(feature = "hydrate")]
#[derive(Default)]
struct Jobs {
    queue: std::collections::VecDeque<rtc::Job>,
    running: bool,
}

impl Calls {
    pub fn new() -> Self {
        Self {
            state: StoredValue::new(CallState::new()),
            view: RwSignal::new(None),
            devices: RwSignal::new(Vec::new()),
            #[cfg(feature = "hydrate")]
            local: RwSignal::new_local(None),
            #[cfg(feature = "hydrate")]
            remote: RwSignal::new_local(None),
            #[cfg(feature = "hydrate")]
            engine: StoredValue::new_local(None),
            #[cfg(feature = "hydrate")]
            jobs: StoredValue::new_local(Jobs::default()),
            link: StoredValue::new(None),
        }
    }

    /// Where the calls' frames go.
    pub fn connect(self, link: CallLink) {
        self.link.set_value(Some(link));
    }

    /// Feeds one input to the state machine, shows what changed and carries out the rest.
    pub fn input(self, input: Input) {
        let Some((effects, view)) = self
            .state
            .try_update_value(|s| (s.apply(input), s.view().cloned()))
        else {
            return;
        };
        if self.view.with_untracked(|v| v != &view) {
            self.view.set(view);
        }
        for effect in effects {
            self.carry_out(effect);
        }
    }

    fn carry_out(self, effect: Effect) {
        match effect {
            Effect::Transmit(message) => {
                if let Some(link) = self.link.try_get_value().flatten() {
                    link.run(message);
                }
            }
            Effect::Unexpected { call_id, code } => {
                leptos::logging::warn!("relay refused a frame of call {call_id}: {code:?}")
            }
            #[cfg(feature = "hydrate")]
            other => self.rtc(rtc::Job::Effect(other)),
            // No camera, connection or timer on the server.
            #[cfg(not(feature = "hydrate"))]
            _ => {}
        }
    }

    /// The id of the call on screen, unless it has ended.
    pub fn live_call(self) -> Option<String> {
        self.state
            .try_with_value(|s| s.live_call().map(str::to_owned))
            .flatten()
    }

    /// Calls a friend: camera and microphone first (a problem is shown, nothing is sent),
    /// then the invitation.
    pub fn start(self, peer: String, media: CallMedia) {
        self.input(Input::Start {
            call_id: uuid::Uuid::new_v4().to_string(),
            peer,
            media,
        });
    }

    /// Answers the call ringing on this tab.
    /// The chat's socket is open again after it dropped.
    pub fn reconnected(self) {
        self.input(Input::Reconnected);
    }

    pub fn accept(self) {
        self.input(Input::Accept);
    }

    /// Declines, cancels or hangs up, whichever fits where the call stands.
    pub fn hang_up(self) {
        self.input(Input::HangUp {
            now: crate::clock::now_ms(),
        });
    }

    pub fn toggle_mute(self) {
        self.input(Input::ToggleMute);
    }

    pub fn toggle_camera(self) {
        self.input(Input::ToggleCamera);
    }

    /// Uses another camera or microphone (`kind` is `audioinput` or `videoinput`).
    pub fn switch_device(self, kind: String, id: String) {
        #[cfg(feature = "hydrate")]
        self.rtc(rtc::Job::SwitchDevice { kind, id });
        #[cfg(not(feature = "hydrate"))]
        let _ = (kind, id);
    }

    /// A `call_*` frame from the relay, or a refusal naming a call (its `client_id`).
    pub fn server(self, event: ServerEvent) {
        match event {
            ServerEvent::Error {
                code,
                client_id: Some(call_id),
                ..
            } => self.input(Input::Refused { call_id, code }),
            #[cfg(feature = "hydrate")]
            ServerEvent::CallOffer { call_id, sdp } => self.rtc(rtc::Job::RemoteDescription {
                call_id,
                offer: true,
                sdp,
            }),
            #[cfg(feature = "hydrate")]
            ServerEvent::CallAnswer { call_id, sdp } => self.rtc(rtc::Job::RemoteDescription {
                call_id,
                offer: false,
                sdp,
            }),
            event => self.input(Input::Server(event)),
        }
    }

    /// Hands the engine a job. The engine's code is a WASM chunk of its own (built with
    /// `--split`; fetched at the first call, or earlier by [`Calls::preload`]), so its jobs
    /// run in a task, one after another in the order given: a job given while another runs
    /// (an effect of an input the engine reported) waits for those before it.
    #[cfg(feature = "hydrate")]
    fn rtc(self, job: rtc::Job) {
        let start = self
            .jobs
            .try_update_value(|jobs| {
                jobs.queue.push_back(job);
                !std::mem::replace(&mut jobs.running, true)
            })
            .unwrap_or(false);
        if !start {
            return;
        }
        leptos::task::spawn_local(async move {
            while let Some(job) = self
                .jobs
                .try_update_value(|jobs| {
                    let next = jobs.queue.pop_front();
                    jobs.running = next.is_some();
                    next
                })
                .flatten()
            {
                rtc::run(self, job).await;
            }
        });
    }

    /// Fetches the engine's code before it is needed, so a call rings at once.
    pub async fn preload() {
        #[cfg(feature = "hydrate")]
        rtc::__preload_run().await;
    }
}
