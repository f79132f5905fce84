//! The "Me" tab: the own profile card, the profile editor, password change, language and
//! log out. The editors call the JSON server functions and update [`Me`] in place.
use leptos::prelude::*;
use leptos_router::components::{A, Outlet};

use crate::api::user::{
    ChangePassword, Logout, RevokeOtherSessions, RevokeSession, UpdateProfile, list_sessions,
};
use crate::error::ApiError;
use crate::i18n::{Lang, Msg, use_i18n};
use crate::model::limits::*;
use crate::model::{Gender, SessionInfo};
use crate::ui::avatar_editor::{AvatarEditor, AvatarOf};
use crate::ui::lazy_page;
use crate::ui::widgets::{
    Avatar, ClientOnly, ErrorNote, Icon, IconSvg, format_date, format_moment,
};
use crate::ui::{use_auth, use_me};
use crate::validate;

lazy_page!(
    /// `/me`: the menu beside the editors.
    MeRoute => MeView
);

#[component]
pub fn MeView() -> impl IntoView {
    let i18n = use_i18n();
    let auth = use_auth();
    let me = use_me().0;
    let logout = ServerAction::<Logout>::new();
    Effect::new(move |_| {
        if matches!(logout.value().get(), Some(Ok(()))) {
            auth.refresh();
        }
    });
    let nickname = Signal::derive(move || me.with(|u| u.nickname.clone()));
    let username = Signal::derive(move || me.with(|u| u.username.clone()));
    let avatar = Signal::derive(move || me.with(|u| u.avatar.clone()));
    // Everywhere a person's colour comes from their id: the same colour in every view.
    let user_id = Signal::derive(move || me.with(|u| u.id.clone()));
    let signature = move || {
        let s = me.with(|u| u.signature.clone());
        if s.is_empty() {
            i18n.t(Msg::SignatureEmpty).to_owned()
        } else {
            s
        }
    };

    view! {
        <section class="list-pane">
            <header class="pane-header">
                <h2>{move || i18n.t(Msg::Me)}</h2>
            </header>
            <div class="me-card">
                <Avatar name=nickname seed=user_id url=avatar size="lg" />
                <div class="me-card-text">
                    <p class="me-nickname" data-testid="me-nickname">
                        {move || nickname.get()}
                    </p>
                    <p class="muted">"@" {move || username.get()}</p>
                    <p class="muted me-signature" data-testid="me-signature">
                        {signature}
                    </p>
                </div>
            </div>
            <nav class="menu">
                <A href="/me/profile" attr:class="menu-item">
                    {move || i18n.t(Msg::EditProfile)}
                </A>
                <A href="/me/password" attr:class="menu-item">
                    {move || i18n.t(Msg::ChangePassword)}
                </A>
                <A href="/me/sessions" attr:class="menu-item">
                    {move || i18n.t(Msg::Sessions)}
                </A>
                <A href="/me/language" attr:class="menu-item">
                    {move || i18n.t(Msg::Language)}
                    <span class="menu-value">
                        {move || if i18n.lang.get() == Lang::Zh { "中文" } else { "English" }}
                    </span>
                </A>
                <button
                    class="menu-item danger"
                    type="button"
                    data-testid="logout"
                    disabled=move || logout.pending().get()
                    on:click=move |_| {
                        logout.dispatch(Logout {});
                    }
                >
                    {move || i18n.t(Msg::Logout)}
                </button>
            </nav>
            <ErrorNote error=Signal::derive(move || logout.value().get().and_then(Result::err)) />
        </section>
        <Outlet />
    }
}

/// The detail pane's header, with a back link on phone-sized windows.
#[component]
fn DetailHeader(title: Msg) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <header class="pane-header detail-header">
            <A href="/me" attr:class="back" attr:aria-label=move || i18n.t(Msg::Back)>
                <IconSvg icon=Icon::Back />
            </A>
            <h2>{move || i18n.t(title)}</h2>
        </header>
    }
}

