//! Sending pictures and files: the paperclip, dropping and pasting, the strip of uploads in
//! progress (progress bar, cancel, retry), and the picture viewer. The rules live in
//! `crate::chat::uploads`; this is their driver: `XMLHttpRequest` (fetch reports no upload
//! progress) and the files the browser hands over, kept until the upload is done.
use leptos::prelude::*;

use crate::chat::uploads::{UploadEffect, UploadInput, Uploads};
use crate::chat::{Chat, Status, use_chat};
use crate::i18n::{Msg, use_i18n};
use crate::model::media_url;
use crate::protocol::Peer;

use super::messages::file_size;

/// The uploads of the page: provided by the signed-in layout, so an upload goes on (and
/// becomes a message) while the user reads another conversation or another tab.
#[derive(Clone, Copy)]
pub struct UploadQueue {
    state: RwSignal<Uploads>,
    #[cfg(feature = "hydrate")]
    next: StoredValue<u64>,
    chat: Chat,
    #[cfg(feature = "hydrate")]
    running: StoredValue<std::collections::HashMap<u64, driver::Running>, LocalStorage>,
}

pub fn use_uploads() -> Option<UploadQueue> {
    use_context::<UploadQueue>()
}

impl UploadQueue {
    pub fn provide() -> UploadQueue {
        let queue = UploadQueue {
            state: RwSignal::new(Uploads::default()),
            #[cfg(feature = "hydrate")]
            next: StoredValue::new(1),
            chat: use_chat(),
            #[cfg(feature = "hydrate")]
            running: StoredValue::new_local(Default::default()),
        };
        provide_context(queue);
        provide_context(Viewer(RwSignal::new(None)));
        // The socket reconnecting is the sign the server can be reached again.
        let status = queue.chat.view.status;
        Effect::new(move |was: Option<Status>| {
            let now = status.get();
            if now == Status::Online && was.is_some_and(|w| w != Status::Online) {
                queue.input(UploadInput::Online);
            }
            now
        });
        queue
    }

    fn input(self, input: UploadInput) {
        let Some(effects) = self.state.try_update(|s| s.apply(input)) else {
            return;
        };
        for effect in effects {
            match effect {
                UploadEffect::Send { to, content } => self.chat.send(to, content),
                #[cfg(feature = "hydrate")]
                other => driver::run(self, other),
                #[cfg(not(feature = "hydrate"))]
                _ => {}
            }
        }
    }

    /// A picture's local address while it uploads (none on the server, or for other files).
    fn preview(self, key: u64) -> Option<String> {
        #[cfg(feature = "hydrate")]
        return self
            .running
            .with_value(|r| r.get(&key).and_then(|x| x.preview.clone()));
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = key;
            None
        }
    }

    /// How far the upload under `key` got, 0 to 100.
    fn percent(self, key: u64) -> f64 {
        self.state.with(|s| {
            s.items()
                .iter()
                .find(|u| u.key == key)
                .map_or(0.0, |u| (u.progress() * 100.0).round())
        })
    }

    pub fn cancel(self, key: u64) {
        self.input(UploadInput::Cancel(key));
    }

    pub fn retry(self, key: u64) {
        self.input(UploadInput::Retry(key));
    }

    /// Uploads every file of `files` to `to`.
    #[cfg(feature = "hydrate")]
    pub fn add_files(self, to: &Peer, files: Option<web_sys::FileList>) {
        let Some(files) = files else { return };
        for i in 0..files.length() {
            if let Some(file) = files.item(i) {
                self.add(to, file);
            }
        }
    }

    #[cfg(feature = "hydrate")]
    fn add(self, to: &Peer, file: web_sys::File) {
        let key = self.next.get_value();
        self.next.set_value(key + 1);
        let name = file.name();
        let size = file.size() as u64;
        let preview = file
            .type_()
            .starts_with("image/")
            .then(|| web_sys::Url::create_object_url_with_blob(&file).ok())
            .flatten();
        self.running.update_value(|r| {
            r.insert(
                key,
                driver::Running {
                    file,
                    request: None,
                    preview,
                },
            );
        });
        self.input(UploadInput::Add {
            key,
            to: to.clone(),
            name,
            size,
        });
    }
}

#[cfg(feature = "hydrate")]
mod driver {
    use leptos::prelude::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    use web_sys::{ProgressEvent, XmlHttpRequest};

