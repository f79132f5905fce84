//! The conversation pane: its header (who, presence, call buttons), the messages, who is
//! typing, why one cannot write here any more, and the composer.
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use super::composer::Composer;
use super::messages::MessageList;
use super::short_time;
use super::uploads::UploadStrip;
use crate::chat::{ConversationView, use_chat};
use crate::i18n::{Msg, use_i18n};
use crate::protocol::{CallMedia, Peer};
use crate::ui::contacts::use_contacts;
use crate::ui::widgets::{Avatar, ClientOnly, Icon, IconSvg};

/// `/chats/user/:id` and `/chats/group/:id`.
#[component]
pub fn ConversationPane() -> impl IntoView {
    let params = use_params_map();
    let peer = Memo::new(move |_| {
        let p = params.read();
        match (p.get("user"), p.get("group")) {
            (Some(user), _) => Peer::User(user),
            (None, Some(group)) => Peer::Group(group),
            (None, None) => Peer::User(String::new()),
        }
    });
    // A file dropped anywhere on the conversation is sent there.
    let on_dragover = |ev: leptos::ev::DragEvent| ev.prevent_default();
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        #[cfg(feature = "hydrate")]
        if let Some(queue) = super::uploads::use_uploads() {
            queue.add_files(
                &peer.get_untracked(),
                ev.data_transfer().and_then(|d| d.files()),
            );
        }
    };
    view! {
        <section
            class="detail-pane conversation"
            data-testid="conversation"
            on:dragover=on_dragover
            on:drop=on_drop
        >
            <ClientOnly>{move || view! { <Conversation peer=peer.get() /> }}</ClientOnly>
        </section>
    }
}

#[component]
fn Conversation(peer: Peer) -> impl IntoView {
    let chat = use_chat();
    let view = chat.open(&peer);
    {
        let peer = peer.clone();
        on_cleanup(move || chat.close(&peer));
    }
    // The first page of history once online.
    {
        let peer = peer.clone();
        Effect::new(move |_| {
            let header = view.header.get();
            if chat.view.status.get() == crate::chat::Status::Online
                && !header.history_loaded
                && !header.loading_history
            {
                chat.load_history(peer.clone());
            }
        });
    }
    view! {
        <ConversationHeader peer=peer.clone() view />
        <MessageList view peer=peer.clone() />
        <UploadStrip peer=peer.clone() />
        <TypingLine peer=peer.clone() view />
        <NotFriendsNotice peer=peer.clone() />
        <Composer peer />
    }
}

#[component]
fn ConversationHeader(peer: Peer, view: ConversationView) -> impl IntoView {
    let i18n = use_i18n();
    let chat = use_chat();
    let title = Signal::derive(move || {
        view.header.with(|h| {
            if h.title.is_empty() {
                h.username.clone()
            } else {
                h.title.clone()
            }
        })
    });
    let avatar = Signal::derive(move || view.header.with(|h| h.avatar.clone()));
    let subtitle = {
        let peer = peer.clone();
        move || match &peer {
            Peer::User(id) => chat.view.presence.with(|p| match p.get(id) {
                Some(p) if p.online => i18n.t(Msg::Online).to_owned(),
                Some(p) => p
                    .last_seen
                    .map(|t| format!("{} {}", i18n.t(Msg::LastSeen), short_time(t, false)))
                    .unwrap_or_default(),
                None => String::new(),
            }),
            Peer::Group(_) => i18n.t(Msg::GroupChat).to_owned(),
        }
    };
    let call_buttons = match &peer {
        Peer::User(friend) => {
            let (video_to, audio_to) = (friend.clone(), friend.clone());
            let busy = move || chat.calls.view.with(|v| v.is_some());
            Some(view! {
                <div class="call-buttons">
                    <button
                        type="button"
                        class="icon-button"
                        data-testid="start-audio-call"
                        disabled=busy
                        title=move || i18n.t(Msg::AudioCall)
                        aria-label=move || i18n.t(Msg::AudioCall)
                        on:click=move |_| chat.calls.start(audio_to.clone(), CallMedia::Audio)
                    >
                        <IconSvg icon=Icon::Phone />
                    </button>
                    <button
                        type="button"
                        class="icon-button"
                        data-testid="start-video-call"
                        disabled=busy
                        title=move || i18n.t(Msg::VideoCall)
                        aria-label=move || i18n.t(Msg::VideoCall)
                        on:click=move |_| chat.calls.start(video_to.clone(), CallMedia::Video)
                    >
                        <IconSvg icon=Icon::Video />
                    </button>
                </div>
            })
        }
        Peer::Group(_) => None,
    };
    view! {
        <header class="pane-header detail-header conversation-header">
            <A href="/chats" attr:class="back" attr:aria-label=move || i18n.t(Msg::Back)>
                <IconSvg icon=Icon::Back />
            </A>
            <Avatar name=title seed=peer.id().to_owned() url=avatar size="sm" />
            <div class="conversation-title">
                <h2 data-testid="conversation-title">{move || title.get()}</h2>
                <p class="muted small" data-testid="presence">
                    {subtitle}
                </p>
            </div>
            {call_buttons}
        </header>
    }
}

/// "Ann is typing…" for a few seconds after a typing notice.
#[component]
fn TypingLine(peer: Peer, view: ConversationView) -> impl IntoView {
    let i18n = use_i18n();
    let chat = use_chat();
    // Re-checked every second, so the line goes away.
    let tick = RwSignal::new(0u32);
    if let Ok(interval) = set_interval_with_handle(
        move || {
            tick.try_update(|t| *t += 1);
        },
        std::time::Duration::from_secs(1),
    ) {
        on_cleanup(move || interval.clear());
    }
    let line = move || {
        tick.track();
        let (from, title) = view.header.with(|h| {
            let from = h
                .typing
                .as_ref()
                .filter(|(_, until)| *until > crate::clock::now_ms())
                .map(|(from, _)| from.clone());
            (from, h.title.clone())
        });
        let from = from?;
        Some(match &peer {
            Peer::Group(_) => match chat.person(&from) {
                Some(p) if !p.name().is_empty() => {
                    format!("{} {}", p.name(), i18n.t(Msg::IsTyping))
                }
                _ => i18n.t(Msg::SomeoneTyping).to_owned(),
            },
            Peer::User(_) => format!("{title} {}", i18n.t(Msg::IsTyping)),
        })
    };
    view! {
        <p class="typing-line" data-testid="typing" aria-live="polite">
            {line}
        </p>
    }
}

/// A 1:1 chat with someone who is no longer a friend says so above the composer (what is
/// sent there is refused, with the reason on the bubble).
#[component]
fn NotFriendsNotice(peer: Peer) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    let not_friends = move || match &peer {
        Peer::User(id) => contacts
            .friends
            .get()
            .and_then(Result::ok)
            .is_some_and(|f| !f.iter().any(|e| e.user_id == *id)),
        Peer::Group(_) => false,
    };
    view! {
        <Show when=not_friends>
            <p class="chat-notice" role="status" data-testid="not-friends">
                {move || i18n.t(Msg::NotFriendsNotice)}
                " "
                <A href="/contacts">{move || i18n.t(Msg::Contacts)}</A>
            </p>
        </Show>
    }
}
