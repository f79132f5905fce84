//! quick-chat's application crate: the components (`ui`), the server functions (the HTTP
//! API, `api`) and the types both sides share. The browser's chat and calls (`chat`,
//! `call`) are state machines with browser-only drivers, like the server's relay. With
//! `ssr` it also holds the server-side services (`ssr`); with `hydrate` it is compiled to
//! WASM by the `frontend` crate. Never both at once.
#![recursion_limit = "512"]

pub mod api;
pub mod call;
pub mod chat;
pub mod clock;
pub mod contacts;
pub mod crop;
pub mod error;
pub mod i18n;
#[cfg(feature = "hydrate")]
pub mod js_error;
pub mod model;
pub mod protocol;
#[cfg(feature = "ssr")]
pub mod ssr;
mod ui;
pub mod validate;

use leptos::prelude::*;
use leptos_meta::{HashedStylesheet, Html, Link, Meta, MetaTags, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Redirect, Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::i18n::{I18n, Msg, request_lang};
use crate::ui::auth_pages::{LoginRoute, RegisterRoute};
use crate::ui::chats::{ChatsView, ConversationPane};
use crate::ui::contacts::{ContactsRoute, GroupRoute, UserRoute};
use crate::ui::me::{LanguageRoute, MeRoute, PasswordRoute, ProfileRoute, SessionsRoute};
use crate::ui::shell::{NoContact, NoConversation, NotFound, Shell};

/// Every page renders completely before it is sent, so the session guards can answer with a
/// real HTTP redirect (the pages must work without JavaScript).
const ASYNC: SsrMode = SsrMode::Async;

/// The HTML document around the app, rendered on the server only. Its answer carries the
/// Content-Security-Policy with the nonce of this response's inline scripts.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    ssr::set_page_policy(&options);
    view! {
        <!DOCTYPE html>
        <html>
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <AutoReload options=options.clone() />
                <HydrationScripts options=options.clone() />
                // The file name carries the stylesheet's content hash (cargo-leptos
                // `hash-files`), so browsers may keep it for a year.
                <HashedStylesheet options id="leptos" />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The page title. The server renders it once as plain text: leptos_meta formats the title
/// outside the request's reactive arena, where reading a signal panics.
fn title_text(i18n: I18n) -> leptos::text_prop::TextProp {
    #[cfg(feature = "ssr")]
    {
        Msg::AppName.text(i18n.lang.get_untracked()).into()
    }
    #[cfg(not(feature = "ssr"))]
    {
        (move || i18n.t(Msg::AppName)).into()
    }
}

/// The application root: language, session, routes. The chats are in the first download;
/// the other screens are `Lazy` (see `ui::lazy_page`).
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let i18n = I18n {
        lang: RwSignal::new(request_lang()),
    };
    provide_context(i18n);
    ui::provide_auth();

    view! {
        <Html attr:lang=move || i18n.lang.get().tag() />
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg" />
        <Meta name="color-scheme" content="light" />
        <Title text=title_text(i18n) />
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/login") view=LoginRoute::page() ssr=ASYNC />
                <Route path=path!("/register") view=RegisterRoute::page() ssr=ASYNC />
                <ParentRoute path=path!("") view=Shell ssr=ASYNC>
                    <Route path=path!("") view=|| view! { <Redirect path="/chats" /> } ssr=ASYNC />
                    <ParentRoute path=path!("chats") view=ChatsView ssr=ASYNC>
                        <Route path=path!("") view=NoConversation ssr=ASYNC />
                        <Route path=path!("user/:user") view=ConversationPane ssr=ASYNC />
                        <Route path=path!("group/:group") view=ConversationPane ssr=ASYNC />
                    </ParentRoute>
                    <ParentRoute path=path!("contacts") view=ContactsRoute::page() ssr=ASYNC>
                        <Route path=path!("") view=NoContact ssr=ASYNC />
                        <Route path=path!("user/:username") view=UserRoute::page() ssr=ASYNC />
                        <Route path=path!("group/:id") view=GroupRoute::page() ssr=ASYNC />
                    </ParentRoute>
                    <ParentRoute path=path!("me") view=MeRoute::page() ssr=ASYNC>
                        <Route path=path!("") view=ProfileRoute::page() ssr=ASYNC />
                        <Route path=path!("profile") view=ProfileRoute::page() ssr=ASYNC />
                        <Route path=path!("password") view=PasswordRoute::page() ssr=ASYNC />
                        <Route path=path!("sessions") view=SessionsRoute::page() ssr=ASYNC />
                        <Route path=path!("language") view=LanguageRoute::page() ssr=ASYNC />
                    </ParentRoute>
                </ParentRoute>
            </Routes>
        </Router>
    }
}
