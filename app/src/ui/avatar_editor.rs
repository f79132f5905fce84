//! The profile picture: pick a picture, see it cropped square, use it (or go back to
//! initials). The square is cut in the browser (the middle of the picture, 512 × 512) and
//! uploaded like any picture; the server makes the sizes and tells the user's friends.
use leptos::prelude::*;

use crate::api::user::SetAvatar;
use crate::i18n::{Msg, use_i18n};
use crate::ui::use_me;
use crate::ui::widgets::{Avatar, ErrorNote};

#[component]
pub fn AvatarEditor() -> impl IntoView {
    let i18n = use_i18n();
    let me = use_me().0;
    let input = NodeRef::<leptos::html::Input>::new();
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<crate::error::ApiError>);
    let action = ServerAction::<SetAvatar>::new();
    Effect::new(move |_| match action.value().get() {
        Some(Ok(profile)) => {
            me.set(profile);
            busy.set(false);
        }
        Some(Err(err)) => {
            error.set(Some(err));
            busy.set(false);
        }
        None => {}
    });
    let nickname = Signal::derive(move || me.with(|u| u.nickname.clone()));
    let user_id = Signal::derive(move || me.with(|u| u.id.clone()));
    let avatar = Signal::derive(move || me.with(|u| u.avatar.clone()));
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
            busy.set(true);
            error.set(None);
            leptos::task::spawn_local(async move {
                match upload::square_and_upload(file).await {
                    Ok(media) => {
                        action.dispatch(SetAvatar { media });
                    }
                    Err(err) => {
                        error.set(Some(err));
                        busy.set(false);
                    }
                }
            });
        }
    };
    view! {
        <div class="avatar-editor">
            <Avatar name=nickname seed=user_id url=avatar size="lg" />
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
                <Show when=move || !avatar.get().is_empty()>
                    <button
                        type="button"
                        class="link"
                        data-testid="avatar-remove"
                        disabled=move || busy.get()
                        on:click=move |_| {
                            busy.set(true);
                            action.dispatch(SetAvatar { media: String::new() });
                        }
                    >
                        {move || i18n.t(Msg::RemoveAvatar)}
                    </button>
                </Show>
                <p class="muted small">{move || i18n.t(Msg::AvatarHint)}</p>
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
        </div>
    }
}

#[cfg(feature = "hydrate")]
mod upload {
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

    /// Cuts the middle square of the picture, scales it to 512 px, uploads it as a JPEG;
    /// answers the media id.
    pub async fn square_and_upload(file: web_sys::File) -> Result<String, ApiError> {
        let window = web_sys::window().ok_or_else(|| failed("no window", ()))?;
        let bitmap: web_sys::ImageBitmap = JsFuture::from(
            window
                .create_image_bitmap_with_blob(&file)
                .map_err(|e| failed("not a picture", e))?,
        )
        .await
        .map_err(|e| failed("not a picture", e))?
        .unchecked_into();
        let (w, h) = (f64::from(bitmap.width()), f64::from(bitmap.height()));
        let side = w.min(h);
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
            &bitmap,
            (w - side) / 2.0,
            (h - side) / 2.0,
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
