//! The Contacts tab: new friends (with a badge), groups, friends by letter, and people who
//! removed the caller; a detail pane with a person's or a group's card and what the caller
//! may do there; and the "Add friend / group" dialog. Lists load in the browser and reload
//! whenever the user navigates (and after every change they make).
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::NavigateOptions;
use leptos_router::components::{A, Outlet};
use leptos_router::hooks::{use_location, use_navigate, use_params_map};

use crate::api::community::*;
use crate::api::relation::*;
use crate::contacts::limits::*;
use crate::contacts::{
    Community, Member, Membership, RelationEntry, Standing, UserCard, relation_type, role_type,
};
use crate::error::ApiError;
use crate::i18n::{Msg, use_i18n};
use crate::model::Gender;
use crate::ui::widgets::{Avatar, ClientOnly, ErrorNote, Icon, IconSvg};

type Listing = LocalResource<Result<Vec<RelationEntry>, ApiError>>;

/// The caller's contact lists, shared by the rail's badge and the Contacts tab.
#[derive(Clone, Copy)]
pub struct Contacts {
    pub received: Listing,
    pub sent: Listing,
    pub friends: Listing,
    pub removed: Listing,
    pub groups: Listing,
    pub join_requests: Listing,
}

impl Contacts {
    pub fn refresh(self) {
        for list in [
            self.received,
            self.sent,
            self.friends,
            self.removed,
            self.groups,
            self.join_requests,
        ] {
            list.refetch();
        }
    }

    /// Requests waiting for the caller's answer: friend requests and join requests.
    pub fn pending_count(self) -> usize {
        let count = |l: Listing| l.get().and_then(Result::ok).map_or(0, |v| v.len());
        count(self.received) + count(self.join_requests)
    }
}

fn listing(kind: i16, role: i16, sent: bool) -> Listing {
    LocalResource::new(move || list_relations(kind, role, sent))
}

/// Creates the lists and reloads them whenever the route changes.
pub fn provide_contacts() -> Contacts {
    let contacts = Contacts {
        received: listing(relation_type::REQUESTED, role_type::FRIEND, false),
        sent: listing(relation_type::REQUESTED, role_type::FRIEND, true),
        friends: listing(relation_type::ACCEPTED, role_type::FRIEND, false),
        removed: listing(relation_type::REMOVED, role_type::FRIEND, false),
        groups: listing(relation_type::ACCEPTED, role_type::GROUP, false),
        join_requests: listing(relation_type::REQUESTED, role_type::GROUP, false),
    };
    provide_context(contacts);
    let location = use_location();
    Effect::new(move |previous: Option<String>| {
        let path = location.pathname.get();
        if previous.is_some_and(|p| p != path) {
            contacts.refresh();
        }
        path
    });
    contacts
}

pub fn use_contacts() -> Contacts {
    expect_context::<Contacts>()
}

/// A pending server call: whether it runs, and its error.
#[derive(Clone, Copy)]
struct Op {
    busy: RwSignal<bool>,
    error: RwSignal<Option<ApiError>>,
}

impl Op {
    fn new() -> Self {
        Self {
            busy: RwSignal::new(false),
            error: RwSignal::new(None),
        }
    }

    /// Runs `call` in the browser; on success `then` gets the answer.
    fn run<T: 'static>(
        self,
        call: impl std::future::Future<Output = Result<T, ApiError>> + 'static,
        then: impl FnOnce(T) + 'static,
    ) {
        self.busy.set(true);
        self.error.set(None);
        spawn_local(async move {
            let result = call.await;
            self.busy.set(false);
            match result {
                Ok(value) => then(value),
                Err(err) => self.error.set(Some(err)),
            }
        });
    }

    fn error_signal(self) -> Signal<Option<ApiError>> {
        self.error.into()
    }
}

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

fn matches_filter(entry: &RelationEntry, filter: &str) -> bool {
    let filter = filter.trim().to_lowercase();
    filter.is_empty()
        || entry.username.contains(&filter)
        || entry.nickname.to_lowercase().contains(&filter)
        || entry
            .community
            .as_ref()
            .is_some_and(|c| c.name.to_lowercase().contains(&filter))
}

