//! The messages of the open conversation: a keyed `<For>` over its message keys, each
//! bubble reading only its own signal (an arrival renders one bubble, an acknowledgement
//! re-renders one status). Scrolling to the top loads older pages and keeps the reader's
//! place; new messages keep the view at the bottom if it was there.
use leptos::html;
use leptos::prelude::*;

use super::{call_line, day_of, short_time};
use crate::chat::view::Chunk;
use crate::chat::{ConversationView, Delivery, Row, use_chat};
use crate::i18n::{Msg, use_i18n};
use crate::protocol::{CallMedia, Content, Peer};
use crate::ui::widgets::Avatar;

#[component]
pub fn MessageList(view: ConversationView, peer: Peer) -> impl IntoView {
    let i18n = use_i18n();
    let chat = use_chat();
    let list = NodeRef::<html::Div>::new();
    // Where the reader was: to stay at the bottom for new messages, and to keep the place
    // when older ones are put above.
    let at_bottom = StoredValue::new(true);
    let height_before = StoredValue::new(0i32);
    let on_scroll = {
        let peer = peer.clone();
        move |_| {
            let Some(el) = list.get() else { return };
            at_bottom.set_value(el.scroll_height() - el.scroll_top() - el.client_height() < 80);
            if el.scroll_top() < 120 {
                let can_load = view
                    .header
                    .with_untracked(|h| h.history_loaded && h.more_history && !h.loading_history);
                if can_load {
                    height_before.set_value(el.scroll_height());
                    chat.load_history(peer.clone());
                }
            }
        }
    };
    Effect::new(
        move |previous: Option<(usize, Option<std::sync::Arc<str>>)>| {
            let shape = view.shape();
            let Some(el) = list.get() else { return shape };
            let prepended = previous
                .as_ref()
                .is_some_and(|(_, first)| first.is_some() && *first != shape.1 && shape.0 > 0)
                && height_before.get_value() > 0;
            if prepended {
                el.set_scroll_top(el.scroll_height() - height_before.get_value() + el.scroll_top());
                height_before.set_value(0);
            } else if at_bottom.get_value() || previous.is_none_or(|(len, _)| len == 0) {
                // In the next frame, before it is drawn: reading the height here would lay the
                // page out in the middle of the update, and the scroll handler would lay it
                // out again for what changed after (two layouts a message, not one).
                request_animation_frame(move || {
                    if let Some(el) = list.try_get_untracked().flatten() {
                        el.set_scroll_top(el.scroll_height());
                    }
                });
            }
            shape
        },
    );
    let loading = move || view.header.with(|h| h.loading_history);
    let nothing_yet = move || {
        view.header
            .with(|h| h.history_loaded && h.loaded == 0 && !h.loading_history)
    };
    view! {
        <div class="messages" node_ref=list on:scroll=on_scroll data-testid="messages">
            <Show when=loading>
                <p class="muted center small">{move || i18n.t(Msg::Loading)}</p>
            </Show>
            <Show when=nothing_yet>
                <div class="empty-state">
                    <p class="muted">{move || i18n.t(Msg::NoMessagesYet)}</p>
                </div>
            </Show>
            <For each=move || view.chunks.get() key=|chunk| chunk.id let:chunk>
                <MessageChunk chunk view peer=peer.clone() />
            </For>
        </div>
    }
}

/// One chunk of bubbles, in a box of its own (see `chat::view::Chunk`).
#[component]
fn MessageChunk(chunk: Chunk, view: ConversationView, peer: Peer) -> impl IntoView {
    view! {
        <div class="message-chunk">
            <For each=move || chunk.keys.get() key=|key| key.clone() let:key>
                {view.row(&key).map(|row| view! { <Bubble row peer=peer.clone() /> })}
            </For>
        </div>
    }
}

