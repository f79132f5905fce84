//! The Chats tab: the conversation list (`list`: newest first, unread badges, presence) and
//! the conversation pane (`conversation`: header, typing, notices; `messages`: history on
//! scroll and bubbles; `composer`: Enter to send). Everything here renders in the browser
//! only: it lives on the socket. The words and times they share are below.
mod composer;
mod conversation;
mod list;
mod messages;
mod uploads;

use leptos::prelude::*;

use crate::chat::{Status, use_chat};
use crate::i18n::{I18n, Msg, use_i18n};
use crate::protocol::{CallMedia, CallOutcome, Content, Peer};
use crate::ui::widgets::{ClientOnly, SearchBox};

pub use conversation::ConversationPane;
pub use uploads::UploadQueue;

/// `HH:MM` today, `MM-DD` before, in the browser's time zone; `with_date` always adds the
/// date (`YYYY-MM-DD HH:MM`).
pub fn short_time(unix_ms: i64, with_date: bool) -> String {
    #[cfg(feature = "hydrate")]
    {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(unix_ms as f64));
        let today = js_sys::Date::new_0();
        let same_day = date.get_date() == today.get_date()
            && date.get_month() == today.get_month()
            && date.get_full_year() == today.get_full_year();
        let hm = format!("{:02}:{:02}", date.get_hours(), date.get_minutes());
        if same_day && !with_date {
            hm
        } else if with_date {
            format!(
                "{}-{:02}-{:02} {hm}",
                date.get_full_year(),
                date.get_month() + 1,
                date.get_date()
            )
        } else {
            format!("{:02}-{:02}", date.get_month() + 1, date.get_date())
        }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = with_date;
        crate::ui::widgets::format_date(unix_ms)
    }
}

/// The day a message was sent, for separators (`YYYY-MM-DD`, local time).
fn day_of(unix_ms: i64) -> String {
    short_time(unix_ms, true)
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// One line saying what a message is: its text, or the call it records.
fn preview(i18n: I18n, content: &Content) -> String {
    match content {
        Content::Call {
            media,
            outcome,
            duration_ms,
        } => format!("[{}]", call_line(i18n, *media, *outcome, *duration_ms)),
        Content::Image { .. } => i18n.t(Msg::ImagePreview).to_owned(),
        Content::File { name, .. } => format!("{} {name}", i18n.t(Msg::FilePreview)),
        text => text.preview(),
    }
}

/// `mm:ss` (or `h:mm:ss`) of a duration.
pub fn duration_text(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

/// A call record in words: "Video call 03:12", "Missed voice call", ...
fn call_line(i18n: I18n, media: CallMedia, outcome: CallOutcome, duration_ms: u64) -> String {
    let video = media == CallMedia::Video;
    match outcome {
        CallOutcome::Completed => format!(
            "{} {}",
            i18n.t(if video {
                Msg::VideoCall
            } else {
                Msg::AudioCall
            }),
            duration_text(duration_ms)
        ),
        CallOutcome::Missed => i18n
            .t(if video {
                Msg::MissedVideoCall
            } else {
                Msg::MissedAudioCall
            })
            .to_owned(),
        CallOutcome::Declined => i18n.t(Msg::DeclinedCall).to_owned(),
        CallOutcome::Cancelled => i18n.t(Msg::CancelledCall).to_owned(),
        CallOutcome::Busy => i18n.t(Msg::BusyCall).to_owned(),
        CallOutcome::Failed | CallOutcome::AnsweredElsewhere => i18n.t(Msg::FailedCall).to_owned(),
    }
}

/// Where a conversation opens.
fn href(peer: &Peer) -> String {
    match peer {
        Peer::User(id) => format!("/chats/user/{id}"),
        Peer::Group(id) => format!("/chats/group/{id}"),
    }
}

/// The Chats list pane, and the selected conversation (or a placeholder) in the outlet.
#[component]
pub fn ChatsView() -> impl IntoView {
    let i18n = use_i18n();
    let filter = RwSignal::new(String::new());
    view! {
        <section class="list-pane chats-pane">
            <header class="pane-header">
                <h2>{move || i18n.t(Msg::Chats)}</h2>
                <ClientOnly fallback=|| ()>
                    <ConnectionBadge />
                    <NotificationsButton />
                </ClientOnly>
            </header>
            <SearchBox filter />
            <div class="list-body">
                <noscript>
                    <p class="note" data-testid="needs-js">
                        {move || i18n.t(Msg::ChatNeedsJs)}
                    </p>
                </noscript>
                <ClientOnly>
                    <list::ConversationList filter />
                </ClientOnly>
            </div>
        </section>
        <leptos_router::components::Outlet />
        <ClientOnly fallback=|| ()>
            <uploads::PictureViewer />
        </ClientOnly>
    }
}

/// "Connecting…" / "Offline" while the socket is not up.
#[component]
fn ConnectionBadge() -> impl IntoView {
    let i18n = use_i18n();
    let chat = use_chat();
    move || {
        let (class, msg) = match chat.view.status.get() {
            Status::Online => return ().into_any(),
            Status::Connecting => ("conn-state", Msg::Connecting),
            Status::Offline => ("conn-state offline", Msg::OfflineRetrying),
            Status::TooManyConnections => ("conn-state offline", Msg::TooManyConnections),
        };
        view! {
            <span class=class data-testid="conn-state">
                {move || i18n.t(msg)}
            </span>
        }
        .into_any()
    }
}

/// Offers desktop notifications until the user has decided.
#[component]
fn NotificationsButton() -> impl IntoView {
    let i18n = use_i18n();
    let undecided = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    undecided.set(web_sys::Notification::permission() == web_sys::NotificationPermission::Default);
    let ask = move |_| {
        #[cfg(feature = "hydrate")]
        if let Err(err) = web_sys::Notification::request_permission() {
            leptos::logging::warn!("notification permission not asked: {err:?}");
        }
        undecided.set(false);
    };
    view! {
        <Show when=move || undecided.get()>
            <button type="button" class="link small notify-button" on:click=ask>
                {move || i18n.t(Msg::EnableNotifications)}
            </button>
        </Show>
    }
}
