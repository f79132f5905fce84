//! The composer: Enter sends, Shift+Enter breaks the line, typing notices at most every two
//! seconds, and a message over the length limit says so before it is sent.
use leptos::html;
use leptos::prelude::*;

use super::uploads::AttachButton;
use crate::chat::use_chat;
use crate::i18n::{Msg, use_i18n};
use crate::protocol::{MAX_TEXT_CHARS, Peer};

#[component]
pub fn Composer(peer: Peer) -> impl IntoView {
    let i18n = use_i18n();
    let chat = use_chat();
    let text = RwSignal::new(String::new());
    let input = NodeRef::<html::Textarea>::new();
    let last_typing = StoredValue::new(0f64);
    let too_long = move || text.with(|t| t.chars().count() > MAX_TEXT_CHARS);
    let send = {
        let peer = peer.clone();
        move || {
            let body = text.get_untracked();
            if body.trim().is_empty() || body.chars().count() > MAX_TEXT_CHARS {
                return;
            }
            chat.send_text(peer.clone(), body);
            text.set(String::new());
            if let Some(el) = input.get_untracked()
                && let Err(err) = el.focus()
            {
                leptos::logging::warn!("composer not focused: {err:?}");
            }
        }
    };
    let on_key = {
        let send = send.clone();
        move |ev: leptos::ev::KeyboardEvent| {
            if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                ev.prevent_default();
                send();
            }
        }
    };
    let on_input = {
        let peer = peer.clone();
        move |_| {
            let now = crate::clock::now_ms();
            if now - last_typing.get_value() > 2000.0 {
                last_typing.set_value(now);
                chat.typing(peer.clone());
            }
        }
    };
    // A pasted screenshot (or copied file) is sent as one; pasted text stays text.
    let on_paste = {
        let peer = peer.clone();
        move |ev: leptos::ev::ClipboardEvent| {
            #[cfg(feature = "hydrate")]
            if let Some(files) = ev.clipboard_data().and_then(|d| d.files())
                && files.length() > 0
                && let Some(queue) = super::uploads::use_uploads()
            {
                ev.prevent_default();
                queue.add_files(&peer, Some(files));
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = (&ev, &peer);
        }
    };
    let attach = view! { <AttachButton peer=peer.clone() /> };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        send();
    };
    view! {
        <form class="composer" on:submit=on_submit data-testid="composer">
            {attach}
            <textarea
                node_ref=input
                rows="1"
                bind:value=text
                on:keydown=on_key
                on:input=on_input
                on:paste=on_paste
                placeholder=move || i18n.t(Msg::TypeMessage)
                aria-label=move || i18n.t(Msg::TypeMessage)
            ></textarea>
            <button
                class="primary"
                type="submit"
                disabled=move || text.with(|t| t.trim().is_empty()) || too_long()
            >
                {move || i18n.t(Msg::Send)}
            </button>
            <Show when=too_long>
                <p class="note note-error composer-error" role="alert">
                    {move || i18n.t(Msg::ErrMessageTooLong)}
                </p>
            </Show>
        </form>
    }
}
