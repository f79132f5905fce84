//! Small pieces used across views: avatars, icons, error and status lines.
use leptos::prelude::*;

use crate::error::ApiError;
use crate::i18n::{Msg, use_i18n};

/// How many colours initials avatars come in (`.avatar-c0` … `.avatar-c7` in the
/// stylesheet: classes, not inline styles, which the Content-Security-Policy refuses).
const AVATAR_COLOURS: u32 = 8;

fn colour_for(seed: &str) -> u32 {
    let hash = seed
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    hash % AVATAR_COLOURS
}

/// The first letter of the nickname (or username) in upper case.
fn initials(name: &str) -> String {
    name.chars()
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_else(|| "?".into())
}

/// A round avatar: the picture when there is one, else coloured initials.
#[component]
pub fn Avatar(
    #[prop(into)] name: Signal<String>,
    #[prop(into)] seed: Signal<String>,
    #[prop(into, optional)] url: Signal<String>,
    #[prop(default = "md")] size: &'static str,
) -> impl IntoView {
    view! {
        <span
            class=move || format!("avatar avatar-{size} avatar-c{}", colour_for(&seed.get()))
            aria-hidden="true"
        >
            {move || {
                let src = url.get();
                if src.is_empty() {
                    initials(&name.get()).into_any()
                } else {
                    view! { <img src=src alt="" /> }.into_any()
                }
            }}
        </span>
    }
}

/// Shows an API error in the current language, or nothing.
#[component]
pub fn ErrorNote(#[prop(into)] error: Signal<Option<ApiError>>) -> impl IntoView {
    let i18n = use_i18n();
    move || {
        error.get().map(|err| {
            view! {
                <p class="note note-error" role="alert" data-code=err.code.as_str()>
                    {i18n.error(&err)}
                </p>
            }
        })
    }
}

/// A button for what cannot be undone: the first press asks ("Remove friend"), the second
/// does it ("Yes, remove").
#[component]
pub fn ConfirmButton(
    ask: Msg,
    confirm: Msg,
    #[prop(into)] busy: Signal<bool>,
    on_confirm: Callback<()>,
    #[prop(optional)] testid: &'static str,
) -> impl IntoView {
    let i18n = use_i18n();
    let asked = RwSignal::new(false);
    view! {
        <Show
            when=move || asked.get()
            fallback=move || {
                view! {
                    <button
                        type="button"
                        class="secondary danger"
                        on:click=move |_| asked.set(true)
                    >
                        {move || i18n.t(ask)}
                    </button>
                }
            }
        >
            <button
                type="button"
                class="danger-solid"
                data-testid=testid
                disabled=move || busy.get()
                on:click=move |_| on_confirm.run(())
            >
                {move || i18n.t(confirm)}
            </button>
        </Show>
    }
}

/// The search box above a list: filters it as the user types.
#[component]
pub fn SearchBox(filter: RwSignal<String>) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <div class="search">
            <IconSvg icon=Icon::Search />
            <input
                type="search"
                placeholder=move || i18n.t(Msg::Search)
                aria-label=move || i18n.t(Msg::Search)
                bind:value=filter
            />
        </div>
    }
}

/// Renders `children` only in the browser, after hydration; the server and the hydrating
/// browser both render `fallback` ("Loading…" by default). For content that comes from
/// browser-side loads, which the server cannot render: it keeps hydration exact.
#[component]
pub fn ClientOnly(
    children: ChildrenFn,
    #[prop(optional, into)] fallback: Option<ViewFn>,
) -> impl IntoView {
    let i18n = use_i18n();
    let mounted = RwSignal::new(false);
    Effect::new(move |_| mounted.set(true));
    let fallback = fallback.unwrap_or_else(|| {
        ViewFn::from(
            move || view! { <p class="muted pad">{move || i18n.t(crate::i18n::Msg::Loading)}</p> },
        )
    });
    view! {
        <Show when=move || mounted.get() fallback=fallback>
            {children()}
        </Show>
    }
}

/// The name of a navigation icon.
#[derive(Clone, Copy)]
pub enum Icon {
    Chats,
    Contacts,
    Me,
    Back,
    Search,
    Phone,
    Video,
    Mic,
    MicOff,
    CameraOff,
    HangUp,
}

/// An inline SVG icon (stroke drawn in `currentColor`).
#[component]
pub fn IconSvg(icon: Icon) -> impl IntoView {
    let path = match icon {
        Icon::Chats => "M4 5h16v11H8l-4 4z",
        Icon::Contacts => "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm-7 8c0-3.3 3.1-6 7-6s7 2.7 7 6",
        Icon::Me => "M12 3l2.5 5 5.5.8-4 3.9.9 5.5L12 15.6 7.1 18.2l.9-5.5-4-3.9 5.5-.8z",
        Icon::Back => "M15 5l-7 7 7 7",
        Icon::Search => "M11 18a7 7 0 1 0 0-14 7 7 0 0 0 0 14zm5-2l4 4",
        Icon::Phone => {
            "M5 4h4l2 5-2.5 1.5a11 11 0 0 0 5 5L15 13l5 2v4a2 2 0 0 1-2 2A16 16 0 0 1 3 6a2 2 0 0 1 2-2"
        }
        Icon::Video => "M3 7h12v10H3zm12 4l6-4v10l-6-4",
        Icon::Mic => {
            "M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3zM5 11a7 7 0 0 0 14 0M12 18v3"
        }
        Icon::MicOff => {
            "M3 3l18 18M9 9v3a3 3 0 0 0 5 2.2M15 10V6a3 3 0 0 0-5.7-1.3M5 11a7 7 0 0 0 11.5 5.3M19 11a7 7 0 0 1-.6 2.8M12 18v3"
        }
        Icon::CameraOff => "M3 3l18 18M3 7h4m4 0h4v4m0 4v2H3V7m12 4l6-4v10l-6-4",
        Icon::HangUp => "M3 14c5-5 13-5 18 0l-2.5 2.5-3.5-1.5v-2.5a10 10 0 0 0-6 0V15L5.5 16.5z",
    };
    view! {
        <svg class="icon" viewBox="0 0 24 24" aria-hidden="true">
            <path d=path />
        </svg>
    }
}

/// A date as `YYYY-MM-DD` in UTC, computed the same way on server and browser.
/// A moment as the browser's locale writes it ("30/11/2026, 06:14"); on the server (which
/// does not know the reader's time zone) the UTC date.
pub fn format_moment(unix_ms: i64, lang: crate::i18n::Lang) -> String {
    #[cfg(feature = "hydrate")]
    {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(unix_ms as f64));
        String::from(date.to_locale_string(lang.tag(), &wasm_bindgen::JsValue::UNDEFINED))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = lang;
        format_date(unix_ms)
    }
}

pub fn format_date(unix_ms: i64) -> String {
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let days = unix_ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil_utc_dates() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(1_796_083_200_000), "2026-12-01");
        assert_eq!(format_date(951_782_400_000), "2000-02-29");
    }

    #[test]
    fn initials_use_the_first_character() {
        assert_eq!(initials("alice"), "A");
        assert_eq!(initials("张三"), "张");
        assert_eq!(initials(""), "?");
    }
}
