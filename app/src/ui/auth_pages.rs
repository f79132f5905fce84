//! The signed-out pages: log in and create an account. Both are plain HTML forms that post
//! to `user/login_form` / `user/register_form`, so they work before (or without) the WASM;
//! once hydrated, `ActionForm` sends the same form with `fetch` and shows errors in place.
use leptos::prelude::*;
use leptos_router::components::{A, Redirect};
use leptos_router::hooks::use_query_map;

use crate::api::user::{LoginForm, RegisterForm};
use crate::error::ApiError;
use crate::i18n::{Lang, Msg, use_i18n};
use crate::model::limits::*;
use crate::ui::lazy_page;
use crate::ui::use_auth;
use crate::ui::widgets::ErrorNote;

/// Sends a signed-in visitor on to the chats; otherwise shows `children`.
#[component]
fn SignedOutOnly(children: ChildrenFn) -> impl IntoView {
    let auth = use_auth();
    let children = StoredValue::new(children);
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match auth.user.await {
                    Ok(Some(_)) => view! { <Redirect path="/chats" /> }.into_any(),
                    _ => children.read_value()().into_any(),
                }
            })}
        </Transition>
    }
}

/// The card both pages are drawn in, with the product name and a language switch.
#[component]
fn AuthCard(children: Children) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <main class="auth-page">
            <section class="auth-card">
                <header class="auth-brand">
                    <img class="auth-logo" src="/favicon.svg" alt="" />
                    <h1>{move || i18n.t(Msg::AppName)}</h1>
                    <p class="muted">{move || i18n.t(Msg::Tagline)}</p>
                </header>
                {children()}
                <footer class="auth-lang">
                    <button
                        type="button"
                        class="link"
                        class:active=move || i18n.lang.get() == Lang::En
                        on:click=move |_| i18n.set(Lang::En)
                    >
                        "English"
                    </button>
                    " · "
                    <button
                        type="button"
                        class="link"
                        class:active=move || i18n.lang.get() == Lang::Zh
                        on:click=move |_| i18n.set(Lang::Zh)
                    >
                        "中文"
                    </button>
                </footer>
            </section>
        </main>
    }
}

/// Refreshes the session once an action has succeeded; `SignedOutOnly` then redirects.
fn refresh_on_success<T, V>(value: V)
where
    T: Clone + Send + Sync + 'static,
    V: Get<Value = Option<Result<T, ApiError>>> + Send + Sync + 'static,
{
    let auth = use_auth();
    Effect::new(move |_| {
        if matches!(value.get(), Some(Ok(_))) {
            auth.refresh();
        }
    });
}

/// What a plain form (no JavaScript) that failed sent back for `field`: the page shows the
/// error and keeps what the user typed.
fn typed(field: &'static str) -> impl Fn() -> String + Send + Sync + 'static {
    let query = use_query_map();
    move || query.read().get(field).unwrap_or_default()
}

fn action_error<T, V>(value: V) -> Signal<Option<ApiError>>
where
    T: Clone + Send + Sync + 'static,
    V: Get<Value = Option<Result<T, ApiError>>> + Send + Sync + 'static,
{
    Signal::derive(move || value.get().and_then(Result::err))
}

lazy_page!(
    /// `/login`.
    LoginRoute => LoginPage
);

#[component]
pub fn LoginPage() -> impl IntoView {
    let i18n = use_i18n();
    let action = ServerAction::<LoginForm>::new();
    refresh_on_success(action.value());
    let error = action_error(action.value());
    let pending = action.pending();
    view! {
        <SignedOutOnly>
            <AuthCard>
                <ActionForm action=action attr:class="form" attr:id="login-form">
                    <label class="field">
                        <span>{move || i18n.t(Msg::Username)}</span>
                        <input
                            name="username"
                            autocomplete="username"
                            autocapitalize="none"
                            required
                            maxlength=USERNAME_MAX
                            autofocus
                            value=typed("username")
                        />
                    </label>
                    <label class="field">
                        <span>{move || i18n.t(Msg::Password)}</span>
                        <input
                            name="password"
                            type="password"
                            autocomplete="current-password"
                            required
                            maxlength=PASSWORD_MAX
                        />
                    </label>
                    <ErrorNote error />
                    <button class="primary wide" type="submit" disabled=move || pending.get()>
                        {move || {
                            if pending.get() { i18n.t(Msg::LoggingIn) } else { i18n.t(Msg::Login) }
                        }}
                    </button>
                </ActionForm>
                <p class="auth-switch">
                    {move || i18n.t(Msg::NoAccount)} " "
                    <A href="/register">{move || i18n.t(Msg::Register)}</A>
                </p>
            </AuthCard>
        </SignedOutOnly>
    }
}

lazy_page!(
    /// `/register`.
    RegisterRoute => RegisterPage
);

#[component]
pub fn RegisterPage() -> impl IntoView {
    let i18n = use_i18n();
    let action = ServerAction::<RegisterForm>::new();
    refresh_on_success(action.value());
    let error = action_error(action.value());
    let pending = action.pending();
    view! {
        <SignedOutOnly>
            <AuthCard>
                <ActionForm action=action attr:class="form" attr:id="register-form">
                    <label class="field">
                        <span>{move || i18n.t(Msg::Username)}</span>
                        <input
                            name="username"
                            autocomplete="username"
                            autocapitalize="none"
                            required
                            minlength=USERNAME_MIN
                            maxlength=USERNAME_MAX
                            pattern="[A-Za-z0-9_]+"
                            autofocus
                            value=typed("username")
                        />
                        <small class="muted">{move || i18n.t(Msg::UsernameHint)}</small>
                    </label>
                    <label class="field">
                        <span>{move || i18n.t(Msg::Nickname)}</span>
                        <input
                            name="nickname"
                            autocomplete="nickname"
                            required
                            maxlength=NICKNAME_MAX
                            value=typed("nickname")
                        />
                    </label>
                    <label class="field">
                        <span>{move || i18n.t(Msg::Password)}</span>
                        <input
                            name="password"
                            type="password"
                            autocomplete="new-password"
                            required
                            minlength=PASSWORD_MIN
                            maxlength=PASSWORD_MAX
                        />
                        <small class="muted">{move || i18n.t(Msg::PasswordHint)}</small>
                    </label>
                    <ErrorNote error />
                    <button class="primary wide" type="submit" disabled=move || pending.get()>
                        {move || {
                            if pending.get() {
                                i18n.t(Msg::Registering)
                            } else {
                                i18n.t(Msg::Register)
                            }
                        }}
                    </button>
                </ActionForm>
                <p class="auth-switch">
                    {move || i18n.t(Msg::HaveAccount)} " "
                    <A href="/login">{move || i18n.t(Msg::Login)}</A>
                </p>
            </AuthCard>
        </SignedOutOnly>
    }
}
