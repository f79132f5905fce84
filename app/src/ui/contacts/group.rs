//! `/contacts/group/:id`: a group's card (ask to join, withdraw, leave, send a message), its
//! members, and for the owner the people asking to join, member tools and the edit form.
use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};

use super::requests::RequestRow;
use super::{DetailHeader, NoteForm, Op, load_error, loading, use_contacts};
use crate::api::community::*;
use crate::contacts::limits::*;
use crate::contacts::{Community, Member, Membership};
use crate::i18n::{Msg, use_i18n};
use crate::ui::avatar_editor::{AvatarEditor, AvatarOf};
use crate::ui::lazy_page;
use crate::ui::widgets::{Avatar, ClientOnly, ConfirmButton, ErrorNote};

lazy_page!(
    /// `/contacts/group/:id`.
    GroupRoute => GroupDetail
);

#[component]
pub fn GroupDetail() -> impl IntoView {
    let params = use_params_map();
    let contacts = use_contacts();
    let id = move || params.read().get("id").unwrap_or_default();
    let group = LocalResource::new(move || {
        contacts.track();
        get_community(id())
    });
    view! {
        <section class="detail-pane" data-testid="group-detail">
            <ClientOnly>
                {move || match group.get() {
                    None => loading().into_any(),
                    Some(Ok(group)) => view! { <GroupCard group /> }.into_any(),
                    Some(Err(e)) => {
                        view! {
                            <DetailHeader title=String::new() />
                            {load_error(e)}
                        }
                            .into_any()
                    }
                }}
            </ClientOnly>
        </section>
    }
}

#[component]
fn GroupCard(group: Community) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    let id = group.id.clone();
    let is_owner = group.membership == Membership::Owner;
    let is_member = matches!(group.membership, Membership::Member | Membership::Owner);
    let members = LocalResource::new({
        let id = id.clone();
        move || {
            contacts.track();
            let id = id.clone();
            async move {
                if is_member {
                    community_members(id).await.map(Some)
                } else {
                    Ok(None)
                }
            }
        }
    });
    let count = group.member_count;
    view! {
        <DetailHeader title=group.name.clone() />
        <div class="card">
            <div class="card-head">
                <Avatar
                    name=group.name.clone()
                    seed=group.id.clone()
                    url=group.avatar.clone()
                    size="lg"
                />
                <div>
                    <p class="card-title" data-testid="group-name">
                        {group.name.clone()}
                    </p>
                    <p class="muted">
                        <span data-testid="member-count">{count}</span>
                        " "
                        {move || i18n.members(count)}
                        " · "
                        {move || i18n.t(Msg::OwnerLabel)}
                        " "
                        {group.owner.nickname.clone()}
                    </p>
                </div>
            </div>
            <p class="card-description">{group.description.clone()}</p>
            <p class="muted small">"ID: " <code class="selectable">{group.id.clone()}</code></p>
            <GroupActions group=group.clone() />
        </div>
        {is_owner.then(|| view! { <JoinRequests group_id=id.clone() /> })}
        {move || match members.get() {
            Some(Ok(Some(list))) => {
                view! { <MemberList members=list group_id=id.clone() is_owner /> }.into_any()
            }
            Some(Ok(None)) | None => ().into_any(),
            Some(Err(e)) => load_error(e).into_any(),
        }}
    }
}

/// Ask to join, withdraw, send a message, leave; the owner's tools.
#[component]
fn GroupActions(group: Community) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    let navigate = use_navigate();
    let op = Op::new();
    let id = group.id.clone();
    let join = {
        let id = id.clone();
        move |memo: String| {
            op.run(join_community(id.clone(), memo), move |_| {
                contacts.refresh()
            })
        }
    };
    let leave = {
        let id = id.clone();
        move |_| {
            let navigate = navigate.clone();
            op.run(leave_community(id.clone()), move |_| {
                contacts.refresh();
                navigate("/contacts", NavigateOptions::default());
            })
        }
    };
    let actions = match group.membership {
        Membership::None => {
            view! { <NoteForm label=Msg::AskToJoin op testid="join-form" send=join /> }.into_any()
        }
        Membership::Requested => view! {
            <div class="card-actions">
                <span class="muted">{move || i18n.t(Msg::RequestSent)}</span>
                <button type="button" class="secondary" on:click=leave>
                    {move || i18n.t(Msg::Withdraw)}
                </button>
            </div>
        }
        .into_any(),
        Membership::Member => view! {
            <div class="card-actions">
                <A href=format!("/chats/group/{id}") attr:class="button primary">
                    {move || i18n.t(Msg::SendMessage)}
                </A>
                <button
                    type="button"
                    class="secondary danger"
                    data-testid="leave-group"
                    on:click=leave
                >
                    {move || i18n.t(Msg::LeaveGroup)}
                </button>
            </div>
        }
        .into_any(),
        Membership::Owner => view! {
            <div class="card-actions">
                <A href=format!("/chats/group/{id}") attr:class="button primary">
                    {move || i18n.t(Msg::SendMessage)}
                </A>
            </div>
            <OwnerTools group=group.clone() />
        }
        .into_any(),
    };
    view! {
        {actions}
        <ErrorNote error=op.error_signal() />
    }
}

