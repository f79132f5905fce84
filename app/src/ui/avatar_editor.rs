//! A profile's or a group's picture: pick a picture, choose the square to keep (drag it,
//! zoom it, with the mouse, a finger or the keyboard), use it, or go back to initials. The
//! square is cut in the browser (512 × 512, `crate::crop` says which part) and uploaded like
//! any picture; the server makes the sizes and tells everyone who shows it.
use leptos::prelude::*;

use crate::crop::{Crop, MAX_ZOOM};
use crate::error::ApiError;
use crate::i18n::{Msg, use_i18n};
use crate::ui::widgets::{Avatar, ErrorNote};

/// Whose picture the editor changes.
#[derive(Debug, Clone, PartialEq)]
pub enum AvatarOf {
    /// The signed-in user's.
    Me,
    /// A group's (its owner is signed in).
    Group(String),
}

#[component]
pub fn AvatarEditor(
    of: AvatarOf,
    name: Signal<String>,
    seed: Signal<String>,
    url: Signal<String>,
    /// Called once the new picture (or initials) is saved.
    #[prop(optional)]
    on_saved: Option<Callback<()>>,
) -> impl IntoView {
    let i18n = use_i18n();
    let input = NodeRef::<leptos::html::Input>::new();
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    // The picture being cropped: its crop, and (in the browser) its bitmap and address.
    let crop = RwSignal::new(None::<Crop>);
    let shown = RwSignal::new(String::new());
    #[cfg(feature = "hydrate")]
    let bitmap = StoredValue::new_local(None::<web_sys::ImageBitmap>);
    let me = use_context::<crate::ui::Me>();
    // Writes below use `try_set`: they may come after an await, when the editor is gone
    // (saving a group's picture re-renders the card that holds it).
    let store = {
        let of = of.clone();
        move |media: String| {
            let of = of.clone();
            busy.try_set(true);
            error.try_set(None);
            leptos::task::spawn_local(async move {
                let result = match of {
                    AvatarOf::Me => crate::api::user::set_avatar(media).await.map(|profile| {
                        if let Some(me) = me {
                            me.0.try_set(profile);
                        }
                    }),
                    AvatarOf::Group(id) => {
                        crate::api::community::update_community(id, None, None, None, Some(media))
                            .await
                            .map(|_| ())
                    }
                };
                busy.try_set(false);
                match result {
                    Ok(()) => {
                        if let Some(cb) = on_saved {
                            cb.run(());
                        }
                    }
                    Err(err) => {
                        error.try_set(Some(err));
                    }
                }
            });
        }
    };
    let close = move || {
        crop.try_set(None);
        #[cfg(feature = "hydrate")]
        {
            bitmap.try_set_value(None);
            let url = shown.get_untracked();
            if !url.is_empty() {
                let _ = web_sys::Url::revoke_object_url(&url);
            }
        }
        shown.try_set(String::new());
    };
    let on_pick = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let Some(file) = input
                .get_untracked()
                .and_then(|el| el.files())
                .and_then(|f| f.item(0))
            else {
                return;
            };
            if let Some(el) = input.get_untracked() {
                el.set_value("");
            }
            error.try_set(None);
            leptos::task::spawn_local(async move {
                match cut::open(&file).await {
                    Ok((picture, url)) => {
                        crop.try_set(Some(Crop::new(
                            f64::from(picture.width()),
                            f64::from(picture.height()),
                        )));
                        bitmap.try_set_value(Some(picture));
                        shown.try_set(url);
                    }
                    Err(err) => {
                        error.try_set(Some(err));
                    }
                }
            });
        }
    };
    let use_it = {
        let store = store.clone();
        move || {
            let Some(c) = crop.get_untracked() else {
                return;
            };
            #[cfg(feature = "hydrate")]
            {
                let Some(picture) = bitmap.get_value() else {
                    return;
                };
                let store = store.clone();
                busy.try_set(true);
                error.try_set(None);
                leptos::task::spawn_local(async move {
                    match cut::square_and_upload(&picture, c.source()).await {
                        Ok(media) => store(media),
                        Err(err) => {
                            busy.try_set(false);
                            error.try_set(Some(err));
                        }
                    }
                });
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = (c, &store);
            close();
        }
    };
    let remove = {
        let store = store.clone();
        move |_| store(String::new())
    };
    view! {
        <div class="avatar-editor">
            <Avatar name=name seed=seed url=url size="lg" />
            <div class="avatar-actions">
                <button
                    type="button"
                    class="secondary"
                    data-testid="avatar-change"
                    disabled=move || busy.get()
                    on:click=move |_| {
                        if let Some(el) = input.get_untracked() {
                            el.click();
                        }
                    }
                >
                    {move || {
                        if busy.get() { i18n.t(Msg::Saving) } else { i18n.t(Msg::ChangeAvatar) }
                    }}
                </button>
                <Show when=move || !url.get().is_empty()>
                    <button
                        type="button"
                        class="link"
                        data-testid="avatar-remove"
                        disabled=move || busy.get()
                        on:click=remove.clone()
                    >
                        {move || i18n.t(Msg::RemoveAvatar)}
                    </button>
                </Show>
            </div>
            <input
                node_ref=input
                type="file"
                accept="image/jpeg,image/png,image/gif,image/webp"
                class="sr-only"
                tabindex="-1"
                aria-hidden="true"
                data-testid="avatar-input"
                on:change=on_pick
            />
            <ErrorNote error=Signal::derive(move || error.get()) />
            <Show when=move || crop.with(Option::is_some)>
                <CropDialog crop shown use_it=use_it.clone() cancel=close />
            </Show>
        </div>
    }
}

