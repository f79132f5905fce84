//! `/contacts/user/:username`: a person's card, and what the caller may do there for how
//! they stand (add with a note, accept or decline, withdraw, remove, send a message).
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use super::{DetailHeader, NoteForm, Op, load_error, loading, use_contacts};
use crate::api::relation::*;
use crate::contacts::{PublicUser, Standing, UserCard};
use crate::i18n::{Msg, use_i18n};
use crate::model::Gender;
use crate::ui::lazy_page;
use crate::ui::widgets::{Avatar, ClientOnly, ConfirmButton, ErrorNote};

fn gender_text(gender: Gender) -> Msg {
    match gender {
        Gender::Unspecified => Msg::GenderUnspecified,
        Gender::Male => Msg::GenderMale,
        Gender::Female => Msg::GenderFemale,
    }
}

lazy_page!(
    /// `/contacts/user/:username`.
    UserRoute => UserDetail
);

#[component]
pub fn UserDetail() -> impl IntoView {
    let i18n = use_i18n();
    let params = use_params_map();
    let contacts = use_contacts();
    let username = move || params.read().get("username").unwrap_or_default();
    let card = LocalResource::new(move || {
        contacts.track();
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
                    Some(Ok(Some(card))) => view! { <UserCardView card /> }.into_any(),
                    Some(Ok(None)) => {
                        view! {
                            <DetailHeader title=String::new() />
                            <p class="muted pad">{move || i18n.t(Msg::ErrUserNotFound)}</p>
                        }
                            .into_any()
                    }
                    Some(Err(e)) => load_error(e).into_any(),
                }}
            </ClientOnly>
        </section>
    }
}

#[component]
fn UserCardView(card: UserCard) -> impl IntoView {
    let i18n = use_i18n();
    let user = card.user;
    let gender = gender_text(user.gender);
    view! {
        <DetailHeader title=user.nickname.clone() />
        <div class="card" data-standing=format!("{:?}", card.standing)>
            <div class="card-head">
                <Avatar
                    name=user.nickname.clone()
                    seed=user.id.clone()
                    url=user.avatar.clone()
                    size="lg"
                />
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
            <PersonActions user standing=card.standing />
        </div>
    }
}

/// What the caller may do with this person, for how they stand.
#[component]
fn PersonActions(user: PublicUser, standing: Standing) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    let op = Op::new();
    // Every change reloads the lists, and with them this card.
    let done = move || contacts.refresh();
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
    let request_form = {
        let username = username.clone();
        move |label: Msg| view! { <RequestForm username=username.clone() label op /> }
    };
    let remove = {
        let username = username.clone();
        Callback::new(move |()| op.run(remove_friend(username.clone()), move |_| done()))
    };
    let call = move |what: &'static str| {
        let username = username.clone();
        move |_| match what {
            "accept" => op.run(accept_friend(username.clone()), move |_| done()),
            "decline" => op.run(decline_friend(username.clone()), move |_| done()),
            _ => op.run(remove_friend(username.clone()), move |_| done()),
        }
    };
    let actions = match standing {
        Standing::Myself => {
            view! { <p class="muted">{move || i18n.t(Msg::ThisIsYou)}</p> }.into_any()
        }
        Standing::Friend => view! {
            <div class="card-actions">
                <A
                    href=format!("/chats/user/{}", user.id)
                    attr:class="button primary"
                    attr:data-testid="send-message"
                >
                    {move || i18n.t(Msg::SendMessage)}
                </A>
                <ConfirmButton
                    ask=Msg::RemoveFriend
                    confirm=Msg::ConfirmRemove
                    busy=op.busy
                    on_confirm=remove
                    testid="confirm-remove"
                />
            </div>
        }
        .into_any(),
        Standing::RequestedYou => view! {
            <div class="request-box">
                <p class="muted">{move || i18n.t(Msg::WantsToBeFriends)}</p>
                <blockquote class="memo">{received_memo}</blockquote>
                <div class="card-actions">
                    <button
                        type="button"
                        class="primary"
                        disabled=move || op.busy.get()
                        on:click=call("accept")
                    >
                        {move || i18n.t(Msg::Accept)}
                    </button>
                    <button
                        type="button"
                        class="secondary"
                        disabled=move || op.busy.get()
                        on:click=call("decline")
                    >
                        {move || i18n.t(Msg::Decline)}
                    </button>
                </div>
            </div>
        }
        .into_any(),
        Standing::Requested => view! {
            <div class="card-actions">
                <span class="muted">{move || i18n.t(Msg::RequestSent)}</span>
                <button
                    type="button"
                    class="secondary"
                    disabled=move || op.busy.get()
                    on:click=call("remove")
                >
                    {move || i18n.t(Msg::Withdraw)}
                </button>
            </div>
            {request_form(Msg::UpdateRequest)}
        }
        .into_any(),
        Standing::RemovedYou => view! {
            <p class="note removed-note" data-testid="removed-you">
                {move || i18n.t(Msg::RemovedYou)}
            </p>
            {request_form(Msg::AddFriend)}
            <button type="button" class="link" on:click=call("remove")>
                {move || i18n.t(Msg::Dismiss)}
            </button>
        }
        .into_any(),
        Standing::None => request_form(Msg::AddFriend).into_any(),
    };
    view! {
        {actions}
        <ErrorNote error=op.error_signal() />
    }
}

/// Asks to be friends, with a note saying who is asking.
#[component]
fn RequestForm(username: String, label: Msg, op: Op) -> impl IntoView {
    let contacts = use_contacts();
    let send = move |memo: String| {
        op.run(request_friend(username.clone(), memo), move |_| {
            contacts.refresh()
        })
    };
    view! { <NoteForm label op testid="request-form" send /> }
}
