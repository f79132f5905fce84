//! The Chats tab: the conversation list (newest first, unread badges, presence) and the
//! conversation pane (history on scroll, bubbles with sending / sent / read / failed, typing,
//! Enter to send). Everything here renders in the browser only: it lives on the socket.
use leptos::html;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use crate::chat::{ChatMessage, Conversation, Delivery, Status, use_chat};
use crate::i18n::{Msg, use_i18n};
use crate::protocol::{CallMedia, CallOutcome, Content, MAX_TEXT_CHARS, Peer};
use crate::ui::contacts::use_contacts;
use crate::ui::widgets::{Avatar, ClientOnly, Icon, IconSvg};

/// `HH:MM` today, `MM-DD` before, in the browser's time zone.
fn short_time(unix_ms: i64, with_date: bool) -> String {
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

fn preview(i18n: crate::i18n::I18n, content: &Content) -> String {
    match content {
        Content::Call {
            media,
            outcome,
            duration_ms,
        } => format!("[{}]", call_line(i18n, *media, *outcome, *duration_ms)),
        text => text.preview(),
    }
}

/// `mm:ss` (or `h:mm:ss`) of a duration.
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

/// A call record in words: "Video call 03:12", "Missed voice call", ...
fn call_line(
    i18n: crate::i18n::I18n,
    media: CallMedia,
    outcome: CallOutcome,
    duration_ms: u64,
) -> String {
    let video = media == CallMedia::Video;
    match outcome {
        CallOutcome::Completed => format!(
            "{} {}",
            i18n.t(if video {
                Msg::VideoCall
            } else {
                Msg::AudioCall
            }),
            clock(duration_ms)
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
                    <ConnectionBadge/>
                    <NotificationsButton/>
                </ClientOnly>
            </header>
            <div class="search">
                <IconSvg icon=Icon::Search/>
                <input type="search" placeholder=move || i18n.t(Msg::Search) aria-label=move || i18n.t(Msg::Search) bind:value=filter/>
            </div>
            <div class="list-body">
                <ClientOnly>
                    <ConversationList filter/>
                </ClientOnly>
            </div>
        </section>
        <leptos_router::components::Outlet/>
    }
}

/// "Connecting…" / "Offline" while the socket is not up.
#[component]
fn ConnectionBadge() -> impl IntoView {
    let i18n = use_i18n();
    let chat = use_chat();
    move || {
        match chat.status.get() {
        Status::Online => ().into_any(),
        Status::Connecting => view! { <span class="conn-state" data-testid="conn-state">{move || i18n.t(Msg::Connecting)}</span> }.into_any(),
        Status::Offline => view! { <span class="conn-state offline" data-testid="conn-state">{move || i18n.t(Msg::OfflineRetrying)}</span> }.into_any(),
        Status::TooManyConnections => view! { <span class="conn-state offline" data-testid="conn-state">{move || i18n.t(Msg::TooManyConnections)}</span> }.into_any(),
    }
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
        {
            let _ = web_sys::Notification::request_permission();
        }
        undecided.set(false);
    };
    view! {
        <Show when=move || undecided.get()>
            <button type="button" class="link small notify-button" on:click=ask>{move || i18n.t(Msg::EnableNotifications)}</button>
        </Show>
    }
}

#[component]
fn ConversationList(filter: RwSignal<String>) -> impl IntoView {
    let i18n = use_i18n();
    let chat = use_chat();
    let rows = Memo::new(move |_| {
        let f = filter.get().to_lowercase();
        let mut list: Vec<Conversation> = chat.conversations.with(|all| {
            all.values()
                .filter(|c| !c.title.is_empty() || c.last.is_some())
                .filter(|c| {
                    f.is_empty() || c.title.to_lowercase().contains(&f) || c.username.contains(&f)
                })
                .cloned()
                .collect()
        });
        list.sort_by(|a, b| {
            b.activity()
                .cmp(&a.activity())
                .then_with(|| a.title.cmp(&b.title))
        });
        list
    });
    move || {
        let list = rows.get();
        if list.is_empty() {
            if chat.status.get() != Status::Online {
                return view! { <p class="muted pad">{move || i18n.t(Msg::Loading)}</p> }
                    .into_any();
            }
            return view! {
                <div class="empty-state">
                    <p class="empty-title">{move || i18n.t(Msg::NoChats)}</p>
                    <p class="muted">{move || i18n.t(Msg::NoChatsHint)}</p>
                </div>
            }
            .into_any();
        }
        view! {
            <ul class="rows conversations">
                {list.into_iter().map(|c| view! { <ConversationRow conversation=c/> }).collect_view()}
            </ul>
        }
        .into_any()
    }
}

fn href(peer: &Peer) -> String {
    match peer {
        Peer::User(id) => format!("/chats/user/{id}"),
        Peer::Group(id) => format!("/chats/group/{id}"),
    }
}

#[component]
fn ConversationRow(conversation: Conversation) -> impl IntoView {
    let i18n = use_i18n();
    let chat = use_chat();
    let me = chat.my_id();
    let online = {
        let peer = conversation.with.clone();
        move || match &peer {
            Peer::User(id) => chat.presence.with(|p| p.get(id).is_some_and(|p| p.online)),
            Peer::Group(_) => false,
        }
    };
    let newest = conversation
        .messages
        .last()
        .cloned()
        .or(conversation.last.clone());
    let time = newest
        .as_ref()
        .map(|m| short_time(m.created_at, false))
        .unwrap_or_default();
    let preview_text = move || match &newest {
        Some(m) if m.from == me => format!("{}: {}", i18n.t(Msg::You), preview(i18n, &m.content)),
        Some(m) => preview(i18n, &m.content),
        None => String::new(),
    };
    let failed = conversation
        .messages
        .iter()
        .any(|m| matches!(m.delivery, Delivery::Failed(_)));
    let unread = conversation.unread;
    let testid = match &conversation.with {
        Peer::User(_) => conversation.username.clone(),
        Peer::Group(id) => id.clone(),
    };
    let seed = conversation.with.id().to_owned();
    view! {
        <li class="row conversation-row" data-conversation=testid>
            <A href=href(&conversation.with) attr:class="row-main">
                <span class="avatar-wrap">
                    <Avatar name=conversation.title.clone() seed=seed url=conversation.avatar.clone()/>
                    <Show when=online.clone()>
                        <span class="presence-dot" title=move || i18n.t(Msg::Online)></span>
                    </Show>
                </span>
                <span class="row-text">
                    <span class="row-title">{conversation.title.clone()}</span>
                    <span class="row-sub" class:failed=failed>{preview_text}</span>
                </span>
                <span class="row-meta">
                    <span class="row-time">{time}</span>
                    {(unread > 0).then(|| view! { <span class="badge" data-testid="unread">{unread}</span> })}
                </span>
            </A>
        </li>
    }
}

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
    view! {
        <section class="detail-pane conversation" data-testid="conversation">
            <ClientOnly>
                {move || view! { <ConversationBody peer=peer.get()/> }}
            </ClientOnly>
        </section>
    }
}

#[component]
fn ConversationBody(peer: Peer) -> impl IntoView {
    let i18n = use_i18n();
    let chat = use_chat();
    let contacts = use_contacts();
    chat.open.set(Some(peer.clone()));
    on_cleanup(move || chat.open.set(None));

    // Name the conversation from the contact lists when the relay has not yet.
    {
        let peer = peer.clone();
        Effect::new(move |_| {
            let (title, avatar, username) = match &peer {
                Peer::User(id) => contacts
                    .friends
                    .get()
                    .and_then(Result::ok)
                    .and_then(|f| f.into_iter().find(|e| e.user_id == *id))
                    .map(|e| (e.nickname, e.avatar, e.username))
                    .unwrap_or_default(),
                Peer::Group(id) => contacts
                    .groups
                    .get()
                    .and_then(Result::ok)
                    .and_then(|g| {
                        g.into_iter()
                            .filter_map(|e| e.community)
                            .find(|c| c.id == *id)
                    })
                    .map(|c| (c.name, c.avatar, String::new()))
                    .unwrap_or_default(),
            };
            if !title.is_empty() {
                chat.ensure(&peer, &title, &avatar, &username);
            }
        });
    }
    // The first page of history once online.
    {
        let peer = peer.clone();
        Effect::new(move |_| {
            if chat.status.get() == Status::Online {
                let loaded = chat
                    .conversations
                    .with_untracked(|all| all.get(&peer).is_some_and(|c| c.history_loaded));
                if !loaded {
                    chat.load_history(peer.clone());
                }
            }
        });
    }
    let conversation = {
        let peer = peer.clone();
        Memo::new(move |_| {
            chat.conversations
                .with(|all| all.get(&peer).cloned())
                .unwrap_or_else(|| Conversation::new(peer.clone()))
        })
    };
    // Read what is on screen, now and whenever more arrives or the tab comes back.
    let visible = RwSignal::new(crate::chat::page_visible());
    let _listener = window_event_listener(leptos::ev::visibilitychange, move |_| {
        visible.set(crate::chat::page_visible())
    });
    {
        let peer = peer.clone();
        Effect::new(move |_| {
            let unread = conversation.with(|c| {
                (
                    c.unread,
                    c.messages.len(),
                    c.last.as_ref().and_then(|l| l.id),
                )
            });
            if visible.get() && chat.status.get() == Status::Online {
                let _ = unread;
                chat.mark_read(&peer);
            }
        });
    }

    let title = move || {
        conversation.with(|c| {
            if c.title.is_empty() {
                c.username.clone()
            } else {
                c.title.clone()
            }
        })
    };
    let subtitle = {
        let peer = peer.clone();
        move || match &peer {
            Peer::User(id) => chat.presence.with(|p| match p.get(id) {
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
    // A 1:1 chat with someone who is no longer a friend says so above the composer (what
    // is sent there is refused, with the reason on the bubble).
    let not_friends = {
        let peer = peer.clone();
        move || match &peer {
            Peer::User(id) => contacts
                .friends
                .get()
                .and_then(Result::ok)
                .is_some_and(|f| !f.iter().any(|e| e.user_id == *id)),
            Peer::Group(_) => false,
        }
    };
    let typing = move || {
        conversation.with(|c| {
            c.typing
                .as_ref()
                .filter(|(_, until)| *until > crate::chat::now_ms())
                .map(|(from, _)| from.clone())
        })
    };
    // Re-check the typing line every second so it goes away.
    let tick = RwSignal::new(0u32);
    let _interval = set_interval_with_handle(
        move || tick.update(|t| *t += 1),
        std::time::Duration::from_secs(1),
    );
    let typing_line = move || {
        tick.track();
        typing().map(|_| {
            let who = conversation.with(|c| c.title.clone());
            match conversation.with(|c| c.with.is_group()) {
                true => i18n.t(Msg::SomeoneTyping).to_owned(),
                false => format!("{who} {}", i18n.t(Msg::IsTyping)),
            }
        })
    };
    let call_buttons = match &peer {
        Peer::User(friend) => {
            let (video_to, audio_to) = (friend.clone(), friend.clone());
            let busy = move || chat.calls.view.with(|v| v.is_some());
            Some(view! {
                <div class="call-buttons">
                    <button type="button" class="icon-button" data-testid="start-audio-call" disabled=busy
                        title=move || i18n.t(Msg::AudioCall) aria-label=move || i18n.t(Msg::AudioCall)
                        on:click=move |_| chat.start_call(audio_to.clone(), CallMedia::Audio)>
                        <IconSvg icon=Icon::Phone/>
                    </button>
                    <button type="button" class="icon-button" data-testid="start-video-call" disabled=busy
                        title=move || i18n.t(Msg::VideoCall) aria-label=move || i18n.t(Msg::VideoCall)
                        on:click=move |_| chat.start_call(video_to.clone(), CallMedia::Video)>
                        <IconSvg icon=Icon::Video/>
                    </button>
                </div>
            })
        }
        Peer::Group(_) => None,
    };
    let seed = peer.id().to_owned();
    let avatar_name = Signal::derive(title);
    let avatar_url = Signal::derive(move || conversation.with(|c| c.avatar.clone()));
    view! {
        <header class="pane-header detail-header conversation-header">
            <A href="/chats" attr:class="back" attr:aria-label=move || i18n.t(Msg::Back)>
                <IconSvg icon=Icon::Back/>
            </A>
            <Avatar name=avatar_name seed=seed url=avatar_url size="sm"/>
            <div class="conversation-title">
                <h2 data-testid="conversation-title">{title}</h2>
                <p class="muted small" data-testid="presence">{subtitle}</p>
            </div>
            {call_buttons}
        </header>
        <MessageList conversation peer=peer.clone()/>
        <p class="typing-line" data-testid="typing" aria-live="polite">{typing_line}</p>
        <Show when=not_friends>
            <p class="chat-notice" role="status" data-testid="not-friends">
                {move || i18n.t(Msg::NotFriendsNotice)} " "
                <A href="/contacts">{move || i18n.t(Msg::Contacts)}</A>
            </p>
        </Show>
        <Composer peer/>
    }
}

#[component]
fn MessageList(conversation: Memo<Conversation>, peer: Peer) -> impl IntoView {
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
                let can_load = conversation
                    .with_untracked(|c| c.history_loaded && c.more_history && !c.loading_history);
                if can_load {
                    height_before.set_value(el.scroll_height());
                    chat.load_history(peer.clone());
                }
            }
        }
    };
    Effect::new(move |previous: Option<(usize, Option<i64>)>| {
        let shape =
            conversation.with(|c| (c.messages.len(), c.messages.first().and_then(|m| m.id)));
        let Some(el) = list.get() else { return shape };
        let prepended = previous
            .is_some_and(|(_, first)| first.is_some() && first != shape.1 && shape.1 < first);
        if prepended && height_before.get_value() > 0 {
            el.set_scroll_top(el.scroll_height() - height_before.get_value() + el.scroll_top());
            height_before.set_value(0);
        } else if at_bottom.get_value() || previous.is_none_or(|(len, _)| len == 0) {
            el.set_scroll_top(el.scroll_height());
        }
        shape
    });
    view! {
        <div class="messages" node_ref=list on:scroll=on_scroll data-testid="messages">
            {move || conversation.with(|c| c.loading_history).then(|| view! { <p class="muted center small">{move || i18n.t(Msg::Loading)}</p> })}
            {move || conversation.with(|c| c.history_loaded && c.messages.is_empty() && !c.loading_history).then(|| view! {
                <div class="empty-state"><p class="muted">{move || i18n.t(Msg::NoMessagesYet)}</p></div>
            })}
            {
                let peer = peer.clone();
                move || {
                    let me = chat.me.with(|m| m.as_ref().map(|m| m.id.clone()).unwrap_or_default());
                    let (messages, peer_read, group) = conversation.with(|c| (c.messages.clone(), c.peer_read_up_to, c.with.is_group()));
                    let mut last_day = String::new();
                    messages
                        .into_iter()
                        .map(|m| {
                            let day = day_of(m.created_at);
                            let separator = (day != last_day).then(|| view! { <p class="day-separator">{day.clone()}</p> });
                            last_day = day;
                            let read = m.id.is_some_and(|id| id <= peer_read) && !group;
                            view! {
                                {separator}
                                <Bubble message=m me=me.clone() read peer=peer.clone() group/>
                            }
                        })
                        .collect_view()
                }
            }
        </div>
    }
}

#[component]
fn Bubble(message: ChatMessage, me: String, read: bool, peer: Peer, group: bool) -> impl IntoView {
    let i18n = use_i18n();
    let chat = use_chat();
    let mine = message.from == me;
    let text = match message.content.clone() {
        Content::Text { text } => text,
        Content::Call {
            media,
            outcome,
            duration_ms,
        } => {
            let line = move || call_line(i18n, media, outcome, duration_ms);
            return view! {
                <div class="call-record" data-testid="call-record">
                    <span class="call-record-icon" aria-hidden="true">
                        {if media == CallMedia::Video { "🎥" } else { "📞" }}
                    </span>
                    <span>{line}</span>
                    <span class="muted small">{short_time(message.created_at, false)}</span>
                </div>
            }
            .into_any();
        }
    };
    let state = match (mine, message.delivery, read) {
        (false, _, _) => None,
        (true, Delivery::Sending, _) => Some(("sending", Msg::StateSending)),
        (true, Delivery::Failed(_), _) => Some(("failed", Msg::StateFailed)),
        (true, Delivery::Sent, true) => Some(("read", Msg::StateRead)),
        (true, Delivery::Sent, false) => Some(("sent", Msg::StateSent)),
    };
    let failed = matches!(message.delivery, Delivery::Failed(_));
    let error = match message.delivery {
        Delivery::Failed(code) => Some(code),
        _ => None,
    };
    let client_id = message.client_id.clone();
    let discard = {
        let (peer, client_id) = (peer.clone(), client_id.clone());
        move |ev: leptos::ev::MouseEvent| {
            ev.stop_propagation();
            chat.discard(&peer, &client_id);
        }
    };
    let retry = move |_| {
        if failed {
            chat.retry(peer.clone(), client_id.clone());
        }
    };
    let sender_name = (!mine && group).then(|| message.from.chars().take(8).collect::<String>());
    view! {
        <div class="bubble-row" class:mine=mine data-client-id=message.client_id.clone() data-state=state.map(|s| s.0).unwrap_or("")>
            <div class="bubble" class:failed=failed on:click=retry title=move || if failed { i18n.t(Msg::TapToRetry) } else { "" }>
                {sender_name.map(|n| view! { <span class="bubble-sender">{n}</span> })}
                <span class="bubble-text">{text}</span>
                <span class="bubble-meta">
                    <time>{short_time(message.created_at, false)}</time>
                    {state.map(|(name, label)| view! { <span class=format!("state state-{name}")>{move || i18n.t(label)}</span> })}
                </span>
                {error.map(|code| view! {
                    <span class="bubble-error">
                        {move || i18n.t(Msg::for_error(code))} " " {move || i18n.t(Msg::TapToRetry)} " "
                        <button type="button" class="link small discard" data-testid="discard" on:click=discard>{move || i18n.t(Msg::DeleteUnsent)}</button>
                    </span>
                })}
            </div>
        </div>
    }
    .into_any()
}

#[component]
fn Composer(peer: Peer) -> impl IntoView {
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
            if let Some(el) = input.get_untracked() {
                let _ = el.focus();
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
            let now = crate::chat::now_ms();
            if now - last_typing.get_value() > 2000.0 {
                last_typing.set_value(now);
                chat.typing(peer.clone());
            }
        }
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        send();
    };
    view! {
        <form class="composer" on:submit=on_submit data-testid="composer">
            <textarea
                node_ref=input
                rows="1"
                bind:value=text
                on:keydown=on_key
                on:input=on_input
                placeholder=move || i18n.t(Msg::TypeMessage)
                aria-label=move || i18n.t(Msg::TypeMessage)
            ></textarea>
            <button class="primary" type="submit" disabled=move || text.with(|t| t.trim().is_empty()) || too_long()>
                {move || i18n.t(Msg::Send)}
            </button>
            <Show when=too_long>
                <p class="note note-error composer-error" role="alert">{move || i18n.t(Msg::ErrMessageTooLong)}</p>
            </Show>
        </form>
    }
}