/// The picture under a square frame: drag it (mouse or finger) or move it with the arrow
/// keys, zoom with the slider, the wheel or + and −; Enter uses it, Esc cancels.
#[component]
fn CropDialog(
    crop: RwSignal<Option<Crop>>,
    shown: RwSignal<String>,
    use_it: impl Fn() + Clone + Send + Sync + 'static,
    cancel: impl Fn() + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let i18n = use_i18n();
    let frame = NodeRef::<leptos::html::Div>::new();
    let dragging = StoredValue::new(None::<(i32, i32)>);
    let update = move |f: &dyn Fn(&mut Crop)| {
        crop.update(|c| {
            if let Some(c) = c {
                f(c);
            }
        })
    };
    let zoom_by = move |factor: f64| update(&|c: &mut Crop| c.set_zoom(c.zoom() * factor));
    let frame_side = move || {
        frame
            .get_untracked()
            .map(|el| f64::from(el.client_width().max(1)))
            .unwrap_or(1.0)
    };
    let on_key = {
        let (use_it, cancel) = (use_it.clone(), cancel.clone());
        move |ev: leptos::ev::KeyboardEvent| {
            const STEP: f64 = 0.05;
            match ev.key().as_str() {
                "ArrowLeft" => update(&|c: &mut Crop| c.drag(-STEP, 0.0)),
                "ArrowRight" => update(&|c: &mut Crop| c.drag(STEP, 0.0)),
                "ArrowUp" => update(&|c: &mut Crop| c.drag(0.0, -STEP)),
                "ArrowDown" => update(&|c: &mut Crop| c.drag(0.0, STEP)),
                "+" | "=" => zoom_by(1.1),
                "-" | "_" => zoom_by(1.0 / 1.1),
                "Enter" => use_it(),
                "Escape" => cancel(),
                _ => return,
            }
            ev.prevent_default();
        }
    };
    Effect::new(move |_| {
        if let Some(el) = frame.get() {
            let _ = el.focus();
        }
    });
    // Set through the CSSOM (`style:`), which the page's CSP allows; a style attribute it
    // would refuse.
    let placement = move || crop.get().map(|c| c.placement());
    let percent = |v: f64| format!("{v:.3}%");
    let zoom = move || crop.get().map_or(1.0, |c| c.zoom());
    let (use_click, cancel_click, cancel_key) = (use_it.clone(), cancel.clone(), cancel.clone());
    view! {
        <div
            class="crop-dialog"
            role="dialog"
            aria-modal="true"
            aria-label=move || i18n.t(Msg::CropTitle)
            data-testid="crop-dialog"
            on:keydown=move |ev| {
                if ev.key() == "Escape" {
                    ev.prevent_default();
                    cancel_key();
                }
            }
        >
            <div class="crop-box">
                <h2>{move || i18n.t(Msg::CropTitle)}</h2>
                <div
                    class="crop-frame"
                    node_ref=frame
                    tabindex="0"
                    role="img"
                    aria-label=move || i18n.t(Msg::CropHint)
                    data-testid="crop-frame"
                    on:keydown=on_key
                    on:pointerdown=move |ev| {
                        ev.prevent_default();
                        dragging.set_value(Some((ev.client_x(), ev.client_y())));
                        #[cfg(feature = "hydrate")]
                        if let Some(el) = frame.get_untracked() {
                            let _ = el.set_pointer_capture(ev.pointer_id());
                        }
                    }
                    on:pointermove=move |ev| {
                        if let Some((x, y)) = dragging.get_value() {
                            let side = frame_side();
                            let (dx, dy) = (
                                f64::from(ev.client_x() - x) / side,
                                f64::from(ev.client_y() - y) / side,
                            );
                            update(&|c: &mut Crop| c.drag(dx, dy));
                            dragging.set_value(Some((ev.client_x(), ev.client_y())));
                        }
                    }
                    on:pointerup=move |_| dragging.set_value(None)
                    on:pointercancel=move |_| dragging.set_value(None)
                    on:wheel=move |ev| {
                        ev.prevent_default();
                        zoom_by(if ev.delta_y() < 0.0 { 1.1 } else { 1.0 / 1.1 });
                    }
                >
                    <img
                        src=move || shown.get()
                        style:width=move || placement().map_or(String::new(), |p| percent(p.width))
                        style:left=move || placement().map_or(String::new(), |p| percent(p.left))
                        style:top=move || placement().map_or(String::new(), |p| percent(p.top))
                        alt=""
                        draggable="false"
                    />
                </div>
                <label class="crop-zoom">
                    <span>{move || i18n.t(Msg::Zoom)}</span>
                    <input
                        type="range"
                        min="1"
                        max=MAX_ZOOM.to_string()
                        step="0.01"
                        data-testid="crop-zoom"
                        prop:value=move || zoom().to_string()
                        on:input=move |ev| {
                            if let Ok(z) = event_target_value(&ev).parse::<f64>() {
                                update(&|c: &mut Crop| c.set_zoom(z));
                            }
                        }
                    />
                </label>
                <p class="muted small">{move || i18n.t(Msg::CropHint)}</p>
                <div class="crop-actions">
                    <button type="button" class="secondary" on:click=move |_| cancel_click()>
                        {move || i18n.t(Msg::Cancel)}
                    </button>
                    <button
                        type="button"
                        class="primary"
                        data-testid="crop-use"
                        on:click=move |_| use_click()
                    >
                        {move || i18n.t(Msg::UsePicture)}
                    </button>
                </div>
            </div>
        </div>
    }
}