#[component]
pub fn ContactsView() -> impl IntoView {
    let i18n = use_i18n();
    let filter = RwSignal::new(String::new());
    let show_add = RwSignal::new(false);
    view! {
        <section class="list-pane contacts-pane">
            <header class="pane-header">
                <h2>{move || i18n.t(Msg::Contacts)}</h2>
                <button
                    type="button"
                    class="icon-button"
                    data-testid="add-contact"
                    title=move || i18n.t(Msg::AddFriendOrGroup)
                    on:click=move |_| show_add.set(true)
                >
                    "+"
                    <span class="sr-only">{move || i18n.t(Msg::AddFriendOrGroup)}</span>
                </button>
            </header>
            <div class="search">
                <IconSvg icon=Icon::Search/>
                <input
                    type="search"
                    placeholder=move || i18n.t(Msg::Search)
                    aria-label=move || i18n.t(Msg::Search)
                    bind:value=filter
                />
            </div>
            <div class="list-body">
                <ClientOnly>
                    <NewFriends filter/>
                    <GroupList filter/>
                    <FriendList filter/>
                    <RemovedList filter/>
                </ClientOnly>
            </div>
        </section>
        <Outlet/>
        <Show when=move || show_add.get()>
            <AddDialog on_close=move || show_add.set(false)/>
        </Show>
    }
}

/// "Loading…", in words.
fn loading() -> impl IntoView {
    let i18n = use_i18n();
    view! { <p class="muted pad">{move || i18n.t(Msg::Loading)}</p> }
}

/// A list that failed to load says so, in words.
fn load_error(err: ApiError) -> impl IntoView {
    let i18n = use_i18n();
    view! { <p class="note note-error" role="alert">{move || i18n.error(&err)}</p> }
}

#[component]
fn NewFriends(filter: RwSignal<String>) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    let count = move || contacts.pending_count();
    view! {
        <details class="section" open data-section="new-friends">
            <summary>
                {move || i18n.t(Msg::NewFriends)}
                <Show when=move || { count() > 0 }>
                    <span class="badge" data-testid="new-friends-count">{count}</span>
                </Show>
            </summary>
            {move || {
                let (Some(received), Some(joins)) = (contacts.received.get(), contacts.join_requests.get()) else {
                    return loading().into_any();
                };
                let (received, joins) = match (received, joins) {
                    (Ok(r), Ok(j)) => (r, j),
                    (Err(e), _) | (_, Err(e)) => return load_error(e).into_any(),
                };
                let f = filter.get();
                let received: Vec<_> = received.into_iter().filter(|e| matches_filter(e, &f)).collect();
                let joins: Vec<_> = joins.into_iter().filter(|e| matches_filter(e, &f)).collect();
                if received.is_empty() && joins.is_empty() {
                    return view! { <p class="muted pad small">{move || i18n.t(Msg::NoRequests)}</p> }.into_any();
                }
                view! {
                    <ul class="rows">
                        {received.into_iter().map(|e| view! { <FriendRequestRow entry=e/> }).collect_view()}
                        {joins.into_iter().map(|e| view! { <JoinRequestRow entry=e/> }).collect_view()}
                    </ul>
                }
                .into_any()
            }}
        </details>
    }
}

/// A received friend request with its note and the answers.
#[component]
fn FriendRequestRow(entry: RelationEntry) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    let op = Op::new();
    let username = entry.username.clone();
    let accept = {
        let username = username.clone();
        move |_| op.run(accept_friend(username.clone()), move |_| contacts.refresh())
    };
    let decline = {
        let username = username.clone();
        move |_| {
            op.run(decline_friend(username.clone()), move |_| {
                contacts.refresh()
            })
        }
    };
    let href = format!("/contacts/user/{}", entry.username);
    let data_user = entry.username.clone();
    view! {
        <li class="row request-row" data-username=data_user>
            <A href=href attr:class="row-main">
                <Avatar name=entry.nickname.clone() seed=entry.username.clone() url=entry.avatar.clone()/>
                <span class="row-text">
                    <span class="row-title">{entry.nickname.clone()}</span>
                    <span class="row-sub memo">{entry.memo.clone()}</span>
                </span>
            </A>
            <span class="row-actions">
                <button type="button" class="primary small" disabled=move || op.busy.get() on:click=accept>
                    {move || i18n.t(Msg::Accept)}
                </button>
                <button type="button" class="secondary small" disabled=move || op.busy.get() on:click=decline>
                    {move || i18n.t(Msg::Decline)}
                </button>
            </span>
            <ErrorNote error=op.error_signal()/>
        </li>
    }
}

