//! "Add friend / group": find a person or a group by name, or create a group.
use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;

use super::{Op, use_contacts};
use crate::api::community::{create_community, search_communities};
use crate::api::relation::search_users;
use crate::contacts::limits::{GROUP_DESCRIPTION_MAX, GROUP_NAME_MAX};
use crate::contacts::{Community, UserCard};
use crate::i18n::{Msg, use_i18n};
use crate::ui::widgets::{Avatar, ErrorNote};

#[derive(Clone, Copy, PartialEq, Eq)]
enum AddTab {
    Friend,
    Group,
    NewGroup,
}

/// "Add friend / group": find a person or a group, or create a group.
#[component]
pub fn AddDialog(on_close: impl Fn() + Clone + Send + Sync + 'static) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    let navigate = use_navigate();
    let tab = RwSignal::new(AddTab::Friend);
    let query = RwSignal::new(String::new());
    let op = Op::new();
    let people = RwSignal::new(None::<Vec<UserCard>>);
    let groups = RwSignal::new(None::<Vec<Community>>);
    let new_name = RwSignal::new(String::new());
    let new_description = RwSignal::new(String::new());
    let search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let q = query.get_untracked();
        match tab.get_untracked() {
            AddTab::Friend => op.run(search_users(q), move |r| people.set(Some(r))),
            AddTab::Group => op.run(search_communities(q), move |r| groups.set(Some(r))),
            AddTab::NewGroup => {}
        }
    };
    let close = on_close.clone();
    let go = {
        let close = on_close.clone();
        let navigate = navigate.clone();
        move |path: String| {
            close();
            navigate(&path, NavigateOptions::default());
        }
    };
    let create = {
        let go = go.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let go = go.clone();
            op.run(
                create_community(
                    new_name.get_untracked(),
                    new_description.get_untracked(),
                    String::new(),
                ),
                move |g| {
                    contacts.refresh();
                    go(format!("/contacts/group/{}", g.id));
                },
            );
        }
    };
    let close_on_escape = {
        let close = on_close.clone();
        move |ev: leptos::ev::KeyboardEvent| {
            if ev.key() == "Escape" {
                close();
            }
        }
    };
    let tab_button = move |t: AddTab, label: Msg| {
        view! {
            <button
                type="button"
                role="tab"
                class="tab"
                aria-selected=move || (tab.get() == t).to_string()
                on:click=move |_| {
                    tab.set(t);
                    op.error.set(None);
                }
            >
                {move || i18n.t(label)}
            </button>
        }
    };
    view! {
        <div class="overlay" on:keydown=close_on_escape>
            <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="add-title" data-testid="add-dialog">
                <header class="dialog-header">
                    <h2 id="add-title">{move || i18n.t(Msg::AddFriendOrGroup)}</h2>
                    <button type="button" class="icon-button" aria-label=move || i18n.t(Msg::Close) on:click=move |_| close()>"×"</button>
                </header>
                <div class="tabs" role="tablist">
                    {tab_button(AddTab::Friend, Msg::FindPeople)}
                    {tab_button(AddTab::Group, Msg::FindGroups)}
                    {tab_button(AddTab::NewGroup, Msg::CreateGroup)}
                </div>
                <Show
                    when=move || tab.get() == AddTab::NewGroup
                    fallback=move || view! {
                        <form class="search-form" on:submit=search>
                            <input
                                name="query"
                                type="search"
                                autofocus
                                bind:value=query
                                placeholder=move || if tab.get() == AddTab::Friend { i18n.t(Msg::SearchPeopleHint) } else { i18n.t(Msg::SearchGroupsHint) }
                            />
                            <button class="primary" type="submit" disabled=move || op.busy.get()>{move || i18n.t(Msg::Search)}</button>
                        </form>
                    }
                >
                    <form class="form" on:submit=create.clone() data-testid="create-group-form">
                        <label class="field">
                            <span>{move || i18n.t(Msg::GroupName)}</span>
                            <input name="name" required maxlength=GROUP_NAME_MAX bind:value=new_name/>
                        </label>
                        <label class="field">
                            <span>{move || i18n.t(Msg::GroupDescription)}</span>
                            <input name="description" maxlength=GROUP_DESCRIPTION_MAX bind:value=new_description/>
                        </label>
                        <button class="primary" type="submit" disabled=move || op.busy.get()>{move || i18n.t(Msg::CreateGroup)}</button>
                    </form>
                </Show>
                <ErrorNote error=op.error_signal()/>
                <ul class="rows results">
                    {move || {
                        let closed = Callback::new({
                            let close = on_close.clone();
                            move |()| close()
                        });
                        let none = || view! { <li class="muted pad">{move || i18n.t(Msg::NoResults)}</li> }.into_any();
                        match tab.get() {
                            AddTab::Friend => people.get().map(|list| {
                                if list.is_empty() {
                                    return none();
                                }
                                list.into_iter().map(|card| {
                                    let path = format!("/contacts/user/{}", card.user.username);
                                    let sub = format!("@{}", card.user.username);
                                    let u = card.user;
                                    view! { <ResultRow name=u.nickname seed=u.id avatar=u.avatar sub path closed/> }
                                }).collect_view().into_any()
                            }),
                            AddTab::Group => groups.get().map(|list| {
                                if list.is_empty() {
                                    return none();
                                }
                                list.into_iter().map(|g| {
                                    let path = format!("/contacts/group/{}", g.id);
                                    let sub = format!("{} {}", g.member_count, i18n.members(g.member_count));
                                    view! { <ResultRow name=g.name seed=g.id avatar=g.avatar sub path closed/> }
                                }).collect_view().into_any()
                            }),
                            AddTab::NewGroup => None,
                        }
                    }}
                </ul>
            </div>
        </div>
    }
}

/// A person or a group found: a click opens their card.
#[component]
fn ResultRow(
    name: String,
    seed: String,
    avatar: String,
    sub: String,
    path: String,
    closed: Callback<()>,
) -> impl IntoView {
    view! {
        <li class="row">
            <A href=path attr:class="row-main" on:click=move |_| closed.run(())>
                <Avatar name=name.clone() seed url=avatar/>
                <span class="row-text">
                    <span class="row-title">{name}</span>
                    <span class="row-sub">{sub}</span>
                </span>
            </A>
        </li>
    }
}
