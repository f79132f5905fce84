//! The signed-in layout: a rail (Chats, Contacts, Me), a list pane and a detail pane. On a
//! phone-sized window the rail moves to the bottom and only one pane shows at a time
//! (`detail-open` when the route names an item).
use leptos::prelude::*;
use leptos_router::components::{A, Outlet, Redirect};
use leptos_router::hooks::use_location;

use crate::i18n::{Msg, use_i18n};
use crate::model::UserProfile;
use crate::ui::contacts::provide_contacts;
use crate::ui::widgets::{Avatar, ClientOnly, Icon, IconSvg};
use crate::ui::{Me, use_auth};

/// Guards the signed-in routes: renders the layout for a session, else sends to `/login`.
#[component]
pub fn Shell() -> impl IntoView {
    let auth = use_auth();
    let i18n = use_i18n();
    view! {
        <Transition fallback=move || view! { <p class="page-loading">{move || i18n.t(Msg::Loading)}</p> }>
            {move || Suspend::new(async move {
                match auth.user.await {
                    Ok(Some(user)) => view! { <Layout user/> }.into_any(),
                    Ok(None) => view! { <Redirect path="/login"/> }.into_any(),
                    Err(err) => view! {
                        <main class="page-error">
                            <p role="alert">{move || i18n.error(&err)}</p>
                        </main>
                    }
                    .into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Layout(user: UserProfile) -> impl IntoView {
    let i18n = use_i18n();
    let me = RwSignal::new(user);
    provide_context(Me(me));
    let contacts = provide_contacts();
    let pending = move || contacts.pending_count();
    let location = use_location();
    // "/me/password" names an item; "/me" and "/chats" are lists.
    let detail_open = move || location.pathname.get().trim_matches('/').split('/').count() > 1;
    let nickname = Signal::derive(move || me.with(|u| u.nickname.clone()));
    let username = Signal::derive(move || me.with(|u| u.username.clone()));
    let avatar = Signal::derive(move || me.with(|u| u.avatar.clone()));

    view! {
        <div class="app" class:detail-open=detail_open>
            <nav class="rail" aria-label=move || i18n.t(Msg::AppName)>
                <A href="/me" attr:class="rail-me" attr:title=move || nickname.get()>
                    <Avatar name=nickname seed=username url=avatar size="sm"/>
                </A>
                <A href="/chats" attr:class="rail-item" attr:data-nav="chats">
                    <IconSvg icon=Icon::Chats/>
                    <span>{move || i18n.t(Msg::Chats)}</span>
                </A>
                <A href="/contacts" attr:class="rail-item" attr:data-nav="contacts">
                    <IconSvg icon=Icon::Contacts/>
                    <span>{move || i18n.t(Msg::Contacts)}</span>
                    <ClientOnly fallback=|| ()>
                        <Show when=move || { pending() > 0 }>
                            <span class="badge rail-badge" data-testid="contacts-badge">{pending}</span>
                        </Show>
                    </ClientOnly>
                </A>
                <A href="/me" attr:class="rail-item" attr:data-nav="me">
                    <IconSvg icon=Icon::Me/>
                    <span>{move || i18n.t(Msg::Me)}</span>
                </A>
            </nav>
            <Outlet/>
        </div>
    }
}

/// A list pane with its title and a search box.
#[component]
pub fn ListPane(title: Msg, children: Children) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <section class="list-pane">
            <header class="pane-header">
                <h2>{move || i18n.t(title)}</h2>
            </header>
            <div class="search">
                <IconSvg icon=Icon::Search/>
                <input type="search" placeholder=move || i18n.t(Msg::Search) aria-label=move || i18n.t(Msg::Search)/>
            </div>
            <div class="list-body">{children()}</div>
        </section>
    }
}

/// What the detail pane shows when nothing is selected.
#[component]
pub fn DetailPlaceholder(msg: Msg) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <section class="detail-pane detail-empty">
            <img src="/favicon.svg" alt="" class="placeholder-logo"/>
            <p class="muted">{move || i18n.t(msg)}</p>
        </section>
    }
}

/// An empty list: a title and a hint, in words.
#[component]
pub fn EmptyState(title: Msg, hint: Msg) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <div class="empty-state">
            <p class="empty-title">{move || i18n.t(title)}</p>
            <p class="muted">{move || i18n.t(hint)}</p>
        </div>
    }
}

#[component]
pub fn ChatsView() -> impl IntoView {
    view! {
        <ListPane title=Msg::Chats>
            <EmptyState title=Msg::NoChats hint=Msg::NoChatsHint/>
        </ListPane>
        <Outlet/>
    }
}

/// `/chats/user/:username` and `/chats/group/:id`: the conversation pane. Messaging itself
/// arrives with the real-time relay; until then it shows whom the chat is with.
#[component]
pub fn ConversationPane() -> impl IntoView {
    let i18n = use_i18n();
    let params = leptos_router::hooks::use_params_map();
    let title = move || {
        let p = params.read();
        p.get("username")
            .or_else(|| p.get("id"))
            .unwrap_or_default()
    };
    view! {
        <section class="detail-pane conversation" data-testid="conversation">
            <header class="pane-header detail-header">
                <A href="/chats" attr:class="back" attr:aria-label=move || i18n.t(Msg::Back)>
                    <IconSvg icon=Icon::Back/>
                </A>
                <h2>{title}</h2>
            </header>
            <div class="empty-state">
                <p class="muted">{move || i18n.t(Msg::NoMessagesYet)}</p>
            </div>
        </section>
    }
}

/// `/chats` with nothing selected.
#[component]
pub fn NoConversation() -> impl IntoView {
    view! { <DetailPlaceholder msg=Msg::PickChat/> }
}

/// `/contacts` with nothing selected.
#[component]
pub fn NoContact() -> impl IntoView {
    view! { <DetailPlaceholder msg=Msg::PickContact/> }
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