/// A request to join a group the caller owns.
#[component]
fn JoinRequestRow(entry: RelationEntry) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    let op = Op::new();
    let group = entry
        .community
        .clone()
        .map(|c| (c.id, c.name))
        .unwrap_or_default();
    let (group_id, group_name) = group;
    let approve = {
        let (id, user) = (group_id.clone(), entry.username.clone());
        move |_| {
            op.run(approve_member(id.clone(), user.clone()), move |_| {
                contacts.refresh()
            })
        }
    };
    let decline = {
        let (id, user) = (group_id.clone(), entry.username.clone());
        move |_| {
            op.run(decline_member(id.clone(), user.clone()), move |_| {
                contacts.refresh()
            })
        }
    };
    let href = format!("/contacts/group/{group_id}");
    let data_user = entry.username.clone();
    view! {
        <li class="row request-row" data-username=data_user>
            <A href=href attr:class="row-main">
                <Avatar name=entry.nickname.clone() seed=entry.username.clone() url=entry.avatar.clone()/>
                <span class="row-text">
                    <span class="row-title">
                        {entry.nickname.clone()} " → " {group_name}
                    </span>
                    <span class="row-sub memo">{entry.memo.clone()}</span>
                </span>
            </A>
            <span class="row-actions">
                <button type="button" class="primary small" disabled=move || op.busy.get() on:click=approve>
                    {move || i18n.t(Msg::Approve)}
                </button>
                <button type="button" class="secondary small" disabled=move || op.busy.get() on:click=decline>
                    {move || i18n.t(Msg::Decline)}
                </button>
            </span>
            <ErrorNote error=op.error_signal()/>
        </li>
    }
}