    use super::UploadQueue;
    use crate::chat::uploads::{UploadEffect, UploadInput};
    use crate::error::{ApiError, ErrorCode};
    use crate::model::MediaView;

    /// A file and, while it goes up, its request with the handlers it calls.
    pub struct Running {
        pub file: web_sys::File,
        pub request: Option<Request>,
        /// A picture's local address, shown in its bubble while it goes up.
        pub preview: Option<String>,
    }

    pub struct Request {
        xhr: XmlHttpRequest,
        _progress: Closure<dyn FnMut(ProgressEvent)>,
        _load: Closure<dyn FnMut(ProgressEvent)>,
        _error: Closure<dyn FnMut(ProgressEvent)>,
    }

    pub fn run(queue: UploadQueue, effect: UploadEffect) {
        match effect {
            UploadEffect::Start(key) => {
                if let Err(err) = start(queue, key) {
                    leptos::logging::warn!("upload {key} did not start: {err:?}");
                    queue.input(UploadInput::Failed {
                        key,
                        code: ErrorCode::Network,
                    });
                }
            }
            UploadEffect::Abort(key) => queue.running.update_value(|r| {
                if let Some(request) = r.get_mut(&key).and_then(|x| x.request.take())
                    && let Err(err) = request.xhr.abort()
                {
                    leptos::logging::warn!("upload {key} not aborted: {err:?}");
                }
            }),
            UploadEffect::Forget(key) => queue.running.update_value(|r| {
                if let Some(url) = r.remove(&key).and_then(|x| x.preview) {
                    let _ = web_sys::Url::revoke_object_url(&url);
                }
            }),
            UploadEffect::Send { .. } => {}
        }
    }

    /// What an answer said: the stored upload, or why not.
    fn outcome(xhr: &XmlHttpRequest) -> Result<MediaView, ErrorCode> {
        let status = xhr.status().unwrap_or(0);
        let body = xhr.response_text().ok().flatten().unwrap_or_default();
        if status == 201 {
            serde_json::from_str(&body).map_err(|_| ErrorCode::Internal)
        } else {
            Err(serde_json::from_str::<ApiError>(&body).map_or(
                if status == 0 {
                    ErrorCode::Network
                } else {
                    ErrorCode::Unknown
                },
                |e| e.code,
            ))
        }
    }

    fn start(queue: UploadQueue, key: u64) -> Result<(), wasm_bindgen::JsValue> {
        let Some(file) = queue
            .running
            .with_value(|r| r.get(&key).map(|x| x.file.clone()))
        else {
            return Ok(());
        };
        let xhr = XmlHttpRequest::new()?;
        let name = String::from(js_sys::encode_uri_component(&file.name()));
        xhr.open("POST", &format!("/api/v1/media?name={name}"))?;
        xhr.set_request_header("Content-Type", "application/octet-stream")?;
        let progress = Closure::<dyn FnMut(ProgressEvent)>::new(move |ev: ProgressEvent| {
            if ev.length_computable() {
                queue.input(UploadInput::Progress {
                    key,
                    sent: ev.loaded() as u64,
                });
            }
        });
        xhr.upload()?
            .set_onprogress(Some(progress.as_ref().unchecked_ref()));
        let answered = xhr.clone();
        let load = Closure::<dyn FnMut(ProgressEvent)>::new(move |_| {
            queue.input(match outcome(&answered) {
                Ok(media) => UploadInput::Done { key, media },
                Err(code) => UploadInput::Failed { key, code },
            });
        });
        xhr.set_onload(Some(load.as_ref().unchecked_ref()));
        let error = Closure::<dyn FnMut(ProgressEvent)>::new(move |_| {
            queue.input(UploadInput::Failed {
                key,
                code: ErrorCode::Network,
            });
        });
        xhr.set_onerror(Some(error.as_ref().unchecked_ref()));
        xhr.send_with_opt_blob(Some(&file))?;
        queue.running.update_value(|r| {
            if let Some(running) = r.get_mut(&key) {
                running.request = Some(Request {
                    xhr,
                    _progress: progress,
                    _load: load,
                    _error: error,
                });
            }
        });
        Ok(())
    }
}

