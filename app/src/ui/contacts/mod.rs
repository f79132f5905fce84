//! The Contacts tab: new friends and join requests (`requests`), groups, friends by letter
//! and people who removed the caller (`lists`); a detail pane with a person's card
//! (`person`) or a group's card, members and owner tools (`group`); and the "Add friend /
//! group" dialog (`add`).
//!
//! The lists load once when the shell mounts and again only when something changed: the
//! caller's own actions, and the relay's `relation` events (another user accepted, a group
//! owner approved, ...), which also reach a page that reconnects. An open detail card
//! reloads with them, and when its item is clicked again in the list.
mod add;
mod group;
mod lists;
mod person;
mod requests;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::{A, Outlet};

use crate::api::relation::list_relations;
use crate::contacts::limits::MEMO_MAX;
use crate::contacts::{RelationEntry, RelationType, RoleType};
use crate::error::ApiError;
use crate::i18n::{Msg, use_i18n};
use crate::ui::lazy_page;
use crate::ui::widgets::{ClientOnly, Icon, IconSvg, SearchBox};

pub use group::GroupRoute;
pub use person::UserRoute;

type Listing = LocalResource<Result<Vec<RelationEntry>, ApiError>>;

/// The caller's contact lists, shared by the rail's badge, the Contacts tab and the chat
/// (which names people from them).
#[derive(Clone, Copy)]
pub struct Contacts {
    pub received: Listing,
    pub sent: Listing,
    pub friends: Listing,
    pub removed: Listing,
    pub groups: Listing,
    pub join_requests: Listing,
    /// Bumped whenever the lists reload or an item is picked again: detail cards track it.
    version: RwSignal<u32>,
}

impl Contacts {
    /// Reloads the lists and the open detail card.
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
        self.version.update(|v| *v += 1);
    }

    /// Reloads the open detail card only (its item was clicked again).
    pub fn reload_detail(self) {
        self.version.update(|v| *v += 1);
    }

    /// For detail cards: a value that changes whenever they should load again.
    pub fn track(self) {
        self.version.track();
    }

    /// Requests waiting for the caller's answer: friend requests and join requests.
    pub fn pending_count(self) -> usize {
        let count = |l: Listing| l.get().and_then(Result::ok).map_or(0, |v| v.len());
        count(self.received) + count(self.join_requests)
    }
}

fn listing(kind: RelationType, role: RoleType, sent: bool) -> Listing {
    LocalResource::new(move || list_relations(kind.into(), role.into(), sent))
}

/// Creates the lists (each loads once here; see the module header for when they reload).
pub fn provide_contacts() -> Contacts {
    let contacts = Contacts {
        received: listing(RelationType::Requested, RoleType::Friend, false),
        sent: listing(RelationType::Requested, RoleType::Friend, true),
        friends: listing(RelationType::Accepted, RoleType::Friend, false),
        removed: listing(RelationType::Removed, RoleType::Friend, false),
        groups: listing(RelationType::Accepted, RoleType::Group, false),
        join_requests: listing(RelationType::Requested, RoleType::Group, false),
        version: RwSignal::new(0),
    };
    provide_context(contacts);
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

/// A short note and a button: a friend request, or a request to join a group. `send` gets
/// the note.
#[component]
fn NoteForm(
    label: Msg,
    op: Op,
    testid: &'static str,
    #[prop(into)] send: Callback<String>,
) -> impl IntoView {
    let i18n = use_i18n();
    let memo = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        send.run(memo.get_untracked());
    };
    view! {
        <form class="form inline-form" on:submit=submit data-testid=testid>
            <label class="field">
                <span>{move || i18n.t(Msg::RequestNote)}</span>
                <input
                    name="memo"
                    maxlength=MEMO_MAX
                    bind:value=memo
                    placeholder=move || i18n.t(Msg::RequestNoteHint)
                />
            </label>
            <button class="primary" type="submit" disabled=move || op.busy.get()>
                {move || i18n.t(label)}
            </button>
        </form>
    }
}

/// Whether a row matches what the user typed in the search box.
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

lazy_page!(
    /// `/contacts`: the lists.
    ContactsRoute => ContactsView
);

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
            <SearchBox filter />
            <div class="list-body">
                <ClientOnly>
                    <requests::NewFriends filter />
                    <lists::GroupList filter />
                    <lists::FriendList filter />
                    <lists::RemovedList filter />
                </ClientOnly>
            </div>
        </section>
        <Outlet />
        <Show when=move || show_add.get()>
            <add::AddDialog on_close=move || show_add.set(false) />
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
    view! {
        <p class="note note-error" role="alert">
            {move || i18n.error(&err)}
        </p>
    }
}

/// A link to a detail card that reloads the card when it is already open.
#[component]
fn ItemLink(href: String, children: Children) -> impl IntoView {
    let contacts = use_contacts();
    view! {
        <A href=href attr:class="row-main" on:click=move |_| contacts.reload_detail()>
            {children()}
        </A>
    }
}

/// The detail pane's header with a back link for phone-sized windows.
#[component]
fn DetailHeader(#[prop(into)] title: Signal<String>) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <header class="pane-header detail-header">
            <A href="/contacts" attr:class="back" attr:aria-label=move || i18n.t(Msg::Back)>
                <IconSvg icon=Icon::Back />
            </A>
            <h2>{move || title.get()}</h2>
        </header>
    }
}