#[component]
fn GroupList(filter: RwSignal<String>) -> impl IntoView {
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
                    return view! { <p class="muted pad small">{move || i18n.t(Msg::NoGroups)}</p> }.into_any();
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
                                        <A href=href attr:class="row-main">
                                            <Avatar name=c.name.clone() seed=c.id.clone() url=c.avatar.clone()/>
                                            <span class="row-text">
                                                <span class="row-title">{c.name.clone()}</span>
                                            </span>
                                        </A>
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
fn FriendList(filter: RwSignal<String>) -> impl IntoView {
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
                let mut friends: Vec<_> = friends.into_iter().filter(|e| matches_filter(e, &f)).collect();
                if friends.is_empty() {
                    return view! { <p class="muted pad small">{move || i18n.t(Msg::NoFriends)}</p> }.into_any();
                }
                friends.sort_by_key(|e| {
                    let letter = index_letter(e);
                    ((letter == '#') as u8, letter, e.nickname.to_lowercase())
                });
                let mut letters: Vec<char> = friends.iter().map(index_letter).collect();
                letters.dedup();
                let groups: Vec<(char, Vec<RelationEntry>)> = letters
                    .iter()
                    .map(|l| (*l, friends.iter().filter(|e| index_letter(e) == *l).cloned().collect()))
                    .collect();
                view! {
                    <div class="friends-indexed">
                        <div class="friends-lists">
                            {groups
                                .into_iter()
                                .map(|(letter, entries)| {
                                    view! {
                                        <h3 class="letter" id=format!("letter-{letter}")>{letter.to_string()}</h3>
                                        <ul class="rows">
                                            {entries.into_iter().map(|e| view! { <FriendRow entry=e/> }).collect_view()}
                                        </ul>
                                    }
                                })
                                .collect_view()}
                        </div>
                        <nav class="letter-index" aria-label="A–Z">
                            {letters
                                .into_iter()
                                .map(|l| view! { <a href=format!("#letter-{l}")>{l.to_string()}</a> })
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
            <A href=href attr:class="row-main">
                <Avatar name=entry.nickname.clone() seed=entry.username.clone() url=entry.avatar.clone()/>
                <span class="row-text">
                    <span class="row-title">{entry.nickname.clone()}</span>
                    <span class="row-sub">"@" {entry.username.clone()}</span>
                </span>
            </A>
        </li>
    }
}

/// People who removed the caller: greyed, with "removed you".
#[component]
fn RemovedList(filter: RwSignal<String>) -> impl IntoView {
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
                                        <A href=href attr:class="row-main">
                                            <Avatar name=e.nickname.clone() seed=e.username.clone() url=e.avatar.clone()/>
                                            <span class="row-text">
                                                <span class="row-title">{e.nickname.clone()}</span>
                                                <span class="row-sub">{move || i18n.t(Msg::RemovedYou)}</span>
                                            </span>
                                        </A>
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

/// The detail pane's header with a back link for phone-sized windows.
#[component]
fn DetailHeader(#[prop(into)] title: Signal<String>) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <header class="pane-header detail-header">
            <A href="/contacts" attr:class="back" attr:aria-label=move || i18n.t(Msg::Back)>
                <IconSvg icon=Icon::Back/>
            </A>
            <h2>{move || title.get()}</h2>
        </header>
    }
}

fn gender_text(gender: Gender) -> Msg {
    match gender {
        Gender::Unspecified => Msg::GenderUnspecified,
        Gender::Male => Msg::GenderMale,
        Gender::Female => Msg::GenderFemale,
    }
}

/// `/contacts/user/:username`: a person's card and what the caller can do.
#[component]
pub fn UserDetail() -> impl IntoView {
    let i18n = use_i18n();
    let params = use_params_map();
    let username = move || params.read().get("username").unwrap_or_default();
    let reload = RwSignal::new(0u32);
    let card = LocalResource::new(move || {
        reload.track();
        let name = username();
        async move {
            search_users(name.clone())
                .await
                .map(|cards| cards.into_iter().find(|c| c.user.username == name))
        }
    });
    view! {
        <section class="detail-pane" data-testid="user-detail">
            <ClientOnly>
                {move || match card.get() {
                    None => loading().into_any(),
                    Some(Ok(Some(card))) => view! { <UserCardView card reload/> }.into_any(),
                    Some(Ok(None)) => view! {
                        <DetailHeader title=String::new()/>
                        <p class="muted pad">{move || i18n.t(Msg::ErrUserNotFound)}</p>
                    }
                    .into_any(),
                    Some(Err(e)) => load_error(e).into_any(),
                }}
            </ClientOnly>
        </section>
    }
}

#[component]
fn UserCardView(card: UserCard, reload: RwSignal<u32>) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    let op = Op::new();
    let memo = RwSignal::new(String::new());
    let confirm_remove = RwSignal::new(false);
    let user = card.user.clone();
    let done = move || {
        contacts.refresh();
        reload.update(|v| *v += 1);
    };
    let username = user.username.clone();
    // The note that came with a request to the caller, if any.
    let received_memo = {
        let username = username.clone();
        move || {
            contacts
                .received
                .get()
                .and_then(Result::ok)
                .and_then(|list| list.into_iter().find(|e| e.username == username))
                .map(|e| e.memo)
                .unwrap_or_default()
        }
    };
    let send_request = {
        let username = username.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            op.run(
                request_friend(username.clone(), memo.get_untracked()),
                move |_| done(),
            );
        }
    };
    let call = move |what: &'static str| {
        let username = username.clone();
        move |_| match what {
            "accept" => op.run(accept_friend(username.clone()), move |_| done()),
            "decline" => op.run(decline_friend(username.clone()), move |_| done()),
            _ => op.run(remove_friend(username.clone()), move |_| {
                confirm_remove.set(false);
                done()
            }),
        }
    };
    let request_form = move |label: Msg| {
        view! {
            <form class="form inline-form" on:submit=send_request.clone() data-testid="request-form">
                <label class="field">
                    <span>{move || i18n.t(Msg::RequestNote)}</span>
                    <input name="memo" maxlength=MEMO_MAX bind:value=memo placeholder=move || i18n.t(Msg::RequestNoteHint)/>
                </label>
                <button class="primary" type="submit" disabled=move || op.busy.get()>{move || i18n.t(label)}</button>
            </form>
        }
    };
    let actions = match card.standing {
        Standing::Myself => view! { <p class="muted">{move || i18n.t(Msg::ThisIsYou)}</p> }.into_any(),
        Standing::Friend => view! {
            <div class="card-actions">
                <A href=format!("/chats/user/{}", user.id) attr:class="button primary" attr:data-testid="send-message">
                    {move || i18n.t(Msg::SendMessage)}
                </A>
                <Show
                    when=move || confirm_remove.get()
                    fallback=move || view! {
                        <button type="button" class="secondary danger" on:click=move |_| confirm_remove.set(true)>
                            {move || i18n.t(Msg::RemoveFriend)}
                        </button>
                    }
                >
                    <button type="button" class="danger-solid" data-testid="confirm-remove" disabled=move || op.busy.get() on:click=call("remove")>
                        {move || i18n.t(Msg::ConfirmRemove)}
                    </button>
                </Show>
            </div>
        }
        .into_any(),
        Standing::RequestedYou => view! {
            <div class="request-box">
                <p class="muted">{move || i18n.t(Msg::WantsToBeFriends)}</p>
                <blockquote class="memo">{received_memo}</blockquote>
                <div class="card-actions">
                    <button type="button" class="primary" disabled=move || op.busy.get() on:click=call("accept")>{move || i18n.t(Msg::Accept)}</button>
                    <button type="button" class="secondary" disabled=move || op.busy.get() on:click=call("decline")>{move || i18n.t(Msg::Decline)}</button>
                </div>
            </div>
        }
        .into_any(),
        Standing::Requested => view! {
            <div class="card-actions">
                <span class="muted">{move || i18n.t(Msg::RequestSent)}</span>
                <button type="button" class="secondary" disabled=move || op.busy.get() on:click=call("remove")>{move || i18n.t(Msg::Withdraw)}</button>
            </div>
            {request_form(Msg::UpdateRequest)}
        }
        .into_any(),
        Standing::RemovedYou => view! {
            <p class="note removed-note" data-testid="removed-you">{move || i18n.t(Msg::RemovedYou)}</p>
            {request_form(Msg::AddFriend)}
            <button type="button" class="link" on:click=call("remove")>{move || i18n.t(Msg::Dismiss)}</button>
        }
        .into_any(),
        Standing::None => request_form(Msg::AddFriend).into_any(),
    };
    let gender = gender_text(user.gender);
    let title = user.nickname.clone();
    view! {
        <DetailHeader title=title/>
        <div class="card">
            <div class="card-head">
                <Avatar name=user.nickname.clone() seed=user.username.clone() url=user.avatar.clone() size="lg"/>
                <div>
                    <p class="card-title">{user.nickname.clone()}</p>
                    <p class="muted">"@" {user.username.clone()}</p>
                </div>
            </div>
            <dl class="card-fields">
                <dt>{move || i18n.t(Msg::Gender)}</dt>
                <dd>{move || i18n.t(gender)}</dd>
                <dt>{move || i18n.t(Msg::Signature)}</dt>
                <dd>{user.signature.clone()}</dd>
            </dl>
            {actions}
            <ErrorNote error=op.error_signal()/>
        </div>
    }
}

