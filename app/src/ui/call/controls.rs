//! The call's buttons: Accept / Decline while it rings here; mute, camera, the device
//! pickers and hang up during it; Close once it has ended.
use leptos::prelude::*;

use super::Screen;
use crate::i18n::{Msg, use_i18n};
use crate::ui::widgets::{Icon, IconSvg};

#[component]
pub fn CallControls(screen: Screen) -> impl IntoView {
    let i18n = use_i18n();
    let calls = screen.calls;
    let video = move || screen.video();
    let muted = move || screen.muted();
    let camera_off = move || screen.camera_off();
    let in_call = move || screen.in_call();
    let incoming = move || screen.incoming();
    let ended = move || screen.ended();
    view! {
        <div class="call-controls">
            <Show when=incoming>
                <button
                    type="button"
                    class="call-button decline"
                    data-testid="call-decline"
                    on:click=move |_| calls.hang_up()
                >
                    <IconSvg icon=Icon::HangUp />
                    <span>{move || i18n.t(Msg::Decline)}</span>
                </button>
                <button
                    type="button"
                    class="call-button accept"
                    data-testid="call-accept"
                    on:click=move |_| calls.accept()
                >
                    <IconSvg icon=if video() { Icon::Video } else { Icon::Phone } />
                    <span>{move || i18n.t(Msg::AnswerCall)}</span>
                </button>
            </Show>
            <Show when=in_call>
                <button
                    type="button"
                    class="call-button"
                    class:off=muted
                    data-testid="call-mute"
                    aria-pressed=move || muted().to_string()
                    on:click=move |_| calls.toggle_mute()
                >
                    {move || {
                        if muted() {
                            view! { <IconSvg icon=Icon::MicOff /> }
                        } else {
                            view! { <IconSvg icon=Icon::Mic /> }
                        }
                    }}
                    <span>{move || i18n.t(if muted() { Msg::Unmute } else { Msg::Mute })}</span>
                </button>
                <Show when=video>
                    <button
                        type="button"
                        class="call-button"
                        class:off=camera_off
                        data-testid="call-camera"
                        aria-pressed=move || camera_off().to_string()
                        on:click=move |_| calls.toggle_camera()
                    >
                        {move || {
                            if camera_off() {
                                view! { <IconSvg icon=Icon::CameraOff /> }
                            } else {
                                view! { <IconSvg icon=Icon::Video /> }
                            }
                        }}
                        <span>
                            {move || {
                                i18n.t(if camera_off() { Msg::CameraOn } else { Msg::CameraOff })
                            }}
                        </span>
                    </button>
                </Show>
            </Show>
            <Show when=in_call>
                <DevicePicker screen />
            </Show>
            <Show when=move || !incoming() && !ended()>
                <button
                    type="button"
                    class="call-button decline"
                    data-testid="call-hangup"
                    on:click=move |_| calls.hang_up()
                >
                    <IconSvg icon=Icon::HangUp />
                    <span>{move || i18n.t(if in_call() { Msg::HangUp } else { Msg::Cancel })}</span>
                </button>
            </Show>
            <Show when=ended>
                <button
                    type="button"
                    class="call-button"
                    data-testid="call-close"
                    on:click=move |_| calls.hang_up()
                >
                    <span>{move || i18n.t(Msg::Close)}</span>
                </button>
            </Show>
        </div>
    }
}

/// Choose the microphone and (in a video call) the camera, during the call.
#[component]
fn DevicePicker(screen: Screen) -> impl IntoView {
    let i18n = use_i18n();
    let calls = screen.calls;
    let select = move |kind: &'static str, label: Msg| {
        let options = move || {
            calls.devices.with(|all| {
                all.iter()
                    .filter(|d| d.kind == kind)
                    .enumerate()
                    .map(|(i, d)| {
                        let text = if d.label.is_empty() {
                            format!("{} {}", i18n.t(label), i + 1)
                        } else {
                            d.label.clone()
                        };
                        view! {
                            <option value=d.id.clone() selected=d.current>
                                {text}
                            </option>
                        }
                    })
                    .collect::<Vec<_>>()
            })
        };
        view! {
            <label class="device-picker">
                <span>{move || i18n.t(label)}</span>
                <select
                    data-testid=format!("device-{kind}")
                    on:change=move |ev| {
                        calls.switch_device(kind.to_owned(), event_target_value(&ev))
                    }
                >
                    {options}
                </select>
            </label>
        }
    };
    view! {
        <div class="device-pickers">
            {select("audioinput", Msg::Microphone)}
            <Show when=move || screen.video()>{select("videoinput", Msg::Camera)}</Show>
        </div>
    }
}
