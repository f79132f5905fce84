//! The signed-in layout: a rail (Chats, Contacts, Me), a list pane and a detail pane. On a
//! phone-sized window the rail moves to the bottom and only one pane shows at a time
//! (`detail-open` when the route names an item).
use leptos::prelude::*;
use leptos_router::components::{A, Outlet, Redirect};
use leptos_router::hooks::use_location;

use crate::chat::Chat;
use crate::i18n::{Msg, use_i18n};
use crate::model::UserProfile;
use crate::ui::contacts::{Contacts, provide_contacts};
use crate::ui::widgets::{Avatar, ClientOnly, Icon, IconSvg};
use crate::ui::{Me, use_auth};

/// Guards the signed-in routes: renders the layout for a session, else sends to `/login`.
#[component]
pub fn Shell() -> impl IntoView {
    let auth = use_auth();
    let i18n = use_i18n();
    let sessions = Sessions::new();
    view! {
        <Transition fallback=move || {
            view! { <p class="page-loading">{move || i18n.t(Msg::Loading)}</p> }
        }>
            {move || Suspend::new(async move {
                match auth.user.await {
                    Ok(Some(user)) => view! { <Layout user sessions /> }.into_any(),
                    Ok(None) => {
                        sessions.end();
                        view! { <Redirect path="/login" /> }.into_any()
                    }
                    Err(err) => {
                        view! {
                            <main class="page-error">
                                <p role="alert">{move || i18n.error(&err)}</p>
                            </main>
                        }
                            .into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// What one signed-in user's page holds for as long as they stay signed in: the contact
/// lists and the chat with its socket. The layout above can render more than once for one
/// session (Leptos runs a `Suspend` again when the resource it awaited resolves); these are
/// made once, under the shell, so the lists load once and one socket opens.
#[derive(Clone, Copy)]
struct Sessions {
    shell: StoredValue<Option<Owner>>,
    current: StoredValue<Option<(String, Owner, Contacts, Chat)>>,
}

impl Sessions {
    fn new() -> Self {
        Self {
            shell: StoredValue::new(Owner::current()),
            current: StoredValue::new(None),
        }
    }

    /// The lists and chat of `user_id`, made on first use (ending another user's).
    fn of(self, user_id: &str) -> (Contacts, Chat) {
        if let Some((_, _, contacts, chat)) = self
            .current
            .with_value(|c| c.as_ref().filter(|c| c.0 == user_id).cloned())
        {
            return (contacts, chat);
        }
        self.end();
        let owner = self
            .shell
            .get_value()
            .map_or_else(Owner::new, |shell| shell.child());
        let (contacts, chat) = owner.with(|| {
            let auth = use_auth();
            let contacts = provide_contacts();
            // A session ended on the server (signed out elsewhere, password changed,
            // revoked, expired): asking again who is signed in gets "nobody", and the shell
            // goes to /login.
            let chat = Chat::provide(
                Callback::new(move |_| contacts.refresh()),
                Callback::new(move |_| auth.refresh()),
            );
            (contacts, chat)
        });
        self.current
            .set_value(Some((user_id.to_owned(), owner, contacts, chat)));
        (contacts, chat)
    }

    /// Signed out: the lists go and the socket closes.
    fn end(self) {
        if let Some((_, owner, _, _)) = self.current.try_update_value(Option::take).flatten() {
            owner.cleanup();
        }
    }
}

#[component]
fn Layout(user: UserProfile, sessions: Sessions) -> impl IntoView {
    let i18n = use_i18n();
    let (contacts, chat) = sessions.of(&user.id);
    // Made under the shell, beside this layout: the views below find them here.
    provide_context(contacts);
    provide_context(chat);
    let me = RwSignal::new(user);
    provide_context(Me(me));
    // Uploads go on (and become messages) while the user is in Contacts or Me.
    crate::ui::chats::UploadQueue::provide();
    let pending = move || contacts.pending_count();
    // The chat names people and groups from the contact lists (a first message from a
    // friend is never a nameless row).
    Effect::new(move |_| {
        let friends = contacts
            .friends
            .get()
            .and_then(Result::ok)
            .unwrap_or_default();
        let groups = contacts
            .groups
            .get()
            .and_then(Result::ok)
            .unwrap_or_default();
        crate::chat::names_from_contacts(chat, &friends, &groups);
    });
    let unread = move || chat.view.unread.get();
    let page_title = move || match unread() {
        0 => i18n.t(Msg::AppName).to_owned(),
        n => format!("({n}) {}", i18n.t(Msg::AppName)),
    };
    let location = use_location();
    // "/me/password" names an item; "/me" and "/chats" are lists.
    let detail_open = move || location.pathname.get().trim_matches('/').split('/').count() > 1;
    let nickname = Signal::derive(move || me.with(|u| u.nickname.clone()));
    let avatar = Signal::derive(move || me.with(|u| u.avatar.clone()));
    // Everywhere a person's colour comes from their id: the same colour in every view.
    let user_id = Signal::derive(move || me.with(|u| u.id.clone()));

    view! {
        // Only the browser knows the unread count (and only it may format a reactive title).
        <ClientOnly fallback=|| ()>
            <leptos_meta::Title text=page_title />
        </ClientOnly>
        <div class="app" class:detail-open=detail_open>
            <nav class="rail" aria-label=move || i18n.t(Msg::AppName)>
                <A href="/me" attr:class="rail-me" attr:title=move || nickname.get()>
                    <Avatar name=nickname seed=user_id url=avatar size="sm" />
                </A>
                <A href="/chats" attr:class="rail-item" attr:data-nav="chats">
                    <IconSvg icon=Icon::Chats />
                    <span>{move || i18n.t(Msg::Chats)}</span>
                    <ClientOnly fallback=|| ()>
                        <Show when=move || { unread() > 0 }>
                            <span class="badge rail-badge" data-testid="chats-badge">
                                {unread}
                            </span>
                        </Show>
                    </ClientOnly>
                </A>
                <A href="/contacts" attr:class="rail-item" attr:data-nav="contacts">
                    <IconSvg icon=Icon::Contacts />
                    <span>{move || i18n.t(Msg::Contacts)}</span>
                    <ClientOnly fallback=|| ()>
                        <Show when=move || { pending() > 0 }>
                            <span class="badge rail-badge" data-testid="contacts-badge">
                                {pending}
                            </span>
                        </Show>
                    </ClientOnly>
                </A>
                <A href="/me" attr:class="rail-item" attr:data-nav="me">
                    <IconSvg icon=Icon::Me />
                    <span>{move || i18n.t(Msg::Me)}</span>
                </A>
            </nav>
            <Outlet />
        </div>
        <ClientOnly fallback=|| ()>
            <crate::ui::call::CallOverlay />
        </ClientOnly>
    }
}

/// What the detail pane shows when nothing is selected.
#[component]
pub fn DetailPlaceholder(msg: Msg) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <section class="detail-pane detail-empty">
            <img src="/favicon.svg" alt="" class="placeholder-logo" />
            <p class="muted">{move || i18n.t(msg)}</p>
        </section>
    }
}

/// `/chats` with nothing selected.
#[component]
pub fn NoConversation() -> impl IntoView {
    view! { <DetailPlaceholder msg=Msg::PickChat /> }
}

/// `/contacts` with nothing selected.
#[component]
pub fn NoContact() -> impl IntoView {
    view! { <DetailPlaceholder msg=Msg::PickContact /> }
}

#[component]
pub fn NotFound() -> impl IntoView {
    let i18n = use_i18n();
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <main class="page-error">
            <h1>{move || i18n.t(Msg::NotFound)}</h1>
            <A href="/chats">{move || i18n.t(Msg::GoHome)}</A>
        </main>
    }
}