/// `/contacts/group/:id`: a group's card, members and owner tools.
#[component]
pub fn GroupDetail() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let reload = RwSignal::new(0u32);
    let group = LocalResource::new(move || {
        reload.track();
        get_community(id())
    });
    view! {
        <section class="detail-pane" data-testid="group-detail">
            <ClientOnly>
                {move || match group.get() {
                    None => loading().into_any(),
                    Some(Ok(group)) => view! { <GroupCard group reload/> }.into_any(),
                    Some(Err(e)) => view! {
                        <DetailHeader title=String::new()/>
                        {load_error(e)}
                    }
                    .into_any(),
                }}
            </ClientOnly>
        </section>
    }
}

#[component]
fn GroupCard(group: Community, reload: RwSignal<u32>) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    let navigate = use_navigate();
    let op = Op::new();
    let memo = RwSignal::new(String::new());
    let id = group.id.clone();
    let is_owner = group.membership == Membership::Owner;
    let is_member = matches!(group.membership, Membership::Member | Membership::Owner);
    let done = move || {
        contacts.refresh();
        reload.update(|v| *v += 1);
    };
    let members = LocalResource::new({
        let id = id.clone();
        move || {
            reload.track();
            let id = id.clone();
            async move {
                if is_member {
                    community_members(id).await.map(Some)
                } else {
                    Ok(None)
                }
            }
        }
    });
    let join = {
        let id = id.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            op.run(
                join_community(id.clone(), memo.get_untracked()),
                move |_| done(),
            );
        }
    };
    let leave = {
        let id = id.clone();
        let navigate = navigate.clone();
        move |_| {
            let navigate = navigate.clone();
            op.run(leave_community(id.clone()), move |_| {
                contacts.refresh();
                navigate("/contacts", NavigateOptions::default());
            })
        }
    };
    let actions = match group.membership {
        Membership::None => view! {
            <form class="form inline-form" on:submit=join data-testid="join-form">
                <label class="field">
                    <span>{move || i18n.t(Msg::RequestNote)}</span>
                    <input name="memo" maxlength=MEMO_MAX bind:value=memo placeholder=move || i18n.t(Msg::RequestNoteHint)/>
                </label>
                <button class="primary" type="submit" disabled=move || op.busy.get()>{move || i18n.t(Msg::AskToJoin)}</button>
            </form>
        }
        .into_any(),
        Membership::Requested => view! {
            <div class="card-actions">
                <span class="muted">{move || i18n.t(Msg::RequestSent)}</span>
                <button type="button" class="secondary" on:click=leave>{move || i18n.t(Msg::Withdraw)}</button>
            </div>
        }
        .into_any(),
        Membership::Member => view! {
            <div class="card-actions">
                <A href=format!("/chats/group/{id}") attr:class="button primary">{move || i18n.t(Msg::SendMessage)}</A>
                <button type="button" class="secondary danger" data-testid="leave-group" on:click=leave>{move || i18n.t(Msg::LeaveGroup)}</button>
            </div>
        }
        .into_any(),
        Membership::Owner => view! {
            <div class="card-actions">
                <A href=format!("/chats/group/{id}") attr:class="button primary">{move || i18n.t(Msg::SendMessage)}</A>
            </div>
            <OwnerTools group=group.clone() reload/>
        }
        .into_any(),
    };
    view! {
        <DetailHeader title=group.name.clone()/>
        <div class="card">
            <div class="card-head">
                <Avatar name=group.name.clone() seed=group.id.clone() url=group.avatar.clone() size="lg"/>
                <div>
                    <p class="card-title" data-testid="group-name">{group.name.clone()}</p>
                    <p class="muted">
                        <span data-testid="member-count">{group.member_count}</span> " " {move || i18n.t(Msg::MembersCount)}
                        " · " {move || i18n.t(Msg::OwnerLabel)} " " {group.owner.nickname.clone()}
                    </p>
                </div>
            </div>
            <p class="card-description">{group.description.clone()}</p>
            <p class="muted small">"ID: " <code class="selectable">{group.id.clone()}</code></p>
            {actions}
            <ErrorNote error=op.error_signal()/>
        </div>
        {move || match members.get() {
            Some(Ok(Some(list))) => view! { <MemberList members=list group_id=id.clone() is_owner reload/> }.into_any(),
            Some(Ok(None)) | None => ().into_any(),
            Some(Err(e)) => load_error(e).into_any(),
        }}
    }
}