lazy_page!(
    /// `/me/profile` (and `/me`).
    ProfileRoute => ProfileEditor
);

#[component]
pub fn ProfileEditor() -> impl IntoView {
    let i18n = use_i18n();
    let me = use_me().0;
    let initial = me.get_untracked();
    let nickname = RwSignal::new(initial.nickname.clone());
    let gender = RwSignal::new(initial.gender.as_str().to_owned());
    let signature = RwSignal::new(initial.signature.clone());
    let mobile = RwSignal::new(initial.mobile.clone());
    let local_error = RwSignal::new(None::<ApiError>);
    let saved = RwSignal::new(false);
    let action = ServerAction::<UpdateProfile>::new();
    Effect::new(move |_| {
        if let Some(Ok(profile)) = action.value().get() {
            me.set(profile);
            saved.set(true);
        }
    });
    let error = Signal::derive(move || {
        local_error
            .get()
            .or_else(|| action.value().get().and_then(Result::err))
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        saved.set(false);
        let checked = validate::nickname(&nickname.get_untracked())
            .and_then(|_| validate::signature(&signature.get_untracked()))
            .and_then(|_| validate::mobile(&mobile.get_untracked()));
        if let Err(err) = checked {
            local_error.set(Some(err));
            return;
        }
        local_error.set(None);
        action.dispatch(UpdateProfile {
            nickname: Some(nickname.get_untracked()),
            gender: Some(gender.get_untracked()),
            signature: Some(signature.get_untracked()),
            mobile: Some(mobile.get_untracked()),
        });
    };
    let gender_label = move |g: Gender| match g {
        Gender::Unspecified => i18n.t(Msg::GenderUnspecified),
        Gender::Male => i18n.t(Msg::GenderMale),
        Gender::Female => i18n.t(Msg::GenderFemale),
    };

    view! {
        <section class="detail-pane">
            <DetailHeader title=Msg::EditProfile />
            <AvatarEditor
                of=AvatarOf::Me
                name=Signal::derive(move || me.with(|u| u.nickname.clone()))
                seed=Signal::derive(move || me.with(|u| u.id.clone()))
                url=Signal::derive(move || me.with(|u| u.avatar.clone()))
            />
            <form class="form detail-form" id="profile-form" on:submit=on_submit>
                <label class="field">
                    <span>{move || i18n.t(Msg::Nickname)}</span>
                    <input name="nickname" required maxlength=NICKNAME_MAX bind:value=nickname />
                </label>
                <fieldset class="field">
                    <legend>{move || i18n.t(Msg::Gender)}</legend>
                    <div class="segmented">
                        {Gender::ALL
                            .into_iter()
                            .map(|g| {
                                view! {
                                    <label class="segment">
                                        <input
                                            type="radio"
                                            name="gender"
                                            value=g.as_str()
                                            prop:checked=move || gender.get() == g.as_str()
                                            on:change=move |_| gender.set(g.as_str().to_owned())
                                        />
                                        <span>{move || gender_label(g)}</span>
                                    </label>
                                }
                            })
                            .collect_view()}
                    </div>
                </fieldset>
                <label class="field">
                    <span>{move || i18n.t(Msg::Signature)}</span>
                    <input name="signature" maxlength=SIGNATURE_MAX bind:value=signature />
                </label>
                <label class="field">
                    <span>{move || i18n.t(Msg::Mobile)}</span>
                    <input
                        name="mobile"
                        type="tel"
                        inputmode="tel"
                        maxlength=MOBILE_MAX
                        bind:value=mobile
                    />
                </label>
                <p class="muted">
                    {move || i18n.t(Msg::Joined)} " " {format_date(initial.created_at)}
                </p>
                <ErrorNote error />
                <div class="form-actions">
                    <button class="primary" type="submit" disabled=move || action.pending().get()>
                        {move || {
                            if action.pending().get() {
                                i18n.t(Msg::Saving)
                            } else {
                                i18n.t(Msg::Save)
                            }
                        }}
                    </button>
                    <Show when=move || saved.get()>
                        <span class="note note-ok" role="status">
                            {move || i18n.t(Msg::Saved)}
                        </span>
                    </Show>
                </div>
            </form>
        </section>
    }
}

lazy_page!(
    /// `/me/password`.
    PasswordRoute => PasswordEditor
);

#[component]
pub fn PasswordEditor() -> impl IntoView {
    let i18n = use_i18n();
    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let mismatch = RwSignal::new(false);
    let local_error = RwSignal::new(None::<ApiError>);
    let action = ServerAction::<ChangePassword>::new();
    let done = Signal::derive(move || matches!(action.value().get(), Some(Ok(()))));
    Effect::new(move |_| {
        if done.get() {
            current.set(String::new());
            new.set(String::new());
            confirm.set(String::new());
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        mismatch.set(new.get_untracked() != confirm.get_untracked());
        local_error.set(validate::password("new_password", &new.get_untracked()).err());
        if mismatch.get_untracked() || local_error.with_untracked(Option::is_some) {
            return;
        }
        action.dispatch(ChangePassword {
            current_password: current.get_untracked(),
            new_password: new.get_untracked(),
        });
    };
    view! {
        <section class="detail-pane">
            <DetailHeader title=Msg::ChangePassword />
            <form class="form detail-form" id="password-form" on:submit=on_submit>
                <label class="field">
                    <span>{move || i18n.t(Msg::CurrentPassword)}</span>
                    <input
                        name="current_password"
                        type="password"
                        autocomplete="current-password"
                        required
                        bind:value=current
                    />
                </label>
                <label class="field">
                    <span>{move || i18n.t(Msg::NewPassword)}</span>
                    <input
                        name="new_password"
                        type="password"
                        autocomplete="new-password"
                        required
                        minlength=PASSWORD_MIN
                        maxlength=PASSWORD_MAX
                        bind:value=new
                    />
                </label>
                <label class="field">
                    <span>{move || i18n.t(Msg::ConfirmPassword)}</span>
                    <input
                        name="confirm_password"
                        type="password"
                        autocomplete="new-password"
                        required
                        bind:value=confirm
                    />
                </label>
                <Show when=move || mismatch.get()>
                    <p class="note note-error" role="alert">
                        {move || i18n.t(Msg::PasswordsDiffer)}
                    </p>
                </Show>
                <ErrorNote error=Signal::derive(move || {
                    local_error.get().or_else(|| action.value().get().and_then(Result::err))
                }) />
                <Show when=move || done.get()>
                    <p class="note note-ok" role="status">
                        {move || i18n.t(Msg::PasswordChanged)}
                    </p>
                </Show>
                <div class="form-actions">
                    <button class="primary" type="submit" disabled=move || action.pending().get()>
                        {move || {
                            if action.pending().get() {
                                i18n.t(Msg::Saving)
                            } else {
                                i18n.t(Msg::ChangePassword)
                            }
                        }}
                    </button>
                </div>
            </form>
        </section>
    }
}

lazy_page!(
    /// `/me/language`.
    LanguageRoute => LanguageEditor
);

#[component]
pub fn LanguageEditor() -> impl IntoView {
    let i18n = use_i18n();
    let choice = move |lang: Lang, label: &'static str| {
        view! {
            <label class="choice">
                <input
                    type="radio"
                    name="language"
                    value=lang.code()
                    prop:checked=move || i18n.lang.get() == lang
                    on:change=move |_| i18n.set(lang)
                />
                <span>{label}</span>
            </label>
        }
    };
    view! {
        <section class="detail-pane">
            <DetailHeader title=Msg::Language />
            <div class="form detail-form" id="language-form">
                <p class="muted">{move || i18n.t(Msg::LanguageHint)}</p>
                {choice(Lang::En, "English")}
                {choice(Lang::Zh, "中文")}
            </div>
        </section>
    }
}

lazy_page!(
    /// `/me/sessions`.
    SessionsRoute => SessionsEditor
);

/// `/me/sessions`: where the account is signed in, with a way to sign any of those out, or
/// all but this one.
#[component]
pub fn SessionsEditor() -> impl IntoView {
    let i18n = use_i18n();
    let revoke = ServerAction::<RevokeSession>::new();
    let revoke_others = ServerAction::<RevokeOtherSessions>::new();
    let sessions = LocalResource::new(move || {
        revoke.version().track();
        revoke_others.version().track();
        list_sessions()
    });
    let error = Signal::derive(move || {
        revoke
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| revoke_others.value().get().and_then(Result::err))
    });
    let others_done = move || matches!(revoke_others.value().get(), Some(Ok(_)));
    view! {
        <section class="detail-pane" data-testid="sessions">
            <DetailHeader title=Msg::Sessions />
            <div class="form detail-form">
                <p class="muted">{move || i18n.t(Msg::SessionsHint)}</p>
                <ClientOnly>
                    {move || match sessions.get() {
                        None => {
                            view! { <p class="muted">{move || i18n.t(Msg::Loading)}</p> }.into_any()
                        }
                        Some(Err(err)) => {
                            view! { <ErrorNote error=Signal::derive(move || Some(err.clone())) /> }
                                .into_any()
                        }
                        Some(Ok(list)) => {
                            let others = list.iter().any(|s| !s.current);
                            view! {
                                <ul class="session-list">
                                    {list
                                        .into_iter()
                                        .map(|session| view! { <SessionRow session revoke /> })
                                        .collect_view()}
                                </ul>
                                <Show when=move || others>
                                    <button
                                        class="secondary danger"
                                        type="button"
                                        data-testid="sign-out-others"
                                        disabled=move || revoke_others.pending().get()
                                        on:click=move |_| {
                                            revoke_others.dispatch(RevokeOtherSessions {});
                                        }
                                    >
                                        {move || i18n.t(Msg::SignOutOthers)}
                                    </button>
                                </Show>
                            }
                                .into_any()
                        }
                    }}
                </ClientOnly>
                <Show when=others_done>
                    <p class="note note-ok" role="status">
                        {move || i18n.t(Msg::OthersSignedOut)}
                    </p>
                </Show>
                <ErrorNote error />
            </div>
        </section>
    }
}

/// One signed-in session: device, address, when last active; a sign-out button unless it is
/// this one.
#[component]
fn SessionRow(session: SessionInfo, revoke: ServerAction<RevokeSession>) -> impl IntoView {
    let i18n = use_i18n();
    let device = session.device.clone();
    let id = session.id.clone();
    let last_active = session.last_active_at;
    view! {
        <li class="session-row" data-testid="session" data-current=session.current.to_string()>
            <div class="session-text">
                <p class="session-device" title=session.user_agent.clone()>
                    {move || {
                        if device.is_empty() {
                            i18n.t(Msg::UnknownDevice).to_owned()
                        } else {
                            device.clone()
                        }
                    }}
                    {session
                        .current
                        .then(|| {
                            view! { <span class="tag">{move || i18n.t(Msg::ThisDevice)}</span> }
                        })}
                </p>
                <p class="muted">
                    {session.ip.clone()} " · " {move || i18n.t(Msg::LastActive)} " "
                    {move || format_moment(last_active, i18n.lang.get())}
                </p>
            </div>
            {(!session.current)
                .then(|| {
                    view! {
                        <button
                            class="secondary"
                            type="button"
                            data-testid="sign-out-session"
                            disabled=move || revoke.pending().get()
                            on:click=move |_| {
                                revoke.dispatch(RevokeSession { id: id.clone() });
                            }
                        >
                            {move || i18n.t(Msg::SignOutDevice)}
                        </button>
                    }
                })}
        </li>
    }
}
