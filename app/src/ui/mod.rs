//! The components. `auth_pages` are the signed-out pages; `shell` is the signed-in
//! three-pane layout; its tabs are folders (`chats`, `contacts`) beside `me`; `call` is
//! the call screen over everything; `widgets` holds small shared pieces.
pub mod auth_pages;
mod avatar_editor;
pub mod call;
pub mod chats;
pub mod contacts;
pub mod me;
pub mod shell;
pub mod widgets;

use leptos::prelude::*;

/// Declares `$route`: a route whose view is the component `$component`, loaded on the first
/// visit. Built with `cargo leptos build --split`, its code is a WASM chunk of its own that
/// the browser fetches when the route is first shown (the server names it in the page when
/// it renders the route), so `/chats` does not wait for screens it does not show.
macro_rules! lazy_page {
    ($(#[$doc:meta])* $route:ident => $component:ident) => {
        $(#[$doc])*
        pub struct $route;

        impl $route {
            /// What the route's `view` is.
            pub fn page() -> leptos_router::Lazy<Self> {
                leptos_router::Lazy::new()
            }
        }

        #[leptos_router::lazy_route]
        impl leptos_router::LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> AnyView {
                view! { <$component /> }.into_any()
            }
        }
    };
}
pub(crate) use lazy_page;

use crate::api::user::session_user;
use crate::error::ApiError;
use crate::model::UserProfile;

/// The session as the page knows it. `user` is fetched on the server for the first render
/// and again whenever `version` moves (after logging in or out).
#[derive(Clone, Copy)]
pub struct Auth {
    pub user: Resource<Result<Option<UserProfile>, ApiError>>,
    pub version: RwSignal<u64>,
}

impl Auth {
    /// Asks the server again who is signed in.
    pub fn refresh(self) {
        self.version.update(|v| *v += 1);
    }
}

pub fn provide_auth() {
    let version = RwSignal::new(0u64);
    let user = Resource::new(move || version.get(), |_| session_user());
    provide_context(Auth { user, version });
}

pub fn use_auth() -> Auth {
    expect_context::<Auth>()
}

/// The signed-in user's profile inside the shell; edits update it in place.
#[derive(Clone, Copy)]
pub struct Me(pub RwSignal<UserProfile>);

pub fn use_me() -> Me {
    expect_context::<Me>()
}
