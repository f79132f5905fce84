//! The WASM entry point: hydrates the server-rendered page. Holds nothing but `hydrate()`;
//! the app itself lives in the `app` crate.
#![recursion_limit = "512"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // Marks the page as interactive: forms now run in the app instead of posting natively.
    // The browser tests wait for this before they type.
    if let Some(body) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.body())
    {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}