#[component]
fn Bubble(row: RwSignal<Row>, peer: Peer) -> impl IntoView {
    let i18n = use_i18n();
    let chat = use_chat();
    let separator = move || {
        row.with(|r| r.new_day.then(|| day_of(r.created_at)))
            .map(|day| view! { <p class="day-separator">{day}</p> })
    };
    let (mine, client_id, content) =
        row.with_untracked(|r| (r.mine, r.client_id.clone(), r.content.clone()));
    let time = move || row.with(|r| short_time(r.created_at, false));
    let body = match content {
        Content::Text { text } => view! { <span class="bubble-text">{text}</span> }.into_any(),
        Content::Image {
            media,
            width,
            height,
            thumb,
            name,
            ..
        } => {
            // The box has the picture's shape before the thumbnail arrives: no jump.
            let (w, h) = fit(width, height);
            let open = {
                let (peer, media) = (peer.clone(), media.clone());
                move |ev: leptos::ev::MouseEvent| {
                    // A plain click opens the viewer; a middle or modified click, a tab.
                    if ev.button() == 0
                        && !(ev.ctrl_key() || ev.meta_key() || ev.shift_key())
                        && super::uploads::view_picture(&peer, &media)
                    {
                        ev.prevent_default();
                        ev.stop_propagation();
                    }
                }
            };
            view! {
                <a
                    class="bubble-image"
                    href=crate::model::media_url(&media, false)
                    target="_blank"
                    rel="noopener external"
                    data-testid="bubble-image"
                    on:click=open
                >
                    <img src=thumb width=w height=h loading="lazy" alt=name />
                </a>
            }
            .into_any()
        }
        Content::File {
            media, name, size, ..
        } => {
            let download = name.clone();
            view! {
                <a
                    class="bubble-file"
                    href=crate::model::media_url(&media, false)
                    download=download
                    rel="external"
                    data-testid="bubble-file"
                    title=move || i18n.t(Msg::Download)
                >
                    <span class="bubble-file-icon" aria-hidden="true">
                        "📄"
                    </span>
                    <span class="bubble-file-name">{name}</span>
                    <span class="muted small">{file_size(size)}</span>
                </a>
            }
            .into_any()
        }
        Content::Call {
            media,
            outcome,
            duration_ms,
        } => {
            let line = move || call_line(i18n, media, outcome, duration_ms);
            return view! {
                {separator}
                <div class="call-record" data-testid="call-record">
                    <span class="call-record-icon" aria-hidden="true">
                        {if media == CallMedia::Video { "🎥" } else { "📞" }}
                    </span>
                    <span>{line}</span>
                    <span class="muted small">{time}</span>
                </div>
            }
            .into_any();
        }
    };
    let delivery = move || row.with(|r| r.delivery);
    let failed = move || matches!(delivery(), Delivery::Failed(_));
    let state = move || {
        row.with(|r| match (r.mine, r.delivery, r.read) {
            (false, _, _) => None,
            (true, Delivery::Sending, _) => Some(("sending", Msg::StateSending)),
            (true, Delivery::Failed(_), _) => Some(("failed", Msg::StateFailed)),
            (true, Delivery::Sent, true) => Some(("read", Msg::StateRead)),
            (true, Delivery::Sent, false) => Some(("sent", Msg::StateSent)),
        })
    };
    let discard = {
        let (peer, client_id) = (peer.clone(), client_id.clone());
        move |ev: leptos::ev::MouseEvent| {
            ev.stop_propagation();
            chat.discard(peer.clone(), client_id.clone());
        }
    };
    let retry = {
        let client_id = client_id.clone();
        move |_| {
            if failed() {
                chat.retry(peer.clone(), client_id.clone());
            }
        }
    };
    // In a group, who said it: name and face (not the id).
    let sender = move || {
        row.with(|r| r.sender.clone()).map(|p| {
            let name = if p.name().is_empty() {
                i18n.t(Msg::SomeoneInGroup).to_owned()
            } else {
                p.name().to_owned()
            };
            let (seed, url) = (p.id.clone(), p.avatar.clone());
            view! {
                <span class="bubble-sender" data-testid="bubble-sender">
                    <Avatar name=name.clone() seed=seed url=url size="xs" />
                    <span>{name}</span>
                </span>
            }
        })
    };
    view! {
        {separator}
        <div
            class="bubble-row"
            class:mine=mine
            data-client-id=client_id
            data-state=move || state().map(|s| s.0).unwrap_or("")
        >
            <div
                class="bubble"
                class:failed=failed
                on:click=retry
                title=move || if failed() { i18n.t(Msg::TapToRetry) } else { "" }
            >
                {sender}
                {body}
                <span class="bubble-meta">
                    <time>{time}</time>
                    {move || {
                        state()
                            .map(|(name, label)| {
                                view! {
                                    <span class=format!(
                                        "state state-{name}",
                                    )>{move || i18n.t(label)}</span>
                                }
                            })
                    }}
                </span>
                {move || match delivery() {
                    Delivery::Failed(code) => {
                        Some(
                            view! {
                                <span class="bubble-error">
                                    {move || i18n.t(Msg::for_error(code))} " "
                                    {move || i18n.t(Msg::TapToRetry)} " "
                                    <button
                                        type="button"
                                        class="link small discard"
                                        data-testid="discard"
                                        on:click=discard.clone()
                                    >
                                        {move || i18n.t(Msg::DeleteUnsent)}
                                    </button>
                                </span>
                            },
                        )
                    }
                    _ => None,
                }}
            </div>
        </div>
    }
    .into_any()
}

/// The size a picture is shown at: at most 240 × 320 CSS pixels, its own shape.
fn fit(width: u32, height: u32) -> (u32, u32) {
    let (w, h) = (f64::from(width.max(1)), f64::from(height.max(1)));
    let scale = (240.0 / w).min(320.0 / h).min(1.0);
    (
        ((w * scale).round() as u32).max(1),
        ((h * scale).round() as u32).max(1),
    )
}

/// A file size for people: "312 B", "4.2 KB", "17.0 MB".
pub fn file_size(bytes: u64) -> String {
    const KB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KB {
        format!("{bytes} B")
    } else if b < KB * KB {
        format!("{:.1} KB", b / KB)
    } else if b < KB * KB * KB {
        format!("{:.1} MB", b / KB / KB)
    } else {
        format!("{:.1} GB", b / KB / KB / KB)
    }
}