#[component]
fn MemberList(
    members: Vec<Member>,
    group_id: String,
    is_owner: bool,
    reload: RwSignal<u32>,
) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    let op = Op::new();
    let done = move || {
        contacts.refresh();
        reload.update(|v| *v += 1);
    };
    let count = members.len();
    view! {
        <section class="card members" data-testid="members">
            <h3>{move || i18n.t(Msg::Members)} " (" {count} ")"</h3>
            <ul class="rows">
                {members
                    .into_iter()
                    .map(|m| {
                        let (gid, gid2) = (group_id.clone(), group_id.clone());
                        let (u1, u2) = (m.user.username.clone(), m.user.username.clone());
                        view! {
                            <li class="row" data-username=m.user.username.clone()>
                                <span class="row-main">
                                    <Avatar name=m.user.nickname.clone() seed=m.user.username.clone() url=m.user.avatar.clone() size="sm"/>
                                    <span class="row-text">
                                        <span class="row-title">{m.user.nickname.clone()}</span>
                                        <span class="row-sub">
                                            "@" {m.user.username.clone()}
                                            {m.is_owner.then(|| view! { " · " <span class="tag">{move || i18n.t(Msg::OwnerLabel)}</span> })}
                                        </span>
                                    </span>
                                </span>
                                {(is_owner && !m.is_owner).then(|| view! {
                                    <span class="row-actions">
                                        <button type="button" class="secondary small" disabled=move || op.busy.get()
                                            on:click=move |_| op.run(transfer_community(gid.clone(), u1.clone()), move |_| done())>
                                            {move || i18n.t(Msg::MakeOwner)}
                                        </button>
                                        <button type="button" class="secondary small danger" disabled=move || op.busy.get()
                                            on:click=move |_| op.run(remove_member(gid2.clone(), u2.clone()), move |_| done())>
                                            {move || i18n.t(Msg::Remove)}
                                        </button>
                                    </span>
                                })}
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
            <ErrorNote error=op.error_signal()/>
        </section>
    }
}

/// The owner's edit form and the dissolve button.
#[component]
fn OwnerTools(group: Community, reload: RwSignal<u32>) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    let navigate = use_navigate();
    let op = Op::new();
    let name = RwSignal::new(group.name.clone());
    let description = RwSignal::new(group.description.clone());
    let confirm = RwSignal::new(false);
    let id = group.id.clone();
    let save = {
        let id = id.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            op.run(
                update_community(
                    id.clone(),
                    Some(name.get_untracked()),
                    Some(description.get_untracked()),
                    None,
                ),
                move |_| {
                    contacts.refresh();
                    reload.update(|v| *v += 1);
                },
            );
        }
    };
    let dissolve = move |_| {
        let navigate = navigate.clone();
        op.run(dissolve_community(id.clone()), move |_| {
            contacts.refresh();
            navigate("/contacts", NavigateOptions::default());
        })
    };
    view! {
        <details class="owner-tools">
            <summary>{move || i18n.t(Msg::EditGroup)}</summary>
            <form class="form" on:submit=save>
                <label class="field">
                    <span>{move || i18n.t(Msg::GroupName)}</span>
                    <input name="name" required maxlength=GROUP_NAME_MAX bind:value=name/>
                </label>
                <label class="field">
                    <span>{move || i18n.t(Msg::GroupDescription)}</span>
                    <input name="description" maxlength=GROUP_DESCRIPTION_MAX bind:value=description/>
                </label>
                <button class="primary" type="submit" disabled=move || op.busy.get()>{move || i18n.t(Msg::Save)}</button>
            </form>
            <Show
                when=move || confirm.get()
                fallback=move || view! {
                    <button type="button" class="secondary danger" on:click=move |_| confirm.set(true)>{move || i18n.t(Msg::Dissolve)}</button>
                }
            >
                <button type="button" class="danger-solid" on:click=dissolve.clone()>{move || i18n.t(Msg::ConfirmDissolve)}</button>
            </Show>
            <ErrorNote error=op.error_signal()/>
        </details>
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AddTab {
    Friend,
    Group,
    NewGroup,
}

/// "Add friend / group": find a person or a group, or create a group.
#[component]
fn AddDialog(on_close: impl Fn() + Clone + Send + Sync + 'static) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    let navigate = use_navigate();
    let tab = RwSignal::new(AddTab::Friend);
    let query = RwSignal::new(String::new());
    let op = Op::new();
    let people = RwSignal::new(None::<Vec<UserCard>>);
    let groups = RwSignal::new(None::<Vec<Community>>);
    let new_name = RwSignal::new(String::new());
    let new_description = RwSignal::new(String::new());
    let search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let q = query.get_untracked();
        match tab.get_untracked() {
            AddTab::Friend => op.run(search_users(q), move |r| people.set(Some(r))),
            AddTab::Group => op.run(search_communities(q), move |r| groups.set(Some(r))),
            AddTab::NewGroup => {}
        }
    };
    let close = on_close.clone();
    let go = {
        let close = on_close.clone();
        let navigate = navigate.clone();
        move |path: String| {
            close();
            navigate(&path, NavigateOptions::default());
        }
    };
    let create = {
        let go = go.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let go = go.clone();
            op.run(
                create_community(
                    new_name.get_untracked(),
                    new_description.get_untracked(),
                    String::new(),
                ),
                move |g| {
                    contacts.refresh();
                    go(format!("/contacts/group/{}", g.id));
                },
            );
        }
    };
    let close_on_escape = {
        let close = on_close.clone();
        move |ev: leptos::ev::KeyboardEvent| {
            if ev.key() == "Escape" {
                close();
            }
        }
    };
    let tab_button = move |t: AddTab, label: Msg| {
        view! {
            <button
                type="button"
                role="tab"
                class="tab"
                aria-selected=move || (tab.get() == t).to_string()
                on:click=move |_| {
                    tab.set(t);
                    op.error.set(None);
                }
            >
                {move || i18n.t(label)}
            </button>
        }
    };
    view! {
        <div class="overlay" on:keydown=close_on_escape>
            <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="add-title" data-testid="add-dialog">
                <header class="dialog-header">
                    <h2 id="add-title">{move || i18n.t(Msg::AddFriendOrGroup)}</h2>
                    <button type="button" class="icon-button" aria-label=move || i18n.t(Msg::Close) on:click=move |_| close()>"×"</button>
                </header>
                <div class="tabs" role="tablist">
                    {tab_button(AddTab::Friend, Msg::FindPeople)}
                    {tab_button(AddTab::Group, Msg::FindGroups)}
                    {tab_button(AddTab::NewGroup, Msg::CreateGroup)}
                </div>
                <Show
                    when=move || tab.get() == AddTab::NewGroup
                    fallback=move || view! {
                        <form class="search-form" on:submit=search>
                            <input
                                name="query"
                                type="search"
                                autofocus
                                bind:value=query
                                placeholder=move || if tab.get() == AddTab::Friend { i18n.t(Msg::SearchPeopleHint) } else { i18n.t(Msg::SearchGroupsHint) }
                            />
                            <button class="primary" type="submit" disabled=move || op.busy.get()>{move || i18n.t(Msg::Search)}</button>
                        </form>
                    }
                >
                    <form class="form" on:submit=create.clone() data-testid="create-group-form">
                        <label class="field">
                            <span>{move || i18n.t(Msg::GroupName)}</span>
                            <input name="name" required maxlength=GROUP_NAME_MAX bind:value=new_name/>
                        </label>
                        <label class="field">
                            <span>{move || i18n.t(Msg::GroupDescription)}</span>
                            <input name="description" maxlength=GROUP_DESCRIPTION_MAX bind:value=new_description/>
                        </label>
                        <button class="primary" type="submit" disabled=move || op.busy.get()>{move || i18n.t(Msg::CreateGroup)}</button>
                    </form>
                </Show>
                <ErrorNote error=op.error_signal()/>
                <ul class="rows results">
                    {
                        let go = go.clone();
                        move || {
                            let go = go.clone();
                            match tab.get() {
                                AddTab::Friend => people.get().map(|list| {
                                    if list.is_empty() {
                                        return view! { <li class="muted pad">{move || i18n.t(Msg::NoResults)}</li> }.into_any();
                                    }
                                    list.into_iter().map(|card| {
                                        let go = go.clone();
                                        let path = format!("/contacts/user/{}", card.user.username);
                                        view! {
                                            <li class="row">
                                                <button type="button" class="row-main" on:click=move |_| go(path.clone())>
                                                    <Avatar name=card.user.nickname.clone() seed=card.user.username.clone() url=card.user.avatar.clone()/>
                                                    <span class="row-text">
                                                        <span class="row-title">{card.user.nickname.clone()}</span>
                                                        <span class="row-sub">"@" {card.user.username.clone()}</span>
                                                    </span>
                                                </button>
                                            </li>
                                        }
                                    }).collect_view().into_any()
                                }),
                                AddTab::Group => groups.get().map(|list| {
                                    if list.is_empty() {
                                        return view! { <li class="muted pad">{move || i18n.t(Msg::NoResults)}</li> }.into_any();
                                    }
                                    list.into_iter().map(|g| {
                                        let go = go.clone();
                                        let path = format!("/contacts/group/{}", g.id);
                                        view! {
                                            <li class="row">
                                                <button type="button" class="row-main" on:click=move |_| go(path.clone())>
                                                    <Avatar name=g.name.clone() seed=g.id.clone() url=g.avatar.clone()/>
                                                    <span class="row-text">
                                                        <span class="row-title">{g.name.clone()}</span>
                                                        <span class="row-sub">{g.member_count} " " {move || i18n.t(Msg::MembersCount)}</span>
                                                    </span>
                                                </button>
                                            </li>
                                        }
                                    }).collect_view().into_any()
                                }),
                                AddTab::NewGroup => None,
                            }
                        }
                    }
                </ul>
            </div>
        </div>
    }
}
