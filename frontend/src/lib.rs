//! The WASM entry point: hydrates the server-rendered page. Holds nothing but `hydrate()`;
//! the app itself lives in the `app` crate.
//!
//! With `cargo leptos build --split` the rarely used screens (contacts, Me, the sign-in
//! pages, the call screen and its engine) are separate WASM chunks, fetched when first
//! needed; hydration waits for the chunks of the page being hydrated.
#![recursion_limit = "512"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        offer_reload();
    }));
    let Some(body) = document().and_then(|d| d.body()) else {
        return;
    };
    // Not Leptos' own `spawn_local`: its executor is set up by the hydration below.
    wasm_bindgen_futures::spawn_local(async move {
        leptos::mount::hydrate_from_async(body.clone(), app::App)
            .await
            .forget();
        // Marks the page as interactive: forms now run in the app instead of posting
        // natively. The browser tests wait for this before they type.
        if body.set_attribute("data-hydrated", "true").is_err() {
            web_sys::console::warn_1(&"could not mark the page as hydrated".into());
        }
    });
}

fn document() -> Option<web_sys::Document> {
    web_sys::window().and_then(|w| w.document())
}

/// After a panic the app no longer runs (WASM cannot unwind): most likely a part of it could
/// not be downloaded (offline, or a new version replaced the old files). Says so, with a
/// link that reloads the page, instead of leaving a page that silently stopped working.
fn offer_reload() {
    let Some(doc) = document() else { return };
    if doc.get_element_by_id("qc-crashed").is_some() {
        return;
    }
    let zh = doc
        .document_element()
        .and_then(|html| html.get_attribute("lang"))
        .is_some_and(|lang| lang.starts_with("zh"));
    let (text, action) = if zh {
        ("页面出错了，可能有部分内容未能下载。", "重新加载")
    } else {
        (
            "Something went wrong: part of the app could not be loaded.",
            "Reload",
        )
    };
    let banner = || -> Result<(), wasm_bindgen::JsValue> {
        let div = doc.create_element("div")?;
        div.set_id("qc-crashed");
        div.set_class_name("crashed");
        div.set_attribute("role", "alert")?;
        div.set_text_content(Some(text));
        let link = doc.create_element("a")?;
        link.set_attribute("href", "")?;
        // A plain navigation: the router (in the stopped app) must not take the click.
        link.set_attribute("rel", "external")?;
        link.set_text_content(Some(action));
        div.append_child(&link)?;
        doc.body()
            .ok_or_else(|| wasm_bindgen::JsValue::from("no body"))?
            .append_child(&div)?;
        Ok(())
    };
    if let Err(err) = banner() {
        web_sys::console::error_2(&"could not show the reload banner".into(), &err);
    }
}
