//! Requests waiting for the caller's answer: "New friends" in the list pane, and the join
//! requests on a group's card. One row shows either kind: who asks (name, avatar,
//! username), their whole note, and the answers under it, so nothing a person must read is
//! cut short to make room for the buttons.
use leptos::prelude::*;

use super::{ItemLink, Op, load_error, loading, matches_filter, use_contacts};
use crate::api::community::{approve_member, decline_member};
use crate::api::relation::{accept_friend, decline_friend};
use crate::contacts::RelationEntry;
use crate::i18n::{Msg, use_i18n};
use crate::ui::widgets::{Avatar, ErrorNote};

#[component]
pub fn NewFriends(filter: RwSignal<String>) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    let count = move || contacts.pending_count();
    view! {
        <details class="section" open data-section="new-friends">
            <summary>
                {move || i18n.t(Msg::NewFriends)} <Show when=move || { count() > 0 }>
                    <span class="badge" data-testid="new-friends-count">
                        {count}
                    </span>
                </Show>
            </summary>
            {move || {
                let (Some(received), Some(joins)) = (
                    contacts.received.get(),
                    contacts.join_requests.get(),
                ) else {
                    return loading().into_any();
                };
                let (received, joins) = match (received, joins) {
                    (Ok(r), Ok(j)) => (r, j),
                    (Err(e), _) | (_, Err(e)) => return load_error(e).into_any(),
                };
                let f = filter.get();
                let rows: Vec<_> = received
                    .into_iter()
                    .chain(joins)
                    .filter(|e| matches_filter(e, &f))
                    .collect();
                if rows.is_empty() {
                    return view! {
                        <p class="muted pad small">{move || i18n.t(Msg::NoRequests)}</p>
                    }
                        .into_any();
                }
                view! {
                    <ul class="rows">
                        {rows
                            .into_iter()
                            .map(|entry| view! { <RequestRow entry show_group=true /> })
                            .collect_view()}
                    </ul>
                }
                    .into_any()
            }}
        </details>
    }
}

/// A friend request to the caller, or a request to join a group the caller owns
/// (`entry.community` set); `show_group` names the group (not needed on its own card).
#[component]
pub fn RequestRow(entry: RelationEntry, show_group: bool) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    let op = Op::new();
    let group = entry.community.clone();
    let username = entry.username.clone();
    let (yes_label, href) = match &group {
        Some(g) => (Msg::Approve, format!("/contacts/group/{}", g.id)),
        None => (Msg::Accept, format!("/contacts/user/{username}")),
    };
    let answer = move |yes: bool| {
        let (group, username) = (group.clone(), username.clone());
        move |_| {
            let done = move |_| contacts.refresh();
            match (&group, yes) {
                (Some(g), true) => op.run(approve_member(g.id.clone(), username.clone()), done),
                (Some(g), false) => op.run(decline_member(g.id.clone(), username.clone()), done),
                (None, true) => op.run(accept_friend(username.clone()), done),
                (None, false) => op.run(decline_friend(username.clone()), done),
            }
        }
    };
    let group_name = entry
        .community
        .as_ref()
        .filter(|_| show_group)
        .map(|g| format!(" → {}", g.name));
    let memo = (!entry.memo.is_empty()).then(|| entry.memo.clone());
    let handle = format!("@{}", entry.username);
    view! {
        <li class="row request-row" data-username=entry.username.clone()>
            <ItemLink href>
                <Avatar
                    name=entry.nickname.clone()
                    seed=entry.user_id.clone()
                    url=entry.avatar.clone()
                />
                <span class="row-text">
                    <span class="row-title">{entry.nickname.clone()} {group_name}</span>
                    <span class="row-sub">{handle}</span>
                    {memo
                        .map(|m| {
                            view! {
                                <span class="row-sub memo" data-testid="request-memo">
                                    {m}
                                </span>
                            }
                        })}
                </span>
            </ItemLink>
            <span class="row-actions">
                <button
                    type="button"
                    class="primary small"
                    disabled=move || op.busy.get()
                    on:click=answer(true)
                >
                    {move || i18n.t(yes_label)}
                </button>
                <button
                    type="button"
                    class="secondary small"
                    disabled=move || op.busy.get()
                    on:click=answer(false)
                >
                    {move || i18n.t(Msg::Decline)}
                </button>
            </span>
            <ErrorNote error=op.error_signal() />
        </li>
    }
}