/// For the owner: who is asking to join this group, with their notes and the answers.
#[component]
fn JoinRequests(group_id: String) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    let pending = move || {
        contacts
            .join_requests
            .get()
            .and_then(Result::ok)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.community.as_ref().is_some_and(|c| c.id == group_id))
            .collect::<Vec<_>>()
    };
    move || {
        let pending = pending();
        (!pending.is_empty()).then(|| {
            view! {
                <section class="card join-requests" data-testid="join-requests">
                    <h3>{move || i18n.t(Msg::JoinRequests)} " (" {pending.len()} ")"</h3>
                    <ul class="rows">
                        {pending
                            .into_iter()
                            .map(|entry| view! { <RequestRow entry show_group=false /> })
                            .collect_view()}
                    </ul>
                </section>
            }
        })
    }
}

#[component]
fn MemberList(members: Vec<Member>, group_id: String, is_owner: bool) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    let op = Op::new();
    let count = members.len();
    let rows = members
        .into_iter()
        .map(|m| {
            let (gid, gid2) = (group_id.clone(), group_id.clone());
            let (u1, u2) = (m.user.username.clone(), m.user.username.clone());
            let transfer = move |_| {
                let done = move |_| contacts.refresh();
                op.run(transfer_community(gid.clone(), u1.clone()), done);
            };
            let remove = move |_| {
                let done = move |_| contacts.refresh();
                op.run(remove_member(gid2.clone(), u2.clone()), done);
            };
            let tools = (is_owner && !m.is_owner)
                .then(|| {
                    view! {
                        <span class="row-actions">
                            <button
                                type="button"
                                class="secondary small"
                                disabled=move || op.busy.get()
                                on:click=transfer
                            >
                                {move || i18n.t(Msg::MakeOwner)}
                            </button>
                            <button
                                type="button"
                                class="secondary small danger"
                                disabled=move || op.busy.get()
                                on:click=remove
                            >
                                {move || i18n.t(Msg::Remove)}
                            </button>
                        </span>
                    }
                });
            view! {
                <li class="row" data-username=m.user.username.clone()>
                    <span class="row-main">
                        <Avatar
                            name=m.user.nickname.clone()
                            seed=m.user.id.clone()
                            url=m.user.avatar.clone()
                            size="sm"
                        />
                        <span class="row-text">
                            <span class="row-title">{m.user.nickname.clone()}</span>
                            <span class="row-sub">
                                "@" {m.user.username.clone()}
                                {m
                                    .is_owner
                                    .then(|| {
                                        view! {
                                            " · "
                                            <span class="tag">{move || i18n.t(Msg::OwnerLabel)}</span>
                                        }
                                    })}
                            </span>
                        </span>
                    </span>
                    {tools}
                </li>
            }
        })
        .collect_view();
    view! {
        <section class="card members" data-testid="members">
            <h3>{move || i18n.t(Msg::Members)} " (" {count} ")"</h3>
            <ul class="rows">{rows}</ul>
            <ErrorNote error=op.error_signal() />
        </section>
    }
}

/// The owner's edit form and the dissolve button.
#[component]
fn OwnerTools(group: Community) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    let navigate = use_navigate();
    let op = Op::new();
    let name = RwSignal::new(group.name.clone());
    let description = RwSignal::new(group.description.clone());
    let id = group.id.clone();
    let save = {
        let id = id.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let (name, description) = (name.get_untracked(), description.get_untracked());
            op.run(
                update_community(id.clone(), Some(name), Some(description), None, None),
                move |_| contacts.refresh(),
            );
        }
    };
    let dissolve = Callback::new(move |()| {
        let navigate = navigate.clone();
        op.run(dissolve_community(id.clone()), move |_| {
            contacts.refresh();
            navigate("/contacts", NavigateOptions::default());
        })
    });
    view! {
        <details class="owner-tools">
            <summary>{move || i18n.t(Msg::EditGroup)}</summary>
            <AvatarEditor
                of=AvatarOf::Group(group.id.clone())
                name=Signal::stored(group.name.clone())
                seed=Signal::stored(group.id.clone())
                url=Signal::stored(group.avatar.clone())
                on_saved=Callback::new(move |()| contacts.refresh())
            />
            <form class="form" on:submit=save>
                <label class="field">
                    <span>{move || i18n.t(Msg::GroupName)}</span>
                    <input name="name" required maxlength=GROUP_NAME_MAX bind:value=name />
                </label>
                <label class="field">
                    <span>{move || i18n.t(Msg::GroupDescription)}</span>
                    <input
                        name="description"
                        maxlength=GROUP_DESCRIPTION_MAX
                        bind:value=description
                    />
                </label>
                <button class="primary" type="submit" disabled=move || op.busy.get()>
                    {move || i18n.t(Msg::Save)}
                </button>
            </form>
            <ConfirmButton
                ask=Msg::Dissolve
                confirm=Msg::ConfirmDissolve
                busy=op.busy
                on_confirm=dissolve
            />
            <ErrorNote error=op.error_signal() />
        </details>
    }
}
