//! The conversation list: a keyed `<For>` over the chat view's keyed store, so that a new
//! message re-renders its own row (and moves it), nothing else.
use leptos::prelude::*;
use leptos_router::components::A;
use reactive_stores::Field;

use super::{href, preview, short_time};
use crate::chat::view::{ConversationListStoreFields, ListRow, ListRowStoreFields};
use crate::chat::{Status, use_chat};
use crate::i18n::{Msg, use_i18n};
use crate::protocol::Peer;
use crate::ui::widgets::Avatar;

#[component]
pub fn ConversationList(filter: RwSignal<String>) -> impl IntoView {
    let i18n = use_i18n();
    let chat = use_chat();
    let rows = chat.view.list;
    let empty = move || rows.rows().read().is_empty();
    // The keyed items go to the rows as they are: each row makes its own `Field` (a field
    // made here would belong to this closure's run and die at its next).
    let listed = move || {
        let f = filter.get().to_lowercase();
        rows.rows()
            .into_iter()
            .filter(|row| {
                f.is_empty()
                    || row.clone().title().with(|t| t.to_lowercase().contains(&f))
                    || row.clone().username().with(|u| u.contains(&f))
            })
            .collect::<Vec<_>>()
    };
    view! {
        <Show
            when=empty
            fallback=move || {
                view! {
                    <ul class="rows conversations">
                        <For each=listed key=|row| row.clone().peer().get() let:row>
                            <ConversationRow row />
                        </For>
                    </ul>
                }
            }
        >
            {move || {
                if chat.view.status.get() == Status::Online {
                    view! {
                        <div class="empty-state">
                            <p class="empty-title">{move || i18n.t(Msg::NoChats)}</p>
                            <p class="muted">{move || i18n.t(Msg::NoChatsHint)}</p>
                        </div>
                    }
                        .into_any()
                } else {
                    view! { <p class="muted pad">{move || i18n.t(Msg::Loading)}</p> }.into_any()
                }
            }}
        </Show>
    }
}

#[component]
fn ConversationRow(#[prop(into)] row: Field<ListRow>) -> impl IntoView {
    let i18n = use_i18n();
    let chat = use_chat();
    let peer = row.peer().get_untracked();
    let online = {
        let peer = peer.clone();
        move || match &peer {
            Peer::User(id) => chat
                .view
                .presence
                .with(|p| p.get(id).is_some_and(|p| p.online)),
            Peer::Group(_) => false,
        }
    };
    let time = move || {
        row.newest()
            .with(|n| n.as_ref().map(|(_, _, at)| short_time(*at, false)))
            .unwrap_or_default()
    };
    let preview_text = move || {
        row.newest().with(|n| match n {
            Some((true, content, _)) => format!("{}: {}", i18n.t(Msg::You), preview(i18n, content)),
            Some((false, content, _)) => preview(i18n, content),
            None => String::new(),
        })
    };
    let unread = move || row.unread().get();
    let testid = {
        let peer = peer.clone();
        move || match &peer {
            Peer::User(_) => row.username().get(),
            Peer::Group(id) => id.clone(),
        }
    };
    let title = Signal::derive(move || row.title().get());
    let avatar = Signal::derive(move || row.avatar().get());
    let seed = peer.id().to_owned();
    view! {
        <li class="row conversation-row" data-conversation=testid>
            <A href=href(&peer) attr:class="row-main">
                <span class="avatar-wrap">
                    <Avatar name=title seed=seed url=avatar />
                    <Show when=online.clone()>
                        <span class="presence-dot" title=move || i18n.t(Msg::Online)></span>
                    </Show>
                </span>
                <span class="row-text">
                    <span class="row-title">{move || title.get()}</span>
                    <span class="row-sub" class:failed=move || row.failed().get()>
                        {preview_text}
                    </span>
                </span>
                <span class="row-meta">
                    <span class="row-time">{time}</span>
                    <Show when=move || { unread() > 0 }>
                        <span class="badge" data-testid="unread">
                            {unread}
                        </span>
                    </Show>
                </span>
            </A>
        </li>
    }
}
