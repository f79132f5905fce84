//! The lists of the Contacts tab: groups, friends filed by letter, and people who removed
//! the caller (greyed, with "removed you").
use leptos::prelude::*;

use super::{ItemLink, load_error, loading, matches_filter, use_contacts};
use crate::contacts::RelationEntry;
use crate::i18n::{Msg, use_i18n};
use crate::ui::widgets::Avatar;

/// The first letter a friend is filed under: A–Z, or `#`.
fn index_letter(entry: &RelationEntry) -> char {
    let name = if entry.nickname.is_empty() {
        &entry.username
    } else {
        &entry.nickname
    };
    match name.chars().next().map(|c| c.to_ascii_uppercase()) {
        Some(c) if c.is_ascii_uppercase() => c,
        _ => '#',
    }
}

#[component]
pub fn GroupList(filter: RwSignal<String>) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    view! {
        <details class="section" open data-section="groups">
            <summary>{move || i18n.t(Msg::Groups)}</summary>
            {move || {
                let groups = match contacts.groups.get() {
                    None => return loading().into_any(),
                    Some(Ok(g)) => g,
                    Some(Err(e)) => return load_error(e).into_any(),
                };
                let f = filter.get();
                let groups: Vec<_> = groups.into_iter().filter(|e| matches_filter(e, &f)).collect();
                if groups.is_empty() {
                    return view! { <p class="muted pad small">{move || i18n.t(Msg::NoGroups)}</p> }
                        .into_any();
                }
                view! {
                    <ul class="rows">
                        {groups
                            .into_iter()
                            .filter_map(|e| e.community)
                            .map(|c| {
                                let href = format!("/contacts/group/{}", c.id);
                                let data_id = c.id.clone();
                                view! {
                                    <li class="row" data-group=data_id>
                                        <ItemLink href>
                                            <Avatar
                                                name=c.name.clone()
                                                seed=c.id.clone()
                                                url=c.avatar.clone()
                                            />
                                            <span class="row-text">
                                                <span class="row-title">{c.name.clone()}</span>
                                            </span>
                                        </ItemLink>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                }
                    .into_any()
            }}
        </details>
    }
}

#[component]
pub fn FriendList(filter: RwSignal<String>) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    view! {
        <details class="section" open data-section="friends">
            <summary>{move || i18n.t(Msg::Friends)}</summary>
            {move || {
                let friends = match contacts.friends.get() {
                    None => return loading().into_any(),
                    Some(Ok(f)) => f,
                    Some(Err(e)) => return load_error(e).into_any(),
                };
                let f = filter.get();
                let mut friends: Vec<_> = friends
                    .into_iter()
                    .filter(|e| matches_filter(e, &f))
                    .collect();
                if friends.is_empty() {
                    return view! { <p class="muted pad small">{move || i18n.t(Msg::NoFriends)}</p> }
                        .into_any();
                }
                friends
                    .sort_by_key(|e| {
                        let letter = index_letter(e);
                        ((letter == '#') as u8, letter, e.nickname.to_lowercase())
                    });
                let mut letters: Vec<char> = friends.iter().map(index_letter).collect();
                letters.dedup();
                let groups: Vec<(char, Vec<RelationEntry>)> = letters
                    .iter()
                    .map(|l| (
                        *l,
                        friends.iter().filter(|e| index_letter(e) == *l).cloned().collect(),
                    ))
                    .collect();
                view! {
                    <div class="friends-indexed">
                        <div class="friends-lists">
                            {groups
                                .into_iter()
                                .map(|(letter, entries)| {
                                    view! {
                                        <h3 class="letter" id=format!("letter-{letter}")>
                                            {letter.to_string()}
                                        </h3>
                                        <ul class="rows">
                                            {entries
                                                .into_iter()
                                                .map(|e| view! { <FriendRow entry=e /> })
                                                .collect_view()}
                                        </ul>
                                    }
                                })
                                .collect_view()}
                        </div>
                        <nav class="letter-index" aria-label="A–Z">
                            {letters
                                .into_iter()
                                .map(|l| {
                                    view! { <a href=format!("#letter-{l}")>{l.to_string()}</a> }
                                })
                                .collect_view()}
                        </nav>
                    </div>
                }
                    .into_any()
            }}
        </details>
    }
}

#[component]
fn FriendRow(entry: RelationEntry) -> impl IntoView {
    let href = format!("/contacts/user/{}", entry.username);
    let data_user = entry.username.clone();
    view! {
        <li class="row" data-username=data_user>
            <ItemLink href>
                <Avatar
                    name=entry.nickname.clone()
                    seed=entry.user_id.clone()
                    url=entry.avatar.clone()
                />
                <span class="row-text">
                    <span class="row-title">{entry.nickname.clone()}</span>
                    <span class="row-sub">"@" {entry.username.clone()}</span>
                </span>
            </ItemLink>
        </li>
    }
}

/// People who removed the caller: greyed, with "removed you".
#[component]
pub fn RemovedList(filter: RwSignal<String>) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    view! {
        {move || {
            let removed = contacts.removed.get().and_then(Result::ok).unwrap_or_default();
            let f = filter.get();
            let removed: Vec<_> = removed.into_iter().filter(|e| matches_filter(e, &f)).collect();
            if removed.is_empty() {
                return ().into_any();
            }
            view! {
                <details class="section" open data-section="removed">
                    <summary>{move || i18n.t(Msg::RemovedYouSection)}</summary>
                    <ul class="rows">
                        {removed
                            .into_iter()
                            .map(|e| {
                                let href = format!("/contacts/user/{}", e.username);
                                let data_user = e.username.clone();
                                view! {
                                    <li class="row removed" data-username=data_user>
                                        <ItemLink href>
                                            <Avatar
                                                name=e.nickname.clone()
                                                seed=e.user_id.clone()
                                                url=e.avatar.clone()
                                            />
                                            <span class="row-text">
                                                <span class="row-title">{e.nickname.clone()}</span>
                                                <span class="row-sub">
                                                    {move || i18n.t(Msg::RemovedYou)}
                                                </span>
                                            </span>
                                        </ItemLink>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                </details>
            }
                .into_any()
        }}
    }
}