/// The paperclip: picks files to send (several at once) with the keyboard or the mouse.
#[component]
pub fn AttachButton(peer: Peer) -> impl IntoView {
    let i18n = use_i18n();
    let input = NodeRef::<leptos::html::Input>::new();
    let on_change = move |_ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        if let (Some(queue), Some(el)) = (use_uploads(), input.get_untracked()) {
            queue.add_files(&peer, el.files());
            // The same file may be picked again.
            el.set_value("");
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &peer;
    };
    view! {
        <button
            type="button"
            class="icon-button attach"
            data-testid="attach"
            title=move || i18n.t(Msg::Attach)
            aria-label=move || i18n.t(Msg::Attach)
            on:click=move |_| {
                if let Some(el) = input.get_untracked() {
                    el.click();
                }
            }
        >
            <svg viewBox="0 0 24 24" aria-hidden="true">
                <path d="M21 11.5 12.5 20a5.5 5.5 0 0 1-7.8-7.8l8.5-8.5a3.7 3.7 0 0 1 5.2 5.2l-8.5 8.5a1.8 1.8 0 0 1-2.6-2.6l7.8-7.8" />
            </svg>
        </button>
        <input
            node_ref=input
            type="file"
            multiple=true
            class="sr-only"
            tabindex="-1"
            aria-hidden="true"
            data-testid="file-input"
            on:change=on_change
        />
    }
}

/// The uploads going to this conversation, as the user's own bubbles below the messages:
/// the picture (from the user's disk) or the file's name, its size, progress and cancel; or
/// why it failed, retry and remove.
#[component]
pub fn UploadStrip(peer: Peer) -> impl IntoView {
    let i18n = use_i18n();
    let Some(queue) = use_uploads() else {
        return ().into_any();
    };
    let items = move || {
        queue
            .state
            .with(|s| s.for_peer(&peer).cloned().collect::<Vec<_>>())
    };
    view! {
        <ul class="upload-strip" aria-live="polite">
            <For each=items key=|u| (u.key, u.failed) let:u>
                {
                    let key = u.key;
                    let percent = move || queue.percent(key);
                    let failed = u.failed;
                    let waiting = u.waits_for_connection();
                    let preview = queue
                        .preview(key)
                        .map(|src| {
                            view! {
                                <img
                                    class="upload-preview"
                                    src=src
                                    alt=u.name.clone()
                                    on:error=|ev| {
                                        let img: leptos::web_sys::HtmlElement = event_target(&ev);
                                        let _ = img.style().set_property("display", "none");
                                    }
                                />
                            }
                        });
                    view! {
                        <li class="bubble-row mine" data-testid="upload">
                            <div class="bubble upload" class:failed=failed.is_some() && !waiting>
                                {preview}
                                <span class="upload-name">{u.name.clone()}</span>
                                <span class="small upload-size">{file_size(u.size)}</span>
                                {match failed {
                                    None => {
                                        view! {
                                            <progress
                                                max="100"
                                                value=move || percent().to_string()
                                                aria-label=move || i18n.t(Msg::Uploading)
                                            ></progress>
                                            <span class="upload-actions">
                                                <span class="small" data-testid="upload-percent">
                                                    {move || format!("{}%", percent())}
                                                </span>
                                                <button
                                                    type="button"
                                                    class="link small"
                                                    data-testid="upload-cancel"
                                                    on:click=move |_| queue.cancel(key)
                                                >
                                                    {move || i18n.t(Msg::Cancel)}
                                                </button>
                                            </span>
                                        }
                                            .into_any()
                                    }
                                    Some(code) => {
                                        let why = if waiting {
                                            view! {
                                                <span class="small muted" data-testid="upload-waiting">
                                                    {move || i18n.t(Msg::UploadWaiting)}
                                                </span>
                                            }
                                                .into_any()
                                        } else {
                                            view! {
                                                <span class="small upload-error" role="alert">
                                                    {move || i18n.t(Msg::UploadFailed)}
                                                    ": "
                                                    {move || i18n.t(Msg::for_error(code))}
                                                </span>
                                            }
                                                .into_any()
                                        };
                                        view! {
                                            {why}
                                            <span class="upload-actions">
                                                <button
                                                    type="button"
                                                    class="link small"
                                                    data-testid="upload-retry"
                                                    on:click=move |_| queue.retry(key)
                                                >
                                                    {move || i18n.t(Msg::Retry)}
                                                </button>
                                                <button
                                                    type="button"
                                                    class="link small"
                                                    on:click=move |_| queue.cancel(key)
                                                >
                                                    {move || i18n.t(Msg::Remove)}
                                                </button>
                                            </span>
                                        }
                                            .into_any()
                                    }
                                }}
                            </div>
                        </li>
                    }
                }
            </For>
        </ul>
    }
    .into_any()
}

