//! The components. `auth_pages` are the signed-out pages; `shell` is the signed-in
//! three-pane layout; its tabs are folders (`chats`, `contacts`) beside `me`; `call` is
//! the call screen over everything; `widgets` holds small shared pieces.
pub mod auth_pages;
pub mod call;
pub mod chats;
pub mod contacts;
pub mod me;
pub mod shell;
pub mod widgets;

use leptos::prelude::*;

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
