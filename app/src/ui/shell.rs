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
    let auth = use_auth();
    // A session ended on the server (signed out elsewhere, password changed, revoked,
    // expired): asking again who is signed in gets "nobody", and the shell goes to /login.
    let chat = crate::chat::Chat::provide(
        Callback::new(move |_| contacts.refresh()),
        Callback::new(move |_| auth.refresh()),
    );
    let unread = move || chat.total_unread();
    let page_title = move || match unread() {
        0 => i18n.t(Msg::AppName).to_owned(),
        n => format!("({n}) {}", i18n.t(Msg::AppName)),
    };
    let location = use_location();
    // "/me/password" names an item; "/me" and "/chats" are lists.
    let detail_open = move || location.pathname.get().trim_matches('/').split('/').count() > 1;
    let nickname = Signal::derive(move || me.with(|u| u.nickname.clone()));
    let username = Signal::derive(move || me.with(|u| u.username.clone()));
    let avatar = Signal::derive(move || me.with(|u| u.avatar.clone()));

    view! {
        // Only the browser knows the unread count (and only it may format a reactive title).
        <ClientOnly fallback=|| ()>
            <leptos_meta::Title text=page_title/>
        </ClientOnly>
        <div class="app" class:detail-open=detail_open>
            <nav class="rail" aria-label=move || i18n.t(Msg::AppName)>
                <A href="/me" attr:class="rail-me" attr:title=move || nickname.get()>
                    <Avatar name=nickname seed=username url=avatar size="sm"/>
                </A>
                <A href="/chats" attr:class="rail-item" attr:data-nav="chats">
                    <IconSvg icon=Icon::Chats/>
                    <span>{move || i18n.t(Msg::Chats)}</span>
                    <ClientOnly fallback=|| ()>
                        <Show when=move || { unread() > 0 }>
                            <span class="badge rail-badge" data-testid="chats-badge">{unread}</span>
                        </Show>
                    </ClientOnly>
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
        <ClientOnly fallback=|| ()>
            <crate::ui::call::CallOverlay/>
        </ClientOnly>
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