/// The picture open full size, if any: (conversation, media id).
#[derive(Clone, Copy)]
pub struct Viewer(pub RwSignal<Option<(Peer, String)>>);

/// Opens a picture of a conversation in the viewer.
pub fn view_picture(peer: &Peer, media: &str) -> bool {
    match use_context::<Viewer>() {
        Some(v) => {
            v.0.set(Some((peer.clone(), media.to_owned())));
            true
        }
        None => false,
    }
}

/// The picture viewer: fitted to the screen, Esc closes, ← → go through the conversation's
/// pictures; a click on the picture, + or − shows it at its own size (scroll or swipe
/// to move around it) and back.
#[component]
pub fn PictureViewer() -> impl IntoView {
    let i18n = use_i18n();
    let chat = use_chat();
    let Some(Viewer(open)) = use_context::<Viewer>() else {
        return ().into_any();
    };
    // Each picture opens fitted.
    let zoomed = RwSignal::new(false);
    Effect::new(move |_| {
        open.track();
        zoomed.set(false);
    });
    let close = move || open.set(None);
    let step = move |by: isize| {
        let Some((peer, media)) = open.get_untracked() else {
            return;
        };
        let all = chat.pictures(&peer);
        if let Some(i) = all.iter().position(|(m, _)| *m == media) {
            let j = i as isize + by;
            if let Some((next, _)) = usize::try_from(j).ok().and_then(|j| all.get(j)) {
                open.set(Some((peer, next.clone())));
            }
        }
    };
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        if open.get_untracked().is_none() {
            return;
        }
        match ev.key().as_str() {
            "Escape" => close(),
            "ArrowLeft" => step(-1),
            "ArrowRight" => step(1),
            "+" | "=" => zoomed.set(true),
            "-" | "_" => zoomed.set(false),
            _ => return,
        }
        ev.prevent_default();
    });
    on_cleanup(move || keys.remove());
    let dialog = NodeRef::<leptos::html::Div>::new();
    Effect::new(move |_| {
        if open.with(Option::is_some)
            && let Some(el) = dialog.get()
        {
            let _ = el.focus();
        }
    });
    let current = move || {
        open.get().map(|(peer, media)| {
            let all = chat.pictures(&peer);
            let at = all.iter().position(|(m, _)| *m == media);
            let name = at.map(|i| all[i].1.clone()).unwrap_or_default();
            let position = at
                .map(|i| format!("{} / {}", i + 1, all.len()))
                .unwrap_or_default();
            let (first, last) = (at == Some(0), at.is_none_or(|i| i + 1 == all.len()));
            let (label, alt) = (name.clone(), name.clone());
            view! {
                <div
                    class="viewer"
                    role="dialog"
                    aria-modal="true"
                    aria-label=label
                    tabindex="-1"
                    node_ref=dialog
                    data-testid="viewer"
                    on:click=move |_| close()
                >
                    <div class="viewer-stage" class:zoomed=move || zoomed.get()>
                        <img
                            src=media_url(&media, false)
                            alt=alt
                            title=move || {
                                i18n.t(if zoomed.get() { Msg::ZoomOut } else { Msg::ZoomIn })
                            }
                            on:click=move |ev| {
                                ev.stop_propagation();
                                zoomed.update(|z| *z = !*z);
                            }
                        />
                    </div>
                    <p class="viewer-caption" on:click=|ev| ev.stop_propagation()>
                        <span>{name}</span>
                        <span class="muted">{position}</span>
                        <a href=media_url(&media, false) download="" rel="external" class="link">
                            {move || i18n.t(Msg::Download)}
                        </a>
                    </p>
                    <button
                        type="button"
                        class="viewer-close"
                        aria-label=move || i18n.t(Msg::Close)
                        on:click=move |_| close()
                    >
                        "×"
                    </button>
                    <button
                        type="button"
                        class="viewer-prev"
                        disabled=first
                        aria-label=move || i18n.t(Msg::Previous)
                        on:click=move |ev| {
                            ev.stop_propagation();
                            step(-1);
                        }
                    >
                        "‹"
                    </button>
                    <button
                        type="button"
                        class="viewer-next"
                        disabled=last
                        aria-label=move || i18n.t(Msg::Next)
                        on:click=move |ev| {
                            ev.stop_propagation();
                            step(1);
                        }
                    >
                        "›"
                    </button>
                </div>
            }
        })
    };
    view! { {current} }.into_any()
}
