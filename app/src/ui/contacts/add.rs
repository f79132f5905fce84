//! "Add friend / group": find a person or a group by name (`Search`), or create a group
//! (`CreateGroup`). Esc or × closes it; a result opens that card.
use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;

use super::{Op, use_contacts};
use crate::api::community::{create_community, search_communities};
use crate::api::relation::search_users;
use crate::contacts::limits::{GROUP_DESCRIPTION_MAX, GROUP_NAME_MAX};
use crate::i18n::{I18n, Msg, use_i18n};
use crate::ui::widgets::{Avatar, ErrorNote};

#[derive(Clone, Copy, PartialEq, Eq)]
enum AddTab {
    Friend,
    Group,
    NewGroup,
}

/// A person or a group found, as its row shows it.
#[derive(Clone)]
struct Found {
    name: String,
    seed: String,
    avatar: String,
    sub: String,
    path: String,
}

#[component]
pub fn AddDialog(on_close: impl Fn() + Clone + Send + Sync + 'static) -> impl IntoView {
    let i18n = use_i18n();
    let tab = RwSignal::new(AddTab::Friend);
    let op = Op::new();
    let closed = Callback::new(move |()| on_close());
    let close_on_escape = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Escape" {
            closed.run(());
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
            <div
                class="dialog"
                role="dialog"
                aria-modal="true"
                aria-labelledby="add-title"
                data-testid="add-dialog"
            >
                <header class="dialog-header">
                    <h2 id="add-title">{move || i18n.t(Msg::AddFriendOrGroup)}</h2>
                    <button
                        type="button"
                        class="icon-button"
                        aria-label=move || i18n.t(Msg::Close)
                        on:click=move |_| closed.run(())
                    >
                        "×"
                    </button>
                </header>
                <div class="tabs" role="tablist">
                    {tab_button(AddTab::Friend, Msg::FindPeople)}
                    {tab_button(AddTab::Group, Msg::FindGroups)}
                    {tab_button(AddTab::NewGroup, Msg::CreateGroup)}
                </div>
                <Show
                    when=move || tab.get() == AddTab::NewGroup
                    fallback=move || view! { <Search tab op closed /> }
                >
                    <CreateGroup op closed />
                </Show>
                <ErrorNote error=op.error_signal() />
            </div>
        </div>
    }
}

/// Finds people (by username) or groups (by name) and lists them.
#[component]
fn Search(tab: RwSignal<AddTab>, op: Op, closed: Callback<()>) -> impl IntoView {
    let i18n = use_i18n();
    let query = RwSignal::new(String::new());
    let found = RwSignal::new(None::<Vec<Found>>);
    // Another tab, another kind of result.
    Effect::new(move |_| {
        tab.track();
        found.set(None);
    });
    let search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let q = query.get_untracked();
        let show = move |list: Vec<Found>| found.set(Some(list));
        match tab.get_untracked() {
            AddTab::Friend => op.run(search_users(q), move |cards| {
                show(cards.into_iter().map(|c| person(c.user)).collect())
            }),
            AddTab::Group => op.run(search_communities(q), move |groups| {
                show(groups.into_iter().map(|g| group(g, i18n)).collect())
            }),
            AddTab::NewGroup => {}
        }
    };
    let hint = move || {
        i18n.t(if tab.get() == AddTab::Friend {
            Msg::SearchPeopleHint
        } else {
            Msg::SearchGroupsHint
        })
    };
    let rows = move || {
        found.get().map(|list| {
            if list.is_empty() {
                return view! { <li class="muted pad">{move || i18n.t(Msg::NoResults)}</li> }
                    .into_any();
            }
            list.into_iter()
                .map(|found| view! { <ResultRow found closed /> })
                .collect_view()
                .into_any()
        })
    };
    view! {
        <form class="search-form" on:submit=search>
            <input name="query" type="search" autofocus bind:value=query placeholder=hint />
            <button class="primary" type="submit" disabled=move || op.busy.get()>
                {move || i18n.t(Msg::Search)}
            </button>
        </form>
        <ul class="rows results">{rows}</ul>
    }
}

fn person(user: crate::contacts::PublicUser) -> Found {
    Found {
        sub: format!("@{}", user.username),
        path: format!("/contacts/user/{}", user.username),
        name: user.nickname,
        seed: user.id,
        avatar: user.avatar,
    }
}

fn group(g: crate::contacts::Community, i18n: I18n) -> Found {
    Found {
        sub: format!("{} {}", g.member_count, i18n.members(g.member_count)),
        path: format!("/contacts/group/{}", g.id),
        name: g.name,
        seed: g.id,
        avatar: g.avatar,
    }
}

/// A person or a group found: a click opens their card.
#[component]
fn ResultRow(found: Found, closed: Callback<()>) -> impl IntoView {
    view! {
        <li class="row">
            <A href=found.path attr:class="row-main" on:click=move |_| closed.run(())>
                <Avatar name=found.name.clone() seed=found.seed url=found.avatar />
                <span class="row-text">
                    <span class="row-title">{found.name}</span>
                    <span class="row-sub">{found.sub}</span>
                </span>
            </A>
        </li>
    }
}

/// A new group with the caller as its owner; its card opens once made.
#[component]
fn CreateGroup(op: Op, closed: Callback<()>) -> impl IntoView {
    let i18n = use_i18n();
    let contacts = use_contacts();
    let navigate = use_navigate();
    let name = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let navigate = navigate.clone();
        let made = create_community(
            name.get_untracked(),
            description.get_untracked(),
            String::new(),
        );
        op.run(made, move |g| {
            contacts.refresh();
            closed.run(());
            navigate(
                &format!("/contacts/group/{}", g.id),
                NavigateOptions::default(),
            );
        });
    };
    view! {
        <form class="form" on:submit=create data-testid="create-group-form">
            <label class="field">
                <span>{move || i18n.t(Msg::GroupName)}</span>
                <input name="name" required maxlength=GROUP_NAME_MAX bind:value=name />
            </label>
            <label class="field">
                <span>{move || i18n.t(Msg::GroupDescription)}</span>
                <input name="description" maxlength=GROUP_DESCRIPTION_MAX bind:value=description />
            </label>
            <button class="primary" type="submit" disabled=move || op.busy.get()>
                {move || i18n.t(Msg::CreateGroup)}
            </button>
        </form>
    }
}