#[cfg(feature = "hydrate")]
mod cut {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;

    use crate::error::{ApiError, ErrorCode};
    use crate::model::MediaView;

    /// The side of the square uploaded.
    const SIDE: u32 = 512;

    fn failed(what: &str, err: impl std::fmt::Debug) -> ApiError {
        leptos::logging::warn!("avatar: {what}: {err:?}");
        ApiError::new(ErrorCode::BadImage, what)
    }

    /// Decodes the picked file (upright, as the browser shows it) and gives it an address
    /// to show in the crop dialog (revoked when the dialog closes).
    pub async fn open(file: &web_sys::File) -> Result<(web_sys::ImageBitmap, String), ApiError> {
        let window = web_sys::window().ok_or_else(|| failed("no window", ()))?;
        let bitmap: web_sys::ImageBitmap = JsFuture::from(
            window
                .create_image_bitmap_with_blob(file)
                .map_err(|e| failed("not a picture", e))?,
        )
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::BadImage,
                "This is not a picture the browser can show.",
            )
        })?
        .unchecked_into();
        let url =
            web_sys::Url::create_object_url_with_blob(file).map_err(|e| failed("no address", e))?;
        Ok((bitmap, url))
    }

    /// Cuts the square `(left, top, side)` out of the picture, scales it to 512 px, uploads
    /// it as a JPEG; answers the media id.
    pub async fn square_and_upload(
        bitmap: &web_sys::ImageBitmap,
        (left, top, side): (f64, f64, f64),
    ) -> Result<String, ApiError> {
        let window = web_sys::window().ok_or_else(|| failed("no window", ()))?;
        let document = window.document().ok_or_else(|| failed("no document", ()))?;
        let canvas: web_sys::HtmlCanvasElement = document
            .create_element("canvas")
            .map_err(|e| failed("no canvas", e))?
            .unchecked_into();
        canvas.set_width(SIDE);
        canvas.set_height(SIDE);
        let ctx: web_sys::CanvasRenderingContext2d = canvas
            .get_context("2d")
            .map_err(|e| failed("no 2d context", e))?
            .ok_or_else(|| failed("no 2d context", ()))?
            .unchecked_into();
        ctx.draw_image_with_image_bitmap_and_sw_and_sh_and_dx_and_dy_and_dw_and_dh(
            bitmap,
            left,
            top,
            side,
            side,
            0.0,
            0.0,
            f64::from(SIDE),
            f64::from(SIDE),
        )
        .map_err(|e| failed("cannot draw", e))?;
        let data_url = canvas
            .to_data_url_with_type_and_encoder_options("image/jpeg", &0.9.into())
            .map_err(|e| failed("cannot encode", e))?;
        let b64 = data_url
            .split_once(",")
            .map(|(_, b)| b)
            .ok_or_else(|| failed("cannot encode", ()))?;
        let bytes = js_sys::Uint8Array::from(
            &decode_base64(b64).ok_or_else(|| failed("cannot encode", ()))?[..],
        );
        let response = gloo_net::http::Request::post("/api/v1/media?name=avatar.jpg")
            .header("Content-Type", "application/octet-stream")
            .body(bytes)
            .map_err(|e| failed("request", e))?
            .send()
            .await
            .map_err(|_| ApiError::new(ErrorCode::Network, "The server cannot be reached."))?;
        let text = response.text().await.unwrap_or_default();
        if response.status() == 201 {
            serde_json::from_str::<MediaView>(&text)
                .map(|m| m.id)
                .map_err(|e| failed("answer", e))
        } else {
            Err(serde_json::from_str::<ApiError>(&text)
                .unwrap_or_else(|_| ApiError::new(ErrorCode::Unknown, "upload failed")))
        }
    }

    fn decode_base64(s: &str) -> Option<Vec<u8>> {
        let binary = web_sys::window()?.atob(s).ok()?;
        Some(binary.chars().map(|c| c as u8).collect())
    }
}
